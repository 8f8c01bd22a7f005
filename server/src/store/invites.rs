//! Invites: codes an admin makes, each good for a number of accounts until it expires or
//! is revoked.

use chatapp_protocol::InviteState;
use sqlx::{AnyConnection, FromRow};

use super::{Store, StoreError, StoreResult, now_ms, users::record_action};

#[derive(Debug, Clone, FromRow)]
pub struct InviteRow {
    pub id: i64,
    pub code: String,
    pub created_by: Option<i64>,
    pub max_uses: i64,
    pub uses: i64,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
    pub created_at: i64,
}

impl InviteRow {
    /// Where it stands at `now` (ms).
    pub fn state(&self, now: i64) -> InviteState {
        if self.revoked_at.is_some() {
            InviteState::Revoked
        } else if self.uses >= self.max_uses {
            InviteState::UsedUp
        } else if self.expires_at <= now {
            InviteState::Expired
        } else {
            InviteState::Active
        }
    }
}

const INVITE_COLUMNS: &str =
    "id, code, created_by, max_uses, uses, expires_at, revoked_at, created_at";

impl Store {
    /// A new invite with `code`, good for `max_uses` accounts until `expires_at` (ms),
    /// recorded as made by `actor` (`None`: the operator's CLI).
    pub async fn create_invite(
        &self,
        actor: Option<i64>,
        code: &str,
        max_uses: i64,
        expires_at: i64,
    ) -> StoreResult<InviteRow> {
        let mut tx = self.write_tx().await?;
        let sql = format!(
            "INSERT INTO invites (code, created_by, max_uses, expires_at, created_at) \
             VALUES ($1, $2, $3, $4, $5) RETURNING {INVITE_COLUMNS}"
        );
        let invite = sqlx::query_as::<_, InviteRow>(&sql)
            .bind(code)
            .bind(actor)
            .bind(max_uses)
            .bind(expires_at)
            .bind(now_ms())
            .fetch_one(&mut *tx)
            .await?;
        let detail = format!("invite {} for {max_uses}", invite.id);
        record_action(&mut tx, actor, "create_invite", None, &detail).await?;
        tx.commit().await?;
        Ok(invite)
    }

    /// The newest invites first, at most `limit`.
    pub async fn invites(&self, limit: i64) -> StoreResult<Vec<InviteRow>> {
        let sql = format!("SELECT {INVITE_COLUMNS} FROM invites ORDER BY id DESC LIMIT $1");
        Ok(sqlx::query_as::<_, InviteRow>(&sql)
            .bind(limit)
            .fetch_all(&self.read)
            .await?)
    }

    /// Revokes invite `id` (revoking it again changes nothing); `NotFound` for no such
    /// invite.
    pub async fn revoke_invite(&self, actor: Option<i64>, id: i64) -> StoreResult<InviteRow> {
        let mut tx = self.write_tx().await?;
        let sql = format!("SELECT {INVITE_COLUMNS} FROM invites WHERE id = $1");
        let invite = sqlx::query_as::<_, InviteRow>(&sql)
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(StoreError::NotFound)?;
        if invite.revoked_at.is_some() {
            tx.rollback().await?;
            return Ok(invite);
        }
        let sql =
            format!("UPDATE invites SET revoked_at = $1 WHERE id = $2 RETURNING {INVITE_COLUMNS}");
        let invite = sqlx::query_as::<_, InviteRow>(&sql)
            .bind(now_ms())
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
        record_action(
            &mut tx,
            actor,
            "revoke_invite",
            None,
            &format!("invite {id}"),
        )
        .await?;
        tx.commit().await?;
        Ok(invite)
    }
}

/// Takes one use of the invite with `code`, in the transaction that creates the account;
/// `Refused("invite_invalid", why)` when it is unknown, used up, expired or revoked.
pub(super) async fn use_invite(conn: &mut AnyConnection, code: &str) -> StoreResult<()> {
    let now = now_ms();
    // The conditions are in the UPDATE itself, so two registrations racing for the last
    // use cannot both get it (on PostgreSQL the second waits for the first's row lock
    // and then finds it used up).
    let taken = sqlx::query(
        "UPDATE invites SET uses = uses + 1 WHERE code = $1 AND revoked_at IS NULL \
         AND uses < max_uses AND expires_at > $2",
    )
    .bind(code)
    .bind(now)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if taken == 1 {
        return Ok(());
    }
    let sql = format!("SELECT {INVITE_COLUMNS} FROM invites WHERE code = $1");
    let invite = sqlx::query_as::<_, InviteRow>(&sql)
        .bind(code)
        .fetch_optional(&mut *conn)
        .await?;
    let why = match invite.map(|i| i.state(now)) {
        None | Some(InviteState::Active) => "this invite is not known here; check the link",
        Some(InviteState::UsedUp) => "this invite has been used up; ask for a new one",
        Some(InviteState::Expired) => "this invite has expired; ask for a new one",
        Some(InviteState::Revoked) => "this invite was revoked; ask for a new one",
    };
    Err(StoreError::Refused("invite_invalid", why))
}
