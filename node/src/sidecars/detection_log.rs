//! The detections log beside each video: `NAME.detections.jsonl` next to `NAME.mp4`, one JSON
//! object per detector message, naming the video frame it belongs to (see
//! [`super::matching`]). Lines are handed to the OS as they are written and synced with the
//! video's fragments (see [`crate::storage::durability`]).

use std::{
    io,
    path::{Path, PathBuf},
};

use serde::{Deserialize, Serialize};

use super::line_file::LineFile;
use crate::detections::Detections;

/// What replaces the video's extension: `a.mp4` -> `a.detections.jsonl`.
pub const DETECTIONS_EXTENSION: &str = "detections.jsonl";

/// The detections log of `video`: the same folder and stem, extension `detections.jsonl`.
pub fn detections_path(video: &Path) -> PathBuf {
    video.with_extension(DETECTIONS_EXTENSION)
}

/// One line of the log.
#[derive(Serialize)]
struct LogLine<'a> {
    frame: Option<u64>,
    time_ns: u64,
    #[serde(flatten)]
    detections: &'a Detections,
}

/// A detections log being written: one JSON object per line,
/// `{"frame":12,"time_ns":...,"labels":[...],"conf":[...],"bbox":[[x1,y1,x2,y2],...],"format":"xyxy"}`.
#[derive(Debug)]
pub struct DetectionLog {
    out: LineFile,
    lines: u64,
}

impl DetectionLog {
    /// Creates (or truncates) the log at `path`.
    pub fn create(path: &Path) -> io::Result<Self> {
        Ok(Self { out: LineFile::create(path, "detections log")?, lines: 0 })
    }

    /// Writes one line: `detections` of the image with dora timestamp `time_ns`, which is frame
    /// `frame` of the video (`None`, written as `null`, when no video frame matches). A
    /// non-finite number is written as `null`.
    pub fn append(&mut self, frame: Option<u64>, time_ns: u64, detections: &Detections) -> io::Result<()> {
        let line = LogLine { frame, time_ns, detections };
        let mut json = serde_json::to_vec(&line).map_err(io::Error::other)?;
        json.push(b'\n');
        self.out.write_line(&json)?;
        self.lines += 1;
        Ok(())
    }

    /// The file, to sync it with the video.
    pub fn side_file(&self) -> &LineFile {
        &self.out
    }

    /// Syncs the log to disk and returns how many lines it holds.
    pub fn finish(self) -> io::Result<u64> {
        self.out.finish()?;
        Ok(self.lines)
    }
}

/// One line of a detections log, as read back.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct LoggedDetections {
    /// The video frame it belongs to; `None` when no frame matched.
    pub frame: Option<u64>,
    /// The detector message's dora timestamp (UTC ns).
    pub time_ns: u64,
    /// What the detector found.
    #[serde(flatten)]
    pub detections: Detections,
}

/// A detections log read back: its lines in file order, and how many could not be read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DetectionLines {
    /// The lines that parsed.
    pub lines: Vec<LoggedDetections>,
    /// Lines skipped: not JSON of the documented shape (a line cut short by a crash, or
    /// `null` for a non-finite number).
    pub skipped: u64,
}

/// Reads the detections log at `path`, skipping (and counting) lines that do not parse.
pub fn read_detection_log(path: &Path) -> io::Result<DetectionLines> {
    let text =
        std::fs::read_to_string(path).map_err(|e| super::with_path(e, "cannot read the detections log", path))?;
    let mut read = DetectionLines::default();
    for line in text.lines().filter(|line| !line.trim().is_empty()) {
        match serde_json::from_str(line) {
            Ok(logged) => read.lines.push(logged),
            Err(_) => read.skipped += 1,
        }
    }
    Ok(read)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detections::BoxFormat;

    #[test]
    fn detections_log_sits_beside_the_video() {
        assert_eq!(
            detections_path(Path::new("/rec/a_20240102T030405.mp4")),
            Path::new("/rec/a_20240102T030405.detections.jsonl")
        );
    }

    #[test]
    fn log_lines_are_json_objects_in_the_documented_shape() {
        let path = std::env::temp_dir().join(format!("detections-log-{}.detections.jsonl", std::process::id()));
        let mut log = DetectionLog::create(&path).unwrap();
        log.append(Some(12), 1_704_164_645_000_000_000, &Detections::person_and_dog()).unwrap();
        let mut nothing = Detections::person_and_dog();
        (nothing.labels, nothing.conf, nothing.bbox, nothing.format) = (vec![], vec![], vec![], BoxFormat::Xywh);
        log.append(None, 7, &nothing).unwrap();
        assert_eq!(log.finish().unwrap(), 2);
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            r#"{"frame":12,"time_ns":1704164645000000000,"labels":["person","dog"],"conf":[0.9,0.4],"bbox":[[1.0,2.0,3.0,4.0],[5.0,6.0,7.0,8.0]],"format":"xyxy"}"#
        );
        assert_eq!(lines[1], r#"{"frame":null,"time_ns":7,"labels":[],"conf":[],"bbox":[],"format":"xywh"}"#);
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn logged_lines_read_back_and_broken_lines_are_counted() {
        let path = std::env::temp_dir().join(format!("detections-read-{}.detections.jsonl", std::process::id()));
        let mut log = DetectionLog::create(&path).unwrap();
        log.append(Some(3), 42, &Detections::person_and_dog()).unwrap();
        log.append(None, 43, &Detections::person_and_dog()).unwrap();
        log.finish().unwrap();
        let mut text = std::fs::read_to_string(&path).unwrap();
        text.push_str("{\"frame\":4,\"time_");
        std::fs::write(&path, text).unwrap();
        let read = read_detection_log(&path).unwrap();
        assert_eq!(read.skipped, 1);
        assert_eq!(read.lines.len(), 2);
        assert_eq!((read.lines[0].frame, read.lines[0].time_ns), (Some(3), 42));
        assert_eq!(read.lines[0].detections, Detections::person_and_dog());
        assert_eq!(read.lines[1].frame, None);
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn non_finite_numbers_are_logged_as_null() {
        let path = std::env::temp_dir().join(format!("detections-nan-{}.jsonl", std::process::id()));
        let mut log = DetectionLog::create(&path).unwrap();
        let mut detections = Detections::person_and_dog();
        detections.conf[0] = f32::NAN;
        log.append(Some(0), 0, &detections).unwrap();
        log.finish().unwrap();
        let value: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert!(value["conf"][0].is_null());
        std::fs::remove_file(&path).unwrap();
    }
}
