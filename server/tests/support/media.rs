//! Media helpers shared by the media tests: files made by ffmpeg, hand-made WAVs, the
//! upload requests, and what the blob store holds.

use std::{path::Path, process::Command};

use reqwest::multipart::{Form, Part};

use super::{Client, Resp, TestServer};

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

/// Uploads `bytes` as a voice message to `conversation`.
pub async fn upload(
    client: &Client,
    conversation: i64,
    bytes: Vec<u8>,
    filename: &str,
    mime: &str,
    client_id: Option<&str>,
) -> Resp {
    let mut form = Form::new().part(
        "file",
        Part::bytes(bytes)
            .file_name(filename.to_owned())
            .mime_str(mime)
            .expect("mime"),
    );
    if let Some(id) = client_id {
        form = form.text("client_id", id.to_owned());
    }
    Client::send(
        client
            .request(
                reqwest::Method::POST,
                &format!("/api/conversations/{conversation}/voice"),
            )
            .multipart(form),
    )
    .await
}

/// Uploads `bytes` as the client's avatar.
pub async fn put_avatar(client: &Client, bytes: Vec<u8>, filename: &str, mime: &str) -> Resp {
    let form = Form::new().part(
        "file",
        Part::bytes(bytes)
            .file_name(filename.to_owned())
            .mime_str(mime)
            .expect("mime"),
    );
    Client::send(
        client
            .request(reqwest::Method::PUT, "/api/me/avatar")
            .multipart(form),
    )
    .await
}

/// Registers ann, ben and eve; ann and ben share a direct conversation.
pub async fn pair(server: &TestServer) -> (Client, Client, Client, i64) {
    let anon = server.client();
    let (ann, _) = anon.register("ann").await;
    let (ben, ben_id) = anon.register("ben").await;
    let (eve, _) = anon.register("eve").await;
    let conv = ann.direct_with(ben_id).await;
    (ann, ben, eve, conv)
}

/// How many files the blob store keeps.
pub fn blob_count(server: &TestServer) -> usize {
    let files = server.data_dir.path().join("blobs/files");
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
pub fn temp_count(server: &TestServer) -> usize {
    std::fs::read_dir(server.data_dir.path().join("blobs/tmp"))
        .map(|dir| dir.count())
        .unwrap_or(0)
}
