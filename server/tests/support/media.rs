//! Media helpers shared by the media tests: files made by ffmpeg, hand-made WAVs, users
//! through `chatapp-client`, hand-written forms for [`Raw`] requests, and what the blob
//! store holds.

use std::{path::Path, process::Command};

use chatapp_client::Api;
use chatapp_testkit::LocalServer;
use reqwest::Method;
use serde_json::Value;

#[allow(unused_imports)]
pub use super::refused_as;
use super::{Raw, Resp, TestServer};

/// Runs ffmpeg on the lavfi source `input` with `args`, writing `dir/file`; its bytes.
pub fn ffmpeg(dir: &Path, file: &str, input: &str, args: &[&str]) -> Vec<u8> {
    let out = dir.join(file);
    let status = Command::new("ffmpeg")
        .args([
            "-hide_banner",
            "-loglevel",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            input,
        ])
        .args(args)
        .arg(&out)
        .status()
        .expect("ffmpeg (apt-get install ffmpeg)");
    assert!(status.success(), "ffmpeg failed for {file}");
    std::fs::read(out).expect("encoded file")
}

/// A 3-second tone encoded by ffmpeg as `file`.
pub fn encode(dir: &Path, file: &str, codec: &[&str]) -> Vec<u8> {
    ffmpeg(dir, file, "sine=frequency=440:duration=3", codec)
}

/// One frame of a lavfi picture source as an image file.
pub fn image_file(dir: &Path, name: &str, spec: &str) -> Vec<u8> {
    ffmpeg(dir, name, spec, &["-frames:v", "1"])
}

/// The fields of a WAV format chunk (PCM unless `format` says otherwise).
#[derive(Debug, Clone, Copy)]
pub struct WavFormat {
    pub format: u16,
    pub channels: u16,
    pub sample_rate: u32,
    pub bits: u16,
    pub block_align: u16,
}

impl Default for WavFormat {
    /// Mono 16-bit 48 kHz PCM.
    fn default() -> Self {
        Self {
            format: 1,
            channels: 1,
            sample_rate: 48_000,
            bits: 16,
            block_align: 2,
        }
    }
}

/// A WAV file of `format` with `data` as its samples; the header says what `format` says,
/// however absurd.
pub fn wav_of(format: WavFormat, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(44 + data.len());
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&u32::try_from(36 + data.len()).expect("fits").to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&format.format.to_le_bytes());
    out.extend_from_slice(&format.channels.to_le_bytes());
    out.extend_from_slice(&format.sample_rate.to_le_bytes());
    let byte_rate = format
        .sample_rate
        .wrapping_mul(u32::from(format.block_align));
    out.extend_from_slice(&byte_rate.to_le_bytes());
    out.extend_from_slice(&format.block_align.to_le_bytes());
    out.extend_from_slice(&format.bits.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&u32::try_from(data.len()).expect("fits").to_le_bytes());
    out.extend_from_slice(data);
    out
}

/// A valid mono 16-bit 48 kHz WAV of exactly `size` bytes (a 440 Hz tone).
pub fn wav(size: usize) -> Vec<u8> {
    let data = size - 44;
    let mut samples = Vec::with_capacity(data);
    for i in 0..data / 2 {
        let sample =
            ((i as f32 * 440.0 * std::f32::consts::TAU / 48_000.0).sin() * 12_000.0) as i16;
        samples.extend_from_slice(&sample.to_le_bytes());
    }
    samples.resize(data, 0);
    wav_of(WavFormat::default(), &samples)
}

/// A server whose files the media tests look at: the in-process [`TestServer`] or the
/// [`LocalServer`] that [`Raw`] requests go into.
pub trait MediaServer {
    /// Its data dir (the blob store is `blobs/` in it).
    fn data_dir(&self) -> &Path;
    /// A `chatapp-client` REST client for it, not signed in.
    fn anonymous(&self) -> Api;
}

impl MediaServer for TestServer {
    fn data_dir(&self) -> &Path {
        self.0.data_dir.path()
    }
    fn anonymous(&self) -> Api {
        self.0.api()
    }
}

impl MediaServer for LocalServer {
    fn data_dir(&self) -> &Path {
        self.data_dir.path()
    }
    fn anonymous(&self) -> Api {
        LocalServer::api(self)
    }
}

/// Registers `name` through `chatapp-client` ([`chatapp_testkit::register`]).
async fn register(server: &impl MediaServer, name: &str) -> (Api, i64) {
    chatapp_testkit::register(server.anonymous(), name).await
}

/// Registers ann, ben and eve; ann and ben share a direct conversation.
pub async fn pair(server: &impl MediaServer) -> (Api, Api, Api, i64) {
    let (ann, _) = register(server, "ann").await;
    let (ben, ben_id) = register(server, "ben").await;
    let (eve, _) = register(server, "eve").await;
    let conv = ann.direct_conversation(ben_id).await.expect("direct").id;
    (ann, ben, eve, conv)
}

/// A protocol value as the JSON the server sends for it.
pub fn json<T: serde::Serialize>(value: &T) -> Value {
    serde_json::to_value(value).expect("a protocol value is JSON")
}

/// The JSON of a [`Raw`] answer as a protocol value.
#[track_caller]
pub fn typed<T: serde::de::DeserializeOwned>(body: Value) -> T {
    serde_json::from_value(body.clone())
        .unwrap_or_else(|e| panic!("not a {}: {e}: {body}", std::any::type_name::<T>()))
}

/// The boundary of the forms [`form`] writes.
const BOUNDARY: &str = "chatapp-media-test-4f1c9a";

/// A `multipart/form-data` body as a browser writes it, for [`Raw`] requests: a
/// `client_id` field (when given), then a `file` part `(bytes, file name, type)` (when
/// given). Its content type and bytes.
pub fn form(file: Option<(&[u8], &str, &str)>, client_id: Option<&str>) -> (String, Vec<u8>) {
    let fields: Vec<(&str, &str)> = client_id.map(|id| ("client_id", id)).into_iter().collect();
    form_with(&fields, file)
}

/// A `multipart/form-data` body of the text `fields`, then the `file` part `(bytes, file
/// name, type)` when given. Its content type and bytes.
pub fn form_with(fields: &[(&str, &str)], file: Option<(&[u8], &str, &str)>) -> (String, Vec<u8>) {
    let mut body = Vec::new();
    for (name, value) in fields {
        body.extend_from_slice(
            format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            )
            .as_bytes(),
        );
    }
    if let Some((bytes, file_name, mime)) = file {
        body.extend_from_slice(
            format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; \
                 filename=\"{file_name}\"\r\nContent-Type: {mime}\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={BOUNDARY}"), body)
}

/// Uploads `bytes` as a voice message to `conversation` through `raw` (for the exact
/// status, which `chatapp-client` does not show).
pub async fn raw_upload(
    raw: &Raw,
    conversation: i64,
    bytes: &[u8],
    file_name: &str,
    mime: &str,
    client_id: Option<&str>,
) -> Resp {
    let (content_type, body) = form(Some((bytes, file_name, mime)), client_id);
    raw.send(
        Method::POST,
        &format!("/api/conversations/{conversation}/voice"),
        Some(&content_type),
        body,
    )
    .await
}

/// Uploads `bytes` as the avatar through `raw` (for the exact status).
pub async fn raw_put_avatar(raw: &Raw, bytes: &[u8], file_name: &str, mime: &str) -> Resp {
    let (content_type, body) = form(Some((bytes, file_name, mime)), None);
    raw.send(Method::PUT, "/api/me/avatar", Some(&content_type), body)
        .await
}

/// How many files the blob store keeps.
pub fn blob_count(server: &impl MediaServer) -> usize {
    let files = server.data_dir().join("blobs/files");
    std::fs::read_dir(files)
        .map(|shards| {
            shards
                .flatten()
                .map(|s| std::fs::read_dir(s.path()).map(|f| f.count()).unwrap_or(0))
                .sum()
        })
        .unwrap_or(0)
}

/// How many uploads are being written (files in `blobs/tmp`).
pub fn temp_count(server: &impl MediaServer) -> usize {
    std::fs::read_dir(server.data_dir().join("blobs/tmp"))
        .map(|dir| dir.count())
        .unwrap_or(0)
}
