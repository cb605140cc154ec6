//! Finding saturated-red blobs in raw frames: the pixel work of the `dora-blob-detector` node
//! ([`crate::blob_node`]).
//!
//! A pixel is red when its red channel exceeds both green and blue by at least `min_redness`
//! (YUV frames are converted to RGB with BT.601 limited range first). Red pixels are grouped
//! into 8-connected blobs; each blob big enough becomes a [`Blob`] with its bounding box and fill
//! ratio. Frames wider or taller than [`MAX_SAMPLED_SIDE`] are sampled on a coarser grid (every
//! `step`-th row and column), and boxes are scaled back to full-resolution pixels.

use eyre::{bail, ensure};

use crate::encoding::{Encoding, chroma_size, rgb_from_limited_yuv};

/// Redness threshold when none is configured: red must beat green and blue by this much.
pub const DEFAULT_MIN_REDNESS: u8 = 160;
/// Blob area threshold in pixels when none is configured.
pub const DEFAULT_MIN_AREA: u64 = 64;
/// Frames are sampled with a step that keeps the sampled grid within this many samples per side.
pub const MAX_SAMPLED_SIDE: usize = 640;
/// At most this many blobs (the largest) are reported per frame.
pub const MAX_BLOBS: usize = 64;
/// Largest accepted image width or height.
pub const MAX_SIDE: usize = 1 << 16;

/// What counts as a red blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlobParams {
    /// Smallest blob area reported, in full-resolution pixels.
    pub min_area: u64,
    /// How much red must exceed both green and blue for a pixel to count as red.
    pub min_redness: u8,
}

impl Default for BlobParams {
    fn default() -> Self {
        Self { min_area: DEFAULT_MIN_AREA, min_redness: DEFAULT_MIN_REDNESS }
    }
}

/// One red blob, in full-resolution pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Blob {
    /// Left edge (first column).
    pub x1: u32,
    /// Top edge (first row).
    pub y1: u32,
    /// Right edge (one past the last column).
    pub x2: u32,
    /// Bottom edge (one past the last row).
    pub y2: u32,
    /// Red pixels in the blob (estimated from the samples when the frame is subsampled).
    pub area: u64,
    /// Share of the bounding box the blob covers, 0..=1.
    pub fill: f32,
}

/// A raw frame borrowed from a message payload.
#[derive(Debug, Clone, Copy)]
pub struct Image<'a> {
    bytes: &'a [u8],
    width: usize,
    height: usize,
    encoding: Encoding,
}

impl<'a> Image<'a> {
    /// A view of `bytes` as a `width` x `height` frame of `encoding`; fails when the size is zero
    /// or above [`MAX_SIDE`], or `bytes` is shorter than one frame (extra bytes are ignored).
    pub fn new(bytes: &'a [u8], width: usize, height: usize, encoding: Encoding) -> eyre::Result<Self> {
        if !(1..=MAX_SIDE).contains(&width) || !(1..=MAX_SIDE).contains(&height) {
            bail!("image size {width}x{height} is out of range 1..={MAX_SIDE}");
        }
        let expected = encoding.frame_len(width, height);
        ensure!(
            bytes.len() >= expected,
            "a {width}x{height} {encoding} frame needs {expected} bytes, got {}",
            bytes.len()
        );
        Ok(Self { bytes, width, height, encoding })
    }
}

/// The sampling grid over a frame: sample (`column`, `row`) is pixel (`column * step`, `row * step`).
#[derive(Debug, Clone, Copy)]
struct Grid {
    step: usize,
    columns: usize,
    rows: usize,
}

impl Grid {
    /// The grid for a frame size: the smallest step keeping both sides within [`MAX_SAMPLED_SIDE`].
    fn for_size(width: usize, height: usize) -> Self {
        let step = width.max(height).div_ceil(MAX_SAMPLED_SIDE).max(1);
        Self { step, columns: width.div_ceil(step), rows: height.div_ceil(step) }
    }
}

/// The red blobs of a frame with at least `params.min_area` pixels, largest first, at most
/// [`MAX_BLOBS`].
pub fn find_red_blobs(image: &Image, params: &BlobParams) -> Vec<Blob> {
    let grid = Grid::for_size(image.width, image.height);
    let mut mask = red_mask(image, grid, params.min_redness);
    let mut blobs: Vec<Blob> = components(&mut mask, grid)
        .into_iter()
        .map(|component| component.to_blob(grid, image.width, image.height))
        .filter(|blob| blob.area >= params.min_area)
        .collect();
    blobs.sort_by(|a, b| b.area.cmp(&a.area).then(a.y1.cmp(&b.y1)).then(a.x1.cmp(&b.x1)));
    blobs.truncate(MAX_BLOBS);
    blobs
}

/// Whether a pixel is saturated red.
fn is_red([r, g, b]: [u8; 3], min_redness: u8) -> bool {
    i32::from(r) - i32::from(g.max(b)) >= i32::from(min_redness)
}

/// One flag per grid sample: is it red?
fn red_mask(image: &Image, grid: Grid, min_redness: u8) -> Vec<bool> {
    let bytes = image.bytes;
    let (width, height) = (image.width, image.height);
    let packed = |channels: usize, [r, g, b]: [usize; 3]| {
        move |x: usize, y: usize| {
            let at = (y * width + x) * channels;
            [bytes[at + r], bytes[at + g], bytes[at + b]]
        }
    };
    let (chroma_width, chroma_height) = chroma_size(width, height);
    let (luma_len, chroma_len) = (width * height, chroma_width * chroma_height);
    let chroma_at = move |x: usize, y: usize| (y / 2) * chroma_width + x / 2;
    match image.encoding {
        Encoding::Rgb8 => sample(grid, min_redness, packed(3, [0, 1, 2])),
        Encoding::Bgr8 => sample(grid, min_redness, packed(3, [2, 1, 0])),
        Encoding::Rgba8 => sample(grid, min_redness, packed(4, [0, 1, 2])),
        Encoding::Bgra8 => sample(grid, min_redness, packed(4, [2, 1, 0])),
        // Grey has no colour: nothing is red.
        Encoding::Mono8 => vec![false; grid.columns * grid.rows],
        Encoding::Yuv420 => sample(grid, min_redness, |x, y| {
            let chroma = chroma_at(x, y);
            let (u, v) = (bytes[luma_len + chroma], bytes[luma_len + chroma_len + chroma]);
            rgb_from_limited_yuv(bytes[y * width + x], u, v)
        }),
        Encoding::Nv12 => sample(grid, min_redness, |x, y| {
            let chroma = luma_len + 2 * chroma_at(x, y);
            rgb_from_limited_yuv(bytes[y * width + x], bytes[chroma], bytes[chroma + 1])
        }),
    }
}

/// Tests every grid sample with `rgb_at` (pixel coordinates in, RGB out).
fn sample(grid: Grid, min_redness: u8, rgb_at: impl Fn(usize, usize) -> [u8; 3]) -> Vec<bool> {
    let mut mask = Vec::with_capacity(grid.columns * grid.rows);
    for row in 0..grid.rows {
        let y = row * grid.step;
        mask.extend((0..grid.columns).map(|column| is_red(rgb_at(column * grid.step, y), min_redness)));
    }
    mask
}

/// A connected set of red samples: its extent in grid coordinates and its size.
#[derive(Debug, Clone, Copy)]
struct Component {
    min_column: usize,
    min_row: usize,
    max_column: usize,
    max_row: usize,
    samples: usize,
}

impl Component {
    /// A component of the one sample at (`column`, `row`).
    fn at(column: usize, row: usize) -> Self {
        Self { min_column: column, min_row: row, max_column: column, max_row: row, samples: 1 }
    }

    /// Adds the sample at (`column`, `row`).
    fn add(&mut self, column: usize, row: usize) {
        self.min_column = self.min_column.min(column);
        self.max_column = self.max_column.max(column);
        self.min_row = self.min_row.min(row);
        self.max_row = self.max_row.max(row);
        self.samples += 1;
    }

    /// The blob in full-resolution pixels of a `width` x `height` frame.
    fn to_blob(self, grid: Grid, width: usize, height: usize) -> Blob {
        let pixel = |sample: usize, limit: usize| (sample * grid.step).min(limit) as u32;
        let box_samples = (self.max_column - self.min_column + 1) * (self.max_row - self.min_row + 1);
        Blob {
            x1: pixel(self.min_column, width),
            y1: pixel(self.min_row, height),
            x2: pixel(self.max_column + 1, width),
            y2: pixel(self.max_row + 1, height),
            area: (self.samples * grid.step * grid.step) as u64,
            fill: self.samples as f32 / box_samples as f32,
        }
    }
}

/// The 8-connected components of the red samples; clears `mask` as it goes.
fn components(mask: &mut [bool], grid: Grid) -> Vec<Component> {
    let mut found = Vec::new();
    let mut stack = Vec::new();
    for start in 0..mask.len() {
        if mask[start] {
            found.push(flood(mask, grid, start, &mut stack));
        }
    }
    found
}

/// The component of the red sample `start`, clearing it and every red sample it reaches in `mask`.
/// `stack` is scratch space (empty on entry and on return).
fn flood(mask: &mut [bool], grid: Grid, start: usize, stack: &mut Vec<usize>) -> Component {
    let mut component = Component::at(start % grid.columns, start / grid.columns);
    mask[start] = false;
    stack.push(start);
    while let Some(index) = stack.pop() {
        let (column, row) = (index % grid.columns, index / grid.columns);
        for neighbour_row in row.saturating_sub(1)..(row + 2).min(grid.rows) {
            for neighbour_column in column.saturating_sub(1)..(column + 2).min(grid.columns) {
                let neighbour = neighbour_row * grid.columns + neighbour_column;
                if mask[neighbour] {
                    mask[neighbour] = false;
                    component.add(neighbour_column, neighbour_row);
                    stack.push(neighbour);
                }
            }
        }
    }
    component
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        canvas::Canvas,
        object::{ObjectBox, object_at},
        pattern::{FrameFormat, draw_frame_with_object},
    };

    const PERIOD: u64 = 30;

    /// The blobs found in frame `index` of the pattern.
    fn blobs_in_pattern(width: u32, height: u32, encoding: Encoding, index: u64) -> Vec<Blob> {
        let format = FrameFormat::new(width, height, encoding).expect("valid test size");
        let payload = draw_frame_with_object(&format, index, index * 66, PERIOD);
        let image = Image::new(&payload, width as usize, height as usize, encoding).expect("payload fits");
        find_red_blobs(&image, &BlobParams::default())
    }

    /// Whether every edge of `blob` is within `tolerance` pixels of the object's box.
    fn matches(blob: &Blob, object: ObjectBox, tolerance: u32) -> bool {
        let close = |found: u32, expected: u32| found.abs_diff(expected) <= tolerance;
        close(blob.x1, object.x)
            && close(blob.y1, object.y)
            && close(blob.x2, object.x + object.w)
            && close(blob.y2, object.y + object.h)
    }

    /// Checks frames `indices` of the pattern: one blob on the object where it is shown, none elsewhere.
    fn check_pattern(width: u32, height: u32, encoding: Encoding, indices: impl Iterator<Item = u64>, tolerance: u32) {
        let colour = encoding != Encoding::Mono8;
        for index in indices {
            let blobs = blobs_in_pattern(width, height, encoding, index);
            match object_at(index, width, height, PERIOD).filter(|_| colour) {
                None => assert_eq!(blobs, [], "{encoding} {width}x{height} frame {index}: nothing expected"),
                Some(object) => {
                    assert_eq!(blobs.len(), 1, "{encoding} {width}x{height} frame {index}: {blobs:?}");
                    let blob = blobs[0];
                    assert!(
                        matches(&blob, object, tolerance),
                        "{encoding} {width}x{height} #{index}: {blob:?} {object:?}"
                    );
                    assert!((0.7..=0.85).contains(&blob.fill), "a disc fills about pi/4 of its box: {blob:?}");
                }
            }
        }
    }

    #[test]
    fn finds_the_pattern_object_in_every_encoding_and_nothing_else() {
        for encoding in Encoding::ALL {
            check_pattern(160, 120, encoding, 0..3 * PERIOD, 1);
            check_pattern(641, 481, encoding, (0..3 * PERIOD).step_by(7), 1);
        }
    }

    #[test]
    fn every_gradient_phase_is_free_of_red() {
        // The gradient repeats every 64 frames and shifts with the frame index; cover a full cycle.
        for encoding in [Encoding::Bgr8, Encoding::Nv12] {
            check_pattern(640, 480, encoding, (0..PERIOD).chain(2 * PERIOD..3 * PERIOD + 10), 1);
        }
    }

    #[test]
    fn large_frames_are_subsampled_but_boxes_are_in_full_resolution() {
        // 1920x1080 samples every 3rd pixel.
        check_pattern(1920, 1080, Encoding::Bgr8, [10, 30, 44, 59].into_iter(), 3);
        check_pattern(1920, 1080, Encoding::Yuv420, [37, 52].into_iter(), 3);
    }

    #[test]
    fn blobs_below_min_area_are_dropped() {
        let format = FrameFormat::new(640, 480, Encoding::Rgb8).expect("valid test size");
        let payload = draw_frame_with_object(&format, 40, 0, PERIOD);
        let image = Image::new(&payload, 640, 480, Encoding::Rgb8).expect("payload fits");
        let area = |min_area| find_red_blobs(&image, &BlobParams { min_area, ..BlobParams::default() }).len();
        assert_eq!(area(64), 1);
        assert_eq!(area(2_000), 1);
        assert_eq!(area(3_000), 0, "a 60-pixel disc covers about 2827 pixels");
    }

    #[test]
    fn separate_squares_are_separate_blobs_largest_first() {
        let mut canvas = Canvas::new(100, 80);
        canvas.fill_rect(0, 0, 100, 80, [90, 90, 90]);
        canvas.fill_rect(10, 10, 10, 10, [250, 20, 30]);
        canvas.fill_rect(50, 40, 20, 30, [200, 0, 0]);
        canvas.fill_rect(90, 0, 2, 2, [255, 0, 0]);
        let payload = canvas.encode(Encoding::Bgr8);
        let image = Image::new(&payload, 100, 80, Encoding::Bgr8).expect("payload fits");
        let blobs = find_red_blobs(&image, &BlobParams::default());
        let square = |x1, y1, x2, y2, area| Blob { x1, y1, x2, y2, area, fill: 1.0 };
        assert_eq!(blobs, [square(50, 40, 70, 70, 600), square(10, 10, 20, 20, 100)]);
    }

    #[test]
    fn short_payloads_and_bad_sizes_are_rejected() {
        assert!(Image::new(&[0; 100], 10, 10, Encoding::Bgr8).is_err());
        assert!(Image::new(&[0; 150], 10, 10, Encoding::Yuv420).is_ok());
        assert!(Image::new(&[0; 149], 10, 10, Encoding::Nv12).is_err());
        assert!(Image::new(&[], 0, 10, Encoding::Mono8).is_err());
        assert!(Image::new(&[0; 310], 10, 10, Encoding::Rgb8).is_ok(), "extra bytes are ignored");
    }
}
