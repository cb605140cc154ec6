//! Presentation timing: the nominal frame rate, the timestamp mode and the clock that turns a
//! frame's source time into a strictly increasing PTS in the encoder's time base.

/// How presentation times are derived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimestampMode {
    /// From each frame's dora timestamp, relative to the file's first frame (variable rate).
    Source,
    /// From the frame count at the nominal rate (constant rate).
    Frame,
}

impl TimestampMode {
    /// Parses `source` or `frame`.
    pub fn parse(value: &str) -> Option<Self> {
        match value.to_ascii_lowercase().as_str() {
            "source" => Some(Self::Source),
            "frame" => Some(Self::Frame),
            _ => None,
        }
    }
}

/// A rational time base: one tick lasts `num / den` seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeBase {
    /// Numerator.
    pub num: i32,
    /// Denominator.
    pub den: i32,
}

impl TimeBase {
    /// Microseconds: fine enough for any camera, accepted by MP4 and MKV.
    pub const MICROS: Self = Self { num: 1, den: 1_000_000 };

    /// Seconds spanned by `ticks`.
    pub fn secs(self, ticks: i64) -> f64 {
        ticks as f64 * f64::from(self.num) / f64::from(self.den)
    }
}

/// A nominal frame rate as an exact fraction (29.97 is 30000/1001, not 29).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameRate {
    /// Frames...
    pub num: u32,
    /// ...per this many seconds.
    pub den: u32,
}

impl FrameRate {
    /// Parses a decimal rate such as `15`, `29.97` or `7.5`.
    pub fn parse(value: &str) -> Option<Self> {
        Self::from_f64(value.trim().parse().ok()?)
    }

    /// Converts a decimal rate, recognising the NTSC family (n*1000/1001).
    pub fn from_f64(fps: f64) -> Option<Self> {
        if !fps.is_finite() || fps <= 0.0 || fps > 1000.0 {
            return None;
        }
        let ntsc = fps * 1001.0 / 1000.0;
        if fps.fract() != 0.0 && (ntsc - ntsc.round()).abs() < 1e-3 {
            return Some(Self { num: ntsc.round() as u32 * 1000, den: 1001 });
        }
        let (num, den) = ((fps * 1000.0).round() as u32, 1000);
        let divisor = gcd(num, den);
        (num > 0).then_some(Self { num: num / divisor, den: den / divisor })
    }

    /// Frames per second as a float.
    pub fn as_f64(self) -> f64 {
        f64::from(self.num) / f64::from(self.den)
    }

    /// The time base of one frame: `den / num`.
    pub fn frame_time_base(self) -> TimeBase {
        TimeBase { num: self.den as i32, den: self.num as i32 }
    }
}

fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 { a } else { gcd(b, a % b) }
}

/// Turns frame times into strictly increasing PTS values for one file.
#[derive(Debug, Clone)]
pub struct PtsClock {
    mode: TimestampMode,
    fps: FrameRate,
    time_base: TimeBase,
    first_nanos: Option<u64>,
    last_pts: Option<i64>,
    frames: u64,
}

impl PtsClock {
    /// A clock for one file. `variable_rate` is false for containers that cannot store
    /// variable frame timing (AVI): source times are then snapped to the nominal frame grid.
    pub fn new(mode: TimestampMode, fps: FrameRate, variable_rate: bool) -> Self {
        let time_base = match mode {
            TimestampMode::Source if variable_rate => TimeBase::MICROS,
            _ => fps.frame_time_base(),
        };
        Self { mode, fps, time_base, first_nanos: None, last_pts: None, frames: 0 }
    }

    /// The encoder time base this clock counts in.
    pub fn time_base(&self) -> TimeBase {
        self.time_base
    }

    /// The PTS for a frame sent at `source_nanos`, strictly greater than the previous one.
    pub fn next_pts(&mut self, source_nanos: u64) -> i64 {
        let first = *self.first_nanos.get_or_insert(source_nanos);
        let elapsed_nanos = source_nanos.saturating_sub(first) as f64;
        let raw = match self.mode {
            TimestampMode::Frame => self.frames as i64,
            TimestampMode::Source => {
                let tick_nanos = 1e9 * f64::from(self.time_base.num) / f64::from(self.time_base.den);
                (elapsed_nanos / tick_nanos).round() as i64
            }
        };
        // Equal or backwards source times (clock jumps, duplicate stamps) would make the muxer
        // reject the packet; nudge forward by one tick instead.
        let pts = match self.last_pts {
            Some(last) if raw <= last => last + 1,
            _ => raw,
        };
        self.last_pts = Some(pts);
        self.frames += 1;
        pts
    }

    /// The file time a frame sent at `source_nanos` would get, in seconds (before the nudge that
    /// keeps PTS strictly increasing): where a segment limit is checked.
    pub fn secs_at(&self, source_nanos: u64) -> f64 {
        match (self.mode, self.first_nanos) {
            (TimestampMode::Frame, _) => self.frames as f64 / self.fps.as_f64(),
            (TimestampMode::Source, Some(first)) => source_nanos.saturating_sub(first) as f64 / 1e9,
            (TimestampMode::Source, None) => 0.0,
        }
    }

    /// Duration of one nominal frame in ticks: the last frame's display time.
    pub fn frame_duration(&self) -> i64 {
        let nominal = f64::from(self.time_base.den) / (f64::from(self.time_base.num) * self.fps.as_f64());
        (nominal.round() as i64).max(1)
    }

    /// Media duration so far: up to the end of the last frame.
    pub fn duration_secs(&self) -> f64 {
        self.last_pts.map_or(0.0, |last| self.time_base.secs(last + self.frame_duration()))
    }
}

/// One moment on both clocks the recorder uses: monotonic for deadlines (grace periods,
/// retention, stats), wall clock for events that carry no sender time (a camera input that
/// closed, the end of the run). Read once per event at the dora edge and passed down, so every
/// decision about one event sees the same time.
#[derive(Debug, Clone, Copy)]
pub struct Now {
    /// Monotonic time.
    pub instant: std::time::Instant,
    /// Wall-clock time as Unix nanoseconds (the scale of dora timestamps).
    pub unix_nanos: u64,
}

impl Now {
    /// Reads both clocks.
    pub fn read() -> Self {
        Self { instant: std::time::Instant::now(), unix_nanos: unix_nanos_now() }
    }
}

/// Wall-clock now as Unix nanoseconds: the scale of dora's timestamps (the sender's wall clock,
/// through its HLC), for events that carry no sender time.
pub fn unix_nanos_now() -> u64 {
    let since_epoch = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    u64::try_from(since_epoch.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fps(v: f64) -> FrameRate {
        FrameRate::from_f64(v).unwrap()
    }

    #[test]
    fn ntsc_rates_are_exact_fractions() {
        assert_eq!(fps(29.97), FrameRate { num: 30000, den: 1001 });
        assert_eq!(fps(59.94), FrameRate { num: 60000, den: 1001 });
        assert_eq!(fps(15.0), FrameRate { num: 15, den: 1 });
        assert_eq!(fps(7.5), FrameRate { num: 15, den: 2 });
        assert!(FrameRate::parse("0").is_none() && FrameRate::parse("abc").is_none());
        assert!(FrameRate::parse("-5").is_none() && FrameRate::parse("NaN").is_none());
    }

    #[test]
    fn source_times_give_real_duration_whatever_the_nominal_rate() {
        // A camera delivering 9.7 fps for 10 s while FPS says 15.
        let mut clock = PtsClock::new(TimestampMode::Source, fps(15.0), true);
        let interval_nanos = 1e9 / 9.7;
        let mut last = 0;
        for i in 0..97u64 {
            last = clock.next_pts(1_000_000_000_000 + (i as f64 * interval_nanos) as u64);
        }
        assert_eq!(clock.time_base(), TimeBase::MICROS);
        assert!((TimeBase::MICROS.secs(last) - 96.0 / 9.7).abs() < 1e-5);
        assert!((clock.duration_secs() - (96.0 / 9.7 + 1.0 / 15.0)).abs() < 1e-5);
    }

    #[test]
    fn pts_strictly_increase_on_equal_or_backward_times() {
        let mut clock = PtsClock::new(TimestampMode::Source, fps(30.0), true);
        let pts: Vec<i64> = [5_000, 5_000, 4_000, 2_000_000].iter().map(|t| clock.next_pts(*t)).collect();
        assert_eq!(pts, vec![0, 1, 2, 1995]);
    }

    #[test]
    fn frame_mode_counts_frames_at_the_nominal_rate() {
        let mut clock = PtsClock::new(TimestampMode::Frame, fps(29.97), true);
        let pts: Vec<i64> = [0, 10, 5_000_000_000].iter().map(|t| clock.next_pts(*t)).collect();
        assert_eq!(pts, vec![0, 1, 2]);
        assert_eq!(clock.time_base(), TimeBase { num: 1001, den: 30000 });
        assert!((clock.duration_secs() - 3.0 * 1001.0 / 30000.0).abs() < 1e-9);
    }

    #[test]
    fn constant_rate_containers_snap_source_times_to_the_grid() {
        let mut clock = PtsClock::new(TimestampMode::Source, fps(10.0), false);
        let pts: Vec<i64> = [0, 100_000_000, 310_000_000, 320_000_000].iter().map(|t| clock.next_pts(*t)).collect();
        assert_eq!(pts, vec![0, 1, 3, 4]);
        assert_eq!(clock.frame_duration(), 1);
    }

    #[test]
    fn secs_at_is_the_time_the_next_frame_would_get() {
        let mut clock = PtsClock::new(TimestampMode::Source, fps(15.0), true);
        assert_eq!(clock.secs_at(5_000_000_000), 0.0, "the first frame starts the file");
        clock.next_pts(5_000_000_000);
        assert!((clock.secs_at(7_500_000_000) - 2.5).abs() < 1e-9);
        let mut frames = PtsClock::new(TimestampMode::Frame, fps(10.0), true);
        frames.next_pts(0);
        frames.next_pts(1);
        assert!((frames.secs_at(99) - 0.2).abs() < 1e-9);
    }
}
