-- Messages that change after they are sent: edits, deletions, replies, reactions,
-- mentions; and muted conversations.
--
-- Every change to a stored message takes its conversation's next change number
-- (`conversations.last_change`, bumped in the changing transaction, under the same row
-- lock as seq allocation) and keeps it as the message's `rev`. A client resumes changes
-- after the change number it has, as it resumes messages after the seq it has: the
-- messages of a conversation with `rev` above its cursor are the ones that changed.
ALTER TABLE conversations ADD COLUMN last_change BIGINT NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN rev BIGINT NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN edited_at BIGINT;
ALTER TABLE messages ADD COLUMN deleted_at BIGINT;
ALTER TABLE messages ADD COLUMN reply_to_id BIGINT REFERENCES messages (id);
-- The reactions in their wire shape, a JSON array of {emoji, user_ids} in the order
-- each emoji was first used; changed only under the conversation's change lock.
ALTER TABLE messages ADD COLUMN reactions TEXT NOT NULL DEFAULT '[]';
-- The ids of the members mentioned, a JSON array; `mentions` below is its index.
ALTER TABLE messages ADD COLUMN mentions TEXT NOT NULL DEFAULT '[]';
CREATE INDEX messages_changes ON messages (conversation_id, rev) WHERE rev > 0;
CREATE INDEX messages_reply_to ON messages (reply_to_id) WHERE reply_to_id IS NOT NULL;

-- Who is mentioned where: the "@" count of the conversation list.
CREATE TABLE mentions (
    user_id          BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    conversation_id  BIGINT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    seq              BIGINT NOT NULL,
    PRIMARY KEY (user_id, conversation_id, seq)
);

-- The conversation's last change when the member joined (live changes start after it,
-- as live messages start after `joined_seq`), and whether the member muted it.
ALTER TABLE members ADD COLUMN joined_change BIGINT NOT NULL DEFAULT 0;
ALTER TABLE members ADD COLUMN muted BIGINT NOT NULL DEFAULT 0;
