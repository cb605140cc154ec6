//! Container formats and the muxer options that make their files survive a crash.

use crate::fmp4::FRAGMENTED_MOVFLAGS;

/// Output container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Container {
    /// Fragmented MP4: playable up to the last completed fragment after a crash.
    Mp4,
    /// Matroska.
    Mkv,
    /// AVI (constant frame rate only).
    Avi,
}

/// Longest MP4 fragment in microseconds: what a crash can lose at most (plus the encoder's delay,
/// see [`super::LOOKAHEAD_SECS`]), independent of the GOP length. Fragments need not start at a
/// keyframe; each costs about 100 bytes of `moof` and one background `fdatasync`.
pub const MP4_FRAGMENT_MICROS: u32 = 300_000;

impl Container {
    /// The container of depth cameras, whatever `FORMAT` says: Matroska holds FFV1 and per-frame
    /// timestamps; FFmpeg's MP4 muxer refuses FFV1 and AVI stores a fixed frame rate.
    pub const DEPTH: Container = Container::Mkv;

    /// Parses `FORMAT`.
    pub fn parse(value: &str) -> Option<Self> {
        match value.to_ascii_lowercase().as_str() {
            "mp4" => Some(Self::Mp4),
            "mkv" | "matroska" => Some(Self::Mkv),
            "avi" => Some(Self::Avi),
            _ => None,
        }
    }

    /// File extension.
    pub fn extension(self) -> &'static str {
        match self {
            Self::Mp4 => "mp4",
            Self::Mkv => "mkv",
            Self::Avi => "avi",
        }
    }

    /// FFmpeg muxer name.
    pub fn muxer(self) -> &'static str {
        match self {
            Self::Mp4 => "mp4",
            Self::Mkv => "matroska",
            Self::Avi => "avi",
        }
    }

    /// Whether per-frame timestamps survive muxing; AVI stores a fixed frame rate.
    pub fn variable_rate(self) -> bool {
        !matches!(self, Self::Avi)
    }

    /// Whether the stream may state the nominal frame rate, given whether the file's timestamps
    /// count frames at that rate (`frame_timestamps`). Matroska writes it as the track's
    /// DefaultDuration, which players (mediainfo, OpenCV's frame count, seeks by time) trust over
    /// the blocks' own times: a camera sending every 66.0 ms under `FPS=15` then looked like 148
    /// of its 150 frames. So an MKV of source timestamps states no rate; MP4 and AVI always do
    /// (AVI is constant-rate by design; MP4 players read each sample's own duration).
    pub fn states_frame_rate(self, frame_timestamps: bool) -> bool {
        self != Self::Mkv || frame_timestamps
    }

    /// Whether codec headers go into the container header (the encoder needs GLOBAL_HEADER).
    pub fn global_header(self) -> bool {
        !matches!(self, Self::Avi)
    }

    /// Whether a finished file gets a complete index (the hybrid MP4; see [`crate::fmp4`]), and
    /// a file cut short by a write error can be trimmed to its last complete fragment.
    pub fn indexable(self) -> bool {
        self == Self::Mp4
    }

    /// Muxer options for `write_header`. `flush_packets` pushes each packet past the 32 KiB I/O
    /// buffer, without which even a fragmented MP4 loses everything on SIGKILL.
    pub fn header_options(self) -> Vec<(&'static str, String)> {
        let mut options = vec![("flush_packets", "1".to_owned())];
        if self == Self::Mp4 {
            // `use_metadata_tags` keeps our own keys (`session_id`, `camera`) in the file.
            options.push(("movflags", format!("{FRAGMENTED_MOVFLAGS}+use_metadata_tags")));
            options.push(("frag_duration", MP4_FRAGMENT_MICROS.to_string()));
        }
        options
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mp4_is_fragmented_and_flushed() {
        let options = Container::Mp4.header_options();
        assert!(options.iter().any(|(k, v)| *k == "movflags" && v.starts_with(FRAGMENTED_MOVFLAGS)));
        assert!(options.contains(&("flush_packets", "1".into())));
        assert!(!Container::Mkv.header_options().iter().any(|(k, _)| *k == "movflags"));
    }

    #[test]
    fn only_an_mkv_of_source_timestamps_keeps_the_nominal_rate_to_itself() {
        assert!(!Container::Mkv.states_frame_rate(false));
        assert!(Container::Mkv.states_frame_rate(true));
        for container in [Container::Mp4, Container::Avi] {
            assert!(container.states_frame_rate(false) && container.states_frame_rate(true), "{container:?}");
        }
    }

    #[test]
    fn only_avi_is_constant_rate() {
        assert!(Container::Mp4.variable_rate() && Container::Mkv.variable_rate());
        assert!(!Container::Avi.variable_rate() && !Container::Avi.global_header());
        assert_eq!(Container::parse("MKV"), Some(Container::Mkv));
        assert_eq!(Container::parse("mov"), None);
    }
}
