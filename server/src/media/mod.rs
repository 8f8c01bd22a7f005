//! Uploaded media: voice messages (type decided by the file's bytes and a real parse;
//! duration and waveform measured from the audio) and the files' storage and serving.
//! Files are written to the blob store before their rows commit; a crash in between
//! leaves only an orphan file, which [`collect_garbage`] removes at start-up.

pub mod audio;
pub mod avatar;
pub mod blobs;
pub mod routes;

use crate::AppState;

/// Largest voice file.
pub const MAX_VOICE_BYTES: u64 = 16 * 1024 * 1024;

/// Removes blob files that no row refers to (interrupted uploads). Run at start-up,
/// before any upload can be in flight.
pub async fn collect_garbage(state: &AppState) -> anyhow::Result<usize> {
    let known: std::collections::HashSet<String> =
        state.store.file_ids().await?.into_iter().collect();
    let mut removed = 0;
    for id in state.blobs.ids().await? {
        if !known.contains(&id) {
            state.blobs.delete(&id).await?;
            removed += 1;
        }
    }
    Ok(removed)
}
