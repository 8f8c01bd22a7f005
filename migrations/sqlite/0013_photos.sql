-- Photos: a message of kind 'photo' carries an image (its caption in `body`) and a
-- thumbnail for the timeline, both files of kind 'photo' readable by the conversation's
-- members. The message row describes both, so history needs no join.
--
-- SQLite cannot change a CHECK constraint: `files` and `messages` are rebuilt as its
-- documentation says (https://sqlite.org/lang_altertable.html#otheralter): the new table
-- filled with the old rows under the same ids, the old one dropped, the new one renamed,
-- its indexes and triggers made again, all in the migration's one transaction. The
-- server runs migrations with foreign keys off (the pragma cannot change inside a
-- transaction, and sqlx gives SQLite migrations one) and checks them all afterwards
-- (`PRAGMA foreign_key_check`: start-up fails on any dangling reference). The full-text
-- index (`messages_fts`, external content on `messages` by rowid) stays valid: the ids
-- do not change, and `sqlite_sequence` keeps the highest id, so none is used again.

CREATE TABLE files_new (
    id               TEXT   PRIMARY KEY,
    kind             TEXT   NOT NULL CHECK (kind IN ('voice', 'avatar', 'photo')),
    owner_id         BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    conversation_id  BIGINT REFERENCES conversations (id) ON DELETE CASCADE,
    mime             TEXT   NOT NULL,
    size             BIGINT NOT NULL,
    created_at       BIGINT NOT NULL
);
INSERT INTO files_new (id, kind, owner_id, conversation_id, mime, size, created_at)
    SELECT id, kind, owner_id, conversation_id, mime, size, created_at FROM files;
DROP TABLE files;
ALTER TABLE files_new RENAME TO files;

CREATE TABLE messages_new (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    conversation_id  INTEGER NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    seq              INTEGER NOT NULL,
    sender_id        INTEGER NOT NULL REFERENCES users (id),
    kind             TEXT    NOT NULL CHECK (kind IN ('text', 'voice', 'photo')),
    body             TEXT    NOT NULL,
    client_id        TEXT,
    created_at       INTEGER NOT NULL,
    file_id          TEXT    REFERENCES files (id),
    file_mime        TEXT,
    file_size        BIGINT,
    file_duration_ms BIGINT,
    file_waveform    TEXT,
    rev              INTEGER NOT NULL DEFAULT 0,
    edited_at        INTEGER,
    deleted_at       INTEGER,
    reply_to_id      INTEGER REFERENCES messages (id),
    reactions        TEXT    NOT NULL DEFAULT '[]',
    mentions         TEXT    NOT NULL DEFAULT '[]',
    played_by        TEXT    NOT NULL DEFAULT '[]',
    file_width       INTEGER,
    file_height      INTEGER,
    thumb_id         TEXT    REFERENCES files (id),
    thumb_mime       TEXT,
    thumb_size       BIGINT,
    thumb_width      INTEGER,
    thumb_height     INTEGER,
    UNIQUE (conversation_id, seq)
);
INSERT INTO messages_new (id, conversation_id, seq, sender_id, kind, body, client_id, created_at,
        file_id, file_mime, file_size, file_duration_ms, file_waveform, rev, edited_at,
        deleted_at, reply_to_id, reactions, mentions, played_by)
    SELECT id, conversation_id, seq, sender_id, kind, body, client_id, created_at,
        file_id, file_mime, file_size, file_duration_ms, file_waveform, rev, edited_at,
        deleted_at, reply_to_id, reactions, mentions, played_by FROM messages;
-- Ids are never handed out twice, even those of rows gone since.
UPDATE sqlite_sequence SET seq = (SELECT seq FROM sqlite_sequence WHERE name = 'messages')
    WHERE name = 'messages_new' AND EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'messages');
DROP TABLE messages;
ALTER TABLE messages_new RENAME TO messages;

CREATE UNIQUE INDEX messages_sender_client_id ON messages (sender_id, client_id) WHERE client_id IS NOT NULL;
CREATE INDEX messages_changes ON messages (conversation_id, rev) WHERE rev > 0;
CREATE INDEX messages_reply_to ON messages (reply_to_id) WHERE reply_to_id IS NOT NULL;

CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages WHEN new.body <> '' BEGIN
    INSERT INTO messages_fts (rowid, body) VALUES (new.id, new.body);
END;
CREATE TRIGGER messages_fts_update AFTER UPDATE OF body ON messages
WHEN old.body IS NOT new.body BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, body)
        SELECT 'delete', old.id, old.body WHERE old.body <> '';
    INSERT INTO messages_fts (rowid, body) SELECT new.id, new.body WHERE new.body <> '';
END;
CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages WHEN old.body <> '' BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, body) VALUES ('delete', old.id, old.body);
END;

