//! Decode benchmark: 1080p JPEG camera frames into the RGB frames the recorder encodes, with
//! libjpeg-turbo (what the node runs for JPEG: [`JpegDecoder`]) next to `zune-jpeg`, the `image`
//! crate and FFmpeg's mjpeg decoder (with the swscale pass to RGB the node would need, and alone). Prints a markdown table; asserts nothing.
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
    Frame, ImageCodec, ImageFrame, JpegDecoder,
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

/// A contender's decoded picture: RGB it can be checked against the source, or only its own format.
enum Decoded {
    Frame(Frame),
    Rgb(Vec<u8>),
    Native,
}

impl Decoded {
    fn rgb(&self) -> Option<&[u8]> {
        match self {
            Self::Frame(frame) => Some(frame.data.as_slice()),
            Self::Rgb(bytes) => Some(bytes),
            Self::Native => None,
        }
    }
}

/// How a contender decodes one JPEG.
type DecodeFn<'a> = Box<dyn FnMut(&[u8]) -> Decoded + 'a>;

/// One decoder under test: its name, what it outputs, and how it decodes a JPEG.
struct Contender<'a> {
    name: &'static str,
    output: &'static str,
    decode: DecodeFn<'a>,
    times_ms: Vec<f64>,
}

/// Mean and worst absolute difference, and PSNR in dB.
fn exactness(decoded: &[Vec<u8>], sources: &[Vec<u8>]) -> (f64, u8, f64) {
    let (mut sum, mut squares, mut worst, mut count) = (0u64, 0u64, 0u8, 0u64);
    for (rgb, source) in decoded.iter().zip(sources) {
        assert_eq!(rgb.len(), source.len());
        for (a, b) in rgb.iter().zip(source) {
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

fn zune_rgb(jpeg: &[u8]) -> Vec<u8> {
    let options = zune_core::options::DecoderOptions::default()
        .jpeg_set_out_colorspace(zune_core::colorspace::ColorSpace::RGB)
        .set_strict_mode(true);
    zune_jpeg::JpegDecoder::new_with_options(jpeg, options).decode().expect("zune decodes")
}

fn image_crate_rgb(jpeg: &[u8]) -> Vec<u8> {
    image::load_from_memory_with_format(jpeg, image::ImageFormat::Jpeg).expect("image decodes").into_rgb8().into_raw()
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
    let mut turbo = JpegDecoder::default();
    let mut contenders = [
        Contender {
            name: "libjpeg-turbo 2.1 (the node)",
            output: "rgb8",
            decode: Box::new(|jpeg| Decoded::Frame(turbo.decode(&image(jpeg)).expect("libjpeg-turbo decodes"))),
            times_ms: Vec::new(),
        },
        Contender {
            name: "zune-jpeg 0.4",
            output: "rgb8",
            decode: Box::new(|jpeg| Decoded::Rgb(zune_rgb(jpeg))),
            times_ms: Vec::new(),
        },
        Contender {
            name: "image 0.25 (its own decoder)",
            output: "rgb8",
            decode: Box::new(|jpeg| Decoded::Rgb(image_crate_rgb(jpeg))),
            times_ms: Vec::new(),
        },
        Contender {
            name: "FFmpeg mjpeg + swscale",
            output: "rgb8",
            decode: Box::new(|jpeg| Decoded::Frame(ffmpeg.decode(&image(jpeg)).expect("FFmpeg decodes"))),
            times_ms: Vec::new(),
        },
        Contender {
            name: "FFmpeg mjpeg alone",
            output: "yuvj420p",
            decode: Box::new(|jpeg| {
                ffmpeg_mjpeg_only(jpeg, &mut mjpeg);
                Decoded::Native
            }),
            times_ms: Vec::new(),
        },
    ];
    // Alternating frame by frame, so that a load change meanwhile touches every contender alike.
    for _ in 0..ROUNDS {
        for jpeg in &jpegs {
            for contender in &mut contenders {
                let started = Instant::now();
                std::hint::black_box((contender.decode)(jpeg));
                contender.times_ms.push(started.elapsed().as_secs_f64() * 1e3);
            }
        }
    }
    println!("\n1080p JPEG (quality 95, {mean_kb:.0} kB each, {FRAMES} frames x {ROUNDS} rounds), per frame:\n");
    println!("| decoder | output | median ms | mean abs error | worst | PSNR dB |");
    println!("|---|---|---|---|---|---|");
    for contender in &mut contenders {
        let decoded: Vec<Decoded> = jpegs.iter().map(|jpeg| (contender.decode)(jpeg)).collect();
        let rgb: Option<Vec<Vec<u8>>> = decoded.iter().map(|d| d.rgb().map(<[u8]>::to_vec)).collect();
        let error = rgb.map_or_else(
            || "- | - | -".to_owned(),
            |rgb| {
                let (mean, worst, psnr) = exactness(&rgb, &sources);
                format!("{mean:.2} | {worst} | {psnr:.1}")
            },
        );
        let median = median_ms(std::mem::take(&mut contender.times_ms));
        println!("| {} | {} | {median:.2} | {error} |", contender.name, contender.output);
    }
}
