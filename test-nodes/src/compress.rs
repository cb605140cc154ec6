//! Still-image compression of test-pattern frames (`ENCODING=jpeg` or `png`), as
//! `cv2.imencode` does in node-hub's cameras: JPEG through libjpeg-turbo with 4:2:0 chroma at
//! quality 95 (OpenCV's defaults, and what it links), PNG through the `image` crate.

use std::io::Cursor;

use image::{ExtendedColorType, ImageEncoder, codecs::png::PngEncoder};
use turbojpeg::{Compressor, Image, PixelFormat, Subsamp};

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
        match self {
            Self::Jpeg => compress_jpeg(rgb, width, height),
            Self::Png => {
                let mut out = Cursor::new(Vec::new());
                PngEncoder::new(&mut out).write_image(rgb, width, height, ExtendedColorType::Rgb8)?;
                Ok(out.into_inner())
            }
        }
    }
}

/// JPEG as `cv2.imencode(".jpg", frame)` writes it: libjpeg-turbo, 4:2:0, [`JPEG_QUALITY`].
fn compress_jpeg(rgb: &[u8], width: u32, height: u32) -> eyre::Result<Vec<u8>> {
    let (width, height) = (usize::try_from(width)?, usize::try_from(height)?);
    let image = Image { pixels: rgb, width, pitch: width * 3, height, format: PixelFormat::RGB };
    let mut compressor = Compressor::new()?;
    compressor.set_quality(i32::from(JPEG_QUALITY));
    compressor.set_subsamp(Subsamp::Sub2x2);
    Ok(compressor.compress_to_vec(image)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_start_with_their_signatures() -> eyre::Result<()> {
        let rgb = vec![100u8; 16 * 8 * 3];
        let jpeg = ImageFormat::Jpeg.compress(&rgb, 16, 8)?;
        assert!(jpeg.starts_with(&[0xFF, 0xD8]));
        let header = turbojpeg::read_header(&jpeg)?;
        assert_eq!((header.width, header.height, header.subsamp), (16, 8, Subsamp::Sub2x2), "OpenCV's layout");
        assert!(ImageFormat::Png.compress(&rgb, 16, 8)?.starts_with(b"\x89PNG"));
        assert_eq!(ImageFormat::parse(" JPG"), Some(ImageFormat::Jpeg));
        assert_eq!(ImageFormat::parse("webp"), None);
        Ok(())
    }
}
