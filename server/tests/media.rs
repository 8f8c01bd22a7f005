//! Voice messages and file serving over real HTTP, with real files made by ffmpeg's
//! encoders, on SQLite and PostgreSQL.

mod support;

use reqwest::multipart::Form;
use support::{
    Backend, Client, TestServer, Ws,
    media::{blob_count, encode, image_file, pair, put_avatar, upload, wav},
};

on_both_backends!(
    voice_in_every_format_gets_duration_and_waveform,
    wrong_and_oversized_uploads_are_refused_and_store_nothing,
    files_are_served_to_members_with_ranges,
    orphan_files_are_removed_at_start_up,
    avatars_are_reencoded_replaced_and_removed_without_leftovers,
);

async fn voice_in_every_format_gets_duration_and_waveform(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (ann, ben, _, conv) = pair(&server).await;
    let (mut ben_ws, _) =
        Ws::connect_and_resume(&server.base, ben.token.as_deref().expect("token"), &[]).await;
    let dir = tempfile::tempdir().expect("dir");
    let cases: [(&str, &[&str], &str, bool); 7] = [
        ("tone.wav", &["-c:a", "pcm_s16le"], "audio/wav", true),
        (
            "tone.mp3",
            &["-c:a", "libmp3lame", "-b:a", "64k"],
            "audio/mpeg",
            true,
        ),
        ("tone.ogg", &["-c:a", "libvorbis"], "audio/ogg", true),
        (
            "tone.opus",
            &["-c:a", "libopus", "-f", "ogg"],
            "audio/ogg",
            false,
        ),
        ("tone.m4a", &["-c:a", "aac"], "audio/mp4", true),
        ("tone.webm", &["-c:a", "libopus"], "audio/webm", false),
        // As browsers record it: elements of unknown size.
        (
            "tone-live.webm",
            &["-c:a", "libopus", "-live", "1"],
            "audio/webm",
            false,
        ),
    ];
    for (file, codec, mime, decodable) in cases {
        let bytes = encode(dir.path(), file, codec);
        // The declared type and name are ignored: only the bytes count.
        let message = upload(
            &ann,
            conv,
            bytes.clone(),
            "voice.bin",
            "application/octet-stream",
            None,
        )
        .await
        .expect(201);
        assert_eq!(message["kind"], "voice", "{file}");
        let attachment = &message["attachment"];
        assert_eq!(attachment["mime"], mime, "{file}");
        assert_eq!(attachment["size"], bytes.len(), "{file}");
        let duration = attachment["duration_ms"].as_i64().expect("duration");
        assert!(
            (2850..=3150).contains(&duration),
            "{file}: {duration} ms is not within 5% of 3 s"
        );
        let waveform = attachment["waveform"].as_array().expect("waveform");
        if decodable {
            assert_eq!(waveform.len(), 64, "{file}");
            assert!(
                waveform.iter().any(|p| p.as_u64() == Some(255)),
                "{file}: scaled to the loudest"
            );
        } else {
            assert!(
                waveform.is_empty(),
                "{file}: no decoder, no invented waveform"
            );
        }
        // Members get it live, with the attachment.
        let live = ben_ws.next_of("message").await;
        assert_eq!(live["message"], message);
    }
}

async fn wrong_and_oversized_uploads_are_refused_and_store_nothing(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (ann, _, eve, conv) = pair(&server).await;
    let dir = tempfile::tempdir().expect("dir");
    let png = image_file(dir.path(), "x.png", "color=c=red:s=16x16");
    upload(&ann, conv, png, "song.mp3", "audio/mpeg", None)
        .await
        .expect_error(415, "unsupported_media_type");
    upload(
        &ann,
        conv,
        b"just some text, honestly".to_vec(),
        "note.wav",
        "audio/wav",
        None,
    )
    .await
    .expect_error(415, "unsupported_media_type");
    // Right magic, broken inside.
    let mut fake = b"RIFF\x24\x00\x00\x00WAVEfmt ".to_vec();
    fake.extend_from_slice(&[0u8; 64]);
    upload(&ann, conv, fake, "x.wav", "audio/wav", None)
        .await
        .expect_error(415, "unsupported_media_type");

    // 16 MB + 1 byte: 413 while streaming. Just under the limit: accepted.
    let limit = 16 * 1024 * 1024;
    upload(&ann, conv, wav(limit + 1), "big.wav", "audio/wav", None)
        .await
        .expect_error(413, "payload_too_large");
    let ok = upload(
        &ann,
        conv,
        wav(limit - 1024),
        "almost.wav",
        "audio/wav",
        None,
    )
    .await
    .expect(201);
    assert_eq!(ok["attachment"]["size"], limit - 1024);

    // A path in the filename is just a name: the file is stored under a random id.
    let traversal = upload(
        &ann,
        conv,
        wav(48_000),
        "../../../../etc/evil.wav",
        "audio/wav",
        Some("v1"),
    )
    .await
    .expect(201);
    let id = traversal["attachment"]["id"].as_str().expect("id");
    assert!(id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()));
    assert!(!server.data_dir.path().join("../evil.wav").exists());
    // A retry with the same client_id returns the same message and keeps one file.
    let before = blob_count(&server);
    let retry = upload(
        &ann,
        conv,
        wav(48_000),
        "again.wav",
        "audio/wav",
        Some("v1"),
    )
    .await
    .expect(200);
    assert_eq!(retry, traversal);
    assert_eq!(blob_count(&server), before);

    // Not a member: 404 and nothing kept; missing file field: 400.
    upload(&eve, conv, wav(48_000), "x.wav", "audio/wav", None)
        .await
        .expect_error(404, "not_found");
    let no_file = Client::send(
        ann.request(
            reqwest::Method::POST,
            &format!("/api/conversations/{conv}/voice"),
        )
        .multipart(Form::new().text("client_id", "x")),
    )
    .await;
    no_file.expect_error(400, "missing_file");
    // Exactly the two accepted uploads are stored: messages and files alike.
    assert_eq!(blob_count(&server), 2);
    let page = ann
        .get(&format!("/api/conversations/{conv}/messages"))
        .await
        .expect(200);
    assert_eq!(page["messages"].as_array().expect("messages").len(), 2);
    assert!(
        std::fs::read_dir(server.data_dir.path().join("blobs/tmp"))
            .expect("tmp")
            .next()
            .is_none(),
        "no temp files left"
    );
}

async fn files_are_served_to_members_with_ranges(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (ann, ben, eve, conv) = pair(&server).await;
    let bytes = wav(96_044);
    let message = upload(&ann, conv, bytes.clone(), "v.wav", "audio/wav", None)
        .await
        .expect(201);
    let url = message["attachment"]["url"]
        .as_str()
        .expect("url")
        .to_owned();
    assert_eq!(message["attachment"]["duration_ms"], 1000);

    let full = ben
        .request(reqwest::Method::GET, &url)
        .send()
        .await
        .expect("get");
    assert_eq!(full.status(), 200);
    let h = full.headers().clone();
    assert_eq!(h["content-type"], "audio/wav");
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
    assert_eq!(full.bytes().await.expect("body").as_ref(), bytes.as_slice());

    let part = ben
        .request(reqwest::Method::GET, &url)
        .header("range", "bytes=100-199")
        .send()
        .await
        .expect("range");
    assert_eq!(part.status(), 206);
    assert_eq!(
        part.headers()["content-range"],
        format!("bytes 100-199/{}", bytes.len()).as_str()
    );
    assert_eq!(part.bytes().await.expect("body").as_ref(), &bytes[100..200]);

    eve.get(&url).await.expect_error(404, "not_found");
    server
        .client()
        .get(&url)
        .await
        .expect_error(401, "unauthorized");
    ann.get("/api/files/00000000000000000000000000000000")
        .await
        .expect_error(404, "not_found");
    ann.get("/api/files/..%2F..%2Fsecret.key")
        .await
        .expect_error(404, "not_found");
}

async fn orphan_files_are_removed_at_start_up(backend: Backend) {
    let mut server = TestServer::start(backend).await;
    let (ann, _, _, conv) = pair(&server).await;
    let kept = upload(&ann, conv, wav(48_044), "v.wav", "audio/wav", None)
        .await
        .expect(201);
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
    let ann = ann.with_base(&server.base);
    let url = kept["attachment"]["url"].as_str().expect("url");
    assert_eq!(
        Client::send(ann.request(reqwest::Method::GET, url))
            .await
            .status,
        200,
        "referenced files stay"
    );
}

async fn avatars_are_reencoded_replaced_and_removed_without_leftovers(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (ann, ben, eve, _) = pair(&server).await;
    let (mut ben_ws, _) =
        Ws::connect_and_resume(&server.base, ben.token.as_deref().expect("token"), &[]).await;
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

    let me = put_avatar(&ann, with_exif, "me.txt", "text/plain")
        .await
        .expect(200);
    let url = me["avatar_url"].as_str().expect("avatar_url").to_owned();
    let small = me["avatar_small_url"]
        .as_str()
        .expect("avatar_small_url")
        .to_owned();
    assert_eq!(blob_count(&server), 2);
    let pushed = ben_ws.next_of("user_updated").await;
    assert_eq!(pushed["user"]["avatar_url"], url.as_str());

    // Any signed-in user may fetch it; it is a 256 px PNG without the upload's metadata.
    let got = eve
        .request(reqwest::Method::GET, &url)
        .send()
        .await
        .expect("get");
    assert_eq!(got.status(), 200);
    assert_eq!(got.headers()["content-type"], "image/png");
    assert_eq!(got.headers()["x-content-type-options"], "nosniff");
    let png = got.bytes().await.expect("png");
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
    let got_small = Client::send(eve.request(reqwest::Method::GET, &small)).await;
    assert_eq!(got_small.status, 200);
    server
        .client()
        .get(&url)
        .await
        .expect_error(401, "unauthorized");

    // Refused: text labelled as an image, an image type we do not take, too large.
    put_avatar(
        &ann,
        b"<svg>not really</svg>".to_vec(),
        "a.png",
        "image/png",
    )
    .await
    .expect_error(415, "unsupported_media_type");
    let bmp = image_file(dir.path(), "a.bmp", "color=c=red:s=8x8");
    put_avatar(&ann, bmp, "a.png", "image/png")
        .await
        .expect_error(415, "unsupported_media_type");
    put_avatar(&ann, vec![0u8; 5 * 1024 * 1024 + 1], "big.png", "image/png")
        .await
        .expect_error(413, "payload_too_large");
    assert_eq!(blob_count(&server), 2, "refusals store nothing");
    assert_eq!(
        ann.get("/api/me").await.expect(200)["avatar_url"],
        url.as_str()
    );

    // Replacing deletes the old files.
    let png_in = image_file(dir.path(), "new.png", "color=c=green:s=64x128");
    let me = put_avatar(&ann, png_in, "new.png", "image/png")
        .await
        .expect(200);
    let new_url = me["avatar_url"].as_str().expect("url").to_owned();
    assert_ne!(new_url, url);
    assert_eq!(blob_count(&server), 2);
    ann.get(&url).await.expect_error(404, "not_found");
    assert_eq!(
        ben_ws.next_of("user_updated").await["user"]["avatar_url"],
        new_url.as_str()
    );

    // Removing deletes them too.
    let me = Client::send(ann.request(reqwest::Method::DELETE, "/api/me/avatar"))
        .await
        .expect(200);
    assert!(me["avatar_url"].is_null() && me["avatar_small_url"].is_null());
    assert_eq!(blob_count(&server), 0);
    ann.get(&new_url).await.expect_error(404, "not_found");
    assert!(ben_ws.next_of("user_updated").await["user"]["avatar_url"].is_null());
}
