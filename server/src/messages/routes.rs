//! `/api/conversations/{id}/messages` (history, send, edit, delete, reactions) and `/read`.

use axum::{
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use chatapp_protocol::{
    EditMessageRequest, ErrorBody, HistoryQuery, MAX_PAGE, MAX_SEARCH_PAGE, Message, MessagePage,
    ReadRequest, ReadState, SearchQuery, SearchResults, SendMessageRequest,
};

use crate::views;
use crate::{
    AppState,
    auth::AuthUser,
    error::{ApiError, ApiJson, ApiPath, ApiQuery, ApiResult},
};

const PAGE_DEFAULT: i64 = 50;

/// A page of history, oldest first within the page: the newest, the one before
/// `before_seq`, the one after `after_seq`, or the one around `around_seq`.
#[utoipa::path(get, path = "/api/conversations/{id}/messages", tag = "messages",
    params(("id" = i64, Path, description = "Conversation id"), HistoryQuery),
    responses(
        (status = 200, description = "The page", body = MessagePage),
        (status = 400, description = "A bad id or query parameter, `limit` outside 1–100, or more than one of `before_seq`, `after_seq` and `around_seq` (`error.code` says which)", body = ErrorBody),
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
    let (rows, has_more, has_newer) = match (query.before_seq, query.after_seq, query.around_seq) {
        (before, None, None) => {
            let (rows, has_more) = state.store.history(id, before, limit).await?;
            (rows, has_more, false)
        }
        (None, Some(after), None) => {
            let (rows, has_newer) = state.store.history_after(id, after, limit).await?;
            // The page starts after `after`: older messages exist when it is past the first.
            (rows, after > 0, has_newer)
        }
        (None, None, Some(around)) => state.store.history_around(id, around, limit).await?,
        _ => {
            return Err(ApiError::validation(
                "invalid_query",
                "give at most one of before_seq, after_seq and around_seq",
            ));
        }
    };
    Ok(ApiJson(MessagePage {
        messages: rows.iter().map(views::message).collect(),
        has_more,
        has_newer,
    }))
}

/// Send a text message. A retry with the same `client_id` returns the stored message (200).
#[utoipa::path(post, path = "/api/conversations/{id}/messages", tag = "messages",
    params(("id" = i64, Path, description = "Conversation id")), request_body = SendMessageRequest,
    responses(
        (status = 201, description = "Stored", body = Message),
        (status = 200, description = "Already stored under this client_id", body = Message),
        (status = 400, description = "Malformed JSON, a mistyped field, a bad id, an empty or too long body, an invalid `client_id`, or a `reply_to_id` that is not a message of this conversation (`invalid_reply`) (`error.code` says which)", body = ErrorBody),
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
    let text = super::NewText {
        conversation_id: id,
        body: req.body,
        client_id: req.client_id,
        reply_to_id: req.reply_to_id,
    };
    let (row, created) = super::send_text(&state, auth.id(), text, None).await?;
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

/// Replace the text of your own text message, or the caption of your own photo (a blank
/// body removes the caption), everyone sees it, marked edited. The same text again changes
/// nothing.
#[utoipa::path(patch, path = "/api/conversations/{id}/messages/{seq}", tag = "messages",
    params(("id" = i64, Path, description = "Conversation id"), ("seq" = i64, Path, description = "The message's seq")),
    request_body = EditMessageRequest,
    responses(
        (status = 200, description = "The message as it is now", body = Message),
        (status = 400, description = "Malformed JSON, a mistyped field, a bad id, an empty (`empty_body`, but for a photo) or too long body, or a voice message (`not_text`) (`error.code` says which)", body = ErrorBody),
        (status = 401, description = "Not signed in: no, an unknown or an expired token or cookie", body = ErrorBody),
        (status = 403, description = "Not your message; or a session cookie without a same-origin `Origin` and a valid `X-CSRF-Token`", body = ErrorBody),
        (status = 404, description = "No such conversation or message, or you are not a member", body = ErrorBody),
        (status = 408, description = "The request body paused or took too long", body = ErrorBody),
        (status = 409, description = "The message was deleted (`message_deleted`)", body = ErrorBody),
        (status = 413, description = "JSON body larger than 64 KiB", body = ErrorBody),
        (status = 415, description = "Content-Type is not application/json", body = ErrorBody),
        (status = 500, description = "Internal error", body = ErrorBody),
        (status = 507, description = "The server's storage is full; nothing was saved", body = ErrorBody),
    ))]
pub async fn edit(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiPath((id, seq)): ApiPath<(i64, i64)>,
    ApiJson(req): ApiJson<EditMessageRequest>,
) -> ApiResult<ApiJson<Message>> {
    let row = super::changes::edit(&state, auth.id(), id, seq, req.body).await?;
    Ok(ApiJson(views::message(&row)))
}

/// Delete a message for everyone (your own; in a group you own, any): it stays as a
/// tombstone, its text and file are gone. Deleting again changes nothing.
#[utoipa::path(delete, path = "/api/conversations/{id}/messages/{seq}", tag = "messages",
    params(("id" = i64, Path, description = "Conversation id"), ("seq" = i64, Path, description = "The message's seq")),
    responses(
        (status = 200, description = "The tombstone", body = Message),
        (status = 400, description = "A bad id", body = ErrorBody),
        (status = 401, description = "Not signed in: no, an unknown or an expired token or cookie", body = ErrorBody),
        (status = 403, description = "Neither your message nor your group; or a session cookie without a same-origin `Origin` and a valid `X-CSRF-Token`", body = ErrorBody),
        (status = 404, description = "No such conversation or message, or you are not a member", body = ErrorBody),
        (status = 500, description = "Internal error", body = ErrorBody),
        (status = 507, description = "The server's storage is full; nothing was saved", body = ErrorBody),
    ))]
pub async fn delete(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiPath((id, seq)): ApiPath<(i64, i64)>,
) -> ApiResult<ApiJson<Message>> {
    let row = super::changes::delete(&state, auth.id(), id, seq).await?;
    Ok(ApiJson(views::message(&row)))
}

/// React to a message with one emoji (yours is added once, however often you ask).
#[utoipa::path(put, path = "/api/conversations/{id}/messages/{seq}/reactions/{emoji}", tag = "messages",
    params(("id" = i64, Path, description = "Conversation id"), ("seq" = i64, Path, description = "The message's seq"),
        ("emoji" = String, Path, description = "One emoji, percent-encoded")),
    responses(
        (status = 200, description = "The message as it is now", body = Message),
        (status = 400, description = "A bad id, or not exactly one emoji (`invalid_emoji`)", body = ErrorBody),
        (status = 401, description = "Not signed in: no, an unknown or an expired token or cookie", body = ErrorBody),
        (status = 403, description = "Signed in with a session cookie without a same-origin `Origin` and a valid `X-CSRF-Token`", body = ErrorBody),
        (status = 404, description = "No such conversation or message, or you are not a member", body = ErrorBody),
        (status = 409, description = "The message was deleted (`message_deleted`), or has 32 different emojis already (`too_many_reactions`)", body = ErrorBody),
        (status = 500, description = "Internal error", body = ErrorBody),
        (status = 507, description = "The server's storage is full; nothing was saved", body = ErrorBody),
    ))]
pub async fn add_reaction(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiPath((id, seq, emoji)): ApiPath<(i64, i64, String)>,
) -> ApiResult<ApiJson<Message>> {
    let row = super::changes::react(&state, auth.id(), id, seq, &emoji, true).await?;
    Ok(ApiJson(views::message(&row)))
}

/// Take back your reaction (nothing changes if you had none with this emoji).
#[utoipa::path(delete, path = "/api/conversations/{id}/messages/{seq}/reactions/{emoji}", tag = "messages",
    params(("id" = i64, Path, description = "Conversation id"), ("seq" = i64, Path, description = "The message's seq"),
        ("emoji" = String, Path, description = "One emoji, percent-encoded")),
    responses(
        (status = 200, description = "The message as it is now", body = Message),
        (status = 400, description = "A bad id, or not exactly one emoji (`invalid_emoji`)", body = ErrorBody),
        (status = 401, description = "Not signed in: no, an unknown or an expired token or cookie", body = ErrorBody),
        (status = 403, description = "Signed in with a session cookie without a same-origin `Origin` and a valid `X-CSRF-Token`", body = ErrorBody),
        (status = 404, description = "No such conversation or message, or you are not a member", body = ErrorBody),
        (status = 409, description = "The message was deleted (`message_deleted`)", body = ErrorBody),
        (status = 500, description = "Internal error", body = ErrorBody),
        (status = 507, description = "The server's storage is full; nothing was saved", body = ErrorBody),
    ))]
pub async fn remove_reaction(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiPath((id, seq, emoji)): ApiPath<(i64, i64, String)>,
) -> ApiResult<ApiJson<Message>> {
    let row = super::changes::react(&state, auth.id(), id, seq, &emoji, false).await?;
    Ok(ApiJson(views::message(&row)))
}

/// Say you played a voice message (someone else's, in a conversation of yours): its sender
/// and every member hear `played`; marking it again changes nothing.
#[utoipa::path(post, path = "/api/conversations/{id}/messages/{seq}/played", tag = "messages",
    params(("id" = i64, Path, description = "Conversation id"), ("seq" = i64, Path, description = "The message's seq")),
    responses(
        (status = 200, description = "The message as it is now, with `played_by`", body = Message),
        (status = 400, description = "A bad id, not a voice message (`not_voice`), or your own (`own_message`)", body = ErrorBody),
        (status = 401, description = "Not signed in: no, an unknown or an expired token or cookie", body = ErrorBody),
        (status = 403, description = "Signed in with a session cookie without a same-origin `Origin` and a valid `X-CSRF-Token`", body = ErrorBody),
        (status = 404, description = "No such conversation or message, or you are not a member", body = ErrorBody),
        (status = 409, description = "The message was deleted (`message_deleted`)", body = ErrorBody),
        (status = 429, description = "Too many changes (the send allowance)", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = 500, description = "Internal error", body = ErrorBody),
        (status = 507, description = "The server's storage is full; nothing was saved", body = ErrorBody),
    ))]
pub async fn played(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiPath((id, seq)): ApiPath<(i64, i64)>,
) -> ApiResult<ApiJson<Message>> {
    let row = super::changes::played(&state, auth.id(), id, seq).await?;
    Ok(ApiJson(views::message(&row)))
}

/// Search the text of your conversations' messages (since you joined each; never of
/// conversations you left), newest first.
#[utoipa::path(get, path = "/api/search", tag = "messages",
    params(SearchQuery),
    responses(
        (status = 200, description = "The results", body = SearchResults),
        (status = 400, description = "No word to search for (`empty_query`), or `limit` outside 1–50 (`invalid_limit`)", body = ErrorBody),
        (status = 401, description = "Not signed in: no, an unknown or an expired token or cookie", body = ErrorBody),
        (status = 500, description = "Internal error", body = ErrorBody),
        (status = 507, description = "The server's storage is full (recording the session's use failed)", body = ErrorBody),
    ))]
pub async fn search(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiQuery(query): ApiQuery<SearchQuery>,
) -> ApiResult<ApiJson<SearchResults>> {
    let limit = query.limit.unwrap_or(20);
    if !(1..=MAX_SEARCH_PAGE).contains(&limit) {
        return Err(ApiError::validation(
            "invalid_limit",
            format!("limit must be 1–{MAX_SEARCH_PAGE}"),
        ));
    }
    let terms = super::search_terms(&query.q)?;
    let mut rows = state
        .store
        .search(auth.id(), &terms, query.before_id, limit + 1)
        .await?;
    let has_more = rows.len() > usize::try_from(limit).unwrap_or_default();
    rows.truncate(usize::try_from(limit).unwrap_or_default());
    Ok(ApiJson(SearchResults {
        messages: rows.iter().map(views::message).collect(),
        terms,
        has_more,
    }))
}
