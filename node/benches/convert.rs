//! Convert benchmark: raw camera frames to the encoder's limited-range YUV 4:2:0 picture, with the
//! swscale setup of `encode/convert.rs` next to SIMD converters, timed and checked against an exact
//! floating-point reference. It prints one markdown table per size and asserts nothing.
//!
//! Run: `cargo bench -p dora-video-recorder --bench convert` (needs the `ffmpeg` CLI for the test
//! pictures). Environment: `BENCH_QUICK=1` runs 640x480 only.
//!
//! Method. `ffmpeg` renders `testsrc2` with temporal uniform noise as rgb24 (a few different frames
//! per size); every other encoding is derived from those frames here: bgr8/rgba8/bgra8 by reordering
//! bytes (alpha 255), mono8 as full-range BT.601 luma, nv12 from the reference conversion. Contenders:
//! - (a) swscale with the flags of `convert.rs` (BILINEAR | ACCURATE_RND | FULL_CHR_H_INT) and, for
//!   RGB, the crate's own `ColourMatrix::configure_scaler`;
//! - (b) swscale with BILINEAR only (same matrix set-up);
//! - (c) yuvutils-rs `*_to_yuv420` in its default `Balanced` mode and in `Professional` mode;
//! - (d) dcv-color-primitives `convert_image` to I420;
//! - (e) for mono8 and nv12, which neither crate converts to I420, a plain Rust loop (range LUT or
//!   de-interleave), the obvious alternative.
//!
//! Every contender writes into an FFmpeg `frame::Video` (padded strides, as the encoder gets it).
//! swscale reads the frame already copied into a staging `AVFrame` (the copy `convert.rs` makes
//! first is timed on its own and printed below each table); the crates read the tightly packed
//! payload directly, as they would in the recorder. Each cell is the median of single-frame timings
//! cycling over the frames, taken in `ROUNDS` turns per encoding (contenders alternate, so background
//! load hits all alike) for about `TIME_BUDGET` per cell. Below each table the bench prints how many
//! cores other processes kept busy meanwhile (from `/proc/stat`): on this 2-core machine, times
//! taken while that is far from 0 are inflated, the errors are not.
//!
//! Exactness. The reference converts each pixel with the BT.601 (SD) or BT.709 (HD, as
//! `ColourMatrix::for_size`) limited-range equations in f64 (Y = 16 + 219·Y', Cb/Cr = 128 +
//! 224·(B'−Y')/(2(1−Kb)) etc.), chroma from the mean R'G'B' of each 2x2 block, rounded to the
//! nearest level; grey g maps to Y = 16 + 219·g/255 and Cb = Cr = 128; nv12 must come out unchanged.
//! Errors are the mean and the worst absolute difference per plane over all frames, in levels. A
//! converter is exact enough when every plane has mean < 0.5 and worst <= 2; the fastest exact enough
//! converter of an encoding wins, except that (a), what the recorder runs today, stays the winner when
//! it is exact enough and at most `TIE_MARGIN` slower (timing noise is no reason to change code).
//!
//! Reading swscale's chroma errors: with BILINEAR, swscale halves the chroma height with a 4-tap
//! [1 3 3 1]/8 filter rather than the 2-row mean of the reference (horizontally it does take the
//! pair's mean), so it differs from the reference by many levels next to sharp horizontal edges.
//! That is a different (softer) downsampling filter, not a rounding fault; the SIMD crates and the
//! reference average the 2x2 block.

use std::{
    fmt::Write as _,
    hint::black_box,
    process::Command,
    time::{Duration, Instant},
};

use dcv_color_primitives as dcp;
use dora_video_recorder::{
    PixelEncoding,
    encode::{ColourMatrix, PlaneLayout, ffmpeg_pixel, init_ffmpeg, plane_layouts, planes_mut, rgb_to_yuv420},
};
use ffmpeg_next::{format::Pixel, frame, software::scaling};
use yuvutils_rs::{YuvConversionMode, YuvStandardMatrix};

/// `1` runs only the small size.
const QUICK_ENV: &str = "BENCH_QUICK";
/// Distinct pictures per size; timings cycle over them.
const FRAMES: usize = 4;
/// Wall time spent timing one table cell, at least, split over `ROUNDS` turns.
const TIME_BUDGET: Duration = Duration::from_millis(800);
/// Turns each contender takes per encoding.
const ROUNDS: usize = 5;
/// Timed conversions per cell and round, at least and at most.
const MIN_RUNS_PER_ROUND: usize = 5;
const MAX_RUNS_PER_ROUND: usize = 500;
/// Untimed conversions before each round.
const WARM_UP_RUNS: usize = 2;
/// The project's rule for "exact enough", in levels.
const MAX_MEAN_ERROR: f64 = 0.5;
const MAX_WORST_ERROR: u8 = 2;
/// How much slower than the fastest exact-enough converter (a) may be and still be kept.
const TIE_MARGIN: f64 = 0.10;

/// The encodings the recorder converts (yuv420 goes to the encoder as it is).
const ENCODINGS: [PixelEncoding; 6] = [
    PixelEncoding::Bgr8,
    PixelEncoding::Rgb8,
    PixelEncoding::Rgba8,
    PixelEncoding::Bgra8,
    PixelEncoding::Mono8,
    PixelEncoding::Nv12,
];

/// A picture size under test.
#[derive(Debug, Clone, Copy)]
struct Size {
    width: u32,
    height: u32,
}

impl Size {
    /// Pixels of one picture.
    fn pixels(self) -> usize {
        self.width as usize * self.height as usize
    }

    /// Width and height of a 4:2:0 chroma plane.
    fn chroma(self) -> (usize, usize) {
        ((self.width as usize).div_ceil(2), (self.height as usize).div_ceil(2))
    }

    /// `WxH`.
    fn label(self) -> String {
        format!("{}x{}", self.width, self.height)
    }
}

const SIZES: [Size; 2] = [Size { width: 640, height: 480 }, Size { width: 1920, height: 1080 }];

// ---------------------------------------------------------------------------------------------
// Test pictures and the exact reference

/// A tightly packed I420 picture: Y, then U and V at half resolution.
#[derive(Debug, Clone)]
struct I420 {
    planes: [Vec<u8>; 3],
}

/// One test frame: its rgb24 pixels and their exact conversion.
struct Picture {
    rgb: Vec<u8>,
    reference: I420,
}

/// Renders `FRAMES` noisy `testsrc2` frames as rgb24 with the `ffmpeg` CLI.
fn render_rgb_frames(size: Size) -> Vec<Vec<u8>> {
    let output = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i"])
        .arg(format!("testsrc2=size={}x{}:rate=2", size.width, size.height))
        .args(["-vf", "noise=alls=12:allf=t+u", "-frames:v", &FRAMES.to_string()])
        .args(["-pix_fmt", "rgb24", "-f", "rawvideo", "-"])
        .output()
        .expect("run ffmpeg (install it: apt-get install ffmpeg)");
    assert!(output.status.success(), "ffmpeg could not render the test frames");
    let frame_bytes = size.pixels() * 3;
    assert_eq!(output.stdout.len(), frame_bytes * FRAMES, "ffmpeg wrote an unexpected amount of rgb24");
    output.stdout.chunks_exact(frame_bytes).map(<[u8]>::to_vec).collect()
}

/// Kr and Kb of a matrix.
fn luma_weights(matrix: ColourMatrix) -> (f64, f64) {
    match matrix {
        ColourMatrix::Bt601 => (0.299, 0.114),
        ColourMatrix::Bt709 => (0.2126, 0.0722),
    }
}

/// Limited-range Y, Cb, Cr (unrounded) of one full-range R'G'B' triple.
fn ycbcr(matrix: ColourMatrix, [r, g, b]: [f64; 3]) -> [f64; 3] {
    let (kr, kb) = luma_weights(matrix);
    let luma = kr * r + (1.0 - kr - kb) * g + kb * b;
    let y = 16.0 + 219.0 * luma / 255.0;
    let cb = 128.0 + 224.0 * (b - luma) / (255.0 * 2.0 * (1.0 - kb));
    let cr = 128.0 + 224.0 * (r - luma) / (255.0 * 2.0 * (1.0 - kr));
    [y, cb, cr]
}

/// The nearest 8-bit level.
fn round_level(value: f64) -> u8 {
    value.round().clamp(0.0, 255.0) as u8
}

/// R'G'B' of pixel (`x`, `y`) of a tightly packed rgb24 picture.
fn rgb_at(rgb: &[u8], width: usize, x: usize, y: usize) -> [f64; 3] {
    let at = (y * width + x) * 3;
    [f64::from(rgb[at]), f64::from(rgb[at + 1]), f64::from(rgb[at + 2])]
}

/// The exact limited-range I420 conversion of an even-sized rgb24 picture.
fn reference_i420(rgb: &[u8], size: Size, matrix: ColourMatrix) -> I420 {
    let (width, height) = (size.width as usize, size.height as usize);
    let (chroma_width, chroma_height) = size.chroma();
    let luma = (0..size.pixels()).map(|i| round_level(ycbcr(matrix, rgb_at(rgb, width, i % width, i / width))[0]));
    let mut u = Vec::with_capacity(chroma_width * chroma_height);
    let mut v = Vec::with_capacity(chroma_width * chroma_height);
    for cy in 0..chroma_height {
        for cx in 0..chroma_width {
            let mut mean = [0.0; 3];
            for (dx, dy) in [(0, 0), (1, 0), (0, 1), (1, 1)] {
                let pixel = rgb_at(rgb, width, (2 * cx + dx).min(width - 1), (2 * cy + dy).min(height - 1));
                mean.iter_mut().zip(pixel).for_each(|(sum, c)| *sum += c / 4.0);
            }
            let [_, cb, cr] = ycbcr(matrix, mean);
            u.push(round_level(cb));
            v.push(round_level(cr));
        }
    }
    I420 { planes: [luma.collect(), u, v] }
}

/// Full-range grey of an rgb24 picture (BT.601 luma), the mono8 test input.
fn grey_of(rgb: &[u8]) -> Vec<u8> {
    rgb.chunks_exact(3)
        .map(|p| round_level(0.299 * f64::from(p[0]) + 0.587 * f64::from(p[1]) + 0.114 * f64::from(p[2])))
        .collect()
}

/// The limited-range luma level of a full-range grey level.
fn grey_to_luma(grey: u8) -> u8 {
    round_level(16.0 + 219.0 * f64::from(grey) / 255.0)
}

/// The payload a camera would send in `encoding` for this picture.
fn payload(encoding: PixelEncoding, picture: &Picture) -> Vec<u8> {
    let pixels = picture.rgb.chunks_exact(3);
    match encoding {
        PixelEncoding::Rgb8 => picture.rgb.clone(),
        PixelEncoding::Bgr8 => pixels.flat_map(|p| [p[2], p[1], p[0]]).collect(),
        PixelEncoding::Rgba8 => pixels.flat_map(|p| [p[0], p[1], p[2], 255]).collect(),
        PixelEncoding::Bgra8 => pixels.flat_map(|p| [p[2], p[1], p[0], 255]).collect(),
        PixelEncoding::Mono8 => grey_of(&picture.rgb),
        PixelEncoding::Nv12 => {
            let [y, u, v] = &picture.reference.planes;
            y.iter().copied().chain(u.iter().zip(v).flat_map(|(&u, &v)| [u, v])).collect()
        }
        PixelEncoding::Yuv420 => unreachable!("yuv420 needs no conversion"),
        PixelEncoding::Yuvj420 => unreachable!("a JPEG's planes are benchmarked by the decode bench"),
        PixelEncoding::Mono16 => unreachable!("depth is not converted to YUV (see the depth bench)"),
    }
}

/// What a perfect converter outputs for this picture in `encoding`.
fn expected(encoding: PixelEncoding, picture: &Picture, size: Size) -> I420 {
    if encoding != PixelEncoding::Mono8 {
        return picture.reference.clone();
    }
    let (chroma_width, chroma_height) = size.chroma();
    let neutral = vec![128; chroma_width * chroma_height];
    I420 { planes: [grey_of(&picture.rgb).into_iter().map(grey_to_luma).collect(), neutral.clone(), neutral] }
}

// ---------------------------------------------------------------------------------------------
// FFmpeg frames

/// One frame as every contender receives it.
struct Input {
    /// Tightly packed payload, as it arrives from dora.
    raw: Vec<u8>,
    /// The payload copied into an `AVFrame` of its own pixel format, as `convert.rs` stages it.
    staged: frame::Video,
}

/// Copies a tightly packed payload into `staged` plane by plane, the way `convert.rs` does (even
/// sizes need no padding, so each row is copied as it is).
fn stage(raw: &[u8], layouts: &[PlaneLayout], staged: &mut frame::Video) {
    let mut offset = 0;
    for (index, layout) in layouts.iter().enumerate() {
        let stride = staged.stride(index);
        let source = &raw[offset..offset + layout.row_bytes * layout.rows];
        for (source_row, target_row) in
            source.chunks_exact(layout.row_bytes).zip(staged.data_mut(index).chunks_mut(stride))
        {
            target_row[..layout.row_bytes].copy_from_slice(source_row);
        }
        offset += source.len();
    }
}

/// The payload of `picture` in `encoding`, raw and staged.
fn make_input(encoding: PixelEncoding, picture: &Picture, size: Size) -> Input {
    let raw = payload(encoding, picture);
    let mut staged = frame::Video::new(ffmpeg_pixel(encoding), size.width, size.height);
    stage(&raw, &plane_layouts(encoding, size.width, size.height), &mut staged);
    Input { raw, staged }
}

// ---------------------------------------------------------------------------------------------
// Contenders

/// Converts one input into a YUV420P frame of the same size.
trait Convert {
    /// Converts `input` into `output`, a YUV420P frame of the same size.
    fn run(&mut self, input: &Input, output: &mut frame::Video);
}

/// A converter, or why the library cannot convert this encoding to I420.
type Built = Result<Box<dyn Convert>, &'static str>;

/// Who converts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Contender {
    /// (a) swscale as `convert.rs` sets it up.
    SwsRecorder,
    /// (b) swscale with BILINEAR only.
    SwsDefault,
    /// (c) yuvutils-rs, default mode (13-bit coefficients).
    YuvBalanced,
    /// (c) yuvutils-rs, `professional_mode` feature (15-bit coefficients).
    YuvProfessional,
    /// (d) dcv-color-primitives.
    Dcv,
    /// (e) hand-written loops for mono8 and nv12.
    PlainRust,
}

const CONTENDERS: [Contender; 6] = [
    Contender::SwsRecorder,
    Contender::SwsDefault,
    Contender::YuvBalanced,
    Contender::YuvProfessional,
    Contender::Dcv,
    Contender::PlainRust,
];

impl Contender {
    /// The row label.
    fn name(self) -> &'static str {
        match self {
            Self::SwsRecorder => "(a) swscale, convert.rs flags",
            Self::SwsDefault => "(b) swscale, BILINEAR only",
            Self::YuvBalanced => "(c) yuvutils-rs, Balanced",
            Self::YuvProfessional => "(c) yuvutils-rs, Professional",
            Self::Dcv => "(d) dcv-color-primitives",
            Self::PlainRust => "(e) plain Rust loop",
        }
    }

    /// The converter for `encoding`, `Err` with the reason when the library cannot do it, or
    /// `None` when the row is not worth printing (the plain loop exists only for mono8 and nv12).
    fn build(self, encoding: PixelEncoding, size: Size) -> Option<Built> {
        let matrix = ColourMatrix::for_size(size.width, size.height);
        match self {
            Self::SwsRecorder => Some(Ok(Box::new(Swscale::new(encoding, size, recorder_flags())))),
            Self::SwsDefault => Some(Ok(Box::new(Swscale::new(encoding, size, scaling::Flags::BILINEAR)))),
            Self::YuvBalanced => Some(YuvUtils::converter(encoding, matrix, YuvConversionMode::Balanced)),
            Self::YuvProfessional => Some(YuvUtils::converter(encoding, matrix, YuvConversionMode::Professional)),
            Self::Dcv => Some(Dcv::converter(encoding, matrix)),
            Self::PlainRust => PlainRust::converter(encoding).map(Ok),
        }
    }
}

/// The flags `convert.rs` gives swscale.
fn recorder_flags() -> scaling::Flags {
    scaling::Flags::BILINEAR | scaling::Flags::ACCURATE_RND | scaling::Flags::FULL_CHR_H_INT
}

/// swscale through ffmpeg-next, set up like `convert.rs` apart from the flags.
struct Swscale(scaling::Context);

impl Swscale {
    fn new(encoding: PixelEncoding, size: Size, flags: scaling::Flags) -> Self {
        let (width, height) = (size.width, size.height);
        let mut context =
            scaling::Context::get(ffmpeg_pixel(encoding), width, height, Pixel::YUV420P, width, height, flags)
                .expect("swscale context");
        if encoding.is_rgb() {
            ColourMatrix::for_size(width, height).configure_scaler(&mut context).expect("swscale colour details");
        }
        Self(context)
    }
}

impl Convert for Swscale {
    fn run(&mut self, input: &Input, output: &mut frame::Video) {
        self.0.run(&input.staged, output).expect("swscale run");
    }
}

/// yuvutils-rs: `{bgr,rgb,rgba,bgra}_to_yuv420` into the frame's planes at their strides.
struct YuvUtils {
    encoding: PixelEncoding,
    matrix: YuvStandardMatrix,
    mode: YuvConversionMode,
}

impl YuvUtils {
    /// A converter for an RGB `encoding`, or why yuvutils-rs cannot convert it to I420.
    fn converter(encoding: PixelEncoding, matrix: ColourMatrix, mode: YuvConversionMode) -> Built {
        match encoding {
            PixelEncoding::Mono8 => Err("n/a: no grey to I420 (only RGB to Y-only yuv400)"),
            PixelEncoding::Nv12 => Err("n/a: no NV12 to I420 (NV12 converts to RGB only)"),
            _ => {
                let matrix = match matrix {
                    ColourMatrix::Bt601 => YuvStandardMatrix::Bt601,
                    ColourMatrix::Bt709 => YuvStandardMatrix::Bt709,
                };
                Ok(Box::new(Self { encoding, matrix, mode }))
            }
        }
    }
}

impl Convert for YuvUtils {
    fn run(&mut self, input: &Input, output: &mut frame::Video) {
        let size = (output.width(), output.height());
        rgb_to_yuv420(self.encoding, &input.raw, size, self.matrix, self.mode, output).expect("yuvutils-rs conversion");
    }
}

/// dcv-color-primitives: `convert_image` from BGR/BGRA to three-plane I420 at the frame's strides.
struct Dcv {
    source: dcp::ImageFormat,
    target: dcp::ImageFormat,
}

impl Dcv {
    /// A converter for `encoding`, or why dcv-color-primitives cannot convert it to I420.
    fn converter(encoding: PixelEncoding, matrix: ColourMatrix) -> Built {
        let pixel_format = match encoding {
            PixelEncoding::Bgr8 => dcp::PixelFormat::Bgr,
            PixelEncoding::Bgra8 => dcp::PixelFormat::Bgra,
            PixelEncoding::Rgb8 | PixelEncoding::Rgba8 => return Err("n/a: to I420 only from BGR, BGRA and ARGB"),
            PixelEncoding::Mono8 => return Err("n/a: no grey input"),
            _ => return Err("n/a: NV12 converts to RGB only"),
        };
        let color_space = match matrix {
            ColourMatrix::Bt601 => dcp::ColorSpace::Bt601,
            ColourMatrix::Bt709 => dcp::ColorSpace::Bt709,
        };
        let source = dcp::ImageFormat { pixel_format, color_space: dcp::ColorSpace::Rgb, num_planes: 1 };
        let target = dcp::ImageFormat { pixel_format: dcp::PixelFormat::I420, color_space, num_planes: 3 };
        Ok(Box::new(Self { source, target }))
    }
}

impl Convert for Dcv {
    fn run(&mut self, input: &Input, output: &mut frame::Video) {
        let (width, height) = (output.width(), output.height());
        let (planes, strides) = planes_mut(output);
        let [y, u, v] = planes;
        dcp::convert_image(
            width,
            height,
            &self.source,
            None,
            &[&input.raw],
            &self.target,
            Some(&strides),
            &mut [y, u, v],
        )
        .expect("dcv-color-primitives conversion");
    }
}

/// The obvious hand-written loops: grey through a range LUT, NV12 de-interleaved.
struct PlainRust {
    encoding: PixelEncoding,
    luma: [u8; 256],
}

impl PlainRust {
    /// A converter for mono8 or nv12; `None` for the RGB encodings, which the crates cover.
    fn converter(encoding: PixelEncoding) -> Option<Box<dyn Convert>> {
        let luma = std::array::from_fn(|grey| grey_to_luma(grey as u8));
        matches!(encoding, PixelEncoding::Mono8 | PixelEncoding::Nv12)
            .then(|| Box::new(Self { encoding, luma }) as Box<dyn Convert>)
    }

    /// Full-range grey to limited-range luma through the LUT, neutral chroma.
    fn grey(&self, raw: &[u8], width: usize, [y, u, v]: [&mut [u8]; 3], [y_stride, u_stride, v_stride]: [usize; 3]) {
        for (source, target) in raw.chunks_exact(width).zip(y.chunks_mut(y_stride)) {
            target.iter_mut().zip(source).for_each(|(out, &grey)| *out = self.luma[usize::from(grey)]);
        }
        for (plane, stride) in [(u, u_stride), (v, v_stride)] {
            plane.chunks_mut(stride).for_each(|row| row[..width.div_ceil(2)].fill(128));
        }
    }
}

/// Copies NV12 luma rows and splits the interleaved chroma into U and V.
fn deinterleave_nv12(raw: &[u8], width: usize, height: usize, [y, u, v]: [&mut [u8]; 3], strides: [usize; 3]) {
    let (luma, chroma) = raw.split_at(width * height);
    for (source, target) in luma.chunks_exact(width).zip(y.chunks_mut(strides[0])) {
        target[..width].copy_from_slice(source);
    }
    let chroma_width = width.div_ceil(2);
    let rows = chroma.chunks_exact(2 * chroma_width).zip(u.chunks_mut(strides[1])).zip(v.chunks_mut(strides[2]));
    for ((source, u_row), v_row) in rows {
        // Equal, known lengths let the compiler vectorise the split.
        let (u_row, v_row) = (&mut u_row[..chroma_width], &mut v_row[..chroma_width]);
        for (index, pair) in source.chunks_exact(2).enumerate() {
            u_row[index] = pair[0];
            v_row[index] = pair[1];
        }
    }
}

impl Convert for PlainRust {
    fn run(&mut self, input: &Input, output: &mut frame::Video) {
        let (width, height) = (output.width() as usize, output.height() as usize);
        let (planes, strides) = planes_mut(output);
        if self.encoding == PixelEncoding::Mono8 {
            self.grey(&input.raw, width, planes, strides);
        } else {
            deinterleave_nv12(&input.raw, width, height, planes, strides);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Measuring

/// Mean and worst absolute error of each plane, in levels.
#[derive(Debug, Clone, Copy, Default)]
struct Errors {
    sum: [u64; 3],
    count: [u64; 3],
    worst: [u8; 3],
}

impl Errors {
    /// Adds the differences between `output` (strided) and `expected` (packed).
    fn add(&mut self, output: &frame::Video, expected: &I420, size: Size) {
        let (chroma_width, _) = size.chroma();
        for (index, plane) in expected.planes.iter().enumerate() {
            let width = if index == 0 { size.width as usize } else { chroma_width };
            let rows = output.data(index).chunks(output.stride(index));
            for (got, want) in rows.zip(plane.chunks_exact(width)) {
                for (&got, &want) in got.iter().zip(want) {
                    let error = got.abs_diff(want);
                    self.sum[index] += u64::from(error);
                    self.worst[index] = self.worst[index].max(error);
                }
                self.count[index] += width as u64;
            }
        }
    }

    /// Mean absolute error of each plane.
    fn mean(&self) -> [f64; 3] {
        [0, 1, 2].map(|index| self.sum[index] as f64 / self.count[index].max(1) as f64)
    }

    /// The project's rule: every plane with mean < 0.5 and worst <= 2 levels.
    fn exact_enough(&self) -> bool {
        self.mean().iter().all(|&mean| mean < MAX_MEAN_ERROR)
            && self.worst.iter().all(|&worst| worst <= MAX_WORST_ERROR)
    }
}

/// One table row.
struct Row {
    encoding: PixelEncoding,
    contender: Contender,
    /// Median ms per frame and the errors, or why the contender cannot convert this encoding.
    outcome: Result<(f64, Errors), &'static str>,
}

/// Times single-frame conversions for `budget` (at least `MIN_RUNS_PER_ROUND`), cycling over
/// `inputs`, and appends them to `samples` in ms.
fn time_round(
    converter: &mut dyn Convert,
    inputs: &[Input],
    output: &mut frame::Video,
    budget: Duration,
    samples: &mut Vec<f64>,
) {
    for input in inputs.iter().cycle().take(WARM_UP_RUNS) {
        converter.run(input, output);
    }
    let started = Instant::now();
    for (runs, input) in inputs.iter().cycle().enumerate() {
        let start = Instant::now();
        converter.run(black_box(input), output);
        black_box(&*output);
        samples.push(start.elapsed().as_secs_f64() * 1e3);
        let enough = runs + 1 >= MIN_RUNS_PER_ROUND && started.elapsed() >= budget;
        if enough || runs + 1 >= MAX_RUNS_PER_ROUND {
            break;
        }
    }
}

/// The median of non-empty samples.
fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

/// Errors of one conversion of every input against what it should give.
fn measure_errors(
    converter: &mut dyn Convert,
    inputs: &[Input],
    expected: &[I420],
    output: &mut frame::Video,
    size: Size,
) -> Errors {
    let mut errors = Errors::default();
    for (input, expected) in inputs.iter().zip(expected) {
        converter.run(input, output);
        errors.add(output, expected, size);
    }
    errors
}

/// Every contender on one encoding at one size. The contenders take turns for `ROUNDS` rounds, so
/// a slow patch of the machine (other work on it) hits all of them alike.
fn bench_encoding(encoding: PixelEncoding, pictures: &[Picture], size: Size) -> Vec<Row> {
    let inputs: Vec<Input> = pictures.iter().map(|picture| make_input(encoding, picture, size)).collect();
    let expected: Vec<I420> = pictures.iter().map(|picture| expected(encoding, picture, size)).collect();
    let mut output = frame::Video::new(Pixel::YUV420P, size.width, size.height);
    let mut built: Vec<(Contender, Built)> = CONTENDERS
        .iter()
        .filter_map(|&contender| contender.build(encoding, size).map(|converter| (contender, converter)))
        .collect();
    let errors: Vec<Option<Errors>> = built
        .iter_mut()
        .map(|(_, converter)| {
            let converter = converter.as_mut().ok()?;
            Some(measure_errors(converter.as_mut(), &inputs, &expected, &mut output, size))
        })
        .collect();
    let mut samples = vec![Vec::new(); built.len()];
    for _ in 0..ROUNDS {
        for ((_, converter), samples) in built.iter_mut().zip(&mut samples) {
            if let Ok(converter) = converter {
                time_round(converter.as_mut(), &inputs, &mut output, TIME_BUDGET / ROUNDS as u32, samples);
            }
        }
    }
    built
        .into_iter()
        .zip(errors)
        .zip(samples)
        .map(|(((contender, converter), errors), samples)| {
            let outcome = converter.map(|_| (median(samples), errors.unwrap_or_default()));
            Row { encoding, contender, outcome }
        })
        .collect()
}

/// Median ms of the copy into the staging `AVFrame` that `convert.rs` makes before swscale.
fn staging_copy_ms(encoding: PixelEncoding, pictures: &[Picture], size: Size) -> f64 {
    let raws: Vec<Vec<u8>> = pictures.iter().map(|picture| payload(encoding, picture)).collect();
    let layouts = plane_layouts(encoding, size.width, size.height);
    let mut staged = frame::Video::new(ffmpeg_pixel(encoding), size.width, size.height);
    let started = Instant::now();
    let mut samples = Vec::new();
    for raw in raws.iter().cycle() {
        let start = Instant::now();
        stage(black_box(raw), &layouts, &mut staged);
        black_box(&staged);
        samples.push(start.elapsed().as_secs_f64() * 1e3);
        if samples.len() >= ROUNDS * MIN_RUNS_PER_ROUND && started.elapsed() >= TIME_BUDGET / 4 {
            break;
        }
    }
    median(samples)
}

/// CPU seconds all cores of the machine have spent busy, from `/proc/stat` (0 if unreadable).
fn machine_busy_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let Some(fields) = stat.lines().next().and_then(|line| line.strip_prefix("cpu ")) else { return 0.0 };
    let ticks: Vec<f64> = fields.split_whitespace().filter_map(|field| field.parse().ok()).collect();
    // Fields: user nice system idle iowait irq softirq steal; idle and iowait are not busy.
    let busy: f64 = [0, 1, 2, 5, 6, 7].into_iter().filter_map(|index| ticks.get(index)).sum();
    // SAFETY: sysconf only reads a configuration value.
    let ticks_per_sec = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    busy / ticks_per_sec
}

/// CPU seconds (user + system) this process has used.
fn own_cpu_secs() -> f64 {
    // SAFETY: an all-zero rusage is valid, and getrusage only writes into it.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `usage` is a valid, writable rusage.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let secs = |time: libc::timeval| time.tv_sec as f64 + time.tv_usec as f64 / 1e6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}

/// How busy other work kept the machine while a table was measured.
struct LoadProbe {
    started: Instant,
    machine: f64,
    own: f64,
}

impl LoadProbe {
    /// Starts counting now.
    fn start() -> Self {
        Self { started: Instant::now(), machine: machine_busy_secs(), own: own_cpu_secs() }
    }

    /// Cores, on average, that other processes kept busy since `start`.
    fn other_cores(&self) -> f64 {
        let others = (machine_busy_secs() - self.machine) - (own_cpu_secs() - self.own);
        (others / self.started.elapsed().as_secs_f64()).max(0.0)
    }
}

// ---------------------------------------------------------------------------------------------
// Report

/// The fastest exact-enough contender of an encoding, or (a) if it is exact enough and within
/// `TIE_MARGIN` of that.
fn winner(rows: &[Row], encoding: PixelEncoding) -> Option<(Contender, f64)> {
    let exact_enough: Vec<(Contender, f64)> = rows
        .iter()
        .filter(|row| row.encoding == encoding)
        .filter_map(|row| match &row.outcome {
            Ok((ms, errors)) if errors.exact_enough() => Some((row.contender, *ms)),
            _ => None,
        })
        .collect();
    let fastest = exact_enough.iter().copied().min_by(|a, b| a.1.total_cmp(&b.1))?;
    let incumbent = exact_enough.iter().copied().find(|(contender, _)| *contender == Contender::SwsRecorder);
    match incumbent {
        Some((_, ms)) if ms <= fastest.1 * (1.0 + TIE_MARGIN) => incumbent,
        _ => Some(fastest),
    }
}

/// Time of (a) for an encoding, the baseline of the speed-up column.
fn baseline_ms(rows: &[Row], encoding: PixelEncoding) -> Option<f64> {
    rows.iter().find(|row| row.encoding == encoding && row.contender == Contender::SwsRecorder).and_then(
        |row| match row.outcome {
            Ok((ms, _)) => Some(ms),
            Err(_) => None,
        },
    )
}

/// `y / u / v`.
fn triple<T>(values: [T; 3], format: impl Fn(T) -> String) -> String {
    values.map(format).join(" / ")
}

/// One markdown row; `rows` gives the baseline and the winner.
fn format_row(row: &Row, rows: &[Row]) -> String {
    let encoding = row.encoding.name();
    let name = row.contender.name();
    match &row.outcome {
        Err(reason) => format!("| {encoding} | {name} | – | – | – | – | {reason} |"),
        Ok((ms, errors)) => {
            let speed_up =
                baseline_ms(rows, row.encoding).map_or("–".to_owned(), |base| format!("{:.1}x", base / ms));
            let verdict = match (errors.exact_enough(), winner(rows, row.encoding)) {
                (true, Some((best, _))) if best == row.contender => "**winner**",
                (true, _) => "exact enough",
                (false, _) => "too inexact",
            };
            let mean = triple(errors.mean(), |mean| format!("{mean:.3}"));
            let worst = triple(errors.worst, |worst| worst.to_string());
            format!("| {encoding} | {name} | {ms:.3} | {speed_up} | {mean} | {worst} | {verdict} |")
        }
    }
}

/// The markdown table of one size and the staging copy times below it.
fn print_table(size: Size, rows: &[Row], staging: &[(PixelEncoding, f64)], other_cores: f64) {
    let matrix = match ColourMatrix::for_size(size.width, size.height) {
        ColourMatrix::Bt601 => "BT.601",
        ColourMatrix::Bt709 => "BT.709",
    };
    println!("\n### {} to yuv420p, limited range, {matrix}\n", size.label());
    println!("| encoding | converter | ms/frame | vs (a) | mean error Y / U / V | worst Y / U / V | verdict |");
    println!("| --- | --- | ---: | ---: | --- | --- | --- |");
    for row in rows {
        println!("{}", format_row(row, rows));
    }
    let mut copies = String::new();
    for (encoding, ms) in staging {
        let _ = write!(copies, " {} {ms:.3} ms;", encoding.name());
    }
    println!("\nStaging copy that (a) and (b) also pay in `convert.rs` (payload into an AVFrame):{copies}");
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    println!(
        "Other work on the machine meanwhile: {other_cores:.2} of {cores} cores busy on average (times are inflated \
         when this is far from 0)."
    );
}

/// The winner of each encoding at each size.
fn print_winners(results: &[(Size, Vec<Row>)]) {
    let sizes: Vec<String> = results.iter().map(|(size, _)| size.label()).collect();
    println!(
        "\n### Fastest exact-enough converter (mean < {MAX_MEAN_ERROR}, worst <= {MAX_WORST_ERROR} levels; (a) kept \
         when within {:.0} %)\n",
        TIE_MARGIN * 100.0
    );
    println!("| encoding | {} |", sizes.join(" | "));
    println!("|---{}", " | ---".repeat(sizes.len()) + " |");
    for encoding in ENCODINGS {
        let cells: Vec<String> = results
            .iter()
            .map(|(_, rows)| match (winner(rows, encoding), baseline_ms(rows, encoding)) {
                (Some((contender, ms)), Some(base)) => {
                    format!("{} ({ms:.2} ms, {:.1}x vs (a))", contender.name(), base / ms)
                }
                _ => "none".to_owned(),
            })
            .collect();
        println!("| {} | {} |", encoding.name(), cells.join(" | "));
    }
}

/// Renders the pictures, measures every size and prints the tables.
fn main() {
    init_ffmpeg().expect("initialise FFmpeg");
    let quick = std::env::var(QUICK_ENV).is_ok_and(|value| value == "1");
    let sizes = if quick { &SIZES[..1] } else { &SIZES[..] };
    let min_runs = ROUNDS * MIN_RUNS_PER_ROUND;
    println!(
        "Convert benchmark: per cell the median of >= {min_runs} single-frame runs in {ROUNDS} alternating rounds, \
         {FRAMES} noisy testsrc2 frames."
    );
    println!("dcv-color-primitives acceleration: {}", dcp::describe_acceleration());
    let mut results = Vec::new();
    for &size in sizes {
        let matrix = ColourMatrix::for_size(size.width, size.height);
        let pictures: Vec<Picture> = render_rgb_frames(size)
            .into_iter()
            .map(|rgb| Picture { reference: reference_i420(&rgb, size, matrix), rgb })
            .collect();
        let load = LoadProbe::start();
        let rows: Vec<Row> = ENCODINGS.iter().flat_map(|&encoding| bench_encoding(encoding, &pictures, size)).collect();
        let staging: Vec<(PixelEncoding, f64)> =
            ENCODINGS.iter().map(|&encoding| (encoding, staging_copy_ms(encoding, &pictures, size))).collect();
        print_table(size, &rows, &staging, load.other_cores());
        results.push((size, rows));
    }
    print_winners(&results);
}
