//! `POST /api/conversations/{id}/voice`, `POST /api/conversations/{id}/photos`,
//! `GET /api/files/{id}` and the avatar routes: they parse the request and call the media
//! service (`state.media`).

use axum::{
    body::Body,
    extract::{Request, State},
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use chatapp_protocol::{ErrorBody, Message};
use tokio_util::io::ReaderStream;

use super::{MAX_VOICE_BYTES, avatar::MAX_AVATAR_BYTES, blobs::TempBlob, photo::MAX_PHOTO_BYTES};
use crate::{
    AppState,
    auth::AuthUser,
    error::{ApiError, ApiMultipart, ApiPath, ApiResult},
    messages::validate_client_id,
    views,
};

/// Upload a voice message (multipart `file`, optional `client_id` and `reply_to_id`). mp3, wav, ogg
/// (Opus, Vorbis), m4a (AAC) or webm (Opus), decided by the bytes; at most 16 MB.
#[utoipa::path(post, path = "/api/conversations/{id}/voice", tag = "messages",
    params(("id" = i64, Path)),
    request_body(content_type = "multipart/form-data", description = "`file`: the audio; `client_id`: optional idempotency key; `reply_to_id`: optional id of the message of this conversation it answers"),
    responses(
        (status = 201, description = "Stored", body = Message),
        (status = 200, description = "Already stored under this client_id", body = Message),
        (status = 400, description = "A bad id, a malformed form, no `file` field, an empty file, an invalid `client_id`, or a `reply_to_id` that is not a message of this conversation or was deleted (`error.code` says which)", body = ErrorBody),
        (status = 401, description = "Not signed in: no, an unknown or an expired token or cookie", body = ErrorBody),
        (status = 403, description = "Signed in with a session cookie without a same-origin `Origin` and a valid `X-CSRF-Token`", body = ErrorBody),
        (status = 404, description = "No such conversation, or you are not a member", body = ErrorBody),
        (status = 408, description = "The upload paused or took too long", body = ErrorBody),
        (status = 409, description = "client_id used in another conversation", body = ErrorBody),
        (status = 413, description = "Larger than 16 MB", body = ErrorBody),
        (status = 415, description = "Not multipart/form-data, not a supported audio file, or out of bounds (sample rate, channels, over 6 hours)", body = ErrorBody),
        (status = 429, description = "Sending faster than the allowance (`--send-rate-per-user`)", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = 500, description = "Internal error", body = ErrorBody),
        (status = 507, description = "The server's storage is full; nothing was saved", body = ErrorBody),
    ))]
pub async fn upload_voice(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiPath(id): ApiPath<i64>,
    ApiMultipart(multipart): ApiMultipart,
) -> ApiResult<Response> {
    let result = voice_upload(state, auth, id, multipart).await;
    crate::metrics::upload("voice", &result);
    result
}

async fn voice_upload(
    state: AppState,
    auth: AuthUser,
    id: i64,
    multipart: axum::extract::Multipart,
) -> ApiResult<Response> {
    let form = message_form(&state, auth.id(), id, multipart, MAX_VOICE_BYTES).await?;
    let (row, created) = state
        .media
        .voice(
            &state,
            auth.id(),
            id,
            form.client_id,
            form.reply_to_id,
            form.file,
        )
        .await?;
    created_or_replayed(&row, created)
}

/// The form of a voice message or photo upload: the file, staged, and the text fields.
struct MessageForm {
    file: TempBlob,
    /// As sent (a photo's caption); empty when there is none.
    caption: String,
    client_id: Option<String>,
    reply_to_id: Option<i64>,
}

/// Reads the form of an upload by `sender` into conversation `id`: non-members and floods
/// are refused before the body is read; `file` is staged (at most `max_bytes`), a
/// `client_id` and a `reply_to_id` are checked. Other fields are ignored.
async fn message_form(
    state: &AppState,
    sender: i64,
    id: i64,
    mut multipart: axum::extract::Multipart,
    max_bytes: u64,
) -> ApiResult<MessageForm> {
    state.media.may_send_file(state, sender, id).await?;
    let mut caption = String::new();
    let mut client_id: Option<String> = None;
    let mut reply_to_id: Option<i64> = None;
    let mut upload = None;
    while let Some(field) = multipart.next_field().await? {
        match field.name() {
            Some("file") => upload = Some(state.media.stage(field, max_bytes).await?),
            Some("caption") => caption = field.text().await?,
            Some("client_id") => {
                let value = field.text().await?;
                validate_client_id(&value)?;
                client_id = Some(value);
            }
            Some("reply_to_id") => reply_to_id = Some(parse_reply_to(&field.text().await?)?),
            _ => {}
        }
    }
    let file = upload
        .ok_or_else(|| ApiError::validation("missing_file", "the form needs a `file` field"))?;
    if let Some(reply_to_id) = reply_to_id {
        crate::messages::check_reply(state, sender, id, reply_to_id).await?;
    }
    Ok(MessageForm {
        file,
        caption,
        client_id,
        reply_to_id,
    })
}

/// Send a photo (multipart `file`, optional `caption`, `client_id` and `reply_to_id`). png,
/// jpeg, gif or webp, decided by the bytes; at most 16 MB, 8192 px a side and 40
/// megapixels (checked from the header, before decoding). The server keeps a re-encoded
/// copy (orientation applied, no metadata: EXIF, location and all, is gone; an animated
/// GIF stays animated) and a thumbnail within 480 px; the message gives both sizes.
#[utoipa::path(post, path = "/api/conversations/{id}/photos", tag = "messages",
    params(("id" = i64, Path)),
    request_body(content_type = "multipart/form-data", description = "`file`: the image; `caption`: optional text (at most 4000 characters, `@username` mentions members); `client_id`: optional idempotency key; `reply_to_id`: optional id of the message of this conversation it answers"),
    responses(
        (status = 201, description = "Stored", body = Message),
        (status = 200, description = "Already stored under this client_id", body = Message),
        (status = 400, description = "A bad id, a malformed form, no `file` field, an empty file, a caption too long, an invalid `client_id`, or a `reply_to_id` that is not a message of this conversation or was deleted (`error.code` says which)", body = ErrorBody),
        (status = 401, description = "Not signed in: no, an unknown or an expired token or cookie", body = ErrorBody),
        (status = 403, description = "Signed in with a session cookie without a same-origin `Origin` and a valid `X-CSRF-Token`", body = ErrorBody),
        (status = 404, description = "No such conversation, or you are not a member", body = ErrorBody),
        (status = 408, description = "The upload paused or took too long", body = ErrorBody),
        (status = 409, description = "client_id used in another conversation", body = ErrorBody),
        (status = 413, description = "Larger than 16 MB", body = ErrorBody),
        (status = 415, description = "Not multipart/form-data, not a png, jpeg, gif or webp image, an image that does not decode, or larger than 8192 px a side or 40 megapixels", body = ErrorBody),
        (status = 429, description = "Sending faster than the allowance (`--send-rate-per-user`)", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = 500, description = "Internal error", body = ErrorBody),
        (status = 507, description = "The server's storage is full; nothing was saved", body = ErrorBody),
    ))]
pub async fn upload_photo(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiPath(id): ApiPath<i64>,
    ApiMultipart(multipart): ApiMultipart,
) -> ApiResult<Response> {
    let result = photo_upload(state, auth, id, multipart).await;
    crate::metrics::upload("photo", &result);
    result
}

async fn photo_upload(
    state: AppState,
    auth: AuthUser,
    id: i64,
    multipart: axum::extract::Multipart,
) -> ApiResult<Response> {
    let mut form = message_form(&state, auth.id(), id, multipart, MAX_PHOTO_BYTES).await?;
    // No caption is a photo alone; a caption is checked as a message's text.
    if form.caption.trim().is_empty() {
        form.caption.clear();
    } else {
        crate::messages::validate_body(&form.caption)?;
    }
    let mentions = crate::messages::mentions_in(&state, id, &form.caption).await?;
    let (row, created) = state
        .media
        .photo(
            &state,
            auth.id(),
            id,
            form.caption,
            mentions,
            form.client_id,
            form.reply_to_id,
            form.file,
        )
        .await?;
    created_or_replayed(&row, created)
}

fn parse_reply_to(value: &str) -> ApiResult<i64> {
    value
        .trim()
        .parse::<i64>()
        .map_err(|_| ApiError::validation("invalid_reply", "reply_to_id must be a message id"))
}

/// 201 with a message just stored, 200 with the one a retried `client_id` stored first.
fn created_or_replayed(row: &crate::store::MessageRow, created: bool) -> ApiResult<Response> {
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, axum::Json(views::message(row))).into_response())
}

/// How long a browser may keep a file it fetched: one hour, in its private cache only. A
/// file never changes, but on a shared computer it should not outlive the session by
/// long; sign-out also clears the cache (`Clear-Site-Data`).
pub const FILE_CACHE_CONTROL: &str = "private, max-age=3600";

/// A stored file: voice messages and photos only to members of their conversation,
/// avatars to anyone signed in. Supports `Range`.
#[utoipa::path(get, path = "/api/files/{id}", tag = "files",
    params(
        ("id" = String, Path, description = "File id (the end of a message's `attachment.url` or of an avatar URL)"),
        ("Range" = Option<String>, Header, description = "One byte range, e.g. `bytes=0-1023` (206; beyond the end 416); several ranges or a malformed header get the whole file"),
    ),
    responses(
        (status = 200, description = "The file", content(("audio/ogg; codecs=opus"), ("audio/mpeg"), ("audio/wav"), ("audio/ogg"), ("audio/mp4"), ("audio/webm"), ("image/png"), ("image/jpeg"), ("image/gif")),
            headers(("Accept-Ranges" = String, description = "`bytes`"))),
        (status = 206, description = "Part of the file (Range)", content(("audio/ogg; codecs=opus"), ("audio/mpeg"), ("audio/wav"), ("audio/ogg"), ("audio/mp4"), ("audio/webm"), ("image/png"), ("image/jpeg"), ("image/gif")),
            headers(("Content-Range" = String, description = "`bytes START-END/SIZE`"))),
        (status = 400, description = "The id is not valid UTF-8 or contains U+0000", body = ErrorBody),
        (status = 401, description = "Not signed in: no, an unknown or an expired token or cookie", body = ErrorBody),
        (status = 404, description = "No such file, or a voice message or photo of a conversation you are not in", body = ErrorBody),
        (status = 416, description = "The range is outside the file", body = ErrorBody,
            headers(("Content-Range" = String, description = "`bytes */SIZE`"))),
        (status = 500, description = "Internal error", body = ErrorBody),
        (status = 507, description = "The server's storage is full (recording the session's use failed)", body = ErrorBody),
    ))]
pub async fn get_file(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiPath(id): ApiPath<String>,
    request: Request,
) -> ApiResult<Response> {
    let range = request
        .headers()
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok());
    let opened = state.media.open(&state, auth.id(), &id, range).await?;
    let file = opened.file;
    let mut response = Response::new(Body::from_stream(ReaderStream::new(opened.read.body)));
    response
        .headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from(opened.read.len));
    response
        .headers_mut()
        .insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if let Some(r) = &opened.range {
        *response.status_mut() = StatusCode::PARTIAL_CONTENT;
        if let Ok(value) = HeaderValue::from_str(&format!(
            "bytes {}-{}/{}",
            r.start,
            r.end.saturating_sub(1),
            opened.read.total
        )) {
            response.headers_mut().insert(header::CONTENT_RANGE, value);
        }
    }
    let headers = response.headers_mut();
    if let Ok(mime) = HeaderValue::from_str(&file.mime) {
        headers.insert(header::CONTENT_TYPE, mime);
    }
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(FILE_CACHE_CONTROL),
    );
    let ext = match file.mime.as_str() {
        "audio/mpeg" => "mp3",
        "audio/wav" => "wav",
        "audio/ogg" => "ogg",
        super::opus::MIME => "opus",
        "audio/mp4" => "m4a",
        "audio/webm" => "webm",
        "image/png" => "png",
        "image/jpeg" => "jpg",
        "image/gif" => "gif",
        "image/webp" => "webp",
        _ => "bin",
    };
    if let Ok(value) =
        HeaderValue::from_str(&format!("inline; filename=\"{}-{id}.{ext}\"", file.kind))
    {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    Ok(response)
}

/// Set your avatar (multipart `file`: png, jpeg, gif or webp, at most 5 MB). The server
/// keeps 256 px and 64 px PNGs; the previous avatar's files are deleted.
#[utoipa::path(put, path = "/api/me/avatar", tag = "account",
    request_body(content_type = "multipart/form-data", description = "`file`: the image"),
    responses(
        (status = 200, description = "The account with its new avatar", body = chatapp_protocol::Me),
        (status = 400, description = "A malformed form or no `file` field (`error.code` says which)", body = ErrorBody),
        (status = 401, description = "Not signed in: no, an unknown or an expired token or cookie", body = ErrorBody),
        (status = 403, description = "Signed in with a session cookie without a same-origin `Origin` and a valid `X-CSRF-Token`", body = ErrorBody),
        (status = 408, description = "The upload paused or took too long", body = ErrorBody),
        (status = 413, description = "Larger than 5 MB", body = ErrorBody),
        (status = 415, description = "Not multipart/form-data, not a png, jpeg, gif or webp image, or larger than 8192 px a side or 24 megapixels", body = ErrorBody),
        (status = 500, description = "Internal error", body = ErrorBody),
        (status = 507, description = "The server's storage is full; nothing was saved", body = ErrorBody),
    ))]
pub async fn put_avatar(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiMultipart(multipart): ApiMultipart,
) -> ApiResult<axum::Json<chatapp_protocol::Me>> {
    let result = avatar_upload(state, auth, multipart).await;
    crate::metrics::upload("avatar", &result);
    result
}

async fn avatar_upload(
    state: AppState,
    auth: AuthUser,
    mut multipart: axum::extract::Multipart,
) -> ApiResult<axum::Json<chatapp_protocol::Me>> {
    let mut bytes: Option<Vec<u8>> = None;
    while let Some(mut field) = multipart.next_field().await? {
        if field.name() != Some("file") {
            continue;
        }
        let mut data = Vec::new();
        while let Some(chunk) = field.chunk().await? {
            if data.len() + chunk.len() > MAX_AVATAR_BYTES {
                return Err(ApiError::PayloadTooLarge);
            }
            data.extend_from_slice(&chunk);
        }
        bytes = Some(data);
    }
    let bytes = bytes
        .ok_or_else(|| ApiError::validation("missing_file", "the form needs a `file` field"))?;
    Ok(axum::Json(
        state.media.set_avatar(&state, auth.id(), bytes).await?,
    ))
}

/// Remove your avatar (its files are deleted).
#[utoipa::path(delete, path = "/api/me/avatar", tag = "account",
    responses(
        (status = 200, description = "The account without an avatar", body = chatapp_protocol::Me),
        (status = 401, description = "Not signed in: no, an unknown or an expired token or cookie", body = ErrorBody),
        (status = 403, description = "Signed in with a session cookie without a same-origin `Origin` and a valid `X-CSRF-Token`", body = ErrorBody),
        (status = 500, description = "Internal error", body = ErrorBody),
        (status = 507, description = "The server's storage is full; nothing was saved", body = ErrorBody),
    ))]
pub async fn delete_avatar(
    State(state): State<AppState>,
    auth: AuthUser,
) -> ApiResult<axum::Json<chatapp_protocol::Me>> {
    Ok(axum::Json(
        state.media.remove_avatar(&state, auth.id()).await?,
    ))
}
