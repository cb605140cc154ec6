//! The MJPEG camera section: a camera that sends JPEG frames (`opencv-video-capture` with
//! `ENCODING=jpeg`, most USB cameras), decoded and encoded to H.264 by our pipeline and by the
//! `ffmpeg` CLI at identical x264 settings.
//!
//! Method. The case's `testsrc2` frames are compressed once, outside any timing, with the test
//! camera's JPEG encoder (quality 95, as `opencv-video-capture`), and written back to back into
//! one `.mjpeg` file plus a file of their lengths. Both contenders are child processes measured
//! with `wait4` (CPU time, peak RSS), as in the table rows:
//! - ours: a re-exec of this binary that reads one JPEG at a time on a reading thread (as the
//!   node's event loop receives them) and on the main thread (the camera worker) decodes it with
//!   the node's own [`FrameDecoder`] (libjpeg-turbo to RGB) and writes it through [`VideoWriter`];
//! - the CLI: `ffmpeg -f mjpeg -framerate FPS -i FILE` (FFmpeg's mjpeg decoder, then swscale to
//!   yuv420p) with the same output options as its table rows.
//!
//! Each row is the median round by CPU time. The ratio is the CLI's CPU over ours: above 1 means
//! the recorder needs less CPU per frame.

use std::{
    fs::{self, File},
    io::{BufRead, BufReader, Read, Write},
    path::{Path, PathBuf},
    process::{Command, ExitCode},
    sync::{Arc, mpsc},
};

use arrow::buffer::Buffer;
use dora_recorder_test_nodes::compress::{ImageFormat, JPEG_QUALITY};
use dora_video_recorder::{CameraFrame, FrameDecoder, ImageCodec, ImageFrame};

use crate::{
    FAST_PRESET,
    case::{Case, generate_frames},
    child::open_writer,
    contenders::{cli_output_args, finished_run},
    measure::measure,
    rows::{Contender, Run},
};

/// Set in the re-executed child that decodes and encodes the JPEG frames.
pub const MJPEG_CHILD_ENV: &str = "ENCODE_BENCH_MJPEG_CHILD";

/// The full run's MJPEG camera: 1080p30, 10 s.
const FULL_CASE: Case = Case { width: 1920, height: 1080, fps: 30, frames: 300 };
/// `BENCH_QUICK=1`: a short small one.
const QUICK_CASE: Case = Case { width: 640, height: 480, fps: 30, frames: 60 };

/// The JPEG frames of a case on disk.
struct JpegFrames {
    /// The frames back to back (what `ffmpeg -f mjpeg` reads).
    stream: PathBuf,
    /// One decimal length per line, in frame order.
    lengths: PathBuf,
    /// Mean size of a frame in bytes.
    mean_bytes: f64,
}

/// Runs the section and prints its table.
pub fn bench_mjpeg_camera(work: &Path, rounds: usize, quick: bool) {
    let case = if quick { QUICK_CASE } else { FULL_CASE };
    let jpegs = write_jpeg_frames(case, work);
    println!(
        "\n## MJPEG camera: {} JPEG frames (quality {JPEG_QUALITY}, {:.0} kB each) -> H.264\n",
        case.label(),
        jpegs.mean_bytes / 1000.0
    );
    // Round by round, one contender after the other, so a change of load or clock meanwhile
    // touches both alike.
    let (mut ours, mut cli) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        ours.extend(run_ours_mjpeg(case, &jpegs, work));
        cli.extend(run_cli_mjpeg(case, &jpegs, work));
    }
    let (Some(ours), Some(cli)) = (median_by_cpu(ours), median_by_cpu(cli)) else {
        println!("MJPEG camera: FAILED (a contender did not finish, see above)");
        return;
    };
    println!("| contender | frames | CPU ms/frame | wall s | peak RSS MB | bytes | CLI CPU / ours |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for run in [&ours, &cli] {
        println!(
            "| {} | {} | {:.1} | {:.2} | {:.0} | {} | {:.2}x |",
            run.contender.name(),
            run.probe.frames,
            cpu_ms_per_frame(run),
            run.usage.wall_secs,
            run.usage.peak_rss_mb,
            run.bytes,
            cli.usage.cpu_secs / run.usage.cpu_secs
        );
    }
    println!(
        "\nmedian of {rounds} rounds by CPU; libx264 {FAST_PRESET} at identical settings for both; machine busy \
         with other work meanwhile: {:.1} CPU s (ours) and {:.1} CPU s (CLI)",
        ours.usage.background_cpu_secs, cli.usage.background_cpu_secs
    );
    for path in [&jpegs.stream, &jpegs.lengths] {
        fs::remove_file(path).expect("remove the JPEG frames");
    }
}

/// CPU milliseconds per frame in the file.
fn cpu_ms_per_frame(run: &Run) -> f64 {
    1000.0 * run.usage.cpu_secs / run.probe.frames.max(1) as f64
}

/// The round with the median CPU time.
fn median_by_cpu(mut runs: Vec<Run>) -> Option<Run> {
    runs.sort_by(|a, b| a.usage.cpu_secs.total_cmp(&b.usage.cpu_secs));
    let middle = runs.len() / 2;
    runs.into_iter().nth(middle)
}

/// Compresses the case's `testsrc2` frames into JPEGs, outside any timing.
fn write_jpeg_frames(case: Case, work: &Path) -> JpegFrames {
    let raw = work.join("mjpeg-source.bgr");
    generate_frames(case, &raw);
    let stream = work.join("frames.mjpeg");
    let lengths = work.join("frames.lengths");
    let mut stream_file = File::create(&stream).expect("create the MJPEG stream");
    let mut lengths_file = File::create(&lengths).expect("create the lengths file");
    let mut reader = BufReader::new(File::open(&raw).expect("open the raw frames"));
    let mut bgr = vec![0u8; case.frame_bytes()];
    let mut total = 0usize;
    for _ in 0..case.frames {
        reader.read_exact(&mut bgr).expect("read one raw frame");
        let rgb: Vec<u8> = bgr.chunks_exact(3).flat_map(|p| [p[2], p[1], p[0]]).collect();
        let jpeg = ImageFormat::Jpeg.compress(&rgb, case.width, case.height).expect("compress a frame");
        stream_file.write_all(&jpeg).expect("write a JPEG");
        writeln!(lengths_file, "{}", jpeg.len()).expect("write a length");
        total += jpeg.len();
    }
    fs::remove_file(&raw).expect("remove the raw frames");
    JpegFrames { stream, lengths, mean_bytes: total as f64 / f64::from(case.frames) }
}

/// Our decode + encode pipeline in a child process.
fn run_ours_mjpeg(case: Case, jpegs: &JpegFrames, work: &Path) -> Option<Run> {
    let out = work.join("ours-mjpeg.mp4");
    let exe = std::env::current_exe().expect("path of this bench binary");
    let mut command = Command::new(exe);
    command
        .env(MJPEG_CHILD_ENV, "1")
        .arg(&jpegs.stream)
        .arg(&jpegs.lengths)
        .args([case.width, case.height, case.fps, case.frames].map(|n| n.to_string()))
        .arg(&out);
    let (usage, _) = measure(Contender::OursMjpeg, "this bench binary", command)?;
    Some(finished_run(Contender::OursMjpeg, FAST_PRESET, usage, &out, None))
}

/// The CLI decoding the same JPEGs into libx264 at our settings.
fn run_cli_mjpeg(case: Case, jpegs: &JpegFrames, work: &Path) -> Option<Run> {
    let out = work.join("ffmpeg-mjpeg.mp4");
    let mut command = Command::new("ffmpeg");
    command
        .args(["-hide_banner", "-loglevel", "error", "-nostats", "-y"])
        .args(["-f", "mjpeg", "-framerate", &case.fps.to_string(), "-i"])
        .arg(&jpegs.stream)
        .args(cli_output_args(case, FAST_PRESET))
        .arg(&out);
    let (usage, _) = measure(Contender::FfmpegMjpeg, "ffmpeg", command)?;
    Some(finished_run(Contender::FfmpegMjpeg, FAST_PRESET, usage, &out, None))
}

/// The child: decodes every JPEG as the camera worker does and encodes it. Arguments: STREAM
/// LENGTHS WIDTH HEIGHT FPS FRAMES OUT.
pub fn mjpeg_child_main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [stream, lengths, width, height, fps, frames, out] = args.as_slice() else {
        eprintln!("mjpeg child usage: STREAM LENGTHS WIDTH HEIGHT FPS FRAMES OUT");
        return ExitCode::FAILURE;
    };
    let number = |text: &str| text.parse::<u32>().expect("numeric child argument");
    let case = Case { width: number(width), height: number(height), fps: number(fps), frames: number(frames) };
    let mut decoder = FrameDecoder::default();
    // Opened with the first frame's format, as the camera worker opens its encoder.
    let mut output = None;
    let frame_nanos = 1_000_000_000 / u64::from(case.fps);
    let jpegs = spawn_jpeg_reader(Path::new(stream), Path::new(lengths));
    for (index, jpeg) in (0u64..).zip(jpegs) {
        let sent_nanos = index * frame_nanos;
        let data = Buffer::from_vec(jpeg);
        let image = ImageFrame { codec: ImageCodec::Jpeg, declared: None, sent_nanos, data, ids: Arc::default() };
        let frame = decoder.raw("bench", CameraFrame::Image(image)).expect("decode a JPEG frame");
        let (writer, clock) =
            output.get_or_insert_with(|| open_writer(case, frame.format, FAST_PRESET, Path::new(out)));
        writer.write(&frame, clock.next_pts(sent_nanos)).expect("encode a frame");
    }
    let (writer, _) = output.expect("at least one frame");
    writer.finish().expect("finish the file");
    ExitCode::SUCCESS
}

/// Starts a thread that reads the JPEGs one by one (two queued ahead), as dora hands the node
/// one message at a time.
fn spawn_jpeg_reader(stream: &Path, lengths: &Path) -> mpsc::IntoIter<Vec<u8>> {
    let mut reader = BufReader::new(File::open(stream).expect("open the MJPEG stream"));
    let lengths: Vec<usize> = BufReader::new(File::open(lengths).expect("open the lengths"))
        .lines()
        .map(|line| line.expect("read a length").parse().expect("a numeric length"))
        .collect();
    let (tx, rx) = mpsc::sync_channel::<Vec<u8>>(2);
    std::thread::spawn(move || {
        for length in lengths {
            let mut jpeg = vec![0u8; length];
            reader.read_exact(&mut jpeg).expect("read one JPEG");
            if tx.send(jpeg).is_err() {
                return;
            }
        }
    });
    rx.into_iter()
}
