//! Hostile and careless uploads on SQLite and PostgreSQL: media that would cost too much
//! to decode or that trips a decoder (sent through `chatapp-client`), forms that are not
//! forms (in-process into the router through `support::Raw`: no client sends them), and
//! request headers and bodies that arrive too slowly or not at all (byte by byte over
//! real sockets: only a connection shows them).

mod support;

use std::time::{Duration, Instant};

use chatapp_client::{Api, ClientError, Upload};
use reqwest::Method;
use serde_json::Value;
use support::{
    Backend, Raw, TestServer,
    media::{
        WavFormat, blob_count, encode, ffmpeg, image_file, pair, refused_as, temp_count, wav,
        wav_of,
    },
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

on_both_backends!(
    huge_images_are_refused_before_decoding,
    absurd_audio_parameters_are_refused,
    damaged_audio_is_refused_or_measured_without_a_panic,
    malformed_forms_get_the_error_shape,
    slow_headers_are_disconnected,
    stalled_upload_is_cut_off_and_its_temp_file_removed,
    trickling_upload_is_cut_off_at_the_deadline,
    abandoned_upload_leaves_no_temp_file,
    decoding_audio_is_quiet_in_the_log,
);

/// Upper bound for anything that must end; never a measure of speed.
const MUST_END_WITHIN: Duration = Duration::from_secs(30);

/// A PNG that is only a header: `width`×`height`, 8-bit RGB, no pixels.
fn png_header_only(width: u32, height: u32) -> Vec<u8> {
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&width.to_be_bytes());
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    for (kind, data) in [(&b"IHDR"[..], &ihdr[..]), (b"IEND", &[])] {
        png.extend_from_slice(&u32::try_from(data.len()).expect("fits").to_be_bytes());
        let mut crc = crc32fast::Hasher::new();
        crc.update(kind);
        crc.update(data);
        png.extend_from_slice(kind);
        png.extend_from_slice(data);
        png.extend_from_slice(&crc.finalize().to_be_bytes());
    }
    png
}

async fn huge_images_are_refused_before_decoding(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (ann, _, _, _) = pair(&server).await;
    let dir = tempfile::tempdir().expect("dir");

    // A small file that decodes to 8192×8192 pixels (192 MiB of RGB).
    let bomb = image_file(dir.path(), "bomb.png", "color=c=black:s=8192x8192");
    assert!(bomb.len() < 1024 * 1024, "{} bytes", bomb.len());
    let started = Instant::now();
    let refused = ann
        .put_avatar(Upload::new(bomb, "bomb.png", "image/png"))
        .await;
    assert!(started.elapsed() < MUST_END_WITHIN);
    let message = refused_as("bomb.png", refused, 415, "unsupported_media_type");
    assert!(message.contains("8192×8192"), "{message}");

    // Headers claiming more than any decoder would accept: refused from the header alone.
    let claims: [(&str, Vec<u8>); 3] = [
        ("wide.png", png_header_only(100_000, 1)),
        ("tall.png", png_header_only(1, u32::MAX)),
        ("screen.gif", {
            let mut gif = b"GIF89a".to_vec();
            gif.extend_from_slice(&u16::MAX.to_le_bytes());
            gif.extend_from_slice(&u16::MAX.to_le_bytes());
            gif.extend_from_slice(&[0, 0, 0, b';']);
            gif
        }),
    ];
    for (name, bytes) in claims {
        let refused = ann.put_avatar(Upload::new(bytes, name, "image/png")).await;
        refused_as(name, refused, 415, "unsupported_media_type");
    }

    // A large but sensible photo is still taken, cropped to its centre.
    let photo = image_file(dir.path(), "photo.png", "color=c=green:s=1600x900");
    let me = ann
        .put_avatar(Upload::new(photo, "photo.png", "image/png"))
        .await
        .expect("a sensible photo");
    assert!(me.avatar_url.is_some());
    assert_eq!(blob_count(&server), 2);
    assert_eq!(temp_count(&server), 0);
}

async fn absurd_audio_parameters_are_refused(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (ann, _, _, conv) = pair(&server).await;
    let pcm = |format: WavFormat, bytes: usize| wav_of(format, &vec![0x11; bytes]);
    let mono = WavFormat::default();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "sample rate 0",
            pcm(
                WavFormat {
                    sample_rate: 0,
                    ..mono
                },
                4096,
            ),
        ),
        (
            // 1 MB at 1 Hz would claim 6 days.
            "sample rate 1 Hz",
            pcm(
                WavFormat {
                    sample_rate: 1,
                    ..mono
                },
                1024 * 1024,
            ),
        ),
        (
            "sample rate 4 GHz",
            pcm(
                WavFormat {
                    sample_rate: u32::MAX,
                    ..mono
                },
                4096,
            ),
        ),
        (
            "65535 channels",
            pcm(
                WavFormat {
                    channels: u16::MAX,
                    block_align: u16::MAX - 1,
                    ..mono
                },
                65534 * 4,
            ),
        ),
        (
            "no channels",
            pcm(
                WavFormat {
                    channels: 0,
                    block_align: 0,
                    ..mono
                },
                4096,
            ),
        ),
        (
            "block size 0",
            pcm(
                WavFormat {
                    block_align: 0,
                    ..mono
                },
                4096,
            ),
        ),
        (
            "block size off",
            pcm(
                WavFormat {
                    block_align: 3,
                    ..mono
                },
                4096,
            ),
        ),
        (
            "7 bits per sample",
            pcm(WavFormat { bits: 7, ..mono }, 4096),
        ),
        (
            // IMA ADPCM whose block is smaller than its own header.
            "ADPCM with a tiny block",
            pcm(
                WavFormat {
                    format: 0x11,
                    channels: 2,
                    bits: 4,
                    block_align: 1,
                    ..mono
                },
                4096,
            ),
        ),
    ];
    for (name, bytes) in cases {
        let refused = ann
            .upload_voice(conv, Upload::new(bytes, "x.wav", "audio/wav"))
            .await;
        refused_as(name, refused, 415, "unsupported_media_type");
    }
    // A plain WAV is still fine, and nothing of the refused ones was kept.
    let ok = ann
        .upload_voice(conv, Upload::new(wav(96_044), "ok.wav", "audio/wav"))
        .await
        .expect("a plain WAV");
    assert_eq!(ok.attachment.expect("attachment").duration_ms, Some(1000));
    assert_eq!(blob_count(&server), 1);
    assert_eq!(temp_count(&server), 0);
    assert_eq!(whole_history(&ann, conv).await.len(), 1);
}

/// Deterministic noise.
fn noise(len: usize, mut seed: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed.to_le_bytes()[0]
        })
        .collect()
}

/// `bytes` with the big-endian u32 after the first `marker` (plus `skip` bytes) zeroed.
fn zero_after(bytes: &[u8], marker: &[u8], skip: usize, width: usize) -> Vec<u8> {
    let at = bytes
        .windows(marker.len())
        .position(|w| w == marker)
        .unwrap_or_else(|| panic!("{} not found", String::from_utf8_lossy(marker)))
        + marker.len()
        + skip;
    let mut out = bytes.to_vec();
    out[at..at + width].fill(0);
    out
}

async fn damaged_audio_is_refused_or_measured_without_a_panic(backend: Backend) {
    let server = TestServer::start_capturing_log(backend, "warn").await;
    let (ann, _, _, conv) = pair(&server).await;
    let dir = tempfile::tempdir().expect("dir");
    let formats: [(&str, &[&str]); 6] = [
        ("tone.wav", &["-c:a", "pcm_s16le"]),
        ("tone.mp3", &["-c:a", "libmp3lame", "-b:a", "64k"]),
        ("tone.ogg", &["-c:a", "libvorbis"]),
        ("tone.opus", &["-c:a", "libopus", "-f", "ogg"]),
        ("tone.m4a", &["-c:a", "aac"]),
        ("tone.webm", &["-c:a", "libopus"]),
    ];
    let mut cases: Vec<(String, Vec<u8>)> = Vec::new();
    for (file, codec) in formats {
        let good = encode(dir.path(), file, codec);
        let mut garbage = good[..64].to_vec();
        garbage.extend(noise(good.len() - 64, 0x9E37_79B9_7F4A_7C15));
        let mut flipped = good.clone();
        for (i, byte) in flipped.iter_mut().enumerate().skip(64) {
            if i % 97 == 0 {
                *byte ^= 0x5A;
            }
        }
        cases.push((format!("{file} cut to 100 bytes"), good[..100].to_vec()));
        cases.push((
            format!("{file} cut in half"),
            good[..good.len() / 2].to_vec(),
        ));
        cases.push((format!("{file} with garbage after its head"), garbage));
        cases.push((format!("{file} with flipped bits"), flipped));
    }
    // Container timestamps that symphonia 0.5 divides by or builds a time base from.
    let m4a = encode(dir.path(), "scale.m4a", &["-c:a", "aac"]);
    // mdhd (version 0): 4 bytes version/flags, 8 bytes dates, then the time scale.
    cases.push((
        "m4a with time scale 0".into(),
        zero_after(&m4a, b"mdhd", 12, 4),
    ));
    let webm = encode(dir.path(), "scale.webm", &["-c:a", "libopus"]);
    // TimestampScale (2A D7 B1), its one-byte size, then the value.
    let scale_at = webm
        .windows(3)
        .position(|w| w == [0x2A, 0xD7, 0xB1])
        .expect("TimestampScale");
    let size = usize::from(webm[scale_at + 3] & 0x7F);
    cases.push((
        "webm with timestamp scale 0".into(),
        zero_after(&webm, &[0x2A, 0xD7, 0xB1], 1, size),
    ));

    for (name, bytes) in cases {
        let response = ann
            .upload_voice(conv, Upload::new(bytes, "x.bin", "audio/wav"))
            .await;
        match response {
            Ok(message) => {
                let ms = message
                    .attachment
                    .and_then(|a| a.duration_ms)
                    .expect("duration");
                assert!((1..=3150).contains(&ms), "{name}: {ms} ms from a 3 s file");
            }
            refused @ Err(ClientError::Api { .. }) => {
                refused_as(&name, refused, 415, "unsupported_media_type");
            }
            Err(other) => panic!("{name}: {other}"),
        }
    }
    assert_eq!(temp_count(&server), 0);
    let log = server.log.lock().expect("log").join("\n");
    assert!(!log.contains("panicked"), "a decoder panicked:\n{log}");
}

/// Reads one HTTP/1.1 response: status, the head as text, the body as JSON.
async fn read_response(tcp: &mut TcpStream) -> (u16, String, Value) {
    let mut data = Vec::new();
    let head_end = loop {
        if let Some(at) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        let mut buf = [0u8; 4096];
        let n = tcp.read(&mut buf).await.expect("read");
        assert!(
            n > 0,
            "closed before an answer: {:?}",
            String::from_utf8_lossy(&data)
        );
        data.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&data[..head_end]).to_lowercase();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status");
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .map_or(0, |v| v.trim().parse().expect("length"));
    while data.len() < head_end + length {
        let mut buf = [0u8; 4096];
        let n = tcp.read(&mut buf).await.expect("read");
        assert!(n > 0, "closed inside the body");
        data.extend_from_slice(&buf[..n]);
    }
    let json = serde_json::from_slice(&data[head_end..head_end + length]).unwrap_or(Value::Null);
    (status, head, json)
}

fn assert_error_shape(what: &str, status: u16, head: &str, body: &Value, want: (u16, &str)) {
    assert_eq!(status, want.0, "{what}: {head}{body}");
    assert!(
        head.contains("content-type: application/json"),
        "{what}: {head}"
    );
    assert_eq!(body["error"]["code"], want.1, "{what}: {body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{what}: {body}"
    );
}

async fn malformed_forms_get_the_error_shape(backend: Backend) {
    let server = TestServer::start_local(backend, &[]).await;
    let (ann, _, _, conv) = pair(&server).await;
    let raw = Raw::new(&server).as_user(&ann);
    let voice = format!("/api/conversations/{conv}/voice");
    // (what, method, path, content type, body, expected status and code)
    type Case<'a> = (
        &'a str,
        Method,
        &'a str,
        Option<&'a str>,
        &'a [u8],
        (u16, &'a str),
    );
    let cases: [Case; 5] = [
        (
            "not a form",
            Method::POST,
            &voice,
            Some("text/plain"),
            b"hello",
            (415, "unsupported_media_type"),
        ),
        (
            "no content type",
            Method::PUT,
            "/api/me/avatar",
            None,
            b"hello",
            (415, "unsupported_media_type"),
        ),
        (
            "form without a boundary",
            Method::POST,
            &voice,
            Some("multipart/form-data"),
            b"--x\r\n",
            (400, "invalid_multipart"),
        ),
        (
            "form with a broken part",
            Method::POST,
            &voice,
            Some("multipart/form-data; boundary=XyZ"),
            b"--XyZ\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\nRIFF",
            (400, "invalid_multipart"),
        ),
        (
            "avatar form that is all garbage",
            Method::PUT,
            "/api/me/avatar",
            Some("multipart/form-data; boundary=XyZ"),
            b"\x00\x01garbage\r\n\r\n",
            (400, "invalid_multipart"),
        ),
    ];
    for (what, method, path, content_type, body, want) in cases {
        let resp = raw.send(method, path, content_type, body.to_vec()).await;
        assert_eq!(resp.status, want.0, "{what}: {}", resp.body);
        let answered_as = resp
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        assert!(
            answered_as.starts_with("application/json"),
            "{what}: {answered_as:?}"
        );
        resp.expect_error(want.0, want.1);
    }
    assert_eq!(temp_count(&server), 0);
}

/// Every message of a conversation, read page by page through `chatapp-client`.
async fn whole_history(api: &Api, conversation: i64) -> Vec<chatapp_protocol::Message> {
    let mut all = Vec::new();
    let mut before = None;
    loop {
        let page = api
            .history(conversation, before, Some(100))
            .await
            .expect("history");
        before = page.messages.first().map(|m| m.seq);
        let mut older = page.messages;
        older.append(&mut all);
        all = older;
        if !page.has_more {
            return all;
        }
    }
}

/// Waits until `done` holds, for at most [`MUST_END_WITHIN`].
async fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + MUST_END_WITHIN;
    while !done() {
        assert!(
            Instant::now() < deadline,
            "not within {MUST_END_WITHIN:?}: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Reads until the server closes the connection; `true` if it did within the bound.
async fn closed_by_server(tcp: &mut (impl AsyncReadExt + Unpin)) -> bool {
    let closed = async {
        let mut buf = [0u8; 4096];
        loop {
            match tcp.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(MUST_END_WITHIN, closed).await.is_ok()
}

async fn slow_headers_are_disconnected(backend: Backend) {
    let server = TestServer::start_with(backend, &["--header-timeout-secs", "1"]).await;
    let tcp = TcpStream::connect(&server.addr).await.expect("connect");
    let (mut read, mut write) = tcp.into_split();
    let started = Instant::now();
    // One header byte every 100 ms, for as long as the server listens.
    let trickle = tokio::spawn(async move {
        if write
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            .await
            .is_err()
        {
            return;
        }
        for byte in b"X-Slow: ".iter().chain([b'a'; 10_000].iter()).cycle() {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if write.write_all(&[*byte]).await.is_err() {
                return;
            }
        }
    });
    let mut answer = Vec::new();
    let closed = tokio::time::timeout(MUST_END_WITHIN, read.read_to_end(&mut answer)).await;
    trickle.abort();
    let _ = trickle.await;
    assert!(
        closed.is_ok(),
        "a client sending headers at 10 bytes/s is still connected after {MUST_END_WITHIN:?}"
    );
    assert!(started.elapsed() >= Duration::from_millis(900));
    assert!(
        !String::from_utf8_lossy(&answer).contains(" 200 "),
        "{answer:?}"
    );
    // Clients that send their requests normally are served as before.
    server.api().health().await.expect("healthz");
}

/// Starts a voice upload over a raw connection: the request head and the first `sent`
/// bytes of a multipart body that would be `total` bytes long; waits until the server is
/// writing the upload to a temporary file.
async fn start_upload(server: &TestServer, token: &str, conv: i64, sent: usize) -> TcpStream {
    let total = 1024 * 1024;
    let head = format!(
        "POST /api/conversations/{conv}/voice HTTP/1.1\r\nHost: {}\r\n\
         Authorization: Bearer {token}\r\n\
         Content-Type: multipart/form-data; boundary=XyZ\r\nContent-Length: {total}\r\n\r\n",
        server.addr
    );
    let mut body =
        b"--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"v.wav\"\r\n\
                     Content-Type: audio/wav\r\n\r\n"
            .to_vec();
    body.extend_from_slice(&wav(sent));
    let mut tcp = TcpStream::connect(&server.addr).await.expect("connect");
    tcp.write_all(head.as_bytes()).await.expect("head");
    tcp.write_all(&body).await.expect("body");
    eventually("the upload's temporary file exists", || {
        temp_count(server) == 1
    })
    .await;
    tcp
}

async fn stalled_upload_is_cut_off_and_its_temp_file_removed(backend: Backend) {
    let server = TestServer::start_with(
        backend,
        &[
            "--body-idle-timeout-secs",
            "1",
            "--body-timeout-secs",
            "3600",
        ],
    )
    .await;
    let (ann, _, _, conv) = pair(&server).await;
    let mut tcp = start_upload(&server, &ann.token().expect("token"), conv, 65_536).await;
    // Nothing more is sent, and the connection stays open.
    let (status, head, body) = tokio::time::timeout(MUST_END_WITHIN, read_response(&mut tcp))
        .await
        .expect("a stalled upload is answered");
    assert_error_shape(
        "stalled upload",
        status,
        &head,
        &body,
        (408, "request_timeout"),
    );
    assert_eq!(
        temp_count(&server),
        0,
        "the temporary file is gone with the answer"
    );
    assert!(closed_by_server(&mut tcp).await, "the connection is closed");
    assert_eq!(blob_count(&server), 0);
    assert!(whole_history(&ann, conv).await.is_empty());
}

async fn trickling_upload_is_cut_off_at_the_deadline(backend: Backend) {
    let server = TestServer::start_with(
        backend,
        &[
            "--body-idle-timeout-secs",
            "3600",
            "--body-timeout-secs",
            "2",
        ],
    )
    .await;
    let (ann, _, _, conv) = pair(&server).await;
    let tcp = start_upload(&server, &ann.token().expect("token"), conv, 4096).await;
    let (mut read, mut write) = tcp.into_split();
    // Ten bytes a second: never idle, never done.
    let trickle = tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if write.write_all(&[0]).await.is_err() {
                return;
            }
        }
    });
    let mut answer = Vec::new();
    let closed = tokio::time::timeout(MUST_END_WITHIN, read.read_to_end(&mut answer)).await;
    trickle.abort();
    let _ = trickle.await;
    assert!(
        closed.is_ok(),
        "a trickling upload is still open after {MUST_END_WITHIN:?}"
    );
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("\"request_timeout\""), "{answer}");
    assert_eq!(temp_count(&server), 0);
    assert_eq!(blob_count(&server), 0);
}

async fn abandoned_upload_leaves_no_temp_file(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (ann, _, _, conv) = pair(&server).await;
    let tcp = start_upload(&server, &ann.token().expect("token"), conv, 65_536).await;
    drop(tcp);
    eventually("the abandoned upload's temporary file is removed", || {
        temp_count(&server) == 0
    })
    .await;
    assert_eq!(blob_count(&server), 0);
    // The server is fine and takes the next upload.
    ann.upload_voice(conv, Upload::new(wav(48_044), "v.wav", "audio/wav"))
        .await
        .expect("the next upload");
}

async fn decoding_audio_is_quiet_in_the_log(backend: Backend) {
    let server = TestServer::start_capturing_log(backend, "info").await;
    let (ann, _, _, conv) = pair(&server).await;
    let dir = tempfile::tempdir().expect("dir");
    for (file, codec) in [
        ("t.m4a", &["-c:a", "aac"][..]),
        ("t.ogg", &["-c:a", "libvorbis"]),
        ("t.webm", &["-c:a", "libopus"]),
        ("t.wav", &["-c:a", "pcm_s16le", "-ac", "3"]),
    ] {
        let bytes = ffmpeg(dir.path(), file, "sine=duration=1", codec);
        ann.upload_voice(conv, Upload::new(bytes, file, "audio/wav"))
            .await
            .unwrap_or_else(|e| panic!("{file}: {e}"));
    }
    let log = server.log.lock().expect("log").clone();
    assert!(
        log.iter().any(|line| line.contains("storage ready")),
        "the log is captured at INFO: {log:?}"
    );
    let noise: Vec<_> = log.iter().filter(|l| l.contains("symphonia")).collect();
    assert!(noise.is_empty(), "decoder lines at INFO: {noise:#?}");
}
