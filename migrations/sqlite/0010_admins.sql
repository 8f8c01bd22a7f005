-- Self-hosting: admins, disabled accounts, and the record of admin actions. 1: admin (an
-- integer on both databases: booleans do not pass portably through sqlx's Any driver).
-- The first account on a server is made its admin when it is created; on a server that
-- had accounts before this migration, the oldest one becomes the admin.
ALTER TABLE users ADD COLUMN is_admin INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN disabled_at INTEGER;
UPDATE users SET is_admin = 1 WHERE id = (SELECT MIN(id) FROM users);

-- Who did what to whom, when: every admin action, the operator CLI's included (actor
-- NULL: the CLI, or an account since deleted).
CREATE TABLE admin_actions (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    actor_id   INTEGER REFERENCES users (id) ON DELETE SET NULL,
    action     TEXT    NOT NULL,
    target_id  INTEGER,
    detail     TEXT    NOT NULL DEFAULT '',
    at         INTEGER NOT NULL
);
