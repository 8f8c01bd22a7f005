//! Photos in messages (`POST /api/conversations/{id}/photos`): png, jpeg, gif
//! or webp, decided by the bytes; the size read from the header and checked before a
//! pixel is decoded (at most [`MAX_SIDE`] a side and [`MAX_PIXELS`]), decoding under the
//! image crate's allocation limit; the EXIF orientation applied, then re-encoded, so that
//! nothing of the upload's metadata (EXIF location included) is kept; and a thumbnail for
//! the timeline. An animated GIF keeps its frames (and their delays) in the full copy; its
//! thumbnail is its first frame.

use std::io::Cursor;

use image::{
    AnimationDecoder, DynamicImage, Frame, ImageDecoder, ImageFormat,
    codecs::gif::{GifDecoder, GifEncoder, Repeat},
    codecs::jpeg::JpegEncoder,
    imageops::FilterType,
};

/// Largest photo upload.
pub const MAX_PHOTO_BYTES: u64 = 16 * 1024 * 1024;
/// Longest side accepted, in pixels.
pub const MAX_SIDE: u32 = 8192;
/// Most pixels accepted: 40 megapixels (about 160 MB decoded as RGBA).
pub const MAX_PIXELS: u64 = 40_000_000;
/// Most memory the decoder may allocate (one RGBA frame of [`MAX_PIXELS`], and room).
const MAX_DECODE_BYTES: u64 = 192 * 1024 * 1024;
/// Most frames of an animated GIF, and the most pixels of all its frames together.
const MAX_FRAMES: usize = 1000;
const MAX_ANIMATION_PIXELS: u64 = 100_000_000;
/// The timeline's copy fits in this square.
pub const THUMBNAIL_SIDE: u32 = 480;
/// JPEG quality of re-encoded photos and thumbnails.
const JPEG_QUALITY: u8 = 85;

/// A photo as it is kept.
#[derive(Debug)]
pub struct Processed {
    pub full: Encoded,
    pub thumbnail: Encoded,
}

/// One stored image: its bytes, type and size (after the orientation is applied).
#[derive(Debug)]
pub struct Encoded {
    pub bytes: Vec<u8>,
    pub mime: &'static str,
    pub width: u32,
    pub height: u32,
}

/// The kept copy and the thumbnail of an uploaded image, or why it is refused.
pub fn process(bytes: &[u8]) -> Result<Processed, String> {
    // The header only: refuse absurd sizes before decoding a single pixel.
    let image_in = super::image_input::check(bytes, BOUNDS)?;
    let (width, height) = (image_in.width, image_in.height);
    let format = image_in.format;
    let mut decoder = image_in
        .reader()
        .into_decoder()
        .map_err(|e| format!("not a readable image: {e}"))?;
    let orientation = decoder
        .orientation()
        .unwrap_or(image::metadata::Orientation::NoTransforms);
    let mut image = DynamicImage::from_decoder(decoder)
        .map_err(|e| format!("the image does not decode: {e}"))?;
    if (image.width(), image.height()) != (width, height) {
        return Err("the image's size changed while decoding".into());
    }
    image.apply_orientation(orientation);
    let thumbnail = thumbnail_of(&image)?;
    let full = if format == ImageFormat::Gif {
        animated_gif(bytes)?.map_or_else(|| still(&image), Ok)?
    } else {
        still(&image)?
    };
    Ok(Processed { full, thumbnail })
}

/// What is accepted, as [`super::image_input`] checks it.
const BOUNDS: super::image_input::Bounds = super::image_input::Bounds {
    max_side: MAX_SIDE,
    max_pixels: MAX_PIXELS,
    max_alloc: MAX_DECODE_BYTES,
};

/// A still image re-encoded: JPEG when it is opaque, PNG when it has transparency.
fn still(image: &DynamicImage) -> Result<Encoded, String> {
    let opaque = !image.color().has_alpha() || image.to_rgba8().pixels().all(|p| p.0[3] == 255);
    let mut bytes = Vec::new();
    let mime = if opaque {
        let rgb = image.to_rgb8();
        JpegEncoder::new_with_quality(&mut bytes, JPEG_QUALITY)
            .encode_image(&rgb)
            .map_err(|e| e.to_string())?;
        "image/jpeg"
    } else {
        image
            .write_to(&mut Cursor::new(&mut bytes), ImageFormat::Png)
            .map_err(|e| e.to_string())?;
        "image/png"
    };
    Ok(Encoded {
        bytes,
        mime,
        width: image.width(),
        height: image.height(),
    })
}

/// The timeline's copy: fits in [`THUMBNAIL_SIDE`] (never larger than the photo).
fn thumbnail_of(image: &DynamicImage) -> Result<Encoded, String> {
    let small = if image.width() > THUMBNAIL_SIDE || image.height() > THUMBNAIL_SIDE {
        image.resize(THUMBNAIL_SIDE, THUMBNAIL_SIDE, FilterType::Lanczos3)
    } else {
        image.clone()
    };
    still(&small)
}

/// An animated GIF's frames re-encoded as a GIF (pixels and delays only, looping
/// forever); `None` for a GIF of one frame (kept as a still).
fn animated_gif(bytes: &[u8]) -> Result<Option<Encoded>, String> {
    let decoder = GifDecoder::new(Cursor::new(bytes)).map_err(|e| e.to_string())?;
    let (width, height) = decoder.dimensions();
    let mut frames: Vec<Frame> = Vec::new();
    let mut pixels = 0u64;
    for frame in decoder.into_frames() {
        let frame = frame.map_err(|e| format!("the animation does not decode: {e}"))?;
        pixels += u64::from(frame.buffer().width()) * u64::from(frame.buffer().height());
        if frames.len() >= MAX_FRAMES || pixels > MAX_ANIMATION_PIXELS {
            return Err(format!(
                "an animation of more than {MAX_FRAMES} frames or {} megapixels in all",
                MAX_ANIMATION_PIXELS / 1_000_000
            ));
        }
        frames.push(frame);
    }
    if frames.len() < 2 {
        return Ok(None);
    }
    let mut out = Vec::new();
    {
        let mut encoder = GifEncoder::new(&mut out);
        encoder
            .set_repeat(Repeat::Infinite)
            .map_err(|e| e.to_string())?;
        encoder.encode_frames(frames).map_err(|e| e.to_string())?;
    }
    Ok(Some(Encoded {
        bytes: out,
        mime: "image/gif",
        width,
        height,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{Delay, Rgba, RgbaImage};

    fn jpeg(width: u32, height: u32) -> Vec<u8> {
        let mut out = Vec::new();
        let mut image = image::RgbImage::new(width, height);
        // The left half red, the right half blue: where it ends up shows the rotation.
        for (x, _, p) in image.enumerate_pixels_mut() {
            *p = if x < width / 2 {
                image::Rgb([230, 20, 20])
            } else {
                image::Rgb([20, 20, 230])
            };
        }
        JpegEncoder::new_with_quality(&mut out, 95)
            .encode_image(&image)
            .expect("jpeg");
        out
    }

    #[test]
    fn large_photos_get_a_small_thumbnail_and_transparency_stays_png() {
        let photo = process(&jpeg(2000, 1000)).expect("a photo");
        assert_eq!((photo.full.width, photo.full.height), (2000, 1000));
        assert_eq!((photo.thumbnail.width, photo.thumbnail.height), (480, 240));
        let mut png = Vec::new();
        RgbaImage::from_pixel(64, 32, Rgba([10, 200, 10, 128]))
            .write_to(&mut Cursor::new(&mut png), ImageFormat::Png)
            .expect("png");
        let photo = process(&png).expect("a png");
        assert_eq!(photo.full.mime, "image/png");
        assert_eq!((photo.thumbnail.width, photo.thumbnail.height), (64, 32));
    }

    #[test]
    fn animated_gifs_keep_their_frames() {
        let mut gif = Vec::new();
        {
            let mut encoder = GifEncoder::new(&mut gif);
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
        let photo = process(&gif).expect("a gif");
        assert_eq!(photo.full.mime, "image/gif");
        assert_eq!((photo.full.width, photo.full.height), (40, 30));
        let frames = GifDecoder::new(Cursor::new(&photo.full.bytes))
            .expect("gif")
            .into_frames()
            .collect_frames()
            .expect("frames");
        assert_eq!(frames.len(), 2, "still animated");
        assert_eq!(photo.thumbnail.mime, "image/jpeg", "the first frame, still");
    }

    #[test]
    fn bombs_and_non_images_are_refused_before_decoding() {
        // A PNG header claiming 20000×20000 pixels (400 Mpx) with almost no data.
        let mut bomb = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
        bomb.extend_from_slice(&20_000u32.to_be_bytes());
        bomb.extend_from_slice(&20_000u32.to_be_bytes());
        bomb.extend_from_slice(&[8, 6, 0, 0, 0]);
        let crc = crc32(&bomb[12..]);
        bomb.extend_from_slice(&crc.to_be_bytes());
        let err = process(&bomb).expect_err("a bomb");
        assert!(
            err.contains("too large") || err.contains("readable"),
            "{err}"
        );
        assert!(BOUNDS.check_dimensions(8000, 5000).is_ok());
        assert!(BOUNDS.check_dimensions(8192, 8192).is_err(), "67 Mpx");
        assert!(BOUNDS.check_dimensions(8193, 10).is_err());
        assert!(process(b"hello, I am text").is_err());
        assert!(process(b"BM\0\0\0\0").is_err(), "bmp is not accepted");
    }

    fn crc32(bytes: &[u8]) -> u32 {
        let mut crc = 0xFFFF_FFFFu32;
        for b in bytes {
            crc ^= u32::from(*b);
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ 0xEDB8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }
}
