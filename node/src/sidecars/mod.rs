//! What goes beside a video file: its frame index (`NAME.frames.csv`), the detections that
//! belong to its frames (`NAME.detections.jsonl`), and the table of recent frames detections are
//! matched against. Written as frames are encoded and flushed after every row, so after a crash
//! the index covers at least every frame the video still holds.

pub mod index;
pub mod live;
pub mod manifest;

use std::{
    collections::{BTreeMap, VecDeque},
    io,
    path::{Path, PathBuf},
};

use crate::{
    detections::{DetectionLog, Detections, detections_path},
    sidecars::index::{FrameIndex, index_path},
};

/// How many recent frames a detection can still be matched with (seconds of video at 30 fps).
const RECENT_FRAMES: usize = 300;
/// Detections waiting for their frame to reach the video (it may still be in the encoder): at
/// most this many, the oldest are then written with the best match so far.
const MAX_PENDING: usize = 300;
/// A detection whose frame has not been written this long after its time gives up waiting and
/// takes the latest frame at or before it.
const WAIT_FOR_FRAME_NANOS: u64 = 2_000_000_000;

/// A detector message not yet written: its frame is not in the video yet.
#[derive(Debug, Clone)]
struct PendingDetection {
    time_ns: u64,
    ids: BTreeMap<String, String>,
    detections: Detections,
}

/// A frame written into the video, as detections refer to it.
#[derive(Debug, Clone)]
struct RecentFrame {
    number: u64,
    time_ns: u64,
    ids: std::sync::Arc<BTreeMap<String, String>>,
}

/// The side files of one video.
#[derive(Debug)]
pub struct Sidecars {
    video: PathBuf,
    index: Option<FrameIndex>,
    detections: Option<DetectionLog>,
    recent: VecDeque<RecentFrame>,
    pending: VecDeque<PendingDetection>,
    /// The first I/O error, reported once with the file; the video goes on without the sidecar.
    error: Option<String>,
}

impl Sidecars {
    /// Starts the index of `video`, with columns for the identifying metadata keys of its first
    /// frame.
    pub fn open(video: &Path, first_frame_ids: &BTreeMap<String, String>) -> Self {
        let mut sidecars = Self {
            video: video.to_owned(),
            index: None,
            detections: None,
            recent: VecDeque::new(),
            pending: VecDeque::new(),
            error: None,
        };
        let columns = first_frame_ids.keys().cloned().collect();
        sidecars.index = sidecars.keep(FrameIndex::create(&index_path(video), columns));
        sidecars
    }

    /// Frame `number` of the video was written at `pts_secs` (file time).
    pub fn frame_written(
        &mut self,
        number: u64,
        pts_secs: f64,
        time_ns: u64,
        ids: &std::sync::Arc<BTreeMap<String, String>>,
    ) {
        if let Some(index) = &mut self.index {
            let written = index.push(pts_secs, time_ns, ids).and_then(|()| index.flush());
            if let Err(error) = written {
                self.index = None;
                self.note_error(&error);
            }
        }
        if self.recent.len() == RECENT_FRAMES {
            self.recent.pop_front();
        }
        self.recent.push_back(RecentFrame { number, time_ns, ids: std::sync::Arc::clone(ids) });
        self.write_resolved(false);
    }

    /// A detector's output for this video. Its line names the frame it belongs to (see
    /// [`match_frame`](Self::match_frame)), so it waits until that frame is in the video (a frame
    /// spends a few frames' time inside the encoder); lines keep their arrival order.
    pub fn detections(&mut self, time_ns: u64, ids: &BTreeMap<String, String>, detections: &Detections) {
        self.pending.push_back(PendingDetection { time_ns, ids: ids.clone(), detections: detections.clone() });
        self.write_resolved(false);
    }

    /// Writes the pending detections whose frame is known, oldest first; `at_end` decides the
    /// rest with what the video holds.
    fn write_resolved(&mut self, at_end: bool) {
        while let Some(pending) = self.pending.front() {
            let force = at_end || self.pending.len() > MAX_PENDING;
            let Some(frame) = self.resolve(pending, force) else { break };
            if let Some(pending) = self.pending.pop_front() {
                self.write_detection(frame, &pending);
            }
        }
    }

    /// The frame of `pending` once it is decided: `Some(Some(n))` frame `n`, `Some(None)` no frame
    /// (before the video's first), `None` not yet (its frame may still be in the encoder).
    fn resolve(&self, pending: &PendingDetection, force: bool) -> Option<Option<u64>> {
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

    fn write_detection(&mut self, frame: Option<u64>, pending: &PendingDetection) {
        if self.detections.is_none() && self.error.is_none() {
            self.detections = self.keep(DetectionLog::create(&detections_path(&self.video)));
        }
        if let Some(log) = &mut self.detections {
            let written = log.append(frame, pending.time_ns, &pending.detections).and_then(|()| log.flush());
            if let Err(error) = written {
                self.detections = None;
                self.note_error(&error);
            }
        }
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

    /// Writes what is still pending, syncs and closes the side files; returns the first error
    /// met, if any.
    pub fn finish(mut self) -> Option<String> {
        self.write_resolved(true);
        let mut error = self.error;
        if let Some(index) = self.index
            && let Err(e) = index.finish()
        {
            error.get_or_insert(e.to_string());
        }
        if let Some(log) = self.detections
            && let Err(e) = log.finish()
        {
            error.get_or_insert(e.to_string());
        }
        error
    }

    fn keep<T>(&mut self, opened: io::Result<T>) -> Option<T> {
        opened.map_err(|error| self.note_error(&error)).ok()
    }

    fn note_error(&mut self, error: &io::Error) {
        if self.error.is_none() {
            tracing::warn!(video = %self.video.display(), "a side file of this video cannot be written (the video goes on): {error}");
            self.error = Some(error.to_string());
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::detections::BoxFormat;

    fn ids(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    fn temp_video(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("sidecars-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir.join("video.mp4")
    }

    fn one_box() -> Detections {
        Detections {
            labels: vec!["person".into()],
            conf: vec![0.9],
            bbox: vec![[1.0, 2.0, 3.0, 4.0]],
            format: BoxFormat::Xyxy,
        }
    }

    #[test]
    fn every_frame_gets_an_index_row_written_at_once() {
        let video = temp_video("index");
        let mut sidecars = Sidecars::open(&video, &ids(&[("frame_index", "0")]));
        for n in 0..3u64 {
            sidecars.frame_written(n, n as f64 / 10.0, 1_000 + n, &Arc::new(ids(&[("frame_index", &n.to_string())])));
        }
        let text = std::fs::read_to_string(index_path(&video)).unwrap();
        assert_eq!(text.lines().count(), 4, "header and three rows before finishing: {text}");
        assert!(text.lines().next().unwrap().contains("frame_index"));
        assert_eq!(sidecars.finish(), None);
    }

    #[test]
    fn detections_match_frames_by_id_before_time() {
        let video = temp_video("match");
        let mut sidecars = Sidecars::open(&video, &BTreeMap::new());
        for n in 0..5u64 {
            let frame_ids = ids(&[("frame_index", &n.to_string()), ("camera", "front")]);
            sidecars.frame_written(n, 0.0, 100 * (n + 1), &Arc::new(frame_ids));
        }
        assert_eq!(sidecars.match_frame(1_000, &ids(&[("frame_index", "2"), ("camera", "front")])), Some(2));
        assert_eq!(sidecars.match_frame(250, &ids(&[("camera", "front")])), Some(1), "a constant key: time decides");
        assert_eq!(sidecars.match_frame(350, &BTreeMap::new()), Some(2), "latest frame at or before");
        assert_eq!(sidecars.match_frame(50, &BTreeMap::new()), None, "before the first frame");
        assert_eq!(sidecars.match_frame(10, &ids(&[("frame_index", "4")])), Some(4), "an id match survives clock skew");
        sidecars.detections(1_000, &ids(&[("frame_index", "3")]), &one_box());
        sidecars.finish();
        let lines = std::fs::read_to_string(detections_path(&video)).unwrap();
        assert!(lines.starts_with("{\"frame\":3"), "{lines}");
    }

    #[test]
    fn a_detection_waits_for_its_frame_to_reach_the_video() {
        let video = temp_video("wait");
        let mut sidecars = Sidecars::open(&video, &BTreeMap::new());
        let frame = |n: u64| Arc::new(ids(&[("frame_index", &n.to_string())]));
        sidecars.frame_written(0, 0.0, 100, &frame(10));
        // The detector saw frame_index 12, still inside the encoder.
        sidecars.detections(350, &ids(&[("frame_index", "12")]), &one_box());
        sidecars.detections(360, &BTreeMap::new(), &one_box());
        assert!(!detections_path(&video).exists(), "nothing written before its frame is in the video");
        sidecars.frame_written(1, 0.1, 200, &frame(11));
        sidecars.frame_written(2, 0.2, 300, &frame(12));
        let lines = std::fs::read_to_string(detections_path(&video)).unwrap();
        assert_eq!(lines.lines().count(), 1, "the id match is written; the time match waits for a later frame");
        assert!(lines.starts_with("{\"frame\":2"), "{lines}");
        sidecars.frame_written(3, 0.3, 400, &frame(13));
        sidecars.finish();
        let lines: Vec<String> =
            std::fs::read_to_string(detections_path(&video)).unwrap().lines().map(String::from).collect();
        assert_eq!(lines.len(), 2);
        assert!(lines[1].starts_with("{\"frame\":2"), "latest frame at or before 360 ns: {}", lines[1]);
    }

    #[test]
    fn pending_detections_are_written_at_the_end_with_the_best_match() {
        let video = temp_video("end");
        let mut sidecars = Sidecars::open(&video, &BTreeMap::new());
        sidecars.frame_written(0, 0.0, 100, &Arc::new(ids(&[("frame_index", "1")])));
        sidecars.detections(500, &ids(&[("frame_index", "99")]), &one_box());
        sidecars.finish();
        let lines = std::fs::read_to_string(detections_path(&video)).unwrap();
        assert!(lines.starts_with("{\"frame\":0"), "{lines}");
    }

    #[test]
    fn an_unwritable_folder_costs_the_side_files_not_the_video() {
        let mut sidecars = Sidecars::open(Path::new("/nonexistent-folder/video.mp4"), &BTreeMap::new());
        sidecars.frame_written(0, 0.0, 1, &Arc::new(BTreeMap::new()));
        sidecars.detections(2, &BTreeMap::new(), &one_box());
        assert!(sidecars.finish().is_some());
    }
}
