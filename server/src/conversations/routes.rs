//! `/api/conversations` and its members: thin handlers; a non-member always gets 404.

use axum::{
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use chatapp_protocol::{
    AddMembersRequest, Conversation, ConversationSettings, CreateConversationRequest, ErrorBody,
    UpdateConversationRequest,
};

use super::{check_new_members, clean_title, is_group, list, load};
use crate::{
    AppState,
    auth::AuthUser,
    error::{ApiError, ApiJson, ApiPath, ApiResult},
    events::Change,
};

/// Your conversations, newest activity first, with members, last message and unread count.
#[utoipa::path(get, path = "/api/conversations", tag = "conversations",
    responses(
        (status = 200, description = "Your conversations", body = Vec<Conversation>),
        (status = 401, description = "Not signed in: no, an unknown or an expired token or cookie", body = ErrorBody),
        (status = 500, description = "Internal error", body = ErrorBody),
        (status = 507, description = "The server's storage is full (recording the session's use failed)", body = ErrorBody),
    ))]
pub async fn list_conversations(
    State(state): State<AppState>,
    auth: AuthUser,
) -> ApiResult<ApiJson<Vec<Conversation>>> {
    Ok(ApiJson(list(&state, auth.id()).await?))
}

/// Get-or-create a direct conversation (200 when it existed, 201 when created), or create a group.
#[utoipa::path(post, path = "/api/conversations", tag = "conversations",
    request_body = CreateConversationRequest,
    responses(
        (status = 200, description = "The existing direct conversation", body = Conversation),
        (status = 201, description = "Created", body = Conversation),
        (status = 400, description = "Malformed JSON, a mistyped field, yourself as the other user, an invalid title, unknown or too many members (`error.code` says which)", body = ErrorBody),
        (status = 401, description = "Not signed in: no, an unknown or an expired token or cookie", body = ErrorBody),
        (status = 403, description = "Signed in with a session cookie without a same-origin `Origin` and a valid `X-CSRF-Token`", body = ErrorBody),
        (status = 404, description = "Direct: no such user", body = ErrorBody),
        (status = 408, description = "The request body paused or took too long", body = ErrorBody),
        (status = 413, description = "JSON body larger than 64 KiB", body = ErrorBody),
        (status = 415, description = "Content-Type is not application/json", body = ErrorBody),
        (status = 500, description = "Internal error", body = ErrorBody),
        (status = 507, description = "The server's storage is full; nothing was saved", body = ErrorBody),
    ))]
pub async fn create_conversation(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiJson(req): ApiJson<CreateConversationRequest>,
) -> ApiResult<Response> {
    let (id, created) = match req {
        CreateConversationRequest::Direct { user_id } => {
            if user_id == auth.id() {
                return Err(ApiError::validation(
                    "invalid_user",
                    "a direct conversation needs another user",
                ));
            }
            state.store.user_by_id(user_id).await?;
            state.store.direct_conversation(auth.id(), user_id).await?
        }
        CreateConversationRequest::Group { title, member_ids } => {
            let title = clean_title(&title)?;
            let others: Vec<i64> = member_ids.into_iter().filter(|m| *m != auth.id()).collect();
            let members = check_new_members(&state, &others, 1).await?;
            (
                state
                    .store
                    .create_group(auth.id(), &title, &members)
                    .await?,
                true,
            )
        }
    };
    if created {
        state
            .publish(Change::Conversation {
                conversation_id: id,
                removed: Vec::new(),
            })
            .await;
    }
    let conversation = load(&state, id, auth.id()).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, ApiJson(conversation)).into_response())
}

/// One conversation.
#[utoipa::path(get, path = "/api/conversations/{id}", tag = "conversations",
    params(("id" = i64, Path, description = "Conversation id")),
    responses(
        (status = 200, description = "The conversation", body = Conversation),
        (status = 400, description = "The id is not a 64-bit integer", body = ErrorBody),
        (status = 401, description = "Not signed in: no, an unknown or an expired token or cookie", body = ErrorBody),
        (status = 404, description = "No such conversation, or you are not a member", body = ErrorBody),
        (status = 500, description = "Internal error", body = ErrorBody),
        (status = 507, description = "The server's storage is full (recording the session's use failed)", body = ErrorBody),
    ))]
pub async fn get_conversation(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<ApiJson<Conversation>> {
    Ok(ApiJson(load(&state, id, auth.id()).await?))
}

/// The member row of a group the caller owns: 404 for non-members, 400 for direct
/// conversations, 403 for members who are not the owner.
async fn owned_group(
    state: &AppState,
    id: i64,
    user_id: i64,
) -> ApiResult<crate::store::MembershipRow> {
    let row = state.store.membership(id, user_id).await?;
    if !is_group(&row) {
        return Err(ApiError::validation(
            "not_a_group",
            "direct conversations cannot be changed",
        ));
    }
    if row.conversation.owner_id != Some(user_id) {
        return Err(ApiError::Forbidden(
            "only the group's owner may do that".into(),
        ));
    }
    Ok(row)
}

/// Rename a group (owner only).
#[utoipa::path(patch, path = "/api/conversations/{id}", tag = "conversations",
    params(("id" = i64, Path, description = "Conversation id")), request_body = UpdateConversationRequest,
    responses(
        (status = 200, description = "The renamed group", body = Conversation),
        (status = 400, description = "Malformed JSON, a mistyped or unknown field, an invalid title, a bad id, or a direct conversation (`error.code` says which)", body = ErrorBody),
        (status = 401, description = "Not signed in: no, an unknown or an expired token or cookie", body = ErrorBody),
        (status = 403, description = "Not the group's owner, or a session cookie without a same-origin `Origin` and a valid `X-CSRF-Token`", body = ErrorBody),
        (status = 404, description = "No such conversation, or you are not a member", body = ErrorBody),
        (status = 408, description = "The request body paused or took too long", body = ErrorBody),
        (status = 413, description = "JSON body larger than 64 KiB", body = ErrorBody),
        (status = 415, description = "Content-Type is not application/json", body = ErrorBody),
        (status = 500, description = "Internal error", body = ErrorBody),
        (status = 507, description = "The server's storage is full; nothing was saved", body = ErrorBody),
    ))]
pub async fn update_conversation(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiPath(id): ApiPath<i64>,
    ApiJson(req): ApiJson<UpdateConversationRequest>,
) -> ApiResult<ApiJson<Conversation>> {
    let title = clean_title(&req.title)?;
    owned_group(&state, id, auth.id()).await?;
    state.store.rename_conversation(id, &title).await?;
    state
        .publish(Change::Conversation {
            conversation_id: id,
            removed: Vec::new(),
        })
        .await;
    Ok(ApiJson(load(&state, id, auth.id()).await?))
}

/// Add members to a group (owner only).
#[utoipa::path(post, path = "/api/conversations/{id}/members", tag = "conversations",
    params(("id" = i64, Path, description = "Conversation id")), request_body = AddMembersRequest,
    responses(
        (status = 200, description = "The group with its members", body = Conversation),
        (status = 400, description = "Malformed JSON, a mistyped field, a bad id, unknown users, too many members, or a direct conversation (`error.code` says which)", body = ErrorBody),
        (status = 401, description = "Not signed in: no, an unknown or an expired token or cookie", body = ErrorBody),
        (status = 403, description = "Not the group's owner, or a session cookie without a same-origin `Origin` and a valid `X-CSRF-Token`", body = ErrorBody),
        (status = 404, description = "No such conversation, or you are not a member", body = ErrorBody),
        (status = 408, description = "The request body paused or took too long", body = ErrorBody),
        (status = 413, description = "JSON body larger than 64 KiB", body = ErrorBody),
        (status = 415, description = "Content-Type is not application/json", body = ErrorBody),
        (status = 500, description = "Internal error", body = ErrorBody),
        (status = 507, description = "The server's storage is full; nothing was saved", body = ErrorBody),
    ))]
pub async fn add_members(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiPath(id): ApiPath<i64>,
    ApiJson(req): ApiJson<AddMembersRequest>,
) -> ApiResult<ApiJson<Conversation>> {
    owned_group(&state, id, auth.id()).await?;
    let current = state.store.member_count(id).await?;
    let ids = check_new_members(&state, &req.user_ids, current).await?;
    if !state.store.add_members(id, &ids).await?.is_empty() {
        state
            .publish(Change::Conversation {
                conversation_id: id,
                removed: Vec::new(),
            })
            .await;
    }
    Ok(ApiJson(load(&state, id, auth.id()).await?))
}

/// Remove a member from a group: the owner removes anyone, anyone removes themselves (leave).
#[utoipa::path(delete, path = "/api/conversations/{id}/members/{user_id}", tag = "conversations",
    params(("id" = i64, Path, description = "Conversation id"), ("user_id" = i64, Path, description = "The member to remove (yourself to leave)")),
    responses(
        (status = 204, description = "Removed"),
        (status = 400, description = "An id is not a 64-bit integer, or a direct conversation (`error.code` says which)", body = ErrorBody),
        (status = 401, description = "Not signed in: no, an unknown or an expired token or cookie", body = ErrorBody),
        (status = 403, description = "Removing someone else from a group you do not own, or a session cookie without a same-origin `Origin` and a valid `X-CSRF-Token`", body = ErrorBody),
        (status = 404, description = "No such conversation, you are not a member, or `user_id` is not a member", body = ErrorBody),
        (status = 500, description = "Internal error", body = ErrorBody),
        (status = 507, description = "The server's storage is full; nothing was saved", body = ErrorBody),
    ))]
pub async fn remove_member(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiPath((id, user_id)): ApiPath<(i64, i64)>,
) -> ApiResult<StatusCode> {
    let row = state.store.membership(id, auth.id()).await?;
    if !is_group(&row) {
        return Err(ApiError::validation(
            "not_a_group",
            "nobody can leave a direct conversation",
        ));
    }
    if user_id != auth.id() && row.conversation.owner_id != Some(auth.id()) {
        return Err(ApiError::Forbidden(
            "only the group's owner may remove others".into(),
        ));
    }
    state.store.remove_member(id, user_id).await?;
    state
        .publish(Change::Conversation {
            conversation_id: id,
            removed: vec![user_id],
        })
        .await;
    Ok(StatusCode::NO_CONTENT)
}

/// Your own settings of a conversation, on all your devices: `muted` (no notifications or
/// sounds except when you are mentioned).
#[utoipa::path(put, path = "/api/conversations/{id}/settings", tag = "conversations",
    params(("id" = i64, Path, description = "Conversation id")), request_body = ConversationSettings,
    responses(
        (status = 200, description = "The conversation as you see it now", body = Conversation),
        (status = 400, description = "Malformed JSON, a mistyped or unknown field, or a bad id", body = ErrorBody),
        (status = 401, description = "Not signed in: no, an unknown or an expired token or cookie", body = ErrorBody),
        (status = 403, description = "Signed in with a session cookie without a same-origin `Origin` and a valid `X-CSRF-Token`", body = ErrorBody),
        (status = 404, description = "No such conversation, or you are not a member", body = ErrorBody),
        (status = 408, description = "The request body paused or took too long", body = ErrorBody),
        (status = 413, description = "JSON body larger than 64 KiB", body = ErrorBody),
        (status = 415, description = "Content-Type is not application/json", body = ErrorBody),
        (status = 500, description = "Internal error", body = ErrorBody),
        (status = 507, description = "The server's storage is full; nothing was saved", body = ErrorBody),
    ))]
pub async fn put_settings(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiPath(id): ApiPath<i64>,
    ApiJson(req): ApiJson<ConversationSettings>,
) -> ApiResult<ApiJson<Conversation>> {
    state.store.set_muted(id, auth.id(), req.muted).await?;
    state
        .publish(Change::Settings {
            conversation_id: id,
            user_id: auth.id(),
        })
        .await;
    Ok(ApiJson(load(&state, id, auth.id()).await?))
}
