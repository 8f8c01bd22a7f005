//! Changes to stored messages: edits, deletions, reactions. Each one that changes
//! anything takes its conversation's next change number (`conversations.last_change`)
//! under the conversation's row lock, in the transaction that applies it, and stores it
//! as the message's `rev`; a change that would change nothing (the same text again, a
//! second deletion, a reaction already there) takes none and is answered with the
//! message as it is. So a retried change never applies twice, and a client resumes
//! changes after the change number it has.

use chatapp_protocol::{MAX_REACTIONS, Reaction};
use sqlx::AnyConnection;

use super::{
    super::{Backend, Store, StoreError, StoreResult, now_ms},
    MESSAGE_COLUMNS, MessageRow, PlayedRow, attach_replies_in, mentions_json,
};

/// What to do to a message.
#[derive(Debug, Clone, Copy)]
pub enum MessageChange<'a> {
    /// New text, and the members it mentions (ascending ids).
    Edit { body: &'a str, mentions: &'a [i64] },
    /// A tombstone: no text, file, reactions or mentions.
    Delete,
    /// Add (`on`) or take back the actor's reaction with `emoji`.
    React { emoji: &'a str, on: bool },
    /// The actor played the (voice) message.
    Played,
}

/// What a change did.
#[derive(Debug)]
pub enum ChangeOutcome {
    /// Applied: the message as it is now, and the files it no longer refers to (to be
    /// removed from the blob store after the commit: a voice file, or a photo and its
    /// thumbnail).
    Changed {
        row: MessageRow,
        removed_files: Vec<String>,
    },
    /// Nothing to change: the message as it is.
    Unchanged(MessageRow),
}

impl ChangeOutcome {
    pub fn row(&self) -> &MessageRow {
        match self {
            Self::Changed { row, .. } | Self::Unchanged(row) => row,
        }
    }
}

impl Store {
    /// Applies `change` by `actor` to the message at `seq` of the conversation, in one
    /// transaction: `NotFound` when the actor is not a member or there is no such
    /// message; `allowed` decides on the message as it is, under the lock, before
    /// anything is written.
    pub async fn change_message<E: From<StoreError>>(
        &self,
        conversation_id: i64,
        seq: i64,
        actor: i64,
        change: MessageChange<'_>,
        allowed: impl FnOnce(&MessageRow) -> Result<(), E>,
    ) -> Result<ChangeOutcome, E> {
        self.apply_change(conversation_id, seq, Some(actor), change, allowed)
            .await
    }

    /// Turns a message of a deleted account into a tombstone, whether or not the account
    /// was still a member (its voice file or photo goes with it).
    pub async fn delete_message_of_deleted_account(
        &self,
        conversation_id: i64,
        seq: i64,
    ) -> StoreResult<ChangeOutcome> {
        self.apply_change(conversation_id, seq, None, MessageChange::Delete, |_| {
            Ok::<(), StoreError>(())
        })
        .await
    }

    /// [`Store::change_message`]; with no `actor`, no membership is needed.
    async fn apply_change<E: From<StoreError>>(
        &self,
        conversation_id: i64,
        seq: i64,
        actor: Option<i64>,
        change: MessageChange<'_>,
        allowed: impl FnOnce(&MessageRow) -> Result<(), E>,
    ) -> Result<ChangeOutcome, E> {
        let mut tx = self.write_tx().await?;
        // Locks the conversation's row (PostgreSQL; SQLite has one writer) for the rest
        // of the transaction: changes of one conversation are applied one at a time, in
        // the order of their numbers.
        let rev = sqlx::query_scalar::<_, i64>(
            "UPDATE conversations SET last_change = last_change + 1 WHERE id = $1 \
             AND ($2 = 0 OR EXISTS (SELECT 1 FROM members WHERE conversation_id = $1 AND user_id = $2)) \
             RETURNING last_change",
        )
        .bind(conversation_id)
        .bind(actor.unwrap_or(0))
        .fetch_optional(&mut *tx)
        .await
        .map_err(StoreError::from)?
        .ok_or(StoreError::NotFound)?;
        let sql = format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages WHERE conversation_id = $1 AND seq = $2"
        );
        let mut row = sqlx::query_as::<_, MessageRow>(&sql)
            .bind(conversation_id)
            .bind(seq)
            .fetch_optional(&mut *tx)
            .await
            .map_err(StoreError::from)?
            .ok_or(StoreError::NotFound)?;
        allowed(&row)?;
        let now = now_ms();
        let applied = match change {
            MessageChange::Edit { body, mentions } => {
                edit(&mut tx, &row, rev, now, body, mentions).await?
            }
            MessageChange::Delete => delete(&mut tx, &row, rev, now).await?,
            MessageChange::React { emoji, on } => {
                react(&mut tx, &row, rev, actor.unwrap_or(0), emoji, on)
                    .await
                    .map_err(E::from)?
            }
            MessageChange::Played => played(&mut tx, &row, rev, actor.unwrap_or(0), now).await?,
        };
        let Some(removed_files) = applied else {
            tx.rollback().await?;
            let mut rows = [row];
            self.attach_replies(&mut rows).await?;
            let [row] = rows;
            return Ok(ChangeOutcome::Unchanged(row));
        };
        let sql = format!("SELECT {MESSAGE_COLUMNS} FROM messages WHERE id = $1");
        row = sqlx::query_as::<_, MessageRow>(&sql)
            .bind(row.id)
            .fetch_one(&mut *tx)
            .await
            .map_err(StoreError::from)?;
        let mut rows = [row];
        attach_replies_in(&mut tx, &mut rows).await?;
        let [row] = rows;
        tx.commit().await?;
        Ok(ChangeOutcome::Changed { row, removed_files })
    }

    /// The messages of a conversation that changed after change number `after` (up to
    /// `until`), among those at or below `max_seq`, in the order of their last change.
    pub async fn changes_after(
        &self,
        conversation_id: i64,
        after: i64,
        until: i64,
        max_seq: i64,
        limit: i64,
    ) -> StoreResult<Vec<MessageRow>> {
        let sql = format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages WHERE conversation_id = $1 AND rev > $2 \
             AND rev <= $3 AND seq <= $4 ORDER BY rev LIMIT $5"
        );
        let mut rows = sqlx::query_as::<_, MessageRow>(&sql)
            .bind(conversation_id)
            .bind(after)
            .bind(until)
            .bind(max_seq)
            .bind(limit)
            .fetch_all(&self.read)
            .await?;
        self.attach_replies(&mut rows).await?;
        Ok(rows)
    }
}

/// `Some(removed files)` when something changed, `None` when nothing would.
type Applied = StoreResult<Option<Vec<String>>>;

async fn edit(
    conn: &mut AnyConnection,
    row: &MessageRow,
    rev: i64,
    now: i64,
    body: &str,
    mentions: &[i64],
) -> Applied {
    if row.body == body {
        return Ok(None);
    }
    sqlx::query(
        "UPDATE messages SET body = $2, edited_at = $3, rev = $4, mentions = $5 WHERE id = $1",
    )
    .bind(row.id)
    .bind(body)
    .bind(now)
    .bind(rev)
    .bind(mentions_json(mentions))
    .execute(&mut *conn)
    .await?;
    forget_mentions(conn, row).await?;
    record_mentions(conn, row.conversation_id, row.seq, mentions).await?;
    Ok(Some(Vec::new()))
}

async fn delete(conn: &mut AnyConnection, row: &MessageRow, rev: i64, now: i64) -> Applied {
    if row.deleted_at.is_some() {
        return Ok(None);
    }
    sqlx::query(
        "UPDATE messages SET body = '', deleted_at = $2, rev = $3, reactions = '[]', mentions = '[]', played_by = '[]', \
         file_id = NULL, file_mime = NULL, file_size = NULL, file_duration_ms = NULL, \
         file_waveform = NULL, file_width = NULL, file_height = NULL, thumb_id = NULL, \
         thumb_mime = NULL, thumb_size = NULL, thumb_width = NULL, thumb_height = NULL \
         WHERE id = $1",
    )
    .bind(row.id)
    .bind(now)
    .bind(rev)
    .execute(&mut *conn)
    .await?;
    forget_mentions(conn, row).await?;
    let files: Vec<String> = row.file_id.iter().chain(&row.thumb_id).cloned().collect();
    for file in &files {
        sqlx::query("DELETE FROM files WHERE id = $1")
            .bind(file)
            .execute(&mut *conn)
            .await?;
    }
    Ok(Some(files))
}

async fn react(
    conn: &mut AnyConnection,
    row: &MessageRow,
    rev: i64,
    actor: i64,
    emoji: &str,
    on: bool,
) -> Applied {
    let mut reactions: Vec<Reaction> = serde_json::from_str(&row.reactions).unwrap_or_default();
    let slot = reactions.iter().position(|r| r.emoji == emoji);
    match (slot, on) {
        (Some(i), true) if reactions[i].user_ids.contains(&actor) => return Ok(None),
        (Some(i), true) => reactions[i].user_ids.push(actor),
        (None, true) => {
            if reactions.len() >= MAX_REACTIONS {
                return Err(StoreError::Conflict(
                    "too_many_reactions",
                    "this message has as many different reactions as it may have",
                ));
            }
            reactions.push(Reaction {
                emoji: emoji.to_owned(),
                user_ids: vec![actor],
            });
        }
        (Some(i), false) if reactions[i].user_ids.contains(&actor) => {
            reactions[i].user_ids.retain(|u| *u != actor);
            if reactions[i].user_ids.is_empty() {
                reactions.remove(i);
            }
        }
        (_, false) => return Ok(None),
    }
    set_json(conn, row, rev, "reactions", &reactions).await
}

async fn played(
    conn: &mut AnyConnection,
    row: &MessageRow,
    rev: i64,
    actor: i64,
    now: i64,
) -> Applied {
    let mut played = row.played();
    if played.iter().any(|p| p.user_id == actor) {
        return Ok(None);
    }
    played.push(PlayedRow {
        user_id: actor,
        at: now,
    });
    set_json(conn, row, rev, "played_by", &played).await
}

/// Writes `value` as the JSON of the message's `column` (a column of this module's own,
/// never input) with change number `rev`: a change applied.
async fn set_json(
    conn: &mut AnyConnection,
    row: &MessageRow,
    rev: i64,
    column: &'static str,
    value: &impl serde::Serialize,
) -> Applied {
    let json = serde_json::to_string(value)
        .map_err(|err| StoreError::Db(sqlx::Error::Encode(Box::new(err))))?;
    sqlx::query(&format!(
        "UPDATE messages SET {column} = $2, rev = $3 WHERE id = $1"
    ))
    .bind(row.id)
    .bind(json)
    .bind(rev)
    .execute(&mut *conn)
    .await?;
    Ok(Some(Vec::new()))
}

async fn forget_mentions(conn: &mut AnyConnection, row: &MessageRow) -> StoreResult<()> {
    sqlx::query("DELETE FROM mentions WHERE conversation_id = $1 AND seq = $2")
        .bind(row.conversation_id)
        .bind(row.seq)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Records who the message at `seq` mentions (the "@" counts).
pub(super) async fn record_mentions(
    conn: &mut AnyConnection,
    conversation_id: i64,
    seq: i64,
    mentions: &[i64],
) -> StoreResult<()> {
    for user in mentions {
        sqlx::query(
            "INSERT INTO mentions (user_id, conversation_id, seq) VALUES ($1, $2, $3) \
             ON CONFLICT DO NOTHING",
        )
        .bind(*user)
        .bind(conversation_id)
        .bind(seq)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

impl Store {
    /// Messages of `user_id`'s conversations (since they joined each) whose text has
    /// every one of `terms` (lowercase words; the last may be the start of a word),
    /// newest first, with ids below `before_id`.
    pub async fn search(
        &self,
        user_id: i64,
        terms: &[String],
        before_id: Option<i64>,
        limit: i64,
    ) -> StoreResult<Vec<MessageRow>> {
        let cols = MESSAGE_COLUMNS
            .split(", ")
            .map(|c| format!("m.{c}"))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = match self.backend {
            Backend::Sqlite => format!(
                "SELECT {cols} FROM messages_fts f JOIN messages m ON m.id = f.rowid \
                 JOIN members mb ON mb.conversation_id = m.conversation_id \
                 WHERE messages_fts MATCH $1 AND f.rowid < $2 AND mb.user_id = $3 \
                 AND m.seq > mb.joined_seq ORDER BY f.rowid DESC LIMIT $4"
            ),
            Backend::Postgres => {
                // The searcher's conversations, and the seq each was joined at, written
                // into the statement as conditions on `messages` alone: so the planner
                // sees how many messages they hold (joined to `members`, it counted the
                // conversations' share twice and guessed 150 times too few rows), and
                // walks the newest messages for a common word, or ANDs the word's GIN
                // bitmap with the conversations' for a rarer one.
                let memberships: Vec<(i64, i64)> = sqlx::query_as(
                    "SELECT conversation_id, joined_seq FROM members WHERE user_id = $1",
                )
                .bind(user_id)
                .fetch_all(&self.read)
                .await?;
                if memberships.is_empty() {
                    return Ok(Vec::new());
                }
                let list = memberships
                    .iter()
                    .map(|(id, _)| id.to_string())
                    .collect::<Vec<_>>()
                    .join(", ");
                let before_joining: String = memberships
                    .iter()
                    .filter(|(_, joined_seq)| *joined_seq > 0)
                    .map(|(id, joined_seq)| {
                        format!(" AND NOT (m.conversation_id = {id} AND m.seq <= {joined_seq})")
                    })
                    .collect();
                format!(
                    "SELECT {cols} FROM messages m \
                     WHERE m.conversation_id IN ({list}){before_joining} \
                     AND m.body_words @@ to_tsquery('simple', $1) AND m.id < $2 \
                     ORDER BY m.id DESC LIMIT $3"
                )
            }
        };
        let pattern = match self.backend {
            Backend::Sqlite => fts5_query(terms),
            Backend::Postgres => tsquery(terms),
        };
        // PostgreSQL: an unnamed statement, planned for these words and conversations (a
        // prepared one is planned once for any, as if every word were as common as any
        // other: a second for the commonest, BENCHMARKS.md section 12).
        let query = sqlx::query_as::<_, MessageRow>(&sql)
            .persistent(self.backend == Backend::Sqlite)
            .bind(pattern)
            .bind(before_id.unwrap_or(i64::MAX));
        let query = match self.backend {
            Backend::Sqlite => query.bind(user_id).bind(limit),
            Backend::Postgres => query.bind(limit),
        };
        let mut rows = query.fetch_all(&self.read).await?;
        self.attach_replies(&mut rows).await?;
        Ok(rows)
    }
}

/// `"a" "bcd"*`: FTS5's every word, the last as a prefix (terms are letters and digits
/// only, so quoting them is all the escaping they need).
fn fts5_query(terms: &[String]) -> String {
    every_word(terms, |t| format!("\"{t}\""), "*", " ")
}

/// `'a' & 'bcd':*`: PostgreSQL's every word, the last as a prefix.
fn tsquery(terms: &[String]) -> String {
    every_word(terms, |t| format!("'{t}'"), ":*", " & ")
}

/// The last term is the start of a word only from this many characters: one or two
/// letters as a prefix match a large part of all the words, whose lists both databases
/// merge in full before the first result (80 ms at the 95th percentile over a million
/// messages, BENCHMARKS.md section 12), and find little that a person looks for.
const MIN_PREFIX_CHARS: usize = 3;

/// Each term as `word` writes it, joined by `and`, the last one followed by `prefix` when
/// it has at least [`MIN_PREFIX_CHARS`].
fn every_word(terms: &[String], word: impl Fn(&str) -> String, prefix: &str, and: &str) -> String {
    let mut words: Vec<String> = terms.iter().map(|t| word(t)).collect();
    if let (Some(last), Some(term)) = (words.last_mut(), terms.last())
        && term.chars().count() >= MIN_PREFIX_CHARS
    {
        last.push_str(prefix);
    }
    words.join(and)
}

#[cfg(test)]
mod tests {
    use super::{fts5_query, tsquery};

    fn terms(words: &[&str]) -> Vec<String> {
        words.iter().map(|&w| w.to_owned()).collect()
    }

    #[test]
    fn the_last_word_is_a_prefix_from_three_letters() {
        assert_eq!(
            fts5_query(&terms(&["picnic", "sat"])),
            "\"picnic\" \"sat\"*"
        );
        assert_eq!(fts5_query(&terms(&["picnic", "sa"])), "\"picnic\" \"sa\"");
        assert_eq!(fts5_query(&terms(&["été"])), "\"été\"*");
        assert_eq!(tsquery(&terms(&["be", "kind"])), "'be' & 'kind':*");
        assert_eq!(tsquery(&terms(&["go"])), "'go'");
    }
}
