-- The conversation's last seq when the member joined: live delivery to a connection
-- that has no cursor for the conversation starts after it (nothing earlier unless asked).
ALTER TABLE members ADD COLUMN joined_seq BIGINT NOT NULL DEFAULT 0;
