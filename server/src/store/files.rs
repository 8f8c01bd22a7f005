//! Files in the blob store: who owns them and who may fetch them.

use sqlx::FromRow;

use super::{Store, StoreResult};

#[derive(Debug, Clone, FromRow)]
pub struct FileRow {
    pub id: String,
    pub kind: String,
    pub owner_id: i64,
    pub conversation_id: Option<i64>,
    pub mime: String,
    pub size: i64,
    pub created_at: i64,
}

impl Store {
    pub async fn file(&self, id: &str) -> StoreResult<FileRow> {
        Ok(sqlx::query_as::<_, FileRow>(
            "SELECT id, kind, owner_id, conversation_id, mime, size, created_at FROM files WHERE id = $1",
        )
        .bind(id)
        .fetch_one(&self.read)
        .await?)
    }

    /// Records the two avatar files of `user_id` and makes them its avatar (`None`: no
    /// avatar). Returns the ids of the avatar files it replaces (their rows are gone;
    /// delete the blobs).
    pub async fn set_avatar(
        &self,
        user_id: i64,
        avatar: Option<[(&str, i64); 2]>,
    ) -> StoreResult<Vec<String>> {
        let now = super::now_ms();
        let mut tx = self.write_tx().await?;
        let (old, old_small): (Option<String>, Option<String>) =
            sqlx::query_as("SELECT avatar_id, avatar_small_id FROM users WHERE id = $1")
                .bind(user_id)
                .fetch_one(&mut *tx)
                .await?;
        if let Some(files) = avatar {
            for (id, size) in files {
                sqlx::query(
                    "INSERT INTO files (id, kind, owner_id, mime, size, created_at) \
                     VALUES ($1, 'avatar', $2, 'image/png', $3, $4)",
                )
                .bind(id)
                .bind(user_id)
                .bind(size)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            }
        }
        sqlx::query("UPDATE users SET avatar_id = $1, avatar_small_id = $2 WHERE id = $3")
            .bind(avatar.map(|a| a[0].0))
            .bind(avatar.map(|a| a[1].0))
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        let replaced: Vec<String> = old.into_iter().chain(old_small).collect();
        for id in &replaced {
            sqlx::query("DELETE FROM files WHERE id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(replaced)
    }

    /// Every file id the database refers to.
    pub async fn file_ids(&self) -> StoreResult<Vec<String>> {
        Ok(sqlx::query_scalar::<_, String>("SELECT id FROM files")
            .fetch_all(&self.read)
            .await?)
    }
}
