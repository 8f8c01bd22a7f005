//! Sessions: stored only as hashes of their tokens.

use super::{Store, StoreResult, UserRow, now_ms, placeholders, users::USER_COLUMNS};

/// A session not used for this long (30 days, as long as the browser keeps the cookie)
/// has ended.
pub const SESSION_IDLE_MS: i64 = 30 * 24 * 60 * 60 * 1000;
/// How stale `last_used_at` may get before a use is written down.
pub const TOUCH_EVERY_MS: i64 = 60 * 60 * 1000;

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

    /// The session id and its user for a token hash, if the session exists and was used
    /// within [`SESSION_IDLE_MS`]. A session unused for longer is deleted. Use is recorded
    /// at most once per [`TOUCH_EVERY_MS`], so reads stay reads.
    pub async fn session_user(&self, token_hash: &str) -> StoreResult<Option<(i64, UserRow)>> {
        let Some((id, user_id, last_used_at)) = sqlx::query_as::<_, (i64, i64, i64)>(
            "SELECT id, user_id, last_used_at FROM sessions WHERE token_hash = $1",
        )
        .bind(token_hash)
        .fetch_optional(&self.read)
        .await?
        else {
            return Ok(None);
        };
        let now = now_ms();
        if now - last_used_at > SESSION_IDLE_MS {
            self.delete_session(id).await?;
            return Ok(None);
        }
        if now - last_used_at > TOUCH_EVERY_MS {
            sqlx::query("UPDATE sessions SET last_used_at = $1 WHERE id = $2")
                .bind(now)
                .bind(id)
                .execute(&self.write)
                .await?;
        }
        // A disabled or deleted account has no sessions (they are ended with it); this
        // holds even for a session a racing sign-in created just then.
        let sql = format!(
            "SELECT {USER_COLUMNS} FROM users WHERE id = $1 \
             AND disabled_at IS NULL AND deleted_at IS NULL"
        );
        let user = sqlx::query_as::<_, UserRow>(&sql)
            .bind(user_id)
            .fetch_optional(&self.read)
            .await?;
        Ok(user.map(|user| (id, user)))
    }

    pub async fn delete_session(&self, session_id: i64) -> StoreResult<()> {
        sqlx::query("DELETE FROM sessions WHERE id = $1")
            .bind(session_id)
            .execute(&self.write)
            .await?;
        Ok(())
    }

    /// Ends every session of `user_id` except `keep`; returns the ids of those ended.
    pub async fn delete_other_sessions(&self, user_id: i64, keep: i64) -> StoreResult<Vec<i64>> {
        Ok(sqlx::query_scalar::<_, i64>(
            "DELETE FROM sessions WHERE user_id = $1 AND id <> $2 RETURNING id",
        )
        .bind(user_id)
        .bind(keep)
        .fetch_all(&self.write)
        .await?)
    }

    /// Which of `ids` are sessions that still exist.
    pub async fn existing_sessions(&self, ids: &[i64]) -> StoreResult<Vec<i64>> {
        let mut existing = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(500) {
            let sql = format!(
                "SELECT id FROM sessions WHERE id IN ({})",
                placeholders(1, chunk.len())
            );
            let mut query = sqlx::query_scalar::<_, i64>(&sql);
            for id in chunk {
                query = query.bind(*id);
            }
            existing.extend(query.fetch_all(&self.read).await?);
        }
        Ok(existing)
    }
}
