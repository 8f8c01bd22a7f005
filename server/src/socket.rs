//! `GET /api/ws`: the WebSocket route. Like the REST handlers it authenticates (Bearer or
//! cookie, same origin for cookies), admits, and hands the client's frames to the domain
//! (`send` to the message writer, `read` to the read state, `typing` to the members);
//! the connection itself (queues, resume, close codes) is `realtime`'s.

use std::{collections::HashMap, time::Duration};

use axum::{
    extract::{State, ws::WebSocketUpgrade},
    http::HeaderMap,
    response::Response,
};
use chatapp_protocol::{ClientEvent, ServerEvent};
use tokio::time::Instant;

use crate::{
    AppState,
    auth::{AuthUser, ClientAddr, check_same_origin},
    error::{ApiError, ApiResult},
    events::Change,
    messages::{self, writer::Origin},
    realtime::{
        Conn, Frames,
        connection::{self, MAX_FRAME},
        encode,
    },
    views,
};

/// Initial read buffer of a connection (see `ws_handler`).
const READ_BUFFER: usize = 1024;

/// At most one `typing` per conversation per connection in this interval.
const TYPING_INTERVAL: Duration = Duration::from_secs(2);

/// The WebSocket (events in `docs/ARCHITECTURE.md` and `protocol`): Bearer token or
/// session cookie; a cookie session must come from this server's origin.
#[utoipa::path(get, path = "/api/ws", tag = "realtime",
    responses(
        (status = 101, description = "Switching to the WebSocket protocol"),
        (status = 400, description = "Not a WebSocket handshake (the `Connection`, `Upgrade`, `Sec-WebSocket-Version` or `Sec-WebSocket-Key` header is missing or wrong); a plain-text body", body = String, content_type = "text/plain"),
        (status = 401, description = "Not signed in: no, an unknown or an expired token or cookie", body = chatapp_protocol::ErrorBody),
        (status = 403, description = "Session cookie without a same-origin `Origin`", body = chatapp_protocol::ErrorBody),
        (status = 429, description = "Too many open connections of this user or address (`too_many_connections`)", body = chatapp_protocol::ErrorBody),
        (status = 500, description = "Internal error", body = chatapp_protocol::ErrorBody),
        (status = 507, description = "The server's storage is full (recording the session's use failed)", body = chatapp_protocol::ErrorBody),
    ))]
pub async fn ws_handler(
    State(state): State<AppState>,
    auth: AuthUser,
    ClientAddr(addr): ClientAddr,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> ApiResult<Response> {
    if auth.via_cookie {
        check_same_origin(&headers, &state)?;
    }
    if !state.hub.admits(auth.id(), addr) {
        return Err(ApiError::TooManyConnections);
    }
    let hello = encode(&ServerEvent::Hello {
        user: views::me(&auth.user, true),
    });
    let frames = Domain {
        state: state.clone(),
        typing: HashMap::new(),
    };
    let tracker = state.websockets.clone();
    let (user_id, session_id) = (auth.id(), auth.session_id);
    Ok(ws
        // What tungstenite reads into (kept per connection, idle or not): a client's frames
        // are a few hundred bytes; a larger one makes it grow as far as that frame needs.
        .read_buffer_size(READ_BUFFER)
        // The frames of one wake-up collect here and go out in one write when the writer
        // task flushes (or at 16 KiB), instead of one system call per frame.
        .write_buffer_size(16 * 1024)
        .max_message_size(MAX_FRAME)
        .max_frame_size(MAX_FRAME)
        .on_upgrade(move |socket| {
            tracker.track_future(connection::run(
                state, user_id, session_id, addr, hello, frames, socket,
            ))
        }))
}

/// What one connection's frames do.
struct Domain {
    state: AppState,
    /// Last `typing` relayed per conversation.
    typing: HashMap<i64, Instant>,
}

impl Frames for Domain {
    async fn frame(&mut self, event: ClientEvent, conn: &Conn) {
        match event {
            ClientEvent::Send {
                conversation_id,
                client_id,
                body,
                reply_to_id,
            } => {
                let text = messages::NewText {
                    conversation_id,
                    body,
                    client_id: Some(client_id),
                    reply_to_id,
                };
                self.send(conn, text).await;
            }
            ClientEvent::Typing { conversation_id } => self.typing(conn, conversation_id).await,
            ClientEvent::Read {
                conversation_id,
                seq,
            } => {
                if let Err(err) =
                    messages::mark_read(&self.state, conn.user_id(), conversation_id, seq).await
                {
                    reply_api_error(conn, &err, None);
                }
            }
            ClientEvent::Played {
                conversation_id,
                seq,
            } => {
                if let Err(err) =
                    messages::changes::played(&self.state, conn.user_id(), conversation_id, seq)
                        .await
                {
                    reply_api_error(conn, &err, None);
                }
            }
            // Answered by the connection itself.
            ClientEvent::Resume { .. } | ClientEvent::Ping => {}
        }
    }
}

fn reply_api_error(conn: &Conn, err: &ApiError, client_id: Option<String>) {
    conn.reply_error(err.code(), &err.to_string(), client_id);
}

impl Domain {
    async fn send(&mut self, conn: &Conn, text: messages::NewText) {
        let client_id = text.client_id.clone().unwrap_or_default();
        // The writer acknowledges on this connection, in seq order with what it delivers.
        let origin = Origin {
            user_id: conn.user_id(),
            conn_id: conn.id(),
            client_id: client_id.clone(),
        };
        if let Err(err) = messages::send_text(&self.state, conn.user_id(), text, Some(origin)).await
        {
            reply_api_error(conn, &err, Some(client_id));
        }
    }

    async fn typing(&mut self, conn: &Conn, conversation_id: i64) {
        let now = Instant::now();
        if self
            .typing
            .get(&conversation_id)
            .is_some_and(|last| now.duration_since(*last) < TYPING_INTERVAL)
        {
            return;
        }
        let user_id = conn.user_id();
        match self.state.members_of(conversation_id).await {
            Ok(members) if members.contains(&user_id) => {
                self.typing.insert(conversation_id, now);
                self.state
                    .publish(Change::Typing {
                        conversation_id,
                        user_id,
                    })
                    .await;
            }
            Ok(_) => reply_api_error(conn, &ApiError::NotFound, None),
            Err(err) => reply_api_error(conn, &err.into(), None),
        }
    }
}
