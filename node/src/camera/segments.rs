//! Splitting a long session into consecutive files (`SEGMENT_SECONDS`, `SEGMENT_BYTES`).
//!
//! A cut happens before the frame that would start the next segment: that frame opens the next
//! file, whose encoder starts with a keyframe, so every segment plays on its own and no frame is
//! lost or repeated at a cut.

/// When to start the next file of a session. Both unset: never.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct SegmentLimits {
    /// Longest segment, in seconds of video.
    pub max_secs: Option<f64>,
    /// Largest segment, in bytes on disk (a segment ends at the first frame past it).
    pub max_bytes: Option<u64>,
}

impl SegmentLimits {
    /// Whether the frame at `next_frame_secs` (file time) starts a new segment, given the file
    /// so far. A file with no frame is never cut.
    pub fn cut_before(&self, frames: u64, next_frame_secs: f64, file_bytes: impl FnOnce() -> u64) -> bool {
        if frames == 0 {
            return false;
        }
        let too_long = self.max_secs.is_some_and(|max| next_frame_secs >= max);
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

    #[test]
    fn no_limits_never_cut() {
        assert!(!SegmentLimits::default().cut_before(10_000, 1e6, || u64::MAX));
        assert!(!SegmentLimits::default().enabled());
    }

    #[test]
    fn the_frame_at_the_limit_starts_the_next_segment() {
        let limits = SegmentLimits { max_secs: Some(2.0), max_bytes: None };
        assert!(!limits.cut_before(30, 1.999, || 0));
        assert!(limits.cut_before(30, 2.0, || 0));
    }

    #[test]
    fn bytes_are_read_only_when_a_byte_limit_is_set() {
        let limits = SegmentLimits { max_secs: Some(10.0), max_bytes: None };
        assert!(!limits.cut_before(3, 1.0, || panic!("no byte limit: no need to stat the file")));
        let limits = SegmentLimits { max_secs: None, max_bytes: Some(1000) };
        assert!(limits.cut_before(3, 1.0, || 1000));
        assert!(!limits.cut_before(3, 1.0, || 999));
    }

    #[test]
    fn an_empty_file_is_never_cut() {
        let limits = SegmentLimits { max_secs: Some(0.0), max_bytes: Some(0) };
        assert!(!limits.cut_before(0, 5.0, || 10));
        assert!(limits.cut_before(1, 5.0, || 10));
    }
}
