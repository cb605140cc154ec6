//! Splitting a long session into consecutive files (`SEGMENT_SECONDS`, `SEGMENT_BYTES`).
//!
//! A cut happens before the frame that would not fit in the current segment: that frame opens
//! the next file, whose encoder starts with a keyframe, so every segment plays on its own and no
//! frame is lost or repeated at a cut.
//!
//! A segment is at most `SEGMENT_SECONDS` long as players measure it: from its first frame to the
//! end of its last one, which a file shows for one nominal frame (`FPS`; the muxers give the
//! last sample that duration). So a frame joins the segment only if it *ends* by the limit. Cutting
//! when a frame *starts* at or after the limit let a camera slightly faster than `FPS` (a frame
//! every 66.0 ms at `FPS=15`) put 31 frames, 2.046 s, into a 2 s segment.

/// How far a frame's end may pass the limit and still fit: float rounding of the frame times,
/// well below the microsecond the files store.
const END_TOLERANCE_SECS: f64 = 1e-7;

/// When to start the next file of a session. Both limits unset: never.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct SegmentLimits {
    /// Longest segment, in seconds of video (first frame to the end of the last).
    pub max_secs: Option<f64>,
    /// Largest segment, in bytes on disk (a segment ends at the first frame past it).
    pub max_bytes: Option<u64>,
    /// How long a file shows its last frame: one nominal frame (`1 / FPS`).
    pub last_frame_secs: f64,
}

impl SegmentLimits {
    /// Whether the frame at `next_frame_secs` (file time) starts a new segment, given the file
    /// so far. A file with no frame is never cut.
    pub fn cut_before(&self, frames: u64, next_frame_secs: f64, file_bytes: impl FnOnce() -> u64) -> bool {
        if frames == 0 {
            return false;
        }
        let too_long =
            self.max_secs.is_some_and(|max| next_frame_secs + self.last_frame_secs > max + END_TOLERANCE_SECS);
        too_long || self.max_bytes.is_some_and(|max| file_bytes() >= max)
    }

    /// Whether any limit is set.
    pub fn enabled(&self) -> bool {
        self.max_secs.is_some() || self.max_bytes.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FRAME_AT_15_FPS: f64 = 1.0 / 15.0;

    fn seconds(max: f64) -> SegmentLimits {
        SegmentLimits { max_secs: Some(max), max_bytes: None, last_frame_secs: FRAME_AT_15_FPS }
    }

    /// Frames sent every `interval` seconds, cut by `limits`: the frame count of each segment
    /// and each segment's length as a player shows it.
    fn split(limits: SegmentLimits, interval: f64, frames: u32) -> Vec<(u32, f64)> {
        let mut segments = Vec::new();
        let (mut first, mut count, mut last) = (0.0, 0_u32, 0.0);
        for n in 0..frames {
            let time = f64::from(n) * interval;
            if limits.cut_before(u64::from(count), time - first, || 0) {
                segments.push((count, last - first + limits.last_frame_secs));
                (first, count) = (time, 0);
            }
            count += 1;
            last = time;
        }
        segments.push((count, last - first + limits.last_frame_secs));
        segments
    }

    #[test]
    fn no_limits_never_cut() {
        assert!(!SegmentLimits::default().cut_before(10_000, 1e6, || u64::MAX));
        assert!(!SegmentLimits::default().enabled());
    }

    #[test]
    fn a_frame_that_would_end_past_the_limit_starts_the_next_segment() {
        let limits = seconds(2.0);
        assert!(!limits.cut_before(29, 29.0 / 15.0, || 0), "frame 29 of 15 fps ends at 2.0 s: it fits");
        assert!(limits.cut_before(30, 2.0, || 0));
        assert!(limits.cut_before(30, 1.98, || 0), "ends at 2.047 s");
    }

    #[test]
    fn segments_are_at_most_the_limit_whatever_the_camera_rate() {
        // 66.0 ms (a camera slightly faster than FPS=15), exactly 15 fps, slower, much faster.
        for interval in [0.066, FRAME_AT_15_FPS, 0.0714, 0.0333, 0.1] {
            let segments = split(seconds(2.0), interval, 200);
            for &(frames, secs) in &segments {
                assert!(secs <= 2.0 + 1e-6, "{interval} s apart: {frames} frames, {secs} s");
            }
            let full = &segments[..segments.len() - 1];
            assert!(full.iter().all(|&(_, secs)| secs > 2.0 - interval - 1e-6), "{interval}: {segments:?}");
        }
        assert_eq!(split(seconds(2.0), 0.066, 150)[0], (30, 29.0 * 0.066 + FRAME_AT_15_FPS));
        assert_eq!(split(seconds(2.0), FRAME_AT_15_FPS, 150)[0].0, 30, "a steady 15 fps: 30 frames in 2 s");
    }

    #[test]
    fn bytes_are_read_only_when_a_byte_limit_is_set() {
        let limits = seconds(10.0);
        assert!(!limits.cut_before(3, 1.0, || panic!("no byte limit: no need to stat the file")));
        let limits = SegmentLimits { max_secs: None, max_bytes: Some(1000), last_frame_secs: FRAME_AT_15_FPS };
        assert!(limits.cut_before(3, 1.0, || 1000));
        assert!(!limits.cut_before(3, 1.0, || 999));
    }

    #[test]
    fn an_empty_file_is_never_cut() {
        let limits = SegmentLimits { max_secs: Some(0.0), max_bytes: Some(0), last_frame_secs: FRAME_AT_15_FPS };
        assert!(!limits.cut_before(0, 5.0, || 10));
        assert!(limits.cut_before(1, 5.0, || 10));
    }
}
