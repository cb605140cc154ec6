//! The manifests of the sessions in progress: one `STEM.session.json` per session, written at its
//! start and replaced atomically whenever one of its files starts or finishes, so a crash leaves
//! a valid, if older, manifest. Fed by the file reports the camera workers send.

use std::{
    collections::{BTreeMap, HashSet},
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use crate::{
    camera::report::{FileReport, FileStatus},
    session::SessionRef,
    sidecars::index::index_path,
    sidecars::manifest::{EndReason, SessionCause, SessionManifest},
    storage::{claim, naming},
};

/// Extension of the manifest files, after the session stem.
const MANIFEST_EXTENSION: &str = "session.json";

/// A session whose manifest is still being updated.
#[derive(Debug)]
struct OpenManifest {
    path: PathBuf,
    manifest: SessionManifest,
    /// Files started and not yet finished: the manifest is final when the session has ended,
    /// this is zero and [`RETIRE_AFTER`] has passed (a pre-roll file may open after its session
    /// ended, when its first frame leaves the encoder).
    files_open: u64,
    ended_at: Option<Instant>,
}

/// How long an ended session's manifest still takes file events with no file open.
const RETIRE_AFTER: Duration = Duration::from_secs(5);

/// The manifests of the sessions that have files in progress.
#[derive(Debug)]
pub struct LiveManifests {
    storage: PathBuf,
    open: BTreeMap<u64, OpenManifest>,
}

impl LiveManifests {
    /// Manifests written into `storage`.
    pub fn new(storage: &Path) -> Self {
        Self { storage: storage.to_owned(), open: BTreeMap::new() }
    }

    /// A session started by `cause`: claims its manifest's name and writes the first version.
    pub fn session_started(&mut self, session: &SessionRef, cause: SessionCause) {
        let stem = naming::file_stem(&session.id, None, session.start_nanos);
        let path = match claim::claim_path(&self.storage, &stem, MANIFEST_EXTENSION) {
            Ok(path) => path,
            Err(error) => {
                tracing::warn!(session = %session.id, "cannot create the session manifest in {}: {error}", self.storage.display());
                return;
            }
        };
        let mut manifest = SessionManifest::new(&session.id, session.start_nanos);
        manifest.started_by = Some(cause);
        let open = OpenManifest { path, manifest, files_open: 0, ended_at: None };
        write(&open);
        self.open.insert(session.serial, open);
    }

    /// A file of a session started, finished or failed.
    pub fn on_report(&mut self, report: &FileReport) {
        let Some(open) = self.open.get_mut(&report.session_serial) else { return };
        let camera = report.camera.as_str();
        match (report.status, &report.path) {
            (FileStatus::Started, Some(path)) => {
                let first = report.first_time_ns.unwrap_or(open.manifest.started_time_ns);
                open.manifest.file_started(camera, path, &index_path(path), first);
                open.manifest.set_codec(camera, report.encoder.unwrap_or(report.codec));
                open.files_open += 1;
            }
            (FileStatus::Finished | FileStatus::Failed, Some(path)) => {
                let (frames, bytes, error) = (report.frames, report.bytes, report.error.clone());
                open.manifest.file_finished(camera, path, frames, bytes, report.last_time_ns, error);
                open.manifest.add_dropped(camera, report.dropped);
                open.files_open = open.files_open.saturating_sub(1);
            }
            (FileStatus::Deleted, _) => return,
            (_, None) => open.manifest.add_dropped(camera, report.dropped),
        }
        write(open);
    }

    /// A session ended for `reason`, by `cause` (its files may still be finishing).
    pub fn session_ended(&mut self, serial: u64, reason: EndReason, cause: SessionCause, ended_unix_nanos: u64) {
        let Some(open) = self.open.get_mut(&serial) else { return };
        open.manifest.end(reason, cause, ended_unix_nanos);
        open.ended_at.get_or_insert_with(Instant::now);
        write(open);
    }

    /// The manifests still being written and every file they list (finished segments of a
    /// session in progress included): retention must not delete them.
    pub fn active_paths(&self) -> HashSet<PathBuf> {
        let mut active = HashSet::new();
        // An ended session with no file open is finished: its files may go.
        for open in self.open.values().filter(|open| !open.manifest.has_ended() || open.files_open > 0) {
            active.insert(open.path.clone());
            for file in open.manifest.cameras.values().flat_map(|camera| &camera.files) {
                active.insert(self.storage.join(&file.path));
                active.insert(self.storage.join(&file.index));
            }
        }
        active
    }

    /// Forgets manifests that are final: ended for [`RETIRE_AFTER`] with no file open.
    pub fn retire_final(&mut self, now: Instant) {
        self.open.retain(|_, open| {
            let ended_long_ago = open.ended_at.is_some_and(|at| now.duration_since(at) >= RETIRE_AFTER);
            !(ended_long_ago && open.files_open == 0)
        });
    }
}

fn write(open: &OpenManifest) {
    if let Err(error) = open.manifest.write_atomically(&open.path) {
        tracing::warn!(path = %open.path.display(), "cannot write the session manifest: {error}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("manifests-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn report(status: FileStatus, path: &Path) -> FileReport {
        FileReport {
            status,
            session_id: "run".into(),
            camera: "front".into(),
            path: Some(path.to_owned()),
            codec: "auto",
            encoder: Some("libx264"),
            frames: 10,
            skipped: 0,
            dropped: 1,
            duration_secs: 1.0,
            bytes: 1000,
            error: None,
            panicked: false,
            session_serial: 1,
            first_time_ns: Some(2_000_000_000),
            last_time_ns: Some(3_000_000_000),
        }
    }

    fn read(path: &Path) -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
    }

    #[test]
    fn a_manifest_follows_its_session_from_start_to_its_last_file() {
        let dir = temp_dir("follow");
        let mut manifests = LiveManifests::new(&dir);
        let session = SessionRef { serial: 1, id: "run".into(), start_nanos: 1_000_000_000 };
        manifests.session_started(&session, SessionCause::Parameter);
        let path = dir.join("run_19700101T000001.session.json");
        assert_eq!(read(&path)["session_id"], "run", "written at the start");
        assert_eq!(read(&path)["started_by"], "parameter");
        let video = dir.join("run_19700101T000002.mp4");
        manifests.on_report(&report(FileStatus::Started, &video));
        assert_eq!(read(&path)["cameras"]["front"]["files"][0]["status"], "recording");
        assert_eq!(read(&path)["cameras"]["front"]["files"][0]["offset_secs"], 1.0);
        manifests.session_ended(1, EndReason::Stop, SessionCause::ControlMessage, 4_000_000_000);
        assert!(manifests.active_paths().contains(&video), "its file is still finishing");
        manifests.on_report(&report(FileStatus::Finished, &video));
        let json = read(&path);
        assert_eq!(
            (json["end_reason"].as_str(), json["stopped_by"].as_str(), json["cameras"]["front"]["frames"].as_u64()),
            (Some("stop"), Some("control_message"), Some(10))
        );
        assert!(manifests.active_paths().is_empty(), "ended with every file finished: nothing to protect");
        manifests.retire_final(Instant::now());
        assert_eq!(manifests.open.len(), 1, "a late file of the session may still open");
        manifests.retire_final(Instant::now() + RETIRE_AFTER);
        assert!(manifests.open.is_empty(), "forgotten once ended a while with every file finished");
    }

    #[test]
    fn reports_of_unknown_sessions_are_ignored() {
        let dir = temp_dir("unknown");
        let mut manifests = LiveManifests::new(&dir);
        manifests.on_report(&report(FileStatus::Started, &dir.join("x.mp4")));
        manifests.session_ended(9, EndReason::EndOfRun, SessionCause::EndOfRun, 0);
        assert!(std::fs::read_dir(&dir).unwrap().next().is_none());
    }
}
