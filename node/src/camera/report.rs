//! File events: what the logs say and what the optional `recording` output sends, as one
//! Arrow struct row per event (schema in the README).

use std::{path::PathBuf, sync::Arc};

use crate::session::SessionRef;
use arrow::{
    array::{ArrayRef, Float64Array, StringArray, StructArray, UInt64Array},
    datatypes::{DataType, Field},
};

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

    /// The report as a one-row Arrow struct array.
    pub fn to_arrow(&self) -> ArrayRef {
        let text = |value: Option<&str>| Arc::new(StringArray::from(vec![value])) as ArrayRef;
        let count = |value: u64| Arc::new(UInt64Array::from(vec![value])) as ArrayRef;
        let path = self.path.as_ref().map(|p| p.display().to_string());
        let columns: Vec<(&str, DataType, ArrayRef)> = vec![
            ("status", DataType::Utf8, text(Some(self.status.name()))),
            ("session_id", DataType::Utf8, text(Some(&self.session_id))),
            ("camera", DataType::Utf8, text(Some(&self.camera))),
            ("path", DataType::Utf8, text(path.as_deref())),
            ("codec", DataType::Utf8, text(Some(self.codec))),
            ("encoder", DataType::Utf8, text(self.encoder)),
            ("frames", DataType::UInt64, count(self.frames)),
            ("skipped", DataType::UInt64, count(self.skipped)),
            ("dropped", DataType::UInt64, count(self.dropped)),
            ("duration_secs", DataType::Float64, Arc::new(Float64Array::from(vec![self.duration_secs]))),
            ("bytes", DataType::UInt64, count(self.bytes)),
            ("error", DataType::Utf8, text(self.error.as_deref())),
            ("first_time_ns", DataType::UInt64, Arc::new(UInt64Array::from(vec![self.first_time_ns])) as ArrayRef),
            ("last_time_ns", DataType::UInt64, Arc::new(UInt64Array::from(vec![self.last_time_ns])) as ArrayRef),
        ];
        let pairs: Vec<(Arc<Field>, ArrayRef)> = columns
            .into_iter()
            .map(|(name, data_type, array)| (Arc::new(Field::new(name, data_type, true)), array))
            .collect();
        Arc::new(StructArray::from(pairs))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Array, AsArray};

    #[test]
    fn report_becomes_one_struct_row_with_nulls_for_missing_values() {
        let report = FileReport {
            status: FileStatus::Finished,
            session_id: "run-1".into(),
            camera: "image".into(),
            path: Some("/tmp/a.mp4".into()),
            codec: "auto",
            encoder: Some("libx264"),
            frames: 42,
            skipped: 1,
            dropped: 0,
            duration_secs: 2.8,
            bytes: 1000,
            error: None,
            panicked: false,
            session_serial: 1,
            first_time_ns: Some(5),
            last_time_ns: None,
        };
        let array = report.to_arrow();
        let row = array.as_struct();
        assert_eq!(row.len(), 1);
        assert_eq!(row.column_by_name("status").unwrap().as_string::<i32>().value(0), "finished");
        assert_eq!(row.column_by_name("frames").unwrap().as_primitive::<arrow::datatypes::UInt64Type>().value(0), 42);
        assert!(row.column_by_name("error").unwrap().is_null(0));
    }
}
