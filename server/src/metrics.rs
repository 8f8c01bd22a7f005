//! Opt-in Prometheus metrics (`--metrics-listen`): served on an address of their own,
//! never on the public one, so that they are not published by accident. Through the
//! `metrics` facade with its Prometheus exporter; with no recorder installed (the flag
//! not given) every recording is a no-op.
//!
//! What is counted where: sends and the acknowledgement latency by the message writer,
//! uploads by their routes; connections, events delivered and the database pools are
//! read when scraped.

use std::{net::SocketAddr, sync::Mutex};

use anyhow::Context;
use axum::{
    Router,
    extract::State,
    http::header::CONTENT_TYPE,
    response::{IntoResponse, Response},
    routing::get,
};
use metrics::{Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tokio_util::sync::CancellationToken;

use crate::AppState;

/// Open WebSocket connections on this instance (gauge).
pub const CONNECTIONS: &str = "chatapp_websocket_connections";
/// Messages stored (text and voice), retries that found a stored one not counted.
pub const SENDS: &str = "chatapp_messages_sent_total";
/// Events queued for WebSocket connections: messages, acknowledgements, changes, typing,
/// presence.
pub const DELIVERIES: &str = "chatapp_events_delivered_total";
/// From a send reaching the message writer to its answer: stored, committed and
/// delivered to the members' connections (histogram, seconds).
pub const ACK_SECONDS: &str = "chatapp_message_ack_seconds";
/// Uploads by `kind` (voice, avatar) and `outcome` (stored, refused).
pub const UPLOADS: &str = "chatapp_uploads_total";
/// Database connections by `pool` (read, write) and `state` (idle, busy).
pub const DB_CONNECTIONS: &str = "chatapp_db_connections";

/// The acknowledgement histogram's buckets, in seconds: the 10 ms target sits among them.
const ACK_BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// The process's recorder: the facade has one per process, so servers started in one
/// process (the tests') share it.
static RECORDER: Mutex<Option<PrometheusHandle>> = Mutex::new(None);

/// Installs the Prometheus recorder (once per process) and describes the metrics.
pub fn install() -> anyhow::Result<PrometheusHandle> {
    let mut installed = RECORDER.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(handle) = installed.as_ref() {
        return Ok(handle.clone());
    }
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Full(ACK_SECONDS.to_owned()), &ACK_BUCKETS)
        .context("the acknowledgement histogram's buckets")?
        .install_recorder()
        .context("installing the metrics recorder")?;
    describe_gauge!(CONNECTIONS, "Open WebSocket connections on this instance");
    describe_counter!(SENDS, "Messages stored (text and voice)");
    describe_counter!(
        DELIVERIES,
        "Events queued for WebSocket connections (messages, acknowledgements, changes, typing, presence)"
    );
    describe_histogram!(
        ACK_SECONDS,
        Unit::Seconds,
        "From a send reaching the message writer to its answer (stored, committed, delivered)"
    );
    describe_counter!(UPLOADS, "Uploads by kind and outcome");
    describe_gauge!(DB_CONNECTIONS, "Database connections by pool and state");
    *installed = Some(handle.clone());
    Ok(handle)
}

/// Counts `sent` messages stored by one commit.
pub fn sent(sent: usize) {
    if sent > 0 {
        counter!(SENDS).increment(u64::try_from(sent).unwrap_or(u64::MAX));
    }
}

/// Records one send's acknowledgement latency.
pub fn acknowledged(elapsed: std::time::Duration) {
    metrics::histogram!(ACK_SECONDS).record(elapsed.as_secs_f64());
}

/// Counts an upload of `kind` by whether it was stored.
pub fn upload<T, E>(kind: &'static str, result: &Result<T, E>) {
    let outcome = if result.is_ok() { "stored" } else { "refused" };
    counter!(UPLOADS, "kind" => kind, "outcome" => outcome).increment(1);
}

/// Serves `GET /metrics` on `listener` until `stop`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    handle: PrometheusHandle,
    stop: CancellationToken,
) {
    let app = Router::new()
        .route("/metrics", get(scrape))
        .with_state((state, handle));
    if let Err(err) = axum::serve(listener, app)
        .with_graceful_shutdown(stop.cancelled_owned())
        .await
    {
        tracing::error!(error = %err, "the metrics listener failed");
    }
}

/// Binds the metrics address.
pub async fn bind(addr: SocketAddr) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding the metrics address {addr}"))
}

/// The metrics in Prometheus's text format, with what is read at scrape time brought up
/// to date first.
async fn scrape(State((state, handle)): State<(AppState, PrometheusHandle)>) -> Response {
    gauge!(CONNECTIONS).set(state.hub.connection_count() as f64);
    counter!(DELIVERIES).absolute(state.hub.delivered());
    for pool in state.store.pool_stats() {
        gauge!(DB_CONNECTIONS, "pool" => pool.name, "state" => "idle").set(f64::from(pool.idle));
        gauge!(DB_CONNECTIONS, "pool" => pool.name, "state" => "busy")
            .set(f64::from(pool.size.saturating_sub(pool.idle)));
    }
    handle.run_upkeep();
    (
        [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        handle.render(),
    )
        .into_response()
}
