//! The barcode strip of the frame index across the top of every test-pattern frame: drawn by
//! [`draw_barcode`], it survives lossy video compression and is read back from the decoded video
//! by [`decode_frame_index`]. The moving object ([`crate::object`]) keeps below it.
//!
//! Barcode layout, for a `width` x `height` frame:
//! - [`BARCODE_BITS`] (24) bits of the frame index, least significant bit first, left to right,
//!   starting at x = 0, y = 0;
//! - each bit is a solid block `block_width = max(2, width / 24)` pixels wide and
//!   `block_height = max(2, min(16, height / 4))` pixels high ([`barcode_geometry`]);
//! - a set bit is white (luma 255 full range, Y 235 limited range), a clear bit black (0 / 16);
//! - the rest of the strip's rows, right of the last block, is black. The strip is drawn last, so
//!   nothing else overlaps it.

use std::ops::Range;

use crate::canvas::{BLACK, Canvas, WHITE};

/// Number of frame-index bits in the barcode; frame indices wrap modulo 2^24.
pub const BARCODE_BITS: u32 = 24;
/// Smallest frame width the barcode fits in (24 blocks of the minimum 2 pixels).
pub const MIN_WIDTH: u32 = 48;
/// Smallest frame height the pattern supports.
pub const MIN_HEIGHT: u32 = 16;
/// Luma threshold of the decoder: a block whose mean is at least this is a set bit.
pub const LUMA_THRESHOLD: u32 = 128;

/// Where the barcode blocks are: block `i` covers x in `i * block_width .. (i + 1) * block_width`
/// and y in `0 .. block_height`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BarcodeGeometry {
    /// Width of one bit's block in pixels.
    pub block_width: u32,
    /// Height of the strip (and of each block) in pixels.
    pub block_height: u32,
}

impl BarcodeGeometry {
    /// Pixel columns of bit `bit`'s block.
    fn columns(self, bit: u32) -> Range<usize> {
        let width = self.block_width as usize;
        let start = bit as usize * width;
        start..start + width
    }
}

/// The barcode geometry for a frame size, or `None` when the frame is smaller than
/// [`MIN_WIDTH`] x [`MIN_HEIGHT`] and the strip would not fit.
pub fn barcode_geometry(width: u32, height: u32) -> Option<BarcodeGeometry> {
    if width < MIN_WIDTH || height < MIN_HEIGHT {
        return None;
    }
    Some(BarcodeGeometry { block_width: (width / BARCODE_BITS).max(2), block_height: (height / 4).clamp(2, 16) })
}

/// Draws the barcode strip of `frame_index` (modulo 2^24) over whatever is at the top of the canvas.
pub fn draw_barcode(canvas: &mut Canvas, geometry: BarcodeGeometry, frame_index: u64) {
    let block_height = geometry.block_height as usize;
    canvas.fill_rect(0, 0, canvas.width(), block_height, BLACK);
    for bit in (0..BARCODE_BITS).filter(|&bit| (frame_index >> bit) & 1 == 1) {
        let columns = geometry.columns(bit);
        canvas.fill_rect(columns.start, 0, columns.len(), block_height, WHITE);
    }
}

/// Reads the frame index from the barcode of a decoded frame's luma plane (`gray`, one byte per
/// pixel, row-major, exactly `width * height` bytes, full or limited range).
///
/// Each bit is the mean luma of the central half of its block (both ways; the whole block when it
/// is 2 or 3 pixels), set when the mean is at least [`LUMA_THRESHOLD`].
/// Returns `None` when `gray` has the wrong length or the size is below the minimum.
pub fn decode_frame_index(gray: &[u8], width: u32, height: u32) -> Option<u32> {
    if gray.len() != width as usize * height as usize {
        return None;
    }
    decode_frame_index_strided(gray, width as usize, width, height)
}

/// Like [`decode_frame_index`], for a luma plane whose rows are `row_stride` bytes apart and that
/// may have extra rows: a `width` x `height` frame at the top-left of a larger picture, as when
/// an encoder padded odd sizes (decode the padded video, pass its width as `row_stride`).
/// The geometry comes from the original `width` and `height`, not the padded size.
/// Returns `None` when `row_stride < width`, `gray` is shorter than `row_stride * height`, or the
/// size is below the minimum.
pub fn decode_frame_index_strided(gray: &[u8], row_stride: usize, width: u32, height: u32) -> Option<u32> {
    let geometry = barcode_geometry(width, height)?;
    if row_stride < width as usize || gray.len() < row_stride * height as usize {
        return None;
    }
    let rows = centre(0..geometry.block_height as usize);
    let index = (0..BARCODE_BITS)
        .filter(|&bit| {
            let columns = centre(geometry.columns(bit));
            mean_luma(gray, row_stride, rows.clone(), columns) >= LUMA_THRESHOLD
        })
        .fold(0_u32, |index, bit| index | (1 << bit));
    Some(index)
}

/// The central half of a span of pixels (the whole span when it is shorter than 4).
fn centre(span: Range<usize>) -> Range<usize> {
    let margin = span.len() / 4;
    span.start + margin..span.end - margin
}

/// Mean of the `gray` samples in a rectangle.
fn mean_luma(gray: &[u8], row_stride: usize, rows: Range<usize>, columns: Range<usize>) -> u32 {
    let count = rows.len() * columns.len();
    let sum: usize = rows
        .flat_map(|row| gray[row * row_stride + columns.start..row * row_stride + columns.end].iter())
        .map(|&luma| usize::from(luma))
        .sum();
    // A mean of bytes fits in u32.
    (sum / count.max(1)) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn geometry_follows_the_documented_formula() {
        let geometry = |w, h| barcode_geometry(w, h).expect("fits");
        assert_eq!(geometry(640, 480), BarcodeGeometry { block_width: 26, block_height: 16 });
        assert_eq!(geometry(64, 48), BarcodeGeometry { block_width: 2, block_height: 12 });
        assert_eq!(geometry(48, 16), BarcodeGeometry { block_width: 2, block_height: 4 });
        assert_eq!(barcode_geometry(47, 480), None);
        assert_eq!(barcode_geometry(640, 15), None);
    }

    #[test]
    fn decode_rejects_a_wrong_length_or_a_too_small_frame() {
        assert_eq!(decode_frame_index(&[0; 100], 64, 48), None);
        assert_eq!(decode_frame_index(&[0; 40 * 40], 40, 40), None);
    }
}
