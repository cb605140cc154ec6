//! Depth benchmark: 640x480 `mono16` frames at 30 fps through the recorder's own writer (FFV1 or
//! FFVHUFF gray16le in Matroska, as a depth camera is recorded), next to the raw size and 16-bit PNG
//! (FFmpeg's encoder, through the `ffmpeg` CLI), for two kinds of depth image:
//! - `pattern`: the test-pattern camera's depth frames (`dora-test-pattern ENCODING=mono16`),
//!   samples spread over the whole uint16 range: close to the worst case for any lossless coder;
//! - `scene`: a synthetic room as a RealSense-style camera sees it: a floor sloping away, a back
//!   wall, a box that moves, noise growing with the square of the distance, and holes (0) along
//!   the box's edge and scattered.
//!
//! Prints one markdown table: bytes per frame and per second, ratio to raw, the recorder's CPU
//! and wall time per frame (whole process: converter thread, FFV1 slice threads, muxer), and
//! whether decoding the file with `ffmpeg -f rawvideo -pix_fmt gray16le` gave back every sample.
//! It asserts nothing. Run: `cargo bench -p dora-video-recorder --bench depth` (`BENCH_FRAMES=n`,
//! default 300 = 10 s).

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/cpu.rs"]
mod cpu;

use cpu::process_cpu;
use std::{
    io::Write,
    path::Path,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use arrow::buffer::Buffer;
use dora_recorder_test_nodes::depth::draw_millimetres;
use dora_video_recorder::{
    Frame, FrameFormat, FrameRate, PixelEncoding, PtsClock, TimestampMode,
    encode::{Container, EncoderKind, EncoderSettings, Latency, Quality, RateControl, VideoWriter, init_ffmpeg},
};

const WIDTH: u32 = 640;
const HEIGHT: u32 = 480;
const FPS: u32 = 30;

fn main() {
    init_ffmpeg().expect("initialize FFmpeg");
    let frames: u64 = std::env::var("BENCH_FRAMES").ok().and_then(|v| v.parse().ok()).unwrap_or(300);
    let dir = std::env::temp_dir().join(format!("depth-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    println!("\n{WIDTH}x{HEIGHT} mono16 at {FPS} fps, {frames} frames, {} threads\n", threads());
    println!(
        "| image | stored as | bytes/frame | of raw | MB/s at {FPS} fps | recorder CPU ms/frame | wall ms/frame | exact |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    let per_second = |bytes: f64| bytes * f64::from(FPS) / 1e6;
    for (name, draw) in [("pattern", pattern as fn(u64) -> Vec<u16>), ("scene", scene)] {
        let images: Vec<Vec<u8>> =
            (0..frames).map(|i| draw(i).iter().flat_map(|s| s.to_le_bytes()).collect()).collect();
        let raw = f64::from(WIDTH * HEIGHT * 2);
        println!("| {name} | raw | {raw:.0} | 1.00 | {:.1} | | | |", per_second(raw));
        for encoder in [EncoderKind::Ffv1, EncoderKind::Ffvhuff] {
            let video = dir.join(format!("{name}-{}.mkv", encoder.ffmpeg_name()));
            let (cpu, wall) = record(&images, &video, encoder);
            let bytes = std::fs::metadata(&video).unwrap().len() as f64 / frames as f64;
            let exact = decoded(&video) == images.concat();
            let per_frame = |d: Duration| d.as_secs_f64() * 1000.0 / frames as f64;
            println!(
                "| {name} | {} in MKV | {bytes:.0} | {:.2} | {:.1} | {:.1} | {:.1} | {} |",
                encoder.ffmpeg_name().to_uppercase(),
                bytes / raw,
                per_second(bytes),
                per_frame(cpu),
                per_frame(wall),
                if exact { "yes" } else { "NO" },
            );
        }
        let png = png_bytes(&images) as f64 / frames as f64;
        println!("| {name} | 16-bit PNG (ffmpeg) | {png:.0} | {:.2} | {:.1} | | | |", png / raw, per_second(png));
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Encoder threads, as the node picks them by default (one per core).
fn threads() -> u32 {
    dora_video_recorder::encode::default_threads()
}

/// Records `images` into `path` as the recorder records a depth camera; returns the process CPU
/// time and the wall time it took.
fn record(images: &[Vec<u8>], path: &Path, encoder: EncoderKind) -> (Duration, Duration) {
    let fps = FrameRate { num: FPS, den: 1 };
    let mut clock = PtsClock::new(TimestampMode::Source, fps, true);
    let quality = Quality {
        preset: "veryfast".into(),
        rate: RateControl::Crf(23),
        gop_frames: FPS,
        latency: Latency::Zero,
        threads: threads(),
    };
    let settings =
        EncoderSettings { container: Container::DEPTH, quality, fps, time_base: clock.time_base(), fsync: false };
    let format = FrameFormat { encoding: PixelEncoding::Mono16, width: WIDTH, height: HEIGHT };
    let (cpu_start, wall_start) = (process_cpu(), Instant::now());
    let (mut writer, _) =
        VideoWriter::create(path, format, &[encoder], &settings, clock.frame_duration(), &[]).unwrap();
    let frame_nanos = 1_000_000_000 / u64::from(FPS);
    for (index, image) in images.iter().enumerate() {
        let sent_nanos = index as u64 * frame_nanos;
        let frame = Frame { format, sent_nanos, data: Buffer::from(image.as_slice()), ids: Default::default() };
        writer.write(&frame, clock.next_pts(sent_nanos)).unwrap();
    }
    writer.finish().unwrap();
    (process_cpu() - cpu_start, wall_start.elapsed())
}

/// Total bytes of `images` as 16-bit grey PNGs (FFmpeg's PNG encoder, default compression).
fn png_bytes(images: &[Vec<u8>]) -> usize {
    let size = format!("{WIDTH}x{HEIGHT}");
    let args = ["-v", "error", "-f", "rawvideo", "-pix_fmt", "gray16le", "-s", &size, "-i", "-"];
    run_ffmpeg(&args, &["-c:v", "png", "-pix_fmt", "gray16be", "-f", "image2pipe", "-"], &images.concat()).len()
}

/// The samples of every frame of `path`, decoded as the README says to.
fn decoded(path: &Path) -> Vec<u8> {
    let path = path.to_str().unwrap();
    run_ffmpeg(&["-v", "error", "-i", path], &["-f", "rawvideo", "-pix_fmt", "gray16le", "-"], &[])
}

/// Runs `ffmpeg INPUT OUTPUT` with `stdin` fed in; returns its stdout.
fn run_ffmpeg(input: &[&str], output: &[&str], stdin: &[u8]) -> Vec<u8> {
    let mut child = Command::new("ffmpeg")
        .args(input)
        .args(output)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("ffmpeg runs (scripts/setup.sh installs it)");
    let mut pipe = child.stdin.take().unwrap();
    let data = stdin.to_vec();
    let feeder = std::thread::spawn(move || {
        let _ = pipe.write_all(&data);
    });
    let out = child.wait_with_output().unwrap();
    feeder.join().unwrap();
    out.stdout
}

/// The test pattern's depth frame `index`.
fn pattern(index: u64) -> Vec<u16> {
    draw_millimetres(WIDTH, HEIGHT, index)
}

/// A synthetic depth frame `index` of a room: see the module documentation.
fn scene(index: u64) -> Vec<u16> {
    let mut noise = Noise(0x9e37_79b9_7f4a_7c15 ^ index.wrapping_mul(0x2545_f491_4f6c_dd1d));
    let (w, h) = (f64::from(WIDTH), f64::from(HEIGHT));
    // The box: 160x140 px at about 1.5 m, sliding sideways with the frame index.
    let left = 120.0 + (index % 240) as f64;
    let (top, right, bottom) = (180.0, left + 160.0, 320.0);
    let mut samples = Vec::with_capacity((WIDTH * HEIGHT) as usize);
    for y in 0..HEIGHT {
        for x in 0..WIDTH {
            let (fx, fy) = (f64::from(x), f64::from(y));
            let wall = 4000.0 + 300.0 * (fx / w - 0.5);
            // The floor below the horizon (row 240), nearer towards the bottom of the image.
            let floor = if fy > h / 2.0 { 800.0 * (h / 2.0) / (fy - h / 2.0 + 1.0) + 600.0 } else { f64::MAX };
            let inside = (left..right).contains(&fx) && (top..bottom).contains(&fy);
            let edge = inside && (fx - left < 3.0 || right - fx < 3.0 || fy - top < 3.0 || bottom - fy < 3.0);
            let depth = if inside { 1500.0 + 0.8 * (fx - left) } else { wall.min(floor) };
            let sigma = 1.0 + depth * depth / 2.0e6;
            let value = depth + sigma * noise.gaussian();
            let hole = edge || noise.next().is_multiple_of(100);
            samples.push(if hole { 0 } else { value.round().clamp(0.0, 65535.0) as u16 });
        }
    }
    samples
}

/// A small xorshift generator: the same noise on every run.
struct Noise(u64);

impl Noise {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// About N(0, 1): the sum of four uniforms, centred and scaled.
    fn gaussian(&mut self) -> f64 {
        let sum: f64 = (0..4).map(|_| (self.next() >> 11) as f64 / (1u64 << 53) as f64).sum();
        (sum - 2.0) * 3f64.sqrt()
    }
}
