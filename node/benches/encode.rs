//! Encode benchmark: this crate's encode pipeline next to the `ffmpeg` CLI and the reference
//! recorder (roomkit's PyAV recorder), on the same raw bgr24 frames, printed as one table per case
//! with ratios against the `ffmpeg` CLI at the same preset. It prints figures and asserts nothing.
//!
//! Run: `cargo bench -p dora-video-recorder --bench encode` (or `scripts/bench.sh`, which also sets
//! up the reference recorder). Environment:
//! - `BENCH_QUICK=1`: one small case instead of the full 640x480 and 1920x1080 cases;
//! - `BENCH_RUNS=n`: rounds per case (default 3); each row is the median round by wall time;
//! - `ROOMKIT_PYTHON=path/to/python`: a Python with PyAV and roomkit (see `scripts/roomkit_pyav.py`);
//!   without it the reference recorder is skipped;
//! - `ROOMKIT_SCRIPT=path`: the reference runner, default `scripts/roomkit_pyav.py` in this workspace.
//!
//! Method. Every contender runs as a child process of this binary, one at a time, reading the same
//! raw file from the page cache and writing an MP4 into a temp folder. Contenders take turns within
//! each round, so a slow patch of the machine hits all of them; the table shows the median round
//! and the range of wall times. Our pipeline runs in a
//! re-exec of this binary (`ENCODE_BENCH_CHILD=1`), so that its memory and CPU are its own. For each
//! child the parent takes the wall time from spawn to exit and reads the child's CPU time (user +
//! system) and peak RSS (`ru_maxrss`) from `wait4`. Process start-up counts for everyone (Python's
//! imports included; roomkit's own in-loop time is printed below its table). Linux carries the RSS
//! high-water mark of the address space a child replaces at `exec` (ours, via fork/posix_spawn) into
//! the child's `ru_maxrss`, so each figure is max(child's own peak, our RSS at the spawn): the parent
//! keeps no frames in memory and prints its own peak as that floor. Each output is decoded with
//! `ffprobe -count_frames`; a frame count different from the input's prints MISMATCH. The machine's
//! busy CPU time (`/proc/stat`) during each run minus the child's own is printed per case as the
//! background load: figures taken while it is far from zero were disturbed by other work.

use std::{
    fs::{self, File},
    io::Read,
    path::{Path, PathBuf},
    process::{Command, ExitCode, Stdio},
    time::Instant,
};

use arrow::buffer::Buffer;
use dora_video_recorder::{
    encode::{
        Container, EncoderKind, EncoderSettings, Latency, MP4_FRAGMENT_MICROS, Quality, RateControl, VideoWriter,
        init_ffmpeg,
    },
    frame::{Frame, FrameFormat, PixelEncoding},
    timing::{FrameRate, PtsClock, TimestampMode},
};

/// Set in the re-executed child that runs our pipeline alone.
const CHILD_ENV: &str = "ENCODE_BENCH_CHILD";
/// `1` runs only the small case.
const QUICK_ENV: &str = "BENCH_QUICK";
/// Rounds per case.
const RUNS_ENV: &str = "BENCH_RUNS";
const DEFAULT_RUNS: usize = 3;
/// Python interpreter with PyAV and roomkit installed.
const ROOMKIT_PYTHON_ENV: &str = "ROOMKIT_PYTHON";
/// Overrides the path of the reference runner script.
const ROOMKIT_SCRIPT_ENV: &str = "ROOMKIT_SCRIPT";
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
    /// The same with `FSYNC=false`: the difference is what syncing each fragment costs.
    OursWithoutFsync,
    /// The `ffmpeg` command-line tool.
    FfmpegCli,
    /// roomkit's PyAVVideoRecorder through `roomkit_pyav.py`.
    Roomkit,
}

impl Contender {
    fn name(self) -> &'static str {
        match self {
            Self::Ours => "ours (VideoWriter)",
            Self::OursWithoutFsync => "ours, FSYNC=false",
            Self::FfmpegCli => "ffmpeg CLI",
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
    /// Extra text printed below the table.
    note: Option<String>,
}

#[derive(Debug, Clone, Default)]
struct Probe {
    codec: String,
    frames: u64,
}

fn main() -> ExitCode {
    if std::env::var_os(CHILD_ENV).is_some() {
        return child_main();
    }
    let quick = std::env::var(QUICK_ENV).is_ok_and(|v| v == "1");
    let cases: &[Case] = if quick { &QUICK_CASES } else { &FULL_CASES };
    let work = std::env::temp_dir().join(format!("encode-bench-{}", std::process::id()));
    fs::create_dir_all(&work).expect("create the bench temp folder");
    let rounds = std::env::var(RUNS_ENV).ok().and_then(|v| v.parse().ok()).filter(|n| *n > 0).unwrap_or(DEFAULT_RUNS);
    let roomkit = roomkit_setup();
    println!(
        "encode bench: libx264, crf {CRF}, GOP {GOP_SECS} s, yuv420p, MP4; {} cores; median of {rounds} rounds",
        cores()
    );
    for &case in cases {
        bench_case(case, &work, roomkit.as_ref(), rounds);
    }
    println!("\nparent peak RSS {:.1} MB (a floor for every RSS figure above)", own_peak_rss_mb());
    fs::remove_dir_all(&work).expect("remove the bench temp folder");
    ExitCode::SUCCESS
}

/// Generates the case's frames, runs every contender on them `rounds` times, taking turns, and
/// prints the table.
fn bench_case(case: Case, work: &Path, roomkit: Option<&Roomkit>, rounds: usize) {
    println!("\n## {}", case.label());
    if roomkit.is_none() {
        println!(
            "roomkit: skipped (set {ROOMKIT_PYTHON_ENV} to a Python with PyAV and roomkit; scripts/bench.sh does)"
        );
    }
    let raw = work.join(format!("{}x{}.bgr", case.width, case.height));
    generate_frames(case, &raw);
    let jobs = jobs(roomkit.is_some());
    let mut samples: Vec<Vec<Run>> = vec![Vec::new(); jobs.len()];
    for _ in 0..rounds {
        for (job, samples) in jobs.iter().zip(&mut samples) {
            samples.extend(run_job(*job, case, &raw, work, roomkit));
        }
    }
    let all_runs: Vec<Run> = samples.iter().flatten().cloned().collect();
    let runs: Vec<Run> = samples.into_iter().filter_map(median_run).collect();
    print_table(case, &runs);
    report_mismatches(case, &all_runs);
    report_background(&all_runs);
    fs::remove_file(&raw).expect("remove the raw frames");
}

/// One contender at one preset.
#[derive(Debug, Clone, Copy)]
struct Job {
    contender: Contender,
    preset: &'static str,
}

/// Ours and the CLI at our default preset and at libx264's default, then the reference recorder
/// (which runs at libx264's default).
fn jobs(with_roomkit: bool) -> Vec<Job> {
    let mut jobs = Vec::new();
    for preset in [FAST_PRESET, DEFAULT_X264_PRESET] {
        jobs.push(Job { contender: Contender::Ours, preset });
        jobs.push(Job { contender: Contender::FfmpegCli, preset });
    }
    jobs.push(Job { contender: Contender::OursWithoutFsync, preset: FAST_PRESET });
    if with_roomkit {
        jobs.push(Job { contender: Contender::Roomkit, preset: DEFAULT_X264_PRESET });
    }
    jobs
}

fn run_job(job: Job, case: Case, raw: &Path, work: &Path, roomkit: Option<&Roomkit>) -> Option<Run> {
    match (job.contender, roomkit) {
        (Contender::Ours | Contender::OursWithoutFsync, _) => run_ours(job.contender, case, raw, work, job.preset),
        (Contender::FfmpegCli, _) => run_ffmpeg_cli(case, raw, work, job.preset),
        (Contender::Roomkit, Some(roomkit)) => run_roomkit(case, raw, work, roomkit),
        (Contender::Roomkit, None) => None,
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

// ---------------------------------------------------------------------------------------------
// Contenders

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

fn run_ffmpeg_cli(case: Case, raw: &Path, work: &Path, preset: &'static str) -> Option<Run> {
    let out = work.join(format!("ffmpeg-{preset}.mp4"));
    let mut command = Command::new("ffmpeg");
    command
        .args(["-hide_banner", "-loglevel", "error", "-nostats", "-y"])
        .args(["-f", "rawvideo", "-pix_fmt", "bgr24", "-s", &format!("{}x{}", case.width, case.height)])
        .args(["-r", &case.fps.to_string(), "-i"])
        .arg(raw)
        .args(["-c:v", "libx264", "-preset", preset, "-crf", &CRF.to_string()])
        .args(["-g", &case.gop_frames().to_string(), "-bf", "0", "-pix_fmt", "yuv420p"])
        .args(["-x264-params", &x264_params(case)])
        .args(["-movflags", FRAGMENTED_MP4_FLAGS, "-frag_duration", &MP4_FRAGMENT_MICROS.to_string()])
        .arg(&out);
    let (usage, _) = measure(Contender::FfmpegCli, "ffmpeg", command)?;
    Some(finished_run(Contender::FfmpegCli, preset, usage, &out, None))
}

/// The recorder's default look-ahead, so the CLI runs at identical settings.
fn x264_params(case: Case) -> String {
    match Latency::for_fps(f64::from(case.fps)) {
        Latency::Lookahead(frames) => format!("rc-lookahead={frames}"),
        Latency::Zero => String::new(),
    }
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
    Run { contender, preset, usage, wall_range_secs, bytes, probe, note }
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

fn print_table(case: Case, runs: &[Run]) {
    println!();
    println!(
        "| encoder | preset | seconds (range) | fps | CPU s | peak RSS MB | bytes | time / ffmpeg | CPU / ffmpeg | size / ffmpeg | frames (codec) |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for run in runs {
        let baseline = runs.iter().find(|r| r.contender == Contender::FfmpegCli && r.preset == run.preset);
        let ratio = |ours: f64, theirs: f64| format!("{:.2}", ours / theirs);
        let [time_ratio, cpu_ratio, size_ratio] = baseline.map_or_else(
            || ["-".to_owned(), "-".to_owned(), "-".to_owned()],
            |b| {
                [
                    ratio(run.usage.wall_secs, b.usage.wall_secs),
                    ratio(run.usage.cpu_secs, b.usage.cpu_secs),
                    ratio(run.bytes as f64, b.bytes as f64),
                ]
            },
        );
        let (fastest, slowest) = run.wall_range_secs;
        println!(
            "| {} | {} | {:.2} ({fastest:.2}-{slowest:.2}) | {:.1} | {:.2} | {:.0} | {} | {} | {} | {} | {} ({}) |",
            run.contender.name(),
            run.preset,
            run.usage.wall_secs,
            f64::from(case.frames) / run.usage.wall_secs,
            run.usage.cpu_secs,
            run.usage.peak_rss_mb,
            run.bytes,
            time_ratio,
            cpu_ratio,
            size_ratio,
            run.probe.frames,
            run.probe.codec,
        );
    }
    for note in runs.iter().filter_map(|run| run.note.as_ref()) {
        println!("note: {note}");
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

/// Feeds every frame of `raw` through [`VideoWriter`] exactly as the node's worker does: one new
/// buffer per frame (dora hands over a buffer per message), PTS from the source clock.
fn encode_with_library(case: Case, raw: &Path, preset: &str, out: &Path) {
    init_ffmpeg().expect("initialize FFmpeg");
    let fps = FrameRate { num: case.fps, den: 1 };
    let mut clock = PtsClock::new(TimestampMode::Source, fps, true);
    let settings = EncoderSettings {
        container: Container::Mp4,
        quality: Quality::new(preset, RateControl::Crf(CRF), case.gop_frames(), f64::from(case.fps)),
        fps,
        time_base: clock.time_base(),
        fsync: std::env::var(FSYNC_ENV).map_or(true, |v| v != "0"),
    };
    let format = FrameFormat { encoding: PixelEncoding::Bgr8, width: case.width, height: case.height };
    let (mut writer, _) =
        VideoWriter::create(out, format, &[EncoderKind::Libx264], &settings, clock.frame_duration(), &[])
            .expect("open libx264 and the output file");
    let mut reader = File::open(raw).expect("open the raw frames");
    let frame_nanos = 1_000_000_000 / u64::from(case.fps);
    for index in 0..u64::from(case.frames) {
        // Read into fresh capacity, not a zeroed vector: the CLI does not zero its packets either.
        let mut bytes = Vec::with_capacity(case.frame_bytes());
        (&mut reader).take(case.frame_bytes() as u64).read_to_end(&mut bytes).expect("read one raw frame");
        assert_eq!(bytes.len(), case.frame_bytes(), "raw file ended early");
        let sent_nanos = index * frame_nanos;
        let frame = Frame { format, sent_nanos, data: Buffer::from_vec(bytes), ids: Default::default() };
        writer.write(&frame, clock.next_pts(sent_nanos)).expect("encode a frame");
    }
    writer.finish().expect("finish the file");
}
