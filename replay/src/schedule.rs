//! When each message goes out: recorded times on the session timeline turned into instants of
//! the monotonic clock. Plain logic, no I/O.
//!
//! Every deadline is computed from the pass's anchor (`anchor + (t - origin) / rate`), never by
//! adding up sleeps, so a late wake-up delays one message, not all that follow.

use std::time::{Duration, Instant};

use crate::config::Rate;

/// The part of the session timeline to play, in nanoseconds from the session start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// First time played (inclusive).
    pub start_ns: i64,
    /// Where playing ends (exclusive); `None` plays to the end.
    pub end_ns: Option<i64>,
}

impl Window {
    /// The window from `START` to `END` seconds (either may be unset).
    pub fn from_secs(start_secs: Option<f64>, end_secs: Option<f64>) -> Self {
        let nanos = |secs: f64| (secs * 1e9).round() as i64;
        Self { start_ns: start_secs.map_or(i64::MIN, nanos), end_ns: end_secs.map(nanos) }
    }

    /// Whether a message at session time `time_ns` is played.
    pub fn contains(&self, time_ns: i64) -> bool {
        time_ns >= self.start_ns && self.end_ns.is_none_or(|end| time_ns < end)
    }

    /// Whether everything from `time_ns` on lies past the window's end.
    pub fn is_past(&self, time_ns: i64) -> bool {
        self.end_ns.is_some_and(|end| time_ns >= end)
    }
}

/// One pass over the recording: session time `origin_ns` is sent at `anchor`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pass {
    anchor: Instant,
    origin_ns: i64,
    rate: Rate,
}

impl Pass {
    /// A pass that sends session time `origin_ns` at `anchor`, `rate` times as fast as recorded.
    pub fn new(anchor: Instant, origin_ns: i64, rate: Rate) -> Self {
        Self { anchor, origin_ns, rate }
    }

    /// When the message at session time `time_ns` is due; `None` when unpaced (send at once).
    /// A time before the origin is due at the anchor.
    pub fn deadline(&self, time_ns: i64) -> Option<Instant> {
        let Rate::Times(rate) = self.rate else { return None };
        let recorded = time_ns.saturating_sub(self.origin_ns).max(0) as f64;
        Some(self.anchor + Duration::from_nanos((recorded / rate).round() as u64))
    }

    /// The next pass of a loop: the same origin, anchored `gap_ns` (recorded time) after the
    /// deadline of `last_ns`, the last message of this pass. Unpaced passes anchor at `now`.
    pub fn next(&self, last_ns: i64, gap_ns: i64, now: Instant) -> Self {
        let anchor = match self.rate {
            Rate::Times(_) => self.deadline(last_ns.saturating_add(gap_ns)).unwrap_or(now),
            Rate::Unpaced => now,
        };
        Self { anchor, origin_ns: self.origin_ns, rate: self.rate }
    }
}

/// How long to wait before a message due at `deadline`, at most `slice` so that the caller can
/// look at dora's events in between; `None` when it is due.
pub fn wait_for(deadline: Option<Instant>, now: Instant, slice: Duration) -> Option<Duration> {
    let left = deadline?.checked_duration_since(now)?;
    (!left.is_zero()).then(|| left.min(slice))
}

/// What one send is expected to cost: dora sends each message with a round trip to its daemon,
/// 0.1 ms on an idle machine, a few ms on a busy one. A running average of the recent sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SendCost {
    estimate: Duration,
}

impl Default for SendCost {
    fn default() -> Self {
        Self::new(Duration::from_micros(500))
    }
}

impl SendCost {
    /// An estimate starting at `estimate`.
    pub fn new(estimate: Duration) -> Self {
        Self { estimate }
    }

    /// A send took `took`: moves the estimate an eighth of the way towards it.
    pub fn observe(&mut self, took: Duration) {
        self.estimate = (self.estimate * 7 + took) / 8;
    }

    /// The expected cost of the next send.
    pub fn estimate(&self) -> Duration {
        self.estimate
    }

    /// How much earlier than its deadline to send a frame when the next frame is due `gap`
    /// after it: while one send is in flight the next waits, so two frames closer than a send
    /// share the delay, the first going out early by half the overlap and the second late by
    /// the other half, instead of the second taking it all.
    pub fn lead_before(&self, gap: Duration) -> Duration {
        self.estimate.saturating_sub(gap) / 2
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: i64 = 1_000_000;

    #[test]
    fn deadlines_keep_the_recorded_intervals_at_rate_one() {
        let anchor = Instant::now();
        let pass = Pass::new(anchor, 500 * MS, Rate::Times(1.0));
        assert_eq!(pass.deadline(500 * MS), Some(anchor));
        assert_eq!(pass.deadline(533 * MS), Some(anchor + Duration::from_millis(33)));
        assert_eq!(pass.deadline(1_700 * MS), Some(anchor + Duration::from_millis(1_200)));
        assert_eq!(pass.deadline(0), Some(anchor), "before the origin: at once");
    }

    #[test]
    fn rate_two_halves_every_interval_and_unpaced_never_waits() {
        let anchor = Instant::now();
        let double = Pass::new(anchor, 0, Rate::Times(2.0));
        assert_eq!(double.deadline(1_000 * MS), Some(anchor + Duration::from_millis(500)));
        assert_eq!(double.deadline(33 * MS), Some(anchor + Duration::from_micros(16_500)));
        assert_eq!(Pass::new(anchor, 0, Rate::Unpaced).deadline(5_000 * MS), None);
    }

    #[test]
    fn deadlines_are_computed_from_the_anchor_not_summed() {
        let anchor = Instant::now();
        let pass = Pass::new(anchor, 0, Rate::Times(3.0));
        // 1000 steps of 1 ms at rate 3 would drift by rounding if summed; from the anchor it cannot.
        assert_eq!(pass.deadline(1_000 * MS), Some(anchor + Duration::from_nanos(333_333_333)));
    }

    #[test]
    fn the_window_cuts_at_start_inclusive_and_end_exclusive() {
        let window = Window::from_secs(Some(1.0), Some(2.5));
        assert!(!window.contains(999 * MS));
        assert!(window.contains(1_000 * MS));
        assert!(window.contains(2_499 * MS));
        assert!(!window.contains(2_500 * MS));
        assert!(window.is_past(2_500 * MS) && !window.is_past(2_000 * MS));
        let all = Window::from_secs(None, None);
        assert!(all.contains(-5 * MS) && all.contains(i64::MAX) && !all.is_past(i64::MAX));
    }

    #[test]
    fn a_loop_starts_again_one_gap_after_the_last_message() {
        let anchor = Instant::now();
        let pass = Pass::new(anchor, 100 * MS, Rate::Times(2.0));
        let next = pass.next(2_100 * MS, 100 * MS, anchor);
        // 2 s of recording at rate 2 is 1 s, plus half of the 100 ms gap.
        assert_eq!(next.deadline(100 * MS), Some(anchor + Duration::from_millis(1_050)));
        let later = Instant::now();
        assert_eq!(Pass::new(anchor, 0, Rate::Unpaced).next(9, 1, later), Pass::new(later, 0, Rate::Unpaced));
    }

    #[test]
    fn frames_closer_than_a_send_share_its_delay() {
        let mut cost = SendCost::default();
        for _ in 0..64 {
            cost.observe(Duration::from_millis(3));
        }
        assert!(cost.estimate().abs_diff(Duration::from_millis(3)) < Duration::from_micros(10), "{cost:?}");
        let cost = SendCost::new(Duration::from_millis(3));
        assert_eq!(cost.lead_before(Duration::from_millis(1)), Duration::from_millis(1));
        assert_eq!(cost.lead_before(Duration::ZERO), Duration::from_micros(1_500));
        assert_eq!(cost.lead_before(Duration::from_millis(5)), Duration::ZERO, "far apart: on time");
    }

    #[test]
    fn waits_are_sliced_and_end_at_the_deadline() {
        let now = Instant::now();
        let slice = Duration::from_millis(50);
        assert_eq!(wait_for(Some(now + Duration::from_millis(20)), now, slice), Some(Duration::from_millis(20)));
        assert_eq!(wait_for(Some(now + Duration::from_secs(3)), now, slice), Some(slice));
        assert_eq!(wait_for(Some(now), now, slice), None);
        assert_eq!(wait_for(None, now, slice), None);
    }
}
