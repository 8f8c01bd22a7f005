//! Photo messages on SQLite and PostgreSQL: every accepted format re-encoded with a
//! thumbnail and both sizes in the message, EXIF (location and all) removed after its
//! orientation is applied, animations kept; what is refused before decoding (a type that
//! is not an image or not one we take, a lying header, a decompression bomb, too many
//! pixels, too many bytes) stores nothing; members only, with the voice files' headers;
//! retries, captions, replies, search and deletion. What a client sends goes through
//! `chatapp-client`; the exact statuses and headers go into the router through
//! `support::Raw`.

mod support;

use std::io::Cursor;

use chatapp_client::Upload;
use chatapp_protocol::{Attachment, Message, MessageKind};
use image::{
    AnimationDecoder, Delay, DynamicImage, Frame, ImageFormat, Rgb, RgbImage, Rgba, RgbaImage,
    codecs::gif::{GifDecoder, GifEncoder, Repeat},
    codecs::jpeg::JpegEncoder,
};
use reqwest::Method;
use support::{
    Backend, Raw, Refused, Resp, TestServer, Ws,
    media::{blob_count, form_with, json, pair, refused_as, typed},
};

on_both_backends!(
    every_format_is_kept_reencoded_with_a_thumbnail,
    wrong_huge_and_oversized_photos_are_refused_and_store_nothing,
    photos_are_for_members_with_ranges_and_captions_edit_reply_and_delete,
);

/// A JPEG whose left half is red and right half blue (where they end up shows a turn).
fn halves_jpeg(width: u32, height: u32) -> Vec<u8> {
    let image = RgbImage::from_fn(width, height, |x, _| {
        if x < width / 2 {
            Rgb([230, 20, 20])
        } else {
            Rgb([20, 20, 230])
        }
    });
    let mut out = Vec::new();
    JpegEncoder::new_with_quality(&mut out, 95)
        .encode_image(&image)
        .expect("jpeg");
    out
}

fn encoded(image: DynamicImage, format: ImageFormat) -> Vec<u8> {
    let mut out = Vec::new();
    image
        .write_to(&mut Cursor::new(&mut out), format)
        .expect("encode");
    out
}

/// A two-frame animated GIF (red, then blue), 40×30.
fn animated_gif() -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut encoder = GifEncoder::new(&mut out);
        encoder.set_repeat(Repeat::Infinite).expect("repeat");
        let frames = [Rgba([255, 0, 0, 255]), Rgba([0, 0, 255, 255])].map(|c| {
            Frame::from_parts(
                RgbaImage::from_pixel(40, 30, c),
                0,
                0,
                Delay::from_numer_denom_ms(100, 1),
            )
        });
        encoder.encode_frames(frames).expect("frames");
    }
    out
}

/// The latitude [`with_exif`] writes: 48° 51′ 24″ N, as its three EXIF rationals.
const GPS_RATIONALS: [(u32, u32); 3] = [(48, 1), (51, 1), (24, 1)];

/// `jpeg` with an APP1 EXIF segment after SOI, as a phone writes one: IFD0 with the
/// orientation and a pointer to a GPS IFD holding a latitude.
fn with_exif(jpeg: &[u8], orientation: u16) -> Vec<u8> {
    let mut tiff: Vec<u8> = b"II*\0".to_vec();
    tiff.extend_from_slice(&8u32.to_le_bytes());
    let entry = |tag: u16, kind: u16, count: u32, value: u32| {
        let mut e = Vec::new();
        e.extend_from_slice(&tag.to_le_bytes());
        e.extend_from_slice(&kind.to_le_bytes());
        e.extend_from_slice(&count.to_le_bytes());
        e.extend_from_slice(&value.to_le_bytes());
        e
    };
    let gps_at = 8 + 2 + 2 * 12 + 4;
    let rationals_at = gps_at + 2 + 2 * 12 + 4;
    tiff.extend_from_slice(&2u16.to_le_bytes());
    tiff.extend(entry(0x0112, 3, 1, u32::from(orientation)));
    tiff.extend(entry(0x8825, 4, 1, gps_at));
    tiff.extend_from_slice(&0u32.to_le_bytes());
    tiff.extend_from_slice(&2u16.to_le_bytes());
    tiff.extend(entry(0x0001, 2, 2, u32::from(b'N')));
    tiff.extend(entry(0x0002, 5, 3, rationals_at));
    tiff.extend_from_slice(&0u32.to_le_bytes());
    for (num, den) in GPS_RATIONALS {
        tiff.extend_from_slice(&num.to_le_bytes());
        tiff.extend_from_slice(&den.to_le_bytes());
    }
    let mut app1 = b"Exif\0\0".to_vec();
    app1.extend_from_slice(&tiff);
    let mut out = jpeg[..2].to_vec();
    out.extend_from_slice(&[0xFF, 0xE1]);
    out.extend_from_slice(&u16::try_from(app1.len() + 2).expect("len").to_be_bytes());
    out.extend_from_slice(&app1);
    out.extend_from_slice(&jpeg[2..]);
    out
}

fn gps_bytes() -> Vec<u8> {
    GPS_RATIONALS
        .iter()
        .flat_map(|(n, d)| n.to_le_bytes().into_iter().chain(d.to_le_bytes()))
        .collect()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// A PNG of a signature and an IHDR chunk (with its CRC) claiming `width`×`height`, and
/// no pixels: what a decompression bomb shows before its data.
fn png_header(width: u32, height: u32) -> Vec<u8> {
    let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
    png.extend_from_slice(&width.to_be_bytes());
    png.extend_from_slice(&height.to_be_bytes());
    png.extend_from_slice(&[8, 6, 0, 0, 0]);
    let crc = crc32fast::hash(&png[12..]);
    png.extend_from_slice(&crc.to_be_bytes());
    // A tiny IDAT and IEND, so that only the size is wrong.
    png.extend_from_slice(b"\0\0\0\0IDAT");
    png.extend_from_slice(&crc32fast::hash(b"IDAT").to_be_bytes());
    png.extend_from_slice(b"\0\0\0\0IEND");
    png.extend_from_slice(&crc32fast::hash(b"IEND").to_be_bytes());
    png
}

async fn raw_photo(
    raw: &Raw,
    conversation: i64,
    fields: &[(&str, &str)],
    file: Option<(&[u8], &str, &str)>,
) -> Resp {
    let (content_type, body) = form_with(fields, file);
    raw.send(
        Method::POST,
        &format!("/api/conversations/{conversation}/photos"),
        Some(&content_type),
        body,
    )
    .await
}

fn photo_of(message: &Message) -> (&Attachment, &chatapp_protocol::Thumbnail) {
    let file = message.attachment.as_ref().expect("a photo has its file");
    (file, file.thumbnail.as_ref().expect("and a thumbnail"))
}

/// How many files the blob store is writing (`blobs/tmp`): none once an upload ended.
fn temp_files(server: &chatapp_testkit::LocalServer) -> usize {
    std::fs::read_dir(server.data_dir.path().join("blobs/tmp"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// A photo sent: its name (and caption), bytes, the type it is kept as, its size.
type Case = (&'static str, Vec<u8>, &'static str, (u32, u32));

async fn every_format_is_kept_reencoded_with_a_thumbnail(backend: Backend) {
    let server = TestServer::start_local(backend, &[]).await;
    let (ann, ben, _, conv) = pair(&server).await;
    let (mut ben_ws, _) =
        Ws::connect_and_resume(&server.base, &ben.token().expect("token"), &[]).await;
    let opaque = || DynamicImage::ImageRgb8(RgbImage::from_pixel(600, 400, Rgb([40, 160, 90])));
    let clear = DynamicImage::ImageRgba8(RgbaImage::from_pixel(64, 32, Rgba([10, 200, 10, 128])));
    let still_gif = DynamicImage::ImageRgba8(RgbaImage::from_pixel(50, 70, Rgba([9, 9, 200, 255])));
    // (what is sent, as what type, what is kept, its size)
    let cases: Vec<Case> = vec![
        (
            "png",
            encoded(opaque(), ImageFormat::Png),
            "image/jpeg",
            (600, 400),
        ),
        (
            "png with transparency",
            encoded(clear, ImageFormat::Png),
            "image/png",
            (64, 32),
        ),
        ("jpeg", halves_jpeg(2000, 1000), "image/jpeg", (2000, 1000)),
        (
            "gif",
            encoded(still_gif, ImageFormat::Gif),
            "image/jpeg",
            (50, 70),
        ),
        ("animated gif", animated_gif(), "image/gif", (40, 30)),
        (
            "webp",
            encoded(opaque(), ImageFormat::WebP),
            "image/jpeg",
            (600, 400),
        ),
    ];
    for (name, bytes, kept_as, (width, height)) in cases {
        let sent = ann
            .upload_photo(
                conv,
                // The label is anything: the bytes decide.
                Upload::new(bytes, "upload.bin", "application/octet-stream").caption(name),
            )
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(sent.kind, MessageKind::Photo, "{name}");
        assert_eq!(sent.body, name);
        let (file, thumb) = photo_of(&sent);
        assert_eq!(file.mime, kept_as, "{name}");
        assert_eq!(
            (file.width, file.height),
            (Some(width), Some(height)),
            "{name}"
        );
        assert!(file.duration_ms.is_none() && file.waveform.is_empty());
        // The thumbnail fits in 480 px, keeps the shape and is never larger than the photo.
        let scale = (480.0 / f64::from(width.max(height))).min(1.0);
        let expect = |side: u32| (f64::from(side) * scale).round() as i64;
        assert!(
            (i64::from(thumb.width) - expect(width)).abs() <= 1
                && (i64::from(thumb.height) - expect(height)).abs() <= 1,
            "{name}: thumbnail {}×{}",
            thumb.width,
            thumb.height
        );
        assert_ne!(thumb.url, file.url);

        // ben hears of it live, with the same sizes, and can fetch both files.
        let pushed = ben_ws.next_of("message").await;
        assert_eq!(pushed["message"], json(&sent), "{name}");
        let full = ben.download(&file.url).await.expect("full");
        assert_eq!(full.content_type.as_deref(), Some(kept_as));
        assert_eq!(i64::try_from(full.bytes.len()).ok(), Some(file.size));
        let decoded = image::load_from_memory(&full.bytes).expect("the kept copy decodes");
        assert_eq!(
            (decoded.width(), decoded.height()),
            (width, height),
            "{name}"
        );
        let small = ben.download(&thumb.url).await.expect("thumbnail");
        assert_eq!(small.content_type.as_deref(), Some(thumb.mime.as_str()));
        assert_eq!(i64::try_from(small.bytes.len()).ok(), Some(thumb.size));
        let decoded = image::load_from_memory(&small.bytes).expect("the thumbnail decodes");
        assert_eq!(
            (decoded.width(), decoded.height()),
            (thumb.width, thumb.height)
        );
        if name == "animated gif" {
            let frames = GifDecoder::new(Cursor::new(&full.bytes))
                .expect("gif")
                .into_frames()
                .collect_frames()
                .expect("frames");
            assert_eq!(frames.len(), 2, "the animation is kept");
        }
    }

    // A phone's JPEG: sideways pixels, orientation 6 and a GPS position in its EXIF. It
    // comes back turned, with neither EXIF nor position, and a thumbnail turned too.
    let phone = with_exif(&halves_jpeg(300, 200), 6);
    assert!(contains(&phone, b"Exif") && contains(&phone, &gps_bytes()));
    let sent = ann
        .upload_photo(conv, Upload::new(phone, "IMG_0001.JPG", "image/jpeg"))
        .await
        .expect("a phone photo");
    assert_eq!(sent.body, "", "no caption");
    let (file, thumb) = photo_of(&sent);
    assert_eq!((file.width, file.height), (Some(200), Some(300)));
    assert_eq!((thumb.width, thumb.height), (200, 300));
    for url in [&file.url, &thumb.url] {
        let got = ben.download(url).await.expect("download").bytes;
        assert!(!contains(&got, b"Exif"), "no EXIF kept");
        assert!(
            !contains(&got, b"II*\0") && !contains(&got, &gps_bytes()),
            "no position"
        );
        let image = image::load_from_memory(&got).expect("decodes").to_rgb8();
        assert_eq!(image.dimensions(), (200, 300));
        let (top, bottom) = (image.get_pixel(100, 20).0, image.get_pixel(100, 280).0);
        assert!(
            top[0] > 150 && top[2] < 100,
            "red (the left) on top: {top:?}"
        );
        assert!(bottom[2] > 150 && bottom[0] < 100, "blue below: {bottom:?}");
    }

    // History gives what was sent, in order.
    let page = ben.history(conv, None, None).await.expect("history");
    assert_eq!(page.messages.len(), 7);
    assert!(page.messages.iter().all(|m| m.kind == MessageKind::Photo));
    assert_eq!(page.messages.last(), Some(&sent));
    assert_eq!(blob_count(&server), 14, "each photo and its thumbnail");
    assert_eq!(temp_files(&server), 0);
}

async fn wrong_huge_and_oversized_photos_are_refused_and_store_nothing(backend: Backend) {
    let server = TestServer::start_local(backend, &[]).await;
    let (ann, ben, eve, conv) = pair(&server).await;
    let raw = Raw::new(&server).as_user(&ann);
    let jpeg = halves_jpeg(64, 48);
    let photo = |bytes: &[u8], name: &str, mime: &str| Upload::new(bytes.to_vec(), name, mime);
    let sender = &ann;
    let send = move |upload: Upload| sender.upload_photo(conv, upload);

    // What is not an image, or not one we take, labelled as one.
    for (what, bytes) in [
        ("text", b"just text, honestly".to_vec()),
        (
            "svg",
            b"<svg xmlns=\"http://www.w3.org/2000/svg\"/>".to_vec(),
        ),
        ("bmp", [b"BM".as_slice(), &[0u8; 60]].concat()),
    ] {
        let answer = send(photo(&bytes, "a.png", "image/png")).await;
        refused_as(what, answer, 415, "unsupported_media_type");
    }
    // A header that lies: PNG's signature in front of a JPEG; a JPEG cut short.
    let liar = [&png_header(64, 48)[..8], &jpeg].concat();
    refused_as(
        "a png that is a jpeg",
        send(photo(&liar, "a.png", "image/png")).await,
        415,
        "unsupported_media_type",
    );
    refused_as(
        "a truncated jpeg",
        send(photo(&jpeg[..jpeg.len() / 2], "a.jpg", "image/jpeg")).await,
        415,
        "unsupported_media_type",
    );
    // A decompression bomb: 20000×20000 claimed by a few bytes (1.6 GB decoded); one
    // pixel too wide; 49 megapixels within 8192 a side. Refused from the header.
    for (width, height) in [(20_000, 20_000), (8193, 1), (7000, 7000)] {
        let bomb = png_header(width, height);
        assert!(bomb.len() < 100);
        let answer = raw_photo(&raw, conv, &[], Some((&bomb, "bomb.png", "image/png"))).await;
        assert_eq!(answer.status, 415, "{width}×{height}: {}", answer.body);
        assert_eq!(answer.body["error"]["code"], "unsupported_media_type");
        let message = answer.body["error"]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("pixels") || message.contains("limit"),
            "{message}"
        );
    }
    // Too many bytes: 413 while streaming, whatever they are. Empty: 400.
    refused_as(
        "16 MB + 1 byte",
        send(photo(
            &vec![0xFF; 16 * 1024 * 1024 + 1],
            "big.jpg",
            "image/jpeg",
        ))
        .await,
        413,
        "payload_too_large",
    );
    refused_as(
        "an empty file",
        send(photo(&[], "empty.png", "image/png")).await,
        400,
        "empty_file",
    );
    // A caption too long; a reply to another conversation's message.
    refused_as(
        "a long caption",
        send(photo(&jpeg, "a.jpg", "image/jpeg").caption(&"x".repeat(4001))).await,
        400,
        "body_too_long",
    );
    let ben_id = ben.me().await.expect("me").id;
    let other = eve.direct_conversation(ben_id).await.expect("direct").id;
    let elsewhere = eve
        .send_message(other, "elsewhere", None)
        .await
        .expect("sent");
    refused_as(
        "a reply elsewhere",
        send(photo(&jpeg, "a.jpg", "image/jpeg").reply_to(Some(elsewhere.id))).await,
        400,
        "invalid_reply",
    );
    // No file field (no client sends that) and a form that is not one.
    raw_photo(&raw, conv, &[("caption", "where is it")], None)
        .await
        .expect_error(400, "missing_file");
    raw.send(
        Method::POST,
        &format!("/api/conversations/{conv}/photos"),
        Some("application/json"),
        "{\"file\": \"no\"}",
    )
    .await
    .expect_error(415, "unsupported_media_type");
    // Not a member, no such conversation: 404, before the body is read.
    eve.upload_photo(conv, photo(&jpeg, "a.jpg", "image/jpeg"))
        .await
        .refused(404, "not_found");
    ann.upload_photo(999_999, photo(&jpeg, "a.jpg", "image/jpeg"))
        .await
        .refused(404, "not_found");
    assert_eq!(blob_count(&server), 0, "nothing refused was kept");
    assert_eq!(temp_files(&server), 0, "nor left half-written");
    assert!(
        ann.history(conv, None, None)
            .await
            .expect("history")
            .messages
            .is_empty()
    );

    // A retried upload (the answer was lost) is the same message, once, with one pair of
    // files: 201, then 200 through the router; the same through the client.
    let first = raw_photo(
        &raw,
        conv,
        &[("client_id", "p-1"), ("caption", "once")],
        Some((&jpeg, "a.jpg", "image/jpeg")),
    )
    .await
    .expect(201);
    let again = raw_photo(
        &raw,
        conv,
        &[("client_id", "p-1"), ("caption", "once")],
        Some((&jpeg, "a.jpg", "image/jpeg")),
    )
    .await
    .expect(200);
    assert_eq!(again, first);
    let stored: Message = typed(first);
    let by_client = ann
        .upload_photo(conv, photo(&jpeg, "a.jpg", "image/jpeg").client_id("p-1"))
        .await
        .expect("retry");
    assert_eq!(by_client, stored);
    assert_eq!(blob_count(&server), 2, "one photo and its thumbnail");
    assert_eq!(temp_files(&server), 0);
    assert_eq!(
        ann.history(conv, None, None)
            .await
            .expect("history")
            .messages
            .len(),
        1
    );
}

async fn photos_are_for_members_with_ranges_and_captions_edit_reply_and_delete(backend: Backend) {
    let server = TestServer::start_local(backend, &[]).await;
    let (ann, ben, eve, conv) = pair(&server).await;
    let (mut ben_ws, _) =
        Ws::connect_and_resume(&server.base, &ben.token().expect("token"), &[]).await;
    let sent = ann
        .upload_photo(
            conv,
            Upload::new(halves_jpeg(800, 600), "beach.jpg", "image/jpeg")
                .caption("the beach at dawn"),
        )
        .await
        .expect("photo");
    ben_ws.next_of("message").await;
    let (file, thumb) = photo_of(&sent);
    let (url, thumb_url) = (file.url.clone(), thumb.url.clone());

    // The headers of voice files: type, nosniff, inline, private for an hour, ranges.
    let h = Raw::new(&server).as_user(&ben).get(&url).await;
    assert_eq!(h.status, 200);
    let size = h.bytes.len();
    assert_eq!(i64::try_from(size).ok(), Some(file.size));
    let h = h.headers;
    assert_eq!(h["content-type"], "image/jpeg");
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["cache-control"], "private, max-age=3600");
    assert_eq!(h["accept-ranges"], "bytes");
    assert!(
        h["content-disposition"]
            .to_str()
            .expect("cd")
            .starts_with("inline; filename=\"photo-")
    );
    let whole = ben.download(&url).await.expect("whole").bytes;
    let part = ben
        .download_range(&url, Some("bytes=10-109"))
        .await
        .expect("range");
    assert_eq!(part.status, 206);
    assert_eq!(
        part.content_range.as_deref(),
        Some(format!("bytes 10-109/{size}").as_str())
    );
    assert_eq!(part.bytes.as_ref(), &whole[10..110]);
    let t = Raw::new(&server).as_user(&ben).get(&thumb_url).await;
    assert_eq!(t.status, 200);
    assert_eq!(t.headers["x-content-type-options"], "nosniff");
    assert_eq!(t.headers["cache-control"], "private, max-age=3600");

    // Not a member: 404 for both files; not signed in: 401.
    for u in [&url, &thumb_url] {
        eve.download(u).await.refused(404, "not_found");
        Raw::new(&server)
            .get(u)
            .await
            .expect_error(401, "unauthorized");
    }

    // The caption is searched, edited (live to ben), and a reply quotes it.
    let found = ben.search("dawn", None, None).await.expect("search");
    assert_eq!(found.messages, std::slice::from_ref(&sent));
    let edited = ann
        .edit_message(conv, sent.seq, "the beach at sunrise")
        .await
        .expect("caption edited");
    assert_eq!(edited.body, "the beach at sunrise");
    assert!(edited.edited_at.is_some());
    assert_eq!(edited.attachment, sent.attachment, "the photo stays");
    let updated = ben_ws.next_of("message_updated").await;
    assert_eq!(updated["message"], json(&edited));
    assert!(
        ben.search("dawn", None, None)
            .await
            .expect("search")
            .messages
            .is_empty()
    );
    let reply = ben
        .send_reply(conv, "lovely", None, sent.id)
        .await
        .expect("reply");
    let quoted = reply.reply_to.expect("a reply");
    assert_eq!(quoted.kind, MessageKind::Photo);
    assert_eq!(quoted.excerpt, "the beach at sunrise");
    // Only the sender edits; a blank caption removes the caption (of a photo, never the
    // text of a text message).
    ben.edit_message(conv, sent.seq, "mine now")
        .await
        .refused(403, "forbidden");
    ann.edit_message(conv, reply.seq, " ")
        .await
        .refused(403, "forbidden");
    let mine = ann.send_message(conv, "words", None).await.expect("text");
    ann.edit_message(conv, mine.seq, "  ")
        .await
        .refused(400, "empty_body");
    let bare = ann
        .edit_message(conv, sent.seq, " \n ")
        .await
        .expect("caption removed");
    assert_eq!(bare.body, "");
    assert_eq!(bare.attachment, sent.attachment);
    assert_eq!(
        ben_ws.next_of("message_updated").await["message"]["body"],
        ""
    );
    assert!(
        ben.search("sunrise", None, None)
            .await
            .expect("search")
            .messages
            .is_empty()
    );
    let again = ann
        .edit_message(conv, sent.seq, "")
        .await
        .expect("no change");
    assert_eq!(again, bare, "removing it again changes nothing");

    // Deleting removes the photo and its thumbnail, from the blob store too.
    assert_eq!(blob_count(&server), 2);
    let gone = ann.delete_message(conv, sent.seq).await.expect("deleted");
    assert!(gone.deleted_at.is_some() && gone.attachment.is_none() && gone.body.is_empty());
    for u in [&url, &thumb_url] {
        ben.download(u).await.refused(404, "not_found");
    }
    assert_eq!(blob_count(&server), 0);
    let updated = ben_ws.next_of("message_updated").await;
    assert!(updated["message"]["attachment"].is_null());
}
