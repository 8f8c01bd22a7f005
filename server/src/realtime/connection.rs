//! One WebSocket connection: authentication and origin check at the upgrade, then two
//! tasks — the reader (client frames: send, typing, read, resume, ping) and the writer
//! (the bounded outbound queue, replays for `resume`, pings) — ended together.
//!
//! Live events start after the client's first frame: send `resume` first to get what
//! was missed, in seq order, exactly once, then `synced`; any other first frame starts
//! live delivery at once. The writer keeps a per-conversation cursor and fills any gap
//! from the store, so each message reaches a connection once and in order.

use std::{collections::HashMap, net::IpAddr, time::Duration};

use axum::{
    extract::{
        State,
        ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade},
    },
    http::HeaderMap,
    response::Response,
};
use chatapp_protocol::{ClientEvent, ServerEvent};
use futures_util::{SinkExt, StreamExt, stream::SplitSink, stream::SplitStream};
use tokio::{sync::mpsc, time::Instant};

use super::{CloseReason, Outbound, encode, hub::Kill};
use crate::{
    AppState,
    auth::{AuthUser, ClientAddr, check_same_origin},
    error::{ApiError, ApiResult},
    messages::{self, message_view},
    users,
};

/// Largest client frame accepted (a 4,000-character body is at most 16 KB of UTF-8).
const MAX_FRAME: usize = 64 * 1024;
/// Messages read from the store per query when replaying.
const REPLAY_PAGE: i64 = 500;
/// At most one `typing` per conversation per connection in this interval.
const TYPING_INTERVAL: Duration = Duration::from_secs(2);

/// The WebSocket (events in `shared/DESIGN.md`): Bearer token or session cookie; a cookie
/// session must come from this server's origin.
#[utoipa::path(get, path = "/api/ws", tag = "realtime",
    responses(
        (status = 101, description = "Switching to the WebSocket protocol"),
        (status = 401, body = chatapp_protocol::ErrorBody),
        (status = 403, description = "Cookie session from a foreign origin", body = chatapp_protocol::ErrorBody),
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
    let tracker = state.websockets.clone();
    Ok(ws
        .read_buffer_size(4 * 1024)
        .write_buffer_size(0)
        .max_message_size(MAX_FRAME)
        .max_frame_size(MAX_FRAME)
        .on_upgrade(move |socket| tracker.track_future(run(state, auth, addr, socket))))
}

/// How the writer starts delivering.
enum Control {
    /// Replay after these cursors, send `synced`, then go live.
    Resume(Vec<(i64, i64)>),
    /// Go live now.
    Live,
}

async fn run(state: AppState, auth: AuthUser, addr: IpAddr, mut socket: WebSocket) {
    let user = auth.user;
    let user_id = user.id;
    let Some(reg) = state.hub.register(user_id, auth.session_id, addr) else {
        // Admitted before the upgrade, but others got there first.
        let _ = socket
            .send(close_message(CloseReason::TooManyConnections))
            .await;
        return;
    };
    if reg.first {
        state.came_online(user_id).await;
    }
    let (sink, stream) = socket.split();
    let (ctrl_tx, ctrl_rx) = mpsc::channel(4);
    let hello = encode(&ServerEvent::Hello {
        user: users::me(&user, true),
    });
    let writer = Writer {
        state: state.clone(),
        user_id,
        sink,
        cursors: HashMap::new(),
    };
    let kill = reg.kill.clone();
    let mut write_task = tokio::spawn(writer.run(hello, reg.rx, ctrl_rx, kill.clone()));
    let reader = Reader {
        state: state.clone(),
        user_id,
        conn_id: reg.id,
        ctrl: Some(ctrl_tx),
        typing: HashMap::new(),
    };
    let writer_done = tokio::select! {
        reason = reader.run(stream, kill.clone()) => {
            if let Some(reason) = reason {
                kill.kill(reason);
            }
            false
        }
        _ = &mut write_task => true,
    };
    // Ends the writer (with the close frame of the first reason given, if any).
    kill.kill(CloseReason::Normal);
    // Give the writer a moment to send its close frame (never poll a finished task again).
    if !writer_done
        && tokio::time::timeout(Duration::from_secs(2), &mut write_task)
            .await
            .is_err()
    {
        write_task.abort();
    }
    if state.hub.unregister(user_id, reg.id) {
        state.went_offline(user_id).await;
    }
    tracing::debug!(user_id, conn = reg.id, "connection closed");
}

struct Reader {
    state: AppState,
    user_id: i64,
    conn_id: u64,
    /// Until the first frame: how the writer is told to start.
    ctrl: Option<mpsc::Sender<Control>>,
    /// Last `typing` relayed per conversation.
    typing: HashMap<i64, Instant>,
}

impl Reader {
    /// Reads client frames until the connection ends; why the server should close it,
    /// if it should.
    async fn run(mut self, mut stream: SplitStream<WebSocket>, kill: Kill) -> Option<CloseReason> {
        let idle = self.state.config.ws_ping_interval() * 5 / 2;
        loop {
            let next = tokio::select! {
                () = kill.killed() => return None,
                next = tokio::time::timeout(idle, stream.next()) => next,
            };
            let frame = match next {
                Err(_) => {
                    tracing::debug!(user_id = self.user_id, "no answer to pings; closing");
                    return Some(CloseReason::Unresponsive);
                }
                Ok(Some(Err(err))) => return read_error_reason(err),
                Ok(None | Some(Ok(Message::Close(_)))) => return None,
                Ok(Some(Ok(frame))) => frame,
            };
            match frame {
                Message::Text(text) => {
                    if !self.state.user_limits.check_frame(self.user_id) {
                        self.reply_error("rate_limited", "too many frames; slow down", None);
                        continue;
                    }
                    self.handle_text(&text).await;
                }
                Message::Binary(_) => {
                    self.reply_error("invalid_frame", "binary frames are not supported", None);
                }
                Message::Ping(_) | Message::Pong(_) => {}
                Message::Close(_) => return None,
            }
        }
    }

    fn reply(&self, item: Outbound) {
        self.state
            .hub
            .send_to_conn(self.user_id, self.conn_id, item);
    }

    fn reply_error(&self, code: &str, message: &str, client_id: Option<String>) {
        self.reply(Outbound::Event(encode(&ServerEvent::Error {
            code: code.to_owned(),
            message: message.to_owned(),
            client_id,
        })));
    }

    /// Starts the writer (once) the way the first frame asks.
    async fn start(&mut self, control: Control) {
        if let Some(ctrl) = self.ctrl.take() {
            let _ = ctrl.send(control).await;
        }
    }

    async fn handle_text(&mut self, text: &str) {
        let event = match serde_json::from_str::<ClientEvent>(text) {
            Ok(event) => event,
            Err(err) => {
                self.start(Control::Live).await;
                self.reply_error("invalid_frame", &format!("malformed frame: {err}"), None);
                return;
            }
        };
        match event {
            ClientEvent::Resume { cursors } => {
                let cursors: Vec<(i64, i64)> = cursors.into_iter().collect();
                match self.ctrl.take() {
                    Some(ctrl) => {
                        let _ = ctrl.send(Control::Resume(cursors)).await;
                    }
                    None => {
                        self.reply_error("invalid_frame", "resume must be the first frame", None)
                    }
                }
            }
            ClientEvent::Send {
                conversation_id,
                client_id,
                body,
            } => {
                self.start(Control::Live).await;
                self.send(conversation_id, client_id, body).await;
            }
            ClientEvent::Typing { conversation_id } => {
                self.start(Control::Live).await;
                self.typing(conversation_id).await;
            }
            ClientEvent::Read {
                conversation_id,
                seq,
            } => {
                self.start(Control::Live).await;
                if let Err(err) =
                    messages::mark_read(&self.state, self.user_id, conversation_id, seq).await
                {
                    self.reply_api_error(&err, None);
                }
            }
            ClientEvent::Ping => {
                self.start(Control::Live).await;
                self.reply(Outbound::Event(encode(&ServerEvent::Pong)));
            }
        }
    }

    fn reply_api_error(&self, err: &ApiError, client_id: Option<String>) {
        self.reply_error(err.code(), &err.to_string(), client_id);
    }

    async fn send(&mut self, conversation_id: i64, client_id: String, body: String) {
        let result = messages::send_text(
            &self.state,
            self.user_id,
            conversation_id,
            body,
            Some(client_id.clone()),
            Some(self.conn_id),
        )
        .await;
        match result {
            Ok((row, _)) => {
                let frame = encode(&ServerEvent::Ack {
                    client_id,
                    message: message_view(&row),
                });
                self.reply(Outbound::Message {
                    conversation_id,
                    seq: row.seq,
                    frame,
                    ack: true,
                });
            }
            Err(err) => self.reply_api_error(&err, Some(client_id)),
        }
    }

    async fn typing(&mut self, conversation_id: i64) {
        let now = Instant::now();
        if self
            .typing
            .get(&conversation_id)
            .is_some_and(|last| now.duration_since(*last) < TYPING_INTERVAL)
        {
            return;
        }
        match self.state.members_of(conversation_id).await {
            Ok(members) if members.contains(&self.user_id) => {
                self.typing.insert(conversation_id, now);
                self.state
                    .publish_typing(conversation_id, self.user_id)
                    .await;
            }
            Ok(_) => self.reply_api_error(&ApiError::NotFound, None),
            Err(err) => self.reply_api_error(&err.into(), None),
        }
    }
}

struct Writer {
    state: AppState,
    user_id: i64,
    sink: SplitSink<WebSocket, Message>,
    /// conversation id → highest seq this connection has been sent.
    cursors: HashMap<i64, i64>,
}

type WsResult = Result<(), axum::Error>;

impl Writer {
    async fn run(
        mut self,
        hello: Utf8Bytes,
        mut rx: mpsc::Receiver<Outbound>,
        mut ctrl: mpsc::Receiver<Control>,
        kill: Kill,
    ) {
        if self.sink.send(Message::Text(hello)).await.is_err() {
            return;
        }
        let mut ping = tokio::time::interval(self.state.config.ws_ping_interval());
        ping.reset();
        // Wait for the client's first frame.
        let control = loop {
            tokio::select! {
                () = kill.killed() => return self.close(&kill).await,
                control = ctrl.recv() => break control,
                _ = ping.tick() => if self.sink.send(Message::Ping(Default::default())).await.is_err() { return },
            }
        };
        if self.go_live().await.is_err() {
            return;
        }
        if let Some(Control::Resume(cursors)) = control {
            if self.resume(cursors).await.is_err() {
                return;
            }
        }
        loop {
            tokio::select! {
                () = kill.killed() => return self.close(&kill).await,
                item = rx.recv() => {
                    let Some(item) = item else { return };
                    if self.deliver_all(item, &mut rx).await.is_err() {
                        return;
                    }
                }
                _ = ping.tick() => {
                    if self.sink.send(Message::Ping(Default::default())).await.is_err() {
                        return;
                    }
                }
            }
        }
    }

    async fn close(mut self, kill: &Kill) {
        let reason = kill.reason().unwrap_or(CloseReason::Shutdown);
        let _ = tokio::time::timeout(
            Duration::from_secs(1),
            self.sink.send(close_message(reason)),
        )
        .await;
    }

    /// Writes `first` and whatever else is queued, then flushes once.
    async fn deliver_all(
        &mut self,
        first: Outbound,
        rx: &mut mpsc::Receiver<Outbound>,
    ) -> WsResult {
        self.deliver(first).await?;
        while let Ok(item) = rx.try_recv() {
            self.deliver(item).await?;
        }
        self.sink.flush().await
    }

    async fn deliver(&mut self, item: Outbound) -> WsResult {
        match item {
            Outbound::Event(frame) => self.sink.feed(Message::Text(frame)).await,
            Outbound::Message {
                conversation_id,
                seq,
                frame,
                ack,
            } => {
                let cursor = match self.cursors.get(&conversation_id).copied() {
                    Some(cursor) => Some(cursor),
                    None => self.start_position(conversation_id).await?,
                };
                let Some(cursor) = cursor else {
                    // Not a member (routed by a list read before a removal): only the
                    // sender's own ack may still go out.
                    if ack {
                        self.sink.feed(Message::Text(frame)).await?;
                    }
                    return Ok(());
                };
                if seq <= cursor {
                    // Already sent; an ack must still reach the sender.
                    if ack {
                        self.sink.feed(Message::Text(frame)).await?;
                    }
                    return Ok(());
                }
                if seq > cursor + 1 {
                    self.replay(conversation_id, cursor, seq - 1).await?;
                }
                self.cursors.insert(conversation_id, seq);
                self.sink.feed(Message::Text(frame)).await
            }
        }
    }

    /// Going live: every conversation of the user starts at its last seq as of now (a
    /// `resume` then moves the ones it names back to the client's cursors). Messages
    /// published later in any order are then delivered from there on, gaps filled.
    async fn go_live(&mut self) -> WsResult {
        let positions = self
            .state
            .store
            .live_positions(self.user_id)
            .await
            .map_err(|err| {
                tracing::warn!(error = %err, "cannot read live positions; closing");
                axum::Error::new(err)
            })?;
        for (conversation_id, last_seq) in positions {
            self.cursors.entry(conversation_id).or_insert(last_seq);
        }
        Ok(())
    }

    /// Where delivery starts in a conversation this connection has no cursor for (joined
    /// or created after going live): the conversation's last seq when the user joined.
    /// `None` when the user is not a member.
    async fn start_position(&mut self, conversation_id: i64) -> Result<Option<i64>, axum::Error> {
        let joined = self
            .state
            .store
            .joined_seq(conversation_id, self.user_id)
            .await
            .map_err(|err| {
                tracing::warn!(error = %err, "cannot read a membership; closing");
                axum::Error::new(err)
            })?;
        if let Some(joined) = joined {
            self.cursors.insert(conversation_id, joined);
        }
        Ok(joined)
    }

    /// Sends the stored messages of a conversation with `after < seq <= until`.
    async fn replay(&mut self, conversation_id: i64, mut after: i64, until: i64) -> WsResult {
        while after < until {
            let rows = match self
                .state
                .store
                .messages_after(conversation_id, after, REPLAY_PAGE.min(until - after))
                .await
            {
                Ok(rows) => rows,
                Err(err) => {
                    tracing::warn!(error = %err, "replay failed; closing so the client resumes");
                    return Err(axum::Error::new(err));
                }
            };
            let Some(last) = rows.last().map(|r| r.seq) else {
                break;
            };
            for row in &rows {
                self.sink
                    .feed(Message::Text(encode(&ServerEvent::Message {
                        message: message_view(row),
                    })))
                    .await?;
            }
            after = last;
            self.cursors.insert(conversation_id, last);
        }
        Ok(())
    }

    /// Replays every message after each cursor of a conversation the user belongs to,
    /// then `synced`.
    async fn resume(&mut self, cursors: Vec<(i64, i64)>) -> WsResult {
        for (conversation_id, after) in cursors {
            let last_seq = match self
                .state
                .store
                .membership(conversation_id, self.user_id)
                .await
            {
                Ok(row) => row.conversation.last_seq,
                Err(_) => {
                    let frame = encode(&ServerEvent::Error {
                        code: "not_found".into(),
                        message: format!("no conversation {conversation_id}"),
                        client_id: None,
                    });
                    self.sink.feed(Message::Text(frame)).await?;
                    continue;
                }
            };
            let after = after.max(0);
            self.cursors.insert(conversation_id, after);
            self.replay(conversation_id, after, last_seq).await?;
        }
        self.sink
            .feed(Message::Text(encode(&ServerEvent::Synced)))
            .await?;
        self.sink.flush().await
    }
}

fn close_message(reason: CloseReason) -> Message {
    Message::Close(Some(CloseFrame {
        code: reason.code(),
        reason: Utf8Bytes::from_static(reason.text()),
    }))
}

/// Why a read failed, when the client broke a rule the close code should name.
fn read_error_reason(err: axum::Error) -> Option<CloseReason> {
    match err.into_inner().downcast::<tungstenite::Error>() {
        Ok(err) => match *err {
            tungstenite::Error::Capacity(_) => Some(CloseReason::FrameTooLarge),
            tungstenite::Error::Utf8(_) => Some(CloseReason::InvalidUtf8),
            _ => None,
        },
        Err(_) => None,
    }
}
