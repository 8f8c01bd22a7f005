//! Sessions: stored only as hashes of their tokens.

use super::{Store, StoreResult, UserRow, now_ms, users::USER_COLUMNS};

impl Store {
    pub async fn create_session(&self, user_id: i64, token_hash: &str) -> StoreResult<i64> {
        let now = now_ms();
        Ok(sqlx::query_scalar::<_, i64>(
            "INSERT INTO sessions (user_id, token_hash, created_at, last_used_at) \
             VALUES ($1, $2, $3, $3) RETURNING id",
        )
        .bind(user_id)
        .bind(token_hash)
        .bind(now)
        .fetch_one(&self.write)
        .await?)
    }

    /// The session id and its user for a token hash, if the session exists.
    pub async fn session_user(&self, token_hash: &str) -> StoreResult<Option<(i64, UserRow)>> {
        let Some(session) = sqlx::query_as::<_, (i64, i64)>(
            "SELECT id, user_id FROM sessions WHERE token_hash = $1",
        )
        .bind(token_hash)
        .fetch_optional(&self.read)
        .await?
        else {
            return Ok(None);
        };
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1");
        let user = sqlx::query_as::<_, UserRow>(&sql)
            .bind(session.1)
            .fetch_optional(&self.read)
            .await?;
        Ok(user.map(|user| (session.0, user)))
    }

    pub async fn delete_session(&self, session_id: i64) -> StoreResult<()> {
        sqlx::query("DELETE FROM sessions WHERE id = $1")
            .bind(session_id)
            .execute(&self.write)
            .await?;
        Ok(())
    }

    /// Ends every session of `user_id` except `keep`; returns how many ended.
    pub async fn delete_other_sessions(&self, user_id: i64, keep: i64) -> StoreResult<u64> {
        let done = sqlx::query("DELETE FROM sessions WHERE user_id = $1 AND id <> $2")
            .bind(user_id)
            .bind(keep)
            .execute(&self.write)
            .await?;
        Ok(done.rows_affected())
    }
}
