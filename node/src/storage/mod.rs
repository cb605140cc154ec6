//! The storage folder: at startup, proves it takes a file and repairs what a crashed run left in
//! it (see [`crate::storage::recovery`]); while running, keeps it within `MAX_TOTAL_BYTES` and
//! `MIN_FREE_BYTES` (see [`crate::storage::retention`]).

pub mod durability;
pub mod naming;
pub mod recovery;
pub mod retention;

use std::{
    collections::HashSet,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use eyre::WrapErr;

use crate::{
    storage::recovery::{Recovered, recover_storage},
    storage::retention::{Deleted, Limits, enforce},
};

/// How often retention looks at the storage folder, besides after every finished file.
const RETENTION_PERIOD: Duration = Duration::from_secs(10);

/// Checks `STORAGE` and repairs crash leftovers in it; an error stops the node with one clear
/// message.
pub fn prepare_storage(storage: &Path) -> eyre::Result<()> {
    check_storage(storage)?;
    report_recovery(recover_storage(storage));
    Ok(())
}

/// Creates the storage folder and proves it takes a file, so a wrong path fails at startup with
/// one clear error instead of at the first frame.
fn check_storage(storage: &Path) -> eyre::Result<()> {
    let shown = storage.display();
    std::fs::create_dir_all(storage)
        .wrap_err_with(|| format!("cannot create STORAGE folder {shown}: check the path and permissions"))?;
    let probe = storage.join(format!(".dora-video-recorder-write-test-{}", std::process::id()));
    std::fs::write(&probe, b"ok").wrap_err_with(|| {
        format!("STORAGE folder {shown} is not writable: check its permissions, that it is not mounted read-only, and free space")
    })?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}

/// One line per file a crashed run left behind and this start repaired.
fn report_recovery(outcomes: Vec<(std::path::PathBuf, Result<Recovered, String>)>) {
    for (path, outcome) in outcomes {
        let path = path.display();
        match outcome {
            Ok(Recovered::Repaired { trimmed_bytes, indexed }) => {
                tracing::warn!(%path, trimmed_bytes, indexed, "repaired a recording cut short by a crash")
            }
            Ok(Recovered::Removed) => tracing::warn!(%path, "removed a recording a crash left without any frame"),
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
}

impl Retention {
    /// Retention of `storage` to `limits` (off when neither is set).
    pub fn new(storage: &Path, limits: Limits) -> Self {
        Self { storage: storage.to_owned(), limits, last_run: None }
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
            Ok(deleted) => {
                for file in &deleted {
                    tracing::info!(path = %file.video.display(), bytes = file.bytes, limit = file.reason, "deleted the oldest recording to keep STORAGE within its limit");
                }
                deleted
            }
            Err(error) => {
                tracing::warn!(storage = %self.storage.display(), "retention cannot read the storage folder: {error}");
                Vec::new()
            }
        }
    }
}
