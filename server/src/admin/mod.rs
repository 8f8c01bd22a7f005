//! Running the server for others: who may sign up (`--registration`, invites) and what
//! admins may do (grant and revoke admin, disable and enable accounts, reset passwords,
//! make and revoke invites), each recorded in `admin_actions`. The HTTP routes are in
//! [`routes`]; the operator's CLI (`cli`) uses the same store functions.

pub mod routes;

use std::collections::HashMap;

use axum::{extract::FromRequestParts, http::request::Parts};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chatapp_protocol::{AdminAction, AdminUser, Invite, Registration, User};
use rand::RngCore;

use crate::{
    AppState,
    auth::AuthUser,
    error::{ApiError, ApiResult},
    store::{AdminActionRow, InviteRow, UserRow, now_ms, time_of},
};

/// Invites good for more accounts than this are refused.
pub const MAX_INVITE_USES: i64 = 1000;
/// Invites last at most a year.
pub const MAX_INVITE_HOURS: i64 = 24 * 365;
/// An invite lasts a week unless asked otherwise.
pub const DEFAULT_INVITE_HOURS: i64 = 24 * 7;

/// The signed-in caller of an admin route: 401 when signed out, 403 (`admin_only`) when
/// not an admin.
#[derive(Debug, Clone)]
pub struct Admin(pub AuthUser);

impl Admin {
    pub fn id(&self) -> i64 {
        self.0.id()
    }
}

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let auth = AuthUser::from_request_parts(parts, state).await?;
        if !auth.user.is_admin() {
            return Err(ApiError::Refused(
                "admin_only",
                "only an admin of this server may do this".into(),
            ));
        }
        Ok(Self(auth))
    }
}

/// Whether a registration may go ahead under the server's `--registration`: `closed`
/// refuses every one, `invite` needs an invite (checked and used when the account is
/// created). Returns the invite code to use.
pub fn may_register(mode: Registration, invite: Option<&str>) -> ApiResult<Option<String>> {
    let invite = invite.map(str::trim).filter(|c| !c.is_empty());
    match (mode, invite) {
        (Registration::Closed, _) => Err(ApiError::Refused(
            "registration_closed",
            "this server does not take sign-ups; ask its admin for an account".into(),
        )),
        (Registration::Invite, None) => Err(ApiError::Refused(
            "invite_required",
            "this server takes sign-ups by invite only; open the invite link you were sent".into(),
        )),
        (_, invite) => Ok(invite.map(|code| invite_code_of(code).to_owned())),
    }
}

/// The code in an invite link, or the code itself: what follows the last `/invite/`.
pub fn invite_code_of(text: &str) -> &str {
    text.rsplit_once("/invite/").map_or(text, |(_, code)| code)
}

/// A new invite code: 128 random bits, URL-safe.
pub fn new_invite_code() -> String {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// `expires_in_hours` of a new invite, checked: when it expires (ms).
pub fn invite_expiry(hours: Option<i64>) -> ApiResult<i64> {
    let hours = hours.unwrap_or(DEFAULT_INVITE_HOURS);
    if !(1..=MAX_INVITE_HOURS).contains(&hours) {
        return Err(ApiError::validation(
            "invalid_expiry",
            format!("expires_in_hours must be 1–{MAX_INVITE_HOURS}"),
        ));
    }
    Ok(now_ms() + hours * 60 * 60 * 1000)
}

/// `max_uses` of a new invite, checked.
pub fn invite_uses(uses: Option<i64>) -> ApiResult<i64> {
    let uses = uses.unwrap_or(1);
    if !(1..=MAX_INVITE_USES).contains(&uses) {
        return Err(ApiError::validation(
            "invalid_uses",
            format!("max_uses must be 1–{MAX_INVITE_USES}"),
        ));
    }
    Ok(uses)
}

/// An account as admins see it.
pub fn admin_user(state: &AppState, row: &UserRow) -> AdminUser {
    AdminUser {
        user: state.public_user(row),
        email: row.email.clone(),
        is_admin: row.is_admin(),
        disabled: row.disabled_at.is_some(),
        created_at: time_of(row.created_at),
    }
}

/// The public views of the accounts with these ids, by id.
async fn users_of(
    state: &AppState,
    ids: impl IntoIterator<Item = i64>,
) -> ApiResult<HashMap<i64, User>> {
    let mut ids: Vec<i64> = ids.into_iter().collect();
    ids.sort_unstable();
    ids.dedup();
    let rows = state.store.users_by_ids(&ids).await?;
    Ok(rows
        .iter()
        .map(|row| (row.id, state.public_user(row)))
        .collect())
}

/// Invites as the API shows them.
pub async fn invites_view(state: &AppState, rows: &[InviteRow]) -> ApiResult<Vec<Invite>> {
    let users = users_of(state, rows.iter().filter_map(|i| i.created_by)).await?;
    let now = now_ms();
    Ok(rows
        .iter()
        .map(|row| Invite {
            id: row.id,
            code: row.code.clone(),
            max_uses: row.max_uses,
            uses: row.uses,
            state: row.state(now),
            expires_at: time_of(row.expires_at),
            created_at: time_of(row.created_at),
            created_by: row.created_by.and_then(|id| users.get(&id).cloned()),
        })
        .collect())
}

/// One invite as the API shows it.
pub async fn invite_view(state: &AppState, row: InviteRow) -> ApiResult<Invite> {
    invites_view(state, std::slice::from_ref(&row))
        .await?
        .pop()
        .ok_or_else(|| ApiError::internal(anyhow::anyhow!("an invite without its view")))
}

/// Recorded actions as the API shows them.
pub async fn actions_view(
    state: &AppState,
    rows: &[AdminActionRow],
) -> ApiResult<Vec<AdminAction>> {
    let users = users_of(
        state,
        rows.iter()
            .flat_map(|a| a.actor_id.into_iter().chain(a.target_id)),
    )
    .await?;
    Ok(rows
        .iter()
        .map(|row| AdminAction {
            id: row.id,
            actor: row.actor_id.and_then(|id| users.get(&id).cloned()),
            action: row.action.clone(),
            target: row.target_id.and_then(|id| users.get(&id).cloned()),
            detail: row.detail.clone(),
            at: time_of(row.at),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registration_follows_the_mode() {
        assert_eq!(may_register(Registration::Open, None).ok(), Some(None));
        assert_eq!(
            may_register(Registration::Open, Some("abc")).ok(),
            Some(Some("abc".into()))
        );
        assert_eq!(
            may_register(Registration::Invite, Some(" "))
                .err()
                .map(|e| e.code()),
            Some("invite_required")
        );
        assert_eq!(
            may_register(
                Registration::Invite,
                Some("https://chat.example/#/invite/xyz")
            )
            .ok(),
            Some(Some("xyz".into()))
        );
        assert_eq!(
            may_register(Registration::Closed, Some("xyz"))
                .err()
                .map(|e| e.code()),
            Some("registration_closed")
        );
    }

    #[test]
    fn invite_limits_are_checked() {
        assert!(invite_uses(None).is_ok_and(|n| n == 1));
        assert!(invite_uses(Some(0)).is_err());
        assert!(invite_uses(Some(MAX_INVITE_USES + 1)).is_err());
        assert!(invite_expiry(Some(0)).is_err());
        assert!(invite_expiry(Some(MAX_INVITE_HOURS + 1)).is_err());
        assert!(invite_expiry(None).is_ok_and(|at| at > now_ms()));
        assert_ne!(new_invite_code(), new_invite_code());
        assert_eq!(new_invite_code().len(), 22);
    }
}
