//! What to play: a session manifest (every camera, its segments in order, their frame indexes
//! and detections logs) or one video file, read through the recorder's own readers
//! ([`dora_video_recorder::recording`]) into a [`Recording`] on the session timeline.
//!
//! Logs are what they are: a segment the manifest lists but retention deleted is skipped with a
//! warning, a video without its index plays at its own timestamps, a detections log that is
//! missing is no detections. A manifest that cannot be read is an error: nothing sensible can be
//! played from it.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use dora_video_recorder::recording::{
    Detections, FileEntry, IndexRow, MANIFEST_SUFFIX, SessionManifest, detections_path, index_path, read_detection_log,
    read_index,
};
use eyre::{WrapErr, bail};

/// A recording ready to play.
#[derive(Debug, Clone, PartialEq)]
pub struct Recording {
    /// The session's id (from the manifest), for the `control` output.
    pub session_id: Option<String>,
    /// Zero of the session timeline, a dora timestamp (UTC ns): the session start, or the first
    /// frame of a single video.
    pub start_ns: u64,
    /// When the session ended (UTC ns), when the manifest says.
    pub end_ns: Option<u64>,
    /// The cameras, by output name.
    pub cameras: Vec<CameraPlan>,
}

/// One camera's part of the recording.
#[derive(Debug, Clone, PartialEq)]
pub struct CameraPlan {
    /// Output name: the recorder's input id (`image`, `front`, `depth`, ...).
    pub name: String,
    /// Its videos, in recording order.
    pub segments: Vec<Segment>,
    /// Its recorded detections, in time order.
    pub detections: Vec<PlannedDetections>,
}

/// One video file.
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    /// The video's path.
    pub video: PathBuf,
    /// Where its frames' times come from.
    pub times: FrameTimes,
}

/// Where the frames of a video get their times.
#[derive(Debug, Clone, PartialEq)]
pub enum FrameTimes {
    /// From its frame index: one row per frame, with the frame's dora timestamp and metadata.
    Indexed(Vec<IndexRow>),
    /// No index: the file's own timestamps, counted from `base_ns` (UTC ns) for its first frame.
    FromFile {
        /// Dora timestamp given to the file's first frame.
        base_ns: u64,
    },
}

/// A detector message as recorded, with what it refers to.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedDetections {
    /// When the detector sent it (UTC ns).
    pub time_ns: u64,
    /// The frame it belongs to, when the log and the index name it: its dora timestamp and
    /// identifying metadata, passed through as a detector does with its image's.
    pub frame: Option<(u64, BTreeMap<String, String>)>,
    /// The boxes.
    pub detections: Detections,
}

impl Recording {
    /// Reads `path`: a session manifest (`*.session.json`), or a video file whose frames go out
    /// as `camera`.
    pub fn load(path: &Path, camera: &str) -> eyre::Result<Self> {
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if name.ends_with(MANIFEST_SUFFIX) || name.ends_with(".json") {
            Self::from_manifest(path)
        } else {
            Self::from_video(path, camera)
        }
    }

    /// Every segment of every camera in the manifest at `path` that still exists.
    fn from_manifest(path: &Path) -> eyre::Result<Self> {
        let manifest = SessionManifest::read(path)?;
        let folder = path.parent().unwrap_or(Path::new("."));
        let mut cameras = Vec::new();
        for (name, entry) in &manifest.cameras {
            let segments: Vec<Segment> =
                entry.files.iter().filter_map(|file| segment_of(folder, file, manifest.started_time_ns)).collect();
            if segments.is_empty() {
                tracing::warn!(camera = %name, "no video of this camera is left: it sends nothing");
            }
            let detections = segments.iter().flat_map(segment_detections).collect::<Vec<_>>();
            cameras.push(CameraPlan { name: name.clone(), segments, detections: sorted(detections) });
        }
        if cameras.iter().all(|camera| camera.segments.is_empty()) {
            bail!("the session manifest {} lists no video that exists: nothing to play", path.display());
        }
        let end_ns = manifest.ended_utc.as_deref().and_then(rfc3339_nanos);
        Ok(Self { session_id: Some(manifest.session_id), start_ns: manifest.started_time_ns, end_ns, cameras })
    }

    /// One video file (and its index and detections log beside it, if any).
    fn from_video(path: &Path, camera: &str) -> eyre::Result<Self> {
        std::fs::metadata(path).wrap_err_with(|| format!("cannot read the recording {}", path.display()))?;
        let times = indexed_times(path).unwrap_or(FrameTimes::FromFile { base_ns: 0 });
        let start_ns = match &times {
            FrameTimes::Indexed(rows) => rows.first().map_or(0, |row| row.time_ns),
            FrameTimes::FromFile { base_ns } => *base_ns,
        };
        let segment = Segment { video: path.to_owned(), times };
        let detections = sorted(segment_detections(&segment));
        let cameras = vec![CameraPlan { name: camera.to_owned(), segments: vec![segment], detections }];
        Ok(Self { session_id: None, start_ns, end_ns: None, cameras })
    }

    /// Session time (ns from the session start) of the dora timestamp `time_ns`.
    pub fn session_ns(&self, time_ns: u64) -> i64 {
        (i128::from(time_ns) - i128::from(self.start_ns)).clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
    }
}

/// The segment of manifest entry `file` in `folder`, or `None` (with a warning) when its video
/// is gone.
fn segment_of(folder: &Path, file: &FileEntry, session_start_ns: u64) -> Option<Segment> {
    let video = folder.join(&file.path);
    if !video.exists() {
        tracing::warn!(video = %video.display(), "a segment of the session is missing (deleted?): skipped");
        return None;
    }
    let base_ns = file.first_time_ns.unwrap_or(session_start_ns);
    let times = indexed_times(&video).unwrap_or(FrameTimes::FromFile { base_ns });
    Some(Segment { video, times })
}

/// The frame times of `video` from its index, or `None` (with a warning) without a usable one.
fn indexed_times(video: &Path) -> Option<FrameTimes> {
    let index = index_path(video);
    match read_index(&index) {
        Ok(read) if !read.rows.is_empty() => {
            if read.skipped > 0 {
                tracing::warn!(index = %index.display(), rows = read.skipped, "index rows that cannot be read: skipped");
            }
            Some(FrameTimes::Indexed(read.rows))
        }
        Ok(_) => {
            tracing::warn!(index = %index.display(), "the frame index has no rows: the video plays at its own timestamps");
            None
        }
        Err(error) => {
            tracing::warn!("{error}: the video plays at its own timestamps");
            None
        }
    }
}

/// The detections logged for `segment`, each with its frame's time and metadata when known.
fn segment_detections(segment: &Segment) -> Vec<PlannedDetections> {
    let log = detections_path(&segment.video);
    if !log.exists() {
        return Vec::new();
    }
    let read = match read_detection_log(&log) {
        Ok(read) => read,
        Err(error) => {
            tracing::warn!("{error}: its detections are not played");
            return Vec::new();
        }
    };
    if read.skipped > 0 {
        tracing::warn!(log = %log.display(), lines = read.skipped, "detections lines that cannot be read: skipped");
    }
    let frame_of = |number: u64| match &segment.times {
        FrameTimes::Indexed(rows) => {
            rows.binary_search_by_key(&number, |row| row.frame).ok().map(|at| (rows[at].time_ns, rows[at].ids.clone()))
        }
        FrameTimes::FromFile { .. } => None,
    };
    read.lines
        .into_iter()
        .map(|line| PlannedDetections {
            time_ns: line.time_ns,
            frame: line.frame.and_then(frame_of),
            detections: line.detections,
        })
        .collect()
}

fn sorted(mut detections: Vec<PlannedDetections>) -> Vec<PlannedDetections> {
    detections.sort_by_key(|d| d.time_ns);
    detections
}

/// UTC nanoseconds of an RFC 3339 time (the manifest's `ended_utc`).
fn rfc3339_nanos(text: &str) -> Option<u64> {
    let time = chrono::DateTime::parse_from_rfc3339(text).ok()?;
    u64::try_from(time.timestamp_nanos_opt()?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const START_NS: u64 = 1_704_164_645_000_000_000;

    fn folder(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("replay-recording-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// A manifest of camera `cam` with videos `a.mp4` and `b.mp4` (only `b` on disk, indexed,
    /// with one detections line) in `dir`.
    fn manifest_with_a_deleted_segment(dir: &Path) -> PathBuf {
        let mut manifest = SessionManifest::new("run-1", START_NS);
        for (name, first) in [("a", START_NS), ("b", START_NS + 2_000_000_000)] {
            let video = dir.join(format!("{name}.mp4"));
            manifest.file_started("cam", &video, &index_path(&video), first);
        }
        std::fs::write(dir.join("b.mp4"), b"not decoded here").unwrap();
        let index = format!(
            "frame,pts,time_ns,frame_index\n0,0.000000,{},60\n1,0.050000,{},61\n",
            START_NS + 2_000_000_000,
            START_NS + 2_050_000_000
        );
        std::fs::write(dir.join("b.frames.csv"), index).unwrap();
        let line = format!(
            r#"{{"frame":1,"time_ns":{},"labels":["person"],"conf":[0.9],"bbox":[[1.0,2.0,3.0,4.0]],"format":"xyxy"}}"#,
            START_NS + 2_060_000_000
        );
        std::fs::write(dir.join("b.detections.jsonl"), line + "\n").unwrap();
        let path = dir.join("run-1_20240102T030405.session.json");
        manifest.write_atomically(&path).unwrap();
        path
    }

    #[test]
    fn a_deleted_segment_is_skipped_and_the_rest_keeps_its_times_and_detections() {
        let dir = folder("deleted");
        let recording = Recording::load(&manifest_with_a_deleted_segment(&dir), "unused").unwrap();
        assert_eq!((recording.session_id.as_deref(), recording.start_ns), (Some("run-1"), START_NS));
        let camera = &recording.cameras[0];
        assert_eq!((camera.name.as_str(), camera.segments.len()), ("cam", 1));
        let FrameTimes::Indexed(rows) = &camera.segments[0].times else { panic!("indexed") };
        assert_eq!(rows.iter().map(|row| row.time_ns - START_NS).collect::<Vec<_>>(), [2_000_000_000, 2_050_000_000]);
        assert_eq!(recording.session_ns(rows[1].time_ns), 2_050_000_000);
        let detections = &camera.detections[0];
        assert_eq!(detections.time_ns, START_NS + 2_060_000_000);
        let (frame_ns, ids) = detections.frame.as_ref().unwrap();
        assert_eq!((*frame_ns, ids["frame_index"].as_str()), (START_NS + 2_050_000_000, "61"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_garbage_manifest_is_an_error_naming_the_file() {
        let dir = folder("garbage");
        let path = dir.join("x.session.json");
        std::fs::write(&path, b"\x00\x01 not json").unwrap();
        let error = format!("{:#}", Recording::load(&path, "image").unwrap_err());
        assert!(error.contains("x.session.json") && error.contains("not a session manifest"), "{error}");
        let missing = format!("{:#}", Recording::load(&dir.join("gone.mp4"), "image").unwrap_err());
        assert!(missing.contains("gone.mp4"), "{missing}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_manifest_whose_videos_are_all_gone_is_an_error() {
        let dir = folder("all-gone");
        let path = manifest_with_a_deleted_segment(&dir);
        std::fs::remove_file(dir.join("b.mp4")).unwrap();
        let error = format!("{:#}", Recording::load(&path, "image").unwrap_err());
        assert!(error.contains("no video that exists"), "{error}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_video_without_an_index_plays_at_its_own_timestamps_as_the_named_camera() {
        let dir = folder("no-index");
        let video = dir.join("clip.mkv");
        std::fs::write(&video, b"x").unwrap();
        let recording = Recording::load(&video, "front").unwrap();
        assert_eq!(recording.cameras[0].name, "front");
        assert_eq!(recording.cameras[0].segments[0].times, FrameTimes::FromFile { base_ns: 0 });
        assert_eq!(recording.session_id, None);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn rfc3339_end_times_become_nanoseconds() {
        assert_eq!(rfc3339_nanos("2024-01-02T03:04:05.123456789Z"), Some(1_704_164_645_123_456_789));
        assert_eq!(rfc3339_nanos("yesterday"), None);
    }
}
