//! An uploaded image before anything is decoded, for avatars and photos alike: its type
//! decided by its bytes (png, jpeg, gif or webp), its size read from the header and held
//! to the caller's bounds (a 200 KB PNG can claim 8192×8192 pixels, 200 MB decoded), and
//! readers that decode it under the image crate's allocation limit.

use std::io::Cursor;

use image::{ImageFormat, ImageReader, Limits};

/// How large an accepted image may be.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    /// Longest side, in pixels.
    pub max_side: u32,
    /// Most pixels in all.
    pub max_pixels: u64,
    /// Most memory the decoder may allocate.
    pub max_alloc: u64,
}

impl Bounds {
    /// Both sides 1 to `max_side` and at most `max_pixels` in all.
    pub fn check_dimensions(&self, width: u32, height: u32) -> Result<(), String> {
        if width == 0 || height == 0 {
            return Err("the image is empty".into());
        }
        if width > self.max_side
            || height > self.max_side
            || u64::from(width) * u64::from(height) > self.max_pixels
        {
            return Err(format!(
                "an image of {width}×{height} pixels is too large (at most {} px a side \
                 and {} megapixels)",
                self.max_side,
                self.max_pixels / 1_000_000
            ));
        }
        Ok(())
    }
}

/// An image whose type and header passed: ready to decode.
pub struct Checked<'a> {
    bytes: &'a [u8],
    bounds: Bounds,
    pub format: ImageFormat,
    pub width: u32,
    pub height: u32,
}

impl<'a> Checked<'a> {
    /// A reader of the image with the decoder's limits set.
    pub fn reader(&self) -> ImageReader<Cursor<&'a [u8]>> {
        let mut reader = ImageReader::with_format(Cursor::new(self.bytes), self.format);
        let mut limits = Limits::default();
        limits.max_image_width = Some(self.bounds.max_side);
        limits.max_image_height = Some(self.bounds.max_side);
        limits.max_alloc = Some(self.bounds.max_alloc);
        reader.limits(limits);
        reader
    }
}

/// `bytes` as an accepted image within `bounds`, from its header alone.
pub fn check(bytes: &[u8], bounds: Bounds) -> Result<Checked<'_>, String> {
    let format = image::guess_format(bytes).map_err(|_| "not an image".to_owned())?;
    if !matches!(
        format,
        ImageFormat::Png | ImageFormat::Jpeg | ImageFormat::Gif | ImageFormat::WebP
    ) {
        return Err(format!(
            "{format:?} images are not accepted (png, jpeg, gif, webp)"
        ));
    }
    let mut checked = Checked {
        bytes,
        bounds,
        format,
        width: 0,
        height: 0,
    };
    let (width, height) = checked
        .reader()
        .into_dimensions()
        .map_err(|e| format!("not a readable image: {e}"))?;
    bounds.check_dimensions(width, height)?;
    (checked.width, checked.height) = (width, height);
    Ok(checked)
}
