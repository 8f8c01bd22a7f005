//! The generator's side of a connection: connect (TCP_NODELAY), start live delivery,
//! send at a fixed rate with the send time in the body, and record delivery latency.

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use chatapp_client::{Socket, WsStream, tungstenite::Message};
use chatapp_protocol::ClientEvent;
use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use serde::Deserialize;
use tokio::sync::watch;

/// A connection ready for live delivery, driven frame by frame (parsed lightly here, so
/// the generator stays cheap).
pub type Ws = WsStream;

/// Where connections go.
#[derive(Clone)]
pub enum Target {
    /// chatapp-server: Bearer token; `hello`, then `resume {}` → `synced`.
    Server { addr: String },
    /// The bare relay: user and group in the query string; no handshake events.
    Relay { addr: String },
}

/// Opens a connection ready for live delivery, through `chatapp-client`'s [`Socket`]
/// (TCP_NODELAY, the Bearer header, `hello`, `resume`).
pub async fn connect(target: &Target, token: &str, user: i64, group: i64) -> anyhow::Result<Ws> {
    match target {
        Target::Server { addr } => {
            let bearer = format!("Bearer {token}");
            let mut socket = Socket::open(
                &format!("ws://{addr}/api/ws"),
                &[("authorization", &bearer)],
            )
            .await?;
            socket.hello().await?;
            socket.resume(&Default::default()).await?;
            Ok(socket.into_inner())
        }
        Target::Relay { addr } => {
            let url = format!("ws://{addr}/api/ws?user={user}&group={group}");
            Ok(Socket::open(&url, &[]).await?.into_inner())
        }
    }
}

#[derive(Deserialize)]
struct Light<'a> {
    #[serde(rename = "type", borrow)]
    kind: &'a str,
    #[serde(borrow)]
    message: Option<LightMessage<'a>>,
}

#[derive(Deserialize)]
struct LightMessage<'a> {
    #[serde(borrow)]
    body: &'a str,
    #[serde(default)]
    sender_id: Option<i64>,
}

/// One load step, as seen by every connection.
#[derive(Clone, Copy, Debug)]
pub struct Step {
    /// Sends per second from this connection (0: none).
    pub per_conn_rate: f64,
    /// Sending starts.
    pub start: Instant,
    /// Latencies of messages sent from here on are recorded…
    pub measure_from: Instant,
    /// …until here, when sending stops.
    pub end: Instant,
    /// Which `load` run of this process it belongs to (client ids are unique per run).
    pub run: u64,
}

pub struct Stats {
    /// Send → receipt at each other member, µs.
    pub delivery: Histogram<u64>,
    /// Send → ack at the sender, µs.
    pub ack: Histogram<u64>,
    pub errors: u64,
    pub disconnects: u64,
    /// The connection's own messages that came back to it as `message` (not counted as
    /// deliveries).
    pub echoes: u64,
}

impl Stats {
    pub fn new() -> Self {
        Self {
            delivery: Histogram::new_with_bounds(1, 600_000_000, 3).expect("histogram bounds"),
            ack: Histogram::new_with_bounds(1, 600_000_000, 3).expect("histogram bounds"),
            errors: 0,
            disconnects: 0,
            echoes: 0,
        }
    }

    pub fn add(&mut self, other: &Stats) {
        let _ = self.delivery.add(&other.delivery);
        let _ = self.ack.add(&other.ack);
        self.errors += other.errors;
        self.disconnects += other.disconnects;
        self.echoes += other.echoes;
    }
}

/// Drives one connection (of user `me`) through the steps it is given until `steps`
/// closes.
pub async fn drive(
    mut ws: Ws,
    me: i64,
    conversation_id: i64,
    epoch: Instant,
    mut steps: watch::Receiver<Option<Step>>,
    stats: Arc<Mutex<Stats>>,
    phase: f64,
) {
    let mut counter: u64 = 0;
    let mut next_send: Option<Instant> = None;
    let mut step: Option<Step> = None;
    let mut window = (0u64, 0u64);
    loop {
        let sleep_until = next_send.unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
        tokio::select! {
            changed = steps.changed() => {
                if changed.is_err() {
                    return;
                }
                step = *steps.borrow_and_update();
                next_send = step.filter(|s| s.per_conn_rate > 0.0).map(|s| {
                    s.start + Duration::from_secs_f64(phase / s.per_conn_rate)
                });
                if let Some(s) = step {
                    window = (micros(epoch, s.measure_from), micros(epoch, s.end));
                }
            }
            () = tokio::time::sleep_until(sleep_until.into()) => {
                let Some(s) = step else { next_send = None; continue };
                let now = Instant::now();
                if now >= s.end {
                    next_send = None;
                    continue;
                }
                counter += 1;
                let frame = serde_json::to_string(&ClientEvent::Send {
                    conversation_id,
                    // Unique across runs on one database: a client id seen before is a
                    // retry, answered with the stored message and delivered to nobody.
                    client_id: format!("r{}-c{counter}", s.run),
                    body: micros(epoch, now).to_string(),
                    reply_to_id: None,
                })
                .unwrap_or_default();
                if ws.send(Message::text(frame)).await.is_err() {
                    lock(&stats).disconnects += 1;
                    return;
                }
                next_send = Some(sleep_until + Duration::from_secs_f64(1.0 / s.per_conn_rate));
            }
            frame = ws.next() => {
                let Some(Ok(frame)) = frame else {
                    lock(&stats).disconnects += 1;
                    return;
                };
                let Message::Text(text) = frame else { continue };
                let now = micros(epoch, Instant::now());
                let Ok(ev) = serde_json::from_str::<Light<'_>>(&text) else { continue };
                let own = ev.message.as_ref().and_then(|m| m.sender_id) == Some(me);
                let sent = ev.message.and_then(|m| m.body.parse::<u64>().ok());
                match (ev.kind, sent) {
                    ("message", Some(sent)) if own && sent >= window.0 && sent < window.1 => {
                        lock(&stats).echoes += 1;
                    }
                    ("message", Some(sent)) if sent >= window.0 && sent < window.1 => {
                        let _ = lock(&stats).delivery.record(now.saturating_sub(sent).max(1));
                    }
                    ("ack", Some(sent)) if sent >= window.0 && sent < window.1 => {
                        let _ = lock(&stats).ack.record(now.saturating_sub(sent).max(1));
                    }
                    ("error", _) => lock(&stats).errors += 1,
                    _ => {}
                }
            }
        }
    }
}

fn micros(epoch: Instant, t: Instant) -> u64 {
    u64::try_from(t.saturating_duration_since(epoch).as_micros()).unwrap_or(u64::MAX)
}

pub fn lock(stats: &Mutex<Stats>) -> std::sync::MutexGuard<'_, Stats> {
    stats.lock().unwrap_or_else(|e| e.into_inner())
}
