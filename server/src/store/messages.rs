//! Messages: insert with a per-conversation seq, idempotent by `client_id`, history pages.

use chatapp_protocol::MessageKind;
use sqlx::{AnyConnection, FromRow};

use std::collections::{HashMap, HashSet};

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
}

pub(super) const MESSAGE_COLUMNS: &str = "id, conversation_id, seq, sender_id, kind, body, client_id, created_at, \
     file_id, file_mime, file_size, file_duration_ms, file_waveform";

/// A stored file attached to a new message (voice).
#[derive(Debug, Clone)]
pub struct FileMeta {
    pub id: String,
    pub mime: String,
    pub size: i64,
    pub duration_ms: i64,
    /// Hex of the waveform peaks.
    pub waveform: String,
}

pub struct NewMessage<'a> {
    pub conversation_id: i64,
    pub sender_id: i64,
    pub kind: MessageKind,
    pub body: &'a str,
    pub client_id: Option<&'a str>,
    /// Voice messages: the file, recorded in `files` in the same transaction.
    pub file: Option<&'a FileMeta>,
}

/// What storing one message answered: the message and whether it is new (`false`: a
/// replay of a `client_id` already stored).
type Outcome = StoreResult<(MessageRow, bool)>;

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

    /// The batch in a handful of statements whatever its size: find replayed
    /// `client_id`s, check memberships, allocate seqs per conversation, insert the
    /// messages, move the senders' read positions. Lists are cut into chunks of a few
    /// fixed sizes so the statements' texts repeat and stay prepared.
    async fn insert_batch_tx(&self, batch: &[NewMessage<'_>]) -> StoreResult<Vec<Outcome>> {
        let mut results: Vec<Option<Outcome>> = (0..batch.len()).map(|_| None).collect();
        let now = now_ms();
        let mut tx = self.write_tx().await?;

        let stored = stored_by_client_id(&mut tx, batch).await?;
        let Triage { fresh, repeats } = triage(batch, &stored, &mut results);
        let members = memberships(&mut tx, batch, &fresh).await?;
        let fresh = keep_members(batch, fresh, &members, &mut results);
        if !fresh.is_empty() {
            let seqs = allocate_seqs(&mut tx, batch, &fresh, now).await?;
            let items: Vec<(usize, i64)> = fresh.into_iter().zip(seqs).collect();
            let mut inserted = insert_rows(&mut tx, batch, &items, now).await?;
            advance_read_positions(&mut tx, batch, &items).await?;
            for &(i, seq) in &items {
                let row = inserted
                    .remove(&(batch[i].conversation_id, seq))
                    .ok_or(StoreError::NotFound)?;
                results[i] = Some(Ok((row, true)));
            }
        }
        tx.commit().await?;

        answer_repeats(batch, repeats, &mut results);
        Ok(results
            .into_iter()
            .map(|r| r.unwrap_or(Err(StoreError::NotFound)))
            .collect())
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
        Ok((rows, has_more))
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
        Ok(sqlx::query_as::<_, MessageRow>(&sql)
            .bind(conversation_id)
            .bind(after_seq)
            .bind(limit)
            .fetch_all(&self.read)
            .await?)
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

fn client_id_reused() -> StoreError {
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
    Ok(sqlx::query_as::<_, MessageRow>(&sql)
        .bind(sender_id)
        .bind(client_id)
        .fetch_optional(conn)
        .await?)
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
        sqlx::query(
            "INSERT INTO files (id, kind, owner_id, conversation_id, mime, size, created_at) \
             VALUES ($1, 'voice', $2, $3, $4, $5, $6)",
        )
        .bind(&file.id)
        .bind(new.sender_id)
        .bind(new.conversation_id)
        .bind(&file.mime)
        .bind(file.size)
        .bind(now)
        .execute(&mut *conn)
        .await?;
    }
    let sql = format!(
        "INSERT INTO messages (conversation_id, seq, sender_id, kind, body, client_id, created_at, \
         file_id, file_mime, file_size, file_duration_ms, file_waveform) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING {MESSAGE_COLUMNS}"
    );
    let row = sqlx::query_as::<_, MessageRow>(&sql)
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
        .bind(new.file.map(|f| f.duration_ms))
        .bind(new.file.map(|f| f.waveform.clone()))
        .fetch_one(&mut *conn)
        .await?;
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

// The steps of `Store::insert_batch_tx`, in order; each runs inside its transaction.

/// Step 1: the messages already stored under the batch's `(sender, client_id)` pairs.
async fn stored_by_client_id(
    conn: &mut AnyConnection,
    batch: &[NewMessage<'_>],
) -> StoreResult<HashMap<(i64, String), MessageRow>> {
    let keyed: Vec<(i64, &str)> = batch
        .iter()
        .filter_map(|m| m.client_id.map(|c| (m.sender_id, c)))
        .collect();
    let mut stored: HashMap<(i64, String), MessageRow> = HashMap::new();
    for chunk in fixed_chunks(&keyed) {
        let sql = format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages WHERE {}",
            or_pairs("sender_id", "client_id", chunk.len())
        );
        let mut query = sqlx::query_as::<_, MessageRow>(&sql);
        for (sender, client_id) in chunk {
            query = query.bind(*sender).bind(*client_id);
        }
        for row in query.fetch_all(&mut *conn).await? {
            if let Some(client_id) = row.client_id.clone() {
                stored.insert((row.sender_id, client_id), row);
            }
        }
    }
    Ok(stored)
}

/// The batch's items sorted by what becomes of them (indices into the batch).
struct Triage {
    /// Items to store, in batch order.
    fresh: Vec<usize>,
    /// `(item, first)`: an item whose `(sender, client_id)` an earlier item `first` of
    /// the batch already has.
    repeats: Vec<(usize, usize)>,
}

/// Answers the items already stored (their message, or `client_id_reused` when it is
/// in another conversation) and sorts the rest into new items and repeats within the
/// batch, which refer to their first occurrence.
fn triage(
    batch: &[NewMessage<'_>],
    stored: &HashMap<(i64, String), MessageRow>,
    results: &mut [Option<Outcome>],
) -> Triage {
    let mut fresh: Vec<usize> = Vec::new();
    let mut repeats: Vec<(usize, usize)> = Vec::new();
    let mut first: HashMap<(i64, &str), usize> = HashMap::new();
    for (i, new) in batch.iter().enumerate() {
        if let Some(client_id) = new.client_id {
            if let Some(row) = stored.get(&(new.sender_id, client_id.to_owned())) {
                results[i] = Some(if row.conversation_id == new.conversation_id {
                    Ok((row.clone(), false))
                } else {
                    Err(client_id_reused())
                });
                continue;
            }
            if let Some(&j) = first.get(&(new.sender_id, client_id)) {
                repeats.push((i, j));
                continue;
            }
            first.insert((new.sender_id, client_id), i);
        }
        fresh.push(i);
    }
    Triage { fresh, repeats }
}

/// Step 2: which `(conversation, sender)` pairs of the `fresh` items are memberships.
async fn memberships(
    conn: &mut AnyConnection,
    batch: &[NewMessage<'_>],
    fresh: &[usize],
) -> StoreResult<HashSet<(i64, i64)>> {
    let mut pairs: Vec<(i64, i64)> = fresh
        .iter()
        .map(|&i| (batch[i].conversation_id, batch[i].sender_id))
        .collect();
    pairs.sort_unstable();
    pairs.dedup();
    let mut members: HashSet<(i64, i64)> = HashSet::new();
    for chunk in fixed_chunks(&pairs) {
        let sql = format!(
            "SELECT conversation_id, user_id FROM members WHERE {}",
            or_pairs("conversation_id", "user_id", chunk.len())
        );
        let mut query = sqlx::query_as::<_, (i64, i64)>(&sql);
        for (conversation, user) in chunk {
            query = query.bind(*conversation).bind(*user);
        }
        members.extend(query.fetch_all(&mut *conn).await?);
    }
    Ok(members)
}

/// Only members may send: the `fresh` items whose sender is a member of their
/// conversation; the others are answered `NotFound`.
fn keep_members(
    batch: &[NewMessage<'_>],
    mut fresh: Vec<usize>,
    members: &HashSet<(i64, i64)>,
    results: &mut [Option<Outcome>],
) -> Vec<usize> {
    fresh.retain(|&i| {
        let ok = members.contains(&(batch[i].conversation_id, batch[i].sender_id));
        if !ok {
            results[i] = Some(Err(StoreError::NotFound));
        }
        ok
    });
    fresh
}

/// Step 3: a seq for each of the `fresh` items, in their order. Each conversation's
/// counter moves by its number of new messages (row-locked on PostgreSQL until commit;
/// conversations in id order) and its last activity becomes `now`.
async fn allocate_seqs(
    conn: &mut AnyConnection,
    batch: &[NewMessage<'_>],
    fresh: &[usize],
    now: i64,
) -> StoreResult<Vec<i64>> {
    let mut counts: Vec<(i64, i64)> = Vec::new();
    for &i in fresh {
        let c = batch[i].conversation_id;
        match counts.iter_mut().find(|(id, _)| *id == c) {
            Some((_, n)) => *n += 1,
            None => counts.push((c, 1)),
        }
    }
    counts.sort_unstable();
    let mut next: HashMap<i64, i64> = HashMap::new();
    for chunk in fixed_chunks(&counts) {
        let cases: String = (0..chunk.len())
            .map(|k| format!(" WHEN ${} THEN ${}", 2 * k + 2, 2 * k + 3))
            .collect();
        let ids = placeholders(2 * chunk.len() + 2, chunk.len());
        let sql = format!(
            "UPDATE conversations SET last_seq = last_seq + CASE id{cases} END, \
             last_activity_at = $1 WHERE id IN ({ids}) RETURNING id, last_seq"
        );
        let mut query = sqlx::query_as::<_, (i64, i64)>(&sql).bind(now);
        for (id, n) in chunk {
            query = query.bind(*id).bind(*n);
        }
        for (id, _) in chunk {
            query = query.bind(*id);
        }
        for (id, last) in query.fetch_all(&mut *conn).await? {
            let n = chunk.iter().find(|(c, _)| *c == id).map_or(0, |(_, n)| *n);
            next.insert(id, last - n + 1);
        }
    }
    let mut seqs = Vec::with_capacity(fresh.len());
    for &i in fresh {
        let slot = next
            .get_mut(&batch[i].conversation_id)
            .ok_or(StoreError::NotFound)?;
        seqs.push(*slot);
        *slot += 1;
    }
    Ok(seqs)
}

/// Step 4: the messages of `items` (`(item, seq)`), by `(conversation, seq)`.
async fn insert_rows(
    conn: &mut AnyConnection,
    batch: &[NewMessage<'_>],
    items: &[(usize, i64)],
    now: i64,
) -> StoreResult<HashMap<(i64, i64), MessageRow>> {
    let mut inserted: HashMap<(i64, i64), MessageRow> = HashMap::new();
    for chunk in fixed_chunks(items) {
        let values: Vec<String> = (0..chunk.len())
            .map(|k| {
                let p: Vec<String> = (1..=7).map(|j| format!("${}", 7 * k + j)).collect();
                format!("({})", p.join(", "))
            })
            .collect();
        let sql = format!(
            "INSERT INTO messages (conversation_id, seq, sender_id, kind, body, client_id, \
             created_at) VALUES {} RETURNING {MESSAGE_COLUMNS}",
            values.join(", ")
        );
        let mut query = sqlx::query_as::<_, MessageRow>(&sql);
        for &(i, seq) in chunk {
            let new = &batch[i];
            query = query
                .bind(new.conversation_id)
                .bind(seq)
                .bind(new.sender_id)
                .bind(new.kind.as_str())
                .bind(new.body)
                .bind(new.client_id)
                .bind(now);
        }
        for row in query.fetch_all(&mut *conn).await? {
            inserted.insert((row.conversation_id, row.seq), row);
        }
    }
    Ok(inserted)
}

/// Step 5: sending implies having read everything up to one's own (last) message, so
/// each sender's read position in each conversation becomes their highest seq in
/// `items` (`(item, seq)`).
async fn advance_read_positions(
    conn: &mut AnyConnection,
    batch: &[NewMessage<'_>],
    items: &[(usize, i64)],
) -> StoreResult<()> {
    let mut read: HashMap<(i64, i64), i64> = HashMap::new();
    for &(i, seq) in items {
        let key = (batch[i].conversation_id, batch[i].sender_id);
        let entry = read.entry(key).or_insert(seq);
        *entry = (*entry).max(seq);
    }
    let mut read: Vec<((i64, i64), i64)> = read.into_iter().collect();
    read.sort_unstable();
    for chunk in fixed_chunks(&read) {
        let cases: String = (0..chunk.len())
            .map(|k| {
                format!(
                    " WHEN conversation_id = ${} AND user_id = ${} THEN ${}",
                    3 * k + 1,
                    3 * k + 2,
                    3 * k + 3
                )
            })
            .collect();
        let conds: Vec<String> = (0..chunk.len())
            .map(|k| {
                format!(
                    "(conversation_id = ${} AND user_id = ${})",
                    3 * k + 1,
                    3 * k + 2
                )
            })
            .collect();
        let sql = format!(
            "UPDATE members SET last_read_seq = CASE{cases} ELSE last_read_seq END WHERE {}",
            conds.join(" OR ")
        );
        let mut query = sqlx::query(&sql);
        for ((conversation, user), seq) in chunk {
            query = query.bind(*conversation).bind(*user).bind(*seq);
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

/// After the commit: each repeat within the batch gets what its first occurrence got —
/// the same message as a replay, `client_id_reused` if that message is in another
/// conversation, `NotFound` if the first occurrence was not stored.
fn answer_repeats(
    batch: &[NewMessage<'_>],
    repeats: Vec<(usize, usize)>,
    results: &mut [Option<Outcome>],
) {
    for (i, j) in repeats {
        results[i] = Some(match &results[j] {
            Some(Ok((row, _))) if row.conversation_id == batch[i].conversation_id => {
                Ok((row.clone(), false))
            }
            Some(Ok(_)) => Err(client_id_reused()),
            _ => Err(StoreError::NotFound),
        });
    }
}

/// `(a = $1 AND b = $2) OR (a = $3 AND b = $4) OR …` for `count` pairs.
fn or_pairs(a: &str, b: &str, count: usize) -> String {
    (0..count)
        .map(|k| format!("({a} = ${} AND {b} = ${})", 2 * k + 1, 2 * k + 2))
        .collect::<Vec<_>>()
        .join(" OR ")
}

/// Splits `items` into chunks of 32, 8, 2 or 1 (greedily), so statements built per chunk
/// come in few distinct texts that the connection keeps prepared.
fn fixed_chunks<T>(items: &[T]) -> Vec<&[T]> {
    let mut chunks = Vec::new();
    let mut rest = items;
    while !rest.is_empty() {
        let size = [32, 8, 2, 1]
            .into_iter()
            .find(|s| *s <= rest.len())
            .unwrap_or(1);
        let (chunk, tail) = rest.split_at(size);
        chunks.push(chunk);
        rest = tail;
    }
    chunks
}
