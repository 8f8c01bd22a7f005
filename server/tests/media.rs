//! Voice messages, avatars and file serving, with real files made by ffmpeg's encoders,
//! on SQLite and PostgreSQL. What a client sends goes through `chatapp-client`; what it
//! does not send or show (forms without a file, hostile file names and ids, requests
//! without a session, the exact success status, the file headers other than the type
//! and range) goes in-process into the router through `support::Raw`.

mod support;

use chatapp_client::{ClientError, Upload};
use chatapp_protocol::{Me, Message, MessageKind};
use reqwest::Method;
use support::{
    Backend, Raw, Refused, TestServer, Ws,
    media::{
        blob_count, encode, ffmpeg, form, image_file, json, pair, raw_put_avatar, raw_upload,
        refused_as, typed, wav,
    },
};

on_both_backends!(
    voice_in_every_format_gets_duration_and_waveform,
    wrong_and_oversized_uploads_are_refused_and_store_nothing,
    files_are_served_to_members_with_ranges,
    orphan_files_are_removed_at_start_up,
    avatars_are_reencoded_replaced_and_removed_without_leftovers,
    speech_length_wav_shrinks_and_bad_opus_is_refused,
);

async fn voice_in_every_format_gets_duration_and_waveform(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (ann, ben, _, conv) = pair(&server).await;
    let (mut ben_ws, _) =
        Ws::connect_and_resume(&server.base, &ben.token().expect("token"), &[]).await;
    let dir = tempfile::tempdir().expect("dir");
    // Every format is decoded (Opus too, in Ogg and in WebM), measured, and stored as
    // Ogg Opus.
    let cases: [(&str, &[&str]); 8] = [
        ("tone.wav", &["-c:a", "pcm_s16le"]),
        (
            "tone-44k.wav",
            &["-c:a", "pcm_s16le", "-ar", "44100", "-ac", "2"],
        ),
        ("tone.mp3", &["-c:a", "libmp3lame", "-b:a", "64k"]),
        ("tone.ogg", &["-c:a", "libvorbis"]),
        ("tone.opus", &["-c:a", "libopus", "-f", "ogg"]),
        ("tone.m4a", &["-c:a", "aac"]),
        ("tone.webm", &["-c:a", "libopus"]),
        // As browsers record it: elements of unknown size.
        ("tone-live.webm", &["-c:a", "libopus", "-live", "1"]),
    ];
    for (file, codec) in cases {
        // Silence, then a tone: the waveform must follow.
        let bytes = ffmpeg(dir.path(), file, QUIET_THEN_LOUD, codec);
        let original = probe(dir.path(), file, &bytes);
        // The declared type and name are ignored: only the bytes count.
        let message = ann
            .upload_voice(
                conv,
                Upload::new(bytes.clone(), "voice.bin", "application/octet-stream"),
            )
            .await
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(message.kind, MessageKind::Voice, "{file}");
        let attachment = message.attachment.as_ref().expect("attachment");
        assert_eq!(attachment.mime, "audio/ogg; codecs=opus", "{file}");
        let duration = u64::try_from(attachment.duration_ms.expect("duration")).expect("ms");
        assert!(
            duration.abs_diff(original.ms) * 50 <= original.ms,
            "{file}: measured {duration} ms, ffprobe says {} ms (more than 2% apart)",
            original.ms
        );
        let waveform = &attachment.waveform;
        assert_eq!(waveform.len(), 64, "{file}");
        assert!(waveform.contains(&255), "{file}: scaled to the loudest");
        let (quiet, loud) = (&waveform[..28], &waveform[36..]);
        assert!(
            quiet.iter().all(|p| *p < 40) && loud.iter().all(|p| *p > 160),
            "{file}: low peaks for the silence, high for the tone: {waveform:?}"
        );
        // What is served is the Ogg Opus file ffprobe reads as Opus, mono, 48 kHz, as
        // long as the original (pre-skip and end trimming set).
        let stored = ann.download(&attachment.url).await.expect("download");
        assert_eq!(
            i64::try_from(stored.bytes.len()).expect("size"),
            attachment.size
        );
        assert_eq!(&stored.bytes[..4], b"OggS", "{file}");
        let kept = probe(dir.path(), "stored.opus", &stored.bytes);
        assert_eq!(
            (kept.codec.as_str(), kept.channels, kept.rate),
            ("opus", 1, 48_000),
            "{file}"
        );
        assert!(
            kept.ms.abs_diff(original.ms) * 50 <= original.ms,
            "{file}: stored {} ms, the original {} ms",
            kept.ms,
            original.ms
        );
        // Members get it live, with the attachment.
        // (As JSON: every field the server pushes is the answer's, and no other.)
        let live = ben_ws.next_of("message").await;
        assert_eq!(live["message"], json(&message), "{file}");
    }
}

/// 1.5 s of silence, then 1.5 s of a loud tone.
const QUIET_THEN_LOUD: &str = "aevalsrc='if(lt(t,1.5),0,0.8*sin(2*PI*440*t))':d=3:s=48000";

/// ffprobe's view of an audio file's first stream.
struct Probe {
    codec: String,
    channels: u64,
    rate: u64,
    /// Where its last packet ends (trimming applied), in ms.
    ms: u64,
}

/// What ffprobe says of `bytes` (written to `dir/name`).
fn probe(dir: &std::path::Path, name: &str, bytes: &[u8]) -> Probe {
    let path = dir.join(format!("probed-{name}"));
    std::fs::write(&path, bytes).expect("write");
    let out = std::process::Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "a:0"])
        .args(["-show_entries", "stream=codec_name,channels,sample_rate"])
        .args([
            "-show_entries",
            "packet=pts_time,duration_time",
            "-of",
            "json",
        ])
        .arg(&path)
        .output()
        .expect("ffprobe runs");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("ffprobe JSON");
    let stream = &v["streams"][0];
    let number = |v: &serde_json::Value| -> f64 {
        v.as_f64()
            .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
            .unwrap_or(0.0)
    };
    let end = v["packets"]
        .as_array()
        .expect("packets")
        .iter()
        .map(|p| number(&p["pts_time"]) + number(&p["duration_time"]))
        .fold(0.0, f64::max);
    Probe {
        codec: stream["codec_name"].as_str().unwrap_or_default().to_owned(),
        channels: number(&stream["channels"]) as u64,
        rate: number(&stream["sample_rate"]) as u64,
        ms: (end * 1000.0).round() as u64,
    }
}

async fn speech_length_wav_shrinks_and_bad_opus_is_refused(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (ann, _, _, conv) = pair(&server).await;
    let dir = tempfile::tempdir().expect("dir");
    // A minute at 16 kHz (1.9 MB of WAV) kept at least five times smaller.
    let wav = ffmpeg(
        dir.path(),
        "minute.wav",
        "sine=frequency=300:duration=60:sample_rate=16000",
        &["-c:a", "pcm_s16le"],
    );
    let message = ann
        .upload_voice(conv, Upload::wav(wav.clone()))
        .await
        .expect("a minute");
    let kept = message.attachment.expect("attachment");
    let ratio = wav.len() as f64 / kept.size as f64;
    println!(
        "60 s at 16 kHz: {} bytes of WAV kept as {} bytes of Opus ({ratio:.1}x)",
        wav.len(),
        kept.size
    );
    assert!(ratio >= 5.0, "only {ratio:.1} times smaller");
    assert_eq!(kept.duration_ms, Some(60_000));

    // Opus streams broken in each place: refused with 415, nothing stored, no panic.
    let good = encode(dir.path(), "good.opus", &["-c:a", "libopus", "-f", "ogg"]);
    let files_before = blob_count(&server);
    let mut head = ogg::PacketReader::new(std::io::Cursor::new(good.clone()));
    let opus_head = head.read_packet_expected().expect("OpusHead").data;
    let opus_tags = head.read_packet_expected().expect("OpusTags").data;
    let mut bad_version = opus_head.clone();
    bad_version[8] = 0xff;
    let mut no_channels = opus_head.clone();
    no_channels[9] = 0;
    // A code-3 packet that says it holds no frames: invalid for every decoder.
    let invalid_packets: Vec<Vec<u8>> = vec![vec![0x03, 0x00]; 150];
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("cut in its first page", good[..40].to_vec()),
        ("cut after its headers", {
            let end = ogg_after_headers(&good);
            good[..end].to_vec()
        }),
        (
            "every audio packet invalid",
            ogg_of(&[opus_head.clone(), opus_tags.clone()], &invalid_packets),
        ),
        (
            "an OpusHead of version 255",
            ogg_of(
                &[bad_version, opus_tags.clone()],
                &vec![vec![0xfc, 0xff, 0xfe]; 10],
            ),
        ),
        (
            "an OpusHead of no channels",
            ogg_of(
                &[no_channels, opus_tags.clone()],
                &vec![vec![0xfc, 0xff, 0xfe]; 10],
            ),
        ),
    ];
    for (what, bytes) in cases {
        let refused = ann
            .upload_voice(conv, Upload::new(bytes, "broken.opus", "audio/ogg"))
            .await;
        refused_as(what, refused, 415, "unsupported_media_type");
    }
    // The same stream garbled in its middle (bytes flipped; pages fail their checksum):
    // what is left is measured, or it is refused; never a panic.
    let mut garbled = good.clone();
    for b in &mut garbled[good.len() / 3..good.len() * 2 / 3] {
        *b ^= 0x5a;
    }
    match ann
        .upload_voice(conv, Upload::new(garbled, "garbled.opus", "audio/ogg"))
        .await
    {
        Ok(m) => assert!(m.attachment.expect("file").duration_ms.expect("ms") < 3000),
        Err(e) => {
            refused_as("garbled", Err::<(), _>(e), 415, "unsupported_media_type");
        }
    }
    let stored_now = blob_count(&server);
    assert!(stored_now <= files_before + 1, "refusals stored nothing");
}

/// Where the pages holding the two header packets of an Ogg Opus file end.
fn ogg_after_headers(file: &[u8]) -> usize {
    // Pages: "OggS", then at 26 the segment count and the lacing values.
    let mut at = 0;
    for _ in 0..2 {
        let segments = usize::from(file[at + 26]);
        let body: usize = file[at + 27..at + 27 + segments]
            .iter()
            .map(|b| usize::from(*b))
            .sum();
        at += 27 + segments + body;
    }
    at
}

/// An Ogg stream of `headers` (a page each) and `packets` (20 ms each), checksums right.
fn ogg_of(headers: &[Vec<u8>], packets: &[Vec<u8>]) -> Vec<u8> {
    use ogg::{PacketWriteEndInfo, PacketWriter};
    let mut writer = PacketWriter::new(std::io::Cursor::new(Vec::new()));
    for header in headers {
        writer
            .write_packet(header.clone(), 7, PacketWriteEndInfo::EndPage, 0)
            .expect("header");
    }
    for (i, packet) in packets.iter().enumerate() {
        let end = if i + 1 == packets.len() {
            PacketWriteEndInfo::EndStream
        } else {
            PacketWriteEndInfo::NormalPacket
        };
        writer
            .write_packet(packet.clone(), 7, end, 960 * (i as u64 + 1))
            .expect("packet");
    }
    writer.into_inner().into_inner()
}

async fn wrong_and_oversized_uploads_are_refused_and_store_nothing(backend: Backend) {
    let server = TestServer::start_local(backend, &[]).await;
    let (ann, _, eve, conv) = pair(&server).await;
    let raw = Raw::new(&server).as_user(&ann);
    let dir = tempfile::tempdir().expect("dir");
    let png = image_file(dir.path(), "x.png", "color=c=red:s=16x16");
    ann.upload_voice(conv, Upload::new(png, "song.mp3", "audio/mpeg"))
        .await
        .refused(415, "unsupported_media_type");
    ann.upload_voice(
        conv,
        Upload::new(
            b"just some text, honestly".to_vec(),
            "note.wav",
            "audio/wav",
        ),
    )
    .await
    .refused(415, "unsupported_media_type");
    // Right magic, broken inside.
    let mut fake = b"RIFF\x24\x00\x00\x00WAVEfmt ".to_vec();
    fake.extend_from_slice(&[0u8; 64]);
    ann.upload_voice(conv, Upload::new(fake, "x.wav", "audio/wav"))
        .await
        .refused(415, "unsupported_media_type");

    // 16 MB + 1 byte: 413 while streaming. Just under the limit: accepted.
    let limit = 16 * 1024 * 1024;
    ann.upload_voice(conv, Upload::new(wav(limit + 1), "big.wav", "audio/wav"))
        .await
        .refused(413, "payload_too_large");
    let ok = ann
        .upload_voice(
            conv,
            Upload::new(wav(limit - 1024), "almost.wav", "audio/wav"),
        )
        .await
        .expect("just under the limit");
    // 16 MB of WAV (about 3 minutes) kept as Ogg Opus: a thirtieth of it.
    let kept = ok.attachment.expect("attachment");
    assert_eq!(kept.mime, "audio/ogg; codecs=opus");
    assert!(
        kept.size < i64::try_from(limit / 20).expect("size"),
        "{} bytes kept",
        kept.size
    );

    // A path in the filename is just a name: the file is stored under a random id. (No
    // client names a file so; and `chatapp-client` shows no status: a new message is 201.)
    let traversal = raw_upload(
        &raw,
        conv,
        &wav(48_000),
        "../../../../etc/evil.wav",
        "audio/wav",
        Some("v1"),
    )
    .await
    .expect(201);
    let stored: Message = typed(traversal.clone());
    let id = &stored.attachment.as_ref().expect("attachment").id;
    assert!(id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()));
    assert!(!server.data_dir.path().join("../evil.wav").exists());
    // A retry with the same client_id returns the same message (200, not 201) and keeps
    // one file; so does a retry through the client.
    let before = blob_count(&server);
    let retry = raw_upload(
        &raw,
        conv,
        &wav(48_000),
        "again.wav",
        "audio/wav",
        Some("v1"),
    )
    .await
    .expect(200);
    assert_eq!(retry, traversal);
    let client_retry = ann
        .upload_voice(conv, Upload::wav(wav(48_000)).client_id("v1"))
        .await
        .expect("retry");
    assert_eq!(client_retry, stored);
    assert_eq!(blob_count(&server), before);

    // Not a member: 404 and nothing kept; a form without the file field (no client
    // sends one): 400.
    eve.upload_voice(conv, Upload::new(wav(48_000), "x.wav", "audio/wav"))
        .await
        .refused(404, "not_found");
    let (content_type, no_file) = form(None, Some("x"));
    raw.send(
        Method::POST,
        &format!("/api/conversations/{conv}/voice"),
        Some(&content_type),
        no_file,
    )
    .await
    .expect_error(400, "missing_file");
    // Exactly the two accepted uploads are stored: messages and files alike.
    assert_eq!(blob_count(&server), 2);
    let page = ann.history(conv, None, None).await.expect("history");
    assert_eq!(page.messages.len(), 2);
    assert!(
        std::fs::read_dir(server.data_dir.path().join("blobs/tmp"))
            .expect("tmp")
            .next()
            .is_none(),
        "no temp files left"
    );
}

async fn files_are_served_to_members_with_ranges(backend: Backend) {
    let server = TestServer::start_local(backend, &[]).await;
    let (ann, ben, eve, conv) = pair(&server).await;
    let bytes = wav(96_044);
    let message = ann
        .upload_voice(conv, Upload::new(bytes.clone(), "v.wav", "audio/wav"))
        .await
        .expect("upload");
    let attachment = message.attachment.expect("attachment");
    let url = attachment.url;
    assert_eq!(attachment.duration_ms, Some(1000));

    let full = ben.download(&url).await.expect("download");
    assert_eq!(full.status, 200);
    assert_eq!(full.content_type.as_deref(), Some("audio/ogg; codecs=opus"));
    assert_eq!(i64::try_from(full.bytes.len()).ok(), Some(attachment.size));
    let bytes = full.bytes.to_vec();
    // The headers `chatapp-client` does not show: the same request into the router.
    let h = Raw::new(&server).as_user(&ben).get(&url).await;
    assert_eq!(h.status, 200);
    let h = h.headers;
    assert_eq!(h["content-type"], "audio/ogg; codecs=opus");
    assert_eq!(h["content-length"], bytes.len().to_string().as_str());
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert!(
        h["content-disposition"]
            .to_str()
            .expect("cd")
            .starts_with("inline; filename=\"voice-")
    );
    // Kept privately for an hour, not for a year: a shared computer forgets it soon.
    assert_eq!(h["cache-control"], "private, max-age=3600");

    let part = ben
        .download_range(&url, Some("bytes=100-199"))
        .await
        .expect("range");
    assert_eq!(part.status, 206);
    assert_eq!(
        part.content_range.as_deref(),
        Some(format!("bytes 100-199/{}", bytes.len()).as_str())
    );
    assert_eq!(part.bytes.as_ref(), &bytes[100..200]);

    eve.download(&url).await.refused(404, "not_found");
    // Without a session `chatapp-client` does not ask.
    Raw::new(&server)
        .get(&url)
        .await
        .expect_error(401, "unauthorized");
    ann.download("/api/files/00000000000000000000000000000000")
        .await
        .refused(404, "not_found");
    // `chatapp-client` does not send an encoded path; the server does not follow one.
    let traversal = "/api/files/..%2F..%2Fsecret.key";
    assert!(matches!(
        ann.download(traversal).await,
        Err(ClientError::InvalidUrl { .. })
    ));
    Raw::new(&server)
        .as_user(&ann)
        .get(traversal)
        .await
        .expect_error(404, "not_found");
}

async fn orphan_files_are_removed_at_start_up(backend: Backend) {
    let mut server = TestServer::start(backend).await;
    let (ann, _, _, conv) = pair(&server).await;
    let kept = ann
        .upload_voice(conv, Upload::wav(wav(48_044)))
        .await
        .expect("upload");
    assert!(server.stop().success());
    // What a crash between writing a file and committing its row leaves behind: a file
    // in place with no row, and a half-written temporary file.
    let blobs = server.data_dir.path().join("blobs");
    let orphan = blobs.join("files/ab/ab000000000000000000000000000000");
    std::fs::create_dir_all(orphan.parent().expect("dir")).expect("dir");
    std::fs::write(&orphan, b"RIFF....").expect("orphan");
    std::fs::write(blobs.join("tmp/halfway"), b"RIF").expect("temp");
    server.restart();
    assert!(!orphan.exists(), "an orphan file is removed at start-up");
    assert!(
        !blobs.join("tmp/halfway").exists(),
        "temporary files are removed at start-up"
    );
    ann.set_base_url(&server.base).expect("address");
    let url = kept.attachment.expect("attachment").url;
    assert_eq!(
        ann.download(&url).await.expect("download").status,
        200,
        "referenced files stay"
    );
}

async fn avatars_are_reencoded_replaced_and_removed_without_leftovers(backend: Backend) {
    let server = TestServer::start_local(backend, &[]).await;
    let (ann, ben, eve, _) = pair(&server).await;
    let (mut ben_ws, _) =
        Ws::connect_and_resume(&server.base, &ben.token().expect("token"), &[]).await;
    let dir = tempfile::tempdir().expect("dir");

    // A JPEG carrying an EXIF block with a "location" in it.
    let jpeg = image_file(dir.path(), "me.jpg", "color=c=blue:s=300x200");
    let secret = b"GPS 52.5200N 13.4050E SECRET-LOCATION";
    let mut exif = vec![0xFF, 0xE1];
    exif.extend_from_slice(
        &u16::try_from(2 + 6 + secret.len())
            .expect("fits")
            .to_be_bytes(),
    );
    exif.extend_from_slice(b"Exif\0\0");
    exif.extend_from_slice(secret);
    let mut with_exif = jpeg[..2].to_vec();
    with_exif.extend_from_slice(&exif);
    with_exif.extend_from_slice(&jpeg[2..]);

    let me = ann
        .put_avatar(Upload::new(with_exif, "me.txt", "text/plain"))
        .await
        .expect("avatar");
    let url = me.avatar_url.expect("avatar_url");
    let small = me.avatar_small_url.expect("avatar_small_url");
    assert_eq!(blob_count(&server), 2);
    let pushed = ben_ws.next_of("user_updated").await;
    assert_eq!(pushed["user"]["avatar_url"], url.as_str());

    // Any signed-in user may fetch it; it is a 256 px PNG without the upload's metadata.
    let got = eve.download(&url).await.expect("download");
    assert_eq!(got.status, 200);
    assert_eq!(got.content_type.as_deref(), Some("image/png"));
    let headers = Raw::new(&server).as_user(&eve).get(&url).await;
    assert_eq!(headers.status, 200);
    assert_eq!(headers.headers["content-type"], "image/png");
    assert_eq!(headers.headers["x-content-type-options"], "nosniff");
    let png = got.bytes;
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"));
    assert_eq!(
        u32::from_be_bytes(png[16..20].try_into().expect("width")),
        256
    );
    assert!(
        !png.windows(secret.len()).any(|w| w == secret),
        "metadata stripped"
    );
    assert!(!png.windows(4).any(|w| w == b"Exif"));
    let got_small = eve.download(&small).await.expect("small");
    assert_eq!(got_small.status, 200);
    // Without a session `chatapp-client` does not ask.
    Raw::new(&server)
        .get(&url)
        .await
        .expect_error(401, "unauthorized");

    // Refused: text labelled as an image, an image type we do not take, too large.
    ann.put_avatar(Upload::new(
        b"<svg>not really</svg>".to_vec(),
        "a.png",
        "image/png",
    ))
    .await
    .refused(415, "unsupported_media_type");
    let bmp = image_file(dir.path(), "a.bmp", "color=c=red:s=8x8");
    ann.put_avatar(Upload::new(bmp, "a.png", "image/png"))
        .await
        .refused(415, "unsupported_media_type");
    ann.put_avatar(Upload::new(
        vec![0u8; 5 * 1024 * 1024 + 1],
        "big.png",
        "image/png",
    ))
    .await
    .refused(413, "payload_too_large");
    assert_eq!(blob_count(&server), 2, "refusals store nothing");
    assert_eq!(
        ann.me().await.expect("me").avatar_url.as_deref(),
        Some(url.as_str())
    );

    // Replacing deletes the old files.
    let png_in = image_file(dir.path(), "new.png", "color=c=green:s=64x128");
    let me = ann
        .put_avatar(Upload::new(png_in.clone(), "new.png", "image/png"))
        .await
        .expect("replace");
    let new_url = me.avatar_url.expect("url");
    assert_ne!(new_url, url);
    assert_eq!(blob_count(&server), 2);
    ann.download(&url).await.refused(404, "not_found");
    assert_eq!(
        ben_ws.next_of("user_updated").await["user"]["avatar_url"],
        new_url.as_str()
    );

    // Removing deletes them too.
    let me = ann.delete_avatar().await.expect("remove");
    assert!(me.avatar_url.is_none() && me.avatar_small_url.is_none());
    assert_eq!(blob_count(&server), 0);
    ann.download(&new_url).await.refused(404, "not_found");
    assert!(ben_ws.next_of("user_updated").await["user"]["avatar_url"].is_null());

    // The exact statuses, which `chatapp-client` does not show: setting and removing
    // answer 200 with `Me`.
    let raw = Raw::new(&server).as_user(&ann);
    let me: Me = typed(
        raw_put_avatar(&raw, &png_in, "new.png", "image/png")
            .await
            .expect(200),
    );
    assert!(me.avatar_url.is_some() && me.avatar_small_url.is_some());
    assert_eq!(blob_count(&server), 2);
    let me: Me = typed(raw.delete("/api/me/avatar").await.expect(200));
    assert!(me.avatar_url.is_none() && me.avatar_small_url.is_none());
    assert_eq!(blob_count(&server), 0);
}
