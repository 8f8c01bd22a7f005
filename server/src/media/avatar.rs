//! Profile pictures: png, jpeg, gif or webp, checked by decoding (with limits against
//! decompression bombs), cropped to a centred square and re-encoded as PNG at 256 and
//! 64 px. Re-encoding keeps only pixels: EXIF (location included) and any other metadata
//! of the upload are gone.

use std::io::Cursor;

use image::{ImageFormat, ImageReader, Limits, imageops::FilterType};

/// Largest avatar upload.
pub const MAX_AVATAR_BYTES: usize = 5 * 1024 * 1024;
/// The two sizes kept.
pub const SIZES: [u32; 2] = [256, 64];

/// The PNG thumbnails (256 px, 64 px) of an uploaded image, or why it is refused.
pub fn thumbnails(bytes: &[u8]) -> Result<[Vec<u8>; 2], String> {
    let format = image::guess_format(bytes).map_err(|_| "not an image".to_owned())?;
    if !matches!(
        format,
        ImageFormat::Png | ImageFormat::Jpeg | ImageFormat::Gif | ImageFormat::WebP
    ) {
        return Err(format!(
            "{format:?} images are not accepted (png, jpeg, gif, webp)"
        ));
    }
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    let mut limits = Limits::default();
    limits.max_image_width = Some(8192);
    limits.max_image_height = Some(8192);
    limits.max_alloc = Some(256 * 1024 * 1024);
    reader.limits(limits);
    let image = reader
        .decode()
        .map_err(|e| format!("the image does not decode: {e}"))?;
    let side = image.width().min(image.height());
    if side == 0 {
        return Err("the image is empty".into());
    }
    let square = image.crop_imm(
        (image.width() - side) / 2,
        (image.height() - side) / 2,
        side,
        side,
    );
    let encode = |size: u32| -> Result<Vec<u8>, String> {
        let thumb = square
            .resize_exact(size, size, FilterType::Lanczos3)
            .to_rgba8();
        let mut out = Vec::new();
        thumb
            .write_to(&mut Cursor::new(&mut out), ImageFormat::Png)
            .map_err(|e| e.to_string())?;
        Ok(out)
    };
    Ok([encode(SIZES[0])?, encode(SIZES[1])?])
}

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
        assert!(thumbnails(b"\x89PNG\r\n\x1a\nbroken").is_err());
    }
}
