//! Encode benchmark: this crate's encode pipeline in-process and the whole recording dataflow under
//! `dora run`, next to the `ffmpeg` CLI (from bgr24 at identical settings, and from already-converted
//! yuv420p: the x264-only limit) and the reference recorder (roomkit's PyAV recorder), printed as
//! one markdown table per frame size with ratios; then how many test-pattern cameras one recorder
//! sustains, and how long a stopped recorder takes to finalize its file. It prints figures and
//! asserts nothing.
//!
//! Run: `cargo bench -p dora-video-recorder --bench encode` (or `scripts/bench.sh`, which also
//! builds the test-pattern camera and sets up the reference recorder). Environment:
//! - `BENCH_QUICK=1`: a smoke run of about a minute (one small case, short dataflow sections)
//!   instead of the full 640x480 and 1920x1080 cases (about 15 minutes on 2 cores);
//! - `BENCH_RUNS=n`: rounds per case (default 3); each row is the median round by wall time;
//! - `ROOMKIT_PYTHON=path/to/python`: a Python with PyAV and roomkit (see `scripts/roomkit_pyav.py`);
//!   without it the reference recorder is skipped;
//! - `ROOMKIT_SCRIPT=path`: the reference runner, default `scripts/roomkit_pyav.py` in this workspace;
//! - `ENCODER_THREADS=n`: the recorder's setting of that name for our in-process rows and the CLI's
//!   identical x264 settings (default one per core, as in the node);
//! - `DORA=path`: the dora CLI, default `.venv/bin/dora` in this workspace (scripts/setup.sh), else
//!   `dora` on `PATH`. The dataflow rows need it and `target/release/dora-test-pattern`
//!   (`cargo build --release -p dora-recorder-test-nodes`); without either they are skipped.
//!
//! Method, in-process rows. Every contender runs as a child process of this binary, one at a time,
//! reading the same raw file from the page cache and writing an MP4 into a temp folder (on the
//! disk, not a tmpfs, so `fdatasync` costs what it costs). Contenders take turns within each round,
//! so a slow patch of the machine hits all of them; the table shows the median round and the range
//! of wall times. Our pipeline runs in a re-exec of this binary (`ENCODE_BENCH_CHILD=1`), so that
//! its memory and CPU are its own. For each child the parent takes the wall time from spawn to exit
//! and reads the child's CPU time (user + system) and peak RSS (`ru_maxrss`) from `wait4`. Process
//! start-up counts for everyone (Python's imports included; roomkit's own in-loop time is printed
//! below its table). Linux carries the RSS high-water mark of the address space a child replaces at
//! `exec` (ours, via fork/posix_spawn) into the child's `ru_maxrss`, so each figure is max(child's
//! own peak, our RSS at the spawn): the parent keeps no frames in memory and prints its own peak as
//! that floor. The x264-only row feeds the CLI the same frames converted to yuv420p once per case,
//! outside the timing. Each output is decoded with `ffprobe -count_frames`; a frame count different
//! from the input's prints MISMATCH. The machine's busy CPU time (`/proc/stat`) during each run
//! minus the child's own is printed per case as the background load: figures taken while it is far
//! from zero were disturbed by other work.
//!
//! Method, whole dataflow. A dataflow generated into a temp folder (absolute paths, no `build:`
//! steps): `dora-test-pattern` (bgr8, `MAX_FRAMES` = the case's frame count, `LOOP_FRAMES` =
//! [`CAMERA_LOOP_FRAMES`]: drawn once and sent in a loop, so that the camera costs a copy per frame
//! instead of 32 ms of drawing per 1080p frame, and the row measures the recorder) into
//! `dora-video-recorder` (`PRESET`, `FPS` = the case's rate, `TIMESTAMPS=frame` so the file has the
//! same duration and fragments as the in-process row, `FSYNC=true`), run with `dora run`. The wall
//! time runs from spawning `dora run` to its exit: the camera exits after its last frame, the
//! recorder finalizes and the dataflow ends. Each node runs under a wrapper, this binary again
//! (`ENCODE_BENCH_WRAP=report-file` in the node's `env`, the real binary as its argument), which
//! spawns the node, takes its CPU time and peak RSS from `wait4` exactly as for the in-process
//! rows, and writes them to the report file; the wrapper passes the exit code on, and the node
//! gets SIGTERM if the wrapper dies (`PR_SET_PDEATHSIG`). The row's CPU and RSS are the recorder's;
//! the camera's and `dora run`'s own CPU (its `wait4` figure minus its nodes') are printed below the
//! table. Lost frames: the camera's `SEND_LOG` (index and time of every frame sent) against the
//! `frame_index` column of the recorder's frame index (`NAME.frames.csv`), the frames `ffprobe`
//! decodes, and the recorder's log (`dropped=` of its "recording finished" line). They are told
//! apart: "last missing" are the camera's final frames, sent after the last frame the file holds
//! (seen at any load when the camera exits or the dataflow stops, and not counted by the recorder);
//! "dropped" are all other missing frames (the encoder falling behind). Only drops count as the
//! recorder not keeping up.
//!
//! Pacing. dora 1.1 has no sender-side backpressure: `queue_policy: backpressure` (dora-message
//! 1.1.0, `QueuePolicy`) only lets the receiving node's queue grow to 10x `queue_size` (at least
//! 100) before it drops the oldest. The recorder by default takes every frame off dora's queue at
//! once into its own bounded encoder queue (`QUEUE_FRAMES`/`QUEUE_BYTES`), dropping the oldest
//! beyond it; with `OVERFLOW=block` it waits instead, so frames pile up in dora's queue up to that
//! cap (100 frames: 600 MB at 1080p) and are dropped there. Either way nothing slows the camera
//! down to the recorder's speed, so the camera is paced by its timer instead: it starts
//! unpaced (`dora/timer/millis/1`: as fast as the camera draws frames); whenever a run drops
//! frames (in any round), the timer is set to 90% of the rate that reached the file (and at least
//! 15% slower than before), the samples taken at faster paces are discarded, and the row runs
//! again until it has a sample without drops per round (after 4 slowdowns, runs with drops are
//! kept and show them). The pace and its history are printed below the table. The camera costs CPU
//! to draw its test pattern on the same cores (its CPU per frame is printed too), and its frames
//! are not the `testsrc2` frames of the other rows, so bytes differ. Besides the wall time from
//! spawning `dora run`, the note gives the rate from the first frame sent to the finished file
//! (without dora's start-up).
//!
//! Further sections, through `dora run` with real timers (recorder defaults: veryfast, FSYNC):
//! (a) how many 640x480@15 and 1280x720@30 test-pattern cameras one recorder sustains: N camera
//! nodes each sending a fixed number of frames (8 s of frames), N = 1, 2, ... up to 6, stopping at
//! the first N where frames are dropped or the cameras could not keep their rate (then the offered
//! load is no longer N cameras at that rate: the machine is saturated); (b) the cost of the per-fragment
//! `fdatasync` (the FSYNC=false row, as a ratio below each table); (c) the time from a stop to a
//! finalized file: `dora run --stop-after`, from the recorder's "stop requested" log line to its
//! "recording finished" line (both RFC 3339 timestamps), and from the camera's last frame sent
//! before that stop (the camera goes on sending the ticks dora still delivers; those frames are
//! counted apart, since a stopped recording rightly leaves them out).

use std::{
    fs::{self, File},
    io::Read,
    os::unix::process::CommandExt,
    path::{Path, PathBuf},
    process::{Command, ExitCode, Stdio},
    sync::mpsc,
    time::{Duration, Instant},
};

use arrow::buffer::Buffer;
use dora_video_recorder::{
    encode::{
        Container, EncoderKind, EncoderSettings, MP4_FRAGMENT_MICROS, Quality, RateControl, VideoWriter, init_ffmpeg,
    },
    frame::{Frame, FrameFormat, PixelEncoding},
    timing::{FrameRate, PtsClock, TimestampMode},
};

/// Set in the re-executed child that runs our pipeline alone.
const CHILD_ENV: &str = "ENCODE_BENCH_CHILD";
/// Set (to a report file) in a dataflow node's `env`: this binary then wraps the node's real binary.
const WRAP_ENV: &str = "ENCODE_BENCH_WRAP";
/// `1` runs only the small case.
const QUICK_ENV: &str = "BENCH_QUICK";
/// Rounds per case.
const RUNS_ENV: &str = "BENCH_RUNS";
const DEFAULT_RUNS: usize = 3;
/// Python interpreter with PyAV and roomkit installed.
const ROOMKIT_PYTHON_ENV: &str = "ROOMKIT_PYTHON";
/// Overrides the path of the reference runner script.
const ROOMKIT_SCRIPT_ENV: &str = "ROOMKIT_SCRIPT";
/// Overrides the dora CLI.
const DORA_ENV: &str = "DORA";
/// The preset our node defaults to.
const FAST_PRESET: &str = "veryfast";
/// libx264's own default, which the reference recorder runs at.
const DEFAULT_X264_PRESET: &str = "medium";
/// Child-process switch: `0` runs our writer without syncing fragments to disk.
const FSYNC_ENV: &str = "ENCODE_BENCH_FSYNC";
/// Same quality for everyone.
const CRF: u8 = 23;
/// Keyframe interval in seconds.
const GOP_SECS: u32 = 2;
/// The muxer flags our MP4 writer uses, for the CLI run.
const FRAGMENTED_MP4_FLAGS: &str = "+frag_keyframe+empty_moov+default_base_moof";

/// One input: raw bgr24 frames of a size at a rate.
#[derive(Debug, Clone, Copy)]
struct Case {
    width: u32,
    height: u32,
    fps: u32,
    frames: u32,
}

impl Case {
    fn label(self) -> String {
        format!("{}x{}, {} frames @ {} fps", self.width, self.height, self.frames, self.fps)
    }

    fn frame_bytes(self) -> usize {
        self.width as usize * self.height as usize * 3
    }

    fn gop_frames(self) -> u32 {
        self.fps * GOP_SECS
    }
}

const FULL_CASES: [Case; 2] =
    [Case { width: 640, height: 480, fps: 15, frames: 450 }, Case { width: 1920, height: 1080, fps: 30, frames: 300 }];
const QUICK_CASES: [Case; 1] = [Case { width: 640, height: 480, fps: 15, frames: 90 }];

/// Who encodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Contender {
    /// `VideoWriter` from this crate, in a re-exec of this binary.
    Ours,
    /// The test-pattern camera into the recorder binary under `dora run`.
    Dataflow,
    /// The `ffmpeg` command-line tool from the same bgr24 frames.
    FfmpegCli,
    /// The `ffmpeg` command-line tool from the frames already converted to yuv420p: x264 alone.
    FfmpegYuv,
    /// Ours in-process with `FSYNC=false`: the difference is what syncing each fragment costs.
    OursWithoutFsync,
    /// roomkit's PyAVVideoRecorder through `roomkit_pyav.py`.
    Roomkit,
}

impl Contender {
    fn name(self) -> &'static str {
        match self {
            Self::Ours => "ours, in-process",
            Self::Dataflow => "ours, whole dataflow",
            Self::FfmpegCli => "ffmpeg CLI, bgr24 in",
            Self::FfmpegYuv => "ffmpeg CLI, yuv420p in (x264 only)",
            Self::OursWithoutFsync => "ours, in-process, FSYNC=false",
            Self::Roomkit => "roomkit PyAV",
        }
    }
}

/// Resources one child process used, as the parent saw them.
#[derive(Debug, Clone, Copy)]
struct Usage {
    wall_secs: f64,
    cpu_secs: f64,
    peak_rss_mb: f64,
    /// CPU time the rest of the machine used meanwhile.
    background_cpu_secs: f64,
}

/// One finished run.
#[derive(Debug, Clone)]
struct Run {
    contender: Contender,
    preset: &'static str,
    usage: Usage,
    /// Fastest and slowest wall time over the rounds.
    wall_range_secs: (f64, f64),
    bytes: u64,
    /// Codec and decoded frame count from ffprobe.
    probe: Probe,
    /// Frames sent but not in the file (dataflow rows only).
    lost: Option<Losses>,
    /// Extra text printed below the table.
    note: Option<String>,
}

impl Run {
    /// Frames in the file per wall second.
    fn fps(&self) -> f64 {
        self.probe.frames as f64 / self.usage.wall_secs
    }

    /// CPU milliseconds per frame in the file.
    fn cpu_ms_per_frame(&self) -> f64 {
        1000.0 * self.usage.cpu_secs / self.probe.frames.max(1) as f64
    }
}

#[derive(Debug, Clone, Default)]
struct Probe {
    codec: String,
    frames: u64,
}

fn main() -> ExitCode {
    if let Some(report) = std::env::var_os(WRAP_ENV) {
        return wrapper_main(Path::new(&report));
    }
    if std::env::var_os(CHILD_ENV).is_some() {
        return child_main();
    }
    let quick = std::env::var(QUICK_ENV).is_ok_and(|v| v == "1");
    let cases: &[Case] = if quick { &QUICK_CASES } else { &FULL_CASES };
    let work = std::env::temp_dir().join(format!("encode-bench-{}", std::process::id()));
    fs::create_dir_all(&work).expect("create the bench temp folder");
    let rounds = std::env::var(RUNS_ENV).ok().and_then(|v| v.parse().ok()).filter(|n| *n > 0).unwrap_or(DEFAULT_RUNS);
    let roomkit = roomkit_setup();
    let dora = dora_setup();
    println!(
        "encode bench: libx264, crf {CRF}, GOP {GOP_SECS} s, yuv420p, MP4; {} cores; median of {rounds} rounds",
        cores()
    );
    if let Err(reason) = &dora {
        println!("whole-dataflow rows and sections: skipped ({reason})");
    }
    let dora = dora.ok();
    for &case in cases {
        let context = CaseContext::prepare(case, &work, roomkit.as_ref(), dora.as_ref());
        bench_case(&context, rounds);
        context.clean_up();
    }
    if let Some(dora) = &dora {
        bench_camera_capacity(dora, &work, quick);
        bench_stop_latency(dora, &work, cases, if quick { 1 } else { rounds }, quick);
    }
    println!("\nparent peak RSS {:.1} MB (a floor for every in-process RSS figure above)", own_peak_rss_mb());
    fs::remove_dir_all(&work).expect("remove the bench temp folder");
    ExitCode::SUCCESS
}

/// One case's inputs and the contenders' prerequisites.
struct CaseContext<'a> {
    case: Case,
    /// The raw bgr24 frames.
    raw: PathBuf,
    /// The same frames in yuv420p.
    yuv: PathBuf,
    work: &'a Path,
    roomkit: Option<&'a Roomkit>,
    dora: Option<&'a Dora>,
}

impl<'a> CaseContext<'a> {
    /// Generates the case's frames, in bgr24 and (outside any timing) in yuv420p.
    fn prepare(case: Case, work: &'a Path, roomkit: Option<&'a Roomkit>, dora: Option<&'a Dora>) -> Self {
        let raw = work.join(format!("{}x{}.bgr", case.width, case.height));
        let yuv = work.join(format!("{}x{}.yuv", case.width, case.height));
        generate_frames(case, &raw);
        convert_to_yuv420p(case, &raw, &yuv);
        Self { case, raw, yuv, work, roomkit, dora }
    }

    fn clean_up(&self) {
        fs::remove_file(&self.raw).expect("remove the raw frames");
        fs::remove_file(&self.yuv).expect("remove the yuv420p frames");
    }
}

/// One contender at one preset, with what its rounds gave so far.
#[derive(Debug, Clone)]
struct Job {
    contender: Contender,
    preset: &'static str,
    samples: Vec<Run>,
    /// Dataflow rows: the camera's timer now, how often it was slowed down, and why.
    pace: Pace,
    slowdowns: u32,
    pace_log: Vec<String>,
    /// Dataflow rows: runs so far, and those that missed the camera's last frame(s).
    runs: u32,
    tail_runs: u32,
}

impl Job {
    fn new(contender: Contender, preset: &'static str) -> Self {
        let pace = Pace::Unpaced;
        Self { contender, preset, samples: Vec::new(), pace, slowdowns: 0, pace_log: Vec::new(), runs: 0, tail_runs: 0 }
    }
}

/// Runs every contender on the case's frames `rounds` times, taking turns, and prints the table.
fn bench_case(context: &CaseContext, rounds: usize) {
    println!("\n## {}", context.case.label());
    if context.roomkit.is_none() {
        println!(
            "roomkit: skipped (set {ROOMKIT_PYTHON_ENV} to a Python with PyAV and roomkit; scripts/bench.sh does)"
        );
    }
    let mut jobs = jobs(context.roomkit.is_some(), context.dora.is_some());
    for round in 0..rounds {
        for job in &mut jobs {
            match (job.contender, context.dora) {
                (Contender::Dataflow, Some(dora)) => dataflow_round(job, dora, context, round),
                _ => job.samples.extend(run_job(job, context)),
            }
        }
    }
    let notes: Vec<String> = jobs.iter().filter_map(pace_note).collect();
    let all_runs: Vec<Run> = jobs.iter().flat_map(|job| job.samples.iter().cloned()).collect();
    let runs: Vec<Run> = jobs.into_iter().filter_map(|job| median_run(job.samples)).collect();
    print_table(&runs);
    print_comparisons(&runs);
    for note in runs.iter().filter_map(|run| run.note.as_ref()).chain(&notes) {
        println!("- {note}");
    }
    report_mismatches(context.case, &all_runs);
    report_background(&all_runs);
}

/// Per preset: ours in-process, the whole dataflow, the CLI from bgr24 and from yuv420p; then ours
/// without fsync, and the reference recorder (which runs at libx264's default).
fn jobs(with_roomkit: bool, with_dora: bool) -> Vec<Job> {
    let mut jobs = Vec::new();
    for preset in [FAST_PRESET, DEFAULT_X264_PRESET] {
        jobs.push(Job::new(Contender::Ours, preset));
        if with_dora {
            jobs.push(Job::new(Contender::Dataflow, preset));
        }
        jobs.push(Job::new(Contender::FfmpegCli, preset));
        jobs.push(Job::new(Contender::FfmpegYuv, preset));
    }
    jobs.push(Job::new(Contender::OursWithoutFsync, FAST_PRESET));
    if with_roomkit {
        jobs.push(Job::new(Contender::Roomkit, DEFAULT_X264_PRESET));
    }
    jobs
}

/// One round of an in-process contender.
fn run_job(job: &Job, context: &CaseContext) -> Option<Run> {
    let (case, work, preset) = (context.case, context.work, job.preset);
    match (job.contender, context.roomkit) {
        (Contender::Ours | Contender::OursWithoutFsync, _) => run_ours(job.contender, case, &context.raw, work, preset),
        (Contender::FfmpegCli, _) => run_ffmpeg_cli(Contender::FfmpegCli, case, &context.raw, work, preset),
        (Contender::FfmpegYuv, _) => run_ffmpeg_cli(Contender::FfmpegYuv, case, &context.yuv, work, preset),
        (Contender::Roomkit, Some(roomkit)) => run_roomkit(case, &context.raw, work, roomkit),
        (Contender::Roomkit, None) | (Contender::Dataflow, _) => None,
    }
}

/// The round with the median wall time, carrying the range of all rounds.
fn median_run(mut samples: Vec<Run>) -> Option<Run> {
    samples.sort_by(|a, b| a.usage.wall_secs.total_cmp(&b.usage.wall_secs));
    let range = (samples.first()?.usage.wall_secs, samples.last()?.usage.wall_secs);
    let mut median = samples.swap_remove(samples.len() / 2);
    median.wall_range_secs = range;
    Some(median)
}

fn generate_frames(case: Case, raw: &Path) {
    let status = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i"])
        .arg(format!("testsrc2=size={}x{}:rate={}", case.width, case.height, case.fps))
        .args(["-frames:v", &case.frames.to_string(), "-pix_fmt", "bgr24", "-f", "rawvideo"])
        .arg(raw)
        .status()
        .expect("run ffmpeg (install it: apt-get install ffmpeg)");
    assert!(status.success(), "ffmpeg could not generate the test frames");
    let expected = case.frame_bytes() as u64 * u64::from(case.frames);
    let actual = fs::metadata(raw).expect("raw frames written").len();
    assert_eq!(actual, expected, "raw frame file has the wrong size");
}

/// The x264-only input: the same frames converted once with swscale's defaults, exactly as the
/// bgr24 CLI run converts them, so the two CLI rows encode the same pictures.
fn convert_to_yuv420p(case: Case, raw: &Path, yuv: &Path) {
    let status = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y"])
        .args(["-f", "rawvideo", "-pix_fmt", "bgr24", "-s", &format!("{}x{}", case.width, case.height), "-i"])
        .arg(raw)
        .args(["-pix_fmt", "yuv420p", "-f", "rawvideo"])
        .arg(yuv)
        .status()
        .expect("run ffmpeg (install it: apt-get install ffmpeg)");
    assert!(status.success(), "ffmpeg could not convert the test frames to yuv420p");
    let expected = case.frame_bytes() as u64 / 2 * u64::from(case.frames);
    let actual = fs::metadata(yuv).expect("yuv420p frames written").len();
    assert_eq!(actual, expected, "yuv420p frame file has the wrong size");
}

// ---------------------------------------------------------------------------------------------
// In-process contenders

fn run_ours(contender: Contender, case: Case, raw: &Path, work: &Path, preset: &'static str) -> Option<Run> {
    let out = work.join(format!("ours-{preset}.mp4"));
    let exe = std::env::current_exe().expect("path of this bench binary");
    let mut command = Command::new(exe);
    let fsync = if contender == Contender::OursWithoutFsync { "0" } else { "1" };
    command
        .env(CHILD_ENV, "1")
        .env(FSYNC_ENV, fsync)
        .arg(raw)
        .args([case.width, case.height, case.fps, case.frames].map(|n| n.to_string()))
        .arg(preset)
        .arg(&out);
    let (usage, _) = measure(contender, "this bench binary", command)?;
    Some(finished_run(contender, preset, usage, &out, None))
}

/// The CLI at our settings, from `input` in bgr24 ([`Contender::FfmpegCli`]) or yuv420p
/// ([`Contender::FfmpegYuv`]).
fn run_ffmpeg_cli(contender: Contender, case: Case, input: &Path, work: &Path, preset: &'static str) -> Option<Run> {
    let pix_fmt = if contender == Contender::FfmpegYuv { "yuv420p" } else { "bgr24" };
    let out = work.join(format!("ffmpeg-{pix_fmt}-{preset}.mp4"));
    let mut command = Command::new("ffmpeg");
    command
        .args(["-hide_banner", "-loglevel", "error", "-nostats", "-y"])
        .args(["-f", "rawvideo", "-pix_fmt", pix_fmt, "-s", &format!("{}x{}", case.width, case.height)])
        .args(["-r", &case.fps.to_string(), "-i"])
        .arg(input)
        .args(["-c:v", "libx264", "-preset", preset, "-crf", &CRF.to_string()])
        .args(["-g", &case.gop_frames().to_string(), "-bf", "0", "-pix_fmt", "yuv420p"])
        .args(["-x264-params", &x264_params(case, preset)])
        .args(["-movflags", FRAGMENTED_MP4_FLAGS, "-frag_duration", &MP4_FRAGMENT_MICROS.to_string()])
        .arg(&out);
    let (usage, _) = measure(contender, "ffmpeg", command)?;
    Some(finished_run(contender, preset, usage, &out, None))
}

/// The `x264-params` the recorder itself passes (look-ahead, `sync-lookahead=0`, one thread per
/// core), taken from its own option list, so the CLI runs x264 at identical settings.
fn x264_params(case: Case, preset: &str) -> String {
    let quality = bench_quality(case, preset);
    let options = EncoderKind::Libx264.options(&quality);
    options.into_iter().find(|(key, _)| *key == "x264-params").map(|(_, value)| value).unwrap_or_default()
}

/// The recorder's default quality for `case` at `preset`, CRF [`CRF`].
fn bench_quality(case: Case, preset: &str) -> Quality {
    let mut quality = Quality::new(preset, RateControl::Crf(CRF), case.gop_frames(), f64::from(case.fps));
    if let Some(threads) = std::env::var("ENCODER_THREADS").ok().and_then(|n| n.parse().ok()) {
        quality.threads = threads;
    }
    quality
}

/// Where the reference recorder comes from.
#[derive(Debug, Clone)]
struct Roomkit {
    python: PathBuf,
    script: PathBuf,
}

fn roomkit_setup() -> Option<Roomkit> {
    let python = from_workspace_root(PathBuf::from(std::env::var_os(ROOMKIT_PYTHON_ENV)?));
    let script = std::env::var_os(ROOMKIT_SCRIPT_ENV)
        .map_or_else(|| workspace_root().join("scripts/roomkit_pyav.py"), |path| from_workspace_root(path.into()));
    Some(Roomkit { python, script })
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `cargo bench` runs this binary in the package folder, so a relative path such as
/// `.bench-venv/bin/python` is taken from the workspace root, where the command is typed. A bare
/// name (`python3`) is left to the `PATH` lookup.
fn from_workspace_root(path: PathBuf) -> PathBuf {
    if path.is_relative() && path.components().count() > 1 && !path.exists() {
        workspace_root().join(path)
    } else {
        path
    }
}

fn run_roomkit(case: Case, raw: &Path, work: &Path, roomkit: &Roomkit) -> Option<Run> {
    let out = work.join("roomkit");
    // A fresh folder per case: the recorder names files by session and second.
    if out.exists() {
        fs::remove_dir_all(&out).expect("clear the roomkit output folder");
    }
    let mut command = Command::new(&roomkit.python);
    let program = roomkit.python.display().to_string();
    command
        .arg(&roomkit.script)
        .arg("--raw")
        .arg(raw)
        .args(["--size", &format!("{}x{}", case.width, case.height), "--fps", &case.fps.to_string()])
        .args(["--codec", "libx264", "--out"])
        .arg(&out);
    let (usage, stdout) = measure(Contender::Roomkit, &program, command)?;
    let Some(file) = single_file(&out) else {
        println!("{}: FAILED (no output file in {})", Contender::Roomkit.name(), out.display());
        return None;
    };
    let in_loop = json_number(&stdout, "seconds")
        .map(|secs| format!("roomkit's own in-loop time: {secs:.2} s (start-up and imports excluded)"));
    let note = Some(format!(
        "roomkit runs libx264 at its own defaults: preset medium, keyint 250, B-frames, plain MP4{}",
        in_loop.map(|t| format!("; {t}")).unwrap_or_default()
    ));
    Some(finished_run(Contender::Roomkit, DEFAULT_X264_PRESET, usage, &file, note))
}

fn finished_run(contender: Contender, preset: &'static str, usage: Usage, out: &Path, note: Option<String>) -> Run {
    let bytes = fs::metadata(out).map(|m| m.len()).unwrap_or(0);
    let probe = ffprobe(out);
    let wall_range_secs = (usage.wall_secs, usage.wall_secs);
    Run { contender, preset, usage, wall_range_secs, bytes, probe, lost: None, note }
}

// ---------------------------------------------------------------------------------------------
// Whole dataflows under `dora run`

/// Slowdowns of a dataflow row's camera before lossy runs are kept.
const MAX_SLOWDOWNS: u32 = 4;
/// A pace that lost frames is followed by this share of the rate that reached the file...
const PACE_MARGIN: f64 = 0.9;
/// ...and at least this factor below the pace before.
const PACE_STEP: f64 = 0.85;

/// What the dataflow runs need: the dora CLI, both node binaries, and this binary as the wrapper.
#[derive(Debug, Clone)]
struct Dora {
    cli: PathBuf,
    version: String,
    camera: PathBuf,
    recorder: PathBuf,
    wrapper: PathBuf,
}

/// Finds the dora CLI and the node binaries, or says why the dataflow runs are skipped.
fn dora_setup() -> Result<Dora, String> {
    let cli = std::env::var_os(DORA_ENV).map_or_else(
        || {
            let local = workspace_root().join(".venv/bin/dora");
            if local.exists() { local } else { PathBuf::from("dora") }
        },
        PathBuf::from,
    );
    let version = match Command::new(&cli).arg("--version").output() {
        Ok(output) if output.status.success() => String::from_utf8_lossy(&output.stdout).trim().to_owned(),
        _ => return Err(format!("no dora CLI at {} (scripts/setup.sh installs it into .venv/)", cli.display())),
    };
    // Cargo builds this package's binaries for its benches; the camera is another package's.
    let recorder = PathBuf::from(env!("CARGO_BIN_EXE_dora-video-recorder"));
    let camera = recorder.with_file_name("dora-test-pattern");
    if !camera.exists() {
        return Err(format!(
            "no {} (cargo build --release -p dora-recorder-test-nodes; scripts/bench.sh does)",
            camera.display()
        ));
    }
    let wrapper = std::env::current_exe().expect("path of this bench binary");
    if [&camera, &recorder, &wrapper].iter().any(|path| path.to_string_lossy().contains(char::is_whitespace)) {
        return Err("a binary's path contains whitespace, which a dataflow's `args` would split".to_owned());
    }
    Ok(Dora { cli, version, camera, recorder, wrapper })
}

/// How fast a camera's timer ticks.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Pace {
    /// A 1 kHz timer: the camera sends as fast as it draws frames (its tick queue drops the rest).
    Unpaced,
    /// A timer at this many ticks per second.
    Hz(f64),
}

impl Pace {
    /// The dora timer input.
    fn timer(self) -> String {
        match self {
            Self::Unpaced => "dora/timer/millis/1".to_owned(),
            Self::Hz(hz) => format!("dora/timer/micros/{}", (1e6 / hz).round().max(1.0) as u64),
        }
    }
}

impl std::fmt::Display for Pace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unpaced => f.write_str("unpaced"),
            Self::Hz(hz) => write!(f, "paced at {hz:.1} fps"),
        }
    }
}

/// Frames each test-pattern camera draws at startup and then sends in a loop (`LOOP_FRAMES`).
const CAMERA_LOOP_FRAMES: u32 = 30;

/// One test-pattern camera node of a generated dataflow.
#[derive(Debug, Clone)]
struct CameraSpec {
    /// Node id, also the recorder's input id.
    id: String,
    width: u32,
    height: u32,
    pace: Pace,
    /// Frames to send before exiting; `None`: until the dataflow stops.
    max_frames: Option<u32>,
}

/// A generated dataflow: cameras into one recorder, every node under the wrapper.
#[derive(Debug, Clone)]
struct FlowSpec {
    cameras: Vec<CameraSpec>,
    /// The recorder's settings besides `STORAGE`.
    recorder_env: Vec<(&'static str, String)>,
}

/// A fresh, empty folder under `work`.
fn fresh_dir(work: &Path, name: &str) -> PathBuf {
    let dir = work.join(name);
    if dir.exists() {
        fs::remove_dir_all(&dir).expect("clear a dataflow folder");
    }
    fs::create_dir_all(&dir).expect("create a dataflow folder");
    dir
}

/// Writes `flow` as `dir/flow.yml`: absolute paths, no `build:` steps, recordings in `dir/recordings`.
fn write_flow(dir: &Path, dora: &Dora, flow: &FlowSpec) {
    let mut yaml = String::from("# Generated by node/benches/encode.rs.\nnodes:\n");
    for camera in &flow.cameras {
        let mut env = vec![
            ("WIDTH", camera.width.to_string()),
            ("HEIGHT", camera.height.to_string()),
            ("ENCODING", "bgr8".to_owned()),
            ("SEND_LOG", sent_log(dir, &camera.id).display().to_string()),
            ("LOOP_FRAMES", CAMERA_LOOP_FRAMES.to_string()),
        ];
        env.extend(camera.max_frames.map(|frames| ("MAX_FRAMES", frames.to_string())));
        let inputs = [("tick".to_owned(), camera.pace.timer())];
        yaml += &node_yaml(dir, dora, (&camera.id, &dora.camera), &inputs, "image", &env);
    }
    let inputs: Vec<(String, String)> =
        flow.cameras.iter().map(|camera| (camera.id.clone(), format!("{}/image", camera.id))).collect();
    let mut env = vec![("STORAGE", dir.join("recordings").display().to_string())];
    env.extend(flow.recorder_env.iter().cloned());
    yaml += &node_yaml(dir, dora, ("recorder", &dora.recorder), &inputs, "recording", &env);
    fs::write(dir.join("flow.yml"), yaml).expect("write the dataflow");
}

/// One node entry: the wrapper runs `binary`, reporting to `dir/usage-ID.txt`.
fn node_yaml(
    dir: &Path,
    dora: &Dora,
    (id, binary): (&str, &Path),
    inputs: &[(String, String)],
    output: &str,
    env: &[(&str, String)],
) -> String {
    let quote = |text: &str| format!("'{}'", text.replace('\'', "''"));
    let mut yaml = format!(
        "  - id: {id}\n    path: {}\n    args: {}\n    inputs:\n",
        quote(&dora.wrapper.display().to_string()),
        quote(&binary.display().to_string())
    );
    for (input, source) in inputs {
        yaml += &format!("      {input}: {source}\n");
    }
    yaml += &format!("    outputs:\n      - {output}\n    env:\n");
    yaml += &format!("      {WRAP_ENV}: {}\n", quote(&usage_report(dir, id).display().to_string()));
    for (key, value) in env {
        yaml += &format!("      {key}: {}\n", quote(value));
    }
    yaml
}

fn usage_report(dir: &Path, node: &str) -> PathBuf {
    dir.join(format!("usage-{node}.txt"))
}

fn sent_log(dir: &Path, camera: &str) -> PathBuf {
    dir.join(format!("sent-{camera}.txt"))
}

/// What a wrapped node used, as its wrapper reported it.
#[derive(Debug, Clone, Copy)]
struct NodeUsage {
    cpu_secs: f64,
    peak_rss_mb: f64,
}

/// A finished `dora run`, its log and its folder.
#[derive(Debug)]
struct FlowRun {
    dir: PathBuf,
    wall_secs: f64,
    /// CPU of `dora run` and of everything it reaped (the wrappers and their nodes).
    total_cpu_secs: f64,
    background_cpu_secs: f64,
    log: String,
}

impl FlowRun {
    fn node_usage(&self, node: &str) -> Option<NodeUsage> {
        let text = fs::read_to_string(usage_report(&self.dir, node)).ok()?;
        let mut numbers = text.split_whitespace().map(str::parse::<f64>);
        let cpu_secs = numbers.next()?.ok()?;
        let peak_rss_kib = numbers.next()?.ok()?;
        Some(NodeUsage { cpu_secs, peak_rss_mb: peak_rss_kib / 1024.0 })
    }

    /// The frames `camera` sent (its `SEND_LOG`).
    fn sent(&self, camera: &str) -> Vec<SentFrame> {
        let text = fs::read_to_string(sent_log(&self.dir, camera)).unwrap_or_default();
        text.lines()
            .filter_map(|line| {
                let (index, nanos) = line.split_once(' ')?;
                Some(SentFrame { index: index.parse().ok()?, at: nanos.trim().parse::<f64>().ok()? / 1e9 })
            })
            .collect()
    }

    /// The recorder's "recording finished" lines.
    fn finished(&self) -> Vec<Finished> {
        self.log.lines().filter_map(Finished::parse).collect()
    }

    /// Unix seconds of the recorder's first log line containing `marker`.
    fn recorder_event(&self, marker: &str) -> Option<f64> {
        self.log.lines().filter(|line| line.contains("dora_video_recorder") && line.contains(marker)).find_map(log_time)
    }

    /// The last lines of the log, for a failure message.
    fn log_tail(&self) -> String {
        log_tail(&self.log)
    }
}

fn log_tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(8)..].join("\n    ")
}

/// A "recording finished" line of the recorder's log.
#[derive(Debug, Clone)]
struct Finished {
    camera: String,
    path: PathBuf,
    dropped: u64,
    /// Unix seconds of the line.
    at: Option<f64>,
}

impl Finished {
    fn parse(line: &str) -> Option<Self> {
        if !line.contains("recording finished") {
            return None;
        }
        Some(Self {
            camera: log_field(line, "camera")?.to_owned(),
            path: PathBuf::from(log_field(line, "path")?),
            dropped: log_field(line, "dropped").and_then(|n| n.parse().ok()).unwrap_or(0),
            at: log_time(line),
        })
    }
}

/// One frame a camera sent, from its `SEND_LOG`.
#[derive(Debug, Clone, Copy)]
struct SentFrame {
    /// The camera's frame index (also the `frame_index` metadata the recorder indexes).
    index: u64,
    /// Unix seconds.
    at: f64,
}

/// Frames a camera sent that are not in its recordings. `tail`: its last frames, sent after the
/// last frame the files hold (seen when a camera exits or the dataflow stops, at any load); the
/// rest are `dropped`: missing before that point, or counted as dropped by the recorder's log.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Losses {
    dropped: u64,
    tail: u64,
    /// The index of the first frame missing before the last recorded one, if the index tells.
    first_dropped: Option<u64>,
}

impl Losses {
    /// The losses of one camera: its send log against the `frame_index` column of its files'
    /// frame index (`NAME.frames.csv`) and the frames ffprobe decodes; without an index, every
    /// missing frame counts as dropped.
    fn of_camera(sent: &[SentFrame], files: &[&Finished], frames_in_files: u64) -> Self {
        let missing_by_count = (sent.len() as u64).saturating_sub(frames_in_files);
        let logged: u64 = files.iter().map(|file| file.dropped).sum();
        let recorded: Option<Vec<u64>> =
            files.iter().map(|file| recorded_indices(&file.path)).collect::<Option<Vec<_>>>().map(|v| v.concat());
        let (tail, first_dropped) =
            match recorded.as_deref().and_then(|indices| indices.iter().max().map(|last| (indices, *last))) {
                Some((indices, last)) => {
                    let missing = sent.iter().map(|frame| frame.index).filter(|index| !indices.contains(index));
                    let first_dropped = missing.clone().find(|index| *index < last);
                    (missing.filter(|index| *index > last).count() as u64, first_dropped)
                }
                None => (0, None),
            };
        Self { dropped: missing_by_count.saturating_sub(tail).max(logged), tail, first_dropped }
    }

    fn add(self, other: Self) -> Self {
        let first_dropped = self.first_dropped.into_iter().chain(other.first_dropped).min();
        Self { dropped: self.dropped + other.dropped, tail: self.tail + other.tail, first_dropped }
    }
}

/// The `frame_index` column of a video's frame index, if it has one.
fn recorded_indices(video: &Path) -> Option<Vec<u64>> {
    let text = fs::read_to_string(video.with_extension("frames.csv")).ok()?;
    let mut lines = text.lines();
    let column = lines.next()?.split(',').position(|name| name == "frame_index")?;
    Some(lines.filter_map(|line| line.split(',').nth(column)?.parse().ok()).collect())
}

/// The value of ` key=value` or ` key="value"` in a `tracing` line.
fn log_field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let rest = &line[line.find(&format!(" {key}="))? + key.len() + 2..];
    match rest.strip_prefix('"') {
        Some(quoted) => Some(&quoted[..quoted.find('"')?]),
        None => rest.split_whitespace().next(),
    }
}

/// Unix seconds of the first RFC 3339 timestamp in a line (the recorder stamps each line).
fn log_time(line: &str) -> Option<f64> {
    line.split_whitespace()
        .find_map(|token| chrono::DateTime::parse_from_rfc3339(token).ok())
        .map(|time| time.timestamp_micros() as f64 / 1e6)
}

/// Runs `dora run dir/flow.yml` (with `--stop-after` if given) to its end, or kills it after
/// `timeout`. Its output goes to `dir/dora.log`.
fn run_flow(dora: &Dora, dir: &Path, stop_after_secs: Option<u32>, timeout: Duration) -> Result<FlowRun, String> {
    let log_path = dir.join("dora.log");
    let log_file = File::create(&log_path).expect("create the dora log");
    let mut command = Command::new(&dora.cli);
    command.arg("run").arg(dir.join("flow.yml"));
    if let Some(secs) = stop_after_secs {
        command.args(["--stop-after", &format!("{secs}s")]);
    }
    shell_environment(&mut command);
    command
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(log_file.try_clone().expect("share the dora log"))
        .stderr(log_file);
    let busy_before = machine_busy_secs();
    let start = Instant::now();
    let mut child = command.spawn().map_err(|error| format!("cannot start {}: {error}", dora.cli.display()))?;
    let waited = wait4_until(child.id(), start + timeout);
    let wall_secs = start.elapsed().as_secs_f64();
    let busy_secs = machine_busy_secs() - busy_before;
    let log = fs::read_to_string(&log_path).unwrap_or_default();
    let Some((status, rusage)) = waited else {
        // Our own child; its nodes' wrappers get SIGTERM as it dies (PR_SET_PDEATHSIG).
        let _ = child.kill();
        let _ = child.wait();
        return Err(format!("dora run timed out after {timeout:?}:\n    {}", log_tail(&log)));
    };
    if !(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0) {
        return Err(format!("dora run failed (wait status {status:#x}):\n    {}", log_tail(&log)));
    }
    let total_cpu_secs = timeval_secs(rusage.ru_utime) + timeval_secs(rusage.ru_stime);
    let background_cpu_secs = (busy_secs - total_cpu_secs).max(0.0);
    Ok(FlowRun { dir: dir.to_owned(), wall_secs, total_cpu_secs, background_cpu_secs, log })
}

/// The environment a user's shell has: without the variables cargo sets for its bench (as
/// tests/common's `dora_command` does), a log filter, or this bench's own switches.
fn shell_environment(command: &mut Command) {
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        let cargo = key.starts_with("CARGO_") && key != "CARGO_HOME" && key != "CARGO_TARGET_DIR";
        if cargo || key == "LD_LIBRARY_PATH" || key == "RUST_LOG" || key.starts_with("ENCODE_BENCH_") {
            command.env_remove(key.as_ref());
        }
    }
}

/// The single-camera dataflow of a table row: the case's frame count at `pace`.
fn run_dataflow(dora: &Dora, case: Case, work: &Path, preset: &'static str, pace: Pace) -> Option<Run> {
    let dir = fresh_dir(work, &format!("dataflow-{preset}"));
    let camera = CameraSpec {
        id: "camera".to_owned(),
        width: case.width,
        height: case.height,
        pace,
        max_frames: Some(case.frames),
    };
    let recorder_env = vec![
        ("PRESET", preset.to_owned()),
        ("FPS", case.fps.to_string()),
        ("TIMESTAMPS", "frame".to_owned()),
        ("FSYNC", "true".to_owned()),
    ];
    write_flow(&dir, dora, &FlowSpec { cameras: vec![camera], recorder_env });
    // Generous: even 1 frame per second finishes.
    let timeout = Duration::from_secs(120 + u64::from(case.frames));
    let run = match run_flow(dora, &dir, None, timeout) {
        Ok(flow) => dataflow_row(preset, pace, &flow),
        Err(error) => {
            println!("{} ({preset}): FAILED ({error})", Contender::Dataflow.name());
            None
        }
    };
    fs::remove_dir_all(&dir).expect("remove a dataflow folder");
    run
}

/// The table row of a finished single-camera dataflow.
fn dataflow_row(preset: &'static str, pace: Pace, flow: &FlowRun) -> Option<Run> {
    let name = Contender::Dataflow.name();
    let (Some(recorder), Some(file)) = (flow.node_usage("recorder"), flow.finished().into_iter().next()) else {
        println!("{name} ({preset}): FAILED (no usage report or no finished recording):\n    {}", flow.log_tail());
        return None;
    };
    let camera_cpu_secs = flow.node_usage("camera").map_or(f64::NAN, |camera| camera.cpu_secs);
    let sent_frames = flow.sent("camera");
    let sent = sent_frames.len() as u64;
    let probe = ffprobe(&file.path);
    let lost = Losses::of_camera(&sent_frames, &[&file], probe.frames);
    let dora_own_secs = (flow.total_cpu_secs - recorder.cpu_secs - camera_cpu_secs).max(0.0);
    let steady_fps = match (sent_frames.first(), file.at) {
        (Some(first), Some(finished)) if finished > first.at => {
            format!("{:.1}", probe.frames as f64 / (finished - first.at))
        }
        _ => "-".to_owned(),
    };
    let note = format!(
        "{name} ({preset}), median round: camera {pace}, {sent} frames sent, {steady_fps} fps from the first frame \
         sent to the finished file; camera {:.1} ms CPU per frame (drawing and sending), `dora run` itself \
         {dora_own_secs:.2} CPU s, recorder's log dropped={}",
        1000.0 * camera_cpu_secs / sent.max(1) as f64,
        file.dropped
    );
    let usage = Usage {
        wall_secs: flow.wall_secs,
        cpu_secs: recorder.cpu_secs,
        peak_rss_mb: recorder.peak_rss_mb,
        background_cpu_secs: flow.background_cpu_secs,
    };
    let bytes = fs::metadata(&file.path).map(|m| m.len()).unwrap_or(0);
    let wall_range_secs = (flow.wall_secs, flow.wall_secs);
    let contender = Contender::Dataflow;
    Some(Run { contender, preset, usage, wall_range_secs, bytes, probe, lost: Some(lost), note: Some(note) })
}

/// One round of a whole-dataflow row (round `round`, from 0): a run at the job's pace. A run that
/// drops frames (missing last frames do not count: see [`Losses`]) slows the camera down (to [`PACE_MARGIN`] of the rate that reached the file, and at
/// least by [`PACE_STEP`]), discards the samples taken at faster paces and runs again until the job
/// has a sample per round so far; after [`MAX_SLOWDOWNS`] slowdowns, lossy runs are kept as they are.
fn dataflow_round(job: &mut Job, dora: &Dora, context: &CaseContext, round: usize) {
    while job.samples.len() <= round {
        let Some(run) = run_dataflow(dora, context.case, context.work, job.preset, job.pace) else {
            job.pace_log.push(format!("round {}: a run at {} failed", round + 1, job.pace));
            return;
        };
        let lost = run.lost.unwrap_or_default();
        job.runs += 1;
        job.tail_runs += u32::from(lost.tail > 0);
        if lost.dropped == 0 || job.slowdowns >= MAX_SLOWDOWNS {
            job.samples.push(run);
            continue;
        }
        let reached = PACE_MARGIN * run.fps();
        let slower = match job.pace {
            Pace::Hz(before) => reached.min(PACE_STEP * before),
            Pace::Unpaced => reached,
        };
        job.pace_log.push(format!(
            "round {}: {} dropped {} of {} frames ({}{:.1} fps reached the file)",
            round + 1,
            job.pace,
            lost.dropped,
            context.case.frames,
            lost.first_dropped.map(|index| format!("the first: #{index}; ")).unwrap_or_default(),
            run.fps()
        ));
        job.pace = Pace::Hz(slower);
        job.slowdowns += 1;
        job.samples.clear();
    }
}

/// How a whole-dataflow row found its camera pace.
fn pace_note(job: &Job) -> Option<String> {
    if job.contender != Contender::Dataflow {
        return None;
    }
    let history =
        if job.pace_log.is_empty() { "no run dropped a frame".to_owned() } else { job.pace_log.join("; then ") };
    Some(format!(
        "{} ({}): camera {} in every kept round; {history}; the camera's last frame(s) were missing from the file \
         in {} of {} runs",
        job.contender.name(),
        job.preset,
        job.pace,
        job.tail_runs,
        job.runs
    ))
}

// ---------------------------------------------------------------------------------------------
// (a) Cameras per recorder

/// How many cameras of each kind one recorder sustains through `dora run` with real timers.
fn bench_camera_capacity(dora: &Dora, work: &Path, quick: bool) {
    let (secs, max_cameras) = if quick { (3, 2) } else { (8, 6) };
    println!(
        "\n## Cameras one recorder sustains ({}; real timers, {secs} s of frames per camera, recorder defaults: \
         PRESET=veryfast, FSYNC=true)",
        dora.version
    );
    println!(
        "N test-pattern cameras (bgr8, `MAX_FRAMES` = {secs} s of frames, a loop of {CAMERA_LOOP_FRAMES} pre-drawn \
         frames) into one recorder, N = 1, 2, ... up to \
         {max_cameras}; a run fails when frames are dropped, or when a camera could not keep 90% of its rate \
         (the machine is saturated). Dropped: frames missing before the last one a file holds, or counted by the \
         recorder; last frames missing: a camera's final frames, missing at any load (not a capacity limit, and \
         not counted by the recorder). CPU is in % of one core over the run; \
         background is what other processes used meanwhile."
    );
    for kind in [(640, 480, 15), (1280, 720, 30)] {
        capacity_series(dora, work, kind, secs, max_cameras);
    }
}

/// N cameras of one kind at a time, until a run fails.
fn capacity_series(dora: &Dora, work: &Path, (width, height, fps): (u32, u32, u32), secs: u32, max_cameras: u32) {
    println!("\n### {width}x{height} @ {fps} fps\n");
    println!(
        "| cameras | frames sent | frames in files | dropped | last frames missing | slowest camera fps | \
         recorder CPU % | cameras CPU % | background CPU % | recorder peak RSS MB | wall s |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let mut sustained = 0;
    let mut verdict = format!("no failure up to the cap of {max_cameras}");
    for count in 1..=max_cameras {
        let cameras = (1..=count)
            .map(|n| CameraSpec {
                id: format!("cam{n}"),
                width,
                height,
                pace: Pace::Hz(f64::from(fps)),
                max_frames: Some(secs * fps),
            })
            .collect();
        let Some(outcome) = capacity_run(dora, work, cameras, fps) else {
            verdict = format!("the run with {count} cameras failed");
            break;
        };
        outcome.print_row(count);
        if let Some(problem) = outcome.problem(fps) {
            verdict = format!("with {count}: {problem}");
            break;
        }
        sustained = count;
    }
    println!("\none recorder sustains {sustained} camera(s) of {width}x{height} @ {fps} fps here ({verdict})");
}

/// One run of the camera series.
#[derive(Debug)]
struct CapacityOutcome {
    sent: u64,
    recorded: u64,
    /// Frames sent but not in their camera's files, summed over cameras.
    lost: Losses,
    slowest_fps: f64,
    recorder: NodeUsage,
    cameras_cpu_secs: f64,
    /// CPU other processes (not dora and its nodes) used during the run.
    background_cpu_secs: f64,
    wall_secs: f64,
}

impl CapacityOutcome {
    fn print_row(&self, cameras: u32) {
        let share = |cpu: f64| 100.0 * cpu / self.wall_secs;
        println!(
            "| {cameras} | {} | {} | {} | {} | {:.1} | {:.0} | {:.0} | {:.0} | {:.0} | {:.1} |",
            self.sent,
            self.recorded,
            self.lost.dropped,
            self.lost.tail,
            self.slowest_fps,
            share(self.recorder.cpu_secs),
            share(self.cameras_cpu_secs),
            share(self.background_cpu_secs),
            self.recorder.peak_rss_mb,
            self.wall_secs
        );
    }

    /// Why this run does not count as sustained, if it does not (missing last frames do not count:
    /// see [`Losses`]).
    fn problem(&self, fps: u32) -> Option<String> {
        if self.lost.dropped > 0 {
            let first = self.lost.first_dropped.map(|index| format!(", the first: #{index}")).unwrap_or_default();
            Some(format!("{} frame(s) dropped{first}", self.lost.dropped))
        } else if self.slowest_fps < 0.9 * f64::from(fps) {
            Some(format!("a camera sent only {:.1} fps of {fps}: the machine is saturated", self.slowest_fps))
        } else {
            None
        }
    }
}

fn capacity_run(dora: &Dora, work: &Path, cameras: Vec<CameraSpec>, fps: u32) -> Option<CapacityOutcome> {
    let dir = fresh_dir(work, "cameras");
    let ids: Vec<String> = cameras.iter().map(|camera| camera.id.clone()).collect();
    let frames = cameras.iter().filter_map(|camera| camera.max_frames).max().unwrap_or(0);
    let recorder_env = vec![("FPS", fps.to_string())];
    write_flow(&dir, dora, &FlowSpec { cameras, recorder_env });
    let timeout = Duration::from_secs(120 + 3 * u64::from(frames / fps.max(1)));
    let outcome = match run_flow(dora, &dir, None, timeout) {
        Ok(flow) => capacity_outcome(&flow, &ids),
        Err(error) => {
            println!("camera series: FAILED ({error})");
            None
        }
    };
    fs::remove_dir_all(&dir).expect("remove a dataflow folder");
    outcome
}

/// Frames sent and recorded per camera, and what the nodes used.
fn capacity_outcome(flow: &FlowRun, cameras: &[String]) -> Option<CapacityOutcome> {
    let Some(recorder) = flow.node_usage("recorder") else {
        println!("camera series: FAILED (no usage report of the recorder):\n    {}", flow.log_tail());
        return None;
    };
    let finished = flow.finished();
    let mut outcome = CapacityOutcome {
        sent: 0,
        recorded: 0,
        lost: Losses::default(),
        slowest_fps: f64::INFINITY,
        recorder,
        cameras_cpu_secs: 0.0,
        background_cpu_secs: flow.background_cpu_secs,
        wall_secs: flow.wall_secs,
    };
    for camera in cameras {
        let sent = flow.sent(camera);
        let files: Vec<&Finished> =
            finished.iter().filter(|file| file.camera == *camera || cameras.len() == 1).collect();
        let recorded: u64 = files.iter().map(|file| ffprobe(&file.path).frames).sum();
        outcome.sent += sent.len() as u64;
        outcome.recorded += recorded;
        outcome.lost = outcome.lost.add(Losses::of_camera(&sent, &files, recorded));
        outcome.slowest_fps = outcome.slowest_fps.min(send_rate(&sent));
        outcome.cameras_cpu_secs += flow.node_usage(camera).map_or(0.0, |usage| usage.cpu_secs);
    }
    Some(outcome)
}

/// Frames per second between a camera's first and last frame.
fn send_rate(sent: &[SentFrame]) -> f64 {
    match (sent.first(), sent.last()) {
        (Some(first), Some(last)) if last.at > first.at => (sent.len() - 1) as f64 / (last.at - first.at),
        _ => 0.0,
    }
}

// ---------------------------------------------------------------------------------------------
// (c) Stop to finalized file

/// Time from a stop to a finalized file, per case size at its rate, through `dora run --stop-after`.
fn bench_stop_latency(dora: &Dora, work: &Path, cases: &[Case], rounds: usize, quick: bool) {
    let secs = if quick { 3 } else { 5 };
    println!(
        "\n## Stop to finalized file (`dora run --stop-after {secs}s`, real timer, recorder defaults: PRESET=veryfast, \
         FSYNC=true; median of {rounds})\n"
    );
    println!(
        "From the recorder's \"stop requested\" log line, and from the camera's last frame sent before it, to its \
         \"recording finished\" line (the file is a finalized hybrid MP4 then), and to \"recorder done\" (the node \
         exits). Dropped and missing count the frames sent before the stop.\n"
    );
    println!(
        "| camera | camera fps | frames in file | dropped | last frames missing | sent after the stop | \
         stop → finished ms (range) | last frame → finished ms | stop → recorder done ms | background CPU % |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for &case in cases {
        let mut samples: Vec<StopSample> = (0..rounds).filter_map(|_| stop_sample(dora, work, case, secs)).collect();
        samples.sort_by(|a, b| a.stop_to_finished_ms.total_cmp(&b.stop_to_finished_ms));
        let (Some(fastest), Some(slowest)) = (samples.first(), samples.last()) else { continue };
        let median = &samples[samples.len() / 2];
        println!(
            "| {}x{} @ {} | {:.1} | {} | {} | {} | {} | {:.0} ({:.0}-{:.0}) | {:.0} | {:.0} | {:.0} |",
            case.width,
            case.height,
            case.fps,
            median.camera_fps,
            median.frames,
            median.lost.dropped,
            median.lost.tail,
            median.sent_after_stop,
            median.stop_to_finished_ms,
            fastest.stop_to_finished_ms,
            slowest.stop_to_finished_ms,
            median.last_frame_to_finished_ms,
            median.stop_to_done_ms,
            median.background_share
        );
    }
}

/// One stopped run.
#[derive(Debug, Clone, Copy)]
struct StopSample {
    camera_fps: f64,
    frames: u64,
    /// Of the frames sent before the recorder logged the stop.
    lost: Losses,
    /// Frames the camera sent after that (dora still delivers queued ticks): a stopped recording
    /// rightly leaves them out.
    sent_after_stop: usize,
    stop_to_finished_ms: f64,
    last_frame_to_finished_ms: f64,
    stop_to_done_ms: f64,
    /// CPU other processes used during the run, in % of one core.
    background_share: f64,
}

fn stop_sample(dora: &Dora, work: &Path, case: Case, secs: u32) -> Option<StopSample> {
    let dir = fresh_dir(work, "stop");
    let camera = CameraSpec {
        id: "camera".to_owned(),
        width: case.width,
        height: case.height,
        pace: Pace::Hz(f64::from(case.fps)),
        max_frames: None,
    };
    write_flow(&dir, dora, &FlowSpec { cameras: vec![camera], recorder_env: vec![("FPS", case.fps.to_string())] });
    let sample = match run_flow(dora, &dir, Some(secs), Duration::from_secs(120 + u64::from(secs))) {
        Ok(flow) => stop_figures(&flow),
        Err(error) => {
            println!("stop run: FAILED ({error})");
            None
        }
    };
    fs::remove_dir_all(&dir).expect("remove a dataflow folder");
    sample
}

fn stop_figures(flow: &FlowRun) -> Option<StopSample> {
    let file = flow.finished().into_iter().next();
    let stop = flow.recorder_event("stop requested");
    let done = flow.recorder_event("recorder done");
    let (Some(file), Some(stop), Some(done)) = (file, stop, done) else {
        println!("stop run: FAILED (missing \"stop requested\", \"recording finished\" or \"recorder done\"):");
        println!("    {}", flow.log_tail());
        return None;
    };
    let (sent, sent_after_stop): (Vec<SentFrame>, Vec<SentFrame>) =
        flow.sent("camera").into_iter().partition(|frame| frame.at <= stop);
    let last_frame = sent.last()?;
    let finished = file.at?;
    let frames = ffprobe(&file.path).frames;
    Some(StopSample {
        camera_fps: send_rate(&sent),
        frames,
        lost: Losses::of_camera(&sent, &[&file], frames),
        sent_after_stop: sent_after_stop.len(),
        stop_to_finished_ms: 1000.0 * (finished - stop),
        last_frame_to_finished_ms: 1000.0 * (finished - last_frame.at),
        stop_to_done_ms: 1000.0 * (done - stop),
        background_share: 100.0 * flow.background_cpu_secs / flow.wall_secs,
    })
}

// ---------------------------------------------------------------------------------------------
// Measuring child processes

/// Runs `command` to its end and returns what it used and its stdout, or `None` (with a printed
/// FAILED line) when it fails. Its stderr goes to ours.
fn measure(contender: Contender, program: &str, mut command: Command) -> Option<(Usage, String)> {
    command.stdin(Stdio::null()).stdout(Stdio::piped());
    let busy_before = machine_busy_secs();
    let start = Instant::now();
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(error) => {
            println!("{}: FAILED to start {program} ({error})", contender.name());
            return None;
        }
    };
    let mut stdout = String::new();
    if let Some(mut pipe) = child.stdout.take() {
        pipe.read_to_string(&mut stdout).expect("read the child's stdout");
    }
    // `wait4` reaps the child here; `child` is then only dropped, which neither waits nor kills.
    let (status, rusage) = wait4(child.id());
    let wall_secs = start.elapsed().as_secs_f64();
    let busy_secs = machine_busy_secs() - busy_before;
    if !(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0) {
        println!("{}: FAILED (wait status {status:#x})", contender.name());
        return None;
    }
    let cpu_secs = timeval_secs(rusage.ru_utime) + timeval_secs(rusage.ru_stime);
    // Linux reports ru_maxrss in KiB.
    let peak_rss_mb = rusage.ru_maxrss as f64 / 1024.0;
    let background_cpu_secs = (busy_secs - cpu_secs).max(0.0);
    Some((Usage { wall_secs, cpu_secs, peak_rss_mb, background_cpu_secs }, stdout))
}

fn wait4(pid: u32) -> (libc::c_int, libc::rusage) {
    let pid = libc::pid_t::try_from(pid).expect("pid fits pid_t");
    let mut status: libc::c_int = 0;
    // SAFETY: rusage is plain old data, so all-zero bytes are a valid value.
    let mut rusage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: both pointers are to live locals of the right types; `pid` is our own child,
        // which nothing else waits for.
        let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut rusage) };
        if waited == pid {
            return (status, rusage);
        }
        let error = std::io::Error::last_os_error();
        assert_eq!(error.kind(), std::io::ErrorKind::Interrupted, "wait4 failed: {error}");
    }
}

/// Like [`wait4`], but gives up at `deadline` (then the child is still running and unreaped).
fn wait4_until(pid: u32, deadline: Instant) -> Option<(libc::c_int, libc::rusage)> {
    let pid = libc::pid_t::try_from(pid).expect("pid fits pid_t");
    let mut status: libc::c_int = 0;
    // SAFETY: rusage is plain old data, so all-zero bytes are a valid value.
    let mut rusage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: as in `wait4`; WNOHANG returns 0 while the child runs.
        let waited = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut rusage) };
        if waited == pid {
            return Some((status, rusage));
        }
        if waited < 0 {
            let error = std::io::Error::last_os_error();
            assert_eq!(error.kind(), std::io::ErrorKind::Interrupted, "wait4 failed: {error}");
        } else if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// CPU seconds all cores have spent busy since boot (the `cpu` line of `/proc/stat`), or 0 where
/// that file is missing.
fn machine_busy_secs() -> f64 {
    let stat = fs::read_to_string("/proc/stat").unwrap_or_default();
    let ticks: Vec<f64> = stat
        .lines()
        .next()
        .and_then(|line| line.strip_prefix("cpu "))
        .map(|rest| rest.split_whitespace().filter_map(|v| v.parse().ok()).collect())
        .unwrap_or_default();
    // user nice system idle iowait irq softirq steal: all but idle and iowait are busy.
    let busy: f64 = [0, 1, 2, 5, 6, 7].iter().filter_map(|&i| ticks.get(i)).sum();
    // SAFETY: sysconf only reads a configuration value.
    let ticks_per_sec = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    busy / ticks_per_sec
}

fn timeval_secs(time: libc::timeval) -> f64 {
    time.tv_sec as f64 + time.tv_usec as f64 / 1e6
}

/// This process's own peak RSS (VmHWM) in MB.
fn own_peak_rss_mb() -> f64 {
    let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kib| kib / 1024.0)
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

// ---------------------------------------------------------------------------------------------
// Checking and printing

/// Codec name and decoded frame count of the first video stream.
fn ffprobe(path: &Path) -> Probe {
    let output = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-count_frames"])
        .args(["-show_entries", "stream=codec_name,nb_read_frames", "-of", "default=noprint_wrappers=1"])
        .arg(path)
        .output()
        .expect("run ffprobe (install it: apt-get install ffmpeg)");
    let text = String::from_utf8_lossy(&output.stdout);
    let field = |key: &str| text.lines().find_map(|l| l.strip_prefix(key)?.strip_prefix('=')).map(str::to_owned);
    Probe {
        codec: field("codec_name").unwrap_or_else(|| "unreadable".to_owned()),
        frames: field("nb_read_frames").and_then(|n| n.parse().ok()).unwrap_or(0),
    }
}

/// The row of `contender` at `preset`, if it ran.
fn find_run<'a>(runs: &'a [Run], contender: Contender, preset: &str) -> Option<&'a Run> {
    runs.iter().find(|run| run.contender == contender && run.preset == preset)
}

/// `value / base` with two decimals, `-` without a base.
fn ratio(value: f64, base: Option<f64>) -> String {
    base.map_or_else(|| "-".to_owned(), |base| format!("{:.2}", value / base))
}

fn print_table(runs: &[Run]) {
    println!();
    println!(
        "| encoder | preset | seconds (range) | fps | CPU ms/frame | peak RSS MB | bytes | frames | time / CLI | \
         time / x264-only |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for run in runs {
        let wall_of = |contender| find_run(runs, contender, run.preset).map(|base| base.usage.wall_secs);
        let (fastest, slowest) = run.wall_range_secs;
        let mut frames = run.probe.frames.to_string();
        if let Some(lost) = run.lost.filter(|lost| lost.dropped > 0) {
            frames += &format!(" ({} dropped)", lost.dropped);
        }
        if let Some(lost) = run.lost.filter(|lost| lost.tail > 0) {
            frames += &format!(" ({} last missing)", lost.tail);
        }
        if run.probe.codec != "h264" {
            frames += &format!(" ({})", run.probe.codec);
        }
        println!(
            "| {} | {} | {:.2} ({fastest:.2}-{slowest:.2}) | {:.1} | {:.2} | {:.0} | {} | {frames} | {} | {} |",
            run.contender.name(),
            run.preset,
            run.usage.wall_secs,
            run.fps(),
            run.cpu_ms_per_frame(),
            run.usage.peak_rss_mb,
            run.bytes,
            ratio(run.usage.wall_secs, wall_of(Contender::FfmpegCli)),
            ratio(run.usage.wall_secs, wall_of(Contender::FfmpegYuv)),
        );
    }
}

/// Ratios that compare rows of different kinds: ours against the reference recorder, and the
/// cost of syncing each fragment.
fn print_comparisons(runs: &[Run]) {
    println!();
    let roomkit = find_run(runs, Contender::Roomkit, DEFAULT_X264_PRESET);
    for contender in [Contender::Ours, Contender::Dataflow] {
        let Some(ours) = find_run(runs, contender, DEFAULT_X264_PRESET) else { continue };
        println!(
            "- {} vs roomkit PyAV ({DEFAULT_X264_PRESET}): fps x{}, peak RSS x{}",
            contender.name(),
            ratio(ours.fps(), roomkit.map(Run::fps)),
            ratio(ours.usage.peak_rss_mb, roomkit.map(|r| r.usage.peak_rss_mb)),
        );
    }
    let synced = find_run(runs, Contender::Ours, FAST_PRESET);
    let unsynced = find_run(runs, Contender::OursWithoutFsync, FAST_PRESET);
    if let (Some(synced), Some(unsynced)) = (synced, unsynced) {
        println!(
            "- fdatasync per fragment ({FAST_PRESET}): FSYNC=true / FSYNC=false: time x{}, CPU x{}",
            ratio(synced.usage.wall_secs, Some(unsynced.usage.wall_secs)),
            ratio(synced.usage.cpu_secs, Some(unsynced.usage.cpu_secs)),
        );
    }
}

/// Prints how much CPU other processes used while the children ran.
fn report_background(runs: &[Run]) {
    let background: f64 = runs.iter().map(|run| run.usage.background_cpu_secs).sum();
    let wall: f64 = runs.iter().map(|run| run.usage.wall_secs).sum();
    let busy_share = 100.0 * background / (wall * cores() as f64);
    println!(
        "background load: other processes used {background:.1} CPU s during {wall:.1} s of runs ({busy_share:.0}% of the machine)"
    );
}

/// Prints a MISMATCH line for every round whose file does not decode to the input's frame count.
fn report_mismatches(case: Case, runs: &[Run]) {
    for run in runs.iter().filter(|run| run.probe.frames != u64::from(case.frames)) {
        println!(
            "MISMATCH: {} ({}) decoded {} frames ({}), input had {}",
            run.contender.name(),
            run.preset,
            run.probe.frames,
            run.probe.codec,
            case.frames
        );
    }
}

/// A number field from a one-line JSON object, without a JSON parser.
fn json_number(text: &str, key: &str) -> Option<f64> {
    let rest = &text[text.find(&format!("\"{key}\":"))? + key.len() + 3..];
    let end = rest.find([',', '}']).unwrap_or(rest.len());
    rest[..end].trim().parse().ok()
}

fn single_file(dir: &Path) -> Option<PathBuf> {
    let mut files = fs::read_dir(dir).ok()?.filter_map(Result::ok).map(|e| e.path()).filter(|p| p.is_file());
    let file = files.next()?;
    files.next().is_none().then_some(file)
}

// ---------------------------------------------------------------------------------------------
// The wrapper: a dataflow node's real binary under wait4

/// Runs the real node binary (the first argument, with the rest as its arguments) as a child,
/// waits for it, writes its CPU seconds and peak RSS in KiB to `report`, and exits as it did. The
/// node inherits the environment through which dora talks to it, so the wrapper is transparent.
/// This process's RSS at the spawn (a few MB) is the floor of the node's `ru_maxrss`.
fn wrapper_main(report: &Path) -> ExitCode {
    die_with_parent();
    let mut args = std::env::args_os().skip(1);
    let Some(program) = args.next() else {
        eprintln!("wrapper usage: {WRAP_ENV}=REPORT encode-bench PROGRAM [ARGS...]");
        return ExitCode::FAILURE;
    };
    let mut command = Command::new(&program);
    command.args(args).env_remove(WRAP_ENV);
    // SAFETY: the hook runs between fork and exec and only calls prctl, which is async-signal-safe.
    unsafe {
        command.pre_exec(|| {
            die_with_parent();
            Ok(())
        });
    }
    // `wait4` reaps it; the `Child` handle is not needed for that.
    let pid = command.spawn().expect("start the wrapped node").id();
    let (status, rusage) = wait4(pid);
    let cpu_secs = timeval_secs(rusage.ru_utime) + timeval_secs(rusage.ru_stime);
    fs::write(report, format!("{cpu_secs} {}\n", rusage.ru_maxrss)).expect("write the wrapper's report");
    if libc::WIFEXITED(status) {
        ExitCode::from(libc::WEXITSTATUS(status) as u8)
    } else {
        ExitCode::from(128 + libc::WTERMSIG(status) as u8)
    }
}

/// Has the kernel send this process SIGTERM when its parent exits, so that a killed `dora run`
/// or wrapper leaves no node behind.
fn die_with_parent() {
    // SAFETY: PR_SET_PDEATHSIG only sets an attribute of the calling process.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) };
}

// ---------------------------------------------------------------------------------------------
// The child: our pipeline alone

/// Arguments: RAW WIDTH HEIGHT FPS FRAMES PRESET OUT.
fn child_main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [raw, width, height, fps, frames, preset, out] = args.as_slice() else {
        eprintln!("child usage: RAW WIDTH HEIGHT FPS FRAMES PRESET OUT");
        return ExitCode::FAILURE;
    };
    let number = |text: &str| text.parse::<u32>().expect("numeric child argument");
    let case = Case { width: number(width), height: number(height), fps: number(fps), frames: number(frames) };
    encode_with_library(case, Path::new(raw), preset, Path::new(out));
    ExitCode::SUCCESS
}

/// Feeds every frame of `raw` through [`VideoWriter`] exactly as the node's threads do: one thread
/// takes frames in (the node's event loop receiving from dora; here reading the file) and hands
/// them over through a short queue to the encoding thread (the node's per-camera worker), PTS from
/// the source clock. Buffers are recycled once the writer lets go of them, as the CLI reuses its
/// packet pool: a fresh 6 MB allocation per frame would add page faults that the node, fed from
/// dora's shared memory, does not show (its system time is 0.4 ms per 1080p frame in
/// `scripts/soak.sh`).
fn encode_with_library(case: Case, raw: &Path, preset: &str, out: &Path) {
    // As the node's binary does at start.
    dora_video_recorder::memory::return_large_buffers_to_the_system();
    init_ffmpeg().expect("initialize FFmpeg");
    let fps = FrameRate { num: case.fps, den: 1 };
    let mut clock = PtsClock::new(TimestampMode::Source, fps, true);
    let settings = EncoderSettings {
        container: Container::Mp4,
        quality: bench_quality(case, preset),
        fps,
        time_base: clock.time_base(),
        fsync: std::env::var(FSYNC_ENV).map_or(true, |v| v != "0"),
    };
    let format = FrameFormat { encoding: PixelEncoding::Bgr8, width: case.width, height: case.height };
    let (mut writer, _) =
        VideoWriter::create(out, format, &[EncoderKind::Libx264], &settings, clock.frame_duration(), &[])
            .expect("open libx264 and the output file");
    let (frames, recycled) = spawn_frame_reader(case, raw);
    let frame_nanos = 1_000_000_000 / u64::from(case.fps);
    for (index, bytes) in (0..u64::from(case.frames)).zip(frames) {
        let sent_nanos = index * frame_nanos;
        let frame = Frame { format, sent_nanos, data: Buffer::from_vec(bytes), ids: Default::default() };
        writer.write(&frame, clock.next_pts(sent_nanos)).expect("encode a frame");
        // The reader may be done already; then the buffer is simply dropped.
        let _ = recycled.send(frame.data.into_vec().unwrap_or_default());
    }
    writer.finish().expect("finish the file");
}

/// Frames queued between the reading thread and the encoding thread.
const READ_AHEAD_FRAMES: usize = 2;

/// Starts a thread that reads `raw` frame by frame into recycled buffers: returns the frames and
/// where to send each buffer back. Starts with [`READ_AHEAD_FRAMES`] + 2 buffers (queued, being
/// read, being encoded).
fn spawn_frame_reader(case: Case, raw: &Path) -> (mpsc::IntoIter<Vec<u8>>, mpsc::Sender<Vec<u8>>) {
    let mut reader = File::open(raw).expect("open the raw frames");
    let (frames_tx, frames_rx) = mpsc::sync_channel::<Vec<u8>>(READ_AHEAD_FRAMES);
    let (recycle_tx, recycle_rx) = mpsc::channel::<Vec<u8>>();
    for _ in 0..READ_AHEAD_FRAMES + 2 {
        // Not zeroed: the CLI does not zero its packets either.
        recycle_tx.send(Vec::with_capacity(case.frame_bytes())).expect("seed the buffer pool");
    }
    std::thread::spawn(move || {
        for _ in 0..case.frames {
            let Ok(mut bytes) = recycle_rx.recv() else { return };
            bytes.clear();
            (&mut reader).take(case.frame_bytes() as u64).read_to_end(&mut bytes).expect("read one raw frame");
            assert_eq!(bytes.len(), case.frame_bytes(), "raw file ended early");
            if frames_tx.send(bytes).is_err() {
                return;
            }
        }
    });
    (frames_rx.into_iter(), recycle_tx)
}
