//! The HTTP transport: accepting TCP connections and serving them with hyper (HTTP/1.1
//! with upgrades for the WebSocket), with time limits so that a slow or stalled client
//! cannot hold a connection, a request or an upload's temporary file for ever:
//!
//! - request headers must arrive within `--header-timeout-secs`, or the connection is
//!   closed;
//! - a request body may pause at most `--body-idle-timeout-secs` between bytes and take
//!   at most `--body-timeout-secs` in all; reading it past either fails with
//!   [`BodyTimeout`] / tower-http's `TimeoutError`, which handlers answer with 408.
//!
//! axum's own `serve` gives hyper no timer, so hyper's header timeout never runs; this
//! module does what `axum::serve` does (TCP_NODELAY, `ConnectInfo<SocketAddr>`,
//! graceful shutdown) with the timer set. It knows nothing of the routes.

use std::{
    error::Error as StdError,
    future::Future,
    io,
    pin::{Pin, pin},
    task::{Context, Poll},
    time::Duration,
};

use axum::{
    Extension, Router,
    body::{Body, Bytes},
    extract::{ConnectInfo, Request, State},
    middleware::Next,
    response::Response,
};
use http_body::{Body as HttpBody, Frame, SizeHint};
use hyper_util::{
    rt::{TokioIo, TokioTimer},
    service::TowerToHyperService,
};
use tokio::{net::TcpListener, time::Sleep};
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use tower::{Layer, ServiceExt};
use tower_http::timeout::{TimeoutBody, TimeoutError};

/// Serves `app` on `listener` until `shutdown` completes; then stops accepting, lets the
/// requests in flight finish and returns once every connection is closed (upgraded
/// connections, i.e. WebSockets, are no longer ours to wait for).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    header_timeout: Duration,
    shutdown: impl Future<Output = ()>,
) {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(header_timeout);
    let connections = TaskTracker::new();
    let stopping = CancellationToken::new();
    let mut shutdown = pin!(shutdown);
    loop {
        let (tcp, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    accept_failed(err).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        if let Err(err) = tcp.set_nodelay(true) {
            tracing::debug!(error = %err, "TCP_NODELAY not set");
        }
        let service = Extension(ConnectInfo(remote))
            .layer(app.clone())
            .map_request(|request: Request<hyper::body::Incoming>| request.map(Body::new));
        let connection = http
            .serve_connection(TokioIo::new(tcp), TowerToHyperService::new(service))
            .with_upgrades();
        let stopping = stopping.clone();
        connections.spawn(async move {
            let mut connection = pin!(connection);
            let result = tokio::select! {
                result = connection.as_mut() => result,
                () = stopping.cancelled() => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(err) = result {
                tracing::debug!(%remote, error = %err, "connection ended with an error");
            }
        });
    }
    drop(listener);
    stopping.cancel();
    connections.close();
    connections.wait().await;
}

/// What `axum::serve` does with accept errors: a reset connection is nothing; anything
/// else (e.g. out of file descriptors) is logged and accepting pauses for a second.
async fn accept_failed(err: io::Error) {
    if matches!(
        err.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    ) {
        return;
    }
    tracing::error!(error = %err, "accept failed");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

/// The body time limits, applied to every request by [`limit_body_time`].
#[derive(Debug, Clone, Copy)]
pub struct BodyTimeouts {
    /// Longest pause between two parts of a body.
    pub idle: Duration,
    /// Longest time for a whole body, from the request's arrival.
    pub total: Duration,
}

/// Middleware: wraps the request body so that reading it fails once it pauses longer
/// than `idle` or runs past `total`.
pub async fn limit_body_time(
    State(limits): State<BodyTimeouts>,
    request: Request,
    next: Next,
) -> Response {
    let deadline = Box::pin(tokio::time::sleep(limits.total));
    let request = request.map(|body| {
        Body::new(DeadlineBody {
            body: Body::new(TimeoutBody::new(limits.idle, body)),
            deadline,
        })
    });
    next.run(request).await
}

/// Reading a request body took longer than `--body-timeout-secs`.
#[derive(Debug, thiserror::Error)]
#[error("the request body took too long")]
pub struct BodyTimeout;

/// Whether `err` (or what caused it) is one of the body time limits.
pub fn is_body_timeout(err: &(dyn StdError + 'static)) -> bool {
    let mut cause = Some(err);
    while let Some(err) = cause {
        if err.is::<BodyTimeout>() || err.is::<TimeoutError>() {
            return true;
        }
        cause = err.source();
    }
    false
}

/// A body that fails with [`BodyTimeout`] when read past its deadline.
struct DeadlineBody {
    body: Body,
    deadline: Pin<Box<Sleep>>,
}

impl HttpBody for DeadlineBody {
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        if !this.body.is_end_stream() && this.deadline.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Some(Err(Box::new(BodyTimeout))));
        }
        Pin::new(&mut this.body)
            .poll_frame(cx)
            .map(|frame| frame.map(|result| result.map_err(Into::into)))
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
