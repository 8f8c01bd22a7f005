//! The realtime connection's events, to the window: server events as `chatapp://event`
//! (the outbox's acknowledgements and refusals for good as `ack` and `error`, as a
//! browser's socket would get them), connection states as `chatapp://state`. A session
//! the server ended is forgotten here.

use chatapp_client::protocol::ServerEvent;
use chatapp_client::{ConnectionState, Event, OutboxEvent};
use serde::Serialize;
use tauri::{AppHandle, Emitter, Manager, Runtime};
use tokio::sync::mpsc;

use crate::session::Session;

pub const EVENT: &str = "chatapp://event";
pub const STATE: &str = "chatapp://state";

/// The connection state as the web UI's `ConnectionState`.
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum UiState {
    Connecting,
    Syncing,
    Live,
    Reconnecting { attempt: u32, retry_in_ms: u64 },
    Stopped,
    SessionEnded,
}

fn ui_state(s: &ConnectionState) -> UiState {
    match s {
        ConnectionState::Connecting { .. } => UiState::Connecting,
        ConnectionState::Syncing => UiState::Syncing,
        ConnectionState::Live => UiState::Live,
        ConnectionState::Reconnecting { attempt, delay, .. } => UiState::Reconnecting {
            attempt: *attempt,
            retry_in_ms: u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
        },
        ConnectionState::SessionEnded { .. } => UiState::SessionEnded,
        ConnectionState::Stopped => UiState::Stopped,
    }
}

/// What the window hears of a realtime event, if anything.
fn to_window(event: Event) -> Option<ServerEvent> {
    match event {
        Event::Server(e) => Some(e),
        Event::Outbox(OutboxEvent::Acked { client_id, message }) => {
            Some(ServerEvent::Ack { client_id, message })
        }
        Event::Outbox(OutboxEvent::Failed {
            pending,
            code,
            message,
        }) => Some(ServerEvent::Error {
            code,
            message,
            client_id: Some(pending.client_id),
        }),
        _ => None,
    }
}

/// Forwards `events` to the window until the connection ends.
pub fn spawn<R: Runtime>(app: AppHandle<R>, mut events: mpsc::Receiver<Event>) {
    tauri::async_runtime::spawn(async move {
        while let Some(event) = events.recv().await {
            if let Event::State(s) = &event {
                if matches!(s, ConnectionState::SessionEnded { .. }) {
                    app.state::<Session>().session_ended();
                }
                let _ = app.emit(STATE, ui_state(s));
                continue;
            }
            if let Some(e) = to_window(event) {
                let _ = app.emit(EVENT, e);
            }
        }
    });
}
