//! Encoder settings a user chooses: preset, rate control, keyframe interval and how much delay
//! the encoder may add. Pure values; [`super::EncoderKind::options`] maps them per encoder.

/// Presets accepted by libx264 and libx265 (NVENC gets the nearest `p1`..`p7`).
pub const PRESETS: [&str; 9] =
    ["ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow"];

/// Look-ahead the encoder may use by default, in seconds of video. Frames inside the encoder are
/// not in the file yet, so this is part of what a crash loses: x264 holds its `rc-lookahead`
/// plus one frame per extra frame thread. 0.2 s keeps most of macroblock-tree's gain (it needs
/// a few frames to see which blocks are referenced) while the loss on a kill stays under 1 s.
pub const LOOKAHEAD_SECS: f64 = 0.2;

/// Most encoder threads a user may ask for.
pub const MAX_THREADS: u32 = 64;

/// Encoder threads by default: one per core. x264's own default, 1.5 per core, holds more frames
/// in flight: on 2 cores at 1080p, 3 threads took 22 MB more at veryfast for no gain in speed,
/// and 24 MB more at medium for about 6% more speed (`scripts/soak.sh`, node/benches/encode.rs).
pub fn default_threads() -> u32 {
    std::thread::available_parallelism()
        .map_or(1, |cores| u32::try_from(cores.get()).unwrap_or(MAX_THREADS).min(MAX_THREADS))
}

/// Rate control: constant quality (default) or constant bitrate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateControl {
    /// Constant rate factor (libx264/libx265 `crf`, NVENC `cq`).
    Crf(u8),
    /// Target bits per second.
    Bitrate(u64),
}

/// How much delay the encoder may hold frames for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Latency {
    /// A look-ahead of this many frames (about [`LOOKAHEAD_SECS`]): most of the compression,
    /// a bounded loss on a crash.
    Lookahead(u32),
    /// `tune=zerolatency`: every frame leaves the encoder at once (least lost on a crash), for
    /// about 30% more bytes on noisy content.
    Zero,
}

impl Latency {
    /// The default latency for a nominal frame rate: [`LOOKAHEAD_SECS`] of frames, at least one.
    pub fn for_fps(fps: f64) -> Self {
        Self::Lookahead(((fps * LOOKAHEAD_SECS).round() as u32).max(1))
    }
}

/// Encoder quality settings shared by all cameras.
#[derive(Debug, Clone, PartialEq)]
pub struct Quality {
    /// x264-style preset name, one of [`PRESETS`].
    pub preset: String,
    /// Constant quality or constant bitrate.
    pub rate: RateControl,
    /// Keyframe interval in frames.
    pub gop_frames: u32,
    /// Delay the encoder may add.
    pub latency: Latency,
    /// Frame threads of the software encoders (x264 `threads`, x265 `pools`).
    pub threads: u32,
}

impl Quality {
    /// Default latency for `fps`, with the given preset, rate and GOP.
    pub fn new(preset: &str, rate: RateControl, gop_frames: u32, fps: f64) -> Self {
        Self { preset: preset.to_owned(), rate, gop_frames, latency: Latency::for_fps(fps), threads: default_threads() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_lookahead_is_a_fifth_of_a_second_of_frames() {
        assert_eq!(Latency::for_fps(15.0), Latency::Lookahead(3));
        assert_eq!(Latency::for_fps(30.0), Latency::Lookahead(6));
        assert_eq!(Latency::for_fps(1.0), Latency::Lookahead(1), "never zero: x264 needs one for mbtree");
    }

    #[test]
    fn default_threads_are_one_per_core_within_bounds() {
        let threads = default_threads();
        assert!((1..=MAX_THREADS).contains(&threads));
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        assert_eq!(threads as usize, cores.min(MAX_THREADS as usize));
    }
}
