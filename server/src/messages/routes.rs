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

use super::message_view;
use crate::{
    AppState,
    auth::AuthUser,
    error::{ApiError, ApiJson, ApiPath, ApiQuery, ApiResult},
};

const PAGE_DEFAULT: i64 = 50;

/// A page of history, oldest first within the page.
#[utoipa::path(get, path = "/api/conversations/{id}/messages", tag = "messages",
    params(("id" = i64, Path), HistoryQuery),
    responses((status = 200, body = MessagePage), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
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
        messages: rows.iter().map(message_view).collect(),
        has_more,
    }))
}

/// Send a text message. A retry with the same `client_id` returns the stored message (200).
#[utoipa::path(post, path = "/api/conversations/{id}/messages", tag = "messages",
    params(("id" = i64, Path)), request_body = SendMessageRequest,
    responses(
        (status = 201, description = "Stored", body = Message),
        (status = 200, description = "Already stored under this client_id", body = Message),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "client_id used in another conversation", body = ErrorBody),
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
    Ok((status, ApiJson(message_view(&row))).into_response())
}

/// Move your read position forward (never back) to `seq`.
#[utoipa::path(post, path = "/api/conversations/{id}/read", tag = "messages",
    params(("id" = i64, Path)), request_body = ReadRequest,
    responses((status = 200, body = ReadState), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
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
