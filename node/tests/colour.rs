//! Right colours: a colour chart (FFmpeg's `smptehdbars`) recorded from bgr8 and rgb8 frames
//! decodes back to the chart's colours, and the stream carries the matrix it was converted with.

#![allow(clippy::unwrap_used)]

mod support;

use std::{path::Path, process::Command};

use serde_json::Value;
use support::{Script, temp_storage, videos_in};

const CAMERA: [(&str, &str); 1] = [("image", "camera/image")];

/// The chart as packed 8-bit pixels (`bgr24` or `rgb24`), rendered by FFmpeg.
fn chart(width: u32, height: u32, pix_fmt: &str) -> Vec<u8> {
    let output = Command::new("ffmpeg")
        .args(["-v", "error", "-f", "lavfi", "-i", &format!("smptehdbars=size={width}x{height}")])
        .args(["-frames:v", "1", "-f", "rawvideo", "-pix_fmt", pix_fmt, "-"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    output.stdout
}

/// The first frame of `path` decoded to rgb24 with exact rounding (FFmpeg's default swscale
/// flags alone are 4 levels off on saturated colours).
fn decode_rgb(path: &Path) -> Vec<u8> {
    let output = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(path)
        .args(["-frames:v", "1", "-sws_flags", "bilinear+accurate_rnd+full_chroma_int", "-f", "rawvideo"])
        .args(["-pix_fmt", "rgb24", "-"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    output.stdout
}

/// The largest per-channel difference over pixels inside uniform patches (every pixel within
/// `margin` of it has the same colour in the chart), so edges blurred by 4:2:0 do not count.
fn worst_patch_error(expected: &[u8], actual: &[u8], width: usize, height: usize, margin: usize) -> (u8, usize) {
    fn pixel(data: &[u8], width: usize, x: usize, y: usize) -> &[u8] {
        &data[(y * width + x) * 3..][..3]
    }
    let (mut worst, mut counted) = (0u8, 0usize);
    for y in margin..height - margin {
        for x in margin..width - margin {
            let centre = pixel(expected, width, x, y);
            let uniform = (y - margin..=y + margin)
                .step_by(margin)
                .all(|yy| (x - margin..=x + margin).step_by(margin).all(|xx| pixel(expected, width, xx, yy) == centre));
            if uniform {
                counted += 1;
                let got = pixel(actual, width, x, y);
                worst = (0..3).map(|c| centre[c].abs_diff(got[c])).fold(worst, u8::max);
            }
        }
    }
    (worst, counted)
}

fn stream_colour_tags(path: &Path) -> Value {
    let output = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-of", "json", "-show_entries"])
        .arg("stream=color_space,color_primaries,color_transfer,color_range")
        .arg(path)
        .output()
        .unwrap();
    serde_json::from_slice::<Value>(&output.stdout).unwrap()["streams"][0].clone()
}

/// Records two frames of the chart. At `CRF=0` what is left is the colour conversion alone; at
/// the default `CRF=23` x264's quantization adds a few levels on saturated chroma (a wrong
/// matrix would be 13 to 41 levels off).
fn record_chart(
    name: &str,
    encoding: &str,
    pix_fmt: &str,
    (width, height): (u32, u32),
    crf: &str,
) -> std::path::PathBuf {
    let dir = temp_storage(name);
    let storage = dir.display().to_string();
    let pixels = chart(width, height, pix_fmt);
    let (result, _) = Script::new(&CAMERA)
        .frame("image", 0.0, encoding, i64::from(width), i64::from(height), pixels.clone())
        .frame("image", 0.1, encoding, i64::from(width), i64::from(height), pixels)
        .stop(0.4)
        .run(&[("STORAGE", &storage), ("CRF", crf)]);
    result.unwrap();
    videos_in(&dir).remove(0)
}

/// Worst error allowed: the 3 levels for the conversion, more once x264 quantizes.
fn tolerance(crf: &str) -> u8 {
    if crf == "0" { 3 } else { 8 }
}

#[test]
fn an_hd_chart_keeps_its_colours_and_is_tagged_bt709() {
    let size = (1280, 720);
    let expected = chart(size.0, size.1, "rgb24");
    for (encoding, pix_fmt, crf) in [("bgr8", "bgr24", "0"), ("rgb8", "rgb24", "0"), ("bgr8", "bgr24", "23")] {
        let file = record_chart(&format!("colour-hd-{encoding}-{crf}"), encoding, pix_fmt, size, crf);
        let (worst, counted) = worst_patch_error(&expected, &decode_rgb(&file), size.0 as usize, size.1 as usize, 8);
        assert!(counted > 300_000, "most of the chart is inside patches: {counted}");
        assert!(worst <= tolerance(crf), "{encoding} at CRF {crf}: a patch is {worst} levels off");
        let tags = stream_colour_tags(&file);
        for key in ["color_space", "color_primaries", "color_transfer"] {
            assert_eq!(tags[key], "bt709", "{encoding}: {tags}");
        }
        assert_eq!(tags["color_range"], "tv", "{tags}");
    }
}

#[test]
fn an_sd_chart_keeps_its_colours_and_is_tagged_bt601() {
    let size = (640, 480);
    let expected = chart(size.0, size.1, "rgb24");
    for crf in ["0", "23"] {
        let file = record_chart(&format!("colour-sd-{crf}"), "bgr8", "bgr24", size, crf);
        let (worst, counted) = worst_patch_error(&expected, &decode_rgb(&file), size.0 as usize, size.1 as usize, 8);
        assert!(counted > 100_000, "{counted}");
        assert!(worst <= tolerance(crf), "CRF {crf}: a patch is {worst} levels off");
        let tags = stream_colour_tags(&file);
        assert_eq!(
            (tags["color_space"].as_str(), tags["color_range"].as_str()),
            (Some("smpte170m"), Some("tv")),
            "{tags}"
        );
    }
}

/// The chart as a JPEG, as `cv2.imencode` writes it (libjpeg-turbo, 4:2:0, quality 95), and the
/// RGB that JPEG holds (decoded by libjpeg-turbo): the colours a perfect recorder keeps.
fn jpeg_chart((width, height): (u32, u32)) -> (Vec<u8>, Vec<u8>) {
    let rgb = chart(width, height, "rgb24");
    let jpeg = dora_recorder_test_nodes::compress::ImageFormat::Jpeg.compress(&rgb, width, height).unwrap();
    let held = turbojpeg::decompress(&jpeg, turbojpeg::PixelFormat::RGB).unwrap().pixels;
    (jpeg, held)
}

#[test]
fn a_jpeg_chart_keeps_its_colours_in_the_recordings_matrix_hd_and_sd() {
    for (size, matrix) in [((1280, 720), "bt709"), ((640, 480), "smpte170m")] {
        let (jpeg, held) = jpeg_chart(size);
        let dir = temp_storage(&format!("colour-jpeg-{}", size.0));
        let storage = dir.display().to_string();
        let (result, _) = Script::new(&CAMERA)
            .frame("image", 0.0, "jpeg", i64::from(size.0), i64::from(size.1), jpeg.clone())
            .frame("image", 0.1, "jpeg", i64::from(size.0), i64::from(size.1), jpeg)
            .stop(0.4)
            .run(&[("STORAGE", &storage), ("CRF", "0")]);
        result.unwrap();
        let file = videos_in(&dir).remove(0);
        let (worst, counted) = worst_patch_error(&held, &decode_rgb(&file), size.0 as usize, size.1 as usize, 8);
        assert!(counted > 100_000, "{counted}");
        // The JPEG's own planes go through one conversion (range, and BT.601 to BT.709 for HD):
        // as close as raw frames get.
        assert!(worst <= tolerance("0"), "{size:?}: a patch is {worst} levels off the JPEG's colours");
        let tags = stream_colour_tags(&file);
        assert_eq!((tags["color_space"].as_str(), tags["color_range"].as_str()), (Some(matrix), Some("tv")), "{tags}");
    }
}
