//! Uploaded media: voice messages (type decided by the file's bytes and a real parse;
//! duration and waveform measured from the audio), avatars, and the files' storage
//! ([`blobs`]) and serving, all through the [`Media`] service. Files are written to the
//! blob store before their rows commit; a crash in between leaves only an orphan file,
//! which [`Media::collect_garbage`] removes at start-up.

pub mod audio;
pub mod avatar;
pub mod blobs;
pub mod image_input;
pub mod opus;
pub mod photo;
pub mod routes;
pub mod service;

pub use service::Media;

/// Largest voice file.
pub const MAX_VOICE_BYTES: u64 = 16 * 1024 * 1024;
