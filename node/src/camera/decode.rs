//! Compressed camera images into raw frames, on the camera's worker thread (never on the dora
//! event loop). A frame that does not decode is skipped and counted, with one rate-limited line.
//!
//! JPEG goes through libjpeg-turbo (Debian's `libturbojpeg0`): straight to RGB with SIMD, the
//! fastest of the decoders measured (`cargo bench --bench decode`: zune-jpeg, the `image` crate,
//! FFmpeg's mjpeg decoder plus the swscale pass its YUV output needs), with the same pixels. RGB
//! is also what the recorder wants: HD files are BT.709 while a JPEG's Y'CbCr is BT.601, so its
//! planes could not be passed through. PNG, BMP and WebP go through FFmpeg
//! ([`FfmpegImageDecoder`]).

use std::time::Instant;

use arrow::buffer::Buffer;
use turbojpeg::{Decompressor, Image, PixelFormat};

use crate::{
    encode::{DecodeError, FfmpegImageDecoder, check_complete},
    frame::{CameraFrame, Frame, FrameFormat, ImageCodec, ImageFrame, MAX_DIMENSION, PixelEncoding},
    limiter::LogLimiter,
};

/// A worker's image decoders and what it has logged.
#[derive(Default)]
pub struct FrameDecoder {
    jpeg: JpegDecoder,
    ffmpeg: FfmpegImageDecoder,
    limiter: LogLimiter,
    size_mismatch_logged: bool,
}

impl FrameDecoder {
    /// The raw frame for `frame` (decoded if it is an image), or `None` when it does not decode
    /// (logged, rate-limited; the caller counts it as skipped).
    pub fn raw(&mut self, camera: &str, frame: CameraFrame) -> Option<Frame> {
        let image = match frame {
            CameraFrame::Raw(frame) => return Some(frame),
            CameraFrame::Image(image) => image,
        };
        let decoded = match image.codec {
            ImageCodec::Jpeg => self.jpeg.decode(&image),
            _ => self.ffmpeg.decode(&image),
        };
        match decoded {
            Ok(frame) => {
                self.check_declared(camera, &image, &frame);
                Some(frame)
            }
            Err(error) => {
                if let Some(suppressed) = self.limiter.allow("decode", Instant::now()) {
                    tracing::warn!(camera, suppressed, bytes = image.data.len(), "skipped frame: {error}");
                }
                None
            }
        }
    }

    /// The image's own size is the truth; metadata that says otherwise is worth one line.
    fn check_declared(&mut self, camera: &str, image: &ImageFrame, frame: &Frame) {
        let actual = (frame.format.width, frame.format.height);
        if let Some(declared) = image.declared
            && declared != actual
            && !self.size_mismatch_logged
        {
            self.size_mismatch_logged = true;
            tracing::warn!(
                camera,
                declared = format_args!("{}x{}", declared.0, declared.1),
                decoded = format_args!("{}x{}", actual.0, actual.1),
                "the {} images' width/height metadata disagree with the images: recording the images' size (logged once)",
                image.codec.name()
            );
        }
    }
}

/// JPEG images into packed RGB with libjpeg-turbo, one decompressor kept per camera worker.
#[derive(Default)]
pub struct JpegDecoder {
    decompressor: Option<Decompressor>,
}

impl JpegDecoder {
    /// Decodes `image`. A JPEG cut off before its end, one libjpeg-turbo reports an error or a
    /// warning for (damaged data), or one of an impossible size is an error.
    pub fn decode(&mut self, image: &ImageFrame) -> Result<Frame, DecodeError> {
        check_complete(ImageCodec::Jpeg, &image.data)?;
        let corrupt = |error: turbojpeg::Error| DecodeError::Corrupt { codec: "jpeg", reason: error.to_string() };
        let decompressor = match &mut self.decompressor {
            Some(decompressor) => decompressor,
            empty => empty.insert(Decompressor::new().map_err(corrupt)?),
        };
        let jpeg = image.data.as_slice();
        let header = decompressor.read_header(jpeg).map_err(corrupt)?;
        let side = |pixels: usize| u32::try_from(pixels).ok().filter(|side| (1..=MAX_DIMENSION).contains(side));
        let (Some(width), Some(height)) = (side(header.width), side(header.height)) else {
            let clamp = |pixels: usize| u32::try_from(pixels).unwrap_or(u32::MAX);
            return Err(DecodeError::BadSize { width: clamp(header.width), height: clamp(header.height) });
        };
        let format = FrameFormat { encoding: PixelEncoding::Rgb8, width, height };
        let mut pixels = vec![0_u8; format.byte_len()];
        let output = Image {
            pixels: pixels.as_mut_slice(),
            width: header.width,
            pitch: header.width * 3,
            height: header.height,
            format: PixelFormat::RGB,
        };
        decompressor.decompress(jpeg, output).map_err(corrupt)?;
        Ok(image.decoded(format, Buffer::from_vec(pixels)))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use dora_recorder_test_nodes::{
        compress::ImageFormat,
        encoding::{Encoding, luma_full_range},
        pattern::{self, decode_frame_index},
    };
    use proptest::prelude::*;

    use super::*;

    const CAMERA: &str = "cam";

    fn pattern_rgb(width: u32, height: u32, index: u64) -> Vec<u8> {
        let format = pattern::FrameFormat::new(width, height, Encoding::Rgb8).expect("valid size");
        pattern::draw_frame(&format, index, 0)
    }

    fn image(codec: ImageCodec, bytes: Vec<u8>, declared: Option<(u32, u32)>) -> CameraFrame {
        let data = Buffer::from_vec(bytes);
        CameraFrame::Image(ImageFrame { codec, declared, sent_nanos: 5, data, ids: Arc::default() })
    }

    /// A bottom-up 24-bit BMP, the layout every BMP writer produces.
    fn bmp(rgb: &[u8], width: u32, height: u32) -> Vec<u8> {
        let row = (width as usize * 3).div_ceil(4) * 4;
        let size = 54 + row * height as usize;
        let mut out = b"BM".to_vec();
        for value in [size as u32, 0, 54, 40, width, height] {
            out.extend_from_slice(&value.to_le_bytes());
        }
        out.extend_from_slice(&[1, 0, 24, 0]);
        out.extend_from_slice(&[0; 24]);
        for y in (0..height as usize).rev() {
            let start = out.len();
            for pixel in rgb[y * width as usize * 3..][..width as usize * 3].chunks(3) {
                out.extend_from_slice(&[pixel[2], pixel[1], pixel[0]]);
            }
            out.resize(start + row, 0);
        }
        out
    }

    fn luma(frame: &Frame) -> Vec<u8> {
        assert_eq!(frame.format.encoding, PixelEncoding::Rgb8);
        frame.data.chunks(3).map(|p| luma_full_range([p[0], p[1], p[2]])).collect()
    }

    #[test]
    fn a_jpeg_decodes_to_its_own_size_close_to_the_source_with_a_readable_barcode() {
        let source = pattern_rgb(640, 480, 1234);
        let jpeg = ImageFormat::Jpeg.compress(&source, 640, 480).unwrap();
        let mut decoder = FrameDecoder::default();
        // The metadata is wrong: the image's own size wins.
        let frame = decoder.raw(CAMERA, image(ImageCodec::Jpeg, jpeg, Some((320, 240)))).expect("decodes");
        assert_eq!((frame.format.width, frame.format.height, frame.sent_nanos), (640, 480, 5));
        let error: u64 = frame.data.iter().zip(&source).map(|(a, b)| u64::from(a.abs_diff(*b))).sum();
        assert!(error as f64 / (source.len() as f64) < 3.0, "mean error {}", error as f64 / source.len() as f64);
        assert_eq!(decode_frame_index(&luma(&frame), 640, 480), Some(1234));
    }

    #[test]
    fn png_and_bmp_decode_exactly_one_after_another() {
        let mut decoder = FrameDecoder::default();
        // Several images through one decoder: each stands alone (FFmpeg's PNG decoder would add
        // an image to the previous one unless told it is a key frame).
        for (codec, index) in [(ImageCodec::Png, 7), (ImageCodec::Png, 8), (ImageCodec::Bmp, 9), (ImageCodec::Bmp, 10)]
        {
            let source = pattern_rgb(65, 49, index);
            let bytes = match codec {
                ImageCodec::Png => ImageFormat::Png.compress(&source, 65, 49).unwrap(),
                _ => bmp(&source, 65, 49),
            };
            let frame = decoder.raw(CAMERA, image(codec, bytes, None)).expect("decodes");
            let rgb = match frame.format.encoding {
                PixelEncoding::Rgb8 => frame.data.to_vec(),
                PixelEncoding::Bgr8 => frame.data.chunks(3).flat_map(|p| [p[2], p[1], p[0]]).collect(),
                other => panic!("{codec:?} decoded as {other:?}"),
            };
            assert_eq!((frame.format.width, frame.format.height), (65, 49), "{codec:?}");
            assert!(rgb == source, "{codec:?} is not lossless");
        }
    }

    #[test]
    fn every_truncation_of_a_jpeg_png_or_bmp_is_skipped() {
        let source = pattern_rgb(64, 48, 3);
        let images = [
            (ImageCodec::Jpeg, ImageFormat::Jpeg.compress(&source, 64, 48).unwrap()),
            (ImageCodec::Png, ImageFormat::Png.compress(&source, 64, 48).unwrap()),
            (ImageCodec::Bmp, bmp(&source, 64, 48)),
        ];
        let mut decoder = FrameDecoder::default();
        for (codec, bytes) in images {
            for len in (0..bytes.len()).step_by(7).chain([bytes.len() - 1]) {
                let cut = image(codec, bytes[..len].to_vec(), None);
                assert!(decoder.raw(CAMERA, cut).is_none(), "{codec:?} cut to {len} of {} bytes", bytes.len());
            }
            // The decoder is still good after all that.
            assert!(decoder.raw(CAMERA, image(codec, bytes, None)).is_some(), "{codec:?}");
        }
    }

    fn any_codec() -> impl Strategy<Value = ImageCodec> {
        prop::sample::select(vec![ImageCodec::Jpeg, ImageCodec::Png, ImageCodec::Bmp, ImageCodec::Webp])
    }

    /// Random bytes behind each format's real header, and a real image with random bytes
    /// overwritten: whatever comes out is skipped or a consistent frame, never a panic.
    fn any_damage() -> impl Strategy<Value = (ImageCodec, Vec<u8>)> {
        let source = pattern_rgb(48, 16, 9);
        let jpeg = ImageFormat::Jpeg.compress(&source, 48, 16).unwrap();
        let png = ImageFormat::Png.compress(&source, 48, 16).unwrap();
        let headed = (any_codec(), prop::collection::vec(any::<u8>(), 0..4096)).prop_map(|(codec, tail)| {
            let head: &[u8] = match codec {
                ImageCodec::Jpeg => &[0xFF, 0xD8, 0xFF, 0xE0],
                ImageCodec::Png => b"\x89PNG\r\n\x1a\n",
                ImageCodec::Bmp => b"BM",
                ImageCodec::Webp => b"RIFF\x10\0\0\0WEBPVP8 ",
            };
            (codec, [head, &tail].concat())
        });
        let flipped = (prop::bool::ANY, prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8))
            .prop_map(move |(is_jpeg, edits)| {
                let (codec, mut bytes) =
                    if is_jpeg { (ImageCodec::Jpeg, jpeg.clone()) } else { (ImageCodec::Png, png.clone()) };
                for (at, value) in edits {
                    let at = at.index(bytes.len());
                    bytes[at] = value;
                }
                (codec, bytes)
            });
        prop_oneof![headed, flipped]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]
        #[test]
        fn damaged_images_are_skipped_or_decode_consistently((codec, bytes) in any_damage()) {
            let mut decoder = FrameDecoder::default();
            if let Some(frame) = decoder.raw(CAMERA, image(codec, bytes, None)) {
                prop_assert_eq!(frame.data.len(), frame.format.byte_len());
                prop_assert!(frame.format.width >= 1 && frame.format.height >= 1);
            }
        }
    }
}
