//! The pixel encodings the test pattern can produce, their payload sizes, and the colour
//! conversions (BT.601) from RGB to each.

use std::fmt;

/// A raw image encoding, named as in the dora `encoding` metadata parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// Packed 8-bit blue, green, red (OpenCV order); the ecosystem default.
    Bgr8,
    /// Packed 8-bit red, green, blue.
    Rgb8,
    /// Packed 8-bit red, green, blue, alpha (alpha is opaque).
    Rgba8,
    /// Packed 8-bit blue, green, red, alpha (alpha is opaque).
    Bgra8,
    /// 8-bit full-range luma only.
    Mono8,
    /// I420 planar: Y plane, then U plane, then V plane (chroma at half width and height,
    /// rounded up), BT.601 limited range.
    Yuv420,
    /// Y plane, then one interleaved UV plane (chroma at half width and height, rounded up),
    /// BT.601 limited range.
    Nv12,
}

impl Encoding {
    /// Every encoding, in the order they are listed to users.
    pub const ALL: [Encoding; 7] = [
        Encoding::Bgr8,
        Encoding::Rgb8,
        Encoding::Rgba8,
        Encoding::Bgra8,
        Encoding::Mono8,
        Encoding::Yuv420,
        Encoding::Nv12,
    ];

    /// The name used in the `encoding` metadata parameter and the `ENCODING` variable.
    pub fn name(self) -> &'static str {
        match self {
            Encoding::Bgr8 => "bgr8",
            Encoding::Rgb8 => "rgb8",
            Encoding::Rgba8 => "rgba8",
            Encoding::Bgra8 => "bgra8",
            Encoding::Mono8 => "mono8",
            Encoding::Yuv420 => "yuv420",
            Encoding::Nv12 => "nv12",
        }
    }

    /// Parses an encoding name (case-insensitive, surrounding spaces ignored).
    pub fn parse(name: &str) -> Option<Self> {
        let name = name.trim();
        Self::ALL.into_iter().find(|encoding| encoding.name().eq_ignore_ascii_case(name))
    }

    /// All names, comma-separated, for error messages.
    pub fn allowed_names() -> String {
        Self::ALL.map(Encoding::name).join(", ")
    }

    /// Size in bytes of one frame of `width` x `height` pixels.
    pub fn frame_len(self, width: usize, height: usize) -> usize {
        let pixels = width * height;
        match self {
            Encoding::Bgr8 | Encoding::Rgb8 => pixels * 3,
            Encoding::Rgba8 | Encoding::Bgra8 => pixels * 4,
            Encoding::Mono8 => pixels,
            Encoding::Yuv420 | Encoding::Nv12 => {
                let (chroma_width, chroma_height) = chroma_size(width, height);
                pixels + 2 * chroma_width * chroma_height
            }
        }
    }
}

impl fmt::Display for Encoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Size of one chroma plane of a 4:2:0 image: half the luma size, rounded up.
pub fn chroma_size(width: usize, height: usize) -> (usize, usize) {
    (width.div_ceil(2), height.div_ceil(2))
}

/// Full-range BT.601 luma of an RGB pixel (the `mono8` value; 0 for black, 255 for white).
pub fn luma_full_range([r, g, b]: [u8; 3]) -> u8 {
    let weighted = 77 * u32::from(r) + 150 * u32::from(g) + 29 * u32::from(b);
    clamp_u8(((weighted + 128) >> 8) as i32)
}

/// Limited-range BT.601 luma of an RGB pixel (16 for black, 235 for white).
pub fn luma_limited_range([r, g, b]: [u8; 3]) -> u8 {
    let (r, g, b) = (i32::from(r), i32::from(g), i32::from(b));
    clamp_u8(((66 * r + 129 * g + 25 * b + 128) >> 8) + 16)
}

/// Limited-range BT.601 chroma (U, V) of an RGB pixel, as `i32` so callers can average them.
pub fn chroma_limited_range([r, g, b]: [u8; 3]) -> (i32, i32) {
    let (r, g, b) = (i32::from(r), i32::from(g), i32::from(b));
    let u = ((-38 * r - 74 * g + 112 * b + 128) >> 8) + 128;
    let v = ((112 * r - 94 * g - 18 * b + 128) >> 8) + 128;
    (u, v)
}

/// RGB of a limited-range BT.601 (Y, U, V) sample: the inverse of [`luma_limited_range`] and
/// [`chroma_limited_range`], up to rounding.
pub fn rgb_from_limited_yuv(y: u8, u: u8, v: u8) -> [u8; 3] {
    let luma = 298 * (i32::from(y) - 16) + 128;
    let (u, v) = (i32::from(u) - 128, i32::from(v) - 128);
    [clamp_u8((luma + 409 * v) >> 8), clamp_u8((luma - 100 * u - 208 * v) >> 8), clamp_u8((luma + 516 * u) >> 8)]
}

/// Saturates an integer to the `u8` range.
pub fn clamp_u8(value: i32) -> u8 {
    // The clamp makes the narrowing cast lossless.
    value.clamp(0, 255) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_parses_back_to_its_encoding() {
        for encoding in Encoding::ALL {
            assert_eq!(Encoding::parse(encoding.name()), Some(encoding));
        }
        assert_eq!(Encoding::parse(" NV12 "), Some(Encoding::Nv12));
        assert_eq!(Encoding::parse("yuv422"), None);
    }

    #[test]
    fn frame_len_rounds_chroma_up_for_odd_sizes() {
        assert_eq!(Encoding::Bgr8.frame_len(641, 481), 641 * 481 * 3);
        assert_eq!(Encoding::Rgba8.frame_len(641, 481), 641 * 481 * 4);
        assert_eq!(Encoding::Mono8.frame_len(641, 481), 641 * 481);
        assert_eq!(Encoding::Yuv420.frame_len(641, 481), 641 * 481 + 2 * 321 * 241);
        assert_eq!(Encoding::Nv12.frame_len(640, 480), 640 * 480 * 3 / 2);
    }

    #[test]
    fn white_and_black_map_to_range_ends() {
        assert_eq!(luma_full_range([255, 255, 255]), 255);
        assert_eq!(luma_full_range([0, 0, 0]), 0);
        assert_eq!(luma_limited_range([255, 255, 255]), 235);
        assert_eq!(luma_limited_range([0, 0, 0]), 16);
        assert_eq!(chroma_limited_range([255, 255, 255]), (128, 128));
        assert_eq!(chroma_limited_range([0, 0, 0]), (128, 128));
    }

    #[test]
    fn yuv_to_rgb_inverts_rgb_to_yuv_within_rounding() {
        for rgb in [[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 255], [0, 0, 0], [64, 191, 100], [191, 64, 64]] {
            let (u, v) = chroma_limited_range(rgb);
            let back = rgb_from_limited_yuv(luma_limited_range(rgb), clamp_u8(u), clamp_u8(v));
            for (original, converted) in rgb.iter().zip(back) {
                assert!(original.abs_diff(converted) <= 3, "{rgb:?} came back as {back:?}");
            }
        }
    }
}
