//! `POST /api/conversations/{id}/voice` and `GET /api/files/{id}`.

use axum::{
    extract::{Request, State},
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use chatapp_protocol::{ErrorBody, Message, MessageKind};
use tokio::io::AsyncReadExt;
use tower::ServiceExt;
use tower_http::services::ServeFile;

use super::{
    MAX_VOICE_BYTES,
    audio::{self, Container},
    blobs::BlobStore,
};
use crate::{
    AppState,
    auth::AuthUser,
    error::{ApiError, ApiMultipart, ApiPath, ApiResult},
    messages::{message_view, validate_client_id},
    store::{FileMeta, NewMessage},
};

/// Runs the media decode `work` on the blocking pool once a permit is free (at most
/// `--media-workers` at once). The permit goes with the work, so a request that is
/// abandoned while it runs still counts until the work ends. A panic in a decoder is
/// logged and the file refused, never a 500.
async fn decode<T: Send + 'static>(
    state: &AppState,
    work: impl FnOnce() -> Result<T, String> + Send + 'static,
) -> ApiResult<T> {
    let permit = std::sync::Arc::clone(&state.media_permits)
        .acquire_owned()
        .await
        .map_err(ApiError::internal)?;
    tokio::task::spawn_blocking(move || {
        let _permit = permit;
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(work)).unwrap_or_else(|_| {
            tracing::error!("a media decoder panicked; the file is refused");
            Err("the file cannot be decoded".into())
        })
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(ApiError::UnsupportedMediaType)
}

/// Upload a voice message (multipart `file`, optional `client_id`). mp3, wav, ogg
/// (Opus, Vorbis), m4a (AAC) or webm (Opus), decided by the bytes; at most 16 MB.
#[utoipa::path(post, path = "/api/conversations/{id}/voice", tag = "messages",
    params(("id" = i64, Path)),
    request_body(content_type = "multipart/form-data", description = "`file`: the audio; `client_id`: optional idempotency key"),
    responses(
        (status = 201, description = "Stored", body = Message),
        (status = 200, description = "Already stored under this client_id", body = Message),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 408, description = "The upload paused or took too long", body = ErrorBody),
        (status = 413, description = "Larger than 16 MB", body = ErrorBody),
        (status = 415, description = "Not a supported audio file, or out of bounds (sample rate, channels, over 6 hours)", body = ErrorBody),
    ))]
pub async fn upload_voice(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiPath(id): ApiPath<i64>,
    ApiMultipart(mut multipart): ApiMultipart,
) -> ApiResult<Response> {
    // Refuse non-members and floods before reading the body.
    state.store.membership(id, auth.id()).await?;
    state.user_limits.check_send(auth.id())?;
    let mut client_id: Option<String> = None;
    let mut upload = None;
    while let Some(mut field) = multipart.next_field().await? {
        match field.name() {
            Some("file") => {
                let mut temp = state
                    .blobs
                    .create_temp()
                    .await
                    .map_err(ApiError::internal)?;
                while let Some(chunk) = field.chunk().await? {
                    if temp.size + chunk.len() as u64 > MAX_VOICE_BYTES {
                        return Err(ApiError::PayloadTooLarge);
                    }
                    temp.write(&chunk).await.map_err(ApiError::internal)?;
                }
                temp.finish_writing().await.map_err(ApiError::internal)?;
                upload = Some(temp);
            }
            Some("client_id") => {
                let value = field.text().await?;
                validate_client_id(&value)?;
                client_id = Some(value);
            }
            _ => {}
        }
    }
    let temp = upload
        .ok_or_else(|| ApiError::validation("missing_file", "the form needs a `file` field"))?;
    if temp.size == 0 {
        return Err(ApiError::validation("empty_file", "the file is empty"));
    }

    let mut head = [0u8; 64];
    let read = {
        let mut file = tokio::fs::File::open(&temp.path)
            .await
            .map_err(ApiError::internal)?;
        file.read(&mut head).await.map_err(ApiError::internal)?
    };
    let container: Container = audio::sniff(&head[..read]).ok_or_else(|| {
        ApiError::UnsupportedMediaType(
            "not a supported audio file (mp3, wav, ogg, m4a, webm)".into(),
        )
    })?;
    let path = temp.path.clone();
    let info = decode(&state, move || {
        audio::analyse(&path, container).map_err(|why| format!("not playable audio: {why}"))
    })
    .await?;

    let file = FileMeta {
        id: BlobStore::new_id(),
        mime: info.mime.to_owned(),
        size: i64::try_from(temp.size).unwrap_or(i64::MAX),
        duration_ms: info.duration_ms,
        waveform: info.waveform.iter().map(|b| format!("{b:02x}")).collect(),
    };
    state
        .blobs
        .persist(temp, &file.id)
        .await
        .map_err(ApiError::internal)?;
    let result = state
        .store
        .insert_message(&NewMessage {
            conversation_id: id,
            sender_id: auth.id(),
            kind: MessageKind::Voice,
            body: "",
            client_id: client_id.as_deref(),
            file: Some(&file),
        })
        .await;
    match result {
        Ok((row, true)) => {
            state.publish_message(&row, None).await;
            Ok((StatusCode::CREATED, axum::Json(message_view(&row))).into_response())
        }
        Ok((row, false)) => {
            // A retry: the first upload's file stands; this copy goes.
            let _ = state.blobs.delete(&file.id).await;
            Ok((StatusCode::OK, axum::Json(message_view(&row))).into_response())
        }
        Err(err) => {
            let _ = state.blobs.delete(&file.id).await;
            Err(err.into())
        }
    }
}

/// A stored file: voice only to members of its conversation, avatars to anyone signed
/// in. Supports `Range`.
/// How long a browser may keep a file it fetched: one hour, in its private cache only. A
/// file never changes, but on a shared computer it should not outlive the session by
/// long; sign-out also clears the cache (`Clear-Site-Data`).
pub const FILE_CACHE_CONTROL: &str = "private, max-age=3600";

#[utoipa::path(get, path = "/api/files/{id}", tag = "files",
    params(("id" = String, Path)),
    responses(
        (status = 200, description = "The file"),
        (status = 206, description = "Part of the file (Range)"),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
    ))]
pub async fn get_file(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiPath(id): ApiPath<String>,
    request: Request,
) -> ApiResult<Response> {
    let path = state.blobs.path(&id).ok_or(ApiError::NotFound)?;
    let file = state.store.file(&id).await?;
    if file.kind == "voice" {
        let conversation = file.conversation_id.ok_or(ApiError::NotFound)?;
        state.store.membership(conversation, auth.id()).await?;
    }
    let response = ServeFile::new(path)
        .oneshot(request)
        .await
        .map_err(ApiError::internal)?;
    if response.status() == StatusCode::NOT_FOUND {
        return Err(ApiError::NotFound);
    }
    let mut response = response.into_response();
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
        "audio/mp4" => "m4a",
        "audio/webm" => "webm",
        "image/png" => "png",
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
        (status = 200, body = chatapp_protocol::Me),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 408, description = "The upload paused or took too long", body = ErrorBody),
        (status = 413, description = "Larger than 5 MB", body = ErrorBody),
        (status = 415, description = "Not a png, jpeg, gif or webp image, or larger than 8192 px a side or 24 megapixels", body = ErrorBody),
    ))]
pub async fn put_avatar(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiMultipart(mut multipart): ApiMultipart,
) -> ApiResult<axum::Json<chatapp_protocol::Me>> {
    let mut bytes: Option<Vec<u8>> = None;
    while let Some(mut field) = multipart.next_field().await? {
        if field.name() != Some("file") {
            continue;
        }
        let mut data = Vec::new();
        while let Some(chunk) = field.chunk().await? {
            if data.len() + chunk.len() > super::avatar::MAX_AVATAR_BYTES {
                return Err(ApiError::PayloadTooLarge);
            }
            data.extend_from_slice(&chunk);
        }
        bytes = Some(data);
    }
    let bytes = bytes
        .ok_or_else(|| ApiError::validation("missing_file", "the form needs a `file` field"))?;
    let [big, small] = decode(&state, move || super::avatar::thumbnails(&bytes)).await?;
    let mut stored = Vec::new();
    for png in [&big, &small] {
        let id = BlobStore::new_id();
        let mut temp = state
            .blobs
            .create_temp()
            .await
            .map_err(ApiError::internal)?;
        temp.write(png).await.map_err(ApiError::internal)?;
        state
            .blobs
            .persist(temp, &id)
            .await
            .map_err(ApiError::internal)?;
        stored.push((id, i64::try_from(png.len()).unwrap_or(i64::MAX)));
    }
    let files = [
        (stored[0].0.as_str(), stored[0].1),
        (stored[1].0.as_str(), stored[1].1),
    ];
    let replaced = match state.store.set_avatar(auth.id(), Some(files)).await {
        Ok(replaced) => replaced,
        Err(err) => {
            for (id, _) in &stored {
                let _ = state.blobs.delete(id).await;
            }
            return Err(err.into());
        }
    };
    finish_avatar_change(&state, auth.id(), &replaced).await
}

/// Remove your avatar (its files are deleted).
#[utoipa::path(delete, path = "/api/me/avatar", tag = "account",
    responses((status = 200, body = chatapp_protocol::Me), (status = 401, body = ErrorBody)))]
pub async fn delete_avatar(
    State(state): State<AppState>,
    auth: AuthUser,
) -> ApiResult<axum::Json<chatapp_protocol::Me>> {
    let replaced = state.store.set_avatar(auth.id(), None).await?;
    finish_avatar_change(&state, auth.id(), &replaced).await
}

async fn finish_avatar_change(
    state: &AppState,
    user_id: i64,
    replaced: &[String],
) -> ApiResult<axum::Json<chatapp_protocol::Me>> {
    for id in replaced {
        if let Err(err) = state.blobs.delete(id).await {
            tracing::warn!(error = %err, "old avatar file not deleted; start-up clean-up will");
        }
    }
    state.publish_user_updated(user_id).await;
    let user = state.store.user_by_id(user_id).await?;
    Ok(axum::Json(crate::users::me(
        &user,
        state.is_online(user_id),
    )))
}
