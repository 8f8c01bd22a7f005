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

    /// Every file id the database refers to.
    pub async fn file_ids(&self) -> StoreResult<Vec<String>> {
        Ok(sqlx::query_scalar::<_, String>("SELECT id FROM files")
            .fetch_all(&self.read)
            .await?)
    }
}
