//! Cameras whose sender went away (input closed, node failed or restarted). Their recorder is
//! moved aside here: frames the camera sent before it went away still reach it for a grace
//! period (dora may deliver them after the close notice), frames sent after go to a new file,
//! and the recorder is finalized when the grace ends.

use std::time::Instant;

/// A recorder set aside because its camera went away.
#[derive(Debug)]
struct Closing<K, R> {
    key: K,
    closed_nanos: u64,
    finish_at: Instant,
    recorder: R,
}

/// Recorders of cameras that went away, waiting for their last frames.
#[derive(Debug)]
pub struct ClosingCameras<K, R> {
    closing: Vec<Closing<K, R>>,
}

impl<K, R> Default for ClosingCameras<K, R> {
    fn default() -> Self {
        Self { closing: Vec::new() }
    }
}

impl<K: PartialEq, R> ClosingCameras<K, R> {
    /// Sets `recorder` aside: it takes frames sent before `closed_nanos` until `finish_at`.
    pub fn close(&mut self, key: K, recorder: R, closed_nanos: u64, finish_at: Instant) {
        self.closing.push(Closing { key, closed_nanos, finish_at, recorder });
    }

    /// The set-aside recorder for a frame of `key` sent at `sent_nanos`, if it predates the close.
    pub fn route(&self, key: &K, sent_nanos: u64) -> Option<&R> {
        self.closing.iter().find(|c| c.key == *key && sent_nanos < c.closed_nanos).map(|c| &c.recorder)
    }

    /// Whether no recorder is set aside.
    pub fn is_empty(&self) -> bool {
        self.closing.is_empty()
    }

    /// Recorders whose grace has ended: time to finalize them.
    pub fn take_due(&mut self, now: Instant) -> Vec<R> {
        self.take_where(|c| c.finish_at <= now)
    }

    /// Recorders whose key matches, whatever their grace (their session ended).
    pub fn take_matching(&mut self, matches: impl Fn(&K) -> bool) -> Vec<R> {
        self.take_where(|c| matches(&c.key))
    }

    fn take_where(&mut self, done: impl Fn(&Closing<K, R>) -> bool) -> Vec<R> {
        let (taken, kept): (Vec<_>, Vec<_>) = self.closing.drain(..).partition(|c| done(c));
        self.closing = kept;
        taken.into_iter().map(|c| c.recorder).collect()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn frames_sent_before_the_close_reach_the_old_recorder_later_ones_do_not() {
        let t0 = Instant::now();
        let mut closing = ClosingCameras::default();
        closing.close("wrist", "old file", 1_000, t0 + Duration::from_millis(500));
        assert_eq!(closing.route(&"wrist", 999), Some(&"old file"));
        assert_eq!(closing.route(&"wrist", 1_000), None, "sent after the close: a new file");
        assert_eq!(closing.route(&"front", 10), None);
    }

    #[test]
    fn recorders_finish_when_their_grace_ends_or_their_session_does() {
        let t0 = Instant::now();
        let mut closing = ClosingCameras::default();
        closing.close((1, "a"), "a", 5, t0 + Duration::from_millis(500));
        closing.close((2, "b"), "b", 5, t0 + Duration::from_secs(9));
        assert!(closing.take_due(t0).is_empty());
        assert_eq!(closing.take_due(t0 + Duration::from_millis(500)), vec!["a"]);
        assert_eq!(closing.take_matching(|(serial, _)| *serial == 2), vec!["b"]);
        assert!(closing.take_due(t0 + Duration::from_secs(60)).is_empty());
    }
}
