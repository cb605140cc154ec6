//! What a recording holds, frame by frame (the test-pattern camera's barcode), what the camera
//! says it sent (its send log), and the recorder processes to kill.

use std::{path::Path, time::SystemTime};

use dora_recorder_test_nodes::pattern::decode_frame_index_strided;

/// Frame indices read back from every frame of a recording of `source` (width, height) frames
/// (`None` where unreadable). The video may be padded to even sizes; the barcode geometry
/// follows the camera's size.
pub fn frame_indices(path: &Path, source: (u32, u32)) -> Vec<Option<u32>> {
    let probe = crate::probe(path);
    crate::decode_frames(path, "gray", (probe.width * probe.height) as usize)
        .iter()
        .map(|gray| decode_frame_index_strided(gray, probe.width as usize, source.0, source.1))
        .collect()
}

/// Asserts the recording at `path` of `source` (width, height) frames holds exactly the camera
/// frames `first..first+count`, in order.
pub fn assert_contiguous(path: &Path, source: (u32, u32), first: u32, count: u32) {
    let indices = frame_indices(path, source);
    let expected: Vec<Option<u32>> = (first..first + count).map(Some).collect();
    assert_eq!(indices, expected, "{}: frame indices", path.display());
}

/// The number a `dora-test-pattern` camera logged last as `sent N frames`, in a node log or a
/// `dora run` output.
pub fn frames_sent(log: &str) -> u32 {
    let line = log
        .lines()
        .rev()
        .find(|line| line.contains("dora-test-pattern: sent"))
        .unwrap_or_else(|| panic!("no camera count in log: {log}"));
    let after = line.split("dora-test-pattern: sent ").nth(1).unwrap();
    after.split_whitespace().next().unwrap().parse().unwrap()
}

/// One frame the camera sent: its index and when (`SEND_LOG` of `dora-test-pattern`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SentFrame {
    /// 0-based index, also in the barcode.
    pub index: u32,
    /// When it was sent.
    pub at: SystemTime,
}

/// Reads a camera's `SEND_LOG` file (a missing file is an empty log).
pub fn read_send_log(path: &Path) -> Vec<SentFrame> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .filter_map(|line| {
            let (index, nanos) = line.split_once(' ')?;
            let nanos: u64 = nanos.trim().parse().ok()?;
            Some(SentFrame {
                index: index.parse().ok()?,
                at: SystemTime::UNIX_EPOCH + std::time::Duration::from_nanos(nanos),
            })
        })
        .collect()
}

/// The process ids of running `dora-video-recorder` binaries of this workspace
/// (`target/release/`): other checkouts on the machine may be testing at the same time, and a
/// test that kills "the recorder" must not kill theirs.
pub fn recorder_pids() -> Vec<u32> {
    let binary = crate::workspace_root().join("target/release/dora-video-recorder");
    // A binary rebuilt while it runs shows as `PATH (deleted)`.
    let deleted = format!("{} (deleted)", binary.display());
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_link(format!("/proc/{pid}/exe"))
                .is_ok_and(|exe| exe == binary || exe.as_os_str() == deleted.as_str())
        })
        .collect()
}

/// Sends `signal` (`KILL`, `INT`) to `pid`.
pub fn signal(pid: u32, signal: &str) {
    let status = std::process::Command::new("kill").args([&format!("-{signal}"), &pid.to_string()]).status();
    assert!(status.is_ok_and(|s| s.success()), "kill -{signal} {pid}");
}
