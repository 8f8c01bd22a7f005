//! `/api/users`: search and public profiles.

use axum::extract::State;
use chatapp_protocol::{ErrorBody, User, UserSearchQuery};

use crate::{
    AppState,
    auth::AuthUser,
    error::{ApiError, ApiJson, ApiPath, ApiQuery, ApiResult},
};

const SEARCH_LIMIT_DEFAULT: i64 = 20;
const SEARCH_LIMIT_MAX: i64 = 50;
const SEARCH_QUERY_MAX_CHARS: usize = 64;

/// Find people by username or display name prefix (never yourself).
#[utoipa::path(get, path = "/api/users", tag = "users", params(UserSearchQuery),
    responses(
        (status = 200, description = "Matching people, at most `limit`", body = Vec<User>),
        (status = 400, description = "`q` missing, empty or longer than 64 characters, or a mistyped parameter", body = ErrorBody),
        (status = 401, description = "Not signed in: no, an unknown or an expired token or cookie", body = ErrorBody),
        (status = 500, description = "Internal error", body = ErrorBody),
        (status = 507, description = "The server's storage is full (recording the session's use failed)", body = ErrorBody),
    ))]
pub async fn search(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiQuery(query): ApiQuery<UserSearchQuery>,
) -> ApiResult<ApiJson<Vec<User>>> {
    let q = query.q.trim();
    if q.is_empty() || q.chars().count() > SEARCH_QUERY_MAX_CHARS {
        return Err(ApiError::validation(
            "invalid_query",
            format!("q must be 1–{SEARCH_QUERY_MAX_CHARS} characters"),
        ));
    }
    let limit = query
        .limit
        .unwrap_or(SEARCH_LIMIT_DEFAULT)
        .clamp(1, SEARCH_LIMIT_MAX);
    let rows = state.store.search_users(q, auth.id(), limit).await?;
    Ok(ApiJson(rows.iter().map(|u| state.public_user(u)).collect()))
}

/// A public profile.
#[utoipa::path(get, path = "/api/users/{id}", tag = "users",
    params(("id" = i64, Path, description = "User id")),
    responses(
        (status = 200, description = "The profile", body = User),
        (status = 400, description = "The id is not a 64-bit integer", body = ErrorBody),
        (status = 401, description = "Not signed in: no, an unknown or an expired token or cookie", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
        (status = 500, description = "Internal error", body = ErrorBody),
        (status = 507, description = "The server's storage is full (recording the session's use failed)", body = ErrorBody),
    ))]
pub async fn get_user(
    State(state): State<AppState>,
    _auth: AuthUser,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<ApiJson<User>> {
    let row = state.store.user_by_id(id).await?;
    Ok(ApiJson(state.public_user(&row)))
}
