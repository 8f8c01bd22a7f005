//! Changes between server instances sharing one PostgreSQL database, over the store's
//! LISTEN/NOTIFY channel ([`Instances`]). With SQLite there is one instance and the
//! broker does nothing.
//!
//! Every change published here is sent on the channel (batched, in order); every other
//! instance hands it to the same [`deliver`](super::deliver) as its own changes. Presence
//! is the union over instances: each lists its connected users in the store and
//! heartbeats; an instance that stops heartbeating is purged and its users announced
//! offline. If the listening connection drops, the instance reconnects and catches up:
//! it forgets its member cache, reloads presence, closes connections whose session ended
//! meanwhile and, for every conversation it has delivered in, replays what committed
//! since (connections drop what they already have).

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex, RwLock},
    time::Duration,
};

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use super::{Change, Local, deliver, deliver::tell_presence};
use crate::{
    AppState,
    store::{
        instances::{Instances, MAX_PAYLOAD},
        now_ms,
    },
};

const HEARTBEAT: Duration = Duration::from_secs(10);
/// An instance silent this long is taken for dead.
const DEAD_AFTER_MS: i64 = 60_000;
/// Messages replayed per conversation when catching up.
const CATCH_UP_LIMIT: i64 = 1000;
/// The instance name of a server alone on its database.
const ALONE: &str = "local";

#[derive(Debug, Serialize, Deserialize)]
struct Envelope {
    from: String,
    n: Vec<Change>,
}

/// Tells every instance running on the PostgreSQL at `url` that these sessions ended, so
/// their connections close at once: for the operator's CLI, which is no instance. (On
/// SQLite the server notices within a minute, in its housekeeping.)
pub async fn sessions_ended_from_outside(url: &str, session_ids: &[i64]) -> anyhow::Result<()> {
    for chunk in session_ids.chunks(500) {
        let envelope = Envelope {
            from: "cli".to_owned(),
            n: vec![Change::SessionsEnded {
                session_ids: chunk.to_vec(),
            }],
        };
        crate::store::instances::notify_from_outside(url, &serde_json::to_string(&envelope)?)
            .await?;
    }
    Ok(())
}

/// The link to the other instances (none on SQLite).
#[derive(Default)]
pub struct Broker {
    link: Option<Arc<Link>>,
}

struct Link {
    instances: Instances,
    /// Changes waiting to be sent.
    outbox: mpsc::Sender<Change>,
    outbox_rx: Mutex<Option<mpsc::Receiver<Change>>>,
    /// user id → other instances where the user is connected.
    remote: RwLock<HashMap<i64, HashSet<String>>>,
    /// conversation id → highest seq delivered here (for catching up).
    delivered: Mutex<HashMap<i64, i64>>,
    /// conversation id → highest change number delivered here (for catching up).
    changed: Mutex<HashMap<i64, i64>>,
}

impl Broker {
    /// No other instances (SQLite).
    pub fn alone() -> Self {
        Self { link: None }
    }

    /// Registers this instance on the PostgreSQL at `url`. Nothing flows until
    /// [`Broker::start`].
    pub async fn postgres(url: &str) -> anyhow::Result<Self> {
        let instances = Instances::register(url).await?;
        let (outbox, outbox_rx) = mpsc::channel(16 * 1024);
        Ok(Self {
            link: Some(Arc::new(Link {
                instances,
                outbox,
                outbox_rx: Mutex::new(Some(outbox_rx)),
                remote: RwLock::default(),
                delivered: Mutex::default(),
                changed: Mutex::default(),
            })),
        })
    }

    /// This instance's name among the others.
    pub fn instance(&self) -> &str {
        self.link.as_ref().map_or(ALONE, |l| l.instances.id())
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

    /// Hands a change to the other instances (after it was delivered here). Never waits:
    /// if the outbox is full the change is dropped for them (their connections catch up
    /// on the next message of the conversation, or when they resume).
    pub(super) fn send(&self, change: Change) {
        if let Some(link) = &self.link
            && link.outbox.try_send(change).is_err()
        {
            tracing::warn!("broker outbox full; a change for other instances was dropped");
        }
    }

    /// Records that this instance delivered `seq` of a conversation (for catching up).
    pub(super) fn delivered(&self, conversation_id: i64, seq: i64) {
        if let Some(link) = &self.link {
            let mut delivered = link.delivered.lock().unwrap_or_else(|e| e.into_inner());
            let entry = delivered.entry(conversation_id).or_insert(seq);
            *entry = (*entry).max(seq);
        }
    }

    /// Records that this instance delivered change `rev` of a conversation (for
    /// catching up).
    pub(super) fn delivered_change(&self, conversation_id: i64, rev: i64) {
        if let Some(link) = &self.link {
            let mut changed = link.changed.lock().unwrap_or_else(|e| e.into_inner());
            let entry = changed.entry(conversation_id).or_insert(rev);
            *entry = (*entry).max(rev);
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

    /// Another instance gained (or lost) a connection of `user_id`.
    pub(super) fn set_remote(&self, user_id: i64, instance: &str, online: bool) {
        let Some(link) = &self.link else { return };
        let mut remote = link.remote.write().unwrap_or_else(|e| e.into_inner());
        let set = remote.entry(user_id).or_default();
        if online {
            set.insert(instance.to_owned());
        } else {
            set.remove(instance);
        }
        if set.is_empty() {
            remote.remove(&user_id);
        }
    }

    /// Graceful stop: this instance's users go offline everywhere else.
    pub async fn stop(&self) {
        let Some(link) = &self.link else { return };
        let users = link.instances.leave().await.unwrap_or_default();
        let changes = users
            .into_iter()
            .map(|user_id| Change::Presence {
                user_id,
                online: false,
                instance: link.instances.id().to_owned(),
            })
            .collect();
        send_now(link, changes).await;
    }
}

/// Sends queued changes, as many per NOTIFY as fit. A change of this instance's
/// presence is recorded in the store first, so that an instance reloading presence
/// never misses what a notification told it.
async fn send_loop(link: Arc<Link>, mut rx: mpsc::Receiver<Change>) {
    let mut batch = Vec::new();
    while rx.recv_many(&mut batch, 512).await > 0 {
        for change in &batch {
            if let Change::Presence {
                user_id, online, ..
            } = change
                && let Err(err) = link.instances.set_present(*user_id, *online).await
            {
                tracing::warn!(error = %err, "cannot record presence");
            }
        }
        send_now(&link, std::mem::take(&mut batch)).await;
    }
}

async fn send_now(link: &Link, changes: Vec<Change>) {
    let mut chunk: Vec<Change> = Vec::new();
    let mut size = 0;
    let mut payloads = Vec::new();
    for change in changes {
        let len = serde_json::to_string(&change).map(|s| s.len()).unwrap_or(0) + 1;
        if size + len > MAX_PAYLOAD && !chunk.is_empty() {
            payloads.push(std::mem::take(&mut chunk));
            size = 0;
        }
        size += len;
        chunk.push(change);
    }
    if !chunk.is_empty() {
        payloads.push(chunk);
    }
    for n in payloads {
        let envelope = Envelope {
            from: link.instances.id().to_owned(),
            n,
        };
        let Ok(payload) = serde_json::to_string(&envelope) else {
            continue;
        };
        if let Err(err) = link.instances.notify(&payload).await {
            tracing::warn!(error = %err, "NOTIFY failed; other instances catch up later");
        }
    }
}

/// Listens for the other instances' changes; reconnects and catches up when the
/// connection drops.
async fn listen_loop(link: Arc<Link>, state: AppState) {
    let mut backoff = Duration::from_millis(100);
    loop {
        let mut listener = match link.instances.listen().await {
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
                        Ok(envelope) if envelope.from != link.instances.id() => {
                            for change in envelope.n {
                                tracing::debug!(?change, "change from another instance");
                                deliver(&state, &change, Local::default()).await;
                            }
                        }
                        Ok(_) => {}
                        Err(err) => tracing::warn!(error = %err, "unreadable change"),
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

/// After (re)connecting: replay what may have been missed and reload presence.
async fn catch_up(link: &Link, state: &AppState) {
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
                    let change = Change::Message {
                        conversation_id,
                        seq: row.seq,
                    };
                    let local = Local {
                        row: Some(row),
                        origin: None,
                    };
                    deliver(state, &change, local).await;
                }
            }
            Err(err) => tracing::warn!(error = %err, "catching up failed"),
        }
    }
    let changed: Vec<(i64, i64)> = link
        .changed
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .map(|(c, r)| (*c, *r))
        .collect();
    for (conversation_id, rev) in changed {
        match state
            .store
            .changes_after(conversation_id, rev, i64::MAX, i64::MAX, CATCH_UP_LIMIT)
            .await
        {
            Ok(rows) => {
                for row in &rows {
                    let change = Change::MessageChanged {
                        conversation_id,
                        seq: row.seq,
                        rev: row.rev,
                        played_by: None,
                    };
                    let local = Local {
                        row: Some(row),
                        origin: None,
                    };
                    deliver(state, &change, local).await;
                }
            }
            Err(err) => tracing::warn!(error = %err, "catching up on changes failed"),
        }
    }
}

/// Rebuilds the map of users connected to other live instances, telling this
/// instance's connections of every change.
async fn reload_presence(link: &Link, state: &AppState) {
    let rows = match link
        .instances
        .present_elsewhere(now_ms() - DEAD_AFTER_MS)
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
            tell_presence(state, user).await;
        }
    }
}

/// Heartbeats this instance and purges instances that stopped heartbeating (crashed),
/// telling everyone their users went offline.
async fn heartbeat_loop(link: Arc<Link>, state: AppState) {
    let mut tick = tokio::time::interval(HEARTBEAT);
    loop {
        tick.tick().await;
        if let Err(err) = link.instances.heartbeat().await {
            tracing::warn!(error = %err, "heartbeat failed");
            continue;
        }
        let dead = match link.instances.purge_dead(now_ms() - DEAD_AFTER_MS).await {
            Ok(dead) => dead,
            Err(err) => {
                tracing::warn!(error = %err, "cannot purge silent instances");
                continue;
            }
        };
        if dead.is_empty() {
            continue;
        }
        let changes: Vec<Change> = dead
            .into_iter()
            .map(|(instance, user_id)| Change::Presence {
                user_id,
                online: false,
                instance,
            })
            .collect();
        for change in &changes {
            deliver(&state, change, Local::default()).await;
        }
        send_now(&link, changes).await;
    }
}
