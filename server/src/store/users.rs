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
}

pub(super) const USER_COLUMNS: &str = "id, username, email, display_name, password_hash, avatar_id, \
     avatar_small_id, created_at, last_seen_at";

pub struct NewUser<'a> {
    pub username: &'a str,
    pub email: &'a str,
    pub display_name: &'a str,
    pub password_hash: &'a str,
}

/// Fields of `PATCH /api/me` that were given (already validated).
#[derive(Default)]
pub struct ProfileUpdate<'a> {
    pub display_name: Option<&'a str>,
    pub email: Option<&'a str>,
    pub password_hash: Option<&'a str>,
}

impl Store {
    /// Creates an account; `Conflict` when the username or email is taken (ignoring case).
    pub async fn create_user(&self, new: NewUser<'_>) -> StoreResult<UserRow> {
        let sql = format!(
            "INSERT INTO users (username, username_lower, email, email_lower, display_name, \
             display_name_lower, password_hash, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING {USER_COLUMNS}"
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
            .fetch_one(&self.write)
            .await;
        match result {
            Ok(user) => Ok(user),
            Err(err) if is_unique_violation(&err) => Err(self.which_taken(new.username).await),
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
            "SELECT {USER_COLUMNS} FROM users WHERE username_lower = $1 OR email_lower = $1 LIMIT 1"
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
             AND id <> $2 ORDER BY username_lower LIMIT $3"
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
