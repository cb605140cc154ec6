//! Copy benchmark: a 1080p30 MJPEG camera recorded with `COMPRESSED=copy` (the JPEGs stored as
//! they came, Motion JPEG in Matroska) and with `COMPRESSED=decode` (the default: the node's JPEG
//! decoder, then x264 at the default settings into MP4), side by side in one run.
//!
//! Method: `ffmpeg` renders `LOOP` noisy `testsrc2` frames (camera-like detail and noise), each
//! compressed at quality 95 (node-hub's `opencv-video-capture` default). Each mode gets a real
//! camera worker, the one the node runs (bounded queue, JPEG check or decoder, encoder, muxer,
//! frame index, background sync of every fragment), fed `BENCH_FRAMES` frames (default 300 =
//! 10 s) paced at 30 fps. `BENCH_NOISE` (default 12) sets the picture's noise, so the JPEGs'
//! size (12: about 950 kB, a worst case; 0: about 300 kB, a webcam's MJPEG at 1080p);
//! `BENCH_FSYNC=0` leaves out the sync of each fragment; `BENCH_FORMAT` is `FORMAT` (default
//! mp4: copied JPEGs then go into Matroska). Printed: frames recorded, the recorder's CPU per frame (user + system
//! of the whole process, every thread, while the mode ran, divided by the frames recorded),
//! wall time and the file's size. dora's own event loop (receiving a frame from shared memory)
//! is not part of it. Asserts nothing. Run: `cargo bench -p dora-video-recorder --bench copy`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/cpu.rs"]
mod cpu;

use cpu::process_cpu;
use std::{
    process::Command,
    sync::Arc,
    time::{Duration, Instant},
};

use arrow::buffer::Buffer;
use dora_recorder_test_nodes::compress::ImageFormat;
use dora_video_recorder::{
    CameraFrame, CameraWorker, Compressed, FileReport, FileSettings, FileStatus, FrameRate, ImageCodec, ImageFrame,
    Overflow, QueueLimits, SessionJob, SessionRef, TimestampMode,
    encode::{CodecRequest, Container, EncoderKind, Quality, RateControl, default_threads, init_ffmpeg},
};

const WIDTH: u32 = 1920;
const HEIGHT: u32 = 1080;
const FPS: u64 = 30;
const LOOP: usize = 30;

fn render_jpegs(noise: u32) -> Vec<Vec<u8>> {
    let output = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i"])
        .arg(format!("testsrc2=size={WIDTH}x{HEIGHT}:rate={FPS}"))
        .args(["-vf", &format!("noise=alls={noise}:allf=t+u"), "-frames:v", &LOOP.to_string()])
        .args(["-pix_fmt", "rgb24", "-f", "rawvideo", "-"])
        .output()
        .expect("run ffmpeg (install it: apt-get install ffmpeg)");
    assert!(output.status.success(), "ffmpeg could not render the test frames");
    let frame_bytes = (WIDTH * HEIGHT * 3) as usize;
    output.stdout.chunks_exact(frame_bytes).map(|rgb| ImageFormat::Jpeg.compress(rgb, WIDTH, HEIGHT).unwrap()).collect()
}

fn settings(dir: &std::path::Path, compressed: Compressed, fsync: bool) -> FileSettings {
    let fps = FrameRate::from_f64(FPS as f64).unwrap();
    FileSettings {
        storage: dir.to_owned(),
        name_camera: false,
        container: std::env::var("BENCH_FORMAT").ok().and_then(|v| Container::parse(&v)).unwrap_or(Container::Mp4),
        codec: CodecRequest::Libx264,
        candidates: vec![EncoderKind::Libx264],
        quality: Quality::new("veryfast", RateControl::Crf(23), 2 * FPS as u32, FPS as f64),
        fps,
        timestamps: TimestampMode::Source,
        queue: QueueLimits { frames: 30, bytes: 64 * 1024 * 1024, overflow: Overflow::DropOldest },
        fsync,
        segments: Default::default(),
        overlay: false,
        depth_encoder: EncoderKind::Ffv1,
        compressed,
    }
}

struct Run {
    recorded: u64,
    cpu: Duration,
    wall: Duration,
    bytes: u64,
    codec: &'static str,
}

/// Records `frames` of `jpegs` (in a loop) paced at `FPS` through a real camera worker.
fn record(jpegs: &[Buffer], frames: u64, compressed: Compressed, fsync: bool) -> Run {
    let dir = std::env::temp_dir().join(format!("copy-bench-{compressed:?}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let files = settings(&dir, compressed, fsync);
    let (queue, copy_jpeg) = (files.queue, files.copies_jpeg());
    let session = SessionRef { serial: 1, id: format!("bench-{compressed:?}"), start_nanos: 1_000_000_000 };
    let (reports_tx, reports) = std::sync::mpsc::channel::<FileReport>();
    let make_job = move |links| SessionJob::new(session, "image".into(), files, links);
    let (cpu_start, wall_start) = (process_cpu(), Instant::now());
    let worker =
        CameraWorker::spawn("image", queue, false, copy_jpeg, reports_tx, Default::default(), make_job).unwrap();
    for n in 0..frames {
        let due = wall_start + Duration::from_nanos(n * 1_000_000_000 / FPS);
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
        // The camera's buffer is shared, as dora's is: no copy.
        let data = jpegs[n as usize % jpegs.len()].clone();
        let sent_nanos = 1_000_000_000 + n * 1_000_000_000 / FPS;
        let image = ImageFrame { codec: ImageCodec::Jpeg, declared: None, sent_nanos, data, ids: Arc::default() };
        worker.submit(CameraFrame::Image(image), None);
    }
    worker.finish().join().unwrap();
    let (cpu, wall) = (process_cpu() - cpu_start, wall_start.elapsed());
    let finished: Vec<FileReport> = reports.try_iter().filter(|r| r.status == FileStatus::Finished).collect();
    let _ = std::fs::remove_dir_all(&dir);
    Run {
        recorded: finished.iter().map(|r| r.frames).sum(),
        cpu,
        wall,
        bytes: finished.iter().map(|r| r.bytes).sum(),
        codec: finished.first().map_or("none", |r| r.codec),
    }
}

fn main() {
    init_ffmpeg().expect("FFmpeg initializes");
    // As the node does at startup.
    dora_video_recorder::return_large_buffers_to_the_system();
    let number = |key: &str, default: u64| std::env::var(key).ok().and_then(|v| v.parse().ok()).unwrap_or(default);
    let frames = number("BENCH_FRAMES", 300);
    let jpegs = render_jpegs(number("BENCH_NOISE", 12) as u32);
    let fsync = number("BENCH_FSYNC", 1) != 0;
    let mean_kb = jpegs.iter().map(Vec::len).sum::<usize>() as f64 / jpegs.len() as f64 / 1000.0;
    let jpegs: Vec<Buffer> = jpegs.into_iter().map(Buffer::from_vec).collect();
    println!(
        "{WIDTH}x{HEIGHT} JPEG (quality 95, {mean_kb:.0} kB each) at {FPS} fps, {frames} frames per mode, {} cores, x264 threads {}, FSYNC={fsync}\n",
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        default_threads()
    );
    println!("| COMPRESSED | file codec | frames recorded | recorder CPU per frame | wall | MB/s of file |");
    println!("|---|---|---|---|---|---|");
    for compressed in [Compressed::Copy, Compressed::Decode] {
        let run = record(&jpegs, frames, compressed, fsync);
        let per_frame_ms = run.cpu.as_secs_f64() * 1000.0 / run.recorded.max(1) as f64;
        println!(
            "| {} | {} | {}/{frames} | {per_frame_ms:.2} ms | {:.1} s | {:.1} |",
            format!("{compressed:?}").to_lowercase(),
            run.codec,
            run.recorded,
            run.wall.as_secs_f64(),
            run.bytes as f64 / 1e6 / run.wall.as_secs_f64()
        );
    }
}
