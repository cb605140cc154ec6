//! Decode benchmark: 1080p JPEG camera frames into the RGB frames the recorder encodes, with
//! `zune-jpeg` (what the node runs for JPEG) next to FFmpeg's mjpeg decoder (with the swscale pass
//! to RGB the node would need, and alone). Prints a markdown table; asserts nothing.
//!
//! Run: `cargo bench -p dora-video-recorder --bench decode` (needs the `ffmpeg` CLI for the
//! pictures). Method: `ffmpeg` renders `FRAMES` noisy `testsrc2` frames as rgb24 (camera-like
//! detail and noise), each compressed at quality 95 (node-hub's `opencv-video-capture` default)
//! with the `image` crate's encoder; each contender decodes them in turn for `ROUNDS` rounds,
//! alternating, and the median per frame is printed. Exactness: mean and worst absolute
//! difference per byte against the source RGB (what JPEG itself loses, plus the decoder's
//! upsampling and rounding), and PSNR.

use std::{process::Command, sync::Arc, time::Instant};

use arrow::buffer::Buffer;
use dora_recorder_test_nodes::compress::ImageFormat;
use dora_video_recorder::{
    Frame, ImageCodec, ImageFrame, decode_jpeg,
    encode::{FfmpegImageDecoder, init_ffmpeg},
};
use ffmpeg_next::{Packet, codec, decoder, frame};

const WIDTH: u32 = 1920;
const HEIGHT: u32 = 1080;
const FRAMES: usize = 6;
const ROUNDS: usize = 10;

fn render_rgb_frames() -> Vec<Vec<u8>> {
    let output = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i"])
        .arg(format!("testsrc2=size={WIDTH}x{HEIGHT}:rate=2"))
        .args(["-vf", "noise=alls=12:allf=t+u", "-frames:v", &FRAMES.to_string()])
        .args(["-pix_fmt", "rgb24", "-f", "rawvideo", "-"])
        .output()
        .expect("run ffmpeg (install it: apt-get install ffmpeg)");
    assert!(output.status.success(), "ffmpeg could not render the test frames");
    let frame_bytes = (WIDTH * HEIGHT * 3) as usize;
    output.stdout.chunks_exact(frame_bytes).map(<[u8]>::to_vec).collect()
}

fn image(jpeg: &[u8]) -> ImageFrame {
    let data = Buffer::from_vec(jpeg.to_vec());
    ImageFrame { codec: ImageCodec::Jpeg, declared: None, sent_nanos: 0, data, ids: Arc::default() }
}

fn median_ms(mut times: Vec<f64>) -> f64 {
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

/// Mean and worst absolute difference, and PSNR in dB.
fn exactness(decoded: &[Frame], sources: &[Vec<u8>]) -> (f64, u8, f64) {
    let (mut sum, mut squares, mut worst, mut count) = (0u64, 0u64, 0u8, 0u64);
    for (frame, source) in decoded.iter().zip(sources) {
        assert_eq!(frame.data.len(), source.len(), "{}", frame.format);
        for (a, b) in frame.data.iter().zip(source) {
            let d = a.abs_diff(*b);
            (sum, squares, worst, count) =
                (sum + u64::from(d), squares + u64::from(d) * u64::from(d), worst.max(d), count + 1);
        }
    }
    let mse = squares as f64 / count as f64;
    (sum as f64 / count as f64, worst, 10.0 * (255.0 * 255.0 / mse).log10())
}

fn ffmpeg_mjpeg_only(jpeg: &[u8], decoder: &mut decoder::Video) {
    decoder.send_packet(&Packet::copy(jpeg)).expect("mjpeg takes the packet");
    let mut picture = frame::Video::empty();
    decoder.receive_frame(&mut picture).expect("mjpeg gives a picture");
}

fn main() {
    init_ffmpeg().expect("FFmpeg initializes");
    let sources = render_rgb_frames();
    let jpegs: Vec<Vec<u8>> =
        sources.iter().map(|rgb| ImageFormat::Jpeg.compress(rgb, WIDTH, HEIGHT).expect("jpeg encodes")).collect();
    let mean_kb = jpegs.iter().map(Vec::len).sum::<usize>() as f64 / jpegs.len() as f64 / 1000.0;
    let mut ffmpeg = FfmpegImageDecoder::default();
    let mjpeg = decoder::find(codec::Id::MJPEG).expect("FFmpeg has mjpeg");
    let mut mjpeg = codec::context::Context::new_with_codec(mjpeg).decoder().video().expect("mjpeg opens");
    let (mut zune_ms, mut ffmpeg_ms, mut mjpeg_ms) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        for jpeg in &jpegs {
            let started = Instant::now();
            std::hint::black_box(decode_jpeg(&image(jpeg)).expect("zune decodes"));
            zune_ms.push(started.elapsed().as_secs_f64() * 1e3);
            let started = Instant::now();
            std::hint::black_box(ffmpeg.decode(&image(jpeg)).expect("FFmpeg decodes"));
            ffmpeg_ms.push(started.elapsed().as_secs_f64() * 1e3);
            let started = Instant::now();
            ffmpeg_mjpeg_only(jpeg, &mut mjpeg);
            mjpeg_ms.push(started.elapsed().as_secs_f64() * 1e3);
        }
    }
    let zune: Vec<Frame> = jpegs.iter().map(|j| decode_jpeg(&image(j)).expect("decodes")).collect();
    let via_ffmpeg: Vec<Frame> = jpegs.iter().map(|j| ffmpeg.decode(&image(j)).expect("decodes")).collect();
    let ((zm, zw, zp), (fm, fw, fp)) = (exactness(&zune, &sources), exactness(&via_ffmpeg, &sources));
    println!("\n1080p JPEG (quality 95, {mean_kb:.0} kB each, {FRAMES} frames x {ROUNDS} rounds), per frame:\n");
    println!("| decoder | output | median ms | mean abs error | worst | PSNR dB |");
    println!("|---|---|---|---|---|---|");
    println!("| zune-jpeg 0.4 (the node) | rgb8 | {:.2} | {zm:.2} | {zw} | {zp:.1} |", median_ms(zune_ms));
    println!("| FFmpeg mjpeg + swscale | rgb8 | {:.2} | {fm:.2} | {fw} | {fp:.1} |", median_ms(ffmpeg_ms));
    println!("| FFmpeg mjpeg alone | yuvj420p | {:.2} | - | - | - |", median_ms(mjpeg_ms));
}
