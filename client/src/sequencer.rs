//! Exactly once, in order: per-conversation cursors (the last seq delivered), duplicates
//! dropped by `(conversation_id, seq)`, and messages that arrive past a hole held back
//! until the hole is filled. Pure bookkeeping: no I/O; the realtime task fetches holes.

use std::collections::BTreeMap;

/// What became of an offered item.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Offer<T> {
    /// Deliver these, in this order: the item, then any held ones it made contiguous.
    Ready(Vec<T>),
    /// Already delivered (seq at or below the cursor): handed back, not to be delivered.
    Duplicate(T),
    /// Held past a hole: seqs `after + 1 ..= until` are missing.
    Held {
        conversation_id: i64,
        after: i64,
        until: i64,
    },
}

#[derive(Debug)]
pub(crate) struct Sequencer<T> {
    /// conversation id → last seq delivered.
    cursors: BTreeMap<i64, i64>,
    /// (conversation id, seq) → an item waiting for the seqs before it.
    held: BTreeMap<(i64, i64), T>,
}

impl<T> Sequencer<T> {
    pub(crate) fn new(cursors: BTreeMap<i64, i64>) -> Self {
        Self {
            cursors,
            held: BTreeMap::new(),
        }
    }

    pub(crate) fn cursors(&self) -> &BTreeMap<i64, i64> {
        &self.cursors
    }

    pub(crate) fn cursor(&self, conversation_id: i64) -> Option<i64> {
        self.cursors.get(&conversation_id).copied()
    }

    /// Moves a cursor forward (never back); held items it passes are dropped, the ones
    /// right after it are handed out.
    pub(crate) fn advance(&mut self, conversation_id: i64, seq: i64) -> Vec<T> {
        let cursor = self.cursors.entry(conversation_id).or_insert(seq);
        if *cursor < seq {
            *cursor = seq;
        }
        let cursor = *cursor;
        let stale: Vec<(i64, i64)> = self
            .held
            .range((conversation_id, i64::MIN)..=(conversation_id, cursor))
            .map(|(k, _)| *k)
            .collect();
        for key in stale {
            self.held.remove(&key);
        }
        self.release(conversation_id)
    }

    /// Sets a conversation's cursor when it has none (e.g. from the conversation list).
    pub(crate) fn set_if_absent(&mut self, conversation_id: i64, seq: i64) {
        self.cursors.entry(conversation_id).or_insert(seq);
    }

    /// Forgets a conversation (the user left it or was removed).
    pub(crate) fn forget(&mut self, conversation_id: i64) {
        self.cursors.remove(&conversation_id);
        self.held
            .retain(|(conversation, _), _| *conversation != conversation_id);
    }

    /// Drops everything held (a new connection resumes from the cursors anyway).
    pub(crate) fn clear_held(&mut self) {
        self.held.clear();
    }

    /// The first hole of a conversation with held items: `(after, until)`.
    pub(crate) fn hole(&self, conversation_id: i64) -> Option<(i64, i64)> {
        let cursor = self.cursor(conversation_id)?;
        let (&(_, first), _) = self
            .held
            .range((conversation_id, i64::MIN)..=(conversation_id, i64::MAX))
            .next()?;
        (first > cursor + 1).then_some((cursor, first - 1))
    }

    /// Offers item `seq` of a conversation. A conversation without a cursor starts at
    /// its first item (the server starts delivery there).
    pub(crate) fn offer(&mut self, conversation_id: i64, seq: i64, item: T) -> Offer<T> {
        let cursor = match self.cursor(conversation_id) {
            Some(cursor) => cursor,
            None => seq - 1,
        };
        if seq <= cursor || self.held.contains_key(&(conversation_id, seq)) {
            return Offer::Duplicate(item);
        }
        if seq > cursor + 1 {
            self.held.insert((conversation_id, seq), item);
            let until = self
                .hole(conversation_id)
                .map_or(seq - 1, |(_, until)| until);
            return Offer::Held {
                conversation_id,
                after: cursor,
                until,
            };
        }
        self.cursors.insert(conversation_id, seq);
        let mut ready = vec![item];
        ready.extend(self.release(conversation_id));
        Offer::Ready(ready)
    }

    /// Hands out the held items right after the cursor, moving it.
    fn release(&mut self, conversation_id: i64) -> Vec<T> {
        let mut out = Vec::new();
        let Some(mut cursor) = self.cursor(conversation_id) else {
            return out;
        };
        while let Some(item) = self.held.remove(&(conversation_id, cursor + 1)) {
            cursor += 1;
            out.push(item);
        }
        self.cursors.insert(conversation_id, cursor);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seq() -> Sequencer<i64> {
        Sequencer::new(BTreeMap::from([(1, 3)]))
    }

    #[test]
    fn in_order_items_are_delivered_and_move_the_cursor() {
        let mut s = seq();
        assert_eq!(s.offer(1, 4, 4), Offer::Ready(vec![4]));
        assert_eq!(s.offer(1, 5, 5), Offer::Ready(vec![5]));
        assert_eq!(s.cursor(1), Some(5));
    }

    #[test]
    fn duplicates_are_dropped_by_conversation_and_seq() {
        let mut s = seq();
        assert_eq!(s.offer(1, 3, 3), Offer::Duplicate(3));
        assert_eq!(s.offer(1, 4, 4), Offer::Ready(vec![4]));
        assert_eq!(s.offer(1, 4, 4), Offer::Duplicate(4));
        assert_eq!(s.offer(1, 2, 2), Offer::Duplicate(2));
        // Another conversation's seq 4 is not a duplicate.
        assert_eq!(s.offer(2, 4, 40), Offer::Ready(vec![40]));
    }

    #[test]
    fn a_hole_holds_later_items_until_it_is_filled_once() {
        let mut s = seq();
        assert_eq!(
            s.offer(1, 6, 6),
            Offer::Held {
                conversation_id: 1,
                after: 3,
                until: 5
            }
        );
        assert_eq!(
            s.offer(1, 7, 7),
            Offer::Held {
                conversation_id: 1,
                after: 3,
                until: 5
            }
        );
        assert_eq!(s.offer(1, 6, 6), Offer::Duplicate(6), "held counts as had");
        assert_eq!(s.hole(1), Some((3, 5)));
        assert_eq!(s.offer(1, 4, 4), Offer::Ready(vec![4]));
        assert_eq!(s.hole(1), Some((4, 5)));
        assert_eq!(s.offer(1, 5, 5), Offer::Ready(vec![5, 6, 7]));
        assert_eq!(s.hole(1), None);
        assert_eq!(s.cursor(1), Some(7));
        assert_eq!(s.offer(1, 6, 6), Offer::Duplicate(6));
    }

    #[test]
    fn gap_filled_from_history_out_of_order_delivers_each_once_in_order() {
        let mut s = seq();
        let mut delivered = Vec::new();
        // Live 9, then a history page 4..=8 offered with an overlap and a repeat.
        for (n, item) in [9, 6, 4, 5, 5, 7, 8, 9, 3].into_iter().map(|n| (n, n)) {
            if let Offer::Ready(items) = s.offer(1, n, item) {
                delivered.extend(items);
            }
        }
        assert_eq!(delivered, [4, 5, 6, 7, 8, 9]);
    }

    #[test]
    fn an_unknown_conversation_starts_at_its_first_item() {
        let mut s = seq();
        assert_eq!(s.offer(9, 12, 12), Offer::Ready(vec![12]));
        assert_eq!(s.cursor(9), Some(12));
        s.set_if_absent(9, 1);
        assert_eq!(s.cursor(9), Some(12));
    }

    #[test]
    fn advancing_drops_passed_items_and_releases_the_next() {
        let mut s = seq();
        let _ = s.offer(1, 6, 6);
        let _ = s.offer(1, 8, 8);
        assert_eq!(s.advance(1, 6), Vec::<i64>::new());
        assert_eq!(s.advance(1, 7), vec![8]);
        assert_eq!(s.advance(1, 2), Vec::<i64>::new(), "never backwards");
        assert_eq!(s.cursor(1), Some(8));
        s.forget(1);
        assert_eq!(s.cursor(1), None);
    }
}
