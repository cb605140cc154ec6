//! The test pattern: a moving diagonal colour gradient, the frame number and elapsed time in
//! digits, now and then a moving red disc ([`crate::object`]), and a barcode strip of the frame
//! index across the top ([`crate::barcode`]) that survives lossy video compression and is read
//! back by [`decode_frame_index`].
//!
//! The gradient is muted (every channel within 64..=191), so nothing but the object is ever
//! saturated red: a colour detector finds the object and only the object.

use eyre::bail;

// The barcode is part of the pattern's contract: callers size frames and read them back here.
pub use crate::barcode::{MIN_HEIGHT, MIN_WIDTH, decode_frame_index, decode_frame_index_strided};
use crate::{
    barcode::{BarcodeGeometry, barcode_geometry, draw_barcode},
    canvas::{BLACK, Canvas, Rgb, WHITE},
    encoding::Encoding,
    font::{self, LINE_HEIGHT},
    object::{DEFAULT_OBJECT_PERIOD, OBJECT_COLOUR, object_at},
};

/// Largest frame width or height accepted.
pub const MAX_DIMENSION: u32 = 8192;

/// A checked frame size and encoding: every test-pattern frame of one run has this format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameFormat {
    width: u32,
    height: u32,
    encoding: Encoding,
}

impl FrameFormat {
    /// A format, if the size is within [`MIN_WIDTH`]/[`MIN_HEIGHT`] and [`MAX_DIMENSION`].
    pub fn new(width: u32, height: u32, encoding: Encoding) -> eyre::Result<Self> {
        if !(MIN_WIDTH..=MAX_DIMENSION).contains(&width) || !(MIN_HEIGHT..=MAX_DIMENSION).contains(&height) {
            bail!(
                "frame size {width}x{height} is out of range: width must be \
                 {MIN_WIDTH}..={MAX_DIMENSION}, height {MIN_HEIGHT}..={MAX_DIMENSION}"
            );
        }
        Ok(Self { width, height, encoding })
    }

    /// Width in pixels.
    pub fn width(&self) -> u32 {
        self.width
    }

    /// Height in pixels.
    pub fn height(&self) -> u32 {
        self.height
    }

    /// Pixel encoding of the payload.
    pub fn encoding(&self) -> Encoding {
        self.encoding
    }

    /// Payload size of one frame in bytes.
    pub fn frame_len(&self) -> usize {
        self.encoding.frame_len(self.width as usize, self.height as usize)
    }

    /// The barcode geometry of this size (always fits: the size was checked).
    pub fn barcode(&self) -> BarcodeGeometry {
        barcode_geometry(self.width, self.height).expect("FrameFormat::new admits only sizes the barcode fits in")
    }
}

/// Draws frame number `frame_index` (0-based) taken `elapsed_millis` after the first frame, as a
/// payload of `format`'s encoding and size, with the object on its default schedule
/// ([`DEFAULT_OBJECT_PERIOD`]). The barcode holds `frame_index` modulo 2^24.
pub fn draw_frame(format: &FrameFormat, frame_index: u64, elapsed_millis: u64) -> Vec<u8> {
    draw_frame_with_object(format, frame_index, elapsed_millis, DEFAULT_OBJECT_PERIOD)
}

/// Like [`draw_frame`], with the object's schedule period `object_period` in frames (0: never
/// drawn); it is where [`object_at`] says.
pub fn draw_frame_with_object(
    format: &FrameFormat,
    frame_index: u64,
    elapsed_millis: u64,
    object_period: u64,
) -> Vec<u8> {
    let mut canvas = Canvas::new(format.width as usize, format.height as usize);
    draw_gradient(&mut canvas, frame_index);
    draw_labels(&mut canvas, format.barcode(), frame_index, elapsed_millis);
    if let Some(object) = object_at(frame_index, format.width, format.height, object_period) {
        canvas.fill_disc(object.x as usize, object.y as usize, object.w as usize, OBJECT_COLOUR);
    }
    draw_barcode(&mut canvas, format.barcode(), frame_index);
    canvas.encode(format.encoding)
}

/// Fills the canvas with a muted diagonal colour gradient that moves with the frame index.
fn draw_gradient(canvas: &mut Canvas, frame_index: u64) {
    let (width, height) = (canvas.width() as u64, canvas.height() as u64);
    let phase = frame_index.wrapping_mul(4);
    canvas.fill_with(|x, y| {
        let (x, y) = (x as u64, y as u64);
        let diagonal = x * 256 / width + y * 256 / height;
        // Halved and lifted into 64..=191: never saturated, so never mistaken for the object.
        let low_byte = |value: u64| (64 + value % 256 / 2) as u8;
        let colour: Rgb = [
            low_byte(diagonal.wrapping_add(phase)),
            low_byte(x * 255 / width),
            low_byte((512 - diagonal).wrapping_add(phase / 2)),
        ];
        colour
    });
}

/// Writes the frame number and the elapsed time below the barcode strip.
fn draw_labels(canvas: &mut Canvas, barcode: BarcodeGeometry, frame_index: u64, elapsed_millis: u64) {
    let scale = (canvas.width().min(canvas.height()) / 80).max(1);
    let x = 2 * scale;
    let first_line_y = barcode.block_height as usize + 2 * scale;
    let second_line_y = first_line_y + (LINE_HEIGHT + 1) * scale;
    let frame_label = format!("#{frame_index}");
    let time_label = format!("{}.{:03}s", elapsed_millis / 1000, elapsed_millis % 1000);
    font::draw_text(canvas, (x, first_line_y), scale, &frame_label, WHITE, BLACK);
    font::draw_text(canvas, (x, second_line_y), scale, &time_label, WHITE, BLACK);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encoding::luma_full_range;

    /// The luma plane a video decoder would give back for this payload.
    fn luma_of(payload: &[u8], format: &FrameFormat) -> Vec<u8> {
        let pixels = (format.width() * format.height()) as usize;
        let rgb =
            |chunk: &[u8], order: [usize; 3]| luma_full_range([chunk[order[0]], chunk[order[1]], chunk[order[2]]]);
        match format.encoding() {
            Encoding::Rgb8 => payload.chunks(3).map(|c| rgb(c, [0, 1, 2])).collect(),
            Encoding::Bgr8 => payload.chunks(3).map(|c| rgb(c, [2, 1, 0])).collect(),
            Encoding::Rgba8 => payload.chunks(4).map(|c| rgb(c, [0, 1, 2])).collect(),
            Encoding::Bgra8 => payload.chunks(4).map(|c| rgb(c, [2, 1, 0])).collect(),
            Encoding::Mono8 | Encoding::Yuv420 | Encoding::Nv12 => payload[..pixels].to_vec(),
        }
    }

    fn round_trip(width: u32, height: u32, encoding: Encoding, frame_index: u64) -> Option<u32> {
        let format = FrameFormat::new(width, height, encoding).expect("valid test size");
        let payload = draw_frame(&format, frame_index, 1234);
        assert_eq!(payload.len(), format.frame_len(), "{encoding} {width}x{height}");
        decode_frame_index(&luma_of(&payload, &format), width, height)
    }

    const SIZES: [(u32, u32); 5] = [(640, 480), (641, 481), (64, 48), (48, 16), (49, 17)];
    const INDICES: [u64; 6] = [0, 1, 2, 5, 0xA5_5A5A, 0xFF_FFFF];

    #[test]
    fn every_encoding_and_size_round_trips_the_frame_index() {
        for encoding in Encoding::ALL {
            for (width, height) in SIZES {
                for index in INDICES {
                    let decoded = round_trip(width, height, encoding, index);
                    assert_eq!(decoded, Some(index as u32), "{encoding} {width}x{height}");
                }
            }
        }
    }

    #[test]
    fn frame_indices_wrap_at_24_bits() {
        assert_eq!(round_trip(64, 48, Encoding::Bgr8, (1 << 24) + 7), Some(7));
    }

    #[test]
    fn payload_lengths_match_each_encoding() {
        let expected = [
            (Encoding::Bgr8, 641 * 481 * 3),
            (Encoding::Rgb8, 641 * 481 * 3),
            (Encoding::Rgba8, 641 * 481 * 4),
            (Encoding::Bgra8, 641 * 481 * 4),
            (Encoding::Mono8, 641 * 481),
            (Encoding::Yuv420, 641 * 481 + 2 * 321 * 241),
            (Encoding::Nv12, 641 * 481 + 321 * 241 * 2),
        ];
        for (encoding, len) in expected {
            let format = FrameFormat::new(641, 481, encoding).expect("valid test size");
            assert_eq!(draw_frame(&format, 3, 0).len(), len, "{encoding}");
        }
    }

    #[test]
    fn consecutive_frames_differ_outside_the_barcode() {
        let format = FrameFormat::new(64, 48, Encoding::Rgb8).expect("valid test size");
        let strip = 64 * 12 * 3;
        let first = draw_frame(&format, 0, 0);
        let second = draw_frame(&format, 1, 66);
        assert_ne!(first[strip..], second[strip..]);
    }

    #[test]
    fn strided_decode_reads_a_frame_padded_to_even_size() {
        let (width, height) = (71, 63);
        let format = FrameFormat::new(width, height, Encoding::Mono8).expect("valid test size");
        let frame = draw_frame(&format, 0x12_3456, 0);
        let (padded_width, padded_height) = (72, 64);
        let mut padded = vec![0_u8; padded_width * padded_height];
        for (row, pixels) in frame.chunks(width as usize).enumerate() {
            padded[row * padded_width..row * padded_width + pixels.len()].copy_from_slice(pixels);
        }
        let decoded = decode_frame_index_strided(&padded, padded_width, width, height);
        assert_eq!(decoded, Some(0x12_3456));
        assert_eq!(decode_frame_index_strided(&padded, 70, width, height), None);
        assert_eq!(decode_frame_index_strided(&padded[..72 * 62], 72, width, height), None);
    }

    #[test]
    fn out_of_range_sizes_are_rejected() {
        assert!(FrameFormat::new(47, 48, Encoding::Bgr8).is_err());
        assert!(FrameFormat::new(64, 15, Encoding::Bgr8).is_err());
        assert!(FrameFormat::new(MAX_DIMENSION + 1, 48, Encoding::Bgr8).is_err());
    }
}
