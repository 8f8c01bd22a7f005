//! Messages: insert with a per-conversation seq, idempotent by `client_id`, history pages.

mod batch;
mod changes;

use chatapp_protocol::MessageKind;
use sqlx::{AnyConnection, FromRow};

pub use changes::{ChangeOutcome, MessageChange};

use super::{Store, StoreError, StoreResult, is_unique_violation, now_ms, placeholders};

#[derive(Debug, Clone, FromRow)]
pub struct MessageRow {
    pub id: i64,
    pub conversation_id: i64,
    pub seq: i64,
    pub sender_id: i64,
    pub kind: String,
    pub body: String,
    pub client_id: Option<String>,
    pub created_at: i64,
    pub file_id: Option<String>,
    pub file_mime: Option<String>,
    pub file_size: Option<i64>,
    pub file_duration_ms: Option<i64>,
    pub file_waveform: Option<String>,
    pub rev: i64,
    pub edited_at: Option<i64>,
    pub deleted_at: Option<i64>,
    pub reply_to_id: Option<i64>,
    /// JSON: the wire's `[{emoji, user_ids}]`.
    pub reactions: String,
    /// JSON: the mentioned user ids.
    pub mentions: String,
    /// JSON: `[{user_id, at}]` ([`PlayedRow`]), who played a voice message.
    pub played_by: String,
    /// Photos: the image's size, and its thumbnail.
    pub file_width: Option<i64>,
    pub file_height: Option<i64>,
    pub thumb_id: Option<String>,
    pub thumb_mime: Option<String>,
    pub thumb_size: Option<i64>,
    pub thumb_width: Option<i64>,
    pub thumb_height: Option<i64>,
    /// The answered message as it is now (read by [`Store::attach_replies`]).
    #[sqlx(skip)]
    pub reply: Option<ReplyRow>,
}

pub(super) const MESSAGE_COLUMNS: &str = "id, conversation_id, seq, sender_id, kind, body, client_id, created_at, \
     file_id, file_mime, file_size, file_duration_ms, file_waveform, rev, edited_at, deleted_at, \
     reply_to_id, reactions, mentions, played_by, file_width, file_height, thumb_id, thumb_mime, \
     thumb_size, thumb_width, thumb_height";

/// One entry of `messages.played_by`: who, and when first (ms).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PlayedRow {
    pub user_id: i64,
    pub at: i64,
}

impl MessageRow {
    /// Who played it (`played_by` read).
    pub fn played(&self) -> Vec<PlayedRow> {
        serde_json::from_str(&self.played_by).unwrap_or_default()
    }
}

/// What a reply shows of the message it answers.
#[derive(Debug, Clone, FromRow)]
pub struct ReplyRow {
    pub id: i64,
    pub seq: i64,
    pub sender_id: i64,
    pub kind: String,
    pub body: String,
    pub file_duration_ms: Option<i64>,
    pub deleted_at: Option<i64>,
}

/// A stored file attached to a new message: a voice recording or a photo.
#[derive(Debug, Clone)]
pub struct FileMeta {
    pub id: String,
    pub mime: String,
    pub size: i64,
    /// Voice: the length, and the hex of the waveform's peaks.
    pub duration_ms: Option<i64>,
    pub waveform: Option<String>,
    /// Photos: the size in pixels, and the thumbnail (a second file).
    pub width: Option<i64>,
    pub height: Option<i64>,
    pub thumbnail: Option<ImageMeta>,
}

impl FileMeta {
    /// The files this stands for, as `(id, type, size)`: the file, then a photo's thumbnail.
    pub fn stored(&self) -> impl Iterator<Item = (&str, &str, i64)> {
        let thumbnail = self.thumbnail.as_ref();
        std::iter::once((self.id.as_str(), self.mime.as_str(), self.size))
            .chain(thumbnail.map(|t| (t.id.as_str(), t.mime.as_str(), t.size)))
    }
}

/// A stored image's file: a photo's thumbnail.
#[derive(Debug, Clone)]
pub struct ImageMeta {
    pub id: String,
    pub mime: String,
    pub size: i64,
    pub width: i64,
    pub height: i64,
}

pub struct NewMessage<'a> {
    pub conversation_id: i64,
    pub sender_id: i64,
    pub kind: MessageKind,
    pub body: &'a str,
    pub client_id: Option<&'a str>,
    /// Voice messages and photos: the file (and a photo's thumbnail), recorded in
    /// `files` in the same transaction.
    pub file: Option<&'a FileMeta>,
    /// The id of the answered message (checked to be in the same conversation).
    pub reply_to_id: Option<i64>,
    /// The members mentioned, by id (ascending).
    pub mentions: &'a [i64],
}

/// What storing one message answered: the message and whether it is new (`false`: a
/// replay of a `client_id` already stored).
pub(super) type Outcome = StoreResult<(MessageRow, bool)>;

impl Store {
    /// Stores a message and gives it the conversation's next seq, in one transaction.
    ///
    /// Returns the message and `true`, or — when the sender already stored a message with
    /// this `client_id` in this conversation — that message and `false`. `NotFound` when
    /// the sender is not a member; `Conflict` when the `client_id` was used in another
    /// conversation.
    pub async fn insert_message(&self, new: &NewMessage<'_>) -> StoreResult<(MessageRow, bool)> {
        if let Some(existing) = self.replayed(new).await? {
            return Ok((existing, false));
        }
        match self.insert_message_tx(new).await {
            Err(StoreError::Db(err)) if is_unique_violation(&err) => {
                match self.replayed(new).await? {
                    // A concurrent retry with the same client_id won the race.
                    Some(existing) => Ok((existing, false)),
                    None => Err(StoreError::Db(err)),
                }
            }
            other => other.map(|row| (row, true)),
        }
    }

    async fn replayed(&self, new: &NewMessage<'_>) -> StoreResult<Option<MessageRow>> {
        let Some(client_id) = new.client_id else {
            return Ok(None);
        };
        let mut conn = self.write.acquire().await?;
        match select_by_client_id(&mut conn, new.sender_id, client_id).await? {
            Some(row) if row.conversation_id != new.conversation_id => Err(client_id_reused()),
            other => Ok(other),
        }
    }

    async fn insert_message_tx(&self, new: &NewMessage<'_>) -> StoreResult<MessageRow> {
        let mut tx = self.write_tx().await?;
        let row = insert_in(&mut tx, new, now_ms()).await?;
        tx.commit().await?;
        Ok(row)
    }

    /// Stores several messages in one transaction (group commit): one durable write for
    /// the lot. Each result is what [`Store::insert_message`] would have answered for
    /// that message alone. Items are applied in conversation order so that concurrent
    /// batches lock conversation rows in the same order.
    pub async fn insert_messages(&self, batch: &[NewMessage<'_>]) -> Vec<Outcome> {
        let has_files = batch.iter().any(|m| m.file.is_some());
        let attempt = if has_files {
            // Files are rare and recorded one by one.
            Err(StoreError::Conflict("files", "batch with files"))
        } else {
            self.insert_batch_tx(batch).await
        };
        match attempt {
            Ok(results) => results,
            Err(err) => {
                // One item's failure must not fail the others: redo them one by one.
                tracing::debug!(error = %err, size = batch.len(), "batch insert failed; retrying singly");
                let mut results = Vec::with_capacity(batch.len());
                for new in batch {
                    results.push(self.insert_message(new).await);
                }
                results
            }
        }
    }

    /// Up to `limit` messages with seq below `before_seq` (or the newest), oldest first,
    /// and whether older ones exist.
    pub async fn history(
        &self,
        conversation_id: i64,
        before_seq: Option<i64>,
        limit: i64,
    ) -> StoreResult<(Vec<MessageRow>, bool)> {
        let sql = format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages WHERE conversation_id = $1 AND seq < $2 \
             ORDER BY seq DESC LIMIT $3"
        );
        let mut rows = sqlx::query_as::<_, MessageRow>(&sql)
            .bind(conversation_id)
            .bind(before_seq.unwrap_or(i64::MAX))
            .bind(limit + 1)
            .fetch_all(&self.read)
            .await?;
        let has_more = rows.len() > usize::try_from(limit).unwrap_or_default();
        rows.truncate(usize::try_from(limit).unwrap_or_default());
        rows.reverse();
        self.attach_replies(&mut rows).await?;
        Ok((rows, has_more))
    }

    /// The page around `seq`: up to `limit / 2` messages before it and the rest from it
    /// on, oldest first, with whether older and newer ones exist.
    pub async fn history_around(
        &self,
        conversation_id: i64,
        seq: i64,
        limit: i64,
    ) -> StoreResult<(Vec<MessageRow>, bool, bool)> {
        let before = limit / 2;
        let (mut rows, has_more) = self.history(conversation_id, Some(seq), before).await?;
        let (newer, has_newer) = self
            .history_after(conversation_id, seq.saturating_sub(1), limit - before)
            .await?;
        rows.extend(newer);
        Ok((rows, has_more, has_newer))
    }

    /// Up to `limit` messages with seq above `after_seq`, oldest first, and whether newer
    /// ones exist.
    pub async fn history_after(
        &self,
        conversation_id: i64,
        after_seq: i64,
        limit: i64,
    ) -> StoreResult<(Vec<MessageRow>, bool)> {
        let mut rows = self
            .messages_after(conversation_id, after_seq, limit + 1)
            .await?;
        let has_newer = rows.len() > usize::try_from(limit).unwrap_or_default();
        rows.truncate(usize::try_from(limit).unwrap_or_default());
        Ok((rows, has_newer))
    }

    /// Fills in `reply` of the rows that answer a message: one query for all of them.
    pub async fn attach_replies(&self, rows: &mut [MessageRow]) -> StoreResult<()> {
        let mut conn = self.read.acquire().await?;
        attach_replies_in(&mut conn, rows).await
    }

    /// The message of a conversation with this id, if there is one (replies must answer
    /// a message of their own conversation).
    pub async fn message_in(
        &self,
        conversation_id: i64,
        id: i64,
    ) -> StoreResult<Option<MessageRow>> {
        let sql = format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages WHERE id = $1 AND conversation_id = $2"
        );
        Ok(sqlx::query_as::<_, MessageRow>(&sql)
            .bind(id)
            .bind(conversation_id)
            .fetch_optional(&self.read)
            .await?)
    }

    /// The message at `seq` of a conversation, with its reply preview.
    pub async fn message_at(&self, conversation_id: i64, seq: i64) -> StoreResult<MessageRow> {
        let sql = format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages WHERE conversation_id = $1 AND seq = $2"
        );
        let mut rows = vec![
            sqlx::query_as::<_, MessageRow>(&sql)
                .bind(conversation_id)
                .bind(seq)
                .fetch_one(&self.read)
                .await?,
        ];
        self.attach_replies(&mut rows).await?;
        Ok(rows.remove(0))
    }

    /// Up to `limit` messages with seq above `after_seq`, oldest first.
    pub async fn messages_after(
        &self,
        conversation_id: i64,
        after_seq: i64,
        limit: i64,
    ) -> StoreResult<Vec<MessageRow>> {
        let sql = format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages WHERE conversation_id = $1 AND seq > $2 \
             ORDER BY seq LIMIT $3"
        );
        let mut rows = sqlx::query_as::<_, MessageRow>(&sql)
            .bind(conversation_id)
            .bind(after_seq)
            .bind(limit)
            .fetch_all(&self.read)
            .await?;
        self.attach_replies(&mut rows).await?;
        Ok(rows)
    }

    /// Moves `user_id`'s read position in the conversation forward to `seq` (never back).
    /// Returns the position after the update.
    pub async fn mark_read(
        &self,
        conversation_id: i64,
        user_id: i64,
        seq: i64,
    ) -> StoreResult<i64> {
        Ok(sqlx::query_scalar::<_, i64>(
            "UPDATE members SET last_read_seq = CASE WHEN $3 > last_read_seq THEN $3 ELSE last_read_seq END \
             WHERE conversation_id = $1 AND user_id = $2 RETURNING last_read_seq",
        )
        .bind(conversation_id)
        .bind(user_id)
        .bind(seq)
        .fetch_one(&self.write)
        .await?)
    }
}

/// The `mentions` column of these ids.
pub(super) fn mentions_json(ids: &[i64]) -> String {
    serde_json::to_string(ids).unwrap_or_else(|_| "[]".to_owned())
}

pub(super) fn client_id_reused() -> StoreError {
    StoreError::Conflict(
        "client_id_reused",
        "this client_id was already used for a message in another conversation",
    )
}

async fn select_by_client_id(
    conn: &mut AnyConnection,
    sender_id: i64,
    client_id: &str,
) -> StoreResult<Option<MessageRow>> {
    let sql =
        format!("SELECT {MESSAGE_COLUMNS} FROM messages WHERE sender_id = $1 AND client_id = $2");
    let Some(row) = sqlx::query_as::<_, MessageRow>(&sql)
        .bind(sender_id)
        .bind(client_id)
        .fetch_optional(&mut *conn)
        .await?
    else {
        return Ok(None);
    };
    let mut rows = [row];
    attach_replies_in(conn, &mut rows).await?;
    let [row] = rows;
    Ok(Some(row))
}

/// [`Store::attach_replies`] on `conn` (inside a transaction, or not).
pub(super) async fn attach_replies_in(
    conn: &mut AnyConnection,
    rows: &mut [MessageRow],
) -> StoreResult<()> {
    let mut ids: Vec<i64> = rows.iter().filter_map(|r| r.reply_to_id).collect();
    if ids.is_empty() {
        return Ok(());
    }
    ids.sort_unstable();
    ids.dedup();
    let sql = format!(
        "SELECT id, seq, sender_id, kind, body, file_duration_ms, deleted_at FROM messages \
         WHERE id IN ({})",
        placeholders(1, ids.len())
    );
    let mut query = sqlx::query_as::<_, ReplyRow>(&sql);
    for id in &ids {
        query = query.bind(*id);
    }
    let found: std::collections::HashMap<i64, ReplyRow> = query
        .fetch_all(&mut *conn)
        .await?
        .into_iter()
        .map(|r| (r.id, r))
        .collect();
    for row in rows {
        row.reply = row.reply_to_id.and_then(|id| found.get(&id).cloned());
    }
    Ok(())
}

/// Inserts one message inside `conn`'s transaction: takes the conversation's next seq
/// (the row lock serialises seq allocation per conversation on PostgreSQL; SQLite has a
/// single writer), checks membership and moves the sender's read position to it.
/// `NotFound` when the sender is not a member.
async fn insert_in(
    conn: &mut AnyConnection,
    new: &NewMessage<'_>,
    now: i64,
) -> StoreResult<MessageRow> {
    let seq = sqlx::query_scalar::<_, i64>(
        "UPDATE conversations SET last_seq = last_seq + 1, last_activity_at = $2 \
         WHERE id = $1 AND EXISTS (SELECT 1 FROM members WHERE conversation_id = $1 AND user_id = $3) \
         RETURNING last_seq",
    )
    .bind(new.conversation_id)
    .bind(now)
    .bind(new.sender_id)
    .fetch_optional(&mut *conn)
    .await?
    .ok_or(StoreError::NotFound)?;
    if let Some(file) = new.file {
        // A voice file, or a photo and its thumbnail: the conversation's members may read them.
        for (id, mime, size) in file.stored() {
            sqlx::query(
                "INSERT INTO files (id, kind, owner_id, conversation_id, mime, size, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(id)
            .bind(new.kind.as_str())
            .bind(new.sender_id)
            .bind(new.conversation_id)
            .bind(mime)
            .bind(size)
            .bind(now)
            .execute(&mut *conn)
            .await?;
        }
    }
    let thumb = new.file.and_then(|f| f.thumbnail.as_ref());
    let sql = format!(
        "INSERT INTO messages (conversation_id, seq, sender_id, kind, body, client_id, created_at, \
         file_id, file_mime, file_size, file_duration_ms, file_waveform, reply_to_id, mentions, \
         file_width, file_height, thumb_id, thumb_mime, thumb_size, thumb_width, thumb_height) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, \
         $19, $20, $21) RETURNING {MESSAGE_COLUMNS}"
    );
    let mut row = sqlx::query_as::<_, MessageRow>(&sql)
        .bind(new.conversation_id)
        .bind(seq)
        .bind(new.sender_id)
        .bind(new.kind.as_str())
        .bind(new.body)
        .bind(new.client_id)
        .bind(now)
        .bind(new.file.map(|f| f.id.clone()))
        .bind(new.file.map(|f| f.mime.clone()))
        .bind(new.file.map(|f| f.size))
        .bind(new.file.and_then(|f| f.duration_ms))
        .bind(new.file.and_then(|f| f.waveform.clone()))
        .bind(new.reply_to_id)
        .bind(mentions_json(new.mentions))
        .bind(new.file.and_then(|f| f.width))
        .bind(new.file.and_then(|f| f.height))
        .bind(thumb.map(|t| t.id.clone()))
        .bind(thumb.map(|t| t.mime.clone()))
        .bind(thumb.map(|t| t.size))
        .bind(thumb.map(|t| t.width))
        .bind(thumb.map(|t| t.height))
        .fetch_one(&mut *conn)
        .await?;
    changes::record_mentions(conn, new.conversation_id, seq, new.mentions).await?;
    let mut rows = [row];
    attach_replies_in(conn, &mut rows).await?;
    [row] = rows;
    // Sending implies having read everything up to one's own message.
    sqlx::query(
        "UPDATE members SET last_read_seq = $3 WHERE conversation_id = $1 AND user_id = $2",
    )
    .bind(new.conversation_id)
    .bind(new.sender_id)
    .bind(seq)
    .execute(&mut *conn)
    .await?;
    Ok(row)
}
