//! Replay benchmark: CPU per frame to replay a 1080p30 H.264 file (decode and convert to bgr8,
//! as the node's camera thread does, into output buffers) next to the `ffmpeg` CLI decoding the
//! same file to raw bgr24 (`ffmpeg -i F -f rawvideo -pix_fmt bgr24 -y /dev/null`), in one run.
//! Prints a markdown table; asserts nothing but that both saw every frame.
//!
//! Run: `cargo bench -p dora-video-replay --bench replay` (needs the `ffmpeg` CLI). Method: the
//! `ffmpeg` CLI encodes `SECONDS` s of noisy `testsrc2` at 1080p30 with libx264 (veryfast, CRF
//! 23, the recorder's defaults) once; then each contender decodes the whole file `ROUNDS` times,
//! alternating, and the median CPU time (user + system, all threads: `getrusage` for the replay's
//! own threads, `wait4` for the ffmpeg child) per frame is printed, with the wall-clock rate.

#![allow(clippy::unwrap_used)]

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

use dora_video_recorder::PixelEncoding;
use dora_video_replay::{
    decode,
    feeder::{FeedPlan, Feeder, OutputBuffers},
    recording::{FrameTimes, Segment},
    schedule::Window,
};

const SECONDS: u32 = 10;
const FPS: u32 = 30;
const ROUNDS: usize = 3;

/// Plain vectors standing in for dora's output samples.
struct VecBuffers;

impl OutputBuffers for VecBuffers {
    type Buffer = Vec<u8>;

    fn allocate(&self, len: usize) -> eyre::Result<Vec<u8>> {
        Ok(vec![0; len])
    }

    fn payload_mut<'a>(&self, buffer: &'a mut Vec<u8>) -> &'a mut [u8] {
        buffer
    }
}

fn make_file(dir: &Path) -> PathBuf {
    let path = dir.join("bench-1080p30.mp4");
    let status = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i"])
        .arg(format!("testsrc2=size=1920x1080:rate={FPS}"))
        .args(["-vf", "noise=alls=12:allf=t+u", "-t", &SECONDS.to_string()])
        .args(["-c:v", "libx264", "-preset", "veryfast", "-crf", "23", "-pix_fmt", "yuv420p", "-g", "60"])
        .arg(&path)
        .status()
        .expect("run ffmpeg (install it: apt-get install ffmpeg)");
    assert!(status.success(), "ffmpeg could not encode the test file");
    path
}

/// CPU time (user + system) of this process so far.
fn own_cpu() -> Duration {
    // SAFETY: getrusage fills the struct it is given.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    cpu_of(&usage)
}

fn cpu_of(usage: &libc::rusage) -> Duration {
    let time = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    time(usage.ru_utime) + time(usage.ru_stime)
}

/// The replay's pipeline over `file`: (frames, CPU, wall).
fn replay(file: &Path) -> (u64, Duration, Duration) {
    let plan = FeedPlan {
        camera: "bench".into(),
        segments: vec![Segment { video: file.to_owned(), times: FrameTimes::FromFile { base_ns: 0 } }],
        encoding: PixelEncoding::Bgr8,
        start_ns: 0,
        window: Window::from_secs(None, None),
    };
    let (cpu, wall) = (own_cpu(), Instant::now());
    let feeder = Feeder::spawn(plan, VecBuffers).unwrap();
    let frames = feeder.frames.iter().count() as u64;
    drop(feeder);
    (frames, own_cpu() - cpu, wall.elapsed())
}

/// The ffmpeg CLI over `file`: (frames, CPU, wall).
fn ffmpeg(file: &Path) -> (u64, Duration, Duration) {
    let wall = Instant::now();
    // `wait4` reaps it; the `Child` handle is not needed for that.
    let pid = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-i"])
        .arg(file)
        .args(["-f", "rawvideo", "-pix_fmt", "bgr24", "-y", "/dev/null"])
        .spawn()
        .unwrap()
        .id();
    // SAFETY: wait4 on our own child, with a valid status and rusage to fill.
    let usage = unsafe {
        let (mut status, mut usage): (i32, libc::rusage) = (0, std::mem::zeroed());
        libc::wait4(pid as i32, &mut status, 0, &mut usage);
        assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0, "ffmpeg failed");
        usage
    };
    (u64::from(SECONDS * FPS), cpu_of(&usage), wall.elapsed())
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    decode::init().unwrap();
    let dir = std::env::temp_dir().join(format!("replay-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = make_file(&dir);
    let (mut replay_cpu, mut replay_fps, mut ffmpeg_cpu, mut ffmpeg_fps) = (vec![], vec![], vec![], vec![]);
    for _ in 0..ROUNDS {
        let (frames, cpu, wall) = replay(&file);
        assert_eq!(frames, u64::from(SECONDS * FPS), "the replay decoded every frame");
        replay_cpu.push(cpu.as_secs_f64() * 1e3 / frames as f64);
        replay_fps.push(frames as f64 / wall.as_secs_f64());
        let (frames, cpu, wall) = ffmpeg(&file);
        ffmpeg_cpu.push(cpu.as_secs_f64() * 1e3 / frames as f64);
        ffmpeg_fps.push(frames as f64 / wall.as_secs_f64());
    }
    let (replay_ms, ffmpeg_ms) = (median(replay_cpu), median(ffmpeg_cpu));
    println!("Replaying {SECONDS} s of 1080p{FPS} H.264 to bgr8 ({ROUNDS} rounds, medians):\n");
    println!("| | CPU per frame | frames/s (wall) | CPU at {FPS} fps |");
    println!("|---|---|---|---|");
    let row = |name: &str, ms: f64, fps: f64| {
        println!("| {name} | {ms:.2} ms | {fps:.0} | {:.0} % of one core |", ms * f64::from(FPS) / 10.0);
    };
    row("dora-video-replay (decode + convert into the output buffer)", replay_ms, median(replay_fps));
    row("ffmpeg -f rawvideo -pix_fmt bgr24", ffmpeg_ms, median(ffmpeg_fps));
    println!("\nratio replay / ffmpeg: {:.2}", replay_ms / ffmpeg_ms);
    let _ = std::fs::remove_dir_all(&dir);
}
