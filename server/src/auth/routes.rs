//! `/api/auth/*` and `/api/me`: thin handlers over the account rules and the store.

use axum::{
    extract::State,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use axum_extra::extract::cookie::CookieJar;
use chatapp_protocol::{
    AuthResponse, DeleteAccountRequest, ErrorBody, LoginRequest, Me, RegisterRequest, ServerInfo,
    UpdateMeRequest,
};

use super::{AuthUser, ClientAddr, password};
use crate::{
    AppState,
    error::{ApiError, ApiJson, ApiResult},
    events::Change,
    store::{NewUser, ProfileUpdate},
    text::{normalize_email, normalize_login},
    users::{clean_display_name, validate_email, validate_password, validate_username},
    views,
};

/// Creates a session for `user` and answers with its token, CSRF token and cookies.
async fn start_session(
    state: &AppState,
    headers: &HeaderMap,
    user: &crate::store::UserRow,
    status: StatusCode,
) -> ApiResult<Response> {
    let token = super::new_token();
    state
        .store
        .create_session(user.id, &super::token_hash(&token))
        .await?;
    let csrf = super::csrf_token(&state.secret, &token);
    let secure = super::is_https(headers, &state.config);
    let jar = super::session_cookies(&token, &csrf, secure)
        .into_iter()
        .fold(CookieJar::new(), CookieJar::add);
    let body = AuthResponse {
        user: views::me(user, state.is_online(user.id)),
        token,
        csrf_token: csrf,
    };
    Ok((status, jar, ApiJson(body)).into_response())
}

/// Create an account and sign in.
#[utoipa::path(post, path = "/api/auth/register", tag = "auth",
    request_body = RegisterRequest,
    security(()),
    responses(
        (status = 201, description = "Account created, signed in", body = AuthResponse,
            headers(("Set-Cookie" = String, description = "`chatapp_session` (HttpOnly) and `chatapp_csrf`, for browsers"))),
        (status = 400, description = "Malformed JSON, a missing or mistyped field, or an invalid username, email, password or display name (`error.code` says which)", body = ErrorBody),
        (status = 403, description = "Registration is closed (`registration_closed`), needs an invite (`invite_required`), the invite is unknown, used up, expired or revoked (`invite_invalid`), or an `Origin` header from another site", body = ErrorBody),
        (status = 408, description = "The request body paused or took too long", body = ErrorBody),
        (status = 409, description = "Username or email taken", body = ErrorBody),
        (status = 413, description = "JSON body larger than 64 KiB", body = ErrorBody),
        (status = 415, description = "Content-Type is not application/json", body = ErrorBody),
        (status = 429, description = "Too many attempts from this address or for this username", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = 500, description = "Internal error", body = ErrorBody),
        (status = 507, description = "The server's storage is full; nothing was saved", body = ErrorBody),
    ))]
pub async fn register(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    headers: HeaderMap,
    ApiJson(req): ApiJson<RegisterRequest>,
) -> ApiResult<Response> {
    super::check_origin_if_present(&headers, &state)?;
    state.limits.check_address(addr)?;
    state.limits.check_account(&req.username)?;
    let invite = crate::admin::may_register(state.config.registration, req.invite.as_deref())?;
    validate_username(&req.username)?;
    let email = normalize_email(&req.email);
    validate_email(&email)?;
    validate_password(&req.password)?;
    let display_name = clean_display_name(req.display_name.as_deref().unwrap_or(&req.username))?;
    let hash = password::hash(req.password).await?;
    let user = state
        .store
        .create_user(NewUser {
            username: &req.username,
            email: &email,
            display_name: &display_name,
            password_hash: &hash,
            admin: false,
            invite: invite.as_deref(),
        })
        .await?;
    tracing::info!(
        user_id = user.id,
        invited = invite.is_some(),
        "account created"
    );
    start_session(&state, &headers, &user, StatusCode::CREATED).await
}

/// Sign in with username or email.
#[utoipa::path(post, path = "/api/auth/login", tag = "auth",
    request_body = LoginRequest,
    security(()),
    responses(
        (status = 200, description = "Signed in", body = AuthResponse,
            headers(("Set-Cookie" = String, description = "`chatapp_session` (HttpOnly) and `chatapp_csrf`, for browsers"))),
        (status = 400, description = "Malformed JSON or a missing or mistyped field", body = ErrorBody),
        (status = 401, description = "Wrong login or password", body = ErrorBody),
        (status = 403, description = "The account is disabled (`account_disabled`; only with the right password), or an `Origin` header from another site", body = ErrorBody),
        (status = 408, description = "The request body paused or took too long", body = ErrorBody),
        (status = 413, description = "JSON body larger than 64 KiB", body = ErrorBody),
        (status = 415, description = "Content-Type is not application/json", body = ErrorBody),
        (status = 429, description = "Too many attempts from this address or for this account", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = 500, description = "Internal error", body = ErrorBody),
        (status = 507, description = "The server's storage is full; nothing was saved", body = ErrorBody),
    ))]
pub async fn login(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    headers: HeaderMap,
    ApiJson(req): ApiJson<LoginRequest>,
) -> ApiResult<Response> {
    super::check_origin_if_present(&headers, &state)?;
    state.limits.check_address(addr)?;
    let login = normalize_login(&req.login);
    let user = if login.len() <= crate::users::EMAIL_MAX_BYTES {
        state.store.user_by_login(&login).await?
    } else {
        None
    };
    // Per account, whichever of its names was typed (keyed by its username, as at
    // registration); a login that names no account counts under its text.
    match &user {
        Some(user) => state.limits.check_account(&user.username)?,
        None => state.limits.check_account(&login)?,
    }
    let matches =
        password::verify(req.password, user.as_ref().map(|u| u.password_hash.clone())).await?;
    match user {
        Some(user) if matches && user.disabled_at.is_some() => Err(ApiError::Refused(
            "account_disabled",
            "this account is disabled; ask an admin of this server".into(),
        )),
        Some(user) if matches => start_session(&state, &headers, &user, StatusCode::OK).await,
        _ => Err(ApiError::BadCredentials),
    }
}

/// What a client needs to know before signing in: who may create an account.
#[utoipa::path(get, path = "/api/server", tag = "auth",
    security(()),
    responses(
        (status = 200, description = "The server's registration mode", body = ServerInfo),
    ))]
pub async fn server_info(State(state): State<AppState>) -> ApiJson<ServerInfo> {
    ApiJson(ServerInfo {
        registration: state.config.registration,
    })
}

/// Delete your account (your password confirms it). Your sessions end and your avatar
/// is deleted; your messages stay for the others under "Deleted user", without their
/// voice files and photos; your username is freed after a grace period
/// (`DELETED_USERNAME_GRACE_DAYS`, 30 days).
#[utoipa::path(delete, path = "/api/me", tag = "account",
    request_body = DeleteAccountRequest,
    responses(
        (status = 204, description = "Deleted; signed out everywhere"),
        (status = 400, description = "Malformed JSON or a missing field", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "The password is wrong, or a session cookie without a same-origin `Origin` and a valid `X-CSRF-Token`", body = ErrorBody),
        (status = 408, description = "The request body paused or took too long", body = ErrorBody),
        (status = 409, description = "You are the server's only admin (`last_admin`): make someone else admin first", body = ErrorBody),
        (status = 413, description = "JSON body larger than 64 KiB", body = ErrorBody),
        (status = 415, description = "Content-Type is not application/json", body = ErrorBody),
        (status = 429, description = "Too many password attempts (shared with sign-in)", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = 500, description = "Internal error", body = ErrorBody),
        (status = 507, description = "The server's storage is full; nothing was saved", body = ErrorBody),
    ))]
pub async fn delete_me(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    auth: AuthUser,
    ApiJson(req): ApiJson<DeleteAccountRequest>,
) -> ApiResult<Response> {
    state.limits.check_address(addr)?;
    state.limits.check_account(&auth.user.username)?;
    if !password::verify(req.password, Some(auth.user.password_hash.clone())).await? {
        return Err(ApiError::Forbidden("the password is wrong".into()));
    }
    if auth.user.is_admin() && state.store.other_admins(auth.id()).await? == 0 {
        return Err(ApiError::Conflict(
            "last_admin",
            "you are this server's only admin: make someone else admin first".into(),
        ));
    }
    crate::users::delete_account(&state, auth.id()).await?;
    Ok(signed_out())
}

/// End this session.
#[utoipa::path(post, path = "/api/auth/logout", tag = "auth",
    responses(
        (status = 204, description = "Signed out; the browser is told to drop its cached files (`Clear-Site-Data: \"cache\"`)",
            headers(
                ("Clear-Site-Data" = String, description = "`\"cache\"`"),
                ("Set-Cookie" = String, description = "Expires `chatapp_session` and `chatapp_csrf`"),
            )),
        (status = 401, description = "Not signed in: no, an unknown or an expired token or cookie", body = ErrorBody),
        (status = 403, description = "Session cookie without a same-origin `Origin` and a valid `X-CSRF-Token`", body = ErrorBody),
        (status = 500, description = "Internal error", body = ErrorBody),
        (status = 507, description = "The server's storage is full", body = ErrorBody),
    ))]
pub async fn logout(State(state): State<AppState>, auth: AuthUser) -> ApiResult<Response> {
    state.store.delete_session(auth.session_id).await?;
    state.end_sessions(vec![auth.session_id]).await;
    Ok(signed_out())
}

/// 204 that makes the browser forget the session: expired cookies, and what this
/// account's pages left in its HTTP cache (voice messages, avatars) goes too, for the
/// next person at a shared computer (`Clear-Site-Data: "cache"`).
fn signed_out() -> Response {
    let jar = super::expired_cookies()
        .into_iter()
        .fold(CookieJar::new(), CookieJar::add);
    (
        StatusCode::NO_CONTENT,
        [(
            header::HeaderName::from_static("clear-site-data"),
            HeaderValue::from_static("\"cache\""),
        )],
        jar,
    )
        .into_response()
}

/// The signed-in account.
#[utoipa::path(get, path = "/api/me", tag = "account",
    responses(
        (status = 200, description = "The account", body = Me),
        (status = 401, description = "Not signed in: no, an unknown or an expired token or cookie", body = ErrorBody),
        (status = 500, description = "Internal error", body = ErrorBody),
        (status = 507, description = "The server's storage is full (recording the session's use failed)", body = ErrorBody),
    ))]
pub async fn get_me(State(state): State<AppState>, auth: AuthUser) -> ApiJson<Me> {
    ApiJson(views::me(&auth.user, state.is_online(auth.id())))
}

/// Change display name, email or password. Email and password changes need
/// `current_password`; a password change ends every other session.
#[utoipa::path(patch, path = "/api/me", tag = "account",
    request_body = UpdateMeRequest,
    responses(
        (status = 200, description = "The updated account", body = Me),
        (status = 400, description = "Malformed JSON, a mistyped field, or an invalid display name, email or new password (`error.code` says which)", body = ErrorBody),
        (status = 401, description = "Not signed in: no, an unknown or an expired token or cookie", body = ErrorBody),
        (status = 403, description = "`current_password` wrong or missing, or a session cookie without a same-origin `Origin` and a valid `X-CSRF-Token`", body = ErrorBody),
        (status = 408, description = "The request body paused or took too long", body = ErrorBody),
        (status = 409, description = "The email is taken", body = ErrorBody),
        (status = 413, description = "JSON body larger than 64 KiB", body = ErrorBody),
        (status = 415, description = "Content-Type is not application/json", body = ErrorBody),
        (status = 429, description = "Too many password attempts from this address or for this account (shared with sign-in)", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = 500, description = "Internal error", body = ErrorBody),
        (status = 507, description = "The server's storage is full; nothing was saved", body = ErrorBody),
    ))]
pub async fn patch_me(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    auth: AuthUser,
    ApiJson(req): ApiJson<UpdateMeRequest>,
) -> ApiResult<ApiJson<Me>> {
    let display_name = req
        .display_name
        .as_deref()
        .map(clean_display_name)
        .transpose()?;
    let email = req.email.as_deref().map(normalize_email);
    if let Some(email) = &email {
        validate_email(email)?;
    }
    if let Some(new_password) = &req.new_password {
        validate_password(new_password)?;
    }
    if req.email.is_some() || req.new_password.is_some() {
        let current = req
            .current_password
            .clone()
            .ok_or_else(|| ApiError::Forbidden("current_password is required".into()))?;
        // Each check of the password is an attempt, from the same allowances as signing
        // in (the address's, and the account's under its username): a stolen session
        // gets no more guesses at the password than a stranger at the sign-in screen.
        state.limits.check_address(addr)?;
        state.limits.check_account(&auth.user.username)?;
        if !password::verify(current, Some(auth.user.password_hash.clone())).await? {
            return Err(ApiError::Forbidden("current_password is wrong".into()));
        }
    }
    let hash = match req.new_password {
        Some(p) => Some(password::hash(p).await?),
        None => None,
    };
    let user = state
        .store
        .update_user(
            auth.id(),
            ProfileUpdate {
                display_name: display_name.as_deref(),
                email: email.as_deref(),
                password_hash: hash.as_deref(),
            },
        )
        .await?;
    if display_name.is_some() {
        state
            .publish(Change::UserUpdated { user_id: user.id })
            .await;
    }
    if hash.is_some() {
        let ended = state
            .store
            .delete_other_sessions(auth.id(), auth.session_id)
            .await?;
        tracing::info!(
            user_id = auth.id(),
            ended = ended.len(),
            "password changed; other sessions ended"
        );
        state.end_sessions(ended).await;
    }
    Ok(ApiJson(views::me(&user, state.is_online(user.id))))
}
