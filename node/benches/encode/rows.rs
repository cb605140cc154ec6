//! The table of one case: its rows, their rounds, and how they are printed.
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
//! from zero were disturbed by other work. The cost of the per-fragment `fdatasync` is the
//! FSYNC=false row's, printed as a ratio below each table.

use std::path::Path;

use crate::{
    DEFAULT_X264_PRESET, FAST_PRESET, ROOMKIT_PYTHON_ENV,
    case::{Case, CaseContext},
    contenders::{run_ffmpeg_cli, run_ours, run_roomkit},
    dataflow::{dataflow_round, pace_note},
    flow::Pace,
    losses::Losses,
    measure::{Usage, cores},
};

/// Who encodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Contender {
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
    /// JPEG frames decoded by the node's decoder and encoded by `VideoWriter` (MJPEG section).
    OursMjpeg,
    /// The `ffmpeg` command-line tool decoding the same JPEG frames (MJPEG section).
    FfmpegMjpeg,
}

impl Contender {
    /// The row's name in the table.
    pub fn name(self) -> &'static str {
        match self {
            Self::Ours => "ours, in-process",
            Self::Dataflow => "ours, whole dataflow",
            Self::FfmpegCli => "ffmpeg CLI, bgr24 in",
            Self::FfmpegYuv => "ffmpeg CLI, yuv420p in (x264 only)",
            Self::OursWithoutFsync => "ours, in-process, FSYNC=false",
            Self::Roomkit => "roomkit PyAV",
            Self::OursMjpeg => "ours: libjpeg-turbo + VideoWriter",
            Self::FfmpegMjpeg => "ffmpeg CLI, -f mjpeg in",
        }
    }
}

/// One finished run.
#[derive(Debug, Clone)]
pub struct Run {
    /// Who encoded.
    pub contender: Contender,
    /// x264 preset.
    pub preset: &'static str,
    /// What the run used.
    pub usage: Usage,
    /// Fastest and slowest wall time over the rounds.
    pub wall_range_secs: (f64, f64),
    /// Size of the file.
    pub bytes: u64,
    /// Codec and decoded frame count from ffprobe.
    pub probe: Decoded,
    /// Frames sent but not in the file (dataflow rows only).
    pub lost: Option<Losses>,
    /// Extra text printed below the table.
    pub note: Option<String>,
}

impl Run {
    /// Frames in the file per wall second.
    pub fn fps(&self) -> f64 {
        self.probe.frames as f64 / self.usage.wall_secs
    }

    /// CPU milliseconds per frame in the file.
    pub fn cpu_ms_per_frame(&self) -> f64 {
        1000.0 * self.usage.cpu_secs / self.probe.frames.max(1) as f64
    }
}

/// What ffprobe decodes from a file's first video stream.
#[derive(Debug, Clone)]
pub struct Decoded {
    /// Codec name, `unreadable` when ffprobe cannot read the file.
    pub codec: String,
    /// Frames decoded.
    pub frames: u64,
}

impl Decoded {
    /// Decodes every frame of `path` (`e2e::try_probe`); an unreadable file is 0 frames.
    pub fn of(path: &Path) -> Self {
        match e2e::try_probe(path) {
            Ok(probe) => Self { codec: probe.codec, frames: probe.frames },
            Err(_) => Self { codec: "unreadable".to_owned(), frames: 0 },
        }
    }
}

/// One contender at one preset, with what its rounds gave so far.
#[derive(Debug, Clone)]
pub struct Job {
    /// Who encodes.
    pub contender: Contender,
    /// x264 preset.
    pub preset: &'static str,
    /// The rounds kept so far.
    pub samples: Vec<Run>,
    /// Dataflow rows: the camera's timer now.
    pub pace: Pace,
    /// Dataflow rows: how often the camera was slowed down...
    pub slowdowns: u32,
    /// ...and why.
    pub pace_log: Vec<String>,
    /// Dataflow rows: runs so far...
    pub runs: u32,
    /// ...and those that missed the camera's last frame(s).
    pub tail_runs: u32,
}

impl Job {
    /// A job without samples, its camera (if any) unpaced.
    pub fn new(contender: Contender, preset: &'static str) -> Self {
        let pace = Pace::Unpaced;
        Self { contender, preset, samples: Vec::new(), pace, slowdowns: 0, pace_log: Vec::new(), runs: 0, tail_runs: 0 }
    }
}

/// Runs every contender on the case's frames `rounds` times, taking turns, and prints the table.
pub fn bench_case(context: &CaseContext, rounds: usize) {
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
        (Contender::Roomkit, None) | (Contender::Dataflow | Contender::OursMjpeg | Contender::FfmpegMjpeg, _) => None,
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

/// The row of `contender` at `preset`, if it ran.
fn find_run<'a>(runs: &'a [Run], contender: Contender, preset: &str) -> Option<&'a Run> {
    runs.iter().find(|run| run.contender == contender && run.preset == preset)
}

/// `value / base` with two decimals, `-` without a base.
pub fn ratio(value: f64, base: Option<f64>) -> String {
    base.map_or_else(|| "-".to_owned(), |base| format!("{:.2}", value / base))
}

/// Prints the case's table: one row per contender and preset.
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
