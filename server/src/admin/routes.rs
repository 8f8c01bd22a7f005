//! `/api/admin/*`: thin handlers over the admin rules (`admin`) and the store. Every one
//! takes [`Admin`]: 401 signed out, 403 `admin_only` for everyone else.

use axum::{extract::State, http::StatusCode};
use chatapp_protocol::{
    AdminAction, AdminUser, AdminUserQuery, AdminUserUpdate, CreateInviteRequest,
    CreateUserRequest, ErrorBody, Invite, UserWithPassword,
};

use super::{Admin, admin_user};
use crate::{
    AppState,
    auth::password,
    error::{ApiError, ApiJson, ApiPath, ApiQuery, ApiResult},
    events::Change,
    store::NewUser,
    text::normalize_email,
    users::{clean_display_name, validate_email, validate_username},
};

const USERS_LIMIT_DEFAULT: i64 = 100;
const USERS_LIMIT_MAX: i64 = 200;
const LIST_LIMIT: i64 = 200;

/// Accounts, with their email, admin and disabled state.
#[utoipa::path(get, path = "/api/admin/users", tag = "admin", params(AdminUserQuery),
    responses(
        (status = 200, description = "Accounts whose username, display name or email starts with `q` (all without it), by username", body = Vec<AdminUser>),
        (status = 400, description = "A mistyped parameter", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Not an admin (`admin_only`)", body = ErrorBody),
        (status = 500, description = "Internal error", body = ErrorBody),
        (status = 507, description = "The server's storage is full (recording the session's use failed)", body = ErrorBody),
    ))]
pub async fn list_users(
    State(state): State<AppState>,
    _admin: Admin,
    ApiQuery(query): ApiQuery<AdminUserQuery>,
) -> ApiResult<ApiJson<Vec<AdminUser>>> {
    let limit = query
        .limit
        .unwrap_or(USERS_LIMIT_DEFAULT)
        .clamp(1, USERS_LIMIT_MAX);
    let q = query.q.as_deref().map(str::trim).filter(|q| !q.is_empty());
    let rows = state.store.admin_users(q, limit).await?;
    Ok(ApiJson(
        rows.iter().map(|u| admin_user(&state, u)).collect(),
    ))
}

/// Create an account (whatever the registration mode); its password is generated and
/// shown this once.
#[utoipa::path(post, path = "/api/admin/users", tag = "admin",
    request_body = CreateUserRequest,
    responses(
        (status = 201, description = "The account and its password", body = UserWithPassword),
        (status = 400, description = "Malformed JSON, or an invalid username, email or display name", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Not an admin (`admin_only`), or a cookie without CSRF token", body = ErrorBody),
        (status = 408, description = "The request body paused or took too long", body = ErrorBody),
        (status = 409, description = "Username or email taken", body = ErrorBody),
        (status = 413, description = "JSON body larger than 64 KiB", body = ErrorBody),
        (status = 415, description = "Content-Type is not application/json", body = ErrorBody),
        (status = 500, description = "Internal error", body = ErrorBody),
        (status = 507, description = "The server's storage is full; nothing was saved", body = ErrorBody),
    ))]
pub async fn create_user(
    State(state): State<AppState>,
    admin: Admin,
    ApiJson(req): ApiJson<CreateUserRequest>,
) -> ApiResult<(StatusCode, ApiJson<UserWithPassword>)> {
    validate_username(&req.username)?;
    let email = normalize_email(&req.email);
    validate_email(&email)?;
    let display_name = clean_display_name(req.display_name.as_deref().unwrap_or(&req.username))?;
    let new_password = password::generate();
    let hash = password::hash(new_password.clone()).await?;
    let user = state
        .store
        .create_user(NewUser {
            username: &req.username,
            email: &email,
            display_name: &display_name,
            password_hash: &hash,
            admin: req.is_admin,
            invite: None,
        })
        .await?;
    state
        .store
        .record_account_created(Some(admin.id()), user.id, user.is_admin())
        .await?;
    tracing::info!(
        user_id = user.id,
        by = admin.id(),
        "account created by an admin"
    );
    Ok((
        StatusCode::CREATED,
        ApiJson(UserWithPassword {
            user: admin_user(&state, &user),
            password: new_password,
        }),
    ))
}

/// Grant or revoke admin, disable or re-enable an account. Disabling ends its sessions at
/// once: its connections close with 4001 on every instance. Admins cannot do either to
/// themselves (another admin can).
#[utoipa::path(patch, path = "/api/admin/users/{id}", tag = "admin",
    params(("id" = i64, Path, description = "User id")),
    request_body = AdminUserUpdate,
    responses(
        (status = 200, description = "The account as it is now", body = AdminUser),
        (status = 400, description = "Malformed JSON, or nothing to change", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Not an admin (`admin_only`), or a cookie without CSRF token", body = ErrorBody),
        (status = 404, description = "No such account (or a deleted one)", body = ErrorBody),
        (status = 408, description = "The request body paused or took too long", body = ErrorBody),
        (status = 409, description = "Your own account (`own_account`)", body = ErrorBody),
        (status = 413, description = "JSON body larger than 64 KiB", body = ErrorBody),
        (status = 415, description = "Content-Type is not application/json", body = ErrorBody),
        (status = 500, description = "Internal error", body = ErrorBody),
        (status = 507, description = "The server's storage is full; nothing was saved", body = ErrorBody),
    ))]
pub async fn update_user(
    State(state): State<AppState>,
    admin: Admin,
    ApiPath(id): ApiPath<i64>,
    ApiJson(req): ApiJson<AdminUserUpdate>,
) -> ApiResult<ApiJson<AdminUser>> {
    if req.is_admin.is_none() && req.disabled.is_none() {
        return Err(ApiError::validation(
            "nothing_to_change",
            "give is_admin or disabled",
        ));
    }
    if id == admin.id() && (req.is_admin == Some(false) || req.disabled == Some(true)) {
        return Err(ApiError::Conflict(
            "own_account",
            "you cannot disable yourself or give up your own admin; another admin can".into(),
        ));
    }
    let mut user = state.store.user_by_id(id).await?;
    if user.deleted_at.is_some() {
        return Err(ApiError::NotFound);
    }
    if let Some(is_admin) = req.is_admin
        && is_admin != user.is_admin()
    {
        user = state
            .store
            .set_admin(Some(admin.id()), id, is_admin)
            .await?;
    }
    if let Some(disabled) = req.disabled {
        let (row, ended) = state
            .store
            .set_disabled(Some(admin.id()), id, disabled)
            .await?;
        user = row;
        if !ended.is_empty() || disabled {
            tracing::info!(
                user_id = id,
                by = admin.id(),
                ended = ended.len(),
                "account disabled"
            );
        }
        state.end_sessions(ended).await;
        // Contacts see them go offline; the profile itself is unchanged.
        state.publish(Change::UserUpdated { user_id: id }).await;
    }
    Ok(ApiJson(admin_user(&state, &user)))
}

/// Set a new, generated password (shown this once) and end every session of the account.
#[utoipa::path(post, path = "/api/admin/users/{id}/password", tag = "admin",
    params(("id" = i64, Path, description = "User id")),
    responses(
        (status = 200, description = "The account and its new password", body = UserWithPassword),
        (status = 400, description = "The id is not a 64-bit integer", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Not an admin (`admin_only`), or a cookie without CSRF token", body = ErrorBody),
        (status = 404, description = "No such account (or a deleted one)", body = ErrorBody),
        (status = 500, description = "Internal error", body = ErrorBody),
        (status = 507, description = "The server's storage is full; nothing was saved", body = ErrorBody),
    ))]
pub async fn reset_password(
    State(state): State<AppState>,
    admin: Admin,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<ApiJson<UserWithPassword>> {
    let new_password = password::generate();
    let hash = password::hash(new_password.clone()).await?;
    let ended = state
        .store
        .reset_password(Some(admin.id()), id, &hash)
        .await?;
    tracing::info!(
        user_id = id,
        by = admin.id(),
        ended = ended.len(),
        "password reset by an admin"
    );
    state.end_sessions(ended).await;
    let user = state.store.user_by_id(id).await?;
    Ok(ApiJson(UserWithPassword {
        user: admin_user(&state, &user),
        password: new_password,
    }))
}

/// Invites, newest first (at most 200), with their uses and state.
#[utoipa::path(get, path = "/api/admin/invites", tag = "admin",
    responses(
        (status = 200, description = "Invites, newest first", body = Vec<Invite>),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Not an admin (`admin_only`)", body = ErrorBody),
        (status = 500, description = "Internal error", body = ErrorBody),
        (status = 507, description = "The server's storage is full (recording the session's use failed)", body = ErrorBody),
    ))]
pub async fn list_invites(
    State(state): State<AppState>,
    _admin: Admin,
) -> ApiResult<ApiJson<Vec<Invite>>> {
    let rows = state.store.invites(LIST_LIMIT).await?;
    Ok(ApiJson(super::invites_view(&state, &rows).await?))
}

/// Make an invite: good for `max_uses` accounts until it expires. Its link is
/// `ORIGIN/#/invite/CODE`.
#[utoipa::path(post, path = "/api/admin/invites", tag = "admin",
    request_body = CreateInviteRequest,
    responses(
        (status = 201, description = "The invite", body = Invite),
        (status = 400, description = "Malformed JSON, or `max_uses` or `expires_in_hours` out of range", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Not an admin (`admin_only`), or a cookie without CSRF token", body = ErrorBody),
        (status = 408, description = "The request body paused or took too long", body = ErrorBody),
        (status = 413, description = "JSON body larger than 64 KiB", body = ErrorBody),
        (status = 415, description = "Content-Type is not application/json", body = ErrorBody),
        (status = 500, description = "Internal error", body = ErrorBody),
        (status = 507, description = "The server's storage is full; nothing was saved", body = ErrorBody),
    ))]
pub async fn create_invite(
    State(state): State<AppState>,
    admin: Admin,
    ApiJson(req): ApiJson<CreateInviteRequest>,
) -> ApiResult<(StatusCode, ApiJson<Invite>)> {
    let uses = super::invite_uses(req.max_uses)?;
    let expires_at = super::invite_expiry(req.expires_in_hours)?;
    let row = state
        .store
        .create_invite(
            Some(admin.id()),
            &super::new_invite_code(),
            uses,
            expires_at,
        )
        .await?;
    let invite = super::invite_view(&state, row).await?;
    Ok((StatusCode::CREATED, ApiJson(invite)))
}

/// Revoke an invite: it creates no more accounts (revoking again changes nothing).
#[utoipa::path(delete, path = "/api/admin/invites/{id}", tag = "admin",
    params(("id" = i64, Path, description = "Invite id")),
    responses(
        (status = 200, description = "The invite, revoked", body = Invite),
        (status = 400, description = "The id is not a 64-bit integer", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Not an admin (`admin_only`), or a cookie without CSRF token", body = ErrorBody),
        (status = 404, description = "No such invite", body = ErrorBody),
        (status = 500, description = "Internal error", body = ErrorBody),
        (status = 507, description = "The server's storage is full; nothing was saved", body = ErrorBody),
    ))]
pub async fn revoke_invite(
    State(state): State<AppState>,
    admin: Admin,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<ApiJson<Invite>> {
    let row = state.store.revoke_invite(Some(admin.id()), id).await?;
    let invite = super::invite_view(&state, row).await?;
    Ok(ApiJson(invite))
}

/// The record of admin actions (the CLI's included), newest first, at most 200.
#[utoipa::path(get, path = "/api/admin/actions", tag = "admin",
    responses(
        (status = 200, description = "Who did what to whom, when; newest first", body = Vec<AdminAction>),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Not an admin (`admin_only`)", body = ErrorBody),
        (status = 500, description = "Internal error", body = ErrorBody),
        (status = 507, description = "The server's storage is full (recording the session's use failed)", body = ErrorBody),
    ))]
pub async fn list_actions(
    State(state): State<AppState>,
    _admin: Admin,
) -> ApiResult<ApiJson<Vec<AdminAction>>> {
    let rows = state.store.admin_actions(LIST_LIMIT).await?;
    Ok(ApiJson(super::actions_view(&state, &rows).await?))
}
