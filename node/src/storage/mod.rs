//! The storage folder. At startup: creates it durably, proves it takes a file, tells the
//! recorder's own files from foreign ones ([`ownership`]) and repairs what a crashed run left
//! among its own ([`recovery`]). While running: keeps its own recordings within `MAX_TOTAL_BYTES`
//! and `MIN_FREE_BYTES` ([`retention`]). Every writer, repair and deletion follows one claim and
//! lock protocol ([`claim`]); foreign files are never modified, moved or deleted.

pub mod claim;
pub mod durability;
pub mod naming;
pub mod ownership;
pub mod recovery;
pub mod retention;
pub mod tags;
#[cfg(test)]
pub(crate) mod testing;

use std::{
    collections::HashSet,
    fs::File,
    io,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use eyre::WrapErr;

use self::{
    ownership::{Evidence, Survey},
    recovery::{Recovered, recover_storage},
    retention::{Deleted, Enforced, Limits, REASON_MIN_FREE_BYTES, Unmet, enforce},
};

/// How often retention looks at the storage folder, besides after every finished file.
const RETENTION_PERIOD: Duration = Duration::from_secs(10);
/// Name of the file that proves STORAGE takes a file (hidden, removed at once).
const WRITE_TEST_STEM: &str = ".dora-video-recorder-write-test";
/// Shortest time between two warnings that a limit cannot be met.
const UNMET_WARNING_PERIOD: Duration = Duration::from_secs(600);

/// Creates `STORAGE` so that it survives a power cut, checks it takes a file, says how many
/// foreign files it holds and repairs the recorder's own crash leftovers in it; an error stops
/// the node with one clear message.
///
/// # Errors
///
/// `STORAGE` cannot be created, written or listed.
pub fn prepare_storage(storage: &Path) -> eyre::Result<()> {
    create_storage(storage)?;
    check_writable(storage)?;
    let survey = ownership::survey(storage)
        .wrap_err_with(|| format!("cannot read the STORAGE folder {}: check its permissions", storage.display()))?;
    report_foreign(storage, &survey);
    report_recovery(recover_storage(&survey.videos));
    // The write test's entry and every file recovery removed: on disk before recording starts.
    if let Err(error) = sync_folder(storage) {
        tracing::warn!(storage = %storage.display(), "cannot sync the STORAGE folder to disk: {error}");
    }
    Ok(())
}

/// Creates the storage folder with its parents, and syncs the parent of every folder it created,
/// so the new folders' entries survive a power cut.
fn create_storage(storage: &Path) -> eyre::Result<()> {
    let shown = storage.display();
    let created: Vec<&Path> =
        storage.ancestors().take_while(|dir| !dir.as_os_str().is_empty() && !dir.exists()).collect();
    std::fs::create_dir_all(storage)
        .wrap_err_with(|| format!("cannot create STORAGE folder {shown}: check the path and permissions"))?;
    for dir in created {
        let parent = dir.parent().filter(|parent| !parent.as_os_str().is_empty()).unwrap_or(Path::new("."));
        sync_folder(parent).wrap_err_with(|| format!("cannot sync {} after creating {shown}", parent.display()))?;
    }
    Ok(())
}

/// Proves the storage folder takes a file, so a wrong path fails at startup with one clear error
/// instead of at the first frame. The test file is claimed like any other (never replacing an
/// existing file, such as one a crash left) and removed at once.
fn check_writable(storage: &Path) -> eyre::Result<()> {
    let probe = claim::claim_path(storage, WRITE_TEST_STEM, "tmp").wrap_err_with(|| {
        format!("STORAGE folder {} is not writable: check its permissions, that it is not mounted read-only, and free space", storage.display())
    })?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}

/// Makes the entries of `folder` (files created, renamed or removed in it) durable.
fn sync_folder(folder: &Path) -> io::Result<()> {
    if cfg!(unix) { File::open(folder)?.sync_all() } else { Ok(()) }
}

/// The one line that says how many foreign files STORAGE holds and that they are left alone.
fn report_foreign(storage: &Path, survey: &Survey) {
    let own = survey.videos.len();
    let foreign = survey.foreign.len();
    if foreign == 0 {
        tracing::debug!(storage = %storage.display(), own_recordings = own, "STORAGE holds no foreign files");
        return;
    }
    tracing::info!(
        storage = %storage.display(), foreign_files = foreign, own_recordings = own,
        "STORAGE holds {foreign} foreign files (not written by this recorder); they are left alone: never modified, moved or deleted, and not counted in MAX_TOTAL_BYTES"
    );
}

/// One line per file a crashed run left behind and this start repaired, with why the file is the
/// recorder's own.
fn report_recovery(outcomes: Vec<(PathBuf, Evidence, Result<Recovered, String>)>) {
    for (path, evidence, outcome) in outcomes {
        let (path, own_by) = (path.display(), evidence.as_str());
        match outcome {
            Ok(Recovered::Repaired { trimmed_bytes, indexed }) => {
                tracing::warn!(%path, own_by, trimmed_bytes, indexed, "repaired a recording cut short by a crash")
            }
            Ok(Recovered::Removed) => {
                tracing::warn!(%path, own_by, "removed a recording a crash left without any frame")
            }
            Ok(Recovered::Untouched) => {}
            Err(error) => {
                tracing::warn!(%path, "cannot repair a recording a crash left behind (it is kept as is): {error}")
            }
        }
    }
}

/// Retention while the node runs: after every finished file and every [`RETENTION_PERIOD`].
#[derive(Debug)]
pub struct Retention {
    storage: PathBuf,
    limits: Limits,
    last_run: Option<Instant>,
    last_unmet_warning: Option<Instant>,
}

impl Retention {
    /// Retention of `storage` to `limits` (off when neither is set).
    pub fn new(storage: &Path, limits: Limits) -> Self {
        Self { storage: storage.to_owned(), limits, last_run: None, last_unmet_warning: None }
    }

    /// Deletes the oldest finished recordings if a limit is exceeded and it is time to look:
    /// `file_finished` says a file just finished, or the period has passed. `active` holds the
    /// files of sessions in progress (their videos are locked anyway).
    pub fn run(&mut self, now: Instant, file_finished: bool, active: &HashSet<PathBuf>) -> Vec<Deleted> {
        let due = self.last_run.is_none_or(|at| now.duration_since(at) >= RETENTION_PERIOD);
        if self.limits.is_off() || !(file_finished || due) {
            return Vec::new();
        }
        self.last_run = Some(now);
        match enforce(&self.storage, active, &self.limits) {
            Ok(Enforced { deleted, unmet }) => {
                for file in &deleted {
                    tracing::info!(path = %file.video.display(), bytes = file.bytes, limit = file.reason, own_by = file.evidence.as_str(), "deleted the oldest recording to keep STORAGE within its limit");
                }
                if let Some(unmet) = unmet {
                    self.warn_unmet(now, &unmet);
                }
                deleted
            }
            Err(error) => {
                tracing::warn!(storage = %self.storage.display(), "retention cannot read the storage folder: {error}");
                Vec::new()
            }
        }
    }

    /// One warning per [`UNMET_WARNING_PERIOD`] that a limit holds no more, with what fills it.
    fn warn_unmet(&mut self, now: Instant, unmet: &Unmet) {
        if !self.unmet_warning_due(now) {
            return;
        }
        let storage = self.storage.display();
        let Unmet { own_bytes, free_bytes, foreign_files, foreign_bytes, .. } = *unmet;
        if unmet.reason == REASON_MIN_FREE_BYTES {
            tracing::warn!(
                %storage, free_bytes, own_bytes, foreign_files, foreign_bytes,
                "less than MIN_FREE_BYTES is free and the recorder has no finished recording of its own left to delete; it never deletes other files (foreign files in STORAGE, other folders): free space by hand"
            );
        } else {
            tracing::warn!(
                %storage, own_bytes,
                "the recordings in progress alone exceed MAX_TOTAL_BYTES; they are deleted once finished if still the oldest"
            );
        }
    }

    /// Whether a warning may go out at `now` (then the next waits [`UNMET_WARNING_PERIOD`]).
    fn unmet_warning_due(&mut self, now: Instant) -> bool {
        let due = self.last_unmet_warning.is_none_or(|at| now.duration_since(at) >= UNMET_WARNING_PERIOD);
        if due {
            self.last_unmet_warning = Some(now);
        }
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        encode::Container,
        storage::testing::{mp4, record, temp_dir, write_aged},
    };

    #[test]
    fn storage_is_created_with_its_parents_and_a_stale_write_test_file_does_not_stop_the_node() {
        let dir = temp_dir("prepare-nested");
        let storage = dir.join("a/b/recordings");
        prepare_storage(&storage).unwrap();
        assert!(storage.is_dir());
        assert!(std::fs::read_dir(&storage).unwrap().next().is_none(), "the write test leaves nothing");
        let stale = write_aged(&storage, ".dora-video-recorder-write-test.tmp", b"left by a crash", 60);
        prepare_storage(&storage).unwrap();
        assert_eq!(std::fs::read(&stale).unwrap(), b"left by a crash");
        let file = write_aged(&dir, "file", b"", 0);
        assert!(prepare_storage(&file).is_err(), "a file is no folder");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn startup_removes_the_recorders_own_frameless_file_and_leaves_foreign_ones_alone() {
        let dir = temp_dir("prepare-foreign");
        let own = dir.join("s_20240101T000000.mp4");
        record(&own, Container::Mp4, 0, false);
        crate::storage::testing::age(&own, 60);
        let foreign_header = mp4(&[("title", "holiday")], &[]);
        let foreign = write_aged(&dir, "t_20240101T000000.mp4", &foreign_header, 60);
        let empty = write_aged(&dir, "empty.mp4", b"", 60);
        prepare_storage(&dir).unwrap();
        assert!(!own.exists(), "a header without a frame is useless");
        assert_eq!(std::fs::read(&foreign).unwrap(), foreign_header);
        assert!(empty.exists(), "an empty file shows nothing: left alone");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_limit_that_cannot_be_met_is_warned_about_at_most_once_per_period() {
        let mut retention = Retention::new(Path::new("unused"), Limits::default());
        let t0 = Instant::now();
        assert!(retention.unmet_warning_due(t0));
        assert!(!retention.unmet_warning_due(t0 + Duration::from_secs(599)));
        assert!(retention.unmet_warning_due(t0 + UNMET_WARNING_PERIOD));
        assert!(!retention.unmet_warning_due(t0 + UNMET_WARNING_PERIOD + Duration::from_secs(1)));
    }
}
