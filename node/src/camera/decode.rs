//! Compressed camera images into raw frames, on the camera's worker thread (never on the dora
//! event loop). A frame that does not decode is skipped and counted, with one rate-limited line.
//!
//! JPEG goes through libjpeg-turbo (Debian's `libturbojpeg0`), the fastest of the decoders
//! measured (`cargo bench --bench decode`: zune-jpeg, the `image` crate, FFmpeg's mjpeg decoder),
//! into the JPEG's own Y'CbCr planes: no upsampling, no RGB. The encoder maps them into the
//! recording's range and matrix in one pass (`frame::ycbcr`). PNG, BMP and WebP go through
//! FFmpeg ([`FfmpegImageDecoder`]).

use std::time::Instant;

use arrow::buffer::Buffer;
use turbojpeg::{Colorspace, DecompressHeader, Decompressor, Image, PixelFormat, Subsamp, YuvImage};

use crate::{
    encode::{DecodeError, FfmpegImageDecoder, check_complete},
    frame::{
        CameraFrame, Frame, FrameFormat, ImageCodec, ImageFrame, MAX_DIMENSION, PixelEncoding, ycbcr::downsample_chroma,
    },
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

/// JPEG images with libjpeg-turbo, one decompressor kept per camera worker: Y'CbCr JPEGs into
/// their own planes ([`PixelEncoding::Yuvj420`], chroma averaged down to 4:2:0 where the JPEG has
/// more), grey ones into [`PixelEncoding::Mono8`], any other (RGB, CMYK) into packed RGB.
#[derive(Default)]
pub struct JpegDecoder {
    decompressor: Option<Decompressor>,
}

impl JpegDecoder {
    /// Decodes `image`. A JPEG cut off before its end, one libjpeg-turbo reports an error or a
    /// warning for (damaged data), or one of an impossible size is an error.
    pub fn decode(&mut self, image: &ImageFrame) -> Result<Frame, DecodeError> {
        check_complete(ImageCodec::Jpeg, &image.data)?;
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
        let planes = match header.colorspace {
            Colorspace::YCbCr => JpegPlanes::new(header.width, header.height, header.subsamp),
            _ => None,
        };
        let (encoding, pixels) = match (planes, header.subsamp) {
            (Some(planes), _) => (PixelEncoding::Yuvj420, planes.decode(decompressor, jpeg)?),
            (None, Subsamp::Gray) => {
                (PixelEncoding::Mono8, decode_packed(decompressor, jpeg, &header, PixelFormat::GRAY)?)
            }
            (None, _) => (PixelEncoding::Rgb8, decode_packed(decompressor, jpeg, &header, PixelFormat::RGB)?),
        };
        Ok(image.decoded(FrameFormat { encoding, width, height }, Buffer::from_vec(pixels)))
    }
}

fn corrupt(error: turbojpeg::Error) -> DecodeError {
    DecodeError::Corrupt { codec: "jpeg", reason: error.to_string() }
}

/// Decodes into packed pixels of `format` (RGB or grey).
fn decode_packed(
    decompressor: &mut Decompressor,
    jpeg: &[u8],
    header: &DecompressHeader,
    format: PixelFormat,
) -> Result<Vec<u8>, DecodeError> {
    let pitch = header.width * format.size();
    let mut pixels = vec![0_u8; pitch * header.height];
    let output = Image { pixels: pixels.as_mut_slice(), width: header.width, pitch, height: header.height, format };
    decompressor.decompress(jpeg, output).map_err(corrupt)?;
    Ok(pixels)
}

/// The planes libjpeg-turbo decodes a Y'CbCr JPEG into (rows unaligned): luma padded to whole
/// chroma samples, chroma at the JPEG's subsampling.
struct JpegPlanes {
    size: (usize, usize),
    subsamp: Subsamp,
    /// Luma's padded width and height.
    luma: (usize, usize),
    /// Chroma's width and height, and how much more it has than 4:2:0 across and down (1 or 2).
    chroma: (usize, usize),
    excess: (usize, usize),
}

impl JpegPlanes {
    /// The layout of a `width` x `height` JPEG at `subsamp`, or `None` for a subsampling other
    /// than 4:2:0, 4:2:2, 4:4:0 or 4:4:4 (or grey).
    fn new(width: usize, height: usize, subsamp: Subsamp) -> Option<Self> {
        // Luma samples per chroma sample, across and down.
        let (across, down) = match subsamp {
            Subsamp::Sub2x2 => (2, 2),
            Subsamp::Sub2x1 => (2, 1),
            Subsamp::Sub1x2 => (1, 2),
            Subsamp::None => (1, 1),
            _ => return None,
        };
        let luma = (width.next_multiple_of(across), height.next_multiple_of(down));
        let planes = Self {
            size: (width, height),
            subsamp,
            luma,
            chroma: (luma.0 / across, luma.1 / down),
            excess: (2 / across, 2 / down),
        };
        // The layout is libjpeg-turbo's (tjPlaneWidth/Height); trust it only if the sizes agree.
        let total = luma.0 * luma.1 + 2 * planes.chroma.0 * planes.chroma.1;
        (turbojpeg::yuv_pixels_len(width, 1, height, subsamp).ok() == Some(total)).then_some(planes)
    }

    /// Decodes `jpeg` and returns I420 planes of the image's own size (full range, BT.601):
    /// libjpeg-turbo's buffer itself when it is that already (4:2:0 of even size).
    fn decode(&self, decompressor: &mut Decompressor, jpeg: &[u8]) -> Result<Vec<u8>, DecodeError> {
        let ((width, height), (luma_width, luma_height)) = (self.size, self.luma);
        let luma_bytes = luma_width * luma_height;
        let mut decoded = vec![0_u8; luma_bytes + 2 * self.chroma.0 * self.chroma.1];
        let output = YuvImage { pixels: decoded.as_mut_slice(), width, align: 1, height, subsamp: self.subsamp };
        decompressor.decompress_to_yuv(jpeg, output).map_err(corrupt)?;
        if self.excess == (1, 1) && self.luma == self.size {
            return Ok(decoded);
        }
        let (chroma_width, chroma_height) = (width.div_ceil(2), height.div_ceil(2));
        let mut planes = vec![0_u8; width * height + 2 * chroma_width * chroma_height];
        let (luma, chroma) = planes.split_at_mut(width * height);
        for (out, row) in luma.chunks_exact_mut(width).zip(decoded.chunks_exact(luma_width)) {
            out.copy_from_slice(&row[..width]);
        }
        let source_chroma = self.chroma.0 * self.chroma.1;
        for (out, source) in
            chroma.chunks_exact_mut(chroma_width * chroma_height).zip(decoded[luma_bytes..].chunks_exact(source_chroma))
        {
            downsample_chroma(source, self.chroma, self.excess, out);
        }
        Ok(planes)
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

    /// The luma plane of a decoded JPEG (full range, BT.601, what `luma_full_range` computes).
    fn luma(frame: &Frame) -> &[u8] {
        assert_eq!(frame.format.encoding, PixelEncoding::Yuvj420);
        &frame.data[..(frame.format.width * frame.format.height) as usize]
    }

    fn mean_error(a: &[u8], b: &[u8]) -> f64 {
        assert_eq!(a.len(), b.len());
        a.iter().zip(b).map(|(a, b)| f64::from(a.abs_diff(*b))).sum::<f64>() / a.len() as f64
    }

    fn source_luma(rgb: &[u8]) -> Vec<u8> {
        rgb.chunks(3).map(|p| luma_full_range([p[0], p[1], p[2]])).collect()
    }

    /// Full-range BT.601 Cb then Cr planes of `rgb`, each sample the mean of its 2x2 block.
    fn source_chroma(rgb: &[u8], width: usize, height: usize) -> Vec<u8> {
        let (chroma_width, chroma_height) = (width.div_ceil(2), height.div_ceil(2));
        let mut planes = [Vec::new(), Vec::new()];
        for row in 0..chroma_height {
            for column in 0..chroma_width {
                let (mut sums, mut count) = ([0.0, 0.0], 0.0);
                for y in 2 * row..(2 * row + 2).min(height) {
                    for x in 2 * column..(2 * column + 2).min(width) {
                        let [r, g, b] = [0, 1, 2].map(|c| f64::from(rgb[(y * width + x) * 3 + c]));
                        sums[0] += -0.168_736 * r - 0.331_264 * g + 0.5 * b;
                        sums[1] += 0.5 * r - 0.418_688 * g - 0.081_312 * b;
                        count += 1.0;
                    }
                }
                planes[0].push((128.0 + sums[0] / count).round() as u8);
                planes[1].push((128.0 + sums[1] / count).round() as u8);
            }
        }
        planes.concat()
    }

    /// A JPEG of `rgb` at `subsamp` (OpenCV's 4:2:0, a webcam's 4:2:2, 4:4:4, grey, ...).
    fn jpeg_at(rgb: &[u8], width: usize, height: usize, subsamp: Subsamp) -> Vec<u8> {
        let mut compressor = turbojpeg::Compressor::new().unwrap();
        compressor.set_quality(95);
        compressor.set_subsamp(subsamp);
        let image = Image { pixels: rgb, width, pitch: width * 3, height, format: PixelFormat::RGB };
        compressor.compress_to_vec(image).unwrap()
    }

    #[test]
    fn a_jpeg_decodes_to_its_own_planes_and_size_close_to_the_source_with_a_readable_barcode() {
        let source = pattern_rgb(640, 480, 1234);
        let jpeg = ImageFormat::Jpeg.compress(&source, 640, 480).unwrap();
        let mut decoder = FrameDecoder::default();
        // The metadata is wrong: the image's own size wins.
        let frame = decoder.raw(CAMERA, image(ImageCodec::Jpeg, jpeg, Some((320, 240)))).expect("decodes");
        assert_eq!((frame.format.width, frame.format.height, frame.sent_nanos), (640, 480, 5));
        assert_eq!(frame.data.len(), frame.format.byte_len());
        let error = mean_error(luma(&frame), &source_luma(&source));
        assert!(error < 3.0, "mean luma error {error}");
        assert_eq!(decode_frame_index(luma(&frame), 640, 480), Some(1234));
    }

    #[test]
    fn every_chroma_subsampling_and_odd_sizes_decode_to_4_2_0_planes() {
        let mut decoder = FrameDecoder::default();
        for (width, height) in [(64, 48), (63, 47)] {
            let source = pattern_rgb(width, height, 77);
            let (w, h) = (width as usize, height as usize);
            for subsamp in [Subsamp::Sub2x2, Subsamp::Sub2x1, Subsamp::Sub1x2, Subsamp::None] {
                let jpeg = jpeg_at(&source, w, h, subsamp);
                let frame = decoder.raw(CAMERA, image(ImageCodec::Jpeg, jpeg, None)).expect("decodes");
                assert_eq!((frame.format.width, frame.format.height), (width, height), "{subsamp:?}");
                assert_eq!(frame.data.len(), frame.format.byte_len(), "{subsamp:?}");
                let error = mean_error(luma(&frame), &source_luma(&source));
                assert!(error < 3.0, "{subsamp:?} {width}x{height}: mean luma error {error}");
                let error = mean_error(&frame.data[w * h..], &source_chroma(&source, w, h));
                assert!(error < 3.0, "{subsamp:?} {width}x{height}: mean chroma error {error}");
            }
            let grey = decoder.raw(CAMERA, image(ImageCodec::Jpeg, jpeg_at(&source, w, h, Subsamp::Gray), None));
            let grey = grey.expect("a grey JPEG decodes");
            assert_eq!(grey.format.encoding, PixelEncoding::Mono8);
            assert!(mean_error(&grey.data, &source_luma(&source)) < 3.0);
        }
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
