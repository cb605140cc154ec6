//! The two other roles of this binary: the wrapper that runs a dataflow node's real binary under
//! `wait4` ([`wrapper_main`]), and the child that runs our encode pipeline alone ([`child_main`]).

use std::{
    fs::{self, File},
    io::Read,
    os::unix::process::CommandExt,
    path::Path,
    process::{Command, ExitCode},
    sync::mpsc,
};

use arrow::buffer::Buffer;
use dora_video_recorder::{
    Frame, FrameFormat, FrameRate, PixelEncoding, PtsClock, TimestampMode,
    encode::{Container, EncoderKind, EncoderSettings, VideoWriter, init_ffmpeg},
};

use crate::{
    FSYNC_ENV, WRAP_ENV,
    case::Case,
    contenders::bench_quality,
    measure::{timeval_secs, wait4},
};

/// Runs the real node binary (the first argument, with the rest as its arguments) as a child,
/// waits for it, writes its CPU seconds and peak RSS in KiB to `report`, and exits as it did. The
/// node inherits the environment through which dora talks to it, so the wrapper is transparent.
/// This process's RSS at the spawn (a few MB) is the floor of the node's `ru_maxrss`.
pub fn wrapper_main(report: &Path) -> ExitCode {
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

/// Our pipeline alone (see [`encode_with_library`]). Arguments: RAW WIDTH HEIGHT FPS FRAMES PRESET OUT.
pub fn child_main() -> ExitCode {
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
    let format = FrameFormat { encoding: PixelEncoding::Bgr8, width: case.width, height: case.height };
    let (mut writer, mut clock) = open_writer(case, format, preset, out);
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

/// Sets the process up as the node's binary does at start and opens libx264 into an MP4 at `out`
/// with the recorder's settings for `case` at `preset`, PTS from the source clock.
pub fn open_writer(case: Case, format: FrameFormat, preset: &str, out: &Path) -> (VideoWriter, PtsClock) {
    dora_video_recorder::return_large_buffers_to_the_system();
    init_ffmpeg().expect("initialize FFmpeg");
    let fps = FrameRate { num: case.fps, den: 1 };
    let clock = PtsClock::new(TimestampMode::Source, fps, true);
    let settings = EncoderSettings {
        container: Container::Mp4,
        quality: bench_quality(case, preset),
        fps,
        time_base: clock.time_base(),
        fsync: std::env::var(FSYNC_ENV).map_or(true, |v| v != "0"),
    };
    let (writer, _) = VideoWriter::create(out, format, &[EncoderKind::Libx264], &settings, clock.frame_duration(), &[])
        .expect("open libx264 and the output file");
    (writer, clock)
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
