//! Conversations and their members.

use sqlx::FromRow;

use super::{
    MessageRow, Store, StoreError, StoreResult, UserRow, messages::MESSAGE_COLUMNS, now_ms,
    users::USER_COLUMNS,
};

#[derive(Debug, Clone, FromRow)]
pub struct ConversationRow {
    pub id: i64,
    pub kind: String,
    pub title: Option<String>,
    pub owner_id: Option<i64>,
    pub last_seq: i64,
    pub last_change: i64,
    pub created_at: i64,
    pub last_activity_at: i64,
}

const CONVERSATION_COLUMNS: &str = "c.id, c.kind, c.title, c.owner_id, c.last_seq, c.last_change, \
     c.created_at, c.last_activity_at";

/// A member's own columns as a membership row reads them (`m` is the member).
const MEMBER_COLUMNS: &str = "m.last_read_seq, m.muted, \
     (SELECT COUNT(*) FROM mentions mn WHERE mn.user_id = m.user_id \
      AND mn.conversation_id = m.conversation_id AND mn.seq > m.last_read_seq) AS unread_mentions";

/// A member of a conversation and how far they have read.
#[derive(Debug, Clone, FromRow)]
pub struct MemberRow {
    #[sqlx(flatten)]
    pub user: UserRow,
    pub last_read_seq: i64,
}

/// A conversation as seen by one of its members.
#[derive(Debug, Clone, FromRow)]
pub struct MembershipRow {
    #[sqlx(flatten)]
    pub conversation: ConversationRow,
    pub last_read_seq: i64,
    /// 1: the member muted the conversation.
    pub muted: i64,
    /// Messages after the read position that mention the member.
    pub unread_mentions: i64,
}

impl Store {
    /// The conversation `id` if `user_id` is a member of it; `NotFound` otherwise (also
    /// when it does not exist: the two are indistinguishable to the caller).
    pub async fn membership(&self, id: i64, user_id: i64) -> StoreResult<MembershipRow> {
        let sql = format!(
            "SELECT {CONVERSATION_COLUMNS}, {MEMBER_COLUMNS} FROM conversations c \
             JOIN members m ON m.conversation_id = c.id WHERE c.id = $1 AND m.user_id = $2"
        );
        Ok(sqlx::query_as::<_, MembershipRow>(&sql)
            .bind(id)
            .bind(user_id)
            .fetch_one(&self.read)
            .await?)
    }

    /// A conversation regardless of who asks (for routing, never for a user's eyes).
    pub async fn conversation(&self, id: i64) -> StoreResult<ConversationRow> {
        let sql = format!("SELECT {CONVERSATION_COLUMNS} FROM conversations c WHERE c.id = $1");
        Ok(sqlx::query_as::<_, ConversationRow>(&sql)
            .bind(id)
            .fetch_one(&self.read)
            .await?)
    }

    /// Members of a conversation with their read positions, earliest joined first.
    pub async fn conversation_members(&self, id: i64) -> StoreResult<Vec<MemberRow>> {
        let sql = format!(
            "SELECT {cols}, m.last_read_seq FROM users u JOIN members m ON m.user_id = u.id \
             WHERE m.conversation_id = $1 ORDER BY m.joined_at, u.id",
            cols = prefixed(USER_COLUMNS, "u")
        );
        Ok(sqlx::query_as::<_, MemberRow>(&sql)
            .bind(id)
            .fetch_all(&self.read)
            .await?)
    }

    /// The ids of a conversation's members.
    pub async fn member_ids(&self, id: i64) -> StoreResult<Vec<i64>> {
        Ok(
            sqlx::query_scalar::<_, i64>("SELECT user_id FROM members WHERE conversation_id = $1")
                .bind(id)
                .fetch_all(&self.read)
                .await?,
        )
    }

    /// Everyone who shares at least one conversation with `user_id` (not themselves).
    pub async fn contact_ids(&self, user_id: i64) -> StoreResult<Vec<i64>> {
        Ok(sqlx::query_scalar::<_, i64>(
            "SELECT DISTINCT other.user_id FROM members mine \
             JOIN members other ON other.conversation_id = mine.conversation_id \
             WHERE mine.user_id = $1 AND other.user_id <> $1",
        )
        .bind(user_id)
        .fetch_all(&self.read)
        .await?)
    }

    /// Gets or creates the one direct conversation between `a` and `b` (a ≠ b).
    /// Returns it and whether it was created now.
    pub async fn direct_conversation(&self, a: i64, b: i64) -> StoreResult<(i64, bool)> {
        let key = format!("{}:{}", a.min(b), a.max(b));
        let now = now_ms();
        let mut tx = self.write_tx().await?;
        let created = sqlx::query_scalar::<_, i64>(
            "INSERT INTO conversations (kind, direct_key, created_at, last_activity_at) \
             VALUES ('direct', $1, $2, $2) ON CONFLICT (direct_key) DO NOTHING RETURNING id",
        )
        .bind(&key)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(id) = created else {
            tx.rollback().await?;
            let id =
                sqlx::query_scalar::<_, i64>("SELECT id FROM conversations WHERE direct_key = $1")
                    .bind(&key)
                    .fetch_one(&self.write)
                    .await?;
            return Ok((id, false));
        };
        for user in [a, b] {
            sqlx::query(
                "INSERT INTO members (conversation_id, user_id, joined_at) VALUES ($1, $2, $3)",
            )
            .bind(id)
            .bind(user)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok((id, true))
    }

    /// Creates a group owned by `owner` with `members` (owner included once).
    pub async fn create_group(&self, owner: i64, title: &str, members: &[i64]) -> StoreResult<i64> {
        let now = now_ms();
        let mut tx = self.write_tx().await?;
        let id = sqlx::query_scalar::<_, i64>(
            "INSERT INTO conversations (kind, title, owner_id, created_at, last_activity_at) \
             VALUES ('group', $1, $2, $3, $3) RETURNING id",
        )
        .bind(title)
        .bind(owner)
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
        for user in std::iter::once(owner).chain(members.iter().copied().filter(|m| *m != owner)) {
            sqlx::query(
                "INSERT INTO members (conversation_id, user_id, joined_at) VALUES ($1, $2, $3) \
                 ON CONFLICT DO NOTHING",
            )
            .bind(id)
            .bind(user)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(id)
    }

    pub async fn rename_conversation(&self, id: i64, title: &str) -> StoreResult<()> {
        sqlx::query("UPDATE conversations SET title = $1 WHERE id = $2")
            .bind(title)
            .bind(id)
            .execute(&self.write)
            .await?;
        Ok(())
    }

    /// Adds `users` to conversation `id` (already-members are left as they are).
    /// Returns the ids that were added.
    ///
    /// Each new member's `joined_seq` is the conversation's last seq at the moment of
    /// joining, read under the conversation's row lock (the lock message inserts take to
    /// allocate seqs), so it is exact: live delivery to the member starts right after it.
    pub async fn add_members(&self, id: i64, users: &[i64]) -> StoreResult<Vec<i64>> {
        let now = now_ms();
        let mut added = Vec::new();
        let mut tx = self.write_tx().await?;
        let (joined_seq, joined_change) = sqlx::query_as::<_, (i64, i64)>(
            "UPDATE conversations SET last_seq = last_seq WHERE id = $1 RETURNING last_seq, last_change",
        )
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
        for user in users {
            let done = sqlx::query(
                "INSERT INTO members (conversation_id, user_id, joined_at, joined_seq, joined_change) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
            )
            .bind(id)
            .bind(*user)
            .bind(now)
            .bind(joined_seq)
            .bind(joined_change)
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() == 1 {
                added.push(*user);
            }
        }
        tx.commit().await?;
        Ok(added)
    }

    /// Mutes (or unmutes) conversation `id` for member `user_id`; `NotFound` if not a
    /// member.
    pub async fn set_muted(&self, id: i64, user_id: i64, muted: bool) -> StoreResult<()> {
        let done = sqlx::query(
            "UPDATE members SET muted = $3 WHERE conversation_id = $1 AND user_id = $2",
        )
        .bind(id)
        .bind(user_id)
        .bind(i64::from(muted))
        .execute(&self.write)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// How many members conversation `id` has.
    pub async fn member_count(&self, id: i64) -> StoreResult<usize> {
        let n =
            sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM members WHERE conversation_id = $1")
                .bind(id)
                .fetch_one(&self.read)
                .await?;
        Ok(usize::try_from(n).unwrap_or_default())
    }

    /// Removes `user` from conversation `id`. When the owner leaves, the earliest
    /// remaining member becomes the owner. `NotFound` if `user` was not a member.
    pub async fn remove_member(&self, id: i64, user: i64) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        let done = sqlx::query("DELETE FROM members WHERE conversation_id = $1 AND user_id = $2")
            .bind(id)
            .bind(user)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        sqlx::query(
            "UPDATE conversations SET owner_id = (SELECT m.user_id FROM members m \
             WHERE m.conversation_id = $1 ORDER BY m.joined_at, m.user_id LIMIT 1) \
             WHERE id = $1 AND owner_id = $2",
        )
        .bind(id)
        .bind(user)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Where live delivery of each of `user_id`'s conversations starts for a connection
    /// going live now without cursors: (conversation id, its last seq, its last change).
    pub async fn live_positions(&self, user_id: i64) -> StoreResult<Vec<(i64, i64, i64)>> {
        Ok(sqlx::query_as::<_, (i64, i64, i64)>(
            "SELECT c.id, c.last_seq, c.last_change FROM members m \
             JOIN conversations c ON c.id = m.conversation_id WHERE m.user_id = $1",
        )
        .bind(user_id)
        .fetch_all(&self.read)
        .await?)
    }

    /// The conversation's last seq and last change when `user_id` joined it; `None` if
    /// not a member.
    pub async fn joined_at(&self, id: i64, user_id: i64) -> StoreResult<Option<(i64, i64)>> {
        Ok(sqlx::query_as::<_, (i64, i64)>(
            "SELECT joined_seq, joined_change FROM members WHERE conversation_id = $1 AND user_id = $2",
        )
        .bind(id)
        .bind(user_id)
        .fetch_optional(&self.read)
        .await?)
    }

    /// The conversations of `user_id`, newest activity first.
    pub async fn memberships(&self, user_id: i64) -> StoreResult<Vec<MembershipRow>> {
        let sql = format!(
            "SELECT {CONVERSATION_COLUMNS}, {MEMBER_COLUMNS} FROM members m \
             JOIN conversations c ON c.id = m.conversation_id WHERE m.user_id = $1 \
             ORDER BY c.last_activity_at DESC, c.id DESC"
        );
        Ok(sqlx::query_as::<_, MembershipRow>(&sql)
            .bind(user_id)
            .fetch_all(&self.read)
            .await?)
    }

    /// Every member of every conversation of `user_id`, as (conversation id, member).
    pub async fn members_of_memberships(&self, user_id: i64) -> StoreResult<Vec<(i64, MemberRow)>> {
        #[derive(FromRow)]
        struct Row {
            conversation_id: i64,
            #[sqlx(flatten)]
            member: MemberRow,
        }
        let sql = format!(
            "SELECT other.conversation_id, {cols}, other.last_read_seq FROM members mine \
             JOIN members other ON other.conversation_id = mine.conversation_id \
             JOIN users u ON u.id = other.user_id WHERE mine.user_id = $1 \
             ORDER BY other.conversation_id, other.joined_at, u.id",
            cols = prefixed(USER_COLUMNS, "u")
        );
        let rows = sqlx::query_as::<_, Row>(&sql)
            .bind(user_id)
            .fetch_all(&self.read)
            .await?;
        Ok(rows
            .into_iter()
            .map(|r| (r.conversation_id, r.member))
            .collect())
    }

    /// The last message of every conversation of `user_id` that has one.
    pub async fn last_messages_of_memberships(&self, user_id: i64) -> StoreResult<Vec<MessageRow>> {
        let sql = format!(
            "SELECT {cols} FROM members mine \
             JOIN conversations c ON c.id = mine.conversation_id \
             JOIN messages msg ON msg.conversation_id = c.id AND msg.seq = c.last_seq \
             WHERE mine.user_id = $1",
            cols = prefixed(MESSAGE_COLUMNS, "msg")
        );
        let mut rows = sqlx::query_as::<_, MessageRow>(&sql)
            .bind(user_id)
            .fetch_all(&self.read)
            .await?;
        self.attach_replies(&mut rows).await?;
        Ok(rows)
    }
}

/// `"a, b"` → `"t.a, t.b"`.
fn prefixed(columns: &str, table: &str) -> String {
    columns
        .split(", ")
        .map(|c| format!("{table}.{c}"))
        .collect::<Vec<_>>()
        .join(", ")
}
