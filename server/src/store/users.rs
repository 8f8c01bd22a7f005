//! Accounts: create, look up, search, update.

use sqlx::FromRow;

use super::{
    Store, StoreError, StoreResult, is_unique_violation, like_prefix, now_ms, placeholders,
};

#[derive(Debug, Clone, FromRow)]
pub struct UserRow {
    pub id: i64,
    pub username: String,
    pub email: String,
    pub display_name: String,
    pub password_hash: String,
    pub avatar_id: Option<String>,
    pub avatar_small_id: Option<String>,
    pub created_at: i64,
    pub last_seen_at: Option<i64>,
    /// 1: an admin of the server.
    pub is_admin: i64,
    /// When the account was disabled, if it is.
    pub disabled_at: Option<i64>,
    /// When the account was deleted, if it was.
    pub deleted_at: Option<i64>,
}

impl UserRow {
    pub fn is_admin(&self) -> bool {
        self.is_admin != 0
    }
}

pub(super) const USER_COLUMNS: &str = "id, username, email, display_name, password_hash, avatar_id, \
     avatar_small_id, created_at, last_seen_at, is_admin, disabled_at, deleted_at";

/// How long a deleted account's username stays taken (nobody can pass for the person in
/// the conversations they were in); then the next registration may take it.
pub const DELETED_USERNAME_GRACE_DAYS: i64 = 30;
const DELETED_USERNAME_GRACE_MS: i64 = DELETED_USERNAME_GRACE_DAYS * 24 * 60 * 60 * 1000;

/// The display name of a deleted account.
pub const DELETED_NAME: &str = "Deleted user";

pub struct NewUser<'a> {
    pub username: &'a str,
    pub email: &'a str,
    pub display_name: &'a str,
    pub password_hash: &'a str,
    /// Made an admin (the operator's CLI). The first account of a server is one anyway.
    pub admin: bool,
    /// The code of the invite it uses up one use of (`Refused` when it cannot).
    pub invite: Option<&'a str>,
}

/// One admin action as recorded: who (`None`: the operator's CLI), what, to whom, when.
#[derive(Debug, Clone, FromRow)]
pub struct AdminActionRow {
    pub id: i64,
    pub actor_id: Option<i64>,
    pub action: String,
    pub target_id: Option<i64>,
    pub detail: String,
    pub at: i64,
}

/// What [`Store::delete_account`] leaves to do after its commit.
#[derive(Debug, Default)]
pub struct DeletedAccount {
    pub sessions: Vec<i64>,
    pub avatar_files: Vec<String>,
}

/// Fields of `PATCH /api/me` that were given (already validated).
#[derive(Default)]
pub struct ProfileUpdate<'a> {
    pub display_name: Option<&'a str>,
    pub email: Option<&'a str>,
    pub password_hash: Option<&'a str>,
}

/// An account whose email was stored before emails were NFKC-normalized and that was left
/// as it is: once normalized, it would be another account's email.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailClash {
    pub user_id: i64,
    pub email: String,
    pub normalized: String,
    /// The account that has, or got first, the normalized email.
    pub other_user_id: i64,
}

/// The name [`Store::normalize_legacy_emails`] is recorded under in `data_steps`.
const EMAILS_NFKC: &str = "emails_nfkc";

impl Store {
    /// Normalizes, once, the emails stored before emails were NFKC-normalized
    /// (`text::normalize_email`; compared ignoring case, as at sign-in): each such account
    /// gets its normalized email, unless another account has it or got it first (in id
    /// order). Those are left as they are, never merged, and returned for the operator
    /// (the server logs them). A second call does nothing.
    pub async fn normalize_legacy_emails(&self) -> StoreResult<Vec<EmailClash>> {
        use std::collections::HashMap;
        let mut tx = self.write_tx().await?;
        let done: Option<String> =
            sqlx::query_scalar("SELECT name FROM data_steps WHERE name = $1")
                .bind(EMAILS_NFKC)
                .fetch_optional(&mut *tx)
                .await?;
        if done.is_some() {
            tx.rollback().await?;
            return Ok(Vec::new());
        }
        let users: Vec<(i64, String, String)> =
            sqlx::query_as("SELECT id, email, email_lower FROM users ORDER BY id")
                .fetch_all(&mut *tx)
                .await?;
        let mut owner: HashMap<String, i64> = users
            .iter()
            .map(|(id, _, lower)| (lower.clone(), *id))
            .collect();
        let mut clashes = Vec::new();
        for (id, email, lower) in &users {
            let normalized = crate::text::normalize_email(email);
            let normalized_lower = normalized.to_lowercase();
            if normalized == *email && normalized_lower == *lower {
                continue;
            }
            match owner.get(&normalized_lower) {
                Some(other) if other != id => {
                    clashes.push(EmailClash {
                        user_id: *id,
                        email: email.clone(),
                        normalized,
                        other_user_id: *other,
                    });
                    continue;
                }
                _ => {}
            }
            sqlx::query("UPDATE users SET email = $1, email_lower = $2 WHERE id = $3")
                .bind(&normalized)
                .bind(&normalized_lower)
                .bind(id)
                .execute(&mut *tx)
                .await?;
            owner.remove(lower);
            owner.insert(normalized_lower, *id);
        }
        sqlx::query("INSERT INTO data_steps (name, done_at) VALUES ($1, $2)")
            .bind(EMAILS_NFKC)
            .bind(now_ms())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(clashes)
    }

    /// Creates an account; `Conflict` when the username or email is taken (ignoring case),
    /// `Refused` when its invite cannot be used. In one transaction: the username of an
    /// account deleted more than [`DELETED_USERNAME_GRACE_DAYS`] ago is freed, the invite
    /// takes one use (only if the account is created), the account is inserted.
    pub async fn create_user(&self, new: NewUser<'_>) -> StoreResult<UserRow> {
        let mut tx = self.write_tx().await?;
        // A freed name becomes one no registration can choose (`~` is not allowed).
        sqlx::query(
            "UPDATE users SET username = '~deleted-' || CAST(id AS TEXT), \
             username_lower = '~deleted-' || CAST(id AS TEXT) \
             WHERE username_lower = $1 AND deleted_at IS NOT NULL AND deleted_at < $2",
        )
        .bind(new.username.to_lowercase())
        .bind(now_ms() - DELETED_USERNAME_GRACE_MS)
        .execute(&mut *tx)
        .await?;
        if let Some(code) = new.invite {
            super::invites::use_invite(&mut tx, code).await?;
        }
        let sql = format!(
            "INSERT INTO users (username, username_lower, email, email_lower, display_name, \
             display_name_lower, password_hash, created_at, is_admin) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, \
             CASE WHEN $9 = 1 OR NOT EXISTS (SELECT 1 FROM users) THEN 1 ELSE 0 END) \
             RETURNING {USER_COLUMNS}"
        );
        let result = sqlx::query_as::<_, UserRow>(&sql)
            .bind(new.username)
            .bind(new.username.to_lowercase())
            .bind(new.email)
            .bind(new.email.to_lowercase())
            .bind(new.display_name)
            .bind(new.display_name.to_lowercase())
            .bind(new.password_hash)
            .bind(now_ms())
            .bind(i64::from(new.admin))
            .fetch_one(&mut *tx)
            .await;
        match result {
            Ok(user) => {
                tx.commit().await?;
                Ok(user)
            }
            Err(err) if is_unique_violation(&err) => {
                tx.rollback().await?;
                Err(self.which_taken(new.username).await)
            }
            Err(err) => Err(err.into()),
        }
    }

    /// After a unique violation on insert: was it the username or the email?
    async fn which_taken(&self, username: &str) -> StoreError {
        let by_name =
            sqlx::query_scalar::<_, i64>("SELECT id FROM users WHERE username_lower = $1")
                .bind(username.to_lowercase())
                .fetch_optional(&self.write)
                .await;
        match by_name {
            Ok(Some(_)) => StoreError::Conflict("username_taken", "that username is taken"),
            Ok(None) => StoreError::Conflict("email_taken", "that email is already registered"),
            Err(err) => err.into(),
        }
    }

    /// The account whose username or email equals `login`, ignoring case.
    pub async fn user_by_login(&self, login: &str) -> StoreResult<Option<UserRow>> {
        let sql = format!(
            "SELECT {USER_COLUMNS} FROM users WHERE (username_lower = $1 OR email_lower = $1) \
             AND deleted_at IS NULL LIMIT 1"
        );
        Ok(sqlx::query_as::<_, UserRow>(&sql)
            .bind(login.to_lowercase())
            .fetch_optional(&self.read)
            .await?)
    }

    pub async fn user_by_id(&self, id: i64) -> StoreResult<UserRow> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1");
        Ok(sqlx::query_as::<_, UserRow>(&sql)
            .bind(id)
            .fetch_one(&self.read)
            .await?)
    }

    /// How many of `ids` (distinct) name existing accounts.
    pub async fn count_existing_users(&self, ids: &[i64]) -> StoreResult<usize> {
        if ids.is_empty() {
            return Ok(0);
        }
        let sql = format!(
            "SELECT COUNT(*) FROM users WHERE id IN ({})",
            placeholders(1, ids.len())
        );
        let mut query = sqlx::query_scalar::<_, i64>(&sql);
        for id in ids {
            query = query.bind(*id);
        }
        let count = query.fetch_one(&self.read).await?;
        Ok(usize::try_from(count).unwrap_or_default())
    }

    /// Users whose username or display name starts with `prefix` (ignoring case),
    /// other than `exclude`, by username.
    pub async fn search_users(
        &self,
        prefix: &str,
        exclude: i64,
        limit: i64,
    ) -> StoreResult<Vec<UserRow>> {
        let sql = format!(
            "SELECT {USER_COLUMNS} FROM users \
             WHERE (username_lower LIKE $1 ESCAPE '\\' OR display_name_lower LIKE $1 ESCAPE '\\') \
             AND id <> $2 AND disabled_at IS NULL AND deleted_at IS NULL \
             ORDER BY username_lower LIMIT $3"
        );
        Ok(sqlx::query_as::<_, UserRow>(&sql)
            .bind(like_prefix(&prefix.to_lowercase()))
            .bind(exclude)
            .bind(limit)
            .fetch_all(&self.read)
            .await?)
    }

    /// Records when `id` was last online.
    pub async fn set_last_seen(&self, id: i64, at_ms: i64) -> StoreResult<()> {
        sqlx::query("UPDATE users SET last_seen_at = $1 WHERE id = $2")
            .bind(at_ms)
            .bind(id)
            .execute(&self.write)
            .await?;
        Ok(())
    }

    /// Applies the given profile fields; `Conflict` when the new email is taken.
    pub async fn update_user(&self, id: i64, update: ProfileUpdate<'_>) -> StoreResult<UserRow> {
        let mut tx = self.write_tx().await?;
        if let Some(name) = update.display_name {
            sqlx::query(
                "UPDATE users SET display_name = $1, display_name_lower = $2 WHERE id = $3",
            )
            .bind(name)
            .bind(name.to_lowercase())
            .bind(id)
            .execute(&mut *tx)
            .await?;
        }
        if let Some(email) = update.email {
            let result = sqlx::query("UPDATE users SET email = $1, email_lower = $2 WHERE id = $3")
                .bind(email)
                .bind(email.to_lowercase())
                .bind(id)
                .execute(&mut *tx)
                .await;
            match result {
                Err(err) if is_unique_violation(&err) => {
                    return Err(StoreError::Conflict(
                        "email_taken",
                        "that email is already registered",
                    ));
                }
                other => {
                    other?;
                }
            }
        }
        if let Some(hash) = update.password_hash {
            sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2")
                .bind(hash)
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1");
        let user = sqlx::query_as::<_, UserRow>(&sql)
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(user)
    }
}

impl Store {
    /// Every account, oldest first.
    pub async fn list_users(&self) -> StoreResult<Vec<UserRow>> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users ORDER BY id");
        Ok(sqlx::query_as::<_, UserRow>(&sql)
            .fetch_all(&self.read)
            .await?)
    }

    /// Makes `id` an admin or not, recording who did it; the account as it is now.
    /// `NotFound` for no such account.
    pub async fn set_admin(
        &self,
        actor: Option<i64>,
        id: i64,
        admin: bool,
    ) -> StoreResult<UserRow> {
        let mut tx = self.write_tx().await?;
        let sql = format!(
            "UPDATE users SET is_admin = $1 WHERE id = $2 AND deleted_at IS NULL RETURNING {USER_COLUMNS}"
        );
        let user = sqlx::query_as::<_, UserRow>(&sql)
            .bind(i64::from(admin))
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(StoreError::NotFound)?;
        let action = if admin { "grant_admin" } else { "revoke_admin" };
        record_action(&mut tx, actor, action, Some(id), "").await?;
        tx.commit().await?;
        Ok(user)
    }

    /// Sets `id`'s password hash and ends every session of theirs, recording who did it;
    /// the ids of the sessions ended. `NotFound` for no such account.
    pub async fn reset_password(
        &self,
        actor: Option<i64>,
        id: i64,
        password_hash: &str,
    ) -> StoreResult<Vec<i64>> {
        let mut tx = self.write_tx().await?;
        let changed =
            sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2 AND deleted_at IS NULL")
                .bind(password_hash)
                .bind(id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        if changed == 0 {
            return Err(StoreError::NotFound);
        }
        let ended: Vec<i64> =
            sqlx::query_scalar("DELETE FROM sessions WHERE user_id = $1 RETURNING id")
                .bind(id)
                .fetch_all(&mut *tx)
                .await?;
        record_action(&mut tx, actor, "reset_password", Some(id), "").await?;
        tx.commit().await?;
        Ok(ended)
    }

    /// Records that `actor` created account `id` (the CLI, an admin).
    pub async fn record_account_created(
        &self,
        actor: Option<i64>,
        id: i64,
        admin: bool,
    ) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        let detail = if admin { "admin" } else { "" };
        record_action(&mut tx, actor, "create_user", Some(id), detail).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Accounts for the admin screen: those whose username, display name or email starts
    /// with `prefix` (all for none), by username, at most `limit`.
    pub async fn admin_users(&self, prefix: Option<&str>, limit: i64) -> StoreResult<Vec<UserRow>> {
        let pattern = like_prefix(&prefix.unwrap_or("").to_lowercase());
        let sql = format!(
            "SELECT {USER_COLUMNS} FROM users WHERE username_lower LIKE $1 ESCAPE '\\' \
             OR display_name_lower LIKE $1 ESCAPE '\\' OR email_lower LIKE $1 ESCAPE '\\' \
             ORDER BY username_lower LIMIT $2"
        );
        Ok(sqlx::query_as::<_, UserRow>(&sql)
            .bind(pattern)
            .bind(limit)
            .fetch_all(&self.read)
            .await?)
    }

    /// The accounts with these ids (those that exist), in no particular order.
    pub async fn users_by_ids(&self, ids: &[i64]) -> StoreResult<Vec<UserRow>> {
        let mut users = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(500) {
            let sql = format!(
                "SELECT {USER_COLUMNS} FROM users WHERE id IN ({})",
                placeholders(1, chunk.len())
            );
            let mut query = sqlx::query_as::<_, UserRow>(&sql);
            for id in chunk {
                query = query.bind(*id);
            }
            users.extend(query.fetch_all(&self.read).await?);
        }
        Ok(users)
    }

    /// How many admins other than `id` can act (neither disabled nor deleted).
    pub async fn other_admins(&self, id: i64) -> StoreResult<i64> {
        Ok(sqlx::query_scalar::<_, i64>(
            "SELECT COUNT(*) FROM users WHERE is_admin = 1 AND id <> $1 \
             AND disabled_at IS NULL AND deleted_at IS NULL",
        )
        .bind(id)
        .fetch_one(&self.read)
        .await?)
    }

    /// Disables (ending every session of the account) or re-enables `id`, recording who
    /// did it; the account as it is now and the sessions ended. Doing it again changes
    /// nothing and records nothing. `NotFound` for no such account or a deleted one.
    pub async fn set_disabled(
        &self,
        actor: Option<i64>,
        id: i64,
        disabled: bool,
    ) -> StoreResult<(UserRow, Vec<i64>)> {
        let mut tx = self.write_tx().await?;
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1 AND deleted_at IS NULL");
        let user = sqlx::query_as::<_, UserRow>(&sql)
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(StoreError::NotFound)?;
        if user.disabled_at.is_some() == disabled {
            tx.rollback().await?;
            return Ok((user, Vec::new()));
        }
        let sql =
            format!("UPDATE users SET disabled_at = $1 WHERE id = $2 RETURNING {USER_COLUMNS}");
        let user = sqlx::query_as::<_, UserRow>(&sql)
            .bind(disabled.then(now_ms))
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
        let ended: Vec<i64> = if disabled {
            sqlx::query_scalar("DELETE FROM sessions WHERE user_id = $1 RETURNING id")
                .bind(id)
                .fetch_all(&mut *tx)
                .await?
        } else {
            Vec::new()
        };
        let action = if disabled { "disable" } else { "enable" };
        record_action(&mut tx, actor, action, Some(id), "").await?;
        tx.commit().await?;
        Ok((user, ended))
    }

    /// Deletes account `id`: its email, password, name and avatar go at once (the
    /// username stays taken for [`DELETED_USERNAME_GRACE_DAYS`]), every session ends, it
    /// leaves no admin role. Returns what is left to do after the commit: the sessions
    /// ended and the avatar files to delete. Its messages that carry a file are then made
    /// tombstones one by one, so each member hears of it
    /// ([`Store::files_of_deleted_accounts`]).
    pub async fn delete_account(&self, id: i64) -> StoreResult<DeletedAccount> {
        let mut tx = self.write_tx().await?;
        let (avatar, avatar_small): (Option<String>, Option<String>) = sqlx::query_as(
            "SELECT avatar_id, avatar_small_id FROM users WHERE id = $1 AND deleted_at IS NULL",
        )
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(StoreError::NotFound)?;
        let gone_email = format!("deleted-{id}@deleted.invalid");
        sqlx::query(
            "UPDATE users SET email = $1, email_lower = $1, password_hash = '', \
             display_name = $2, display_name_lower = $3, avatar_id = NULL, \
             avatar_small_id = NULL, is_admin = 0, deleted_at = $4 WHERE id = $5",
        )
        .bind(&gone_email)
        .bind(DELETED_NAME)
        .bind(DELETED_NAME.to_lowercase())
        .bind(now_ms())
        .bind(id)
        .execute(&mut *tx)
        .await?;
        let avatar_files: Vec<String> = avatar.into_iter().chain(avatar_small).collect();
        for file in &avatar_files {
            sqlx::query("DELETE FROM files WHERE id = $1")
                .bind(file)
                .execute(&mut *tx)
                .await?;
        }
        let sessions: Vec<i64> =
            sqlx::query_scalar("DELETE FROM sessions WHERE user_id = $1 RETURNING id")
                .bind(id)
                .fetch_all(&mut *tx)
                .await?;
        tx.commit().await?;
        Ok(DeletedAccount {
            sessions,
            avatar_files,
        })
    }

    /// Messages of deleted accounts that still carry a file (voice, photo), oldest first,
    /// at most `limit`: `(conversation_id, seq)`. Left by a deletion that did not finish
    /// (a crash), or not yet made tombstones by the one under way.
    pub async fn files_of_deleted_accounts(&self, limit: i64) -> StoreResult<Vec<(i64, i64)>> {
        Ok(sqlx::query_as(
            "SELECT m.conversation_id, m.seq FROM messages m JOIN users u ON u.id = m.sender_id \
             WHERE u.deleted_at IS NOT NULL AND m.file_id IS NOT NULL AND m.deleted_at IS NULL \
             ORDER BY m.id LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.read)
        .await?)
    }

    /// The newest admin actions first, at most `limit`.
    pub async fn admin_actions(&self, limit: i64) -> StoreResult<Vec<AdminActionRow>> {
        Ok(sqlx::query_as::<_, AdminActionRow>(
            "SELECT id, actor_id, action, target_id, detail, at FROM admin_actions \
             ORDER BY id DESC LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.read)
        .await?)
    }
}

/// Appends an admin action to the record, in the transaction that does it.
pub(super) async fn record_action(
    conn: &mut sqlx::AnyConnection,
    actor: Option<i64>,
    action: &str,
    target: Option<i64>,
    detail: &str,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO admin_actions (actor_id, action, target_id, detail, at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(actor)
    .bind(action)
    .bind(target)
    .bind(detail)
    .bind(now_ms())
    .execute(conn)
    .await?;
    Ok(())
}
