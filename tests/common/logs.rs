//! Reading what the recorder writes beside a video (frame index, detections, session manifest)
//! and the frame times ffprobe sees, to check them against each other.

use std::{path::Path, process::Command};

use serde_json::Value;

/// A CSV file as a header and rows of cells (plain values: no quoting needed by the tests).
pub fn read_csv(path: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let mut lines = text.lines().map(|line| line.split(',').map(str::to_owned).collect::<Vec<_>>());
    let header = lines.next().unwrap_or_default();
    (header, lines.collect())
}

/// One column of a CSV read by [`read_csv`], by name.
pub fn csv_column(header: &[String], rows: &[Vec<String>], name: &str) -> Vec<String> {
    let at = header.iter().position(|h| h == name).unwrap_or_else(|| panic!("no column {name} in {header:?}"));
    rows.iter().map(|row| row[at].clone()).collect()
}

/// The presentation time of every decoded frame of `path`, in seconds, in order.
pub fn frame_times(path: &Path) -> Vec<f64> {
    let output = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-show_entries", "frame=best_effort_timestamp_time"])
        .args(["-of", "csv=p=0"])
        .arg(path)
        .output()
        .unwrap_or_else(|e| panic!("ffprobe runs: {e}"));
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.trim().trim_end_matches(',').parse::<f64>().ok())
        .collect()
}

/// Every line of a JSON-lines file.
pub fn read_jsonl(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    text.lines().map(|line| serde_json::from_str(line).unwrap()).collect()
}

/// A JSON file.
pub fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))).unwrap()
}

/// The log of `node` in the dataflow run `dataflow` (its UUID), as the coordinator path keeps it:
/// `dataflows/out/UUID/log_NODE.jsonl` (empty if there is none).
pub fn node_log(dataflow: &str, node: &str) -> String {
    let path = crate::workspace_root().join("dataflows/out").join(dataflow).join(format!("log_{node}.jsonl"));
    std::fs::read_to_string(path).unwrap_or_default()
}

/// The log of `node` in the newest dataflow run under `dataflows/out/`.
pub fn newest_node_log(node: &str) -> String {
    let out = crate::workspace_root().join("dataflows/out");
    let newest = std::fs::read_dir(&out)
        .unwrap()
        .filter_map(|entry| entry.ok())
        .filter(|entry| entry.path().is_dir())
        .max_by_key(|entry| entry.metadata().and_then(|m| m.modified()).ok())
        .unwrap();
    node_log(&newest.file_name().to_string_lossy(), node)
}

/// The dataflow UUID `dora start` printed (`dataflow start triggered: UUID`).
pub fn started_dataflow(start_output: &str) -> String {
    let line = start_output
        .lines()
        .find(|line| line.contains("dataflow start triggered: ") || line.contains("dataflow started: "))
        .unwrap_or_else(|| panic!("no dataflow id in: {start_output}"));
    line.rsplit(": ").next().unwrap().trim().to_owned()
}

/// The files in `dir` whose names end in `suffix`, sorted.
pub fn files_ending(dir: &Path, suffix: &str) -> Vec<std::path::PathBuf> {
    crate::files_in(dir).into_iter().filter(|f| f.to_string_lossy().ends_with(suffix)).collect()
}
