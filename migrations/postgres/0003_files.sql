-- Uploaded files (voice messages, avatars), kept in the blob store under random ids.
-- A voice message carries its file's description in its own row, so reading history
-- needs no join; `files` says who may fetch a file and lets orphans be found.
CREATE TABLE files (
    id               TEXT   PRIMARY KEY,
    kind             TEXT   NOT NULL CHECK (kind IN ('voice', 'avatar')),
    owner_id         BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    conversation_id  BIGINT REFERENCES conversations (id) ON DELETE CASCADE,
    mime             TEXT   NOT NULL,
    size             BIGINT NOT NULL,
    created_at       BIGINT NOT NULL
);

ALTER TABLE messages ADD COLUMN file_id TEXT REFERENCES files (id);
ALTER TABLE messages ADD COLUMN file_mime TEXT;
ALTER TABLE messages ADD COLUMN file_size BIGINT;
ALTER TABLE messages ADD COLUMN file_duration_ms BIGINT;
-- 64 peaks 0–255 as hex (empty when the codec cannot be decoded here).
ALTER TABLE messages ADD COLUMN file_waveform TEXT;
