//! Profile pictures: png, jpeg, gif or webp, checked by decoding (with limits against
//! decompression bombs), cropped to a centred square and re-encoded as PNG at 256 and
//! 64 px. Re-encoding keeps only pixels: EXIF (location included) and any other metadata
//! of the upload are gone.
//!
//! The dimensions are read from the header and checked before anything is decoded (a
//! 200 KB PNG can claim 8192×8192 pixels, 200 MB decoded), decoding runs with the image
//! crate's allocation limit, and the crop is a view, not a copy.

use std::io::Cursor;

use image::{GenericImageView, ImageFormat, imageops::FilterType};

/// Largest avatar upload.
pub const MAX_AVATAR_BYTES: usize = 5 * 1024 * 1024;
/// The two sizes kept.
pub const SIZES: [u32; 2] = [256, 64];
/// Longest side accepted, in pixels.
pub const MAX_SIDE: u32 = 8192;
/// Most pixels accepted: 24 megapixels (a 6000×4000 photo), about 96 MB decoded as RGBA.
pub const MAX_PIXELS: u64 = 24_000_000;
/// Most memory the decoder may allocate.
const MAX_DECODE_BYTES: u64 = 128 * 1024 * 1024;

/// The PNG thumbnails (256 px, 64 px) of an uploaded image, or why it is refused.
pub fn thumbnails(bytes: &[u8]) -> Result<[Vec<u8>; 2], String> {
    // The header only: refuse absurd sizes before decoding a single pixel.
    let image_in = super::image_input::check(bytes, BOUNDS)?;
    let (width, height) = (image_in.width, image_in.height);
    let image = image_in
        .reader()
        .decode()
        .map_err(|e| format!("the image does not decode: {e}"))?;
    if (image.width(), image.height()) != (width, height) {
        return Err("the image's size changed while decoding".into());
    }
    let side = width.min(height);
    let square = image.view((width - side) / 2, (height - side) / 2, side, side);
    let big = image::imageops::resize(&*square, SIZES[0], SIZES[0], FilterType::Lanczos3);
    drop(image);
    let small = image::imageops::resize(&big, SIZES[1], SIZES[1], FilterType::Lanczos3);
    let encode = |thumb: &image::RgbaImage| -> Result<Vec<u8>, String> {
        let mut out = Vec::new();
        thumb
            .write_to(&mut Cursor::new(&mut out), ImageFormat::Png)
            .map_err(|e| e.to_string())?;
        Ok(out)
    };
    Ok([encode(&big)?, encode(&small)?])
}

/// What is accepted, as [`super::image_input`] checks it.
const BOUNDS: super::image_input::Bounds = super::image_input::Bounds {
    max_side: MAX_SIDE,
    max_pixels: MAX_PIXELS,
    max_alloc: MAX_DECODE_BYTES,
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn makes_square_pngs_and_refuses_non_images() {
        let mut source = Vec::new();
        image::RgbImage::from_pixel(300, 200, image::Rgb([200, 10, 10]))
            .write_to(&mut Cursor::new(&mut source), ImageFormat::Jpeg)
            .expect("jpeg");
        let [big, small] = thumbnails(&source).expect("thumbnails");
        for (png, side) in [(big, 256), (small, 64)] {
            let decoded = image::load_from_memory_with_format(&png, ImageFormat::Png).expect("png");
            assert_eq!((decoded.width(), decoded.height()), (side, side));
        }
        assert!(thumbnails(b"hello, I am text").is_err());
        assert!(BOUNDS.check_dimensions(6000, 4000).is_ok());
        assert!(BOUNDS.check_dimensions(8192, 8192).is_err());
        assert!(BOUNDS.check_dimensions(8193, 10).is_err());
        assert!(BOUNDS.check_dimensions(0, 10).is_err());
        assert!(thumbnails(b"\x89PNG\r\n\x1a\nbroken").is_err());
    }
}
