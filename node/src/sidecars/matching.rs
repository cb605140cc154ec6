//! Which video frame a detection belongs to: plain logic, no I/O.
//!
//! A detector answers a few frames after the camera sent the frame, and the frame itself spends
//! a few frames' time inside the encoder, so a detection may arrive before or after its frame
//! reaches the video. The matcher keeps the recent frames written into the video and the
//! detections still waiting for theirs, and hands back each detection once its frame is decided,
//! in arrival order.

use std::{
    collections::{BTreeMap, VecDeque},
    sync::Arc,
};

/// How many recent frames a detection can still be matched with (seconds of video at 30 fps).
pub const RECENT_FRAMES: usize = 300;
/// Detections waiting for their frame to reach the video (it may still be in the encoder): at
/// most this many, the oldest are then decided with the best match so far.
pub const MAX_PENDING: usize = 300;
/// A detection whose frame has not been written this long after its time gives up waiting and
/// takes the latest frame at or before it.
pub const WAIT_FOR_FRAME_NANOS: u64 = 2_000_000_000;

/// A detection whose frame is decided.
#[derive(Debug, Clone, PartialEq)]
pub struct Matched<T> {
    /// The frame's number in the video; `None` when it came before the video's first frame.
    pub frame: Option<u64>,
    /// The detection's dora timestamp.
    pub time_ns: u64,
    /// What the detector sent.
    pub detection: T,
}

/// A detection not yet decided: its frame may not be in the video yet.
#[derive(Debug, Clone)]
struct Pending<T> {
    time_ns: u64,
    ids: BTreeMap<String, String>,
    detection: T,
}

/// A frame written into the video, as detections refer to it.
#[derive(Debug, Clone)]
struct RecentFrame {
    number: u64,
    time_ns: u64,
    ids: Arc<BTreeMap<String, String>>,
}

/// The recent frames of one video and the detections waiting for theirs.
#[derive(Debug)]
pub struct FrameMatcher<T> {
    recent: VecDeque<RecentFrame>,
    pending: VecDeque<Pending<T>>,
}

impl<T> Default for FrameMatcher<T> {
    fn default() -> Self {
        Self { recent: VecDeque::new(), pending: VecDeque::new() }
    }
}

impl<T> FrameMatcher<T> {
    /// Frame `number` of the video, sent at `time_ns` with identifying metadata `ids`, is in the
    /// video; returns the detections this decides, oldest first.
    pub fn frame_written(&mut self, number: u64, time_ns: u64, ids: &Arc<BTreeMap<String, String>>) -> Vec<Matched<T>> {
        if self.recent.len() == RECENT_FRAMES {
            self.recent.pop_front();
        }
        self.recent.push_back(RecentFrame { number, time_ns, ids: Arc::clone(ids) });
        self.take_decided(false)
    }

    /// A detector's output stamped `time_ns` with identifying metadata `ids`; returns the
    /// detections decided now (this one once its frame is known), oldest first: lines keep their
    /// arrival order.
    pub fn detection(&mut self, time_ns: u64, ids: BTreeMap<String, String>, detection: T) -> Vec<Matched<T>> {
        self.pending.push_back(Pending { time_ns, ids, detection });
        self.take_decided(false)
    }

    /// The video ends: decides every waiting detection with what the video holds.
    pub fn finish(&mut self) -> Vec<Matched<T>> {
        self.take_decided(true)
    }

    /// The frame a detection belongs to: the recent frame whose identifying metadata (e.g.
    /// `frame_index`, passed through by dora-yolo) equals the detection's on every key they
    /// share, else the latest frame sent at or before the detection's time. Among several frames
    /// that match on keys (keys that never change, like a camera name), the time rule decides.
    pub fn match_frame(&self, time_ns: u64, ids: &BTreeMap<String, String>) -> Option<u64> {
        let by_ids = self.frames_with_ids(ids);
        let candidates: Vec<&RecentFrame> = if by_ids.is_empty() { self.recent.iter().collect() } else { by_ids };
        let at_or_before = candidates.iter().rev().find(|frame| frame.time_ns <= time_ns);
        match (at_or_before, candidates.len()) {
            (Some(frame), _) => Some(frame.number),
            // Matched by id but sent after the detection's stamp (clock skew): still that frame.
            (None, 1) if !self.recent.is_empty() && ids.keys().any(|k| candidates[0].ids.contains_key(k)) => {
                Some(candidates[0].number)
            }
            _ => None,
        }
    }

    /// The waiting detections whose frame is known, oldest first; `at_end` decides the rest with
    /// what the video holds.
    fn take_decided(&mut self, at_end: bool) -> Vec<Matched<T>> {
        let mut decided = Vec::new();
        while let Some(pending) = self.pending.front() {
            let force = at_end || self.pending.len() > MAX_PENDING;
            let Some(frame) = self.resolve(pending, force) else { break };
            if let Some(pending) = self.pending.pop_front() {
                decided.push(Matched { frame, time_ns: pending.time_ns, detection: pending.detection });
            }
        }
        decided
    }

    /// The frame of `pending` once it is decided: `Some(Some(n))` frame `n`, `Some(None)` no frame
    /// (before the video's first), `None` not yet (its frame may still be in the encoder).
    fn resolve(&self, pending: &Pending<T>, force: bool) -> Option<Option<u64>> {
        let by_ids = self.frames_with_ids(&pending.ids);
        if by_ids.len() == 1 {
            return Some(by_ids.first().map(|frame| frame.number));
        }
        let newest = self.recent.back().map_or(0, |frame| frame.time_ns);
        let waited_long = newest > pending.time_ns.saturating_add(WAIT_FOR_FRAME_NANOS);
        let names_a_frame = !self.recent.is_empty() && self.shares_a_key(&pending.ids);
        let decided = if by_ids.is_empty() && names_a_frame {
            // Its frame (by id) is not written yet.
            force || waited_long
        } else {
            // The time rule is final once a later frame is in the video.
            force || newest > pending.time_ns
        };
        decided.then(|| self.match_frame(pending.time_ns, &pending.ids))
    }

    /// Recent frames whose identifying metadata equals `ids` on every key they share (and share
    /// at least one).
    fn frames_with_ids(&self, ids: &BTreeMap<String, String>) -> Vec<&RecentFrame> {
        let same = |frame: &RecentFrame| ids.iter().all(|(key, value)| frame.ids.get(key).is_none_or(|v| v == value));
        self.recent.iter().filter(|frame| ids.keys().any(|key| frame.ids.contains_key(key)) && same(frame)).collect()
    }

    fn shares_a_key(&self, ids: &BTreeMap<String, String>) -> bool {
        self.recent.iter().any(|frame| ids.keys().any(|key| frame.ids.contains_key(key)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    fn frame_ids(n: u64) -> Arc<BTreeMap<String, String>> {
        Arc::new(ids(&[("frame_index", &n.to_string())]))
    }

    fn frames(decided: &[Matched<&'static str>]) -> Vec<(Option<u64>, &'static str)> {
        decided.iter().map(|m| (m.frame, m.detection)).collect()
    }

    #[test]
    fn detections_match_frames_by_id_before_time() {
        let mut matcher = FrameMatcher::<()>::default();
        for n in 0..5u64 {
            let frame_ids = ids(&[("frame_index", &n.to_string()), ("camera", "front")]);
            matcher.frame_written(n, 100 * (n + 1), &Arc::new(frame_ids));
        }
        assert_eq!(matcher.match_frame(1_000, &ids(&[("frame_index", "2"), ("camera", "front")])), Some(2));
        assert_eq!(matcher.match_frame(250, &ids(&[("camera", "front")])), Some(1), "a constant key: time decides");
        assert_eq!(matcher.match_frame(350, &BTreeMap::new()), Some(2), "latest frame at or before");
        assert_eq!(matcher.match_frame(50, &BTreeMap::new()), None, "before the first frame");
        assert_eq!(matcher.match_frame(10, &ids(&[("frame_index", "4")])), Some(4), "an id match survives clock skew");
    }

    #[test]
    fn a_detection_waits_for_its_frame_to_reach_the_video() {
        let mut matcher = FrameMatcher::default();
        assert!(matcher.frame_written(0, 100, &frame_ids(10)).is_empty());
        // The detector saw frame_index 12, still inside the encoder; another has no id.
        assert!(matcher.detection(350, ids(&[("frame_index", "12")]), "by id").is_empty());
        assert!(matcher.detection(360, BTreeMap::new(), "by time").is_empty(), "lines keep their order");
        assert!(matcher.frame_written(1, 200, &frame_ids(11)).is_empty());
        assert_eq!(frames(&matcher.frame_written(2, 300, &frame_ids(12))), [(Some(2), "by id")]);
        assert_eq!(
            frames(&matcher.frame_written(3, 400, &frame_ids(13))),
            [(Some(2), "by time")],
            "the time match waits for a later frame: the latest at or before 360 ns"
        );
    }

    #[test]
    fn waiting_detections_are_decided_at_the_end_with_the_best_match() {
        let mut matcher = FrameMatcher::default();
        matcher.frame_written(0, 100, &frame_ids(1));
        assert!(matcher.detection(500, ids(&[("frame_index", "99")]), "unknown id").is_empty());
        assert_eq!(frames(&matcher.finish()), [(Some(0), "unknown id")]);
        assert!(matcher.finish().is_empty(), "nothing is decided twice");
    }

    #[test]
    fn a_detection_whose_frame_never_comes_gives_up_after_the_wait() {
        let mut matcher = FrameMatcher::default();
        matcher.frame_written(0, 1_000, &frame_ids(1));
        assert!(matcher.detection(1_000, ids(&[("frame_index", "7")]), "lost frame").is_empty());
        assert!(matcher.frame_written(1, 1_000 + WAIT_FOR_FRAME_NANOS, &frame_ids(2)).is_empty());
        assert_eq!(
            frames(&matcher.frame_written(2, 1_001 + WAIT_FOR_FRAME_NANOS, &frame_ids(3))),
            [(Some(0), "lost frame")]
        );
    }

    #[test]
    fn a_detection_before_the_first_frame_belongs_to_none() {
        let mut matcher = FrameMatcher::default();
        matcher.detection(5, BTreeMap::new(), "early");
        assert_eq!(frames(&matcher.frame_written(0, 10, &frame_ids(0))), [(None, "early")]);
    }

    #[test]
    fn too_many_waiting_detections_decide_the_oldest() {
        let mut matcher = FrameMatcher::default();
        matcher.frame_written(0, 100, &frame_ids(0));
        let waiting = ids(&[("frame_index", "1")]);
        for _ in 0..MAX_PENDING {
            assert!(matcher.detection(100, waiting.clone(), "waits").is_empty());
        }
        assert_eq!(frames(&matcher.detection(100, waiting, "one too many")), [(Some(0), "waits")]);
    }

    #[test]
    fn only_the_recent_frames_are_kept() {
        let mut matcher = FrameMatcher::<()>::default();
        for n in 0..(RECENT_FRAMES as u64 + 10) {
            matcher.frame_written(n, n, &frame_ids(n));
        }
        assert_eq!(matcher.match_frame(0, &ids(&[("frame_index", "0")])), None, "frame 0 left the window");
        assert_eq!(matcher.match_frame(0, &ids(&[("frame_index", "10")])), Some(10), "the oldest one kept");
    }
}
