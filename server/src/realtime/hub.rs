//! Who is connected where, on this instance: each user's open connections with their
//! bounded outbound queues, and a cache of conversation members for routing.
//!
//! Delivery never waits: an event is offered to each connection's queue with
//! `try_send`; a connection whose queue is full is cut off (its client will resume),
//! so a slow client can never grow server memory. No lock is held across an `.await`.

use std::{
    collections::HashMap,
    sync::{
        Arc, RwLock,
        atomic::{AtomicU64, Ordering},
    },
};

use axum::extract::ws::Utf8Bytes;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// One item in a connection's outbound queue. Frames are serialised once and shared.
#[derive(Debug, Clone)]
pub enum Outbound {
    /// A `message` (or, with `ack`, an `ack`) event: the writer keeps per-conversation
    /// cursors with these so each message reaches the client once and in seq order.
    Message {
        conversation_id: i64,
        seq: i64,
        frame: Utf8Bytes,
        ack: bool,
    },
    /// Any other event.
    Event(Utf8Bytes),
}

#[derive(Clone)]
struct ConnHandle {
    id: u64,
    tx: mpsc::Sender<Outbound>,
    kill: CancellationToken,
}

/// What a new connection gets from [`Hub::register`].
pub struct Registration {
    pub id: u64,
    pub rx: mpsc::Receiver<Outbound>,
    /// Cancelled when the hub cuts the connection off (full queue, shutdown).
    pub kill: CancellationToken,
    /// This is the user's first connection on this instance.
    pub first: bool,
}

pub struct Hub {
    /// user id → that user's open connections here.
    conns: RwLock<HashMap<i64, Vec<ConnHandle>>>,
    /// conversation id → member ids; filled on demand, dropped on membership changes.
    members: RwLock<HashMap<i64, Arc<[i64]>>>,
    next_id: AtomicU64,
    /// Capacity of each connection's outbound queue.
    queue_len: usize,
    /// Cancelled at shutdown; every connection's `kill` is a child of it.
    shutdown: CancellationToken,
}

/// Beyond this many cached conversations the cache starts over (it refills on demand).
const MEMBER_CACHE_MAX: usize = 100_000;

impl Hub {
    pub fn new(queue_len: usize) -> Self {
        Self {
            conns: RwLock::default(),
            members: RwLock::default(),
            next_id: AtomicU64::new(1),
            queue_len: queue_len.max(1),
            shutdown: CancellationToken::new(),
        }
    }

    pub fn register(&self, user_id: i64) -> Registration {
        let (tx, rx) = mpsc::channel(self.queue_len);
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let kill = self.shutdown.child_token();
        let mut conns = self.conns.write().unwrap_or_else(|e| e.into_inner());
        let list = conns.entry(user_id).or_default();
        let first = list.is_empty();
        list.push(ConnHandle {
            id,
            tx,
            kill: kill.clone(),
        });
        Registration {
            id,
            rx,
            kill,
            first,
        }
    }

    /// Removes a connection; `true` when it was the user's last one here.
    pub fn unregister(&self, user_id: i64, conn_id: u64) -> bool {
        let mut conns = self.conns.write().unwrap_or_else(|e| e.into_inner());
        let Some(list) = conns.get_mut(&user_id) else {
            return false;
        };
        let before = list.len();
        list.retain(|c| c.id != conn_id);
        let removed = list.len() < before;
        if list.is_empty() {
            conns.remove(&user_id);
            return removed;
        }
        false
    }

    pub fn is_online(&self, user_id: i64) -> bool {
        self.conns
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(&user_id)
    }

    pub fn connection_count(&self) -> usize {
        self.conns
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .map(Vec::len)
            .sum()
    }

    /// Offers `item` to every connection of every user in `users`, except connection
    /// `except`. Connections whose queue is full are cut off.
    pub fn send_to_users(&self, users: &[i64], item: &Outbound, except: Option<u64>) {
        let mut overflowed = Vec::new();
        {
            let conns = self.conns.read().unwrap_or_else(|e| e.into_inner());
            for user in users {
                for conn in conns.get(user).into_iter().flatten() {
                    if Some(conn.id) == except {
                        continue;
                    }
                    if let Err(mpsc::error::TrySendError::Full(_)) = conn.tx.try_send(item.clone())
                    {
                        overflowed.push((*user, conn.id, conn.kill.clone()));
                    }
                }
            }
        }
        for (user, id, kill) in overflowed {
            tracing::info!(
                user_id = user,
                conn = id,
                "outbound queue full; disconnecting slow client"
            );
            kill.cancel();
        }
    }

    /// Offers `item` to one connection; cuts it off if its queue is full.
    pub fn send_to_conn(&self, user_id: i64, conn_id: u64, item: Outbound) {
        let conns = self.conns.read().unwrap_or_else(|e| e.into_inner());
        if let Some(conn) = conns
            .get(&user_id)
            .into_iter()
            .flatten()
            .find(|c| c.id == conn_id)
        {
            if let Err(mpsc::error::TrySendError::Full(_)) = conn.tx.try_send(item) {
                tracing::info!(
                    user_id,
                    conn = conn_id,
                    "outbound queue full; disconnecting slow client"
                );
                conn.kill.cancel();
            }
        }
    }

    pub fn cached_members(&self, conversation_id: i64) -> Option<Arc<[i64]>> {
        self.members
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&conversation_id)
            .cloned()
    }

    pub fn cache_members(&self, conversation_id: i64, members: Arc<[i64]>) {
        let mut cache = self.members.write().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= MEMBER_CACHE_MAX {
            cache.clear();
        }
        cache.insert(conversation_id, members);
    }

    pub fn forget_members(&self, conversation_id: i64) {
        self.members
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&conversation_id);
    }

    pub fn forget_all_members(&self) {
        self.members
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    /// Closes every connection (server shutdown).
    pub fn shutdown(&self) {
        self.shutdown.cancel();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(s: &str) -> Outbound {
        Outbound::Event(Utf8Bytes::from(s.to_owned()))
    }

    #[test]
    fn first_and_last_connection_are_reported() {
        let hub = Hub::new(4);
        let a = hub.register(1);
        let b = hub.register(1);
        assert!(a.first && !b.first);
        assert!(hub.is_online(1));
        assert!(!hub.unregister(1, a.id));
        assert!(hub.unregister(1, b.id));
        assert!(!hub.is_online(1));
    }

    #[test]
    fn delivery_skips_the_origin_and_cuts_off_full_queues() {
        let hub = Hub::new(2);
        let mut a = hub.register(1);
        let mut b = hub.register(2);
        hub.send_to_users(&[1, 2], &frame("x"), Some(a.id));
        assert!(a.rx.try_recv().is_err(), "origin excluded");
        assert!(b.rx.try_recv().is_ok());
        for _ in 0..3 {
            hub.send_to_users(&[2], &frame("y"), None);
        }
        assert!(
            b.kill.is_cancelled(),
            "a full queue cuts the connection off"
        );
        assert!(!a.kill.is_cancelled());
    }
}
