//! Detection overlay (`OVERLAY=true`): draws detector boxes and their labels straight into a raw
//! frame before it is encoded, so the recorded video shows what the detector saw.
//!
//! Pure pixel work in the frame's own layout, no conversion and no FFmpeg: each colour becomes the
//! layout's bytes (packed RGB order, full-range grey for mono8, BT.601 limited-range Y'CbCr for
//! yuv420/nv12, whose half-resolution chroma is written for every 2x2 block a shape touches), so
//! one drawing routine serves every encoding. Text uses a built-in 5x7 bitmap font (capitals,
//! digits, `.`, `-`, `_` and space; letters of either case draw as capitals, anything else as a
//! solid box) scaled with the image height. Whatever the detector sends, drawing never panics.

use std::ops::Range;

use crate::{
    detections::{BoxFormat, Detections},
    encode::{PlaneLayout, plane_layouts},
    frame::{Frame, FrameFormat, MAX_DIMENSION, PixelEncoding, ycbcr::LumaWeights},
};

/// Box outline colour: bright green, visible on most scenes.
const BOX_COLOUR: Rgb = Rgb { r: 0, g: 255, b: 0 };
/// Label text colour.
const TEXT_COLOUR: Rgb = Rgb { r: 255, g: 255, b: 255 };
/// Label background: dark, so the white text stays legible on any scene.
const LABEL_BACKGROUND: Rgb = Rgb { r: 0, g: 0, b: 0 };
/// Box outline thickness in pixels, drawn inside the box.
const OUTLINE_PX: i64 = 2;
/// Longest label drawn, in characters: keeps a hostile label from covering the frame.
const MAX_LABEL_CHARS: usize = 32;
/// Glyph width in font pixels.
const GLYPH_WIDTH: i64 = 5;
/// Glyph height in font pixels.
const GLYPH_HEIGHT: i64 = 7;
/// Image lines per step of text scale: 1x below 480 lines, 2x at 480, 3x at 720, 4x at 1080.
const LINES_PER_TEXT_SCALE: u32 = 240;
/// Largest text scale: bigger labels would hide what they label.
const MAX_TEXT_SCALE: u32 = 4;

/// How long a detector's boxes stay drawn on the frames that follow them.
pub const BOXES_SHOWN_NANOS: u64 = 500_000_000;

/// The latest boxes of one camera's detector, drawn on the frames that follow (`OVERLAY=true`).
#[derive(Debug, Default)]
pub struct Overlay {
    latest: Option<(u64, Detections)>,
}

impl Overlay {
    /// A detector's output sent at `time_ns`.
    pub fn remember(&mut self, time_ns: u64, detections: &Detections) {
        if self.latest.as_ref().is_none_or(|(at, _)| *at <= time_ns) {
            self.latest = Some((time_ns, detections.clone()));
        }
    }

    /// A copy of `frame` with the latest boxes drawn in, or `None` when there are none from the
    /// last [`BOXES_SHOWN_NANOS`] or the frame is depth (the frame is then recorded untouched,
    /// without a copy).
    pub fn draw_on(&self, frame: &Frame) -> Option<Frame> {
        let (at, detections) = self.latest.as_ref()?;
        let fresh = frame.sent_nanos.abs_diff(*at) <= BOXES_SHOWN_NANOS;
        // Depth is recorded sample for sample: boxes drawn in would corrupt distances.
        if !fresh || detections.is_empty() || frame.format.encoding.is_depth() {
            return None;
        }
        let mut pixels = frame.data.as_slice().to_vec();
        draw_detections(frame.format, &mut pixels, detections);
        Some(Frame { data: arrow::buffer::Buffer::from_vec(pixels), ..frame.clone() })
    }
}

/// Draws each box's outline (2 px, clipped to the image) and its label with confidence
/// ("person 0.87") above the box's top-left corner (inside the box if there is no room above)
/// into `pixels`, a frame of `format` laid out as the recorder receives it.
///
/// A box reaching past an image edge is cut at that edge and outlined along it; a box with a
/// non-finite coordinate or nothing inside the image is skipped. `Xywh` boxes (centre, size) are
/// converted. Labels are drawn after all outlines so no outline cuts through text. A `pixels`
/// slice shorter than `format.byte_len()` (or an impossible format) draws nothing; a longer one
/// has only its first `byte_len()` bytes drawn on.
pub fn draw_detections(format: FrameFormat, pixels: &mut [u8], detections: &Detections) {
    let Some(mut canvas) = Canvas::new(format, pixels) else { return };
    let boxes: Vec<(Rect, String)> = detections
        .bbox
        .iter()
        .enumerate()
        .filter_map(|(index, bbox)| {
            let rect = box_rect(*bbox, detections.format, format.width, format.height)?;
            let label = detections.labels.get(index).map_or("", String::as_str);
            Some((rect, label_text(label, detections.conf.get(index).copied())))
        })
        .collect();
    for (rect, _) in &boxes {
        canvas.outline(*rect, BOX_COLOUR);
    }
    let scale = text_scale(format.height);
    for (rect, text) in &boxes {
        canvas.label(*rect, text, scale);
    }
}

/// The text shown for one box: `"person 0.87"`, just the label when the confidence is missing or
/// not finite, just the confidence when the label is empty.
fn label_text(label: &str, conf: Option<f32>) -> String {
    let label = label.trim();
    match conf.filter(|conf| conf.is_finite()) {
        Some(conf) if label.is_empty() => format!("{conf:.2}"),
        Some(conf) => format!("{label} {conf:.2}"),
        None => label.to_owned(),
    }
}

/// Text magnification for an image `height` lines high.
fn text_scale(height: u32) -> i64 {
    i64::from((height / LINES_PER_TEXT_SCALE).clamp(1, MAX_TEXT_SCALE))
}

/// An 8-bit, full-range RGB colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Rgb {
    r: u8,
    g: u8,
    b: u8,
}

impl Rgb {
    /// BT.601 Y'CbCr of this colour, luma in 0..1, chroma centred on 0.
    fn ycbcr_bt601(self) -> [f64; 3] {
        LumaWeights::BT601.rgb_to_ycbcr([self.r, self.g, self.b].map(|c| f64::from(c) / 255.0))
    }

    /// BT.601 limited-range ("TV", Y 16-235) Y'CbCr: how yuv420 and nv12 camera frames are coded.
    fn ycbcr_bt601_limited(self) -> [u8; 3] {
        let [y, cb, cr] = self.ycbcr_bt601();
        [16.0 + 219.0 * y, 128.0 + 224.0 * cb, 128.0 + 224.0 * cr].map(to_byte)
    }

    /// Full-range BT.601 Y'CbCr: what a JPEG's planes hold.
    fn ycbcr_bt601_full(self) -> [u8; 3] {
        let [y, cb, cr] = self.ycbcr_bt601();
        [255.0 * y, 128.0 + 255.0 * cb, 128.0 + 255.0 * cr].map(to_byte)
    }

    /// Full-range BT.601 luma: mono8 frames are full-range grey (swscale reads GRAY8 that way),
    /// so white text stays 255 rather than 235.
    fn luma_full_range(self) -> u8 {
        to_byte(255.0 * self.ycbcr_bt601()[0])
    }
}

/// Rounds a sample to the nearest byte, saturating.
fn to_byte(value: f64) -> u8 {
    value.round().clamp(0.0, 255.0) as u8
}

/// A pixel rectangle, half-open: columns `left..right`, rows `top..bottom`. May reach outside the
/// image; drawing clips it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Rect {
    left: i64,
    top: i64,
    right: i64,
    bottom: i64,
}

impl Rect {
    /// The part of `self` inside `other` (possibly empty).
    fn intersect(self, other: Rect) -> Rect {
        Rect {
            left: self.left.max(other.left),
            top: self.top.max(other.top),
            right: self.right.min(other.right),
            bottom: self.bottom.min(other.bottom),
        }
    }

    /// The same area on a plane at half resolution: every 2x2 block it touches.
    fn halved(self) -> Rect {
        Rect {
            left: self.left.div_euclid(2),
            top: self.top.div_euclid(2),
            right: (self.right + 1).div_euclid(2),
            bottom: (self.bottom + 1).div_euclid(2),
        }
    }

    /// Column and row index ranges of the part inside a `columns` x `rows` plane, if any.
    fn clip(self, columns: usize, rows: usize) -> Option<(Range<usize>, Range<usize>)> {
        let clamp = |value: i64, size: usize| {
            usize::try_from(value.clamp(0, i64::try_from(size).unwrap_or(i64::MAX))).unwrap_or(0)
        };
        let column_range = clamp(self.left, columns)..clamp(self.right, columns);
        let row_range = clamp(self.top, rows)..clamp(self.bottom, rows);
        (!column_range.is_empty() && !row_range.is_empty()).then_some((column_range, row_range))
    }
}

/// A box's pixel rectangle cut to a `width` x `height` image, or `None` when a coordinate is not
/// finite or nothing of the box is inside the image.
fn box_rect(bbox: [f32; 4], format: BoxFormat, width: u32, height: u32) -> Option<Rect> {
    let [a, b, c, d] = bbox.map(f64::from);
    // f64, so that centre +- half size cannot overflow to infinity for huge f32 values.
    let [x0, y0, x1, y1] = match format {
        BoxFormat::Xyxy => [a, b, c, d],
        BoxFormat::Xywh => [a - c / 2.0, b - d / 2.0, a + c / 2.0, b + d / 2.0],
    };
    if ![x0, y0, x1, y1].iter().all(|value| value.is_finite()) {
        return None;
    }
    let (left, right) = span(x0, x1, width)?;
    let (top, bottom) = span(y0, y1, height)?;
    Some(Rect { left, top, right, bottom })
}

/// One side of a box as a pixel span `start..end` within `0..size`, ends rounded to the nearest
/// pixel edge and taken in either order; `None` when nothing of it is inside.
fn span(a: f64, b: f64, size: u32) -> Option<(i64, i64)> {
    let edge = |value: f64| value.round().clamp(0.0, f64::from(size)) as i64;
    let (start, end) = (edge(a.min(b)), edge(a.max(b)));
    (end > start).then_some((start, end))
}

/// One plane of the frame, borrowed from the payload.
struct Plane<'a> {
    /// Exactly `layout.row_bytes * layout.rows` bytes.
    data: &'a mut [u8],
    layout: PlaneLayout,
}

impl Plane<'_> {
    /// Writes `value` into the first bytes of every pixel of `rect` inside the plane; bytes past
    /// `value` (alpha) keep theirs.
    fn fill(&mut self, rect: Rect, value: &[u8]) {
        let PlaneLayout { row_bytes, rows, pixel_bytes } = self.layout;
        if row_bytes == 0 || pixel_bytes == 0 || value.len() > pixel_bytes {
            return;
        }
        let Some((columns, rows)) = rect.clip(row_bytes / pixel_bytes, rows) else { return };
        for row in self.data.chunks_exact_mut(row_bytes).skip(rows.start).take(rows.len()) {
            let span = &mut row[columns.start * pixel_bytes..columns.end * pixel_bytes];
            for pixel in span.chunks_exact_mut(pixel_bytes) {
                pixel[..value.len()].copy_from_slice(value);
            }
        }
    }
}

/// A frame's planes ready to draw on.
struct Canvas<'a> {
    encoding: PixelEncoding,
    width: i64,
    planes: Vec<Plane<'a>>,
}

impl<'a> Canvas<'a> {
    /// Splits `pixels` into the planes of `format`; `None` if it is too short or the size impossible.
    fn new(format: FrameFormat, pixels: &'a mut [u8]) -> Option<Self> {
        // Checked before byte_len, whose arithmetic assumes a checked size.
        let valid = |side: u32| (1..=MAX_DIMENSION).contains(&side);
        if !valid(format.width) || !valid(format.height) || pixels.len() < format.byte_len() {
            return None;
        }
        let mut planes = Vec::new();
        let mut rest = pixels;
        for layout in plane_layouts(format.encoding, format.width, format.height) {
            let (data, tail) = rest.split_at_mut_checked(layout.row_bytes * layout.rows)?;
            planes.push(Plane { data, layout });
            rest = tail;
        }
        Some(Self { encoding: format.encoding, width: i64::from(format.width), planes })
    }

    /// Paints `rect` (clipped to the image) in `colour`.
    fn fill(&mut self, rect: Rect, colour: Rgb) {
        let Rgb { r, g, b } = colour;
        let [y, cb, cr] = match self.encoding {
            PixelEncoding::Yuvj420 => colour.ycbcr_bt601_full(),
            _ => colour.ycbcr_bt601_limited(),
        };
        match (self.encoding, self.planes.as_mut_slice()) {
            (PixelEncoding::Rgb8 | PixelEncoding::Rgba8, [packed]) => packed.fill(rect, &[r, g, b]),
            (PixelEncoding::Bgr8 | PixelEncoding::Bgra8, [packed]) => packed.fill(rect, &[b, g, r]),
            (PixelEncoding::Mono8, [grey]) => grey.fill(rect, &[colour.luma_full_range()]),
            (PixelEncoding::Yuv420 | PixelEncoding::Yuvj420, [luma, u, v]) => {
                luma.fill(rect, &[y]);
                u.fill(rect.halved(), &[cb]);
                v.fill(rect.halved(), &[cr]);
            }
            (PixelEncoding::Nv12, [luma, uv]) => {
                luma.fill(rect, &[y]);
                uv.fill(rect.halved(), &[cb, cr]);
            }
            // plane_layouts gives every encoding the planes matched above.
            _ => {}
        }
    }

    /// Draws the outline of `rect` inside it, `OUTLINE_PX` thick.
    fn outline(&mut self, rect: Rect, colour: Rgb) {
        let Rect { left, top, right, bottom } = rect;
        let edges = [
            Rect { bottom: top + OUTLINE_PX, ..rect },
            Rect { top: bottom - OUTLINE_PX, ..rect },
            Rect { right: left + OUTLINE_PX, ..rect },
            Rect { left: right - OUTLINE_PX, ..rect },
        ];
        for edge in edges {
            // A box thinner than two outlines would otherwise be painted beyond its own sides.
            self.fill(edge.intersect(rect), colour);
        }
    }

    /// Draws `text` white on a dark strip whose bottom-left is `anchor`'s top-left corner, or just
    /// inside the box's top when there is no room above; moved left to stay inside the image.
    fn label(&mut self, anchor: Rect, text: &str, scale: i64) {
        let glyphs: Vec<[u8; 7]> = text.chars().take(MAX_LABEL_CHARS).map(glyph).collect();
        if glyphs.is_empty() {
            return;
        }
        let (padding, advance) = (scale, (GLYPH_WIDTH + 1) * scale);
        let strip_width = glyphs.len() as i64 * advance - scale + 2 * padding;
        let strip_height = GLYPH_HEIGHT * scale + 2 * padding;
        let left = anchor.left.min(self.width - strip_width).max(0);
        let top = if anchor.top >= strip_height { anchor.top - strip_height } else { anchor.top };
        let strip = Rect { left, top, right: left + strip_width, bottom: top + strip_height };
        self.fill(strip, LABEL_BACKGROUND);
        for (index, rows) in glyphs.iter().enumerate() {
            self.glyph(rows, left + padding + index as i64 * advance, top + padding, scale);
        }
    }

    /// Draws one glyph with its top-left at (`x`, `y`), each font pixel `scale` pixels square.
    fn glyph(&mut self, rows: &[u8; 7], x: i64, y: i64, scale: i64) {
        for (row, bits) in (0..).zip(rows) {
            for column in 0..GLYPH_WIDTH {
                if (bits >> (GLYPH_WIDTH - 1 - column)) & 1 == 1 {
                    let (left, top) = (x + column * scale, y + row * scale);
                    self.fill(Rect { left, top, right: left + scale, bottom: top + scale }, TEXT_COLOUR);
                }
            }
        }
    }
}

/// Glyph for characters the font lacks: a solid box (a hollow one reads as `O` or `D`), so the
/// label's length still shows.
const UNKNOWN_GLYPH: [u8; 7] = [0b11111; 7];

/// The 5x7 bitmap of `c`: one byte per row, top first, bit 4 the leftmost pixel.
fn glyph(c: char) -> [u8; 7] {
    match c.to_ascii_uppercase() {
        'A' => [0b01110, 0b10001, 0b10001, 0b11111, 0b10001, 0b10001, 0b10001],
        'B' => [0b11110, 0b10001, 0b10001, 0b11110, 0b10001, 0b10001, 0b11110],
        'C' => [0b01110, 0b10001, 0b10000, 0b10000, 0b10000, 0b10001, 0b01110],
        'D' => [0b11110, 0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b11110],
        'E' => [0b11111, 0b10000, 0b10000, 0b11110, 0b10000, 0b10000, 0b11111],
        'F' => [0b11111, 0b10000, 0b10000, 0b11110, 0b10000, 0b10000, 0b10000],
        'G' => [0b01110, 0b10001, 0b10000, 0b10111, 0b10001, 0b10001, 0b01111],
        'H' => [0b10001, 0b10001, 0b10001, 0b11111, 0b10001, 0b10001, 0b10001],
        'I' => [0b01110, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100, 0b01110],
        'J' => [0b00111, 0b00010, 0b00010, 0b00010, 0b00010, 0b10010, 0b01100],
        'K' => [0b10001, 0b10010, 0b10100, 0b11000, 0b10100, 0b10010, 0b10001],
        'L' => [0b10000, 0b10000, 0b10000, 0b10000, 0b10000, 0b10000, 0b11111],
        'M' => [0b10001, 0b11011, 0b10101, 0b10101, 0b10001, 0b10001, 0b10001],
        'N' => [0b10001, 0b10001, 0b11001, 0b10101, 0b10011, 0b10001, 0b10001],
        'O' => [0b01110, 0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b01110],
        'P' => [0b11110, 0b10001, 0b10001, 0b11110, 0b10000, 0b10000, 0b10000],
        'Q' => [0b01110, 0b10001, 0b10001, 0b10001, 0b10101, 0b10010, 0b01101],
        'R' => [0b11110, 0b10001, 0b10001, 0b11110, 0b10100, 0b10010, 0b10001],
        'S' => [0b01111, 0b10000, 0b10000, 0b01110, 0b00001, 0b00001, 0b11110],
        'T' => [0b11111, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100],
        'U' => [0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b01110],
        'V' => [0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b01010, 0b00100],
        'W' => [0b10001, 0b10001, 0b10001, 0b10101, 0b10101, 0b10101, 0b01010],
        'X' => [0b10001, 0b10001, 0b01010, 0b00100, 0b01010, 0b10001, 0b10001],
        'Y' => [0b10001, 0b10001, 0b01010, 0b00100, 0b00100, 0b00100, 0b00100],
        'Z' => [0b11111, 0b00001, 0b00010, 0b00100, 0b01000, 0b10000, 0b11111],
        '0' => [0b01110, 0b10001, 0b10011, 0b10101, 0b11001, 0b10001, 0b01110],
        '1' => [0b00100, 0b01100, 0b00100, 0b00100, 0b00100, 0b00100, 0b01110],
        '2' => [0b01110, 0b10001, 0b00001, 0b00010, 0b00100, 0b01000, 0b11111],
        '3' => [0b11111, 0b00010, 0b00100, 0b00010, 0b00001, 0b10001, 0b01110],
        '4' => [0b00010, 0b00110, 0b01010, 0b10010, 0b11111, 0b00010, 0b00010],
        '5' => [0b11111, 0b10000, 0b11110, 0b00001, 0b00001, 0b10001, 0b01110],
        '6' => [0b00110, 0b01000, 0b10000, 0b11110, 0b10001, 0b10001, 0b01110],
        '7' => [0b11111, 0b00001, 0b00010, 0b00100, 0b01000, 0b01000, 0b01000],
        '8' => [0b01110, 0b10001, 0b10001, 0b01110, 0b10001, 0b10001, 0b01110],
        '9' => [0b01110, 0b10001, 0b10001, 0b01111, 0b00001, 0b00010, 0b01100],
        '.' => [0, 0, 0, 0, 0, 0b01100, 0b01100],
        '-' => [0, 0, 0, 0b01110, 0, 0, 0],
        '_' => [0, 0, 0, 0, 0, 0, 0b11111],
        ' ' => [0; 7],
        _ => UNKNOWN_GLYPH,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What cameras send, and what the JPEG decoder makes.
    const ENCODINGS: [PixelEncoding; 8] = [
        PixelEncoding::Bgr8,
        PixelEncoding::Rgb8,
        PixelEncoding::Rgba8,
        PixelEncoding::Bgra8,
        PixelEncoding::Mono8,
        PixelEncoding::Yuv420,
        PixelEncoding::Nv12,
        PixelEncoding::Yuvj420,
    ];
    /// Background byte of every test frame (mid grey; alpha 100 too, to see it is kept).
    const GREY: u8 = 100;
    const GREEN: [u8; 3] = [0, 255, 0];
    const WHITE: [u8; 3] = [255, 255, 255];

    fn format(encoding: PixelEncoding, width: u32, height: u32) -> FrameFormat {
        FrameFormat { encoding, width, height }
    }

    fn one_box(bbox: [f32; 4], format: BoxFormat, label: &str, conf: f32) -> Detections {
        Detections { labels: vec![label.into()], conf: vec![conf], bbox: vec![bbox], format }
    }

    /// A box without label text, to look at outlines alone.
    fn bare_box(bbox: [f32; 4]) -> Detections {
        one_box(bbox, BoxFormat::Xyxy, "", f32::NAN)
    }

    /// A uniform grey frame: every byte `GREY`, except neutral chroma (128) for YUV.
    fn uniform(format: FrameFormat) -> Vec<u8> {
        let mut pixels = vec![GREY; format.byte_len()];
        if matches!(format.encoding, PixelEncoding::Yuv420 | PixelEncoding::Nv12 | PixelEncoding::Yuvj420) {
            pixels[(format.width * format.height) as usize..].fill(128);
        }
        pixels
    }

    fn drawn(format: FrameFormat, detections: &Detections) -> Vec<u8> {
        let mut pixels = uniform(format);
        draw_detections(format, &mut pixels, detections);
        pixels
    }

    /// The samples of pixel (`x`, `y`): its packed bytes, its grey byte, or its Y, Cb and Cr.
    fn samples(format: FrameFormat, pixels: &[u8], x: usize, y: usize) -> Vec<u8> {
        let (w, h) = (format.width as usize, format.height as usize);
        let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
        let luma = pixels[y * w + x];
        let block = (y / 2) * cw + x / 2;
        match format.encoding {
            PixelEncoding::Bgr8 | PixelEncoding::Rgb8 => pixels[(y * w + x) * 3..][..3].to_vec(),
            PixelEncoding::Rgba8 | PixelEncoding::Bgra8 => pixels[(y * w + x) * 4..][..4].to_vec(),
            PixelEncoding::Mono8 => vec![luma],
            PixelEncoding::Yuv420 | PixelEncoding::Yuvj420 => {
                vec![luma, pixels[w * h + block], pixels[w * h + cw * ch + block]]
            }
            PixelEncoding::Nv12 => vec![luma, pixels[w * h + 2 * block], pixels[w * h + 2 * block + 1]],
            PixelEncoding::Mono16 => pixels[(y * w + x) * 2..][..2].to_vec(),
        }
    }

    /// Whether pixel (`x`, `y`) shows `rgb`: decoded back to RGB (BT.601 limited range for YUV)
    /// within rounding, or for mono8 its full-range luma.
    fn shows(format: FrameFormat, pixels: &[u8], x: usize, y: usize, rgb: [u8; 3]) -> bool {
        let s: Vec<f64> = samples(format, pixels, x, y).into_iter().map(f64::from).collect();
        let [r, g, b] = rgb.map(f64::from);
        let decoded = match format.encoding {
            PixelEncoding::Rgb8 | PixelEncoding::Rgba8 => [s[0], s[1], s[2]],
            PixelEncoding::Bgr8 | PixelEncoding::Bgra8 => [s[2], s[1], s[0]],
            PixelEncoding::Mono8 => return (s[0] - (0.299 * r + 0.587 * g + 0.114 * b)).abs() <= 1.0,
            // Nothing is ever drawn into depth.
            PixelEncoding::Mono16 => return false,
            PixelEncoding::Yuv420 | PixelEncoding::Nv12 => {
                let (y, cb, cr) = (1.164 * (s[0] - 16.0), s[1] - 128.0, s[2] - 128.0);
                [y + 1.596 * cr, y - 0.392 * cb - 0.813 * cr, y + 2.017 * cb]
            }
            PixelEncoding::Yuvj420 => {
                let (y, cb, cr) = (s[0], s[1] - 128.0, s[2] - 128.0);
                [y + 1.402 * cr, y - 0.344 * cb - 0.714 * cr, y + 1.772 * cb]
            }
        };
        decoded.iter().zip([r, g, b]).all(|(got, want)| (got.clamp(0.0, 255.0) - want).abs() <= 4.0)
    }

    /// Pixels of the 2 px outline of the xyxy box `[l, t, r, b]`.
    fn on_outline(x: usize, y: usize, [l, t, r, b]: [usize; 4]) -> bool {
        let in_box = (l..r).contains(&x) && (t..b).contains(&y);
        let inside = (l + 2..r - 2).contains(&x) && (t + 2..b - 2).contains(&y);
        in_box && !inside
    }

    #[test]
    fn outline_is_green_and_inside_and_outside_stay_untouched_in_every_encoding() {
        for encoding in ENCODINGS {
            for (width, height) in [(64, 48), (65, 49)] {
                let format = format(encoding, width, height);
                let blank = uniform(format);
                let pixels = drawn(format, &one_box([10.0, 20.0, 40.0, 40.0], BoxFormat::Xyxy, "person", 0.87));
                // The label strip (9 rows at 1x) sits just above the box, and in YUV shares its top
                // row's chroma with the row above; everything else is checked.
                let label_rows = 10..20;
                for y in 0..height as usize {
                    for x in 0..width as usize {
                        if on_outline(x, y, [10, 20, 40, 40]) {
                            assert!(shows(format, &pixels, x, y, GREEN), "{format} ({x}, {y}) not green");
                        } else if !label_rows.contains(&y) {
                            let (got, want) = (samples(format, &pixels, x, y), samples(format, &blank, x, y));
                            assert_eq!(got, want, "{format} ({x}, {y}) changed");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn odd_edges_in_yuv_keep_luma_outside_the_outline_and_colour_the_outline_green() {
        for encoding in [PixelEncoding::Yuv420, PixelEncoding::Nv12, PixelEncoding::Yuvj420] {
            let format = format(encoding, 65, 49);
            let pixels = drawn(format, &bare_box([11.0, 21.0, 41.0, 41.0]));
            for y in 0..49 {
                for x in 0..65 {
                    if on_outline(x, y, [11, 21, 41, 41]) {
                        assert!(shows(format, &pixels, x, y, GREEN), "{format} ({x}, {y}) not green");
                    } else {
                        // Chroma is shared by 2x2 blocks, so only luma is exact beside an odd edge.
                        assert_eq!(samples(format, &pixels, x, y)[0], GREY, "{format} ({x}, {y}) luma changed");
                    }
                }
            }
        }
    }

    #[test]
    fn rgba_alpha_is_kept_under_the_outline() {
        for encoding in [PixelEncoding::Rgba8, PixelEncoding::Bgra8] {
            let format = format(encoding, 8, 8);
            let pixels = drawn(format, &bare_box([0.0, 0.0, 8.0, 8.0]));
            assert_eq!(samples(format, &pixels, 0, 0)[3], GREY);
        }
    }

    /// Counts (white, dark) pixels in the rows `rows` and columns `columns`.
    fn text_pixels(format: FrameFormat, pixels: &[u8], rows: Range<usize>, columns: Range<usize>) -> (usize, usize) {
        let (mut white, mut dark) = (0, 0);
        for y in rows {
            for x in columns.clone() {
                white += usize::from(shows(format, pixels, x, y, WHITE));
                dark += usize::from(shows(format, pixels, x, y, [0, 0, 0]));
            }
        }
        (white, dark)
    }

    #[test]
    fn label_is_white_text_on_a_dark_strip_just_above_the_box() {
        for encoding in ENCODINGS {
            let format = format(encoding, 640, 480);
            let pixels = drawn(format, &one_box([100.0, 200.0, 300.0, 400.0], BoxFormat::Xyxy, "person", 0.87));
            // 2x at 480 lines: a strip 18 px high, "person 0.87" 11 glyphs 12 px apart.
            let (white, dark) = text_pixels(format, &pixels, 182..200, 100..100 + 11 * 12 + 2);
            assert!(white > 100 && dark > white, "{format}: {white} white, {dark} dark");
            assert!(shows(format, &pixels, 100, 182, [0, 0, 0]), "{format}: strip starts at the corner");
            assert_eq!(samples(format, &pixels, 100, 181), samples(format, &uniform(format), 100, 181));
        }
    }

    #[test]
    fn label_of_a_box_at_the_top_goes_inside_it_and_of_a_box_at_the_right_moves_left() {
        for encoding in ENCODINGS {
            let format = format(encoding, 640, 480);
            let pixels = drawn(format, &one_box([100.0, 0.0, 300.0, 200.0], BoxFormat::Xyxy, "cup", 0.5));
            let (white, _) = text_pixels(format, &pixels, 0..18, 100..300);
            assert!(white > 50, "{format}: {white} white pixels at the top");
            let pixels = drawn(format, &one_box([600.0, 200.0, 640.0, 300.0], BoxFormat::Xyxy, "person", 0.87));
            let (white, _) = text_pixels(format, &pixels, 182..200, 640 - 134..640);
            assert!(white > 100, "{format}: {white} white pixels at the right edge");
            assert!(shows(format, &pixels, 639, 190, [0, 0, 0]), "{format}: strip ends at the edge");
        }
    }

    #[test]
    fn boxes_past_each_edge_are_cut_and_outlined_along_it() {
        let (width, height) = (640, 480);
        // (box, a pixel on the image edge that must be outline, a pixel just inside that must not)
        let cases = [
            ([-50.0, 100.0, 100.0, 200.0], (0, 150), (2, 150)),
            ([500.0, 100.0, 700.0, 200.0], (639, 150), (637, 150)),
            ([100.0, -50.0, 200.0, 100.0], (150, 0), (150, 2)),
            ([100.0, 400.0, 200.0, 600.0], (150, 479), (150, 477)),
            ([-1e9, -1e9, 1e9, 1e9], (0, 0), (320, 240)),
            ([-1e9, -1e9, 1e9, 1e9], (639, 479), (637, 477)),
        ];
        for encoding in ENCODINGS {
            let format = format(encoding, width, height);
            let blank = uniform(format);
            for (bbox, (ex, ey), (ix, iy)) in cases {
                let pixels = drawn(format, &bare_box(bbox));
                assert!(shows(format, &pixels, ex, ey, GREEN), "{format} {bbox:?} edge ({ex}, {ey})");
                assert_eq!(samples(format, &pixels, ix, iy), samples(format, &blank, ix, iy), "{format} {bbox:?}");
            }
            let outside = drawn(format, &one_box([-100.0, -100.0, -10.0, -10.0], BoxFormat::Xyxy, "x", 1.0));
            assert_eq!(outside, blank, "{format}: a box outside the image draws nothing");
        }
    }

    #[test]
    fn xywh_draws_exactly_the_same_as_the_equivalent_xyxy() {
        for encoding in ENCODINGS {
            let format = format(encoding, 65, 49);
            let xyxy = drawn(format, &one_box([10.0, 20.0, 40.0, 40.0], BoxFormat::Xyxy, "dog", 0.5));
            let xywh = drawn(format, &one_box([25.0, 30.0, 30.0, 20.0], BoxFormat::Xywh, "dog", 0.5));
            assert_eq!(xyxy, xywh, "{format}");
            assert_ne!(xyxy, uniform(format), "{format}");
        }
    }

    #[test]
    fn short_buffers_and_impossible_formats_draw_nothing() {
        let detections = bare_box([0.0, 0.0, 1e9, 1e9]);
        for encoding in ENCODINGS {
            let format = format(encoding, 65, 49);
            let mut short = vec![GREY; format.byte_len() - 1];
            draw_detections(format, &mut short, &detections);
            assert!(short.iter().all(|&byte| byte == GREY), "{format}");
            draw_detections(format, &mut [], &detections);
            for (width, height) in [(0, 10), (10, 0), (u32::MAX, u32::MAX), (MAX_DIMENSION + 1, 1)] {
                let mut pixels = vec![GREY; 4096];
                draw_detections(FrameFormat { encoding, width, height }, &mut pixels, &detections);
                assert!(pixels.iter().all(|&byte| byte == GREY), "{encoding:?} {width}x{height}");
            }
        }
    }

    #[test]
    fn a_longer_buffer_is_drawn_on_only_within_the_frame() {
        let format = format(PixelEncoding::Mono8, 4, 4);
        let mut pixels = vec![GREY; 20];
        draw_detections(format, &mut pixels, &bare_box([0.0, 0.0, 4.0, 4.0]));
        assert_ne!(pixels[0], GREY);
        assert_eq!(&pixels[16..], &[GREY; 4]);
    }

    /// A small deterministic generator, so failures reproduce.
    struct Lcg(u64);

    impl Lcg {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            self.0 >> 33
        }

        /// Mostly plausible coordinates, often hostile ones.
        fn coordinate(&mut self) -> f32 {
            const SPECIAL: [f32; 10] =
                [f32::NAN, f32::INFINITY, f32::NEG_INFINITY, f32::MAX, f32::MIN, -1e30, 1e30, -0.5, 0.0, 1e-30];
            let pick = self.next();
            if pick.is_multiple_of(4) {
                SPECIAL[(pick / 4) as usize % SPECIAL.len()]
            } else {
                (pick % 1400) as f32 - 400.0
            }
        }
    }

    #[test]
    fn random_hostile_boxes_labels_and_lengths_never_panic() {
        let labels = ["person", "", "Äpfel 🙂", "a_very-long.label_that_goes_on_and_on_and_on_and_on_forever", " "];
        let mut random = Lcg(7);
        for encoding in ENCODINGS {
            for (width, height) in [(1, 1), (2, 3), (3, 1), (65, 49), (640, 480)] {
                let format = format(encoding, width, height);
                let mut pixels = uniform(format);
                for _ in 0..100 {
                    let count = random.next() as usize % 4;
                    let detections = Detections {
                        labels: (0..count).map(|_| labels[random.next() as usize % labels.len()].into()).collect(),
                        // Sometimes fewer confidences than boxes.
                        conf: (0..random.next() as usize % 4).map(|_| random.coordinate() / 1000.0).collect(),
                        bbox: (0..count).map(|_| [(); 4].map(|()| random.coordinate())).collect(),
                        format: if random.next().is_multiple_of(2) { BoxFormat::Xyxy } else { BoxFormat::Xywh },
                    };
                    draw_detections(format, &mut pixels, &detections);
                }
                assert_eq!(pixels.len(), format.byte_len());
            }
        }
    }

    #[test]
    fn label_text_shows_two_decimals_and_leaves_out_what_is_missing() {
        assert_eq!(label_text("person", Some(0.8749)), "person 0.87");
        assert_eq!(label_text(" dog ", Some(1.0)), "dog 1.00");
        assert_eq!(label_text("cat", Some(f32::NAN)), "cat");
        assert_eq!(label_text("cat", None), "cat");
        assert_eq!(label_text("", Some(0.5)), "0.50");
    }

    #[test]
    fn text_is_twice_as_large_at_480_lines() {
        assert_eq!([100, 240, 480, 720, 1080, 4320].map(text_scale), [1, 1, 2, 3, 4, 4]);
    }

    #[test]
    fn font_has_a_distinct_glyph_for_each_supported_character_in_either_case() {
        let supported = "abcdefghijklmnopqrstuvwxyz0123456789.-_ ";
        let glyphs: Vec<[u8; 7]> = supported.chars().map(glyph).collect();
        for (index, rows) in glyphs.iter().enumerate() {
            assert_ne!(*rows, UNKNOWN_GLYPH, "{:?}", supported.chars().nth(index));
            assert!(rows.iter().all(|row| *row < 1 << GLYPH_WIDTH), "{:?} wider than 5", supported.chars().nth(index));
            assert!(!glyphs[..index].contains(rows), "{:?} duplicates another", supported.chars().nth(index));
        }
        assert_eq!(glyph('A'), glyph('a'));
        assert_eq!([glyph('é'), glyph('%')], [UNKNOWN_GLYPH; 2]);
    }

    #[test]
    fn green_is_the_bt601_limited_range_triple() {
        assert_eq!(BOX_COLOUR.ycbcr_bt601_limited(), [145, 54, 34]);
        assert_eq!(TEXT_COLOUR.ycbcr_bt601_limited(), [235, 128, 128]);
        assert_eq!(LABEL_BACKGROUND.ycbcr_bt601_limited(), [16, 128, 128]);
        assert_eq!([BOX_COLOUR, TEXT_COLOUR].map(Rgb::luma_full_range), [150, 255]);
    }
}
