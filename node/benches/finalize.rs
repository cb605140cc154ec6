//! Finalize benchmark: what it costs to give a long fragmented MP4 a complete index at a clean
//! stop, our way ([`finalize_hybrid`]: append a `moov`, retire the fragment boxes in place) next to
//! FFmpeg's `movflags=+global_sidx` (a segment index written at the trailer by shifting every byte
//! after the header forward, a full rewrite), and what a kill in the middle of that shift leaves.
//! It prints figures and asserts nothing about timing.
//!
//! Run: `cargo bench -p dora-video-recorder --bench finalize` (under a minute on 2 cores, most of
//! it decoding the finalized file once to check it; about 1.5 GB of free disk space).
//! `BENCH_QUICK=1` makes a 1-minute recording and times one round: a check that it runs.
//!
//! Method.
//! 1. The recording: 10 s of 1920x1080 30 fps H.264 (libx264 veryfast, crf 23, GOP 60, no
//!    B-frames) encoded once from `testsrc2` with noise, then looped 60 times by stream copy into
//!    the fragmented MP4 the recorder writes (`movflags` `fmp4::FRAGMENTED_MOVFLAGS`,
//!    0.3 s fragments): 10 minutes, 18000 frames.
//! 2. Timings, in a folder under the workspace's `target/` (the real disk, not a tmpfs), in
//!    rounds that take turns so a slow patch of the machine hits every contender: a `cp` of the
//!    recording (a full rewrite of that many bytes, for context; the copy is what the next step
//!    finalizes), [`finalize_hybrid`] on that copy, and the `ffmpeg` CLI remuxing the recording
//!    by stream copy with the same flags, without and with `+global_sidx`: the difference is the
//!    cost of the trailer shift. Dirty pages are flushed (`sync`) before each timed step. The
//!    hybrid conversion syncs each of its steps itself; for the others the table also shows the
//!    time until an `fsync` of the output returns, since a rewrite is only safe once on disk.
//! 3. The kill: the `+global_sidx` remux runs again and gets SIGKILL once it has rewritten a
//!    given share of the file. FFmpeg's first pass stops short of the input's size (the `mfra`
//!    comes after the shift) and the shift happens in place (the file size barely changes), so
//!    the progress is read from the bytes the process has written (`wchar` in `/proc/<pid>/io`):
//!    past the input's size the shift has started, and every further byte is a rewritten one.
//!    The result is probed with `ffprobe` and decoded with `ffmpeg -v error -i F -f null -`.
//! 4. The live header and startup repair, on the recording as a kill leaves it (no `mfra`):
//!    [`LiveDurations::update`] once per fragment, as the recorder's sync thread calls it after
//!    each `fdatasync` (the time per call, without the sync itself), then
//!    [`trim_to_last_fragment`] on that file (its header vouches for every fragment: the `moof`s
//!    and the samples of the last 10 fragments are read) and on a copy whose header states no
//!    length (a file of the previous release: every sample is read and checked). The file is in
//!    the page cache for both.
use std::{
    fs::{self, File},
    io::{Read, Seek, SeekFrom},
    path::{Path, PathBuf},
    process::{Child, Command, ExitCode, Stdio},
    thread,
    time::{Duration, Instant},
};

use dora_video_recorder::{
    encode::MP4_FRAGMENT_MICROS,
    fmp4::{FRAGMENTED_MOVFLAGS, HybridOutcome, LiveDurations, TrimOutcome, finalize_hybrid, trim_to_last_fragment},
};

/// Frame size and rate of the recording.
const WIDTH: u32 = 1920;
const HEIGHT: u32 = 1080;
const FPS: u32 = 30;
/// Length of the encoded clip the recording loops.
const SEED_SECS: u32 = 10;
/// Extra passes over the clip (`-stream_loop`): 60 plays of 10 s make 10 minutes.
const EXTRA_LOOPS: u32 = 59;
/// The same with `BENCH_QUICK`: 1 minute.
const QUICK_EXTRA_LOOPS: u32 = 5;
/// Same quality and preset as the recorder's default.
const CRF: u8 = 23;
const PRESET: &str = "veryfast";
/// Keyframe interval in frames (2 s).
const GOP_FRAMES: u32 = 60;
/// Rounds per timed step; the table shows the median (1 with `BENCH_QUICK`).
const ROUNDS: usize = 3;
/// Shares of the file the `+global_sidx` shift has rewritten when it gets SIGKILL.
const KILL_POINTS: [f64; 3] = [0.1, 0.5, 0.9];
/// How often the kill experiment reads the bytes FFmpeg has written.
const POLL_INTERVAL: Duration = Duration::from_micros(100);
/// Chunk size when comparing files.
const COMPARE_CHUNK: usize = 8 << 20;
/// The crate's test that checks every intermediate state of [`finalize_hybrid`].
const STEP_TEST: &str = "node/tests/fmp4.rs: a_crash_between_any_two_commit_steps_leaves_a_playable_file";

fn main() -> ExitCode {
    let work = bench_dir();
    if work.exists() {
        fs::remove_dir_all(&work).expect("remove the folder a previous run left");
    }
    fs::create_dir_all(&work).expect("create the bench folder");
    println!("# finalize bench: hybrid MP4 vs ffmpeg +global_sidx\n");
    println!("machine: {} cores; {}", cores(), ffmpeg_version());
    println!("folder: {} (on the real disk, deleted at the end)", work.display());

    let recording = make_recording(&work);
    println!(
        "recording: {}x{} {} fps H.264, {} frames, {} ({} bytes), fragmented with {} and {} ms fragments",
        WIDTH,
        HEIGHT,
        FPS,
        recording.frames,
        format_bytes(recording.bytes),
        recording.bytes,
        FRAGMENTED_MOVFLAGS,
        MP4_FRAGMENT_MICROS / 1000,
    );

    let timings = time_rounds(&recording, &work);
    let hybrid_check = check_playback(&timings.hybrid_file);
    let shift_cost = timings.sidx.median_wall().saturating_sub(timings.plain.median_wall());
    println!("\nkill experiment: the +global_sidx shift took about {} here", format_duration(shift_cost));
    let kills: Vec<KillRun> =
        KILL_POINTS.iter().map(|&share| kill_during_shift(&recording, &work.join("killed.mp4"), share)).collect();

    let repair = time_live_and_repair(&recording, &work);

    print_timing_table(&recording, &timings);
    print_kill_table(&recording, &kills, &hybrid_check, timings.hybrid.median_wall());
    print_repair_table(&recording, &repair);

    fs::remove_dir_all(&work).expect("remove the bench folder");
    ExitCode::SUCCESS
}

/// `target/finalize-bench` in the workspace: on the disk the workspace is on, unlike a tmpfs
/// `/tmp`, so that writes and syncs cost what they cost on a recorder's disk.
fn bench_dir() -> PathBuf {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("the package folder is in the workspace");
    workspace.join("target").join("finalize-bench")
}

fn cores() -> usize {
    thread::available_parallelism().map_or(1, usize::from)
}

/// First line of `ffmpeg -version`.
fn ffmpeg_version() -> String {
    let output =
        Command::new("ffmpeg").arg("-version").output().expect("run ffmpeg (install it: apt-get install ffmpeg)");
    String::from_utf8_lossy(&output.stdout).lines().next().unwrap_or("ffmpeg version unknown").to_owned()
}

// ---------------------------------------------------------------------------------------------
// The recording

/// The 10-minute fragmented MP4 every step starts from.
struct Recording {
    path: PathBuf,
    bytes: u64,
    frames: u64,
}

/// Encodes the clip once, then loops it by stream copy into the recorder's fragmented MP4.
fn make_recording(work: &Path) -> Recording {
    let seed = work.join("seed.mp4");
    let mut encode = ffmpeg();
    encode
        .args(["-f", "lavfi", "-i"])
        .arg(format!("testsrc2=size={WIDTH}x{HEIGHT}:rate={FPS},noise=alls=4:allf=t"))
        .args(["-t", &SEED_SECS.to_string(), "-c:v", "libx264", "-preset", PRESET, "-crf", &CRF.to_string()])
        .args(["-g", &GOP_FRAMES.to_string(), "-bf", "0", "-pix_fmt", "yuv420p"])
        .arg(&seed);
    run(encode, "encode the seed clip");

    let path = work.join("recording.mp4");
    let mut looped = ffmpeg();
    let loops = if quick() { QUICK_EXTRA_LOOPS } else { EXTRA_LOOPS };
    looped.args(["-stream_loop", &loops.to_string(), "-i"]).arg(&seed).args(["-c", "copy"]);
    add_fragment_options(&mut looped, false);
    looped.arg(&path);
    run(looped, "loop the seed clip into the recording");
    fs::remove_file(&seed).expect("remove the seed clip");

    let bytes = file_len(&path);
    let frames = count_packets(&path);
    Recording { path, bytes, frames }
}

/// `ffmpeg` without stdin, banner or progress, overwriting its output, printing errors only.
fn ffmpeg() -> Command {
    let mut command = Command::new("ffmpeg");
    command.args(["-nostdin", "-hide_banner", "-nostats", "-v", "error", "-y"]);
    command
}

/// The recorder's muxer options, plus `+global_sidx` when asked.
fn add_fragment_options(command: &mut Command, global_sidx: bool) {
    let flags = if global_sidx { format!("{FRAGMENTED_MOVFLAGS}+global_sidx") } else { FRAGMENTED_MOVFLAGS.to_owned() };
    command.args(["-movflags", &flags, "-frag_duration", &MP4_FRAGMENT_MICROS.to_string()]);
}

/// The stream-copy remux of `input` into `output` the timings and the kill experiment run.
fn remux(input: &Path, output: &Path, global_sidx: bool) -> Command {
    let mut command = ffmpeg();
    command.arg("-i").arg(input).args(["-c", "copy"]);
    add_fragment_options(&mut command, global_sidx);
    command.arg(output);
    command
}

/// Runs `command` to completion; a failure ends the bench.
fn run(mut command: Command, what: &str) {
    let status = command.status().unwrap_or_else(|error| panic!("{what}: cannot start: {error}"));
    assert!(status.success(), "{what}: failed with {status}");
}

fn file_len(path: &Path) -> u64 {
    fs::metadata(path).unwrap_or_else(|error| panic!("size of {}: {error}", path.display())).len()
}

/// Video packets (frames) in the file, without decoding.
fn count_packets(path: &Path) -> u64 {
    let output = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-count_packets"])
        .args(["-show_entries", "stream=nb_read_packets", "-of", "default=noprint_wrappers=1:nokey=1"])
        .arg(path)
        .output()
        .expect("run ffprobe (install it: apt-get install ffmpeg)");
    String::from_utf8_lossy(&output.stdout).trim().parse().expect("ffprobe counts the recording's packets")
}

// ---------------------------------------------------------------------------------------------
// Timings

/// The wall time of one run of a step, and the time until its output was on disk.
#[derive(Debug, Clone, Copy)]
struct Timing {
    wall: Duration,
    synced: Duration,
}

/// Every round of one step.
#[derive(Debug, Default)]
struct Samples(Vec<Timing>);

impl Samples {
    fn walls(&self) -> Vec<Duration> {
        self.0.iter().map(|timing| timing.wall).collect()
    }

    fn median_wall(&self) -> Duration {
        median(self.walls())
    }

    fn median_synced(&self) -> Duration {
        median(self.0.iter().map(|timing| timing.synced).collect())
    }

    /// Fastest and slowest wall time.
    fn range(&self) -> (Duration, Duration) {
        let walls = self.walls();
        (walls.iter().copied().min().unwrap_or_default(), walls.iter().copied().max().unwrap_or_default())
    }
}

fn median(mut values: Vec<Duration>) -> Duration {
    values.sort_unstable();
    values.get(values.len() / 2).copied().unwrap_or_default()
}

/// Everything the timed rounds measured.
struct Timings {
    copy: Samples,
    hybrid: Samples,
    plain: Samples,
    sidx: Samples,
    /// What the first [`finalize_hybrid`] call reported.
    outcome: HybridOutcome,
    /// Bytes the hybrid file gained at its end.
    appended: u64,
    /// Bytes of the original extent that differ after [`finalize_hybrid`].
    changed: u64,
    /// Size of the `+global_sidx` output.
    sidx_bytes: u64,
    /// `ftyp` + `moov` at the head of the plain remux: what the shift does not move.
    header_bytes: u64,
    /// The first finalized file, kept for the playback check.
    hybrid_file: PathBuf,
}

/// Whether `BENCH_QUICK` asks for a short run.
fn quick() -> bool {
    std::env::var_os("BENCH_QUICK").is_some()
}

/// Rounds per timed step.
fn rounds() -> usize {
    if quick() { 1 } else { ROUNDS }
}

/// Runs every step [`rounds`] times, taking turns.
fn time_rounds(recording: &Recording, work: &Path) -> Timings {
    let (mut copy, mut hybrid, mut plain, mut sidx) = Default::default();
    let mut first = None;
    let plain_out = work.join("remux-plain.mp4");
    let sidx_out = work.join("remux-global-sidx.mp4");
    let (mut sidx_bytes, mut header_bytes) = (0, 0);
    for round in 0..rounds() {
        let hybrid_file = work.join(format!("hybrid-{round}.mp4"));
        push(&mut copy, time_copy(&recording.path, &hybrid_file));
        let (timing, outcome) = time_finalize(&hybrid_file);
        push(&mut hybrid, timing);
        if round == 0 {
            let appended = file_len(&hybrid_file).saturating_sub(recording.bytes);
            let changed = changed_bytes(&recording.path, &hybrid_file, recording.bytes);
            first = Some((outcome, appended, changed, hybrid_file));
        } else {
            fs::remove_file(&hybrid_file).expect("remove a finalized copy");
        }
        push(&mut plain, time_command(remux(&recording.path, &plain_out, false), &plain_out));
        header_bytes = head_bytes(&plain_out);
        fs::remove_file(&plain_out).expect("remove the plain remux");
        push(&mut sidx, time_command(remux(&recording.path, &sidx_out, true), &sidx_out));
        sidx_bytes = file_len(&sidx_out);
        fs::remove_file(&sidx_out).expect("remove the +global_sidx remux");
    }
    let (outcome, appended, changed, hybrid_file) = first.expect("at least one round");
    Timings { copy, hybrid, plain, sidx, outcome, appended, changed, sidx_bytes, header_bytes, hybrid_file }
}

fn push(samples: &mut Samples, timing: Timing) {
    samples.0.push(timing);
}

/// `cp source target`, timed until the copy is on disk.
fn time_copy(source: &Path, target: &Path) -> Timing {
    let mut command = Command::new("cp");
    command.arg(source).arg(target);
    time_command(command, target)
}

/// Runs `command`, which writes `output`, from a clean page cache state: the wall time of the
/// command, and the time until an `fsync` of its output returned.
fn time_command(mut command: Command, output: &Path) -> Timing {
    flush_disk();
    let start = Instant::now();
    let status = command.status().expect("start the timed command");
    let wall = start.elapsed();
    assert!(status.success(), "timed command failed with {status}: {command:?}");
    File::open(output).and_then(|file| file.sync_all()).expect("fsync the output");
    Timing { wall, synced: start.elapsed() }
}

/// [`finalize_hybrid`] on `path`, which syncs each of its steps itself.
fn time_finalize(path: &Path) -> (Timing, HybridOutcome) {
    flush_disk();
    let start = Instant::now();
    let outcome = finalize_hybrid(path).expect("finalize the copy of the recording");
    let wall = start.elapsed();
    (Timing { wall, synced: wall }, outcome)
}

/// Writes every dirty page to disk, so a timed step does not pay for the previous one's.
fn flush_disk() {
    run(Command::new("sync"), "sync");
}

/// How many of the first `len` bytes of `a` and `b` differ.
fn changed_bytes(a: &Path, b: &Path, len: u64) -> u64 {
    let open = |path: &Path| File::open(path).unwrap_or_else(|error| panic!("open {}: {error}", path.display()));
    let (mut a, mut b) = (open(a), open(b));
    let (mut left, mut right) = (vec![0; COMPARE_CHUNK], vec![0; COMPARE_CHUNK]);
    let mut remaining = len;
    let mut changed = 0;
    while remaining > 0 {
        let chunk = usize::try_from(remaining).map_or(COMPARE_CHUNK, |rest| rest.min(COMPARE_CHUNK));
        let (left, right) = (&mut left[..chunk], &mut right[..chunk]);
        a.read_exact(left).and_then(|()| b.read_exact(right)).expect("read both files");
        changed += left.iter().zip(right.iter()).filter(|(x, y)| x != y).count() as u64;
        remaining -= chunk as u64;
    }
    changed
}

/// Size of the first two top-level boxes (`ftyp`, `moov`), read from their 32-bit size fields.
fn head_bytes(path: &Path) -> u64 {
    let mut file = File::open(path).expect("open the remux");
    let mut total = 0;
    for _ in 0..2 {
        let mut header = [0; 8];
        file.read_exact(&mut header).expect("read a box header");
        let size = u64::from(u32::from_be_bytes([header[0], header[1], header[2], header[3]]));
        std::io::copy(&mut (&mut file).take(size.saturating_sub(8)), &mut std::io::sink()).expect("skip a box");
        total += size;
    }
    total
}

// ---------------------------------------------------------------------------------------------
// Playback checks and the kill experiment

/// What FFmpeg makes of a file.
#[derive(Debug)]
struct Playback {
    /// `ffprobe` exits successfully and reports a duration.
    duration_secs: Option<f64>,
    /// Frames `ffmpeg -f null` decoded.
    frames: u64,
    /// Lines `ffmpeg -v error -i F -f null -` printed.
    error_lines: usize,
}

/// Probes `path` with `ffprobe`, then decodes it completely.
fn check_playback(path: &Path) -> Playback {
    let probe = Command::new("ffprobe")
        .args(["-v", "error", "-show_entries", "format=duration", "-of", "default=noprint_wrappers=1:nokey=1"])
        .arg(path)
        .output()
        .expect("run ffprobe");
    let duration_secs =
        probe.status.success().then(|| String::from_utf8_lossy(&probe.stdout).trim().parse().ok()).flatten();
    let decode = ffmpeg_decode(path);
    let frames = String::from_utf8_lossy(&decode.stdout)
        .lines()
        .rev()
        .find_map(|line| line.strip_prefix("frame="))
        .and_then(|count| count.trim().parse().ok())
        .unwrap_or(0);
    let error_lines = String::from_utf8_lossy(&decode.stderr).lines().filter(|line| !line.trim().is_empty()).count();
    Playback { duration_secs, frames, error_lines }
}

/// `ffmpeg -v error -i path -f null -`, with the frame count on stdout (`-progress`).
fn ffmpeg_decode(path: &Path) -> std::process::Output {
    Command::new("ffmpeg")
        .args(["-nostdin", "-hide_banner", "-nostats", "-v", "error", "-progress", "pipe:1", "-i"])
        .arg(path)
        .args(["-f", "null", "-"])
        .output()
        .expect("run ffmpeg to decode")
}

/// One kill of the `+global_sidx` remux.
struct KillRun {
    /// Share of the file the shift was asked to have rewritten.
    target_share: f64,
    result: KillResult,
}

enum KillResult {
    /// SIGKILL landed during the shift.
    Killed {
        /// Share of the file rewritten by then, as far as the last poll saw.
        share: f64,
        /// Time from the first poll that saw the shift running to the kill.
        after_shift_start: Duration,
        playback: Playback,
    },
    /// FFmpeg exited before reaching the kill point.
    FinishedFirst,
    /// `/proc/<pid>/io` is not readable (not Linux?): no way to see the shift.
    Unobservable,
}

/// Remuxes the recording with `+global_sidx` into `output` and sends SIGKILL once the trailer
/// shift has rewritten `share` of the file, then checks what is left.
fn kill_during_shift(recording: &Recording, output: &Path, share: f64) -> KillRun {
    if output.exists() {
        fs::remove_file(output).expect("remove the previous kill's output");
    }
    flush_disk();
    let mut child =
        remux(&recording.path, output, true).stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("start ffmpeg");
    let kill_at = recording.bytes + (share * recording.bytes as f64) as u64;
    let mut shift_start = None;
    let result = loop {
        if exited(&mut child) {
            break KillResult::FinishedFirst;
        }
        let Some(written) = bytes_written(child.id()) else {
            break if exited(&mut child) { KillResult::FinishedFirst } else { KillResult::Unobservable };
        };
        // The first pass writes a little less than the input (no `mfra` yet): past the input's
        // size, FFmpeg is rewriting the file.
        if shift_start.is_none() && written >= recording.bytes {
            shift_start = Some(Instant::now());
        }
        if written >= kill_at {
            child.kill().expect("SIGKILL ffmpeg");
            let after_shift_start = shift_start.map(|start| start.elapsed()).unwrap_or_default();
            child.wait().expect("reap ffmpeg");
            let share = written.saturating_sub(recording.bytes) as f64 / recording.bytes as f64;
            break KillResult::Killed { share, after_shift_start, playback: check_playback(output) };
        }
        thread::sleep(POLL_INTERVAL);
    };
    if !matches!(result, KillResult::Killed { .. }) {
        // Never leave a child behind (a no-op when it exited).
        let _ = child.kill();
        let _ = child.wait();
    }
    fs::remove_file(output).ok();
    KillRun { target_share: share, result }
}

/// Whether `child` has exited (it is reaped then).
fn exited(child: &mut Child) -> bool {
    child.try_wait().expect("poll ffmpeg").is_some()
}

/// Bytes the process has passed to `write` so far (`wchar`), on Linux.
fn bytes_written(pid: u32) -> Option<u64> {
    let io = fs::read_to_string(format!("/proc/{pid}/io")).ok()?;
    io.lines().find_map(|line| line.strip_prefix("wchar:")).and_then(|count| count.trim().parse().ok())
}

// ---------------------------------------------------------------------------------------------
// The live header and startup repair

/// What the live header updates and the repair cost.
struct RepairTimings {
    fragments: usize,
    /// Time of each [`LiveDurations::update`] call, one per fragment.
    updates: Vec<Duration>,
    /// Length the header states after the last update, in seconds.
    stated_secs: f64,
    /// Trim of the file whose header vouches for every fragment.
    vouched: (Duration, TrimOutcome),
    /// Trim of the file whose header states no length: every sample checked.
    unvouched: (Duration, TrimOutcome),
    /// Bytes of the killed file.
    bytes: u64,
}

/// Measures step 4 of the method on copies of the recording without its `mfra`.
fn time_live_and_repair(recording: &Recording, work: &Path) -> RepairTimings {
    let killed = work.join("killed-live.mp4");
    let unvouched = work.join("killed-unvouched.mp4");
    let boxes = top_level_boxes(&recording.path);
    let end = boxes.iter().find(|(kind, _, _)| kind == b"mfra").map_or(recording.bytes, |(_, offset, _)| *offset);
    for copy in [&killed, &unvouched] {
        fs::copy(&recording.path, copy).expect("copy the recording");
        File::options().write(true).open(copy).and_then(|file| file.set_len(end)).expect("cut the mfra off");
    }
    let fragment_ends: Vec<u64> =
        boxes.iter().filter(|(kind, _, _)| kind == b"mdat").map(|(_, offset, size)| offset + size).collect();
    let file = File::options().read(true).write(true).open(&killed).expect("open the killed copy");
    let mut durations = LiveDurations::new();
    let mut stated_secs = 0.0;
    let updates = fragment_ends
        .iter()
        .map(|&synced| {
            let start = Instant::now();
            stated_secs = durations.update(&file, synced).expect("update the header").unwrap_or(0.0);
            start.elapsed()
        })
        .collect();
    let timed_trim = |path: &Path| {
        let start = Instant::now();
        let outcome = trim_to_last_fragment(path).expect("trim the killed copy");
        (start.elapsed(), outcome)
    };
    let repair = RepairTimings {
        fragments: fragment_ends.len(),
        updates,
        stated_secs,
        vouched: timed_trim(&killed),
        unvouched: timed_trim(&unvouched),
        bytes: end,
    };
    fs::remove_file(&killed).expect("remove the killed copy");
    fs::remove_file(&unvouched).expect("remove the unvouched copy");
    repair
}

/// Every top-level box of `path` as (type, offset, size), read from the box headers.
fn top_level_boxes(path: &Path) -> Vec<([u8; 4], u64, u64)> {
    let mut file = File::open(path).expect("open the recording");
    let len = file_len(path);
    let mut boxes = Vec::new();
    let mut offset = 0;
    while offset + 8 <= len {
        let mut header = [0; 16];
        file.seek(SeekFrom::Start(offset)).and_then(|_| file.read_exact(&mut header[..8])).expect("read a box header");
        let mut size = u64::from(u32::from_be_bytes([header[0], header[1], header[2], header[3]]));
        if size == 1 {
            file.read_exact(&mut header[8..]).expect("read a largesize");
            size = u64::from_be_bytes(header[8..].try_into().expect("8 bytes"));
        }
        let kind = [header[4], header[5], header[6], header[7]];
        boxes.push((kind, offset, size));
        offset += size.max(8);
    }
    boxes
}

// ---------------------------------------------------------------------------------------------
// Printing

fn print_timing_table(recording: &Recording, timings: &Timings) {
    let shift_wall = timings.sidx.median_wall().saturating_sub(timings.plain.median_wall());
    let shift_synced = timings.sidx.median_synced().saturating_sub(timings.plain.median_synced());
    let shifted = recording.bytes.saturating_sub(timings.header_bytes);
    let outcome = &timings.outcome;
    println!(
        "\n## Finalizing a {}-minute 1080p30 fragmented MP4 ({}, {} frames, median of {})\n",
        recording.frames / u64::from(FPS) / 60,
        format_bytes(recording.bytes),
        recording.frames,
        rounds(),
    );
    println!("| step | median wall | range | until on disk (fsync) | bytes written |");
    println!("|---|---|---|---|---|");
    println!(
        "| `finalize_hybrid` | {} | {} | included (syncs each step) | {} appended (`moov` of {} samples, \
         {} fragments) + {} bytes changed in place |",
        format_duration(timings.hybrid.median_wall()),
        format_range(timings.hybrid.range()),
        format_bytes(timings.appended),
        outcome.samples,
        outcome.fragments,
        timings.changed,
    );
    print_row("ffmpeg remux, fragmented (reference)", &timings.plain, &format_bytes(recording.bytes));
    let sidx_written =
        format!("{} + ~{} rewritten by the shift", format_bytes(timings.sidx_bytes), format_bytes(shifted));
    print_row("ffmpeg remux, `+global_sidx`", &timings.sidx, &sidx_written);
    println!(
        "| `+global_sidx` trailer shift (difference) | {} | | {} | ~{} rewritten |",
        format_duration(shift_wall),
        format_duration(shift_synced),
        format_bytes(shifted),
    );
    print_row("`cp` of the recording (full rewrite)", &timings.copy, &format_bytes(recording.bytes));
}

fn print_row(step: &str, samples: &Samples, written: &str) {
    println!(
        "| {step} | {} | {} | {} | {written} |",
        format_duration(samples.median_wall()),
        format_range(samples.range()),
        format_duration(samples.median_synced()),
    );
}

fn print_kill_table(recording: &Recording, kills: &[KillRun], hybrid: &Playback, hybrid_wall: Duration) {
    println!("\n## SIGKILL during the `+global_sidx` trailer shift ({} frames expected)\n", recording.frames);
    println!("| kill point | killed | ffprobe opens | duration | frames decoded | error lines |");
    println!("|---|---|---|---|---|---|");
    for kill in kills {
        let point = format!("shift at {:.0} % of the file", kill.target_share * 100.0);
        match &kill.result {
            KillResult::Killed { share, after_shift_start, playback } => {
                let when = format!(
                    "{} after the shift started, {:.0} % rewritten",
                    format_duration(*after_shift_start),
                    share * 100.0
                );
                print_playback_row(&point, &when, playback, recording.frames);
            }
            KillResult::FinishedFirst => println!("| {point} | ffmpeg finished before the kill point | | | | |"),
            KillResult::Unobservable => println!("| {point} | not run: `/proc/<pid>/io` unreadable | | | | |"),
        }
    }
    print_playback_row("`finalize_hybrid` output, not killed (reference)", "-", hybrid, recording.frames);
    println!(
        "\n`finalize_hybrid` is not killed here: it takes {} and syncs after each of its 5 small steps, too \
         fast to hit from outside; the file is checked to play with every frame after each step in {STEP_TEST}.",
        format_duration(hybrid_wall),
    );
}

fn print_playback_row(point: &str, when: &str, playback: &Playback, expected_frames: u64) {
    let (opens, duration) = match playback.duration_secs {
        Some(secs) => ("yes", format!("{secs:.3} s")),
        None => ("no", "-".to_owned()),
    };
    println!(
        "| {point} | {when} | {opens} | {duration} | {} / {expected_frames} | {} |",
        playback.frames, playback.error_lines
    );
}

fn format_duration(duration: Duration) -> String {
    let ms = duration.as_secs_f64() * 1000.0;
    if ms >= 1000.0 {
        format!("{:.2} s", ms / 1000.0)
    } else if ms >= 1.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{:.1} µs", ms * 1000.0)
    }
}

fn format_range((low, high): (Duration, Duration)) -> String {
    format!("{} - {}", format_duration(low), format_duration(high))
}

fn format_bytes(bytes: u64) -> String {
    const KIB: f64 = 1024.0;
    let value = bytes as f64;
    if value >= KIB * KIB * KIB {
        format!("{:.2} GiB", value / (KIB * KIB * KIB))
    } else if value >= KIB * KIB {
        format!("{:.1} MiB", value / (KIB * KIB))
    } else if value >= KIB {
        format!("{:.1} KiB", value / KIB)
    } else {
        format!("{bytes} B")
    }
}

fn print_repair_table(recording: &Recording, repair: &RepairTimings) {
    let mut updates = repair.updates.clone();
    updates.sort_unstable();
    let total: Duration = updates.iter().sum();
    let mean = total / u32::try_from(updates.len().max(1)).unwrap_or(u32::MAX);
    println!("\n## The live header and startup repair of the killed recording ({} fragments)\n", repair.fragments);
    println!("| step | time | what it read |");
    println!("|---|---|---|");
    println!(
        "| `LiveDurations::update` after each fragment's sync | mean {}, median {}, max {} per call | 3 `pread` \
         (moof and mdat headers, the moof) and 1 `pwrite` of 220 bytes per fragment; states {:.3} s of {:.3} s |",
        format_duration(mean),
        format_duration(median(updates.clone())),
        format_duration(updates.last().copied().unwrap_or_default()),
        repair.stated_secs,
        recording.frames as f64 / f64::from(FPS),
    );
    let (took, outcome) = &repair.vouched;
    println!(
        "| `trim_to_last_fragment`, the header vouches for every fragment | {} | every `moof`, the samples of the \
         last 10 fragments; {} fragments kept, {} cut as damaged |",
        format_duration(*took),
        outcome.fragments,
        outcome.damaged_fragments,
    );
    let (took, outcome) = &repair.unvouched;
    println!(
        "| `trim_to_last_fragment`, the header states no length (previous release) | {} | every sample: {} at \
         {:.0} MB/s; {} fragments kept, {} cut as damaged |",
        format_duration(*took),
        format_bytes(repair.bytes),
        repair.bytes as f64 / took.as_secs_f64().max(1e-9) / 1e6,
        outcome.fragments,
        outcome.damaged_fragments,
    );
}
