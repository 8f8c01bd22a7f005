//! One WebSocket connection, after the upgrade (`crate::socket` authenticates and
//! upgrades): two tasks — the reader (client frames: `resume` and `ping` here, the rest
//! handed to [`Frames`]) and the writer (the bounded outbound queue, replays for
//! `resume`, pings) — ended together.
//!
//! Live events start after the client's first frame: send `resume` first to get what
//! was missed, in seq order, exactly once, then `synced`; any other first frame starts
//! live delivery at once. The writer keeps a per-conversation cursor and fills any gap
//! from the store, so each message reaches a connection once and in order. Changes to
//! messages already sent (`message_updated`) have their own per-conversation cursor, the
//! conversation's change number, kept and filled the same way.

use std::{collections::HashMap, future::Future, net::IpAddr, time::Duration};

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use chatapp_protocol::{ClientEvent, ServerEvent};
use futures_util::{SinkExt, StreamExt, stream::SplitSink, stream::SplitStream};
use tokio::sync::{mpsc, oneshot};

use super::{CloseReason, Outbound, encode, hub::Kill};
use crate::{AppState, views};

/// Largest client frame accepted (a 4,000-character body is at most 16 KB of UTF-8).
pub const MAX_FRAME: usize = 64 * 1024;
/// Messages read from the store per query when replaying.
const REPLAY_PAGE: i64 = 500;

/// What a connection's client frames do, apart from `resume` and `ping` (which the
/// connection answers itself). `crate::socket` has the one implementation.
pub trait Frames: Send + 'static {
    /// Handles one frame (`send`, `typing`, `read`); answers go through `conn`.
    fn frame(&mut self, event: ClientEvent, conn: &Conn) -> impl Future<Output = ()> + Send;
}

/// One open connection, as its frame handler sees it: whose it is, and a way to answer
/// on it alone.
pub struct Conn {
    state: AppState,
    user_id: i64,
    id: u64,
}

impl Conn {
    pub fn user_id(&self) -> i64 {
        self.user_id
    }

    /// This connection's id in the hub (a message it sent is acknowledged to it, not
    /// delivered back).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Queues `item` for this connection only.
    pub fn reply(&self, item: Outbound) {
        self.state.hub.send_to_conn(self.user_id, self.id, item);
    }

    /// An `error` event for this connection.
    pub fn reply_error(&self, code: &str, message: &str, client_id: Option<String>) {
        self.reply(Outbound::Event(encode(&ServerEvent::Error {
            code: code.to_owned(),
            message: message.to_owned(),
            client_id,
        })));
    }
}

/// How the writer starts delivering.
enum Control {
    /// Replay after these cursors (messages, and changes where given), send `synced`,
    /// then go live.
    Resume {
        cursors: Vec<(i64, i64)>,
        changes: HashMap<i64, i64>,
    },
    /// Go live now.
    Live,
}

/// Runs an upgraded connection of `user_id` (session `session_id`, from `addr`) until it
/// ends: greets it with `hello`, hands its frames to `frames`, delivers its queue.
///
/// The socket is registered and split before the connection's future is made, so that
/// the future (kept for the connection's whole life) holds the two halves, not the
/// socket itself, and none of its rare paths sizes it: the first and last presence
/// changes are boxed.
pub fn run<F: Frames>(
    state: AppState,
    user_id: i64,
    session_id: i64,
    addr: IpAddr,
    hello: Utf8Bytes,
    frames: F,
    socket: WebSocket,
) -> impl Future<Output = ()> + Send {
    let reg = state.hub.register(user_id, session_id, addr);
    let (mut sink, stream) = socket.split();
    async move {
        let Some(reg) = reg else {
            // Admitted before the upgrade, but others got there first.
            let _ = sink
                .send(close_message(CloseReason::TooManyConnections))
                .await;
            return;
        };
        if reg.first {
            Box::pin(state.came_online(user_id)).await;
        }
        // Said once, by the first frame: a oneshot, not a queue (an idle connection keeps it).
        let (ctrl_tx, ctrl_rx) = oneshot::channel();
        let writer = Writer {
            state: state.clone(),
            user_id,
            sink,
            cursors: HashMap::new(),
            changes: HashMap::new(),
        };
        let kill = reg.kill.clone();
        let mut write_task = tokio::spawn(writer.run(hello, reg.rx, ctrl_rx, kill.clone()));
        let reader = Reader {
            conn: Conn {
                state: state.clone(),
                user_id,
                id: reg.id,
            },
            ctrl: Some(ctrl_tx),
            frames,
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
            Box::pin(state.went_offline(user_id)).await;
        }
        tracing::debug!(user_id, conn = reg.id, "connection closed");
    }
}

struct Reader<F> {
    conn: Conn,
    /// Until the first frame: how the writer is told to start.
    ctrl: Option<oneshot::Sender<Control>>,
    frames: F,
}

impl<F: Frames> Reader<F> {
    /// Reads client frames until the connection ends; why the server should close it,
    /// if it should.
    async fn run(mut self, mut stream: SplitStream<WebSocket>, kill: Kill) -> Option<CloseReason> {
        let idle = self.conn.state.config.ws_ping_interval() * 5 / 2;
        // One kill future and one idle timer for the connection's life, not one of each
        // per frame: moving the timer's deadline later does not touch the timer wheel.
        let killed = kill.killed();
        let silence = tokio::time::sleep(idle);
        tokio::pin!(killed, silence);
        loop {
            let next = tokio::select! {
                () = &mut killed => return None,
                () = &mut silence => {
                    tracing::debug!(user_id = self.conn.user_id, "no answer to pings; closing");
                    return Some(CloseReason::Unresponsive);
                }
                next = stream.next() => next,
            };
            silence.as_mut().reset(tokio::time::Instant::now() + idle);
            let frame = match next {
                Some(Err(err)) => return read_error_reason(err),
                None | Some(Ok(Message::Close(_))) => return None,
                Some(Ok(frame)) => frame,
            };
            match frame {
                Message::Text(text) => {
                    if !self.conn.state.user_limits.check_frame(self.conn.user_id) {
                        self.conn
                            .reply_error("rate_limited", "too many frames; slow down", None);
                        continue;
                    }
                    self.handle_text(&text).await;
                }
                Message::Binary(_) => {
                    self.conn
                        .reply_error("invalid_frame", "binary frames are not supported", None);
                }
                Message::Ping(_) | Message::Pong(_) => {}
                Message::Close(_) => return None,
            }
        }
    }

    /// Starts the writer (once) the way the first frame asks.
    fn start(&mut self, control: Control) {
        if let Some(ctrl) = self.ctrl.take() {
            let _ = ctrl.send(control);
        }
    }

    async fn handle_text(&mut self, text: &str) {
        let event = match serde_json::from_str::<ClientEvent>(text) {
            Ok(event) => event,
            Err(err) => {
                self.start(Control::Live);
                self.conn
                    .reply_error("invalid_frame", &format!("malformed frame: {err}"), None);
                return;
            }
        };
        match event {
            ClientEvent::Resume { cursors, changes } => {
                let cursors: Vec<(i64, i64)> = cursors.into_iter().collect();
                let changes: HashMap<i64, i64> = changes.into_iter().collect();
                match self.ctrl.take() {
                    Some(ctrl) => {
                        let _ = ctrl.send(Control::Resume { cursors, changes });
                    }
                    None => self.conn.reply_error(
                        "invalid_frame",
                        "resume must be the first frame",
                        None,
                    ),
                }
            }
            ClientEvent::Ping => {
                self.start(Control::Live);
                self.conn.reply(Outbound::Event(encode(&ServerEvent::Pong)));
            }
            event => {
                self.start(Control::Live);
                // Boxed, as every path that reads the store here: an idle connection then
                // keeps only what waiting takes, not the largest state of a rare path.
                Box::pin(self.frames.frame(event, &self.conn)).await;
            }
        }
    }
}

struct Writer {
    state: AppState,
    user_id: i64,
    sink: SplitSink<WebSocket, Message>,
    /// conversation id → highest seq this connection has been sent.
    cursors: HashMap<i64, i64>,
    /// conversation id → the change number up to which this connection has every change
    /// of the messages at or below its cursor.
    changes: HashMap<i64, i64>,
}

type WsResult = Result<(), axum::Error>;

impl Writer {
    async fn run(
        mut self,
        hello: Utf8Bytes,
        mut rx: mpsc::Receiver<Outbound>,
        mut ctrl: oneshot::Receiver<Control>,
        kill: Kill,
    ) {
        if self.sink.send(Message::Text(hello)).await.is_err() {
            return;
        }
        let mut ping = tokio::time::interval(self.state.config.ws_ping_interval());
        ping.reset();
        let killed = kill.killed();
        tokio::pin!(killed);
        // Wait for the client's first frame.
        let control = loop {
            tokio::select! {
                () = &mut killed => return self.close(&kill).await,
                control = &mut ctrl => break control.ok(),
                _ = ping.tick() => if self.sink.send(Message::Ping(Default::default())).await.is_err() { return },
            }
        };
        if Box::pin(self.go_live()).await.is_err() {
            return;
        }
        if let Some(Control::Resume { cursors, changes }) = control
            && Box::pin(self.resume(cursors, changes)).await.is_err()
        {
            return;
        }
        loop {
            tokio::select! {
                () = &mut killed => return self.close(&kill).await,
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
                    None => Box::pin(self.start_position(conversation_id)).await?,
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
                    self.state.hub.count_gap_fill();
                    Box::pin(self.replay(conversation_id, cursor, seq - 1)).await?;
                }
                self.cursors.insert(conversation_id, seq);
                self.sink.feed(Message::Text(frame)).await
            }
            Outbound::Change {
                conversation_id,
                seq,
                rev,
                frame,
            } => Box::pin(self.deliver_change(conversation_id, seq, rev, frame)).await,
        }
    }

    /// A changed message: dropped if this connection has that change already; after a
    /// gap in the change numbers, the changes between are read from the store first; a
    /// message this connection has not been sent yet is sent as it is now instead.
    async fn deliver_change(
        &mut self,
        conversation_id: i64,
        seq: i64,
        rev: i64,
        frame: Utf8Bytes,
    ) -> WsResult {
        let cursor = match self.cursors.get(&conversation_id).copied() {
            Some(cursor) => Some(cursor),
            None => self.start_position(conversation_id).await?,
        };
        let Some(cursor) = cursor else {
            return Ok(());
        };
        let seen = self.changes.get(&conversation_id).copied().unwrap_or(0);
        if rev <= seen {
            return Ok(());
        }
        if rev > seen + 1 {
            self.state.hub.count_gap_fill();
            self.replay_changes(conversation_id, seen, rev - 1, cursor)
                .await?;
        }
        self.changes.insert(conversation_id, rev);
        if seq > cursor {
            // Not sent yet (its `message` is still on its way from another instance):
            // sent now, as it is, which includes this change.
            self.state.hub.count_gap_fill();
            return self.replay(conversation_id, cursor, seq).await;
        }
        self.sink.feed(Message::Text(frame)).await
    }

    /// Sends the messages at or below `max_seq` whose last change is in `after < rev <=
    /// until`, in change order, as `message_updated`.
    async fn replay_changes(
        &mut self,
        conversation_id: i64,
        mut after: i64,
        until: i64,
        max_seq: i64,
    ) -> WsResult {
        while after < until {
            let rows = match self
                .state
                .store
                .changes_after(conversation_id, after, until, max_seq, REPLAY_PAGE)
                .await
            {
                Ok(rows) => rows,
                Err(err) => {
                    tracing::warn!(error = %err, "replay failed; closing so the client resumes");
                    return Err(axum::Error::new(err));
                }
            };
            let Some(last) = rows.last().map(|r| r.rev) else {
                break;
            };
            for row in &rows {
                self.sink
                    .feed(Message::Text(encode(&ServerEvent::MessageUpdated {
                        message: views::message(row),
                    })))
                    .await?;
            }
            after = last;
        }
        self.changes
            .entry(conversation_id)
            .and_modify(|c| *c = (*c).max(until))
            .or_insert(until);
        Ok(())
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
        for (conversation_id, last_seq, last_change) in positions {
            self.cursors.entry(conversation_id).or_insert(last_seq);
            self.changes.entry(conversation_id).or_insert(last_change);
        }
        Ok(())
    }

    /// Where delivery starts in a conversation this connection has no cursor for (joined
    /// or created after going live): the conversation's last seq (and last change) when
    /// the user joined. `None` when the user is not a member.
    async fn start_position(&mut self, conversation_id: i64) -> Result<Option<i64>, axum::Error> {
        let joined = self
            .state
            .store
            .joined_at(conversation_id, self.user_id)
            .await
            .map_err(|err| {
                tracing::warn!(error = %err, "cannot read a membership; closing");
                axum::Error::new(err)
            })?;
        let Some((seq, change)) = joined else {
            return Ok(None);
        };
        self.cursors.insert(conversation_id, seq);
        self.changes.insert(conversation_id, change);
        Ok(Some(seq))
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
                        message: views::message(row),
                    })))
                    .await?;
            }
            after = last;
            self.cursors.insert(conversation_id, last);
        }
        Ok(())
    }

    /// Replays every message after each cursor of a conversation the user belongs to,
    /// and, where the client gave a change cursor, every change since of the messages it
    /// has, then `synced`.
    async fn resume(&mut self, cursors: Vec<(i64, i64)>, changes: HashMap<i64, i64>) -> WsResult {
        for (conversation_id, after) in cursors {
            // The last change is read before the messages are: a message replayed below
            // is at least as new as it, and changes after it arrive live.
            let (last_seq, last_change) = match self
                .state
                .store
                .membership(conversation_id, self.user_id)
                .await
            {
                Ok(row) => (row.conversation.last_seq, row.conversation.last_change),
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
            self.changes.insert(conversation_id, last_change);
            self.replay(conversation_id, after, last_seq).await?;
            if let Some(&seen) = changes.get(&conversation_id)
                && seen < last_change
            {
                self.replay_changes(conversation_id, seen.max(0), last_change, after)
                    .await?;
            }
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
