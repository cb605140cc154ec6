//! Compressed still images (PNG, BMP, WebP, and JPEG for the benchmark) into raw frames with
//! FFmpeg's image decoders. Runs on a camera's worker thread: decoders and the scaler are not
//! `Send`, so each worker makes its own.
//!
//! FFmpeg's decoders conceal damage rather than fail (a truncated JPEG decodes with a grey
//! bottom), so the container is checked first ([`check_complete`]) and the decoders are told to
//! fail on any error they notice (`err_detect=explode`).

use std::collections::{HashMap, hash_map::Entry};

use arrow::buffer::Buffer;
use ffmpeg_next::{
    self as ff, Packet, codec,
    decoder::{self, Check},
    format::Pixel,
    frame,
    software::scaling,
};

use crate::frame::{Frame, FrameFormat, ImageCodec, ImageFrame, MAX_DIMENSION, PixelEncoding};

/// Why an image did not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The bytes end before the image does (or do not start like one).
    #[error("truncated or not a {0} image: {1}")]
    Incomplete(&'static str, &'static str),
    /// The decoder refused the bytes.
    #[error("corrupt {codec} image: {reason}")]
    Corrupt {
        /// The image format.
        codec: &'static str,
        /// What the decoder said.
        reason: String,
    },
    /// The image is larger than any camera.
    #[error("{width}x{height} image: each side must be 1..={MAX_DIMENSION}")]
    BadSize {
        /// Decoded width.
        width: u32,
        /// Decoded height.
        height: u32,
    },
    /// This FFmpeg build has no decoder for the format.
    #[error("FFmpeg has no {0} decoder")]
    NoDecoder(&'static str),
}

/// FFmpeg image decoders, one per format, made on first use.
#[derive(Default)]
pub struct FfmpegImageDecoder {
    decoders: HashMap<ImageCodec, decoder::Video>,
    /// Converts pixel formats the recorder does not take (YUV 4:2:2, palettes, 16-bit) to RGB.
    scaler: Option<((Pixel, u32, u32), scaling::Context)>,
}

impl FfmpegImageDecoder {
    /// Decodes `image` into a raw frame (RGB, RGBA, BGR, BGRA or grey, as the image holds).
    pub fn decode(&mut self, image: &ImageFrame) -> Result<Frame, DecodeError> {
        check_complete(image.codec, &image.data)?;
        let codec = image.codec;
        let corrupt = |e: ff::Error| DecodeError::Corrupt { codec: codec.name(), reason: e.to_string() };
        let decoder = self.decoder(codec)?;
        let picture = decode_one(decoder, &image.data).map_err(corrupt);
        if picture.is_err() {
            // A failed packet can leave state behind: start the next image clean.
            decoder.flush();
        }
        let picture = picture?;
        let (width, height) = (picture.width(), picture.height());
        if !(1..=MAX_DIMENSION).contains(&width) || !(1..=MAX_DIMENSION).contains(&height) {
            return Err(DecodeError::BadSize { width, height });
        }
        let (encoding, pixels) = match packed_encoding(picture.format()) {
            Some(encoding) => (encoding, packed_rows(&picture, encoding)),
            None => (PixelEncoding::Rgb8, self.convert_to_rgb(&picture).map_err(corrupt)?),
        };
        Ok(image.decoded(FrameFormat { encoding, width, height }, Buffer::from_vec(pixels)))
    }

    fn decoder(&mut self, codec: ImageCodec) -> Result<&mut decoder::Video, DecodeError> {
        match self.decoders.entry(codec) {
            Entry::Occupied(entry) => Ok(entry.into_mut()),
            Entry::Vacant(entry) => Ok(entry.insert(open_decoder(codec).ok_or(DecodeError::NoDecoder(codec.name()))?)),
        }
    }

    fn convert_to_rgb(&mut self, picture: &frame::Video) -> Result<Vec<u8>, ff::Error> {
        let key = (picture.format(), picture.width(), picture.height());
        if self.scaler.as_ref().is_none_or(|(made_for, _)| *made_for != key) {
            let (format, w, h) = key;
            // Exact size, no scaling: the flag only picks the chroma filter.
            let context = scaling::Context::get(format, w, h, Pixel::RGB24, w, h, scaling::Flags::BILINEAR)?;
            self.scaler = Some((key, context));
        }
        let mut rgb = frame::Video::empty();
        if let Some((_, scaler)) = &mut self.scaler {
            scaler.run(picture, &mut rgb)?;
        }
        Ok(packed_rows(&rgb, PixelEncoding::Rgb8))
    }
}

fn open_decoder(codec: ImageCodec) -> Option<decoder::Video> {
    let id = match codec {
        ImageCodec::Jpeg => codec::Id::MJPEG,
        ImageCodec::Png => codec::Id::PNG,
        ImageCodec::Bmp => codec::Id::BMP,
        ImageCodec::Webp => codec::Id::WEBP,
    };
    let found = decoder::find(id)?;
    let mut context = codec::context::Context::new_with_codec(found).decoder();
    context.check(Check::CRC | Check::BITSTREAM | Check::BUFFER | Check::EXPLODE);
    context.open_as(found).ok()?.video().ok()
}

fn decode_one(decoder: &mut decoder::Video, bytes: &[u8]) -> Result<frame::Video, ff::Error> {
    let mut packet = Packet::copy(bytes);
    // Every image stands alone: FFmpeg's PNG decoder treats a packet without the key flag as a
    // difference from the previous picture and adds them up.
    packet.set_flags(ff::packet::Flags::KEY);
    decoder.send_packet(&packet)?;
    let mut picture = frame::Video::empty();
    match decoder.receive_frame(&mut picture) {
        Ok(()) => Ok(picture),
        // One image in, no picture out: the decoder found nothing it could show.
        Err(ff::Error::Other { errno: ff::error::EAGAIN }) => Err(ff::Error::InvalidData),
        Err(e) => Err(e),
    }
}

/// The recorder's layout for a decoded pixel format it can take as it is.
fn packed_encoding(format: Pixel) -> Option<PixelEncoding> {
    match format {
        Pixel::RGB24 => Some(PixelEncoding::Rgb8),
        Pixel::BGR24 => Some(PixelEncoding::Bgr8),
        Pixel::RGBA => Some(PixelEncoding::Rgba8),
        Pixel::BGRA => Some(PixelEncoding::Bgra8),
        Pixel::GRAY8 => Some(PixelEncoding::Mono8),
        _ => None,
    }
}

/// The picture's rows without their stride padding.
fn packed_rows(picture: &frame::Video, encoding: PixelEncoding) -> Vec<u8> {
    let (width, height) = (picture.width(), picture.height());
    let row = encoding.byte_len(width, 1);
    let stride = picture.stride(0);
    let data = picture.data(0);
    let mut pixels = Vec::with_capacity(row * height as usize);
    for y in 0..height as usize {
        pixels.extend_from_slice(&data[y * stride..y * stride + row]);
    }
    pixels
}

/// Checks that `bytes` hold a whole image of this format, from its first to its last marker:
/// what a truncated transfer or a camera's half-written buffer lacks.
pub fn check_complete(codec: ImageCodec, bytes: &[u8]) -> Result<(), DecodeError> {
    let fail = |why| Err(DecodeError::Incomplete(codec.name(), why));
    match codec {
        ImageCodec::Jpeg => {
            if !bytes.starts_with(&[0xFF, 0xD8]) {
                return fail("no start-of-image marker");
            }
            // Some cameras pad after the end marker; 0xFF 0xD9 cannot occur inside entropy-coded
            // data (0xFF is always stuffed), so it ending the image means the image is whole.
            let end = bytes.iter().rposition(|&b| b != 0x00 && b != 0xFF).unwrap_or(0);
            if end < 3 || bytes[end] != 0xD9 || bytes[end - 1] != 0xFF {
                return fail("no end-of-image marker");
            }
        }
        ImageCodec::Png => {
            const SIGNATURE: [u8; 8] = [0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A];
            const IEND: [u8; 12] = [0, 0, 0, 0, b'I', b'E', b'N', b'D', 0xAE, 0x42, 0x60, 0x82];
            if !bytes.starts_with(&SIGNATURE) {
                return fail("no PNG signature");
            }
            if !bytes.ends_with(&IEND) {
                return fail("no IEND chunk at the end");
            }
        }
        ImageCodec::Bmp => {
            let size = bytes.get(2..6).map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]) as usize);
            if !bytes.starts_with(b"BM") {
                return fail("no BM signature");
            }
            if size.is_none_or(|size| size > bytes.len()) {
                return fail("shorter than its header says");
            }
        }
        ImageCodec::Webp => {
            let size = bytes.get(4..8).map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]) as usize);
            if !bytes.starts_with(b"RIFF") || bytes.get(8..12) != Some(b"WEBP") {
                return fail("no RIFF/WEBP header");
            }
            if size.is_none_or(|size| size.saturating_add(8) > bytes.len()) {
                return fail("shorter than its header says");
            }
        }
    }
    Ok(())
}
