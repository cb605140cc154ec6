//! Still-image compression of test-pattern frames (`ENCODING=jpeg` or `png`), as
//! `cv2.imencode` does in node-hub's cameras.

use std::io::Cursor;

use image::{ExtendedColorType, ImageEncoder, codecs::jpeg::JpegEncoder, codecs::png::PngEncoder};

/// JPEG quality: high enough that the barcode reads back after decoding and re-encoding (node-hub's
/// `opencv-video-capture` uses 95 too).
pub const JPEG_QUALITY: u8 = 95;

/// A compressed still-image format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageFormat {
    /// JPEG at [`JPEG_QUALITY`].
    Jpeg,
    /// PNG (lossless).
    Png,
}

impl ImageFormat {
    /// Parses `jpeg`/`jpg`/`png` (case-insensitive).
    pub fn parse(name: &str) -> Option<Self> {
        match name.trim().to_ascii_lowercase().as_str() {
            "jpeg" | "jpg" => Some(Self::Jpeg),
            "png" => Some(Self::Png),
            _ => None,
        }
    }

    /// The `encoding` metadata value.
    pub fn name(self) -> &'static str {
        match self {
            Self::Jpeg => "jpeg",
            Self::Png => "png",
        }
    }

    /// Compresses packed RGB pixels of a `width` x `height` image.
    pub fn compress(self, rgb: &[u8], width: u32, height: u32) -> eyre::Result<Vec<u8>> {
        let mut out = Cursor::new(Vec::new());
        match self {
            Self::Jpeg => JpegEncoder::new_with_quality(&mut out, JPEG_QUALITY).write_image(
                rgb,
                width,
                height,
                ExtendedColorType::Rgb8,
            )?,
            Self::Png => PngEncoder::new(&mut out).write_image(rgb, width, height, ExtendedColorType::Rgb8)?,
        }
        Ok(out.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_start_with_their_signatures() -> eyre::Result<()> {
        let rgb = vec![100u8; 16 * 8 * 3];
        assert!(ImageFormat::Jpeg.compress(&rgb, 16, 8)?.starts_with(&[0xFF, 0xD8]));
        assert!(ImageFormat::Png.compress(&rgb, 16, 8)?.starts_with(b"\x89PNG"));
        assert_eq!(ImageFormat::parse(" JPG"), Some(ImageFormat::Jpeg));
        assert_eq!(ImageFormat::parse("webp"), None);
        Ok(())
    }
}
