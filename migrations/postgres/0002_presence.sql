-- Presence across server instances sharing this database: each running instance
-- heartbeats in `instances` and lists its connected users in `presence`. Rows of an
-- instance that stopped heartbeating are purged by the others.
CREATE TABLE instances (
    id            TEXT   PRIMARY KEY,
    heartbeat_at  BIGINT NOT NULL
);

CREATE TABLE presence (
    instance_id  TEXT   NOT NULL REFERENCES instances (id) ON DELETE CASCADE,
    user_id      BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    PRIMARY KEY (instance_id, user_id)
);
