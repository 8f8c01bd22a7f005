-- Played receipts of voice messages: who played each one and when, a JSON array of
-- {user_id, at} (at in ms since the epoch) in the order they first played it; changed
-- only under the conversation's change lock, like `reactions`, and taking a change
-- number (`rev`), so clients that resume or load history see it.
ALTER TABLE messages ADD COLUMN played_by TEXT NOT NULL DEFAULT '[]';
