//! The session timeline: which session a frame belongs to, decided by when the frame was **sent**.
//!
//! dora reorders events across inputs, so a `stop` can arrive before frames its sender's peers sent
//! earlier, and a `start` can arrive after frames sent later. The timeline therefore keeps each
//! session's `[start, stop)` interval in sender time, keeps a stopped session open for a grace
//! period so late frames still reach it, and holds a few unbound frames so a late `start` can claim
//! the frames sent after it.

use std::{
    collections::VecDeque,
    time::{Duration, Instant},
};

/// One session of the run: its id and a serial that stays unique when ids repeat.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionRef {
    /// Run-unique serial, in start order.
    pub serial: u64,
    /// The user's session id.
    pub id: String,
    /// When it started, in sender time (Unix nanoseconds): time 0 of its timeline.
    pub start_nanos: u64,
}

#[derive(Debug)]
struct Span {
    session: SessionRef,
    start_nanos: u64,
    /// The earliest send time it takes: its start, or a little earlier for the run's own
    /// session (see [`Timeline::start_run`]).
    accepts_from: u64,
    stop: Option<StopMark>,
}

#[derive(Debug)]
struct StopMark {
    at_nanos: u64,
    received: Instant,
}

impl Span {
    fn contains(&self, sent_nanos: u64) -> bool {
        sent_nanos >= self.accepts_from && self.stop.as_ref().is_none_or(|stop| sent_nanos < stop.at_nanos)
    }
}

/// Sessions of one run in sender time: at most one active, plus stopped ones within their grace.
#[derive(Debug)]
pub struct Timeline {
    spans: Vec<Span>,
    grace: Duration,
    next_serial: u64,
}

impl Timeline {
    /// A timeline whose stopped sessions accept late frames for `grace` after the stop arrives.
    pub fn new(grace: Duration) -> Self {
        Self { spans: Vec::new(), grace, next_serial: 1 }
    }

    /// How long a stopped session still takes frames sent before its stop.
    pub fn grace(&self) -> Duration {
        self.grace
    }

    /// Whether no session is active or within its grace.
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// The active (not yet stopped) session.
    pub fn active(&self) -> Option<&SessionRef> {
        self.spans.iter().find(|span| span.stop.is_none()).map(|span| &span.session)
    }

    /// Starts session `id` at sender time `at_nanos`, stopping the active one at the same instant.
    /// Returns the new session and the one it ended.
    pub fn start(&mut self, id: String, at_nanos: u64, now: Instant) -> (SessionRef, Option<SessionRef>) {
        // A start stamped before the active session's start (skewed clocks) still begins after it,
        // so intervals never overlap.
        let at_nanos = self.spans.iter().map(|span| span.start_nanos).max().map_or(at_nanos, |s| s.max(at_nanos));
        let ended = self.stop(at_nanos, now);
        let session = SessionRef { serial: self.next_serial, id, start_nanos: at_nanos };
        self.next_serial += 1;
        self.spans.push(Span { session: session.clone(), start_nanos: at_nanos, accepts_from: at_nanos, stop: None });
        (session, ended)
    }

    /// Starts the run's own session (no `control`) at `first_frame_nanos`, the send time of the
    /// first frame that arrived. dora serves inputs in turn, so another camera's frame sent a
    /// moment earlier can arrive just after: the session also takes frames sent up to the grace
    /// period before its start. Its time 0 stays the first frame's, so such a frame's file starts
    /// a few milliseconds before the session, as a pre-roll file does.
    pub fn start_run(&mut self, id: String, first_frame_nanos: u64, now: Instant) -> (SessionRef, Option<SessionRef>) {
        let earliest_free =
            self.spans.iter().map(|span| span.stop.as_ref().map_or(span.start_nanos, |stop| stop.at_nanos)).max();
        let lead = u64::try_from(self.grace.as_nanos()).unwrap_or(u64::MAX);
        let started = self.start(id, first_frame_nanos, now);
        if let Some(span) = self.spans.last_mut() {
            let from = span.start_nanos.saturating_sub(lead);
            span.accepts_from = earliest_free.map_or(from, |free| from.max(free));
        }
        started
    }

    /// Stops the active session at sender time `at_nanos`; `None` if there was none.
    pub fn stop(&mut self, at_nanos: u64, now: Instant) -> Option<SessionRef> {
        let span = self.spans.iter_mut().find(|span| span.stop.is_none())?;
        span.stop = Some(StopMark { at_nanos: at_nanos.max(span.start_nanos), received: now });
        Some(span.session.clone())
    }

    /// The session a frame sent at `sent_nanos` belongs to, if any.
    pub fn route(&self, sent_nanos: u64) -> Option<&SessionRef> {
        self.spans.iter().find(|span| span.contains(sent_nanos)).map(|span| &span.session)
    }

    /// Removes and returns stopped sessions whose grace has passed: time to finalize them.
    pub fn take_expired(&mut self, now: Instant) -> Vec<SessionRef> {
        let grace = self.grace;
        self.take_where(|span| span.stop.as_ref().is_some_and(|stop| now.duration_since(stop.received) >= grace))
    }

    /// Removes and returns every session, active ones included (end of the run).
    pub fn take_all(&mut self) -> Vec<SessionRef> {
        self.take_where(|_| true)
    }

    fn take_where(&mut self, done: impl Fn(&Span) -> bool) -> Vec<SessionRef> {
        let (finished, kept): (Vec<Span>, Vec<Span>) = self.spans.drain(..).partition(|span| done(span));
        self.spans = kept;
        finished.into_iter().map(|span| span.session).collect()
    }
}

/// A bounded holding area for frames that arrived while no session covered their send time,
/// so a `start` that arrives late can still claim them.
#[derive(Debug)]
pub struct UnboundFrames<T> {
    frames: VecDeque<(u64, T)>,
    capacity: usize,
}

impl<T> UnboundFrames<T> {
    /// Holds at most `capacity` frames; older ones are released as lost.
    pub fn new(capacity: usize) -> Self {
        Self { frames: VecDeque::new(), capacity }
    }

    /// Holds a frame sent at `sent_nanos`; returns the oldest frame if it had to make room.
    pub fn hold(&mut self, sent_nanos: u64, frame: T) -> Option<T> {
        let evicted = (self.frames.len() >= self.capacity).then(|| self.frames.pop_front()).flatten();
        if self.capacity > 0 {
            self.frames.push_back((sent_nanos, frame));
        }
        evicted.map(|(_, frame)| frame)
    }

    /// Splits the held frames at a start time: those sent at or after it, in arrival order, and
    /// the number of earlier ones, which no session will claim now.
    pub fn claim_from(&mut self, start_nanos: u64) -> (Vec<T>, usize) {
        let (claimed, lost): (Vec<_>, Vec<_>) = self.frames.drain(..).partition(|(sent, _)| *sent >= start_nanos);
        (claimed.into_iter().map(|(_, frame)| frame).collect(), lost.len())
    }

    /// Releases everything held; returns how many frames that was.
    pub fn clear(&mut self) -> usize {
        let count = self.frames.len();
        self.frames.clear();
        count
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GRACE: Duration = Duration::from_millis(500);

    #[test]
    fn frames_route_by_send_time_not_arrival() {
        let t0 = Instant::now();
        let mut timeline = Timeline::new(GRACE);
        let (a, _) = timeline.start("a".into(), 100, t0);
        // The stop arrives first, the frame sent before it arrives later: it still belongs to `a`.
        assert_eq!(timeline.stop(200, t0), Some(a.clone()));
        assert_eq!(timeline.route(199), Some(&a));
        assert_eq!(timeline.route(200), None);
        assert_eq!(timeline.route(99), None);
    }

    #[test]
    fn start_while_active_ends_the_old_session_at_the_same_instant() {
        let t0 = Instant::now();
        let mut timeline = Timeline::new(GRACE);
        let (a, _) = timeline.start("a".into(), 100, t0);
        let (b, ended) = timeline.start("b".into(), 300, t0);
        assert_eq!(ended, Some(a.clone()));
        assert_eq!(timeline.route(299), Some(&a), "a frame sent before the new start stays in the old session");
        assert_eq!(timeline.route(300), Some(&b));
        assert_eq!(timeline.active(), Some(&b));
    }

    #[test]
    fn the_run_session_takes_frames_sent_within_the_grace_before_its_first_frame() {
        let t0 = Instant::now();
        let mut timeline = Timeline::new(Duration::from_nanos(50));
        let (run, _) = timeline.start_run("run".into(), 1_000, t0);
        assert_eq!(run.start_nanos, 1_000, "time 0 is the first frame's");
        assert_eq!(timeline.route(950), Some(&run), "another camera's frame sent just before");
        assert_eq!(timeline.route(949), None, "earlier than the grace: not the run's");
        assert_eq!(timeline.route(1_000), Some(&run));
    }

    #[test]
    fn the_run_session_never_takes_frames_of_a_session_before_it() {
        let t0 = Instant::now();
        let mut timeline = Timeline::new(Duration::from_nanos(50));
        timeline.start("a".into(), 100, t0);
        timeline.stop(980, t0);
        let (run, _) = timeline.start_run("run".into(), 1_000, t0);
        assert_eq!(timeline.route(979).map(|s| s.id.as_str()), Some("a"));
        assert_eq!(timeline.route(980), Some(&run));
        assert_eq!(timeline.start_run("next".into(), 900, t0).0.start_nanos, 1_000, "never before the run's start");
    }

    #[test]
    fn repeated_ids_are_distinct_sessions() {
        let t0 = Instant::now();
        let mut timeline = Timeline::new(GRACE);
        let (first, _) = timeline.start("run".into(), 1, t0);
        let (second, _) = timeline.start("run".into(), 2, t0);
        assert_ne!(first, second);
    }

    #[test]
    fn stop_without_session_is_a_no_op() {
        let mut timeline = Timeline::new(GRACE);
        assert_eq!(timeline.stop(5, Instant::now()), None);
        assert!(timeline.take_all().is_empty());
    }

    #[test]
    fn stopped_sessions_expire_after_the_grace_only() {
        let t0 = Instant::now();
        let mut timeline = Timeline::new(GRACE);
        let (a, _) = timeline.start("a".into(), 100, t0);
        timeline.stop(200, t0);
        assert!(timeline.take_expired(t0 + Duration::from_millis(499)).is_empty());
        assert_eq!(timeline.take_expired(t0 + GRACE), vec![a]);
        assert_eq!(timeline.route(150), None, "an expired session takes no more frames");
    }

    #[test]
    fn skewed_start_never_overlaps_the_previous_session() {
        let t0 = Instant::now();
        let mut timeline = Timeline::new(GRACE);
        let (a, _) = timeline.start("a".into(), 500, t0);
        let (b, _) = timeline.start("b".into(), 400, t0);
        assert_eq!(timeline.route(500), Some(&b));
        assert_eq!(timeline.route(450), None);
        assert_ne!(a, b);
    }

    #[test]
    fn late_start_claims_frames_sent_after_it() {
        let mut held = UnboundFrames::new(3);
        assert_eq!(held.hold(10, "a"), None);
        held.hold(20, "b");
        held.hold(30, "c");
        assert_eq!(held.hold(40, "d"), Some("a"), "the oldest frame makes room");
        assert_eq!(held.claim_from(30), (vec!["c", "d"], 1));
        assert_eq!(held.clear(), 0);
    }
}
