//! `/api/conversations/{id}/messages` and `/read`.

use axum::{
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use chatapp_protocol::{
    ErrorBody, HistoryQuery, MAX_PAGE, Message, MessagePage, ReadRequest, ReadState,
    SendMessageRequest,
};

use crate::views;
use crate::{
    AppState,
    auth::AuthUser,
    error::{ApiError, ApiJson, ApiPath, ApiQuery, ApiResult},
};

const PAGE_DEFAULT: i64 = 50;

/// A page of history, oldest first within the page.
#[utoipa::path(get, path = "/api/conversations/{id}/messages", tag = "messages",
    params(("id" = i64, Path, description = "Conversation id"), HistoryQuery),
    responses(
        (status = 200, description = "The page", body = MessagePage),
        (status = 400, description = "A bad id or query parameter, or `limit` outside 1–100 (`error.code` says which)", body = ErrorBody),
        (status = 401, description = "Not signed in: no, an unknown or an expired token or cookie", body = ErrorBody),
        (status = 404, description = "No such conversation, or you are not a member", body = ErrorBody),
        (status = 500, description = "Internal error", body = ErrorBody),
        (status = 507, description = "The server's storage is full (recording the session's use failed)", body = ErrorBody),
    ))]
pub async fn history(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiPath(id): ApiPath<i64>,
    ApiQuery(query): ApiQuery<HistoryQuery>,
) -> ApiResult<ApiJson<MessagePage>> {
    let limit = query.limit.unwrap_or(PAGE_DEFAULT);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::validation(
            "invalid_limit",
            format!("limit must be 1–{MAX_PAGE}"),
        ));
    }
    state.store.membership(id, auth.id()).await?;
    let (rows, has_more) = state.store.history(id, query.before_seq, limit).await?;
    Ok(ApiJson(MessagePage {
        messages: rows.iter().map(views::message).collect(),
        has_more,
    }))
}

/// Send a text message. A retry with the same `client_id` returns the stored message (200).
#[utoipa::path(post, path = "/api/conversations/{id}/messages", tag = "messages",
    params(("id" = i64, Path, description = "Conversation id")), request_body = SendMessageRequest,
    responses(
        (status = 201, description = "Stored", body = Message),
        (status = 200, description = "Already stored under this client_id", body = Message),
        (status = 400, description = "Malformed JSON, a mistyped field, a bad id, an empty or too long body, or an invalid `client_id` (`error.code` says which)", body = ErrorBody),
        (status = 401, description = "Not signed in: no, an unknown or an expired token or cookie", body = ErrorBody),
        (status = 403, description = "Signed in with a session cookie without a same-origin `Origin` and a valid `X-CSRF-Token`", body = ErrorBody),
        (status = 404, description = "No such conversation, or you are not a member", body = ErrorBody),
        (status = 409, description = "client_id used in another conversation", body = ErrorBody),
        (status = 408, description = "The request body paused or took too long", body = ErrorBody),
        (status = 413, description = "JSON body larger than 64 KiB", body = ErrorBody),
        (status = 415, description = "Content-Type is not application/json", body = ErrorBody),
        (status = 429, description = "Sending faster than the allowance (`--send-rate-per-user`)", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = 500, description = "Internal error", body = ErrorBody),
        (status = 507, description = "The server's storage is full; nothing was saved", body = ErrorBody),
    ))]
pub async fn send(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiPath(id): ApiPath<i64>,
    ApiJson(req): ApiJson<SendMessageRequest>,
) -> ApiResult<Response> {
    let (row, created) =
        super::send_text(&state, auth.id(), id, req.body, req.client_id, None).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, ApiJson(views::message(&row))).into_response())
}

/// Move your read position forward (never back) to `seq`.
#[utoipa::path(post, path = "/api/conversations/{id}/read", tag = "messages",
    params(("id" = i64, Path, description = "Conversation id")), request_body = ReadRequest,
    responses(
        (status = 200, description = "Your read position", body = ReadState),
        (status = 400, description = "Malformed JSON, a mistyped field, a bad id, or `seq` outside 0–last seq (`error.code` says which)", body = ErrorBody),
        (status = 401, description = "Not signed in: no, an unknown or an expired token or cookie", body = ErrorBody),
        (status = 403, description = "Signed in with a session cookie without a same-origin `Origin` and a valid `X-CSRF-Token`", body = ErrorBody),
        (status = 404, description = "No such conversation, or you are not a member", body = ErrorBody),
        (status = 408, description = "The request body paused or took too long", body = ErrorBody),
        (status = 413, description = "JSON body larger than 64 KiB", body = ErrorBody),
        (status = 415, description = "Content-Type is not application/json", body = ErrorBody),
        (status = 500, description = "Internal error", body = ErrorBody),
        (status = 507, description = "The server's storage is full; nothing was saved", body = ErrorBody),
    ))]
pub async fn mark_read(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiPath(id): ApiPath<i64>,
    ApiJson(req): ApiJson<ReadRequest>,
) -> ApiResult<ApiJson<ReadState>> {
    Ok(ApiJson(
        super::mark_read(&state, auth.id(), id, req.seq).await?,
    ))
}
