//! The session manifest: `SESSIONSTEM.session.json` in STORAGE, one per session, listing every
//! camera's files, their frame indexes and how to line the cameras up in time.
//!
//! It is written when the session starts and replaced atomically whenever a file finishes and when
//! the session ends (a temp file in the same folder, synced, renamed over the old one, then the
//! folder synced), so a crash at any moment leaves a complete manifest, at worst an older one.
//! Field names and meanings are a contract: users' scripts read them.

use std::{
    collections::BTreeMap,
    fs::File,
    io::{self, Write},
    path::{Path, PathBuf},
};

use chrono::SecondsFormat;
use serde::{Deserialize, Serialize};

use crate::storage::durability::sync_folder_of;

/// Version of the manifest layout; bumped only when a field changes meaning or goes away.
pub const MANIFEST_VERSION: u32 = 1;
/// What follows the session's file stem: `SESSIONSTEM.session.json`.
pub const MANIFEST_SUFFIX: &str = ".session.json";
/// How to line up the cameras, written into every manifest.
pub const TIMELINE: &str = "All *_time_ns values are dora timestamps: UTC nanoseconds since the Unix epoch, \
stamped by the node that sent the frame. To line up cameras, match frames on time_ns through each video's \
NAME.frames.csv (columns frame, pts, time_ns), not on frame numbers or pts: a file's pts counts from its own \
first frame, and offset_secs is that first frame's time_ns minus started_time_ns, in seconds.";

/// The manifest's file in `storage` for the session whose files start with `stem`.
#[cfg(test)]
pub fn manifest_path(storage: &Path, stem: &str) -> PathBuf {
    storage.join(format!("{stem}{MANIFEST_SUFFIX}"))
}

/// Why a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    /// A `stop` control message.
    Stop,
    /// The control input closed.
    InputClosed,
    /// No trigger detection arrived within the trigger's timeout.
    TriggerTimeout,
    /// Recording failed.
    Failure,
    /// The dataflow stopped.
    EndOfRun,
}

/// What started or stopped a session: the manifest's `started_by` and `stopped_by`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionCause {
    /// A message on the `control` input (a `start` also stops the session before it).
    ControlMessage,
    /// The `session` runtime parameter (`dora param set` / `dora param delete`).
    Parameter,
    /// The detection trigger: a match starts a clip, its post-roll ending stops it.
    Trigger,
    /// The start of the run: the run's one session (no `control` input, `AUTO_SESSION=true`).
    RunStart,
    /// The end of the run: the dataflow stopped or every input closed.
    EndOfRun,
}

/// Where a file stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileState {
    /// Being written: playable up to its last complete fragment.
    Recording,
    /// Finalized and complete.
    Finished,
    /// Writing failed; the file keeps what was written, `error` says why.
    Failed,
}

/// The manifest of one session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionManifest {
    /// Layout version ([`MANIFEST_VERSION`]).
    pub version: u32,
    /// The session id in full, exactly as sent (file names carry a shortened, sanitized form).
    pub session_id: String,
    /// When the session started, RFC 3339 UTC with nanoseconds.
    pub started_utc: String,
    /// When the session started: UTC nanoseconds since the Unix epoch, the scale of `time_ns`.
    pub started_time_ns: u64,
    /// When the session ended, RFC 3339 UTC; `null` while it runs (or after a crash).
    pub ended_utc: Option<String>,
    /// Why the session ended; `null` while it runs (or after a crash).
    pub end_reason: Option<EndReason>,
    /// What started it (`null` in manifests written before this field).
    #[serde(default)]
    pub started_by: Option<SessionCause>,
    /// What stopped it; `null` while it runs (or after a crash).
    #[serde(default)]
    pub stopped_by: Option<SessionCause>,
    /// How to line up cameras ([`TIMELINE`]).
    pub timeline: String,
    /// Per camera input id, its files and counts.
    pub cameras: BTreeMap<String, CameraEntry>,
}

/// One camera of the session.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CameraEntry {
    /// The codec or encoder that wrote its latest file, as the recorder reports it.
    pub codec: Option<String>,
    /// Its files, in the order they started.
    pub files: Vec<FileEntry>,
    /// Frames in its finished or failed files.
    pub frames: u64,
    /// Frames lost: dropped because the encoder fell behind or no file could be opened.
    pub dropped: u64,
    /// Dora timestamp of its first recorded frame (UTC ns).
    pub first_time_ns: Option<u64>,
    /// Dora timestamp of its last recorded frame in a finished or failed file (UTC ns).
    pub last_time_ns: Option<u64>,
}

/// One video file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileEntry {
    /// The video's file name, relative to STORAGE.
    pub path: String,
    /// Its frame index's file name (`NAME.frames.csv`), relative to STORAGE.
    pub index: String,
    /// Recording, finished or failed.
    pub status: FileState,
    /// Frames in the file (0 while recording).
    pub frames: u64,
    /// File size in bytes (0 while recording).
    pub bytes: u64,
    /// Dora timestamp of its first frame (UTC ns).
    pub first_time_ns: Option<u64>,
    /// Dora timestamp of its last frame (UTC ns); `null` while recording or when it has no frame.
    pub last_time_ns: Option<u64>,
    /// Its first frame's time minus the session start, in seconds (negative if the camera's
    /// clock is behind); `null` when the first frame is unknown.
    pub offset_secs: Option<f64>,
    /// Why it failed.
    pub error: Option<String>,
}

impl SessionManifest {
    /// The manifest of a session that started at `started_unix_nanos`, with no camera yet.
    pub fn new(session_id: impl Into<String>, started_unix_nanos: u64) -> Self {
        Self {
            version: MANIFEST_VERSION,
            session_id: session_id.into(),
            started_utc: rfc3339(started_unix_nanos),
            started_time_ns: started_unix_nanos,
            ended_utc: None,
            end_reason: None,
            started_by: None,
            stopped_by: None,
            timeline: TIMELINE.to_owned(),
            cameras: BTreeMap::new(),
        }
    }

    /// The entry of `camera`, created empty if new.
    pub fn camera_mut(&mut self, camera: &str) -> &mut CameraEntry {
        self.cameras.entry(camera.to_owned()).or_default()
    }

    /// Records that `camera` started writing `video` (indexed in `index`) at its frame
    /// `first_time_ns`. Only file names are kept: both live in STORAGE.
    pub fn file_started(&mut self, camera: &str, video: &Path, index: &Path, first_time_ns: u64) {
        let offset_secs = Some(offset_secs(first_time_ns, self.started_time_ns));
        let entry = self.camera_mut(camera);
        entry.first_time_ns = Some(entry.first_time_ns.map_or(first_time_ns, |t| t.min(first_time_ns)));
        entry.files.push(FileEntry {
            path: file_name(video),
            index: file_name(index),
            status: FileState::Recording,
            frames: 0,
            bytes: 0,
            first_time_ns: Some(first_time_ns),
            last_time_ns: None,
            offset_secs,
            error: None,
        });
    }

    /// Records that `camera`'s `video` was finalized with `frames` frames and `bytes` bytes, its
    /// last frame at `last_time_ns` (`None` without frames), failed when `error` is set. A video
    /// never reported as started is added without a first frame time.
    pub fn file_finished(
        &mut self,
        camera: &str,
        video: &Path,
        frames: u64,
        bytes: u64,
        last_time_ns: Option<u64>,
        error: Option<String>,
    ) {
        let name = file_name(video);
        let entry = self.camera_mut(camera);
        entry.frames = entry.frames.saturating_add(frames);
        entry.last_time_ns = entry.last_time_ns.max(last_time_ns);
        let file = match entry.files.iter().rposition(|file| file.path == name) {
            Some(position) => &mut entry.files[position],
            None => push_unstarted(&mut entry.files, name),
        };
        file.status = if error.is_some() { FileState::Failed } else { FileState::Finished };
        file.frames = frames;
        file.bytes = bytes;
        file.last_time_ns = last_time_ns;
        file.error = error;
    }

    /// Sets the codec or encoder name `camera` writes with.
    pub fn set_codec(&mut self, camera: &str, codec: impl Into<String>) {
        self.camera_mut(camera).codec = Some(codec.into());
    }

    /// Adds `frames` lost frames to `camera`'s count.
    pub fn add_dropped(&mut self, camera: &str, frames: u64) {
        let entry = self.camera_mut(camera);
        entry.dropped = entry.dropped.saturating_add(frames);
    }

    /// Marks the session ended at `ended_unix_nanos` for `reason`, by `cause`. The first call
    /// wins: a later one changes nothing, so the reason stays the one that actually ended it.
    pub fn end(&mut self, reason: EndReason, cause: SessionCause, ended_unix_nanos: u64) {
        if self.end_reason.is_some() {
            return;
        }
        self.end_reason = Some(reason);
        self.stopped_by = Some(cause);
        self.ended_utc = Some(rfc3339(ended_unix_nanos));
    }

    /// Whether [`end`](Self::end) was called.
    pub fn has_ended(&self) -> bool {
        self.end_reason.is_some()
    }

    /// Reads the manifest at `path`. Fails, naming the file, when it cannot be read, is not a
    /// session manifest, or has a newer layout [`version`](Self::version) than this code knows.
    pub fn read(path: &Path) -> Result<Self, ManifestReadError> {
        let file = path.to_owned();
        let bytes = std::fs::read(path).map_err(|source| ManifestReadError::Io { file: file.clone(), source })?;
        let manifest: Self = serde_json::from_slice(&bytes)
            .map_err(|source| ManifestReadError::Invalid { file: file.clone(), source })?;
        if manifest.version > MANIFEST_VERSION {
            return Err(ManifestReadError::Version { file, version: manifest.version });
        }
        Ok(manifest)
    }

    /// Writes the manifest as pretty JSON to `path`, replacing any older one atomically: readers
    /// and crashes see the old or the new manifest, never a partial one.
    pub fn write_atomically(&self, path: &Path) -> io::Result<()> {
        let mut json = serde_json::to_vec_pretty(self).map_err(io::Error::other)?;
        json.push(b'\n');
        replace_file(path, &json)
    }
}

/// Why a manifest could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ManifestReadError {
    /// The file cannot be read.
    #[error("cannot read the session manifest {file}: {source}")]
    Io {
        /// The manifest's path.
        file: PathBuf,
        /// What the OS said.
        source: io::Error,
    },
    /// The file is not a session manifest.
    #[error("{file} is not a session manifest: {source}")]
    Invalid {
        /// The manifest's path.
        file: PathBuf,
        /// What the JSON parser said.
        source: serde_json::Error,
    },
    /// A layout newer than this code.
    #[error(
        "the session manifest {file} has layout version {version}, newer than this code reads ({MANIFEST_VERSION})"
    )]
    Version {
        /// The manifest's path.
        file: PathBuf,
        /// Its layout version.
        version: u32,
    },
}

/// Appends an entry for a file nobody reported as started and returns it.
fn push_unstarted(files: &mut Vec<FileEntry>, path: String) -> &mut FileEntry {
    let index = file_name(&crate::sidecars::index::index_path(Path::new(&path)));
    files.push(FileEntry {
        path,
        index,
        status: FileState::Recording,
        frames: 0,
        bytes: 0,
        first_time_ns: None,
        last_time_ns: None,
        offset_secs: None,
        error: None,
    });
    let last = files.len() - 1;
    &mut files[last]
}

/// Seconds from `start_ns` to `time_ns`, negative when `time_ns` is earlier.
fn offset_secs(time_ns: u64, start_ns: u64) -> f64 {
    (i128::from(time_ns) - i128::from(start_ns)) as f64 / 1e9
}

/// RFC 3339 UTC with nanoseconds, e.g. `2024-01-02T03:04:05.123456789Z`.
fn rfc3339(unix_nanos: u64) -> String {
    let secs = (unix_nanos / 1_000_000_000) as i64;
    let nanos = (unix_nanos % 1_000_000_000) as u32;
    chrono::DateTime::from_timestamp(secs, nanos).unwrap_or_default().to_rfc3339_opts(SecondsFormat::Nanos, true)
}

/// The last component of `path` (the whole path if it has none), as text.
fn file_name(path: &Path) -> String {
    path.file_name().unwrap_or(path.as_os_str()).to_string_lossy().into_owned()
}

/// Replaces `path` with `contents` atomically: temp file, sync, rename, sync the folder.
fn replace_file(path: &Path, contents: &[u8]) -> io::Result<()> {
    let temp = temp_path(path)?;
    let written = write_synced(&temp, contents).and_then(|()| std::fs::rename(&temp, path));
    if let Err(error) = written {
        let _ = std::fs::remove_file(&temp);
        return Err(io::Error::new(error.kind(), format!("cannot write the manifest {}: {error}", path.display())));
    }
    sync_folder_of(path)
        .map_err(|e| io::Error::new(e.kind(), format!("cannot sync the folder of {}: {e}", path.display())))
}

/// A hidden temp file beside `path`, so the rename stays on one file system.
fn temp_path(path: &Path) -> io::Result<PathBuf> {
    let Some(name) = path.file_name() else {
        let message = format!("manifest path {} names no file", path.display());
        return Err(io::Error::new(io::ErrorKind::InvalidInput, message));
    };
    Ok(path.with_file_name(format!(".{}.tmp", name.to_string_lossy())))
}

fn write_synced(path: &Path, contents: &[u8]) -> io::Result<()> {
    let mut file = File::create(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    const START_NS: u64 = 1_704_164_645_123_456_789;

    fn temp_folder(name: &str) -> PathBuf {
        let folder = std::env::temp_dir().join(format!("manifest-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&folder);
        std::fs::create_dir_all(&folder).unwrap();
        folder
    }

    #[test]
    fn manifest_is_named_after_the_session_stem_in_storage() {
        assert_eq!(
            manifest_path(Path::new("/rec"), "run_20240102T030405"),
            Path::new("/rec/run_20240102T030405.session.json")
        );
    }

    #[test]
    fn new_manifest_keeps_the_full_id_and_the_start_in_rfc3339_utc() {
        let manifest = SessionManifest::new("run\0/ä", START_NS);
        assert_eq!(manifest.session_id, "run\0/ä");
        assert_eq!(manifest.started_utc, "2024-01-02T03:04:05.123456789Z");
        assert_eq!(manifest.started_time_ns, START_NS);
        assert_eq!(manifest.version, MANIFEST_VERSION);
        assert!(manifest.cameras.is_empty() && !manifest.has_ended());
    }

    #[test]
    fn extreme_start_times_do_not_panic() {
        assert_eq!(SessionManifest::new("", 0).started_utc, "1970-01-01T00:00:00.000000000Z");
        assert!(SessionManifest::new("", u64::MAX).started_utc.starts_with("2554-"));
    }

    #[test]
    fn a_started_file_is_recording_with_its_offset_from_the_session_start() {
        let mut manifest = SessionManifest::new("s", START_NS);
        let video = Path::new("/rec/s_front_20240102T030405.mp4");
        manifest.file_started("front", video, &crate::sidecars::index::index_path(video), START_NS + 1_500_000_000);
        let camera = &manifest.cameras["front"];
        assert_eq!(camera.first_time_ns, Some(START_NS + 1_500_000_000));
        let file = &camera.files[0];
        assert_eq!(file.path, "s_front_20240102T030405.mp4");
        assert_eq!(file.index, "s_front_20240102T030405.frames.csv");
        assert_eq!(file.status, FileState::Recording);
        assert_eq!(file.offset_secs, Some(1.5));
    }

    #[test]
    fn a_frame_before_the_session_start_has_a_negative_offset() {
        let mut manifest = SessionManifest::new("s", START_NS);
        manifest.file_started("cam", Path::new("a.mp4"), Path::new("a.frames.csv"), START_NS - 250_000_000);
        assert_eq!(manifest.cameras["cam"].files[0].offset_secs, Some(-0.25));
        manifest.file_started("cam", Path::new("b.mp4"), Path::new("b.frames.csv"), 0);
        assert!(manifest.cameras["cam"].files[1].offset_secs.is_some_and(|s| s < -1.7e9));
    }

    #[test]
    fn finishing_a_file_updates_it_and_adds_to_the_camera_totals() {
        let mut manifest = SessionManifest::new("s", START_NS);
        manifest.file_started("cam", Path::new("a.mp4"), Path::new("a.frames.csv"), START_NS);
        manifest.file_finished("cam", Path::new("/rec/a.mp4"), 30, 1000, Some(START_NS + 1_000_000_000), None);
        manifest.file_started("cam", Path::new("b.mp4"), Path::new("b.frames.csv"), START_NS + 2_000_000_000);
        manifest.file_finished(
            "cam",
            Path::new("b.mp4"),
            5,
            99,
            Some(START_NS + 2_200_000_000),
            Some("disk full".into()),
        );
        let camera = &manifest.cameras["cam"];
        assert_eq!(
            (camera.frames, camera.first_time_ns, camera.last_time_ns),
            (35, Some(START_NS), Some(START_NS + 2_200_000_000))
        );
        assert_eq!(camera.files[0].status, FileState::Finished);
        assert_eq!((camera.files[0].frames, camera.files[0].bytes), (30, 1000));
        assert_eq!(camera.files[1].status, FileState::Failed);
        assert_eq!(camera.files[1].error.as_deref(), Some("disk full"));
    }

    #[test]
    fn finishing_a_file_never_started_adds_it_without_a_first_time() {
        let mut manifest = SessionManifest::new("s", START_NS);
        manifest.file_finished("cam", Path::new("x.mkv"), 0, 0, None, None);
        let file = &manifest.cameras["cam"].files[0];
        assert_eq!((file.path.as_str(), file.index.as_str()), ("x.mkv", "x.frames.csv"));
        assert_eq!((file.status, file.first_time_ns, file.offset_secs), (FileState::Finished, None, None));
        assert_eq!(manifest.cameras["cam"].last_time_ns, None);
    }

    #[test]
    fn codec_and_dropped_frames_are_per_camera() {
        let mut manifest = SessionManifest::new("s", START_NS);
        manifest.set_codec("a", "libx264");
        manifest.add_dropped("a", 3);
        manifest.add_dropped("a", u64::MAX);
        assert_eq!(manifest.cameras["a"].codec.as_deref(), Some("libx264"));
        assert_eq!(manifest.cameras["a"].dropped, u64::MAX);
    }

    #[test]
    fn the_first_end_reason_wins() {
        let mut manifest = SessionManifest::new("s", START_NS);
        manifest.end(EndReason::Failure, SessionCause::ControlMessage, START_NS + 1_000_000_000);
        manifest.end(EndReason::EndOfRun, SessionCause::EndOfRun, START_NS + 9_000_000_000);
        assert_eq!(manifest.end_reason, Some(EndReason::Failure));
        assert_eq!(manifest.stopped_by, Some(SessionCause::ControlMessage));
        assert_eq!(manifest.ended_utc.as_deref(), Some("2024-01-02T03:04:06.123456789Z"));
    }

    #[test]
    fn json_uses_snake_case_names_and_reads_back_equal() {
        let mut manifest = SessionManifest::new("s", START_NS);
        manifest.file_started("cam", Path::new("a.mp4"), Path::new("a.frames.csv"), START_NS);
        manifest.started_by = Some(SessionCause::Trigger);
        manifest.end(EndReason::TriggerTimeout, SessionCause::Trigger, START_NS);
        let json = serde_json::to_value(&manifest).unwrap();
        assert_eq!(json["end_reason"], "trigger_timeout");
        assert_eq!((json["started_by"].as_str(), json["stopped_by"].as_str()), (Some("trigger"), Some("trigger")));
        assert_eq!(json["cameras"]["cam"]["files"][0]["status"], "recording");
        assert_eq!(json["started_time_ns"], START_NS);
        assert!(json["timeline"].as_str().unwrap().contains("time_ns"));
        let back: SessionManifest = serde_json::from_value(json).unwrap();
        assert_eq!(back, manifest);
        let names =
            [EndReason::Stop, EndReason::InputClosed, EndReason::EndOfRun].map(|r| serde_json::to_value(r).unwrap());
        assert_eq!(names, ["stop", "input_closed", "end_of_run"]);
        let causes = [
            SessionCause::ControlMessage,
            SessionCause::Parameter,
            SessionCause::Trigger,
            SessionCause::RunStart,
            SessionCause::EndOfRun,
        ]
        .map(|c| serde_json::to_value(c).unwrap());
        assert_eq!(causes, ["control_message", "parameter", "trigger", "run_start", "end_of_run"]);
    }

    #[test]
    fn manifests_without_the_cause_fields_still_read() {
        let mut json = serde_json::to_value(SessionManifest::new("s", START_NS)).unwrap();
        let object = json.as_object_mut().unwrap();
        object.remove("started_by");
        object.remove("stopped_by");
        let back: SessionManifest = serde_json::from_value(json).unwrap();
        assert_eq!((back.started_by, back.stopped_by), (None, None));
    }

    #[test]
    fn writing_replaces_the_manifest_and_leaves_no_temp_file() {
        let folder = temp_folder("replace");
        let path = manifest_path(&folder, "s_20240102T030405");
        let mut manifest = SessionManifest::new("s", START_NS);
        manifest.write_atomically(&path).unwrap();
        manifest.end(EndReason::Stop, SessionCause::Parameter, START_NS);
        manifest.write_atomically(&path).unwrap();
        let back: SessionManifest = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(back, manifest);
        let entries: Vec<_> = std::fs::read_dir(&folder).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(entries, [path.file_name().unwrap()]);
        std::fs::remove_dir_all(&folder).unwrap();
    }

    #[test]
    fn a_failed_write_keeps_the_older_manifest() {
        let folder = temp_folder("keep");
        let path = manifest_path(&folder, "s");
        let manifest = SessionManifest::new("s", START_NS);
        manifest.write_atomically(&path).unwrap();
        let before = std::fs::read(&path).unwrap();
        // A folder where the temp file goes makes the write fail.
        std::fs::create_dir(folder.join(".s.session.json.tmp")).unwrap();
        let mut newer = manifest.clone();
        newer.end(EndReason::Stop, SessionCause::ControlMessage, START_NS);
        let error = newer.write_atomically(&path).unwrap_err();
        assert!(error.to_string().contains("s.session.json"), "{error}");
        assert_eq!(std::fs::read(&path).unwrap(), before);
        std::fs::remove_dir_all(&folder).unwrap();
    }

    #[test]
    fn a_written_manifest_reads_back_and_garbage_is_an_error_naming_the_file() {
        let folder = temp_folder("read");
        let path = manifest_path(&folder, "s");
        let mut manifest = SessionManifest::new("s", START_NS);
        manifest.file_started("cam", Path::new("a.mp4"), Path::new("a.frames.csv"), START_NS);
        manifest.write_atomically(&path).unwrap();
        assert_eq!(SessionManifest::read(&path).unwrap(), manifest);
        std::fs::write(&path, b"{\"version\": 1, \"cameras\": 3}").unwrap();
        let error = SessionManifest::read(&path).unwrap_err();
        assert!(matches!(error, ManifestReadError::Invalid { .. }), "{error}");
        assert!(error.to_string().contains("s.session.json"), "{error}");
        let mut newer = serde_json::to_value(&manifest).unwrap();
        newer["version"] = (MANIFEST_VERSION + 1).into();
        std::fs::write(&path, newer.to_string()).unwrap();
        assert!(matches!(SessionManifest::read(&path), Err(ManifestReadError::Version { .. })));
        assert!(matches!(SessionManifest::read(&folder.join("missing.json")), Err(ManifestReadError::Io { .. })));
        std::fs::remove_dir_all(&folder).unwrap();
    }

    #[test]
    fn writing_to_a_path_without_a_file_name_is_an_error() {
        assert!(SessionManifest::new("s", 0).write_atomically(Path::new("/")).is_err());
    }
}
