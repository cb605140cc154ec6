//! The moving object of the test pattern: a solid, saturated red disc that appears now and then
//! on a deterministic schedule, so detectors (and the recorder's detection triggers) can be tested
//! against a known truth ([`object_at`]).
//!
//! Schedule, for a period of `period` frames (`OBJECT_PERIOD` of the camera node, default
//! [`DEFAULT_OBJECT_PERIOD`]; 0 disables the object): the object is visible in frame `index` when
//! `(index / period) % 3 == 1`, that is for one period out of every three. While visible it moves
//! in a straight line from the bottom-left corner of the picture to the top-right corner of the
//! area below the barcode strip, reaching the far end on the last visible frame.
//!
//! Geometry: the disc fills a square box of side `clamp(height / 8, 4, width / 2)` pixels; the
//! box never reaches into the barcode strip or the gap of `max(2, block_height / 2)` rows below it.

use crate::{barcode::barcode_geometry, canvas::Rgb};

/// Colour of the object: pure red.
pub const OBJECT_COLOUR: Rgb = [255, 0, 0];
/// Object period in frames when `OBJECT_PERIOD` is unset.
pub const DEFAULT_OBJECT_PERIOD: u64 = 30;
/// Smallest side of the object's box in pixels.
pub const MIN_OBJECT_SIZE: u32 = 4;

/// Where the object is in one frame: a `w` x `h` box with its top-left pixel at (`x`, `y`).
/// The disc touches all four sides of the box.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ObjectBox {
    /// Left column in pixels.
    pub x: u32,
    /// Top row in pixels.
    pub y: u32,
    /// Width in pixels.
    pub w: u32,
    /// Height in pixels (equal to `w`: the object is a disc).
    pub h: u32,
}

/// Whether the object shows in frame `frame_index` for a period of `period` frames (never when
/// `period` is 0).
pub fn object_visible(frame_index: u64, period: u64) -> bool {
    period > 0 && (frame_index / period) % 3 == 1
}

/// The object's box in frame `frame_index` of a `width` x `height` pattern, or `None` when it is
/// not shown (off-schedule, `period` 0, or a frame too small for the barcode).
pub fn object_at(frame_index: u64, width: u32, height: u32, period: u64) -> Option<ObjectBox> {
    if !object_visible(frame_index, period) {
        return None;
    }
    let strip = barcode_geometry(width, height)?.block_height;
    let size = (height / 8).clamp(MIN_OBJECT_SIZE, width / 2);
    let top = strip + (strip / 2).max(2);
    let bottom = height.saturating_sub(size).max(top);
    let right = width.saturating_sub(size);
    // Progress along the path, from 0 on the first visible frame to `span` on the last one.
    let (step, span) = (frame_index % period, (period - 1).max(1));
    let x = along(0, right, step, span);
    let y = along(bottom, top, step, span);
    Some(ObjectBox { x, y, w: size, h: size })
}

/// The point `step / span` of the way from `from` to `to` (rounded towards `from`).
fn along(from: u32, to: u32, step: u64, span: u64) -> u32 {
    let distance = u64::from(from.abs_diff(to)) * step / span;
    // `distance` is at most `|to - from|`, so it fits in u32 and stays between the ends.
    let distance = distance as u32;
    if to >= from { from + distance } else { from - distance }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_object_shows_for_one_period_in_three() {
        let shown: Vec<u64> = (0..200).filter(|&index| object_at(index, 640, 480, 30).is_some()).collect();
        let expected: Vec<u64> = (30..60).chain(120..150).collect();
        assert_eq!(shown, expected);
        assert!((0..200).all(|index| object_at(index, 640, 480, 0).is_none()));
        assert_eq!(object_at(1, 640, 480, 1), Some(ObjectBox { x: 0, y: 420, w: 60, h: 60 }));
    }

    #[test]
    fn the_object_crosses_from_bottom_left_to_top_right() {
        assert_eq!(object_at(30, 640, 480, 30), Some(ObjectBox { x: 0, y: 420, w: 60, h: 60 }));
        assert_eq!(object_at(59, 640, 480, 30), Some(ObjectBox { x: 580, y: 24, w: 60, h: 60 }));
        let middle = object_at(44, 640, 480, 30).expect("visible");
        assert!(middle.x > 200 && middle.x < 400 && middle.y > 150 && middle.y < 300, "{middle:?}");
    }

    #[test]
    fn the_object_stays_inside_the_frame_and_below_the_barcode() {
        for (width, height) in [(640, 480), (641, 481), (64, 48), (48, 16), (49, 17), (48, 8192), (8192, 16)] {
            let strip = barcode_geometry(width, height).expect("fits").block_height;
            for index in (7..14).chain(28..35) {
                let object = object_at(index, width, height, 7).expect("visible");
                assert!(object.y >= strip + 2, "{width}x{height} {object:?}");
                assert!(object.x + object.w <= width && object.y + object.h <= height, "{width}x{height} {object:?}");
            }
        }
    }
}
