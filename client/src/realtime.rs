//! The managed realtime connection: one task that connects, resumes from its own cursors,
//! delivers each message once and in order, sends the outbox, and reconnects by itself
//! with backoff until the session ends or it is stopped. The app talks to it through a
//! [`Realtime`] handle and reads [`Event`]s from a bounded channel; a slow reader slows
//! the socket (and the server may then drop it as too slow: the client resumes, losing
//! nothing, since cursors move only when an event is handed over).

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::{Arc, Mutex, MutexGuard},
    time::{Duration, Instant},
};

use chatapp_protocol::{ClientEvent, Message, ServerEvent};
use futures_util::StreamExt;
use tokio::{
    sync::{Notify, mpsc, watch},
    task::JoinHandle,
};
use tokio_tungstenite::tungstenite::Message as Frame;

use crate::{
    Api, Backoff, ClientError,
    outbox::{Outbox, PendingMessage, Refusal, classify},
    sequencer::{Offer, Sequencer},
    socket::Socket,
};

/// How the realtime connection behaves; `Default` suits an app.
#[derive(Debug, Clone)]
pub struct RealtimeOptions {
    pub backoff: Backoff,
    /// Cursors saved from an earlier run: conversation id → last seq the app has.
    pub cursors: BTreeMap<i64, i64>,
    /// Change cursors saved from an earlier run ([`Realtime::changes`]): conversation id →
    /// the last change number the app has.
    pub changes: BTreeMap<i64, i64>,
    /// An outbox saved from an earlier run ([`Realtime::pending`]).
    pub pending: Vec<PendingMessage>,
    /// Capacity of the event channel.
    pub event_buffer: usize,
    /// Most outbox messages awaiting an ack at once.
    pub outbox_window: usize,
    /// An unacknowledged send is sent again (same `client_id`) after this.
    pub ack_timeout: Duration,
    /// The client pings this often; a server silent for 2.5 times as long is dropped.
    pub ping_interval: Duration,
    /// Before each connection, read the conversation list so every conversation has a
    /// cursor in `resume`: a conversation never seen starts at its last seq on the first
    /// connection, and at the user's read position on later ones (joined while away).
    pub sync_conversations: bool,
}

impl Default for RealtimeOptions {
    fn default() -> Self {
        Self {
            backoff: Backoff::default(),
            cursors: BTreeMap::new(),
            changes: BTreeMap::new(),
            pending: Vec::new(),
            event_buffer: 1024,
            outbox_window: 32,
            ack_timeout: Duration::from_secs(20),
            ping_interval: Duration::from_secs(20),
            sync_conversations: true,
        }
    }
}

/// Where the connection stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectionState {
    /// Opening connection attempt `attempt` (1 after a drop or at start).
    Connecting { attempt: u32 },
    /// Connected; `resume` sent, missed messages arriving.
    Syncing,
    /// Caught up (`synced`): live events flow and the outbox is being sent.
    Live,
    /// Dropped (`reason`); attempt `attempt` follows after `delay`.
    Reconnecting {
        attempt: u32,
        delay: Duration,
        reason: String,
    },
    /// The server ended the session (close 4001 or 401): sign in again. Final.
    SessionEnded { reason: String },
    /// Stopped by [`Realtime::shutdown`] or by dropping every handle. Final.
    Stopped,
}

/// What happened to an outbox message.
// `Acked` holds a whole message (a photo's sizes and thumbnail included), the others a
// few strings: each event is moved once through the channel, so a box would only add an
// allocation per acknowledgement.
#[expect(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum OutboxEvent {
    /// Stored by the server; `message` is the stored message (delivered here instead of a
    /// [`ServerEvent::Message`], exactly once).
    Acked { client_id: String, message: Message },
    /// Refused for now (`rate_limited`, `storage_full`…): sent again after `retry_in`.
    Deferred {
        client_id: String,
        code: String,
        message: String,
        retry_in: Duration,
    },
    /// Refused for good (e.g. `not_found`, `invalid_body`): removed from the outbox.
    Failed {
        pending: PendingMessage,
        code: String,
        message: String,
    },
}

/// Out of the realtime connection, in order.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Event {
    /// A server event. `message` events come each once, in seq order per conversation;
    /// `ack`, `pong` and the errors of outbox sends are not passed on (see
    /// [`Event::Outbox`]).
    Server(ServerEvent),
    State(ConnectionState),
    Outbox(OutboxEvent),
}

struct Shared {
    seq: Sequencer<Message>,
    outbox: Outbox,
    /// Conversation id → the last change number delivered.
    changes: BTreeMap<i64, i64>,
}

fn lock(shared: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    shared.lock().unwrap_or_else(|e| e.into_inner())
}

/// Handle to the realtime connection. Cheap to clone; the connection stops when the
/// last handle is dropped.
#[derive(Clone)]
pub struct Realtime {
    inner: Arc<Inner>,
}

struct Inner {
    shared: Arc<Mutex<Shared>>,
    /// The outbox has something new.
    wake: Arc<Notify>,
    /// Skip the backoff wait / drop the connection and connect again.
    reconnect: Arc<Notify>,
    stop: watch::Sender<bool>,
    cmds: mpsc::Sender<ClientEvent>,
    state: watch::Receiver<ConnectionState>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.stop.send_replace(true);
    }
}

impl Realtime {
    /// Starts the connection task (inside a tokio runtime) for the session of `api`.
    pub fn start(api: Api, options: RealtimeOptions) -> (Self, mpsc::Receiver<Event>) {
        let (events_tx, events_rx) = mpsc::channel(options.event_buffer.max(1));
        let (state_tx, state_rx) = watch::channel(ConnectionState::Connecting { attempt: 1 });
        let (stop_tx, stop_rx) = watch::channel(false);
        let (cmds_tx, cmds_rx) = mpsc::channel(64);
        let fresh = options.cursors.is_empty();
        let shared = Arc::new(Mutex::new(Shared {
            seq: Sequencer::new(options.cursors.clone()),
            outbox: Outbox::new(options.pending.clone()),
            changes: options.changes.clone(),
        }));
        let wake = Arc::new(Notify::new());
        let reconnect = Arc::new(Notify::new());
        let task = Task {
            api,
            options,
            shared: Arc::clone(&shared),
            events: events_tx,
            state: state_tx,
            wake: Arc::clone(&wake),
            reconnect: Arc::clone(&reconnect),
            stop: stop_rx,
            cmds: cmds_rx,
            me: None,
            fresh,
            conn: 0,
        };
        let handle = tokio::spawn(task.run());
        let inner = Inner {
            shared,
            wake,
            reconnect,
            stop: stop_tx,
            cmds: cmds_tx,
            state: state_rx,
            task: Mutex::new(Some(handle)),
        };
        (
            Self {
                inner: Arc::new(inner),
            },
            events_rx,
        )
    }

    /// Queues a text message; its `client_id` at once. It is sent whenever the connection
    /// is live, again on every reconnection, until acked ([`OutboxEvent::Acked`]) or
    /// refused for good ([`OutboxEvent::Failed`]).
    pub fn send(&self, conversation_id: i64, body: impl Into<String>) -> String {
        let msg = PendingMessage::new(conversation_id, body.into());
        let client_id = msg.client_id.clone();
        self.enqueue(msg);
        client_id
    }

    /// Queues a message as it is (e.g. a failed one the person retries: same `client_id`).
    pub fn enqueue(&self, msg: PendingMessage) {
        lock(&self.inner.shared).outbox.push(msg);
        self.inner.wake.notify_one();
    }

    /// Removes a message from the outbox (it may still be stored if already sent).
    pub fn cancel(&self, client_id: &str) -> Option<PendingMessage> {
        lock(&self.inner.shared).outbox.remove(client_id)
    }

    /// The outbox, oldest first: save it to restore it with [`RealtimeOptions::pending`].
    pub fn pending(&self) -> Vec<PendingMessage> {
        lock(&self.inner.shared).outbox.snapshot()
    }

    /// Conversation id → last change delivered: save them for
    /// [`RealtimeOptions::changes`].
    pub fn changes(&self) -> BTreeMap<i64, i64> {
        lock(&self.inner.shared).changes.clone()
    }

    /// Queues a reply to message `reply_to_id`; returns its `client_id`.
    pub fn reply(&self, conversation_id: i64, body: impl Into<String>, reply_to_id: i64) -> String {
        let msg = PendingMessage::reply(conversation_id, body.into(), reply_to_id);
        let client_id = msg.client_id.clone();
        self.enqueue(msg);
        client_id
    }

    /// Conversation id → last seq delivered: save them for [`RealtimeOptions::cursors`].
    pub fn cursors(&self) -> BTreeMap<i64, i64> {
        lock(&self.inner.shared).seq.cursors().clone()
    }

    /// Moves a conversation's cursor forward (e.g. after loading its history over REST);
    /// messages up to `seq` are then not delivered again.
    pub fn set_cursor(&self, conversation_id: i64, seq: i64) {
        let _ = lock(&self.inner.shared).seq.advance(conversation_id, seq);
    }

    /// Tells the conversation you are typing (only while connected; dropped otherwise).
    pub fn typing(&self, conversation_id: i64) {
        let _ = self
            .inner
            .cmds
            .try_send(ClientEvent::Typing { conversation_id });
    }

    /// Marks read over the socket while connected (use [`Api::mark_read`] to be sure).
    pub fn read(&self, conversation_id: i64, seq: i64) {
        let _ = self.inner.cmds.try_send(ClientEvent::Read {
            conversation_id,
            seq,
        });
    }

    /// Says you played a voice message, over the socket while connected (use
    /// [`Api::mark_played`] to be sure).
    pub fn played(&self, conversation_id: i64, seq: i64) {
        let _ = self.inner.cmds.try_send(ClientEvent::Played {
            conversation_id,
            seq,
        });
    }

    pub fn state(&self) -> ConnectionState {
        self.inner.state.borrow().clone()
    }

    /// Follows state changes (the same ones also come as [`Event::State`]).
    pub fn watch_state(&self) -> watch::Receiver<ConnectionState> {
        self.inner.state.clone()
    }

    /// Connect again now: skips a backoff wait, or replaces a live connection (after the
    /// machine wakes up or the network changes).
    pub fn reconnect_now(&self) {
        self.inner.reconnect.notify_one();
    }

    /// Stops the connection (closing it politely) and waits for the task to end.
    pub async fn shutdown(&self) {
        self.inner.stop.send_replace(true);
        let task = self
            .inner
            .task
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(task) = task {
            let _ = task.await;
        }
    }
}

/// Why a connection ended.
enum End {
    Stopped,
    SessionEnded(String),
    Dropped { live: bool, reason: String },
}

struct Task {
    api: Api,
    options: RealtimeOptions,
    shared: Arc<Mutex<Shared>>,
    events: mpsc::Sender<Event>,
    state: watch::Sender<ConnectionState>,
    wake: Arc<Notify>,
    reconnect: Arc<Notify>,
    stop: watch::Receiver<bool>,
    cmds: mpsc::Receiver<ClientEvent>,
    /// The signed-in user (from `hello`): whose outbox messages are ours.
    me: Option<i64>,
    /// Never live yet and started without cursors.
    fresh: bool,
    /// Connection number, so the outbox knows what was sent on which.
    conn: u64,
}

fn close_reason(code: Option<u16>) -> String {
    match code {
        Some(1012) => "server restarting (1012)".to_owned(),
        Some(1013) => "too slow to keep up (1013)".to_owned(),
        Some(1008) => "too many connections (1008)".to_owned(),
        Some(1009) => "frame too large (1009)".to_owned(),
        Some(1007) => "invalid UTF-8 (1007)".to_owned(),
        Some(code) => format!("closed by the server ({code})"),
        None => "connection lost".to_owned(),
    }
}

/// Delay before resending a message refused for now, by how often it was sent.
fn retry_delay(attempts: u32) -> Duration {
    Backoff {
        initial: Duration::from_secs(1),
        max: Duration::from_secs(30),
        factor: 2.0,
        jitter: 0.3,
    }
    .delay(attempts.max(1))
}

impl Task {
    async fn run(mut self) {
        let mut attempt: u32 = 1;
        loop {
            if *self.stop.borrow() {
                break;
            }
            self.set_state(ConnectionState::Connecting { attempt })
                .await;
            match self.session().await {
                End::Stopped => break,
                End::SessionEnded(reason) => {
                    tracing::info!(%reason, "session ended; not reconnecting");
                    self.set_state(ConnectionState::SessionEnded { reason })
                        .await;
                    return;
                }
                End::Dropped { live, reason } => {
                    if live {
                        attempt = 1;
                    } else {
                        attempt = attempt.saturating_add(1);
                    }
                    let delay = self.options.backoff.delay(attempt);
                    tracing::debug!(%reason, attempt, ?delay, "reconnecting");
                    self.set_state(ConnectionState::Reconnecting {
                        attempt,
                        delay,
                        reason,
                    })
                    .await;
                    tokio::select! {
                        () = tokio::time::sleep(delay) => {}
                        () = self.reconnect.notified() => {}
                        _ = self.stop.changed() => break,
                    }
                }
            }
        }
        self.set_state(ConnectionState::Stopped).await;
    }

    async fn set_state(&mut self, state: ConnectionState) {
        self.state.send_replace(state.clone());
        let _ = self.events.send(Event::State(state)).await;
    }

    /// Hands an event to the app; `Err` when nobody listens any more.
    async fn emit(&self, event: Event) -> Result<(), End> {
        self.events.send(event).await.map_err(|_| End::Stopped)
    }

    fn shared(&self) -> MutexGuard<'_, Shared> {
        lock(&self.shared)
    }

    fn refused(&self, err: &ClientError, live: bool) -> End {
        if err.is_session_ended() {
            End::SessionEnded(err.to_string())
        } else {
            End::Dropped {
                live,
                reason: err.to_string(),
            }
        }
    }

    /// Gives every conversation of the user a cursor before `resume`.
    async fn sync_conversations(&mut self) -> Result<(), End> {
        let list = self
            .api
            .conversations()
            .await
            .map_err(|e| self.refused(&e, false))?;
        let fresh = self.fresh;
        let mut shared = self.shared();
        let ids: BTreeSet<i64> = list.iter().map(|c| c.id).collect();
        for c in &list {
            let start = if fresh { c.last_seq } else { c.last_read_seq };
            shared.seq.set_if_absent(c.id, start);
            // Messages come as they are now; changes before this of older ones are not
            // this client's concern.
            shared.changes.entry(c.id).or_insert(c.last_change);
        }
        let gone: Vec<i64> = shared
            .seq
            .cursors()
            .keys()
            .filter(|id| !ids.contains(id))
            .copied()
            .collect();
        for id in gone {
            shared.seq.forget(id);
            shared.changes.remove(&id);
        }
        Ok(())
    }

    /// One connection, from connecting to its end.
    async fn session(&mut self) -> End {
        self.conn += 1;
        self.shared().seq.clear_held();
        if self.api.token().is_none() {
            return End::SessionEnded("not signed in".to_owned());
        }
        let mut stop = self.stop.clone();
        if self.options.sync_conversations {
            tokio::select! {
                _ = stop.changed() => return End::Stopped,
                synced = self.sync_conversations() => if let Err(end) = synced { return end },
            }
        }
        let connected = tokio::select! {
            _ = stop.changed() => return End::Stopped,
            connected = Socket::connect(&self.api) => connected,
        };
        let (mut socket, me) = match connected {
            Ok(ok) => ok,
            Err(err) => return self.refused(&err, false),
        };
        self.me = Some(me.id);
        if let Err(end) = self
            .emit(Event::Server(ServerEvent::Hello { user: me }))
            .await
        {
            return end;
        }
        let (cursors, changes) = {
            let shared = self.shared();
            (shared.seq.cursors().clone(), shared.changes.clone())
        };
        if let Err(err) = socket.send(&ClientEvent::Resume { cursors, changes }).await {
            return self.refused(&err, false);
        }
        self.set_state(ConnectionState::Syncing).await;
        let end = self.converse(&mut socket, &mut stop).await;
        if matches!(end, End::Stopped) {
            let _ = tokio::time::timeout(Duration::from_secs(1), socket.close()).await;
        }
        end
    }

    /// Reads and writes until the connection ends.
    async fn converse(&mut self, socket: &mut Socket, stop: &mut watch::Receiver<bool>) -> End {
        let mut live = false;
        let mut last_heard = Instant::now();
        let ping_every = self.options.ping_interval;
        let mut ping = tokio::time::interval_at((Instant::now() + ping_every).into(), ping_every);
        let wake = Arc::clone(&self.wake);
        let reconnect = Arc::clone(&self.reconnect);
        loop {
            let outbox_due = if live {
                self.shared().outbox.next_wakeup(self.options.ack_timeout)
            } else {
                None
            };
            let far = Instant::now() + Duration::from_secs(3600);
            let result = tokio::select! {
                _ = stop.changed() => return End::Stopped,
                () = reconnect.notified() => return End::Dropped { live, reason: "reconnect requested".to_owned() },
                frame = socket.get_mut().next() => {
                    last_heard = Instant::now();
                    match frame {
                        Some(Ok(Frame::Text(text))) => self.on_text(&text, socket, &mut live).await,
                        Some(Ok(Frame::Close(frame))) => {
                            let code = frame.map(|f| u16::from(f.code));
                            if code == Some(4001) {
                                return End::SessionEnded("session ended by the server (4001)".to_owned());
                            }
                            return End::Dropped { live, reason: close_reason(code) };
                        }
                        Some(Ok(_)) => Ok(()),
                        Some(Err(err)) => return End::Dropped { live, reason: ClientError::from_ws(err).to_string() },
                        None => return End::Dropped { live, reason: close_reason(None) },
                    }
                }
                () = wake.notified(), if live => self.pump(socket).await,
                () = tokio::time::sleep_until(outbox_due.unwrap_or(far).into()), if outbox_due.is_some() => self.pump(socket).await,
                cmd = self.cmds.recv() => match cmd {
                    Some(cmd) => socket.send(&cmd).await.map_err(|e| End::Dropped { live, reason: e.to_string() }),
                    None => Ok(()),
                },
                _ = ping.tick() => {
                    if last_heard.elapsed() > ping_every * 5 / 2 {
                        return End::Dropped { live, reason: "the server stopped answering".to_owned() };
                    }
                    socket
                        .send_frame(Frame::Ping(Default::default()))
                        .await
                        .map_err(|e| End::Dropped { live, reason: e.to_string() })
                }
            };
            if let Err(end) = result {
                return end;
            }
        }
    }

    /// Sends what the outbox has due on this connection.
    async fn pump(&mut self, socket: &mut Socket) -> Result<(), End> {
        let due = self.shared().outbox.due(
            self.conn,
            Instant::now(),
            self.options.outbox_window.max(1),
            self.options.ack_timeout,
        );
        if due.is_empty() {
            return Ok(());
        }
        let dropped = |e: ClientError| End::Dropped {
            live: true,
            reason: e.to_string(),
        };
        for msg in due {
            socket
                .feed(&ClientEvent::Send {
                    conversation_id: msg.conversation_id,
                    client_id: msg.client_id,
                    body: msg.body,
                    reply_to_id: msg.reply_to_id,
                })
                .await
                .map_err(dropped)?;
        }
        socket.flush().await.map_err(dropped)
    }

    async fn on_text(
        &mut self,
        text: &str,
        socket: &mut Socket,
        live: &mut bool,
    ) -> Result<(), End> {
        let event = match serde_json::from_str::<ServerEvent>(text) {
            Ok(event) => event,
            Err(err) => {
                // A newer server's event this client does not know: skip it.
                tracing::debug!(error = %err, "unknown event skipped");
                return Ok(());
            }
        };
        match event {
            ServerEvent::Synced if !*live => {
                *live = true;
                self.fresh = false;
                self.set_state(ConnectionState::Live).await;
                self.emit(Event::Server(ServerEvent::Synced)).await?;
                self.pump(socket).await
            }
            ServerEvent::Pong => Ok(()),
            ServerEvent::MessageUpdated { message } => {
                // Each change once: the server sends a conversation's changes in the order
                // of their numbers, and again after a reconnect only past the cursor.
                let fresh = {
                    let mut shared = self.shared();
                    let seen = shared.changes.entry(message.conversation_id).or_insert(0);
                    let fresh = message.rev > *seen;
                    if fresh {
                        *seen = message.rev;
                    }
                    fresh
                };
                if fresh {
                    self.emit(Event::Server(ServerEvent::MessageUpdated { message }))
                        .await
                } else {
                    Ok(())
                }
            }
            ServerEvent::Message { message } | ServerEvent::Ack { message, .. } => {
                self.take(message).await?;
                if *live {
                    self.pump(socket).await
                } else {
                    Ok(())
                }
            }
            ServerEvent::Error {
                code,
                message,
                client_id: Some(client_id),
            } if self.shared().outbox.contains(&client_id) => {
                self.refusal(client_id, code, message).await
            }
            ServerEvent::Error {
                code,
                message,
                client_id: None,
            } if code == "rate_limited" => {
                // A frame was dropped unseen: whatever awaits an ack goes again later.
                self.shared().outbox.defer_in_flight(
                    self.conn,
                    Duration::from_secs(1),
                    Instant::now(),
                );
                self.emit(Event::Server(ServerEvent::Error {
                    code,
                    message,
                    client_id: None,
                }))
                .await
            }
            other => self.emit(Event::Server(other)).await,
        }
    }

    async fn refusal(
        &mut self,
        client_id: String,
        code: String,
        message: String,
    ) -> Result<(), End> {
        let event = {
            let mut shared = self.shared();
            match classify(&code) {
                Refusal::Retry => {
                    let attempts = shared
                        .outbox
                        .snapshot()
                        .iter()
                        .find(|m| m.client_id == client_id)
                        .map_or(1, |m| m.attempts);
                    let retry_in = retry_delay(attempts);
                    shared
                        .outbox
                        .defer(&client_id, &code, retry_in, Instant::now());
                    OutboxEvent::Deferred {
                        client_id,
                        code,
                        message,
                        retry_in,
                    }
                }
                Refusal::Final => match shared.outbox.remove(&client_id) {
                    Some(pending) => OutboxEvent::Failed {
                        pending,
                        code,
                        message,
                    },
                    None => return Ok(()),
                },
            }
        };
        self.emit(Event::Outbox(event)).await
    }

    /// The event for a message now deliverable: the ack of our outbox message, or a
    /// message.
    fn route(&self, shared: &mut Shared, message: Message) -> Event {
        if Some(message.sender_id) == self.me
            && let Some(client_id) = message.client_id.clone()
            && shared.outbox.remove(&client_id).is_some()
        {
            return Event::Outbox(OutboxEvent::Acked { client_id, message });
        }
        Event::Server(ServerEvent::Message { message })
    }

    /// Offers a message to the sequencer and emits what became deliverable; the hole it
    /// revealed, if any.
    async fn offer(&mut self, message: Message) -> Result<Option<(i64, i64, i64)>, End> {
        let (events, hole) = {
            let mut shared = lock(&self.shared);
            match shared
                .seq
                .offer(message.conversation_id, message.seq, message)
            {
                Offer::Ready(messages) => (
                    messages
                        .into_iter()
                        .map(|m| self.route(&mut shared, m))
                        .collect::<Vec<_>>(),
                    None,
                ),
                Offer::Duplicate(message) => {
                    // Seen already; but a late ack still clears the outbox.
                    let acked = Some(message.sender_id) == self.me
                        && message
                            .client_id
                            .as_deref()
                            .is_some_and(|id| shared.outbox.contains(id));
                    if acked {
                        (vec![self.route(&mut shared, message)], None)
                    } else {
                        (Vec::new(), None)
                    }
                }
                Offer::Held {
                    conversation_id,
                    after,
                    until,
                } => (Vec::new(), Some((conversation_id, after, until))),
            }
        };
        for event in events {
            self.emit(event).await?;
        }
        Ok(hole)
    }

    /// Delivers a message, filling a hole before it from history (REST) when needed.
    async fn take(&mut self, message: Message) -> Result<(), End> {
        let Some((conversation_id, after, until)) = self.offer(message).await? else {
            return Ok(());
        };
        tracing::debug!(conversation_id, after, until, "filling a gap from history");
        let mut before = until + 1;
        let mut fetched = Vec::new();
        while before > after + 1 {
            let page = self
                .api
                .history(
                    conversation_id,
                    Some(before),
                    Some((before - after - 1).min(100)),
                )
                .await
                .map_err(|e| self.refused(&e, true))?;
            let Some(first) = page.messages.first().map(|m| m.seq) else {
                break;
            };
            before = first;
            fetched.extend(page.messages.into_iter().filter(|m| m.seq > after));
        }
        fetched.sort_by_key(|m| m.seq);
        for message in fetched {
            self.offer(message).await?;
        }
        if self.shared().seq.hole(conversation_id).is_some() {
            // History could not fill it: a fresh connection resumes from the cursor.
            return Err(End::Dropped {
                live: true,
                reason: "a gap history could not fill".to_owned(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_codes_are_named() {
        assert!(close_reason(Some(1012)).contains("restarting"));
        assert!(close_reason(Some(1013)).contains("slow"));
        assert_eq!(close_reason(None), "connection lost");
    }

    #[tokio::test]
    async fn without_a_session_it_ends_at_once() {
        let api = Api::new("http://127.0.0.1:9").expect("valid");
        let (rt, mut events) = Realtime::start(api, RealtimeOptions::default());
        let mut saw_end = false;
        while let Some(event) = events.recv().await {
            if let Event::State(ConnectionState::SessionEnded { .. }) = event {
                saw_end = true;
            }
        }
        assert!(saw_end);
        assert!(matches!(rt.state(), ConnectionState::SessionEnded { .. }));
        let id = rt.send(1, "kept");
        assert_eq!(
            rt.pending()[0].client_id,
            id,
            "the outbox survives to be saved"
        );
        rt.shutdown().await;
    }
}
