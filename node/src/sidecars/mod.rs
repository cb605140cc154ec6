//! What goes beside the videos in STORAGE: each video's frame index ([`index`],
//! `NAME.frames.csv`) and detections log ([`detection_log`], `NAME.detections.jsonl`), written
//! through [`Sidecars`], with detections matched to frames by [`matching`]; and each session's
//! manifest ([`manifest`], `STEM.session.json`), kept up to date while it records by
//! [`live_manifests`].
//!
//! Side files of a video are handed to the OS row by row, and synced with the video's fragments
//! by its syncer ([`crate::storage::durability`]), each row before the video bytes of its frame:
//! after a crash or a power cut, the index covers at least every frame the video still holds.

pub mod detection_log;
pub mod index;
mod line_file;
pub mod live_manifests;
pub mod manifest;
pub mod matching;

use std::{
    collections::BTreeMap,
    io,
    path::{Path, PathBuf},
    sync::Arc,
};

use crate::{
    detections::Detections,
    sidecars::{
        detection_log::{DetectionLog, detections_path},
        index::{FrameIndex, index_path},
        line_file::LineFile,
        matching::{FrameMatcher, Matched},
    },
    storage::durability::SideFiles,
};

/// The side files of one video.
#[derive(Debug)]
pub struct Sidecars {
    video: PathBuf,
    index: Option<FrameIndex>,
    detections: Option<DetectionLog>,
    matcher: FrameMatcher<Detections>,
    /// The video's syncer's list, when its fragments are synced.
    sync: Option<SideFiles>,
    /// The first I/O error, reported once with the file; the video goes on without the sidecar.
    error: Option<String>,
}

impl Sidecars {
    /// Starts the index of `video`, with columns for the identifying metadata keys of its first
    /// frame. With `sync` (the video's syncer's side files), the index header is made durable
    /// at once and the index is synced with the video's fragments from then on.
    pub fn open(video: &Path, first_frame_ids: &BTreeMap<String, String>, sync: Option<SideFiles>) -> Self {
        let mut sidecars = Self {
            video: video.to_owned(),
            index: None,
            detections: None,
            matcher: FrameMatcher::default(),
            sync,
            error: None,
        };
        let columns = first_frame_ids.keys().cloned().collect();
        let index = FrameIndex::create(&index_path(video), columns)
            .and_then(|index| sidecars.sync_with_video(index.side_file()).map(|()| index));
        sidecars.index = sidecars.keep(index);
        sidecars
    }

    /// Frame `number` of the video, at `pts_secs` (file time): call it before its packet goes
    /// into the video, so its row never reaches the disk after the frame does.
    pub fn frame_written(&mut self, number: u64, pts_secs: f64, time_ns: u64, ids: &Arc<BTreeMap<String, String>>) {
        if let Some(index) = &mut self.index {
            let written = index.push(pts_secs, time_ns, ids);
            if let Err(error) = written {
                self.index = None;
                self.note_error(&error);
            }
        }
        let decided = self.matcher.frame_written(number, time_ns, ids);
        self.write_detections(decided);
    }

    /// A detector's output for this video. Its line names the frame it belongs to (see
    /// [`FrameMatcher::match_frame`]), so it waits until that frame is in the video (a frame
    /// spends a few frames' time inside the encoder); lines keep their arrival order.
    pub fn detections(&mut self, time_ns: u64, ids: &BTreeMap<String, String>, detections: &Detections) {
        let decided = self.matcher.detection(time_ns, ids.clone(), detections.clone());
        self.write_detections(decided);
    }

    /// Writes what is still pending, syncs and closes the side files; returns the first error
    /// met, if any.
    pub fn finish(mut self) -> Option<String> {
        let decided = self.matcher.finish();
        self.write_detections(decided);
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

    fn write_detections(&mut self, decided: Vec<Matched<Detections>>) {
        for matched in decided {
            self.write_detection(&matched);
        }
    }

    fn write_detection(&mut self, matched: &Matched<Detections>) {
        if self.detections.is_none() && self.error.is_none() {
            let log = DetectionLog::create(&detections_path(&self.video))
                .and_then(|log| self.sync_with_video(log.side_file()).map(|()| log));
            self.detections = self.keep(log);
        }
        if let Some(log) = &mut self.detections {
            let written = log.append(matched.frame, matched.time_ns, &matched.detection);
            if let Err(error) = written {
                self.detections = None;
                self.note_error(&error);
            }
        }
    }

    /// Makes a new side file durable (and its folder entry) and adds it to the video's syncer.
    fn sync_with_video(&self, side_file: &LineFile) -> io::Result<()> {
        let path = side_file.path();
        match &self.sync {
            Some(sync) => sync.add(side_file.file(), path).map_err(|e| with_path(e, "cannot sync", path)),
            None => Ok(()),
        }
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

/// An I/O error that names what failed and the file.
fn with_path(error: io::Error, what: &str, path: &Path) -> io::Error {
    io::Error::new(error.kind(), format!("{what} {}: {error}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{detections::BoxFormat, storage::durability::FragmentSyncer};

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

    fn frame(n: u64) -> Arc<BTreeMap<String, String>> {
        Arc::new(ids(&[("frame_index", &n.to_string())]))
    }

    #[test]
    fn every_frame_gets_an_index_row_written_at_once() {
        let video = temp_video("index");
        let mut sidecars = Sidecars::open(&video, &ids(&[("frame_index", "0")]), None);
        for n in 0..3u64 {
            sidecars.frame_written(n, n as f64 / 10.0, 1_000 + n, &frame(n));
        }
        let text = std::fs::read_to_string(index_path(&video)).unwrap();
        assert_eq!(text.lines().count(), 4, "header and three rows before finishing: {text}");
        assert!(text.lines().next().unwrap().contains("frame_index"));
        assert_eq!(sidecars.finish(), None);
    }

    #[test]
    fn detection_lines_name_their_frame_once_it_is_in_the_video() {
        let video = temp_video("lines");
        let mut sidecars = Sidecars::open(&video, &BTreeMap::new(), None);
        sidecars.frame_written(0, 0.0, 100, &frame(10));
        sidecars.detections(350, &ids(&[("frame_index", "12")]), &one_box());
        assert!(!detections_path(&video).exists(), "nothing written before its frame is in the video");
        sidecars.frame_written(1, 0.1, 200, &frame(11));
        sidecars.frame_written(2, 0.2, 300, &frame(12));
        let lines = std::fs::read_to_string(detections_path(&video)).unwrap();
        assert!(lines.starts_with("{\"frame\":2,\"time_ns\":350"), "written as soon as decided: {lines}");
        sidecars.detections(1_000, &ids(&[("frame_index", "99")]), &one_box());
        assert_eq!(sidecars.finish(), None);
        let lines = std::fs::read_to_string(detections_path(&video)).unwrap();
        assert_eq!(lines.lines().count(), 2, "the end decides what still waits: {lines}");
    }

    #[test]
    fn side_files_join_the_video_syncer_and_sync_with_its_fragments() {
        let video = temp_video("sync");
        std::fs::write(&video, b"header").unwrap();
        let syncer = FragmentSyncer::start(&video, None).unwrap();
        let mut sidecars = Sidecars::open(&video, &BTreeMap::new(), Some(syncer.side_files()));
        sidecars.frame_written(0, 0.0, 100, &frame(0));
        sidecars.detections(100, &ids(&[("frame_index", "0")]), &one_box());
        syncer.fragment_written();
        let stats = syncer.finish();
        assert_eq!((stats.syncs, stats.side_syncs, stats.failures), (1, 2, 0), "the row and the line: {stats:?}");
        assert_eq!(sidecars.finish(), None);
    }

    #[test]
    fn an_unwritable_folder_costs_the_side_files_not_the_video() {
        let mut sidecars = Sidecars::open(Path::new("/nonexistent-folder/video.mp4"), &BTreeMap::new(), None);
        sidecars.frame_written(0, 0.0, 1, &Arc::new(BTreeMap::new()));
        sidecars.detections(2, &BTreeMap::new(), &one_box());
        assert!(sidecars.finish().is_some());
    }
}
