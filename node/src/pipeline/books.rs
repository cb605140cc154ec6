//! The pipeline's bookkeeping, apart from its frames: the manifests of the sessions in progress,
//! retention of STORAGE, and the run's counters. Fed with file reports and an explicit [`Now`].

use std::{collections::HashSet, path::PathBuf};

use super::wiring::RunSummary;
use crate::{
    camera::report::{FileReport, FileStatus},
    config::Config,
    session::SessionRef,
    sidecars::{
        live_manifests::LiveManifests,
        manifest::{EndReason, SessionCause},
    },
    storage::{Retention, retention::Limits},
    timing::Now,
};

/// Manifests, retention and counters.
pub struct Books {
    manifests: LiveManifests,
    retention: Retention,
    /// The run's counters so far.
    pub summary: RunSummary,
    /// Reports the bookkeeping made itself (retention deletions), sent with the workers'.
    own_reports: Vec<FileReport>,
}

impl Books {
    /// The books of a run writing into `config.storage`.
    pub fn new(config: &Config) -> Self {
        let limits = Limits { max_total_bytes: config.max_total_bytes, min_free_bytes: config.min_free_bytes };
        Self {
            manifests: LiveManifests::new(&config.storage),
            retention: Retention::new(&config.storage, limits),
            summary: RunSummary::default(),
            own_reports: Vec::new(),
        }
    }

    /// A session started by `cause`: its manifest is written.
    pub fn session_started(&mut self, session: &SessionRef, cause: SessionCause) {
        self.manifests.session_started(session, cause);
    }

    /// Session `serial` ended at sender time `at_nanos` for `reason`, by `cause`.
    pub fn session_ended(&mut self, serial: u64, reason: EndReason, cause: SessionCause, at_nanos: u64) {
        self.manifests.session_ended(serial, reason, cause, at_nanos);
    }

    /// Periodic work: final manifests are let go, STORAGE kept within its limits.
    pub fn tick(&mut self, now: Now) {
        self.manifests.retire_final(now.instant);
        self.enforce_retention(now, false);
    }

    /// Books `reports` (the workers' file events) and appends the bookkeeping's own; a finished
    /// file runs retention first, so its deletions go out with it.
    pub fn book(&mut self, reports: &mut Vec<FileReport>, now: Now) {
        if reports.iter().any(|r| r.status == FileStatus::Finished) {
            self.enforce_retention(now, true);
        }
        reports.append(&mut self.own_reports);
        for report in reports.iter() {
            self.manifests.on_report(report);
            self.count(report);
        }
    }

    fn count(&mut self, report: &FileReport) {
        match (report.status, &report.error) {
            (FileStatus::Finished, _) => {
                self.summary.files_finished += 1;
                self.summary.frames_recorded += report.frames;
            }
            (FileStatus::Failed, Some(_)) => {
                self.summary.files_failed += 1;
                self.summary.worker_panics += u64::from(report.panicked);
            }
            _ => {}
        }
    }

    /// Keeps STORAGE within its limits; files of active sessions are locked or listed as active.
    fn enforce_retention(&mut self, now: Now, file_finished: bool) {
        let active: HashSet<PathBuf> = self.manifests.active_paths();
        for deleted in self.retention.run(now.instant, file_finished, &active) {
            self.own_reports.push(FileReport::deleted(deleted.video, deleted.bytes, deleted.reason));
        }
    }
}
