//! One simulated power cut, end to end: STORAGE on a [`CrashFs`], the real recorder under the
//! real dora CLI with the test-pattern camera, a SIGKILL at a random instant, and the disk
//! rebuilt as the cut leaves it. [`PowerCutTrial::run`] asserts what the recorder promises and
//! returns the figures; [`summarize`] turns several trials into the lines the README quotes.

use std::{
    fs::File,
    path::Path,
    process::Command,
    time::{Duration, Instant, SystemTime},
};

use crate::{
    Background, CrashFs,
    crashfs::{Op, OpKind},
    csv_column, decode_errors, files_ending, frame_indices, random_between, read_csv, read_jsonl, read_send_log,
    recorder_pids, signal, temp_dir, videos_in, wait_for,
};

/// What a power cut may cost: every frame sent more than this before the cut is kept.
pub const MAX_LOSS: Duration = Duration::from_secs(1);
/// The camera's rate in the dataflows the trials run.
const FPS: u32 = 15;
/// The camera's frame size: small, so the trials stay quick.
const SIZE: (u32, u32) = (320, 240);

/// One power cut of one recording.
pub struct PowerCutTrial {
    flow: String,
    round: usize,
    env: Vec<(String, String)>,
    detections: bool,
}

/// What one trial measured.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Frames the camera sent before the cut.
    pub sent: u32,
    /// Lines of the rebuilt detections log.
    pub detection_lines: u32,
    /// Frames the rebuilt video holds (decoded and read back from their barcodes).
    pub kept: u32,
    /// Rows of the rebuilt frame index.
    pub index_rows: u32,
    /// Seconds of video sent before the cut and lost.
    pub lost_secs: f64,
    /// Seconds from the first file to the cut.
    pub recorded_secs: f64,
    /// Syncs of each kind of file while recording: (kind, count).
    pub syncs: Vec<(&'static str, usize)>,
}

impl PowerCutTrial {
    /// Trial number `round` of dataflow `flow` (relative to the workspace root).
    pub fn new(flow: &str, round: usize) -> Self {
        Self { flow: flow.to_owned(), round, env: Vec::new(), detections: false }
    }

    /// Sets `--env` pairs of the run.
    pub fn with_env(mut self, env: &[(&str, &str)]) -> Self {
        self.env = env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        self
    }

    /// Expects a detector in the flow: its log must survive with every line whole.
    pub fn with_detections(mut self) -> Self {
        self.detections = true;
        self
    }

    /// Records, cuts the power, rebuilds the disk and checks it; panics with what went wrong.
    pub fn run(&self) -> Outcome {
        let dir = temp_dir(&format!("powercut-{}", self.round));
        let mount_point = dir.join("mnt");
        std::fs::create_dir_all(&mount_point).unwrap();
        let fs = CrashFs::mount(&mount_point).unwrap_or_else(|e| panic!("mount the crash file system (root): {e}"));
        // STORAGE exists and is durable before the recorder starts, as a user's folder is.
        let storage = mount_point.join("recordings");
        std::fs::create_dir(&storage).unwrap();
        File::open(&mount_point).unwrap().sync_all().unwrap();
        let send_log = dir.join("sent.log");
        let run = start(&self.flow, &storage, &send_log, &self.env);
        wait_for("the first file", Duration::from_secs(300), || !videos_in(&storage).is_empty());
        let first_file = Instant::now();
        std::thread::sleep(random_between(Duration::from_secs(2), Duration::from_secs(3)));
        let pids = recorder_pids();
        assert!(!pids.is_empty(), "the recorder runs");
        pids.into_iter().for_each(|pid| signal(pid, "KILL"));
        let cut_at = SystemTime::now();
        let image = fs.power_cut();
        let recorded_secs = first_file.elapsed().as_secs_f64();
        let (_, log) = run.wait(Duration::from_secs(5));
        let syncs = count_syncs(&fs.journal());
        drop(fs);
        let rebuilt = dir.join("image");
        image.write_to(&rebuilt).unwrap();
        let sent: Vec<_> = read_send_log(&send_log).into_iter().filter(|f| f.at <= cut_at).collect();
        let must_keep = sent.iter().filter(|f| f.at + MAX_LOSS <= cut_at).map(|f| f.index + 1).max().unwrap_or(0);
        let (kept, index_rows) = check_rebuilt(&rebuilt.join("recordings"), &log);
        let detection_lines = check_detections(&rebuilt.join("recordings"), index_rows, self.detections);
        let lost_secs = f64::from((sent.len() as u32).saturating_sub(kept)) / f64::from(FPS);
        eprintln!(
            "power cut {}: sent {}, kept {kept} frames, index {index_rows} rows, {detection_lines} detection lines, \
             lost {lost_secs:.2} s, syncs {syncs:?}",
            self.round,
            sent.len()
        );
        assert!(kept >= must_keep, "kept {kept} frames, but {must_keep} were sent more than 1 s before the cut");
        Outcome { sent: sent.len() as u32, detection_lines, kept, index_rows, lost_secs, recorded_secs, syncs }
    }
}

/// Checks the one video of a rebuilt STORAGE and its index; returns (frames kept, index rows).
fn check_rebuilt(storage: &Path, log: &str) -> (u32, u32) {
    let videos = videos_in(storage);
    assert_eq!(videos.len(), 1, "one video survives the power cut: {videos:?}\n{log}");
    let video = &videos[0];
    assert_eq!(decode_errors(video), "", "{} decodes to its end without an error", video.display());
    let packets = packet_count(video);
    let indices = frame_indices(video, SIZE);
    assert_eq!(indices.len() as u64, packets, "every packet decodes to a frame");
    let expected: Vec<Option<u32>> = (0..indices.len() as u32).map(Some).collect();
    assert_eq!(indices, expected, "{}: camera frames 0..n in order", video.display());
    let index = video.with_extension("frames.csv");
    let (header, rows) = read_csv(&index);
    let fixed = ["frame", "pts", "time_ns"].map(String::from);
    assert!(header.starts_with(&fixed), "{} keeps its header line: {header:?}", index.display());
    assert!(
        rows.len() as u64 >= packets,
        "the index has a row for every frame the video holds: {} rows, {packets} frames",
        rows.len()
    );
    let numbers = csv_column(&header, &rows, "frame");
    assert!(numbers.iter().enumerate().all(|(n, cell)| *cell == n.to_string()), "frame numbers 0..n: {numbers:?}");
    let camera_indices = csv_column(&header, &rows, "frame_index");
    let in_video: Vec<String> = indices.iter().map(|i| i.unwrap_or_default().to_string()).collect();
    assert_eq!(camera_indices[..in_video.len()], in_video[..], "index rows name the frames the video holds");
    (indices.len() as u32, rows.len() as u32)
}

/// Checks the detections log of the one video of a rebuilt STORAGE: whole JSON lines, each
/// naming a frame the index has; returns how many lines it holds.
fn check_detections(storage: &Path, index_rows: u32, expected: bool) -> u32 {
    let Some(log) = files_ending(storage, ".detections.jsonl").into_iter().next() else {
        assert!(!expected, "the detections log survives the power cut");
        return 0;
    };
    let lines = read_jsonl(&log);
    assert!(!expected || !lines.is_empty(), "{} keeps its lines", log.display());
    for line in &lines {
        let frame = line["frame"].as_u64();
        assert!(frame.is_none_or(|f| f < u64::from(index_rows)), "a detection names a frame the index has: {line}");
    }
    lines.len() as u32
}

/// Packets of the first video stream, as ffprobe counts them.
fn packet_count(path: &Path) -> u64 {
    let output = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-count_packets", "-show_entries", "stream=nb_read_packets"])
        .args(["-of", "csv=p=0"])
        .arg(path)
        .output()
        .unwrap_or_else(|e| panic!("ffprobe runs: {e}"));
    String::from_utf8_lossy(&output.stdout).trim().trim_end_matches(',').parse().unwrap_or(0)
}

/// Syncs per kind of file (by name), in journal order.
fn count_syncs(journal: &[Op]) -> Vec<(&'static str, usize)> {
    let kinds = ["mp4", "frames.csv", "detections.jsonl", "session.json", "folder", "other"];
    let kind_of = |op: &Op| {
        if op.kind == OpKind::SyncFolder {
            return "folder";
        }
        // A manifest is synced under its temp name, `.STEM.session.json.tmp`.
        let name = op.path.to_string_lossy();
        let name = name.strip_suffix(".tmp").unwrap_or(&name);
        kinds.iter().copied().find(|kind| name.ends_with(&format!(".{kind}"))).unwrap_or("other")
    };
    let syncs: Vec<&str> = journal
        .iter()
        .filter(|op| matches!(op.kind, OpKind::Fsync | OpKind::Fdatasync | OpKind::SyncFolder))
        .map(kind_of)
        .collect();
    kinds.iter().map(|kind| (*kind, syncs.iter().filter(|k| *k == kind).count())).filter(|(_, n)| *n > 0).collect()
}

/// Several trials in a few lines: loss (min / median / max), index rows beyond the video's
/// frames, and syncs per second of recording per kind of file.
pub fn summarize(outcomes: &[Outcome]) -> String {
    let mut lost: Vec<f64> = outcomes.iter().map(|o| o.lost_secs).collect();
    lost.sort_by(f64::total_cmp);
    let extra: Vec<i64> = outcomes.iter().map(|o| i64::from(o.index_rows) - i64::from(o.kept)).collect();
    let recorded: f64 = outcomes.iter().map(|o| o.recorded_secs).sum();
    let mut rates = Vec::new();
    for (kind, _) in outcomes.iter().flat_map(|o| o.syncs.iter()) {
        if rates.iter().any(|(k, _)| k == kind) {
            continue;
        }
        let total: usize = outcomes.iter().flat_map(|o| &o.syncs).filter(|(k, _)| k == kind).map(|(_, n)| n).sum();
        rates.push((*kind, total as f64 / recorded.max(f64::EPSILON)));
    }
    let median = lost.get(lost.len() / 2).copied().unwrap_or(f64::NAN);
    let rates: Vec<String> = rates.iter().map(|(kind, rate)| format!("{kind} {rate:.1}/s")).collect();
    format!(
        "{} power cuts at {FPS} fps: lost {:.2} / {median:.2} / {:.2} s (min / median / max); index rows beyond the \
         video's frames {} to {}; syncs per second of recording: {}",
        outcomes.len(),
        lost.first().copied().unwrap_or(f64::NAN),
        lost.last().copied().unwrap_or(f64::NAN),
        extra.iter().min().copied().unwrap_or(0),
        extra.iter().max().copied().unwrap_or(0),
        rates.join(", ")
    )
}

/// `dora run FLOW` with STORAGE, the camera's send log and `extra` settings, stopping itself after 120 s at most.
fn start(flow: &str, storage: &Path, send_log: &Path, extra: &[(String, String)]) -> Background {
    let mut env: Vec<(String, String)> = vec![
        ("STORAGE".into(), storage.display().to_string()),
        ("SEND_LOG".into(), send_log.display().to_string()),
        ("WIDTH".into(), SIZE.0.to_string()),
        ("HEIGHT".into(), SIZE.1.to_string()),
    ];
    env.extend(extra.iter().cloned());
    Background::dora_run(flow, &env)
}
