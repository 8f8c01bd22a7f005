//! Who is connected where, on this instance: each user's open connections with their
//! bounded outbound queues, and a cache of conversation members for routing.
//!
//! Delivery never waits: an event is offered to each connection's queue with
//! `try_send`; a connection whose queue is full is cut off (its client will resume),
//! so a slow client can never grow server memory. No lock is held across an `.await`.

use std::{
    collections::{HashMap, HashSet},
    net::IpAddr,
    sync::{
        Arc, OnceLock, RwLock,
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
    /// A `message_updated` event: the message at `seq` as of change number `rev`; the
    /// writer keeps per-conversation change cursors with these so each change reaches
    /// the client once and in order.
    Change {
        conversation_id: i64,
        seq: i64,
        rev: i64,
        frame: Utf8Bytes,
    },
    /// Any other event.
    Event(Utf8Bytes),
}

/// Why the server ends a connection: the close frame's code and reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// Nothing wrong: the client closed, or the connection ended.
    Normal,
    /// The server is stopping: reconnect (to another instance or after the restart).
    Shutdown,
    /// The client did not read its events fast enough: reconnect and resume.
    SlowClient,
    /// The session was signed out or revoked: sign in again; do not reconnect with it.
    SessionEnded,
    /// Over the per-user or per-address connection limit.
    TooManyConnections,
    /// A frame larger than the limit.
    FrameTooLarge,
    /// A text frame that is not UTF-8.
    InvalidUtf8,
    /// No answer to pings.
    Unresponsive,
}

impl CloseReason {
    pub fn code(self) -> u16 {
        match self {
            Self::Normal => 1000,
            Self::Shutdown => 1012,
            Self::SlowClient => 1013,
            Self::SessionEnded => 4001,
            Self::TooManyConnections => 1008,
            Self::FrameTooLarge => 1009,
            Self::InvalidUtf8 => 1007,
            Self::Unresponsive => 1001,
        }
    }

    pub fn text(self) -> &'static str {
        match self {
            Self::Normal => "closing",
            Self::Shutdown => "server restarting",
            Self::SlowClient => "too slow reading events; reconnect and resume",
            Self::SessionEnded => "session ended",
            Self::TooManyConnections => "too many connections",
            Self::FrameTooLarge => "frame too large",
            Self::InvalidUtf8 => "text frame is not UTF-8",
            Self::Unresponsive => "no answer to pings",
        }
    }
}

/// Ends one connection, once, with the first reason given.
#[derive(Debug, Clone, Default)]
pub struct Kill {
    token: CancellationToken,
    reason: Arc<OnceLock<CloseReason>>,
}

impl Kill {
    fn child_of(parent: &CancellationToken) -> Self {
        Self {
            token: parent.child_token(),
            reason: Arc::default(),
        }
    }

    /// Ends the connection; `false` when it was already ending.
    pub fn kill(&self, reason: CloseReason) -> bool {
        if self.token.is_cancelled() {
            // Already ending (perhaps the whole hub, which gives no reason).
            return false;
        }
        let first = self.reason.set(reason).is_ok();
        self.token.cancel();
        first
    }

    pub async fn killed(&self) {
        self.token.cancelled().await;
    }

    pub fn is_killed(&self) -> bool {
        self.token.is_cancelled()
    }

    /// The reason given, or [`CloseReason::Shutdown`] when the whole hub stopped.
    pub fn reason(&self) -> Option<CloseReason> {
        match self.reason.get() {
            Some(reason) => Some(*reason),
            None if self.token.is_cancelled() => Some(CloseReason::Shutdown),
            None => None,
        }
    }
}

#[derive(Clone)]
struct ConnHandle {
    id: u64,
    session_id: i64,
    addr: IpAddr,
    tx: mpsc::Sender<Outbound>,
    kill: Kill,
}

/// What a new connection gets from [`Hub::register`].
pub struct Registration {
    pub id: u64,
    pub rx: mpsc::Receiver<Outbound>,
    /// Ends the connection (full queue, session ended, shutdown).
    pub kill: Kill,
    /// This is the user's first connection on this instance.
    pub first: bool,
}

/// Limits on open connections; 0 means none.
#[derive(Debug, Clone, Copy, Default)]
pub struct ConnLimits {
    pub per_user: usize,
    pub per_address: usize,
}

#[derive(Default)]
struct Conns {
    /// user id → that user's open connections here.
    by_user: HashMap<i64, Vec<ConnHandle>>,
    /// client address → open connections from it.
    per_address: HashMap<IpAddr, usize>,
}

impl Conns {
    fn admits(&self, user_id: i64, addr: IpAddr, limits: ConnLimits) -> bool {
        let user = self.by_user.get(&user_id).map_or(0, Vec::len);
        let address = self.per_address.get(&addr).copied().unwrap_or(0);
        (limits.per_user == 0 || user < limits.per_user)
            && (limits.per_address == 0 || address < limits.per_address)
    }
}

pub struct Hub {
    conns: RwLock<Conns>,
    /// conversation id → member ids; filled on demand, dropped on membership changes.
    members: RwLock<MemberCache>,
    next_id: AtomicU64,
    /// Capacity of each connection's outbound queue.
    queue_len: usize,
    limits: ConnLimits,
    /// Cancelled at shutdown; every connection's `kill` is a child of it.
    shutdown: CancellationToken,
    /// How often a connection found a gap in a conversation's live messages and read
    /// the store to fill it (a connection that fell behind; never a healthy one).
    gap_fills: AtomicU64,
    /// Events queued for connections (see [`Hub::delivered`]).
    delivered: AtomicU64,
}

#[derive(Default)]
struct MemberCache {
    lists: HashMap<i64, Arc<[i64]>>,
    /// Moves on every invalidation: a list read from the store before an invalidation
    /// is not cached after it (it may hold a member removed in between).
    epoch: u64,
}

/// Beyond this many cached conversations the cache starts over (it refills on demand).
const MEMBER_CACHE_MAX: usize = 100_000;

impl Hub {
    pub fn new(queue_len: usize, limits: ConnLimits) -> Self {
        Self {
            conns: RwLock::default(),
            members: RwLock::default(),
            next_id: AtomicU64::new(1),
            queue_len: queue_len.max(1),
            limits,
            shutdown: CancellationToken::new(),
            gap_fills: AtomicU64::new(0),
            delivered: AtomicU64::new(0),
        }
    }

    /// Events queued for connections since the start (the metrics' deliveries).
    pub fn delivered(&self) -> u64 {
        self.delivered.load(Ordering::Relaxed)
    }

    /// Counts a gap filled from the store (see [`Hub::gap_fills`]).
    pub(crate) fn count_gap_fill(&self) {
        self.gap_fills.fetch_add(1, Ordering::Relaxed);
    }

    /// How many gaps connections have filled from the store since the start.
    pub fn gap_fills(&self) -> u64 {
        self.gap_fills.load(Ordering::Relaxed)
    }

    /// Whether one more connection of `user_id` from `addr` is within the limits (a
    /// courtesy check before the upgrade; [`Hub::register`] decides).
    pub fn admits(&self, user_id: i64, addr: IpAddr) -> bool {
        self.conns
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .admits(user_id, addr, self.limits)
    }

    /// Adds a connection of `user_id` (session `session_id`, from `addr`); `None` when
    /// that would go over a connection limit.
    pub fn register(&self, user_id: i64, session_id: i64, addr: IpAddr) -> Option<Registration> {
        let (tx, rx) = mpsc::channel(self.queue_len);
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let kill = Kill::child_of(&self.shutdown);
        let mut conns = self.conns.write().unwrap_or_else(|e| e.into_inner());
        if !conns.admits(user_id, addr, self.limits) {
            return None;
        }
        *conns.per_address.entry(addr).or_default() += 1;
        let list = conns.by_user.entry(user_id).or_default();
        let first = list.is_empty();
        list.push(ConnHandle {
            id,
            session_id,
            addr,
            tx,
            kill: kill.clone(),
        });
        Some(Registration {
            id,
            rx,
            kill,
            first,
        })
    }

    /// Removes a connection; `true` when it was the user's last one here.
    pub fn unregister(&self, user_id: i64, conn_id: u64) -> bool {
        let mut conns = self.conns.write().unwrap_or_else(|e| e.into_inner());
        let Some(list) = conns.by_user.get_mut(&user_id) else {
            return false;
        };
        let Some(pos) = list.iter().position(|c| c.id == conn_id) else {
            return false;
        };
        let gone = list.swap_remove(pos);
        let last = list.is_empty();
        if last {
            conns.by_user.remove(&user_id);
        }
        if let Some(n) = conns.per_address.get_mut(&gone.addr) {
            *n -= 1;
            if *n == 0 {
                conns.per_address.remove(&gone.addr);
            }
        }
        last
    }

    pub fn is_online(&self, user_id: i64) -> bool {
        self.conns
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .by_user
            .contains_key(&user_id)
    }

    pub fn connection_count(&self) -> usize {
        self.conns
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .by_user
            .values()
            .map(Vec::len)
            .sum()
    }

    /// Offers `item` to every connection of every user in `users`, except connection
    /// `except`. Connections whose queue is full are cut off.
    pub fn send_to_users(&self, users: &[i64], item: &Outbound, except: Option<u64>) {
        let conns = self.conns.read().unwrap_or_else(|e| e.into_inner());
        let mut queued = 0;
        for user in users {
            for conn in conns.by_user.get(user).into_iter().flatten() {
                if Some(conn.id) != except {
                    queued += u64::from(offer(*user, conn, item.clone()));
                }
            }
        }
        self.delivered.fetch_add(queued, Ordering::Relaxed);
    }

    /// Offers `item` to one connection; cuts it off if its queue is full.
    pub fn send_to_conn(&self, user_id: i64, conn_id: u64, item: Outbound) {
        let conns = self.conns.read().unwrap_or_else(|e| e.into_inner());
        if let Some(conn) = conns
            .by_user
            .get(&user_id)
            .into_iter()
            .flatten()
            .find(|c| c.id == conn_id)
            && offer(user_id, conn, item)
        {
            self.delivered.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Closes every connection of the given sessions (signed out or revoked).
    pub fn end_sessions(&self, session_ids: &[i64]) {
        if session_ids.is_empty() {
            return;
        }
        let ended: HashSet<i64> = session_ids.iter().copied().collect();
        let conns = self.conns.read().unwrap_or_else(|e| e.into_inner());
        for conn in conns.by_user.values().flatten() {
            if ended.contains(&conn.session_id) {
                conn.kill.kill(CloseReason::SessionEnded);
            }
        }
    }

    /// The sessions of the open connections (to check that they still exist).
    pub fn session_ids(&self) -> Vec<i64> {
        let conns = self.conns.read().unwrap_or_else(|e| e.into_inner());
        let ids: HashSet<i64> = conns
            .by_user
            .values()
            .flatten()
            .map(|c| c.session_id)
            .collect();
        ids.into_iter().collect()
    }

    /// The cached members of a conversation, and the cache's epoch to pass to
    /// [`Hub::cache_members`] when they are not cached and are read from the store.
    pub fn cached_members(&self, conversation_id: i64) -> Result<Arc<[i64]>, u64> {
        let cache = self.members.read().unwrap_or_else(|e| e.into_inner());
        cache
            .lists
            .get(&conversation_id)
            .cloned()
            .ok_or(cache.epoch)
    }

    /// Caches a member list read from the store, unless the cache was invalidated since
    /// `epoch` (then the list may be stale and the next reader reads again).
    pub fn cache_members(&self, conversation_id: i64, members: Arc<[i64]>, epoch: u64) {
        let mut cache = self.members.write().unwrap_or_else(|e| e.into_inner());
        if cache.epoch != epoch {
            return;
        }
        if cache.lists.len() >= MEMBER_CACHE_MAX {
            cache.lists.clear();
        }
        cache.lists.insert(conversation_id, members);
    }

    pub fn forget_members(&self, conversation_id: i64) {
        let mut cache = self.members.write().unwrap_or_else(|e| e.into_inner());
        cache.epoch += 1;
        cache.lists.remove(&conversation_id);
    }

    pub fn forget_all_members(&self) {
        let mut cache = self.members.write().unwrap_or_else(|e| e.into_inner());
        cache.epoch += 1;
        cache.lists.clear();
    }

    /// Closes every connection (server shutdown).
    pub fn shutdown(&self) {
        self.shutdown.cancel();
    }
}

/// Queues `item` for `conn`, or cuts the connection off when its queue is full (logged
/// once per connection, however many events it then misses).
fn offer(user_id: i64, conn: &ConnHandle, item: Outbound) -> bool {
    match conn.tx.try_send(item) {
        Ok(()) => true,
        Err(mpsc::error::TrySendError::Full(_)) => {
            if conn.kill.kill(CloseReason::SlowClient) {
                tracing::info!(
                    user_id,
                    conn = conn.id,
                    "outbound queue full; disconnecting slow client"
                );
            }
            false
        }
        Err(mpsc::error::TrySendError::Closed(_)) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ADDR: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    fn frame(s: &str) -> Outbound {
        Outbound::Event(Utf8Bytes::from(s.to_owned()))
    }

    #[test]
    fn first_and_last_connection_are_reported() {
        let hub = Hub::new(4, ConnLimits::default());
        let a = hub.register(1, 10, ADDR).expect("admitted");
        let b = hub.register(1, 11, ADDR).expect("admitted");
        assert!(a.first && !b.first);
        assert!(hub.is_online(1));
        assert!(!hub.unregister(1, a.id));
        assert!(hub.unregister(1, b.id));
        assert!(!hub.is_online(1));
    }

    #[test]
    fn delivery_skips_the_origin_and_cuts_off_full_queues() {
        let hub = Hub::new(2, ConnLimits::default());
        let mut a = hub.register(1, 10, ADDR).expect("admitted");
        let mut b = hub.register(2, 20, ADDR).expect("admitted");
        hub.send_to_users(&[1, 2], &frame("x"), Some(a.id));
        assert!(a.rx.try_recv().is_err(), "origin excluded");
        assert!(b.rx.try_recv().is_ok());
        for _ in 0..3 {
            hub.send_to_users(&[2], &frame("y"), None);
        }
        assert_eq!(
            b.kill.reason(),
            Some(CloseReason::SlowClient),
            "a full queue cuts the connection off"
        );
        assert!(!a.kill.is_killed());
    }

    #[test]
    fn connection_limits_per_user_and_address_free_up_on_close() {
        let other: IpAddr = [10, 0, 0, 2].into();
        let hub = Hub::new(
            4,
            ConnLimits {
                per_user: 2,
                per_address: 3,
            },
        );
        let a = hub.register(1, 10, ADDR).expect("first");
        let _b = hub.register(1, 10, other).expect("second");
        assert!(!hub.admits(1, ADDR), "a third of the same user");
        assert!(hub.register(1, 10, ADDR).is_none());
        let _c = hub
            .register(2, 20, ADDR)
            .expect("another user, same address");
        let _d = hub.register(3, 30, ADDR).expect("third from the address");
        assert!(
            hub.register(4, 40, ADDR).is_none(),
            "a fourth from the address"
        );
        hub.unregister(1, a.id);
        assert!(hub.admits(4, ADDR) && hub.admits(1, other));
    }

    #[test]
    fn ending_a_session_closes_only_its_connections() {
        let hub = Hub::new(4, ConnLimits::default());
        let a = hub.register(1, 10, ADDR).expect("admitted");
        let b = hub.register(1, 11, ADDR).expect("admitted");
        hub.end_sessions(&[10]);
        assert_eq!(a.kill.reason(), Some(CloseReason::SessionEnded));
        assert!(!b.kill.is_killed());
        let mut sessions = hub.session_ids();
        sessions.sort_unstable();
        assert_eq!(sessions, [10, 11]);
    }

    #[test]
    fn a_member_list_read_before_an_invalidation_is_not_cached() {
        let hub = Hub::new(4, ConnLimits::default());
        let epoch = hub.cached_members(7).expect_err("not cached");
        // A removal commits and invalidates while the stale list is being read…
        hub.forget_members(7);
        hub.cache_members(7, Arc::from(vec![1, 2]), epoch);
        assert!(
            hub.cached_members(7).is_err(),
            "the stale list was not cached"
        );
        let epoch = hub.cached_members(7).expect_err("not cached");
        hub.cache_members(7, Arc::from(vec![1]), epoch);
        assert_eq!(&*hub.cached_members(7).expect("cached"), &[1]);
    }
}
