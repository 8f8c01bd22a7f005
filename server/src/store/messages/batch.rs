//! Group commit's transaction: a batch of new messages stored in a fixed number of
//! statements whatever its size. Each step passes its rows as one JSON array (`json_each`
//! on SQLite, `jsonb_array_elements` on PostgreSQL), so a batch of 200 costs the same
//! seven round trips as a batch of two (BEGIN, five steps, COMMIT) and every statement's
//! text is always the same one, prepared once per connection.

use std::collections::{HashMap, HashSet};

use serde::Serialize;
use sqlx::AnyConnection;

use super::{
    super::{Backend, Store, StoreError, StoreResult, now_ms},
    MESSAGE_COLUMNS, MessageRow, NewMessage, Outcome, attach_replies_in, client_id_reused,
    mentions_json,
};

impl Store {
    /// The batch in one transaction: find replayed `client_id`s, check memberships,
    /// allocate seqs per conversation, insert the messages, move the senders' read
    /// positions. Each result is what [`Store::insert_message`] would have answered for
    /// that message alone.
    pub(super) async fn insert_batch_tx(
        &self,
        batch: &[NewMessage<'_>],
    ) -> StoreResult<Vec<Outcome>> {
        let mut results: Vec<Option<Outcome>> = (0..batch.len()).map(|_| None).collect();
        let now = now_ms();
        let rows = Rows(self.backend);
        // Each step's time, for the trace line below (where a batch's time goes).
        let mut laps = Laps::start();
        let mut tx = self.write_tx().await?;
        let begin_us = laps.lap();

        let stored = stored_by_client_id(&mut tx, rows, batch).await?;
        let replays_us = laps.lap();
        let Triage { fresh, repeats } = triage(batch, &stored, &mut results);
        let members = memberships(&mut tx, rows, batch, &fresh).await?;
        let members_us = laps.lap();
        let fresh = keep_members(batch, fresh, &members, &mut results);
        let (mut seqs_us, mut insert_us, mut read_us) = (0, 0, 0);
        if !fresh.is_empty() {
            let seqs = allocate_seqs(&mut tx, rows, batch, &fresh, now).await?;
            seqs_us = laps.lap();
            let items: Vec<(usize, i64)> = fresh.into_iter().zip(seqs).collect();
            let mut inserted = insert_rows(&mut tx, rows, batch, &items, now).await?;
            record_mentions(&mut tx, rows, batch, &items).await?;
            insert_us = laps.lap();
            advance_read_positions(&mut tx, rows, batch, &items).await?;
            read_us = laps.lap();
            for &(i, seq) in &items {
                let row = inserted
                    .remove(&(batch[i].conversation_id, seq))
                    .ok_or(StoreError::NotFound)?;
                results[i] = Some(Ok((row, true)));
            }
        }
        laps.lap();
        tx.commit().await?;
        tracing::trace!(
            size = batch.len(),
            begin_us,
            replays_us,
            members_us,
            seqs_us,
            insert_us,
            read_us,
            commit_us = laps.lap(),
            "batch steps"
        );

        answer_repeats(batch, repeats, &mut results);
        Ok(results
            .into_iter()
            .map(|r| r.unwrap_or(Err(StoreError::NotFound)))
            .collect())
    }
}

/// Times the steps of a batch: each [`Laps::lap`] is the time since the previous one.
struct Laps(std::time::Instant);

impl Laps {
    fn start() -> Self {
        Self(std::time::Instant::now())
    }

    /// Microseconds since the last lap (or the start).
    fn lap(&mut self) -> u64 {
        let now = std::time::Instant::now();
        let us = now.duration_since(self.0).as_micros();
        self.0 = now;
        u64::try_from(us).unwrap_or(u64::MAX)
    }
}

/// The type of a column read out of the JSON rows.
#[derive(Clone, Copy)]
enum Col {
    Int,
    Text,
}

/// Table-valued rows from one JSON parameter (an array of arrays), as each database
/// reads them: the only part of these statements that differs between the two.
#[derive(Clone, Copy)]
struct Rows(Backend);

impl Rows {
    /// `SELECT <col 0> AS name0, … FROM <the elements of parameter $param>`.
    fn select(self, param: usize, columns: &[(&str, Col)]) -> String {
        let (element, from) = match self.0 {
            Backend::Sqlite => ("value", format!("json_each(${param})")),
            Backend::Postgres => ("e", format!("jsonb_array_elements(${param}::jsonb) AS e")),
        };
        let cols: Vec<String> = columns
            .iter()
            .enumerate()
            .map(|(i, (name, col))| match (self.0, col) {
                (Backend::Postgres, Col::Int) => format!("({element}->>{i})::bigint AS {name}"),
                _ => format!("{element}->>{i} AS {name}"),
            })
            .collect();
        format!("SELECT {} FROM {from}", cols.join(", "))
    }

    /// `FROM <rows> … <table>`: each of the few rows looked up in `table`'s index on
    /// `matches` (pairs of a table column and a row column). SQLite's planner takes the
    /// rows as the outer loop of a plain join; PostgreSQL, which guesses 100 rows for any
    /// JSON array, chose a hash join over the whole table (1.2 ms per batch, growing with
    /// the table), so there each row probes a `LATERAL … LIMIT 1` (the pairs are unique).
    fn probe(
        self,
        param: usize,
        columns: &[(&str, Col)],
        table: &str,
        matches: &[(&str, &str)],
    ) -> String {
        let rows = self.select(param, columns);
        let on: Vec<String> = matches
            .iter()
            .map(|(col, row)| format!("{col} = x.{row}"))
            .collect();
        let on = on.join(" AND ");
        match self.0 {
            Backend::Sqlite => format!("FROM ({rows}) AS x JOIN {table} ON {on}"),
            Backend::Postgres => format!(
                "FROM ({rows}) AS x CROSS JOIN LATERAL (SELECT * FROM {table} WHERE {on} LIMIT 1) AS t"
            ),
        }
    }
}

/// `rows` as the one JSON parameter [`Rows::select`] reads.
fn json<T: Serialize>(rows: &[T]) -> StoreResult<String> {
    serde_json::to_string(rows).map_err(|err| StoreError::Db(sqlx::Error::Encode(Box::new(err))))
}

/// Step 1: the messages already stored under the batch's `(sender, client_id)` pairs.
async fn stored_by_client_id(
    conn: &mut AnyConnection,
    rows: Rows,
    batch: &[NewMessage<'_>],
) -> StoreResult<HashMap<(i64, String), MessageRow>> {
    let keyed: Vec<(i64, &str)> = batch
        .iter()
        .filter_map(|m| m.client_id.map(|c| (m.sender_id, c)))
        .collect();
    let mut stored: HashMap<(i64, String), MessageRow> = HashMap::new();
    if keyed.is_empty() {
        return Ok(stored);
    }
    let sql = format!(
        "SELECT {MESSAGE_COLUMNS} {}",
        rows.probe(
            1,
            &[("sd", Col::Int), ("ci", Col::Text)],
            "messages",
            &[("sender_id", "sd"), ("client_id", "ci")]
        )
    );
    let mut found = sqlx::query_as::<_, MessageRow>(&sql)
        .bind(json(&keyed)?)
        .fetch_all(&mut *conn)
        .await?;
    attach_replies_in(conn, &mut found).await?;
    for row in found {
        if let Some(client_id) = row.client_id.clone() {
            stored.insert((row.sender_id, client_id), row);
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
    rows: Rows,
    batch: &[NewMessage<'_>],
    fresh: &[usize],
) -> StoreResult<HashSet<(i64, i64)>> {
    let mut pairs: Vec<(i64, i64)> = fresh
        .iter()
        .map(|&i| (batch[i].conversation_id, batch[i].sender_id))
        .collect();
    pairs.sort_unstable();
    pairs.dedup();
    if pairs.is_empty() {
        return Ok(HashSet::new());
    }
    let sql = format!(
        "SELECT conversation_id, user_id {}",
        rows.probe(
            1,
            &[("cv", Col::Int), ("us", Col::Int)],
            "members",
            &[("conversation_id", "cv"), ("user_id", "us")]
        )
    );
    Ok(sqlx::query_as::<_, (i64, i64)>(&sql)
        .bind(json(&pairs)?)
        .fetch_all(&mut *conn)
        .await?
        .into_iter()
        .collect())
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
/// a conversation's sends all go through one writer, so writers never wait on each
/// other's rows) and its last activity becomes `now`.
async fn allocate_seqs(
    conn: &mut AnyConnection,
    rows: Rows,
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
    let sql = format!(
        "UPDATE conversations SET last_seq = last_seq + x.n, last_activity_at = $1 \
         FROM ({}) AS x WHERE id = x.cid RETURNING id, last_seq",
        rows.select(2, &[("cid", Col::Int), ("n", Col::Int)])
    );
    let mut next: HashMap<i64, i64> = HashMap::new();
    for (id, last) in sqlx::query_as::<_, (i64, i64)>(&sql)
        .bind(now)
        .bind(json(&counts)?)
        .fetch_all(&mut *conn)
        .await?
    {
        let n = counts.iter().find(|(c, _)| *c == id).map_or(0, |(_, n)| *n);
        next.insert(id, last - n + 1);
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
    rows: Rows,
    batch: &[NewMessage<'_>],
    items: &[(usize, i64)],
    now: i64,
) -> StoreResult<HashMap<(i64, i64), MessageRow>> {
    type Item<'a> = (
        i64,
        i64,
        i64,
        &'a str,
        &'a str,
        Option<&'a str>,
        Option<i64>,
        String,
    );
    let values: Vec<Item<'_>> = items
        .iter()
        .map(|&(i, seq)| {
            let new = &batch[i];
            (
                new.conversation_id,
                seq,
                new.sender_id,
                new.kind.as_str(),
                new.body,
                new.client_id,
                new.reply_to_id,
                mentions_json(new.mentions),
            )
        })
        .collect();
    let sql = format!(
        "INSERT INTO messages (conversation_id, seq, sender_id, kind, body, client_id, created_at, \
         reply_to_id, mentions) \
         SELECT x.cv, x.sq, x.sd, x.kd, x.bd, x.ci, $1, x.rt, x.mn FROM ({}) AS x RETURNING {MESSAGE_COLUMNS}",
        rows.select(
            2,
            &[
                ("cv", Col::Int),
                ("sq", Col::Int),
                ("sd", Col::Int),
                ("kd", Col::Text),
                ("bd", Col::Text),
                ("ci", Col::Text),
                ("rt", Col::Int),
                ("mn", Col::Text),
            ]
        )
    );
    let mut inserted = sqlx::query_as::<_, MessageRow>(&sql)
        .bind(now)
        .bind(json(&values)?)
        .fetch_all(&mut *conn)
        .await?;
    attach_replies_in(conn, &mut inserted).await?;
    Ok(inserted
        .into_iter()
        .map(|row| ((row.conversation_id, row.seq), row))
        .collect())
}

/// Step 4b, only for a batch that mentions someone: who is mentioned where.
async fn record_mentions(
    conn: &mut AnyConnection,
    rows: Rows,
    batch: &[NewMessage<'_>],
    items: &[(usize, i64)],
) -> StoreResult<()> {
    let mentions: Vec<(i64, i64, i64)> = items
        .iter()
        .flat_map(|&(i, seq)| {
            let new = &batch[i];
            new.mentions
                .iter()
                .map(move |&user| (user, new.conversation_id, seq))
        })
        .collect();
    if mentions.is_empty() {
        return Ok(());
    }
    let sql = format!(
        "INSERT INTO mentions (user_id, conversation_id, seq) SELECT x.us, x.cv, x.sq FROM ({}) AS x",
        rows.select(1, &[("us", Col::Int), ("cv", Col::Int), ("sq", Col::Int)])
    );
    sqlx::query(&sql)
        .bind(json(&mentions)?)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Step 5: sending implies having read everything up to one's own (last) message, so
/// each sender's read position in each conversation becomes their highest seq in
/// `items` (`(item, seq)`).
async fn advance_read_positions(
    conn: &mut AnyConnection,
    rows: Rows,
    batch: &[NewMessage<'_>],
    items: &[(usize, i64)],
) -> StoreResult<()> {
    let mut read: HashMap<(i64, i64), i64> = HashMap::new();
    for &(i, seq) in items {
        let key = (batch[i].conversation_id, batch[i].sender_id);
        let entry = read.entry(key).or_insert(seq);
        *entry = (*entry).max(seq);
    }
    let mut read: Vec<(i64, i64, i64)> = read.into_iter().map(|((c, u), s)| (c, u, s)).collect();
    read.sort_unstable();
    let sql = format!(
        "UPDATE members SET last_read_seq = x.sq FROM ({}) AS x \
         WHERE conversation_id = x.cv AND user_id = x.us",
        rows.select(1, &[("cv", Col::Int), ("us", Col::Int), ("sq", Col::Int)])
    );
    sqlx::query(&sql)
        .bind(json(&read)?)
        .execute(&mut *conn)
        .await?;
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
