//! Decode benchmark: 1080p JPEG camera frames into the encoder's picture (limited-range I420,
//! BT.709 for HD), the work a JPEG camera costs the recorder before x264. The node's path
//! (libjpeg-turbo into the JPEG's own planes, then one pass into range and matrix:
//! [`JpegDecoder`] and `frame::ycbcr`) next to the same decoder into RGB, `zune-jpeg` and the
//! `image` crate into RGB (each then through the node's RGB converter), and FFmpeg's mjpeg
//! decoder plus swscale to yuv420p (what `ffmpeg -f mjpeg -i - -pix_fmt yuv420p` does; it keeps
//! BT.601). Prints a markdown table; asserts nothing.
//!
//! Run: `cargo bench -p dora-video-recorder --bench decode` (needs the `ffmpeg` CLI for the
//! pictures). Method: `ffmpeg` renders `FRAMES` noisy `testsrc2` frames as rgb24 (camera-like
//! detail and noise), each compressed as `cv2.imencode` does (libjpeg-turbo, 4:2:0, quality 95);
//! each contender turns them into pictures in turn for `ROUNDS` rounds, alternating, and the
//! median per frame is printed. Exactness: luma PSNR, and mean absolute error of luma and
//! chroma, against the exact conversion of the source RGB into the matrix the contender's
//! picture is in (what JPEG itself loses, plus the contender's rounding and filtering).

use std::{process::Command, sync::Arc, time::Instant};

use arrow::buffer::Buffer;
use dora_recorder_test_nodes::compress::ImageFormat;
use dora_video_recorder::{
    Frame, FrameFormat, ImageCodec, ImageFrame, JpegDecoder, PixelEncoding,
    encode::{Converter, init_ffmpeg, planes_mut},
};
use ffmpeg_next::{Packet, codec, decoder, format::Pixel, frame, software::scaling};

const WIDTH: u32 = 1920;
const HEIGHT: u32 = 1080;
const FRAMES: usize = 6;
const ROUNDS: usize = 10;
/// Luma weights (Kr, Kb).
const BT709: (f64, f64) = (0.2126, 0.0722);
const BT601: (f64, f64) = (0.299, 0.114);

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

/// The exact limited-range I420 planes of `rgb` in the matrix of `weights` (chroma: the mean of
/// each 2x2 block).
fn reference_planes(rgb: &[u8], (red, blue): (f64, f64)) -> [Vec<f64>; 3] {
    let (w, h) = (WIDTH as usize, HEIGHT as usize);
    let mut planes = [vec![0.0; w * h], vec![0.0; w * h / 4], vec![0.0; w * h / 4]];
    for (index, pixel) in rgb.chunks_exact(3).enumerate() {
        let [r, g, b] = [0, 1, 2].map(|c| f64::from(pixel[c]) / 255.0);
        let luma = red * r + (1.0 - red - blue) * g + blue * b;
        let (cb, cr) = ((b - luma) / (2.0 * (1.0 - blue)), (r - luma) / (2.0 * (1.0 - red)));
        let block = (index / w / 2) * (w / 2) + (index % w) / 2;
        planes[0][index] = 16.0 + 219.0 * luma;
        planes[1][block] += (128.0 + 224.0 * cb) / 4.0;
        planes[2][block] += (128.0 + 224.0 * cr) / 4.0;
    }
    planes
}

/// Luma PSNR (dB), luma and chroma mean absolute error of `picture` against `reference`.
fn exactness(picture: &mut frame::Video, reference: &[Vec<f64>; 3]) -> [f64; 3] {
    let (w, h) = (WIDTH as usize, HEIGHT as usize);
    let (planes, strides) = planes_mut(picture);
    let mut errors = [(0.0, 0.0); 3];
    for (plane, (width, height)) in [(w, h), (w / 2, h / 2), (w / 2, h / 2)].into_iter().enumerate() {
        for row in 0..height {
            for column in 0..width {
                let got = f64::from(planes[plane][row * strides[plane] + column]);
                let error = got - reference[plane][row * width + column];
                errors[plane].0 += error.abs() / (width * height) as f64;
                errors[plane].1 += error * error / (width * height) as f64;
            }
        }
    }
    let psnr = 10.0 * (219.0 * 219.0 / errors[0].1).log10();
    [psnr, errors[0].0, (errors[1].0 + errors[2].0) / 2.0]
}

/// How a contender turns a JPEG into an encoder picture.
type ToPictureFn<'a> = Box<dyn FnMut(&[u8]) -> frame::Video + 'a>;

/// One contender: its name, the matrix its pictures are in, and how it turns a JPEG into one.
struct Contender<'a> {
    name: &'static str,
    matrix: (f64, f64),
    picture: ToPictureFn<'a>,
    times_ms: Vec<f64>,
}

/// Converts decoded frames into encoder pictures, as the camera worker's encoder does.
struct ToPicture {
    converter: Option<Converter>,
}

impl ToPicture {
    fn convert(&mut self, frame: &Frame) -> frame::Video {
        let converter = self.converter.get_or_insert_with(|| Converter::new(frame.format).expect("converter opens"));
        let mut picture = converter.new_picture();
        converter.convert_into(frame, 0, &mut picture).expect("converts");
        picture
    }
}

fn rgb_frame(rgb: Vec<u8>) -> Frame {
    let format = FrameFormat { encoding: PixelEncoding::Rgb8, width: WIDTH, height: HEIGHT };
    Frame { format, sent_nanos: 0, data: Buffer::from_vec(rgb), ids: Arc::default() }
}

fn turbo_rgb(jpeg: &[u8], decompressor: &mut turbojpeg::Decompressor) -> Vec<u8> {
    let (w, h) = (WIDTH as usize, HEIGHT as usize);
    let mut rgb = vec![0; w * h * 3];
    let image = turbojpeg::Image {
        pixels: rgb.as_mut_slice(),
        width: w,
        pitch: w * 3,
        height: h,
        format: turbojpeg::PixelFormat::RGB,
    };
    decompressor.decompress(jpeg, image).expect("libjpeg-turbo decodes");
    rgb
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

/// FFmpeg's mjpeg decoder, then swscale from yuvj420p to yuv420p (range only, BT.601 kept).
fn ffmpeg_picture(jpeg: &[u8], decoder: &mut decoder::Video, scaler: &mut Option<scaling::Context>) -> frame::Video {
    decoder.send_packet(&Packet::copy(jpeg)).expect("mjpeg takes the packet");
    let mut decoded = frame::Video::empty();
    decoder.receive_frame(&mut decoded).expect("mjpeg gives a picture");
    let scaler = scaler.get_or_insert_with(|| {
        let flags = scaling::Flags::BICUBIC;
        scaling::Context::get(decoded.format(), WIDTH, HEIGHT, Pixel::YUV420P, WIDTH, HEIGHT, flags).expect("swscale")
    });
    let mut picture = frame::Video::new(Pixel::YUV420P, WIDTH, HEIGHT);
    scaler.run(&decoded, &mut picture).expect("swscale converts");
    picture
}

fn main() {
    init_ffmpeg().expect("FFmpeg initializes");
    let sources = render_rgb_frames();
    let jpegs: Vec<Vec<u8>> =
        sources.iter().map(|rgb| ImageFormat::Jpeg.compress(rgb, WIDTH, HEIGHT).expect("jpeg encodes")).collect();
    let mean_kb = jpegs.iter().map(Vec::len).sum::<usize>() as f64 / jpegs.len() as f64 / 1000.0;
    let mjpeg = decoder::find(codec::Id::MJPEG).expect("FFmpeg has mjpeg");
    let mut mjpeg = codec::context::Context::new_with_codec(mjpeg).decoder().video().expect("mjpeg opens");
    let mut scaler = None;
    let mut node = (JpegDecoder::default(), ToPicture { converter: None });
    let mut turbo = (turbojpeg::Decompressor::new().expect("libjpeg-turbo"), ToPicture { converter: None });
    let mut zune = ToPicture { converter: None };
    let mut image_crate = ToPicture { converter: None };
    let mut contenders = [
        Contender {
            name: "libjpeg-turbo planes + ycbcr (the node)",
            matrix: BT709,
            picture: Box::new(|jpeg| node.1.convert(&node.0.decode(&image(jpeg)).expect("libjpeg-turbo decodes"))),
            times_ms: Vec::new(),
        },
        Contender {
            name: "libjpeg-turbo RGB + yuvutils",
            matrix: BT709,
            picture: Box::new(|jpeg| turbo.1.convert(&rgb_frame(turbo_rgb(jpeg, &mut turbo.0)))),
            times_ms: Vec::new(),
        },
        Contender {
            name: "zune-jpeg 0.4 RGB + yuvutils",
            matrix: BT709,
            picture: Box::new(|jpeg| zune.convert(&rgb_frame(zune_rgb(jpeg)))),
            times_ms: Vec::new(),
        },
        Contender {
            name: "image 0.25 RGB + yuvutils",
            matrix: BT709,
            picture: Box::new(|jpeg| image_crate.convert(&rgb_frame(image_crate_rgb(jpeg)))),
            times_ms: Vec::new(),
        },
        Contender {
            name: "FFmpeg mjpeg + swscale (the CLI's path, BT.601 kept)",
            matrix: BT601,
            picture: Box::new(|jpeg| ffmpeg_picture(jpeg, &mut mjpeg, &mut scaler)),
            times_ms: Vec::new(),
        },
    ];
    // Alternating frame by frame, so that a load change meanwhile touches every contender alike.
    for _ in 0..ROUNDS {
        for jpeg in &jpegs {
            for contender in &mut contenders {
                let started = Instant::now();
                std::hint::black_box((contender.picture)(jpeg));
                contender.times_ms.push(started.elapsed().as_secs_f64() * 1e3);
            }
        }
    }
    println!(
        "\n1080p JPEG (4:2:0, quality 95, {mean_kb:.0} kB each, {FRAMES} frames x {ROUNDS} rounds) into the encoder's I420 picture, per frame:\n"
    );
    println!("| decoder | median ms | luma PSNR dB | luma mean abs error | chroma mean abs error |");
    println!("|---|---|---|---|---|");
    for contender in &mut contenders {
        let mut sums = [0.0; 3];
        for (jpeg, source) in jpegs.iter().zip(&sources) {
            let reference = reference_planes(source, contender.matrix);
            let measured = exactness(&mut (contender.picture)(jpeg), &reference);
            sums.iter_mut().zip(measured).for_each(|(sum, value)| *sum += value / FRAMES as f64);
        }
        let median = median_ms(std::mem::take(&mut contender.times_ms));
        println!("| {} | {median:.2} | {:.1} | {:.2} | {:.2} |", contender.name, sums[0], sums[1], sums[2]);
    }
}
