-- Accounts, sessions, conversations, members and messages.
-- Timestamps are UTC milliseconds since the Unix epoch; ids are 64-bit integers.

CREATE TABLE users (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    username            TEXT    NOT NULL,
    username_lower      TEXT    NOT NULL UNIQUE,
    email               TEXT    NOT NULL,
    email_lower         TEXT    NOT NULL UNIQUE,
    display_name        TEXT    NOT NULL,
    display_name_lower  TEXT    NOT NULL,
    password_hash       TEXT    NOT NULL,
    avatar_id           TEXT,
    created_at          INTEGER NOT NULL,
    last_seen_at        INTEGER
);
CREATE INDEX users_display_name_lower ON users (display_name_lower);

CREATE TABLE sessions (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id       INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash    TEXT    NOT NULL UNIQUE,
    created_at    INTEGER NOT NULL,
    last_used_at  INTEGER NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id);

CREATE TABLE conversations (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    kind              TEXT    NOT NULL CHECK (kind IN ('direct', 'group')),
    title             TEXT,
    owner_id          INTEGER REFERENCES users (id),
    -- "small_id:large_id" for direct conversations: one per pair.
    direct_key        TEXT    UNIQUE,
    -- Highest seq handed out; bumped in the same transaction as each insert.
    last_seq          INTEGER NOT NULL DEFAULT 0,
    created_at        INTEGER NOT NULL,
    last_activity_at  INTEGER NOT NULL
);

CREATE TABLE members (
    conversation_id  INTEGER NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    user_id          INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    joined_at        INTEGER NOT NULL,
    last_read_seq    INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (conversation_id, user_id)
);
CREATE INDEX members_user ON members (user_id);

CREATE TABLE messages (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    conversation_id  INTEGER NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    seq              INTEGER NOT NULL,
    sender_id        INTEGER NOT NULL REFERENCES users (id),
    kind             TEXT    NOT NULL CHECK (kind IN ('text', 'voice')),
    body             TEXT    NOT NULL,
    client_id        TEXT,
    created_at       INTEGER NOT NULL,
    UNIQUE (conversation_id, seq)
);
CREATE UNIQUE INDEX messages_sender_client_id ON messages (sender_id, client_id) WHERE client_id IS NOT NULL;
