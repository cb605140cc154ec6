//! End-to-end: real Python camera nodes under the `dora` CLI (issue #15). node-hub's
//! `opencv-video-capture` from PyPI, unmodified (scripts/setup.sh installs it into `.venv/`),
//! reads a video file the test makes with ffmpeg and sends `jpeg` or `png` frames; a small Python
//! camera sends JPEGs whose metadata carries only `encoding`. Each recording is compared with
//! the source, frame by frame, with ffmpeg's `psnr` filter.
//!
//! Why 30 dB: the source is ffmpeg's `testsrc2`, whose picture moves every frame. Recorded at
//! the defaults (JPEG quality 95, then x264 veryfast CRF 23) each frame measured about 35 dB
//! against its own source frame, and about 21.5 dB against the next one: a frame out of order,
//! missing, repeated or with its colour channels swapped lands far below 30 dB, while the
//! lossy steps stay 5 dB above it.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use e2e::{dora_run, probe, serial, temp_dir, text, videos_in, workspace_root};

/// Frames in the source video, and frames the camera is asked for.
const FRAMES: usize = 30;
/// The least PSNR (dB, mean of Y, U and V) a recorded frame may have against its source frame.
const MIN_PSNR_DB: f64 = 30.0;

/// A 320x240, 15 fps, lossless (FFV1) video of `FRAMES` frames of ffmpeg's moving test picture.
fn source_video(dir: &Path) -> PathBuf {
    let path = dir.join("source.mkv");
    let status = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=15", "-frames:v"])
        .arg(FRAMES.to_string())
        .args(["-c:v", "ffv1"])
        .arg(&path)
        .status()
        .unwrap();
    assert!(status.success(), "ffmpeg cannot make the source video");
    path
}

/// Runs `flow` with the camera reading `source` and `env` on top; returns the one recording
/// and the run's log.
fn record(test: &str, flow: &str, env: &[(&str, &str)]) -> (PathBuf, PathBuf, String) {
    let camera = workspace_root().join(".venv/bin/opencv-video-capture");
    assert!(camera.exists(), "{} is missing: run scripts/setup.sh", camera.display());
    let dir = temp_dir(test);
    let source = source_video(&dir);
    let storage = dir.join("recordings");
    let (storage_text, source_text) = (storage.display().to_string(), source.display().to_string());
    let mut all = vec![("STORAGE", storage_text.as_str()), ("CAPTURE_PATH", source_text.as_str())];
    all.extend_from_slice(env);
    let output = dora_run(flow, 120, &all);
    let log = text(&output);
    let files = videos_in(&storage);
    assert_eq!(files.len(), 1, "{files:?}\n{log}");
    (files[0].clone(), source, log)
}

/// The PSNR of each frame of `video` against the frame of `source` at the same position (frames
/// are paired by number, not by timestamp).
fn psnr_per_frame(video: &Path, source: &Path) -> Vec<f64> {
    let stats = video.with_extension("psnr.txt");
    let filter =
        format!("[0:v]settb=1/15,setpts=N[a];[1:v]settb=1/15,setpts=N[b];[a][b]psnr=stats_file={}", stats.display());
    let output = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(video)
        .arg("-i")
        .arg(source)
        .args(["-lavfi", &filter, "-f", "null", "-"])
        .output()
        .unwrap();
    assert!(output.status.success(), "ffmpeg psnr: {}", String::from_utf8_lossy(&output.stderr));
    std::fs::read_to_string(&stats)
        .unwrap()
        .lines()
        .map(|line| {
            let value = line.split_whitespace().find_map(|field| field.strip_prefix("psnr_avg:")).unwrap();
            // Identical frames say "inf".
            value.parse::<f64>().unwrap_or(f64::INFINITY)
        })
        .collect()
}

/// Asserts `video` holds the source's frames in order, at its size, in `codec`.
fn assert_matches_source(video: &Path, source: &Path, codec: &str, log: &str) {
    let probe = probe(video);
    assert_eq!(
        (probe.codec.as_str(), probe.width, probe.height, probe.frames),
        (codec, 320, 240, FRAMES as u64),
        "{log}"
    );
    let psnr = psnr_per_frame(video, source);
    assert_eq!(psnr.len(), FRAMES, "{psnr:?}");
    let (worst, frame) =
        psnr.iter().enumerate().map(|(n, db)| (*db, n)).fold((f64::INFINITY, 0), |a, b| if b.0 < a.0 { b } else { a });
    assert!(worst > MIN_PSNR_DB, "frame {frame} has {worst:.2} dB against its source frame (all: {psnr:.1?})");
}

#[test]
fn opencv_video_capture_jpeg_and_png_frames_record_in_order_at_their_size() {
    let _serial = serial();
    for encoding in ["jpeg", "png"] {
        let (video, source, log) =
            record(&format!("e2e-opencv-{encoding}"), "tests/flows/opencv-camera.yml", &[("ENCODING", encoding)]);
        assert_matches_source(&video, &source, "h264", &log);
    }
}

#[test]
fn opencv_video_capture_jpegs_copied_as_motion_jpeg_match_the_source() {
    let _serial = serial();
    let (video, source, log) = record(
        "e2e-opencv-copy",
        "tests/flows/opencv-camera.yml",
        &[("ENCODING", "jpeg"), ("COMPRESSED", "copy"), ("FORMAT", "mkv")],
    );
    assert_matches_source(&video, &source, "mjpeg", &log);
}

#[test]
fn a_python_camera_whose_jpegs_carry_only_their_encoding_records() {
    let _serial = serial();
    let (video, source, log) = record("e2e-jpeg-only-encoding", "tests/flows/jpeg-only-encoding.yml", &[]);
    assert_matches_source(&video, &source, "h264", &log);
}
