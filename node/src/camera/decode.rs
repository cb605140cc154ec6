//! Compressed camera images into raw frames, on the camera's worker thread (never on the dora
//! event loop). A frame that does not decode is skipped and counted, with one rate-limited line.
//!
//! JPEG goes through `zune-jpeg`: straight to RGB with SIMD, 1.9x faster than FFmpeg's mjpeg
//! decoder plus the swscale pass its YUV output needs (`cargo bench --bench decode`, figures in
//! docs/benchmarks.md). RGB is also what the recorder wants: HD files are BT.709 while a JPEG's
//! Y'CbCr is BT.601, so its planes could not be passed through. PNG, BMP and WebP go through
//! FFmpeg ([`FfmpegImageDecoder`]).

use std::time::Instant;

use arrow::buffer::Buffer;
use zune_core::{colorspace::ColorSpace, options::DecoderOptions};
use zune_jpeg::JpegDecoder;

use crate::{
    encode::{DecodeError, FfmpegImageDecoder, check_complete},
    frame::{CameraFrame, Frame, FrameFormat, ImageCodec, ImageFrame, MAX_DIMENSION, PixelEncoding},
    limiter::LogLimiter,
};

/// A worker's image decoders and what it has logged.
#[derive(Default)]
pub struct FrameDecoder {
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
            ImageCodec::Jpeg => decode_jpeg(&image),
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

/// Decodes a JPEG into packed RGB with `zune-jpeg`.
pub fn decode_jpeg(image: &ImageFrame) -> Result<Frame, DecodeError> {
    check_complete(ImageCodec::Jpeg, &image.data)?;
    let corrupt = |reason: String| DecodeError::Corrupt { codec: "jpeg", reason };
    let options = DecoderOptions::default()
        .jpeg_set_out_colorspace(ColorSpace::RGB)
        .set_max_width(MAX_DIMENSION as usize)
        .set_max_height(MAX_DIMENSION as usize)
        .set_strict_mode(true);
    let mut decoder = JpegDecoder::new_with_options(image.data.as_slice(), options);
    let pixels = decoder.decode().map_err(|e| corrupt(format!("{e:?}")))?;
    let (width, height) = decoder.dimensions().unwrap_or_default();
    // Bounded by the decoder's maximum, so they fit.
    let (width, height) = (width as u32, height as u32);
    let format = FrameFormat { encoding: PixelEncoding::Rgb8, width, height };
    if width == 0 || height == 0 {
        return Err(DecodeError::BadSize { width, height });
    }
    if pixels.len() != format.byte_len() {
        return Err(corrupt(format!("{} bytes decoded for {format}", pixels.len())));
    }
    Ok(image.decoded(format, Buffer::from_vec(pixels)))
}
