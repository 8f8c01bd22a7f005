//! The outbox: messages accepted from the user and not yet acknowledged by the server.
//! Each keeps its `client_id` for life, so resending it (on every connection, after a
//! timeout, after a rate limit) is safe: the server stores it at most once and acks again.
//! Pure bookkeeping; the realtime task decides when to send.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// A message waiting for its acknowledgement. Serializable, so an app can save the
/// outbox ([`crate::Realtime::pending`]) and hand it back on the next start
/// ([`crate::RealtimeOptions::pending`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingMessage {
    pub client_id: String,
    pub conversation_id: i64,
    pub body: String,
    /// The id of the message (of the same conversation) it answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to_id: Option<i64>,
    #[serde(with = "time::serde::rfc3339")]
    pub queued_at: OffsetDateTime,
    /// How many times it was sent so far.
    #[serde(default)]
    pub attempts: u32,
    /// The code of the last temporary refusal (`rate_limited`, `storage_full`…).
    #[serde(default)]
    pub last_error: Option<String>,
}

impl PendingMessage {
    /// A reply to message `reply_to_id`, with a fresh random `client_id`.
    pub fn reply(conversation_id: i64, body: String, reply_to_id: i64) -> Self {
        Self {
            reply_to_id: Some(reply_to_id),
            ..Self::new(conversation_id, body)
        }
    }

    /// A new message with a fresh random `client_id`.
    pub fn new(conversation_id: i64, body: String) -> Self {
        Self {
            client_id: new_client_id(),
            conversation_id,
            body,
            reply_to_id: None,
            queued_at: OffsetDateTime::now_utc(),
            attempts: 0,
            last_error: None,
        }
    }
}

/// A fresh `client_id`: 128 random bits as 32 hex digits (the server allows 64 bytes).
pub fn new_client_id() -> String {
    format!("{:032x}", rand::random::<u128>())
}

/// How a refusal of a send is treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Try again later with the same `client_id`.
    Retry,
    /// Give up: report it and drop it from the outbox.
    Final,
}

/// Temporary refusals: the same send may succeed later.
pub(crate) fn classify(code: &str) -> Refusal {
    match code {
        "rate_limited"
        | "storage_full"
        | "internal"
        | "request_timeout"
        | "unavailable"
        | "too_many_connections" => Refusal::Retry,
        _ => Refusal::Final,
    }
}

#[derive(Debug)]
struct Entry {
    msg: PendingMessage,
    /// The connection it was last sent on, and when.
    sent: Option<(u64, Instant)>,
    /// Not to be sent before this (after a temporary refusal).
    not_before: Option<Instant>,
}

#[derive(Debug, Default)]
pub(crate) struct Outbox {
    entries: Vec<Entry>,
}

impl Outbox {
    pub(crate) fn new(pending: Vec<PendingMessage>) -> Self {
        let mut outbox = Self::default();
        for msg in pending {
            outbox.push(msg);
        }
        outbox
    }

    /// Adds a message (a `client_id` already queued is left as it is).
    pub(crate) fn push(&mut self, msg: PendingMessage) {
        if !self.contains(&msg.client_id) {
            self.entries.push(Entry {
                msg,
                sent: None,
                not_before: None,
            });
        }
    }

    pub(crate) fn contains(&self, client_id: &str) -> bool {
        self.entries.iter().any(|e| e.msg.client_id == client_id)
    }

    pub(crate) fn remove(&mut self, client_id: &str) -> Option<PendingMessage> {
        let i = self
            .entries
            .iter()
            .position(|e| e.msg.client_id == client_id)?;
        Some(self.entries.remove(i).msg)
    }

    pub(crate) fn snapshot(&self) -> Vec<PendingMessage> {
        self.entries.iter().map(|e| e.msg.clone()).collect()
    }

    /// What to send now on connection `conn`: entries not yet sent on it (or sent longer
    /// than `ack_timeout` ago), not deferred, at most `window` awaiting an ack on it.
    /// They are marked as sent.
    pub(crate) fn due(
        &mut self,
        conn: u64,
        now: Instant,
        window: usize,
        ack_timeout: Duration,
    ) -> Vec<PendingMessage> {
        let mut in_flight = self
            .entries
            .iter()
            .filter(|e| matches!(e.sent, Some((c, at)) if c == conn && now.duration_since(at) < ack_timeout))
            .count();
        let mut out = Vec::new();
        for e in &mut self.entries {
            if in_flight >= window {
                break;
            }
            let waiting = match e.sent {
                Some((c, at)) => c == conn && now.duration_since(at) < ack_timeout,
                None => false,
            };
            if waiting || e.not_before.is_some_and(|t| t > now) {
                continue;
            }
            e.sent = Some((conn, now));
            e.not_before = None;
            e.msg.attempts = e.msg.attempts.saturating_add(1);
            in_flight += 1;
            out.push(e.msg.clone());
        }
        out
    }

    /// A temporary refusal of `client_id`: send it again after `delay`.
    pub(crate) fn defer(&mut self, client_id: &str, code: &str, delay: Duration, now: Instant) {
        if let Some(e) = self
            .entries
            .iter_mut()
            .find(|e| e.msg.client_id == client_id)
        {
            e.sent = None;
            e.not_before = Some(now + delay);
            e.msg.last_error = Some(code.to_owned());
        }
    }

    /// A frame of connection `conn` was dropped unseen (rate limited without a
    /// `client_id`): everything awaiting an ack there is sent again after `delay`.
    pub(crate) fn defer_in_flight(&mut self, conn: u64, delay: Duration, now: Instant) {
        for e in &mut self.entries {
            if matches!(e.sent, Some((c, _)) if c == conn) {
                e.sent = None;
                e.not_before = Some(now + delay);
                e.msg.last_error = Some("rate_limited".to_owned());
            }
        }
    }

    /// The soonest moment a deferred or unacknowledged entry needs attention.
    pub(crate) fn next_wakeup(&self, ack_timeout: Duration) -> Option<Instant> {
        self.entries
            .iter()
            .filter_map(|e| match (e.not_before, e.sent) {
                (Some(t), _) => Some(t),
                (None, Some((_, at))) => Some(at + ack_timeout),
                (None, None) => None,
            })
            .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outbox(n: usize) -> Outbox {
        Outbox::new(
            (0..n)
                .map(|i| PendingMessage::new(1, format!("m{i}")))
                .collect(),
        )
    }

    #[test]
    fn each_message_is_sent_once_per_connection_within_the_window() {
        let mut o = outbox(5);
        let t = Instant::now();
        let ack = Duration::from_secs(10);
        assert_eq!(o.due(1, t, 3, ack).len(), 3);
        assert_eq!(o.due(1, t, 3, ack).len(), 0, "window full");
        let first = o.snapshot()[0].client_id.clone();
        assert!(o.remove(&first).is_some());
        assert_eq!(o.due(1, t, 3, ack).len(), 1);
        // A new connection sends everything again, with the same client ids.
        let again = o.due(2, t, 10, ack);
        assert_eq!(again.len(), 4);
        assert!(again.iter().all(|m| m.attempts == 2 || m.attempts == 1));
        // Unacknowledged past the timeout: resent on the same connection.
        assert_eq!(o.due(2, t + ack, 10, ack).len(), 4);
    }

    #[test]
    fn refusals_defer_or_end() {
        assert_eq!(classify("rate_limited"), Refusal::Retry);
        assert_eq!(classify("storage_full"), Refusal::Retry);
        assert_eq!(classify("not_found"), Refusal::Final);
        assert_eq!(classify("invalid_body"), Refusal::Final);
        let mut o = outbox(2);
        let t = Instant::now();
        let ack = Duration::from_secs(10);
        let sent = o.due(1, t, 10, ack);
        o.defer(
            &sent[0].client_id,
            "storage_full",
            Duration::from_secs(2),
            t,
        );
        assert_eq!(o.due(1, t, 10, ack).len(), 0);
        assert_eq!(o.next_wakeup(ack), Some(t + Duration::from_secs(2)));
        let later = o.due(1, t + Duration::from_secs(2), 10, ack);
        assert_eq!(later.len(), 1);
        assert_eq!(later[0].last_error.as_deref(), Some("storage_full"));
        o.defer_in_flight(1, Duration::from_secs(1), t);
        assert_eq!(o.due(1, t + Duration::from_secs(1), 10, ack).len(), 2);
    }

    #[test]
    fn pending_messages_round_trip_through_json() {
        let o = outbox(2);
        let saved = serde_json::to_string(&o.snapshot()).expect("serialize");
        let back: Vec<PendingMessage> = serde_json::from_str(&saved).expect("parse");
        assert_eq!(back, o.snapshot());
        let restored = Outbox::new(back.clone());
        assert_eq!(restored.snapshot(), back);
        assert_eq!(new_client_id().len(), 32);
        assert_ne!(new_client_id(), new_client_id());
    }
}
