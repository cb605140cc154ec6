//! The depth test pattern: every sample a known function of the frame index and the pixel
//! position, so a test can recompute what the recorder must give back, sample for sample.
//!
//! `mono16` frames carry uint16 millimetres (a UInt16 array, as `dora-pyrealsense` sends);
//! `32FC1` frames carry the same depths as float32 metres (as `dora-pyorbbecksdk` sends), with
//! some samples replaced by values a depth camera reports for "no measurement" (NaN, infinity,
//! negative, beyond 65.535 m), which the recorder stores as 0.

use std::fmt;

/// A depth payload the test pattern can send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DepthEncoding {
    /// uint16 millimetres, a UInt16 array.
    Mono16,
    /// float32 metres, a Float32 array.
    Float32,
}

impl DepthEncoding {
    /// Both depth encodings.
    pub const ALL: [DepthEncoding; 2] = [DepthEncoding::Mono16, DepthEncoding::Float32];

    /// The name in the `encoding` metadata parameter and the `ENCODING` variable.
    pub fn name(self) -> &'static str {
        match self {
            DepthEncoding::Mono16 => "mono16",
            DepthEncoding::Float32 => "32FC1",
        }
    }

    /// Parses a name (case-insensitive, surrounding spaces ignored).
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|encoding| encoding.name().eq_ignore_ascii_case(name.trim()))
    }
}

impl fmt::Display for DepthEncoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The depth in millimetres of pixel (`x`, `y`) in frame `frame_index`: spread over the whole
/// uint16 range (both bytes vary), different in every frame.
pub fn depth_millimetres(frame_index: u64, x: u32, y: u32) -> u16 {
    let value = u64::from(x) * 263 + u64::from(y) * 4111 + frame_index.wrapping_mul(997);
    (value % 65_536) as u16
}

/// What the float pattern sends instead of a depth at pixel (`x`, `y`) of frame `frame_index`,
/// if anything: one sample in 23 is a value that means "no measurement".
pub fn invalid_metres(frame_index: u64, x: u32, y: u32) -> Option<f32> {
    let key = u64::from(x) + 3 * u64::from(y) + frame_index;
    if !key.is_multiple_of(23) {
        return None;
    }
    Some([f32::NAN, f32::INFINITY, -1.0, 70.0][(key / 23 % 4) as usize])
}

/// Frame `frame_index` as uint16 millimetres, row by row.
pub fn draw_millimetres(width: u32, height: u32, frame_index: u64) -> Vec<u16> {
    (0..height).flat_map(|y| (0..width).map(move |x| depth_millimetres(frame_index, x, y))).collect()
}

/// Frame `frame_index` as float32 metres, row by row, with the invalid samples of [`invalid_metres`].
pub fn draw_metres(width: u32, height: u32, frame_index: u64) -> Vec<f32> {
    (0..height)
        .flat_map(|y| {
            (0..width).map(move |x| {
                invalid_metres(frame_index, x, y).unwrap_or(f32::from(depth_millimetres(frame_index, x, y)) / 1000.0)
            })
        })
        .collect()
}

/// The millimetres a recording of frame `frame_index` must hold: the pattern's depths, and 0
/// where the float pattern sent no measurement.
pub fn expected_millimetres(encoding: DepthEncoding, width: u32, height: u32, frame_index: u64) -> Vec<u16> {
    let mut expected = draw_millimetres(width, height, frame_index);
    if encoding == DepthEncoding::Float32 {
        for (index, sample) in expected.iter_mut().enumerate() {
            let (x, y) = ((index % width as usize) as u32, (index / width as usize) as u32);
            if invalid_metres(frame_index, x, y).is_some() {
                *sample = 0;
            }
        }
    }
    expected
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_back_case_insensitively() {
        for encoding in DepthEncoding::ALL {
            assert_eq!(DepthEncoding::parse(&encoding.name().to_lowercase()), Some(encoding));
        }
        assert_eq!(DepthEncoding::parse("bgr8"), None);
    }

    #[test]
    fn depths_use_both_bytes_and_change_every_frame() {
        let frame = draw_millimetres(64, 48, 3);
        assert!(frame.iter().any(|&mm| mm > 60_000) && frame.iter().any(|&mm| mm < 1_000));
        assert_ne!(frame, draw_millimetres(64, 48, 4));
    }

    #[test]
    fn float_frames_hold_the_same_depths_and_every_kind_of_invalid_value() {
        let metres = draw_metres(64, 48, 5);
        let expected = expected_millimetres(DepthEncoding::Float32, 64, 48, 5);
        for (index, (sent, kept)) in metres.iter().zip(&expected).enumerate() {
            let (x, y) = ((index % 64) as u32, (index / 64) as u32);
            match invalid_metres(5, x, y) {
                Some(_) => assert_eq!(*kept, 0),
                None => assert_eq!((f64::from(*sent) * 1000.0).round() as u16, *kept),
            }
        }
        assert!(metres.iter().any(|m| m.is_nan()) && metres.iter().any(|m| m.is_infinite()));
        assert!(metres.iter().any(|m| *m < 0.0) && metres.iter().any(|m| *m > 65.535));
    }
}
