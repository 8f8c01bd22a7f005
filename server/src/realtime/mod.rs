//! Real-time transport: the hub of this instance's WebSocket connections (who is
//! connected, each connection's bounded queue, member caches) and the connection itself
//! (the two tasks, resume and replay, close codes). What the client's frames do and which
//! changes reach whom are not decided here: `crate::socket` handles the frames,
//! `crate::events` delivers the changes.

pub mod connection;
pub mod hub;

use axum::extract::ws::Utf8Bytes;
use chatapp_protocol::ServerEvent;

pub use connection::{Conn, Frames};
pub use hub::{CloseReason, Hub, Outbound};

/// Serialises an event once; the bytes are shared by every receiving connection.
pub fn encode(event: &ServerEvent) -> Utf8Bytes {
    Utf8Bytes::from(serde_json::to_string(event).unwrap_or_else(|err| {
        tracing::error!(error = %err, "event did not serialise");
        String::from(r#"{"type":"error","code":"internal","message":"event lost"}"#)
    }))
}
