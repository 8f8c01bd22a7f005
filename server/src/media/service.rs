//! The media service: what happens to an uploaded voice message or avatar, and how a
//! stored file is read back. Handlers parse the request and call it; it decides the
//! file's type from its bytes, measures or thumbnails it (on at most `--media-workers`
//! threads), keeps it in the [`BlobStore`], and records it. A voice message goes through
//! the same writer, acknowledgement and allowance as a text message.

use std::{ops::Range, sync::Arc};

use axum::body::Bytes;
use chatapp_protocol::{Me, MessageKind};
use futures_util::{Stream, StreamExt};
use tokio::sync::Semaphore;

use super::{
    audio::{self, Container},
    avatar,
    blobs::{self, BlobRead, BlobStore, Staging, TempBlob},
    photo,
};
use crate::{
    AppState,
    error::{ApiError, ApiResult},
    events::Change,
    messages::writer::OwnedNewMessage,
    store::{FileMeta, FileRow, ImageMeta, MessageRow},
    views,
};

/// The media service of one server.
pub struct Media {
    blobs: Arc<dyn BlobStore>,
    staging: Staging,
    /// Permits for decoding: at most `--media-workers` run at once, the rest wait.
    permits: Arc<Semaphore>,
}

/// A stored file, opened for reading.
pub struct Opened {
    pub file: FileRow,
    pub read: BlobRead,
    /// The byte range served (end exclusive) when the request asked for one.
    pub range: Option<Range<u64>>,
}

impl Media {
    pub fn new(blobs: Arc<dyn BlobStore>, staging: Staging, workers: usize) -> Self {
        Self {
            blobs,
            staging,
            permits: Arc::new(Semaphore::new(workers.max(1))),
        }
    }

    /// Writes an upload's bytes to a staging file, refusing it past `max` bytes.
    pub async fn stage<S, E>(&self, mut chunks: S, max: u64) -> ApiResult<TempBlob>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        ApiError: From<E>,
    {
        let mut temp = self.staging.create().await.map_err(ApiError::internal)?;
        while let Some(chunk) = chunks.next().await {
            let chunk = chunk?;
            if temp.size() + chunk.len() as u64 > max {
                return Err(ApiError::PayloadTooLarge);
            }
            temp.write(&chunk).await.map_err(ApiError::internal)?;
        }
        Ok(temp)
    }

    /// Runs the decode `work` on the blocking pool once a permit is free. The permit
    /// goes with the work, so a request abandoned while it runs still counts until the
    /// work ends. A panic in a decoder is logged and the file refused, never a 500.
    async fn decode<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> Result<T, String> + Send + 'static,
    ) -> ApiResult<T> {
        let permit = Arc::clone(&self.permits)
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

    /// Whether `sender` may send a voice message or a photo to `conversation_id` now (a
    /// member, within the send allowance): checked before the upload's body is read.
    pub async fn may_send_file(
        &self,
        state: &AppState,
        sender: i64,
        conversation_id: i64,
    ) -> ApiResult<()> {
        state.store.membership(conversation_id, sender).await?;
        state.user_limits.check_send(sender)?;
        Ok(())
    }

    /// A voice message from an upload: its type from its bytes, its duration and
    /// waveform measured, stored, then written like a text message (group commit, one
    /// message per `client_id`) and published. Returns the message and whether it is
    /// new (a retried `client_id` returns the first, and this copy of the file goes).
    pub async fn voice(
        &self,
        state: &AppState,
        sender: i64,
        conversation_id: i64,
        client_id: Option<String>,
        reply_to_id: Option<i64>,
        mut temp: TempBlob,
    ) -> ApiResult<(MessageRow, bool)> {
        if temp.size() == 0 {
            return Err(ApiError::validation("empty_file", "the file is empty"));
        }
        // Read, then dropped: never synced to disk.
        temp.close().await.map_err(ApiError::internal)?;
        let head = temp.head(64).await.map_err(ApiError::internal)?;
        let container: Container = audio::sniff(&head).ok_or_else(|| {
            ApiError::UnsupportedMediaType(
                "not a supported audio file (mp3, wav, ogg, m4a, webm)".into(),
            )
        })?;
        // Decoded once: measured, and encoded into the Ogg Opus file that is kept (the
        // upload goes when `temp` drops).
        let mut opus = self.staging.create().await.map_err(ApiError::internal)?;
        // Written (and synced) by the encoder, by its path.
        opus.close().await.map_err(ApiError::internal)?;
        // Both files go with the work, so that they are removed when it ends, even for a
        // request abandoned meanwhile.
        let (info, mut opus) = self
            .decode(move || {
                let info = audio::transcode(temp.path(), container, opus.path())
                    .map_err(|why| format!("not playable audio: {why}"))?;
                drop(temp);
                Ok((info, opus))
            })
            .await?;
        opus.written_elsewhere().await.map_err(ApiError::internal)?;
        let file = FileMeta {
            id: blobs::new_id(),
            mime: info.mime.to_owned(),
            size: i64::try_from(opus.size()).unwrap_or(i64::MAX),
            duration_ms: Some(info.duration_ms),
            waveform: Some(info.waveform.iter().map(|b| format!("{b:02x}")).collect()),
            width: None,
            height: None,
            thumbnail: None,
        };
        self.blobs
            .put(opus, &file.id)
            .await
            .map_err(ApiError::internal)?;
        self.write_with_file(
            state,
            OwnedNewMessage {
                conversation_id,
                sender_id: sender,
                kind: MessageKind::Voice,
                body: String::new(),
                client_id,
                file: Some(file),
                reply_to_id,
                mentions: Vec::new(),
                origin: None,
            },
        )
        .await
    }

    /// A photo message from an upload: the image checked by its bytes and its header
    /// (before decoding), its orientation applied, re-encoded without its metadata, a
    /// thumbnail made, both stored, then written like a text message with `caption` as
    /// its body (and the members it mentions). Returns the message and whether it is new.
    #[allow(clippy::too_many_arguments)]
    pub async fn photo(
        &self,
        state: &AppState,
        sender: i64,
        conversation_id: i64,
        caption: String,
        mentions: Vec<i64>,
        client_id: Option<String>,
        reply_to_id: Option<i64>,
        mut temp: TempBlob,
    ) -> ApiResult<(MessageRow, bool)> {
        if temp.size() == 0 {
            return Err(ApiError::validation("empty_file", "the file is empty"));
        }
        // Read, then dropped: never synced to disk.
        temp.close().await.map_err(ApiError::internal)?;
        let processed = self
            .decode(move || {
                let bytes = std::fs::read(temp.path())
                    .map_err(|e| format!("the upload could not be read: {e}"))?;
                drop(temp);
                photo::process(&bytes)
            })
            .await?;
        let full_id = blobs::new_id();
        self.put_bytes(&full_id, &processed.full.bytes).await?;
        let thumb_id = blobs::new_id();
        if let Err(err) = self.put_bytes(&thumb_id, &processed.thumbnail.bytes).await {
            self.forget(&full_id).await;
            return Err(err);
        }
        let size = |bytes: &[u8]| i64::try_from(bytes.len()).unwrap_or(i64::MAX);
        let file = FileMeta {
            id: full_id,
            mime: processed.full.mime.to_owned(),
            size: size(&processed.full.bytes),
            duration_ms: None,
            waveform: None,
            width: Some(i64::from(processed.full.width)),
            height: Some(i64::from(processed.full.height)),
            thumbnail: Some(ImageMeta {
                id: thumb_id,
                mime: processed.thumbnail.mime.to_owned(),
                size: size(&processed.thumbnail.bytes),
                width: i64::from(processed.thumbnail.width),
                height: i64::from(processed.thumbnail.height),
            }),
        };
        self.write_with_file(
            state,
            OwnedNewMessage {
                conversation_id,
                sender_id: sender,
                kind: MessageKind::Photo,
                body: caption,
                client_id,
                file: Some(file),
                reply_to_id,
                mentions,
                origin: None,
            },
        )
        .await
    }

    /// Writes a message whose files are in the blob store already (group commit, one
    /// message per `client_id`; delivered to the members by the writer). When it is not
    /// stored, or is a retry whose first upload stands, this upload's files go.
    async fn write_with_file(
        &self,
        state: &AppState,
        message: OwnedNewMessage,
    ) -> ApiResult<(MessageRow, bool)> {
        let ids: Vec<String> = message
            .file
            .iter()
            .flat_map(FileMeta::stored)
            .map(|(id, _, _)| id.to_owned())
            .collect();
        let written = state.writer.write(message).await;
        if !matches!(written, Ok((_, true))) {
            for id in &ids {
                self.forget(id).await;
            }
        }
        written.map_err(Into::into)
    }

    /// Stores `bytes` under `id` (a staging file first, then the blob store's put).
    async fn put_bytes(&self, id: &str, bytes: &[u8]) -> ApiResult<()> {
        let mut temp = self.staging.create().await.map_err(ApiError::internal)?;
        temp.write(bytes).await.map_err(ApiError::internal)?;
        self.blobs.put(temp, id).await.map_err(ApiError::internal)
    }

    /// A new avatar from an image's bytes: 256 px and 64 px PNGs (nothing of the
    /// original kept, so no metadata), the previous avatar's files deleted, contacts told.
    pub async fn set_avatar(
        &self,
        state: &AppState,
        user_id: i64,
        image: Vec<u8>,
    ) -> ApiResult<Me> {
        let [big, small] = self.decode(move || avatar::thumbnails(&image)).await?;
        let mut stored: Vec<(String, i64)> = Vec::new();
        for png in [&big, &small] {
            let id = blobs::new_id();
            if let Err(err) = self.put_bytes(&id, png).await {
                for (id, _) in &stored {
                    self.forget(id).await;
                }
                return Err(err);
            }
            stored.push((id, i64::try_from(png.len()).unwrap_or(i64::MAX)));
        }
        let files = [
            (stored[0].0.as_str(), stored[0].1),
            (stored[1].0.as_str(), stored[1].1),
        ];
        let replaced = match state.store.set_avatar(user_id, Some(files)).await {
            Ok(replaced) => replaced,
            Err(err) => {
                for (id, _) in &stored {
                    self.forget(id).await;
                }
                return Err(err.into());
            }
        };
        self.avatar_changed(state, user_id, &replaced).await
    }

    /// No avatar any more (its files are deleted).
    pub async fn remove_avatar(&self, state: &AppState, user_id: i64) -> ApiResult<Me> {
        let replaced = state.store.set_avatar(user_id, None).await?;
        self.avatar_changed(state, user_id, &replaced).await
    }

    async fn avatar_changed(
        &self,
        state: &AppState,
        user_id: i64,
        replaced: &[String],
    ) -> ApiResult<Me> {
        for id in replaced {
            self.forget(id).await;
        }
        state.publish(Change::UserUpdated { user_id }).await;
        let user = state.store.user_by_id(user_id).await?;
        Ok(views::me(&user, state.is_online(user_id)))
    }

    /// Deletes a blob no row refers to any more; a failure is left to the start-up
    /// clean-up.
    pub(crate) async fn forget(&self, id: &str) {
        if let Err(err) = self.blobs.delete(id).await {
            tracing::warn!(error = %err, "a file no row refers to was not deleted; start-up clean-up will");
        }
    }

    /// Opens file `id` for `user_id`: voice files and photos only for members of their
    /// conversation, avatars for anyone signed in. `range` is the request's `Range` header: one byte
    /// range is served as asked (several, or a malformed header: the whole file);
    /// a range outside the file is refused.
    pub async fn open(
        &self,
        state: &AppState,
        user_id: i64,
        id: &str,
        range: Option<&str>,
    ) -> ApiResult<Opened> {
        if !blobs::valid_id(id) {
            return Err(ApiError::NotFound);
        }
        let file = state.store.file(id).await?;
        if file.kind != "avatar" {
            let conversation = file.conversation_id.ok_or(ApiError::NotFound)?;
            state.store.membership(conversation, user_id).await?;
        }
        let not_found = |err: std::io::Error| {
            if err.kind() == std::io::ErrorKind::NotFound {
                ApiError::NotFound
            } else {
                ApiError::internal(err)
            }
        };
        let range = match range {
            Some(header) => {
                let size = self.blobs.size(id).await.map_err(not_found)?;
                byte_range(header, size)?
            }
            None => None,
        };
        let read = self.blobs.get(id, range.clone()).await.map_err(not_found)?;
        Ok(Opened { file, read, range })
    }

    /// Removes blobs that no row refers to (interrupted uploads). Run at start-up,
    /// before any upload can be in flight.
    pub async fn collect_garbage(&self, state: &AppState) -> anyhow::Result<usize> {
        let known: std::collections::HashSet<String> =
            state.store.file_ids().await?.into_iter().collect();
        let mut removed = 0;
        for id in self.blobs.list().await? {
            if !known.contains(&id) {
                self.blobs.delete(&id).await?;
                removed += 1;
            }
        }
        Ok(removed)
    }
}

/// The one byte range a `Range` header asks of a file of `size` bytes (end exclusive);
/// `None` to serve the whole file (not a byte range we serve, or several ranges).
fn byte_range(header: &str, size: u64) -> ApiResult<Option<Range<u64>>> {
    let Ok(parsed) = http_range_header::parse_range_header(header) else {
        return Ok(None);
    };
    match parsed.validate(size) {
        Ok(ranges) if ranges.len() == 1 => {
            let r = &ranges[0];
            Ok(Some(*r.start()..r.end() + 1))
        }
        Ok(_) => Ok(None),
        Err(_) => Err(ApiError::RangeNotSatisfiable { size }),
    }
}

#[cfg(test)]
mod tests {
    use super::byte_range;

    #[test]
    fn one_byte_range_is_served_as_asked() {
        assert_eq!(
            byte_range("bytes=100-199", 1000).ok().flatten(),
            Some(100..200)
        );
        assert_eq!(
            byte_range("bytes=900-", 1000).ok().flatten(),
            Some(900..1000)
        );
        assert_eq!(
            byte_range("bytes=-100", 1000).ok().flatten(),
            Some(900..1000)
        );
        assert_eq!(
            byte_range("bytes=0-5000", 1000).ok().flatten(),
            Some(0..1000)
        );
        assert_eq!(byte_range("items=0-5", 1000).ok().flatten(), None);
        assert_eq!(byte_range("bytes=0-1,5-6", 1000).ok().flatten(), None);
        assert!(byte_range("bytes=1000-", 1000).is_err());
    }
}
