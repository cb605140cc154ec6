//! File events: what the logs say and what the optional `recording` output sends (as one Arrow
//! struct row per event, written by `node::outputs`; schema in the README).

use std::path::PathBuf;

use crate::session::SessionRef;

/// What happened to a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileStatus {
    /// The file was opened.
    Started,
    /// The file was finalized and is complete.
    Finished,
    /// The file could not be opened or written; `error` says why.
    Failed,
    /// Retention deleted the file and its side files (`MAX_TOTAL_BYTES`, `MIN_FREE_BYTES`).
    Deleted,
}

impl FileStatus {
    /// Lower-case name used in the output.
    pub fn name(self) -> &'static str {
        match self {
            Self::Started => "started",
            Self::Finished => "finished",
            Self::Failed => "failed",
            Self::Deleted => "deleted",
        }
    }
}

/// One file event.
#[derive(Debug, Clone, PartialEq)]
pub struct FileReport {
    /// Started, finished or failed.
    pub status: FileStatus,
    /// The user's session id.
    pub session_id: String,
    /// The camera input id.
    pub camera: String,
    /// The file, if one was created.
    pub path: Option<PathBuf>,
    /// The requested codec (`CODEC`).
    pub codec: &'static str,
    /// The encoder actually used, once one opened.
    pub encoder: Option<&'static str>,
    /// Frames encoded into the file.
    pub frames: u64,
    /// Frames of this camera skipped as compressed or invalid while the file was open.
    pub skipped: u64,
    /// Frames dropped because the encoder fell behind or no file could be opened.
    pub dropped: u64,
    /// Media duration in seconds.
    pub duration_secs: f64,
    /// File size in bytes.
    pub bytes: u64,
    /// Why it failed.
    pub error: Option<String>,
    /// Whether the failure was a panic inside the recorder (a bug, contained to this file).
    pub panicked: bool,
    /// The run-unique serial of the session (ids may repeat).
    pub session_serial: u64,
    /// dora timestamp of the file's first frame, Unix nanoseconds.
    pub first_time_ns: Option<u64>,
    /// dora timestamp of the file's last frame, Unix nanoseconds.
    pub last_time_ns: Option<u64>,
}

impl FileReport {
    /// An event for a file of `session`'s `camera`; counts and times start at zero.
    pub fn new(
        status: FileStatus,
        session: &SessionRef,
        camera: &str,
        path: Option<PathBuf>,
        codec: &'static str,
    ) -> Self {
        Self {
            status,
            session_id: session.id.clone(),
            camera: camera.to_owned(),
            path,
            codec,
            encoder: None,
            frames: 0,
            skipped: 0,
            dropped: 0,
            duration_secs: 0.0,
            bytes: 0,
            error: None,
            panicked: false,
            session_serial: session.serial,
            first_time_ns: None,
            last_time_ns: None,
        }
    }

    /// The event for a recording retention deleted; `reason` names the limit.
    pub fn deleted(path: PathBuf, bytes: u64, reason: &str) -> Self {
        Self {
            status: FileStatus::Deleted,
            session_id: String::new(),
            camera: String::new(),
            path: Some(path),
            codec: "",
            encoder: None,
            frames: 0,
            skipped: 0,
            dropped: 0,
            duration_secs: 0.0,
            bytes,
            error: Some(format!("deleted to keep {reason}")),
            panicked: false,
            session_serial: 0,
            first_time_ns: None,
            last_time_ns: None,
        }
    }
}
