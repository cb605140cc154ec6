//! What the node sends: file events on `recording` and per-camera stats on `stats`, as Arrow
//! struct arrays (schemas in the README).

use std::sync::Arc;

use arrow::{
    array::{ArrayRef, Float64Array, StringArray, StructArray, UInt64Array},
    datatypes::{DataType, Field},
};

use crate::{camera::report::FileReport, stats::CameraStats};

/// A file event as a one-row Arrow struct array, for the `recording` output.
pub fn report_to_arrow(report: &FileReport) -> ArrayRef {
    let text = |value: Option<&str>| Arc::new(StringArray::from(vec![value])) as ArrayRef;
    let count = |value: u64| Arc::new(UInt64Array::from(vec![value])) as ArrayRef;
    let path = report.path.as_ref().map(|p| p.display().to_string());
    let columns: Vec<(&str, DataType, ArrayRef)> = vec![
        ("status", DataType::Utf8, text(Some(report.status.name()))),
        ("session_id", DataType::Utf8, text(Some(&report.session_id))),
        ("camera", DataType::Utf8, text(Some(&report.camera))),
        ("path", DataType::Utf8, text(path.as_deref())),
        ("codec", DataType::Utf8, text(Some(report.codec))),
        ("encoder", DataType::Utf8, text(report.encoder)),
        ("frames", DataType::UInt64, count(report.frames)),
        ("skipped", DataType::UInt64, count(report.skipped)),
        ("dropped", DataType::UInt64, count(report.dropped)),
        ("duration_secs", DataType::Float64, Arc::new(Float64Array::from(vec![report.duration_secs]))),
        ("bytes", DataType::UInt64, count(report.bytes)),
        ("error", DataType::Utf8, text(report.error.as_deref())),
        ("first_time_ns", DataType::UInt64, Arc::new(UInt64Array::from(vec![report.first_time_ns])) as ArrayRef),
        ("last_time_ns", DataType::UInt64, Arc::new(UInt64Array::from(vec![report.last_time_ns])) as ArrayRef),
    ];
    struct_array(columns, true)
}

/// Stats rows as one Arrow struct array (a row per camera) for the `stats` output.
pub fn stats_to_arrow(rows: &[CameraStats]) -> ArrayRef {
    let count = |f: fn(&CameraStats) -> u64| Arc::new(UInt64Array::from_iter_values(rows.iter().map(f))) as ArrayRef;
    let rate = |f: fn(&CameraStats) -> f64| Arc::new(Float64Array::from_iter_values(rows.iter().map(f))) as ArrayRef;
    let columns: Vec<(&str, DataType, ArrayRef)> = vec![
        ("camera", DataType::Utf8, Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.camera.as_str())))),
        ("frames_in", DataType::UInt64, count(|r| r.frames_in)),
        ("encoded", DataType::UInt64, count(|r| r.encoded)),
        ("dropped", DataType::UInt64, count(|r| r.dropped)),
        ("encode_fps", DataType::Float64, rate(|r| r.encode_fps)),
        ("bitrate_bps", DataType::Float64, rate(|r| r.bitrate_bps)),
        ("queue_frames", DataType::UInt64, count(|r| r.queue_frames)),
        ("queue_bytes", DataType::UInt64, count(|r| r.queue_bytes)),
    ];
    struct_array(columns, false)
}

/// Named columns as one struct array.
fn struct_array(columns: Vec<(&str, DataType, ArrayRef)>, nullable: bool) -> ArrayRef {
    let pairs: Vec<(Arc<Field>, ArrayRef)> = columns
        .into_iter()
        .map(|(name, data_type, array)| (Arc::new(Field::new(name, data_type, nullable)), array))
        .collect();
    Arc::new(StructArray::from(pairs))
}

#[cfg(test)]
mod tests {
    use arrow::array::{Array, AsArray};

    use super::*;
    use crate::camera::report::FileStatus;

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
        let array = report_to_arrow(&report);
        let row = array.as_struct();
        assert_eq!(row.len(), 1);
        assert_eq!(row.column_by_name("status").unwrap().as_string::<i32>().value(0), "finished");
        assert_eq!(row.column_by_name("frames").unwrap().as_primitive::<arrow::datatypes::UInt64Type>().value(0), 42);
        assert!(row.column_by_name("error").unwrap().is_null(0));
    }

    #[test]
    fn stats_become_one_struct_row_per_camera() {
        let row = CameraStats {
            camera: "wrist".into(),
            frames_in: 1,
            encoded: 1,
            dropped: 0,
            encode_fps: 15.0,
            bitrate_bps: 8.0,
            queue_frames: 0,
            queue_bytes: 0,
        };
        let array = stats_to_arrow(&[row.clone(), row]);
        assert_eq!(array.len(), 2);
        assert_eq!(array.as_struct().column_by_name("camera").unwrap().as_string::<i32>().value(1), "wrist");
    }
}
