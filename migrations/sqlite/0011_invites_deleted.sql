-- Self-hosting: invites (registration `invite`) and deleted accounts.
--
-- An invite's code is kept as it is, not hashed: admins see their invites' links again on
-- the admin screen, and whoever reads this database can do far more than sign up.
CREATE TABLE invites (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    code        TEXT    NOT NULL UNIQUE,
    created_by  INTEGER REFERENCES users (id) ON DELETE SET NULL,
    max_uses    INTEGER NOT NULL,
    uses        INTEGER NOT NULL DEFAULT 0,
    expires_at  INTEGER NOT NULL,
    revoked_at  INTEGER,
    created_at  INTEGER NOT NULL
);

-- A deleted account keeps its row, so that its messages keep their sender: its email,
-- password, name and avatar are gone at once; its username stays taken for a grace
-- period (so nobody can pass for the person in the conversations they were in), then it
-- is freed.
ALTER TABLE users ADD COLUMN deleted_at INTEGER;
