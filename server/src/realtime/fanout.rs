//! Events between server instances sharing one PostgreSQL database, over LISTEN/NOTIFY.
//!
//! After a change commits, the instance that made it delivers to its own connections and
//! sends a [`Notice`] (ids only) on the `chatapp_events` channel; every other instance
//! reads the rows and delivers to its connections. Presence is the union over instances:
//! each instance lists its connected users in the `presence` table, heartbeats in
//! `instances`, and purges instances that stopped heartbeating.
//!
//! If the listening connection drops, the instance reconnects and catches up: for every
//! conversation it has delivered in, it replays what committed since (connections drop
//! what they already have), reloads presence and forgets its member cache.
//!
//! With SQLite there is one instance and [`Fanout::local`] does nothing.

use std::{
    collections::{HashMap, HashSet},
    str::FromStr,
    sync::{Arc, Mutex, RwLock},
    time::Duration,
};

use rand::RngCore;
use serde::{Deserialize, Serialize};
use sqlx::{
    PgPool,
    postgres::{PgConnectOptions, PgListener, PgPoolOptions},
};
use tokio::sync::mpsc;

use crate::{AppState, store::now_ms};

const CHANNEL: &str = "chatapp_events";
/// PostgreSQL refuses NOTIFY payloads of 8000 bytes or more.
const MAX_PAYLOAD: usize = 7000;
const HEARTBEAT: Duration = Duration::from_secs(10);
/// An instance silent this long is taken for dead.
const DEAD_AFTER_MS: i64 = 60_000;
/// Messages replayed per conversation when catching up.
const CATCH_UP_LIMIT: i64 = 1000;

/// What one instance tells the others: ids only; the receiver reads the rows.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "k", rename_all = "snake_case")]
pub enum Notice {
    Message {
        conversation_id: i64,
        seq: i64,
    },
    Typing {
        conversation_id: i64,
        user_id: i64,
    },
    Read {
        conversation_id: i64,
        user_id: i64,
        seq: i64,
    },
    Conversation {
        conversation_id: i64,
        removed: Vec<i64>,
    },
    UserUpdated {
        user_id: i64,
    },
    /// These sessions ended: close their connections.
    SessionsEnded {
        session_ids: Vec<i64>,
    },
    /// `instance` has (or no longer has) a connection of `user_id`.
    Presence {
        user_id: i64,
        online: bool,
        instance: String,
    },
}

#[derive(Debug, Serialize, Deserialize)]
struct Envelope {
    from: String,
    n: Vec<Notice>,
}

/// The link to the other instances (none on SQLite).
#[derive(Default)]
pub struct Fanout {
    link: Option<Arc<PgLink>>,
}

struct PgLink {
    /// This instance's id (random per process).
    instance: String,
    url: String,
    /// For NOTIFY and the presence tables.
    pool: PgPool,
    /// Notices waiting to be sent.
    outbox: mpsc::Sender<Notice>,
    outbox_rx: Mutex<Option<mpsc::Receiver<Notice>>>,
    /// user id → other instances where the user is connected.
    remote: RwLock<HashMap<i64, HashSet<String>>>,
    /// conversation id → highest seq delivered here (for catching up).
    delivered: Mutex<HashMap<i64, i64>>,
}

impl Fanout {
    pub fn local() -> Self {
        Self { link: None }
    }

    /// Connects the link to the other instances on the PostgreSQL at `url`. Nothing
    /// flows until [`Fanout::start`].
    pub async fn postgres(url: &str) -> anyhow::Result<Self> {
        let mut id = [0u8; 8];
        rand::rng().fill_bytes(&mut id);
        let instance: String = id.iter().map(|b| format!("{b:02x}")).collect();
        let options = PgConnectOptions::from_str(url)?.application_name("chatapp-fanout");
        let pool = PgPoolOptions::new()
            .max_connections(2)
            .connect_with(options)
            .await?;
        sqlx::query("INSERT INTO instances (id, heartbeat_at) VALUES ($1, $2)")
            .bind(&instance)
            .bind(now_ms())
            .execute(&pool)
            .await?;
        let (outbox, outbox_rx) = mpsc::channel(16 * 1024);
        Ok(Self {
            link: Some(Arc::new(PgLink {
                instance,
                url: url.to_owned(),
                pool,
                outbox,
                outbox_rx: Mutex::new(Some(outbox_rx)),
                remote: RwLock::default(),
                delivered: Mutex::default(),
            })),
        })
    }

    /// Starts sending, listening and heartbeating.
    pub fn start(&self, state: &AppState) {
        let Some(link) = &self.link else { return };
        let rx = link
            .outbox_rx
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(rx) = rx {
            tokio::spawn(send_loop(Arc::clone(link), rx));
        }
        tokio::spawn(listen_loop(Arc::clone(link), state.clone()));
        tokio::spawn(heartbeat_loop(Arc::clone(link), state.clone()));
    }

    /// Tells the other instances (call after the change committed). Never waits: if the
    /// outbox is full the notice is dropped (their connections catch up on the next
    /// message of the conversation, or when they resume).
    pub fn notify(&self, notice: Notice) {
        if let Some(link) = &self.link {
            if link.outbox.try_send(notice).is_err() {
                tracing::warn!("fan-out outbox full; a notice to other instances was dropped");
            }
        }
    }

    /// Records that this instance delivered `seq` of a conversation (for catching up).
    pub fn delivered(&self, conversation_id: i64, seq: i64) {
        if let Some(link) = &self.link {
            let mut delivered = link.delivered.lock().unwrap_or_else(|e| e.into_inner());
            let entry = delivered.entry(conversation_id).or_insert(seq);
            *entry = (*entry).max(seq);
        }
    }

    /// Whether another instance has a connection of `user_id`.
    pub fn online_elsewhere(&self, user_id: i64) -> bool {
        self.link.as_ref().is_some_and(|link| {
            link.remote
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .get(&user_id)
                .is_some_and(|set| !set.is_empty())
        })
    }

    /// This instance gained its first (`online`) or lost its last connection of `user_id`.
    pub async fn announce(&self, user_id: i64, online: bool) {
        let Some(link) = &self.link else { return };
        let sql = if online {
            "INSERT INTO presence (instance_id, user_id) VALUES ($1, $2) ON CONFLICT DO NOTHING"
        } else {
            "DELETE FROM presence WHERE instance_id = $1 AND user_id = $2"
        };
        if let Err(err) = sqlx::query(sql)
            .bind(&link.instance)
            .bind(user_id)
            .execute(&link.pool)
            .await
        {
            tracing::warn!(error = %err, "cannot record presence");
        }
        self.notify(Notice::Presence {
            user_id,
            online,
            instance: link.instance.clone(),
        });
    }

    /// Graceful stop: this instance's users go offline everywhere else.
    pub async fn stop(&self) {
        let Some(link) = &self.link else { return };
        let users: Vec<i64> =
            sqlx::query_scalar("DELETE FROM presence WHERE instance_id = $1 RETURNING user_id")
                .bind(&link.instance)
                .fetch_all(&link.pool)
                .await
                .unwrap_or_default();
        let notices: Vec<Notice> = users
            .into_iter()
            .map(|user_id| Notice::Presence {
                user_id,
                online: false,
                instance: link.instance.clone(),
            })
            .collect();
        send_now(link, notices).await;
        let _ = sqlx::query("DELETE FROM instances WHERE id = $1")
            .bind(&link.instance)
            .execute(&link.pool)
            .await;
    }
}

/// Sends queued notices, as many per NOTIFY as fit.
async fn send_loop(link: Arc<PgLink>, mut rx: mpsc::Receiver<Notice>) {
    let mut batch = Vec::new();
    while rx.recv_many(&mut batch, 512).await > 0 {
        send_now(&link, std::mem::take(&mut batch)).await;
    }
}

async fn send_now(link: &PgLink, notices: Vec<Notice>) {
    let mut chunk: Vec<Notice> = Vec::new();
    let mut size = 0;
    let mut payloads = Vec::new();
    for notice in notices {
        let len = serde_json::to_string(&notice).map(|s| s.len()).unwrap_or(0) + 1;
        if size + len > MAX_PAYLOAD && !chunk.is_empty() {
            payloads.push(std::mem::take(&mut chunk));
            size = 0;
        }
        size += len;
        chunk.push(notice);
    }
    if !chunk.is_empty() {
        payloads.push(chunk);
    }
    for n in payloads {
        let envelope = Envelope {
            from: link.instance.clone(),
            n,
        };
        let Ok(payload) = serde_json::to_string(&envelope) else {
            continue;
        };
        if let Err(err) = sqlx::query("SELECT pg_notify($1, $2)")
            .bind(CHANNEL)
            .bind(payload)
            .execute(&link.pool)
            .await
        {
            tracing::warn!(error = %err, "NOTIFY failed; other instances catch up later");
        }
    }
}

/// Listens for the other instances' notices; reconnects and catches up when the
/// connection drops.
async fn listen_loop(link: Arc<PgLink>, state: AppState) {
    let mut backoff = Duration::from_millis(100);
    loop {
        let mut listener = match connect_listener(&link.url).await {
            Ok(listener) => listener,
            Err(err) => {
                tracing::warn!(error = %err, "cannot listen for other instances; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        backoff = Duration::from_millis(100);
        catch_up(&link, &state).await;
        loop {
            match listener.try_recv().await {
                Ok(Some(notification)) => {
                    match serde_json::from_str::<Envelope>(notification.payload()) {
                        Ok(envelope) if envelope.from != link.instance => {
                            for notice in envelope.n {
                                apply(&link, &state, notice).await;
                            }
                        }
                        Ok(_) => {}
                        Err(err) => tracing::warn!(error = %err, "unreadable notice"),
                    }
                }
                Ok(None) => break,
                Err(err) => {
                    tracing::warn!(error = %err, "lost the listening connection; reconnecting");
                    break;
                }
            }
        }
    }
}

async fn connect_listener(url: &str) -> anyhow::Result<PgListener> {
    let options = PgConnectOptions::from_str(url)?.application_name("chatapp-listener");
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await?;
    let mut listener = PgListener::connect_with(&pool).await?;
    listener.listen(CHANNEL).await?;
    Ok(listener)
}

/// After (re)connecting: replay what may have been missed and reload presence.
async fn catch_up(link: &PgLink, state: &AppState) {
    state.hub.forget_all_members();
    reload_presence(link, state).await;
    super::end_vanished_sessions(state).await;
    let delivered: Vec<(i64, i64)> = link
        .delivered
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .map(|(c, s)| (*c, *s))
        .collect();
    for (conversation_id, seq) in delivered {
        match state
            .store
            .messages_after(conversation_id, seq, CATCH_UP_LIMIT)
            .await
        {
            Ok(rows) => {
                for row in &rows {
                    state.deliver_message(row, None).await;
                }
            }
            Err(err) => tracing::warn!(error = %err, "catching up failed"),
        }
    }
}

/// Rebuilds the map of users connected to other live instances, announcing changes.
async fn reload_presence(link: &PgLink, state: &AppState) {
    let rows: Vec<(i64, String)> = match sqlx::query_as(
        "SELECT p.user_id, p.instance_id FROM presence p JOIN instances i ON i.id = p.instance_id \
         WHERE p.instance_id <> $1 AND i.heartbeat_at > $2",
    )
    .bind(&link.instance)
    .bind(now_ms() - DEAD_AFTER_MS)
    .fetch_all(&link.pool)
    .await
    {
        Ok(rows) => rows,
        Err(err) => {
            tracing::warn!(error = %err, "cannot read presence");
            return;
        }
    };
    let mut fresh: HashMap<i64, HashSet<String>> = HashMap::new();
    for (user, instance) in rows {
        fresh.entry(user).or_default().insert(instance);
    }
    let old = std::mem::replace(
        &mut *link.remote.write().unwrap_or_else(|e| e.into_inner()),
        fresh.clone(),
    );
    let changed: HashSet<i64> = old
        .keys()
        .chain(fresh.keys())
        .copied()
        .filter(|u| old.contains_key(u) != fresh.contains_key(u))
        .collect();
    for user in changed {
        if !state.hub.is_online(user) {
            announce_locally(state, user).await;
        }
    }
}

/// Tells this instance's connections the current presence of `user_id`.
async fn announce_locally(state: &AppState, user_id: i64) {
    let online = state.is_online(user_id);
    let last_seen = if online {
        None
    } else {
        state
            .store
            .user_by_id(user_id)
            .await
            .ok()
            .and_then(|u| u.last_seen_at)
            .map(crate::store::time_of)
    };
    state.deliver_presence(user_id, online, last_seen).await;
}

async fn apply(link: &PgLink, state: &AppState, notice: Notice) {
    tracing::debug!(?notice, "notice from another instance");
    match notice {
        Notice::Message {
            conversation_id,
            seq,
        } => {
            match state
                .store
                .messages_after(conversation_id, seq - 1, 1)
                .await
            {
                Ok(rows) => {
                    if let Some(row) = rows.first().filter(|r| r.seq == seq) {
                        state.deliver_message(row, None).await;
                    }
                }
                Err(err) => tracing::warn!(error = %err, "cannot read a notified message"),
            }
        }
        Notice::Typing {
            conversation_id,
            user_id,
        } => state.deliver_typing(conversation_id, user_id).await,
        Notice::Read {
            conversation_id,
            user_id,
            seq,
        } => state.deliver_read(conversation_id, user_id, seq).await,
        Notice::Conversation {
            conversation_id,
            removed,
        } => state.deliver_conversation(conversation_id, &removed).await,
        Notice::UserUpdated { user_id } => state.deliver_user_updated(user_id).await,
        Notice::SessionsEnded { session_ids } => state.hub.end_sessions(&session_ids),
        Notice::Presence {
            user_id,
            online,
            instance,
        } => {
            let before = state.is_online(user_id);
            {
                let mut remote = link.remote.write().unwrap_or_else(|e| e.into_inner());
                let set = remote.entry(user_id).or_default();
                if online {
                    set.insert(instance);
                } else {
                    set.remove(&instance);
                }
                if set.is_empty() {
                    remote.remove(&user_id);
                }
            }
            if state.is_online(user_id) != before {
                announce_locally(state, user_id).await;
            }
        }
    }
}

/// Heartbeats this instance and purges instances that stopped heartbeating (crashed),
/// telling everyone their users went offline.
async fn heartbeat_loop(link: Arc<PgLink>, state: AppState) {
    let mut tick = tokio::time::interval(HEARTBEAT);
    loop {
        tick.tick().await;
        let now = now_ms();
        // Re-insert if a peer purged us after a long pause (e.g. a suspended machine).
        let beat = sqlx::query(
            "INSERT INTO instances (id, heartbeat_at) VALUES ($1, $2) \
             ON CONFLICT (id) DO UPDATE SET heartbeat_at = EXCLUDED.heartbeat_at",
        )
        .bind(&link.instance)
        .bind(now)
        .execute(&link.pool)
        .await;
        if let Err(err) = beat {
            tracing::warn!(error = %err, "heartbeat failed");
            continue;
        }
        let dead: Vec<(String, i64)> = sqlx::query_as(
            "SELECT p.instance_id, p.user_id FROM presence p JOIN instances i ON i.id = p.instance_id \
             WHERE i.heartbeat_at < $1",
        )
        .bind(now - DEAD_AFTER_MS)
        .fetch_all(&link.pool)
        .await
        .unwrap_or_default();
        let purged = sqlx::query("DELETE FROM instances WHERE heartbeat_at < $1")
            .bind(now - DEAD_AFTER_MS)
            .execute(&link.pool)
            .await;
        if matches!(purged, Ok(ref done) if done.rows_affected() > 0) {
            let notices: Vec<Notice> = dead
                .into_iter()
                .map(|(instance, user_id)| Notice::Presence {
                    user_id,
                    online: false,
                    instance,
                })
                .collect();
            for notice in notices.clone() {
                apply(&link, &state, notice).await;
            }
            send_now(&link, notices).await;
        }
    }
}
