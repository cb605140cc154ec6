//! Shared test kit: `ffprobe`/`ffmpeg` checks of recorded files, temp folders, and the real
//! `dora` CLI with guards that never leave a daemon running.

#![allow(clippy::unwrap_used, clippy::missing_panics_doc)]

use std::{
    fs::File,
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Output},
    sync::{
        Mutex, MutexGuard,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use serde_json::Value;

pub mod boxes;
pub mod browser;
pub mod cluster;
pub use boxes::{decode_errors, format_tag, top_level_boxes};
pub use browser::{Playback, play_in_chromium};
pub use cluster::Cluster;
pub mod crashfs;
pub use crashfs::CrashFs;
pub mod frames;
pub mod gstreamer;
pub use frames::{SentFrame, assert_contiguous, frame_indices, frames_sent, read_send_log, recorder_pids, signal};
pub mod logs;
pub mod powercut;
pub use logs::{
    csv_column, files_ending, frame_times, newest_node_log, node_log, read_csv, read_json, read_jsonl, started_dataflow,
};
pub mod tmpfs;
pub use tmpfs::Tmpfs;

/// What ffprobe says about a file's first video stream.
#[derive(Debug, Clone)]
pub struct Probe {
    /// Container, as ffprobe names it (`mov,mp4,m4a,3gp,3g2,mj2`, `matroska,webm`, `avi`).
    pub format_name: String,
    /// Codec (`h264`, `hevc`).
    pub codec: String,
    /// Coded width.
    pub width: u32,
    /// Coded height.
    pub height: u32,
    /// Frames decoded (`-count_frames`).
    pub frames: u64,
    /// Container duration in seconds.
    pub duration: f64,
    /// Pixel format.
    pub pix_fmt: String,
}

/// Runs ffprobe on `path`, decoding every frame to count them. Panics if ffprobe cannot read it.
pub fn probe(path: &Path) -> Probe {
    try_probe(path).unwrap_or_else(|error| panic!("{error}"))
}

/// [`probe`], or why ffprobe could not read `path` (for callers that report instead of panicking,
/// such as the encode benchmark).
pub fn try_probe(path: &Path) -> Result<Probe, String> {
    let stdout = try_run_on_file(
        Command::new("ffprobe")
            .args(["-v", "error", "-select_streams", "v:0", "-count_frames", "-show_entries"])
            .arg("stream=codec_name,width,height,nb_read_frames,pix_fmt:format=format_name,duration")
            .args(["-of", "json"])
            .arg(path),
        path,
    )?;
    let json: Value =
        serde_json::from_slice(&stdout).map_err(|e| format!("ffprobe's JSON for {}: {e}", path.display()))?;
    let stream = &json["streams"][0];
    let number = |v: &Value| v.as_str().and_then(|s| s.parse::<f64>().ok()).or(v.as_f64()).unwrap_or(f64::NAN);
    Ok(Probe {
        format_name: json["format"]["format_name"].as_str().unwrap_or_default().to_owned(),
        codec: stream["codec_name"].as_str().unwrap_or_default().to_owned(),
        width: stream["width"].as_u64().unwrap_or(0) as u32,
        height: stream["height"].as_u64().unwrap_or(0) as u32,
        frames: number(&stream["nb_read_frames"]) as u64,
        duration: number(&json["format"]["duration"]),
        pix_fmt: stream["pix_fmt"].as_str().unwrap_or_default().to_owned(),
    })
}

/// Decodes every frame of `path` to raw pixels in `pix_fmt` (`gray`, `rgb24`), one Vec per frame:
/// each decoded frame once (`-fps_mode passthrough`: FFmpeg's constant-rate default would repeat
/// a frame to fill a gap in the timestamps).
pub fn decode_frames(path: &Path, pix_fmt: &str, bytes_per_frame: usize) -> Vec<Vec<u8>> {
    // `passthrough`: one output frame per decoded frame. Without it the CLI resamples to the rate
    // libavformat guesses from the timestamps, and frames sent with jitter (a busy machine) made
    // it guess 30 fps for a 15 fps file and write every frame twice.
    let stdout = run_on_file(
        Command::new("ffmpeg").args(["-v", "error", "-i"]).arg(path).args([
            "-fps_mode",
            "passthrough",
            "-f",
            "rawvideo",
            "-pix_fmt",
            pix_fmt,
            "-",
        ]),
        path,
    );
    assert_eq!(stdout.len() % bytes_per_frame, 0, "decoded size is a whole number of frames");
    stdout.chunks(bytes_per_frame).map(<[u8]>::to_vec).collect()
}

/// Runs an FFmpeg tool on `path` and returns its stdout; panics with its stderr if it fails.
fn run_on_file(command: &mut Command, path: &Path) -> Vec<u8> {
    try_run_on_file(command, path).unwrap_or_else(|error| panic!("{error}"))
}

/// Runs an FFmpeg tool on `path` and returns its stdout, or why it failed (with its stderr).
fn try_run_on_file(command: &mut Command, path: &Path) -> Result<Vec<u8>, String> {
    let program = command.get_program().to_string_lossy().into_owned();
    let output = command.output().map_err(|e| format!("{program} runs (scripts/setup.sh installs it): {e}"))?;
    if !output.status.success() {
        return Err(format!("{program} cannot read {}: {}", path.display(), String::from_utf8_lossy(&output.stderr)));
    }
    Ok(output.stdout)
}

/// A fresh, empty folder for one test.
pub fn temp_dir(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("dvr-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The files directly in `dir`, sorted by name.
pub fn files_in(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut files: Vec<PathBuf> = entries.map(|e| e.unwrap().path()).filter(|p| p.is_file()).collect();
    files.sort();
    files
}

/// Extensions of the videos the recorder writes (beside them: index, detections, manifests).
pub const VIDEO_EXTENSIONS: [&str; 3] = ["mp4", "mkv", "avi"];

/// The video files directly in `dir`, sorted by name.
pub fn videos_in(dir: &Path) -> Vec<PathBuf> {
    files_in(dir)
        .into_iter()
        .filter(|path| path.extension().is_some_and(|ext| VIDEO_EXTENSIONS.iter().any(|v| ext == *v)))
        .collect()
}

/// A file's name as a String.
pub fn file_name(path: &Path) -> String {
    path.file_name().unwrap().to_string_lossy().into_owned()
}

/// The workspace root (dataflows/, target/).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_owned()
}

/// The `dora` CLI: `$DORA`, else the project's `.venv/bin/dora` (scripts/setup.sh), else `PATH`.
pub fn dora_cli() -> PathBuf {
    if let Some(path) = std::env::var_os("DORA") {
        return path.into();
    }
    let local = workspace_root().join(".venv/bin/dora");
    if local.exists() { local } else { PathBuf::from("dora") }
}

/// dora tests share ports and the `out/` folders: one at a time.
pub fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A `dora` command in the workspace root with the environment a user's shell has.
pub fn dora_command(args: &[&str]) -> Command {
    let mut command = Command::new(dora_cli());
    user_environment(&mut command).args(args).current_dir(workspace_root());
    command
}

/// Gives `command` the environment a user's shell has: without the CARGO_* variables and the
/// LD_LIBRARY_PATH that `cargo test` and `cargo bench` set for their package. Build scripts
/// (libclang lookup) track them, so a dataflow's `cargo build` steps would otherwise rebuild dora's
/// whole dependency tree.
pub fn user_environment(command: &mut Command) -> &mut Command {
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        if (key.starts_with("CARGO_") && key != "CARGO_HOME" && key != "CARGO_TARGET_DIR") || key == "LD_LIBRARY_PATH" {
            command.env_remove(key.as_ref());
        }
    }
    command
}

/// A log file for one dora command: its output goes to a file, not a pipe nobody drains while
/// the test waits (a full pipe would stall dora).
fn log_file() -> (File, PathBuf) {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let path = std::env::temp_dir().join(format!("dvr-dora-{}-{n}.log", std::process::id()));
    (File::create(&path).unwrap(), path)
}

/// A dora command running in the background, its output collected in a file.
pub struct Background {
    child: Child,
    log: PathBuf,
}

impl Background {
    /// Starts `dora ARGS`.
    pub fn start(args: &[&str]) -> Self {
        Self::spawn(&mut dora_command(args))
    }

    /// Starts `command` (a [`dora_command`], perhaps with more environment).
    pub fn spawn(command: &mut Command) -> Self {
        let (log_out, log) = log_file();
        let child = command
            .stdout(log_out.try_clone().unwrap())
            .stderr(log_out)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e} (run scripts/setup.sh)", dora_cli().display()));
        Self { child, log }
    }

    /// `dora run FLOW` with `--env KEY=VALUE` pairs, stopping itself after 120 s at most.
    pub fn dora_run<K: std::fmt::Display, V: std::fmt::Display>(flow: &str, env: &[(K, V)]) -> Self {
        let pairs: Vec<String> = env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let mut args = vec!["run", flow, "--stop-after", "120s"];
        for pair in &pairs {
            args.extend(["--env", pair.as_str()]);
        }
        Self::start(&args)
    }

    /// The `dora` process id (to signal it as a user's Ctrl-C would).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits up to `timeout` for it to exit (killing it then) and returns its status and output.
    pub fn wait(mut self, timeout: Duration) -> (Option<ExitStatus>, String) {
        let started = Instant::now();
        let mut status = None;
        while started.elapsed() <= timeout {
            if let Some(exit) = self.child.try_wait().unwrap() {
                status = Some(exit);
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        if status.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        let output = std::fs::read_to_string(&self.log).unwrap_or_default();
        let _ = std::fs::remove_file(&self.log);
        (status, output)
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        // A failed test must not leave the dataflow running.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `dora ARGS`, killing it after `timeout`; panics if it had to be killed.
pub fn dora(args: &[&str], timeout: Duration) -> Output {
    run_to_end(&mut dora_command(args), timeout)
}

/// Runs `command` (a [`dora_command`]) with its output collected, killing it after `timeout`;
/// panics if it had to be killed.
pub fn run_to_end(command: &mut Command, timeout: Duration) -> Output {
    let args: Vec<String> = command.get_args().map(|arg| arg.to_string_lossy().into_owned()).collect();
    let (status, output) = Background::spawn(command).wait(timeout);
    let status = status.unwrap_or_else(|| panic!("dora {args:?} timed out after {timeout:?}: {output}"));
    Output { status, stdout: output.into_bytes(), stderr: Vec::new() }
}

/// stdout and stderr of a command, for assertion messages.
pub fn text(output: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

/// `dora run DATAFLOW --stop-after SECS --env K=V ...`, asserting it succeeded.
pub fn dora_run(dataflow: &str, stop_after_secs: u64, env: &[(&str, &str)]) -> Output {
    let stop_after = format!("{stop_after_secs}s");
    let mut args = vec!["run", dataflow, "--stop-after", stop_after.as_str()];
    let pairs: Vec<String> = env.iter().map(|(k, v)| format!("{k}={v}")).collect();
    for pair in &pairs {
        args.extend(["--env", pair.as_str()]);
    }
    // Generous: the dataflow's `build:` steps run first (a no-op after `cargo build --workspace`).
    let output = dora(&args, Duration::from_secs(stop_after_secs + 900));
    assert!(output.status.success(), "dora run {dataflow} failed: {}", text(&output));
    output
}

/// A running `dora up` coordinator and daemon, torn down (`dora down`) when dropped, even
/// when the test fails.
pub struct DoraDaemon;

impl DoraDaemon {
    /// Starts the coordinator and a daemon.
    pub fn up() -> Self {
        let output = dora(&["up"], Duration::from_secs(60));
        assert!(output.status.success(), "dora up failed: {}", text(&output));
        Self
    }
}

impl Drop for DoraDaemon {
    fn drop(&mut self) {
        let _ = dora(&["down"], Duration::from_secs(60));
    }
}

/// Polls `done` every 50 ms; panics naming `what` after `timeout`.
pub fn wait_for(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A pseudo-random duration in `[low, low + span)`, different in every run (kill instants).
pub fn random_between(low: Duration, span: Duration) -> Duration {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    low + span.mul_f64(f64::from(nanos % 1000) / 1000.0)
}

/// The recorder's count of frames that came before any session (its `recorder done` line), 0 if
/// it logged none.
pub fn unbound_frames(log: &str) -> usize {
    log.lines()
        .rev()
        .find_map(|line| line.split("frames_unbound: ").nth(1))
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|count| count.parse().ok())
        .unwrap_or(0)
}
