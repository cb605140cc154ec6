//! End-to-end: depth cameras under the real `dora` CLI. The test-pattern camera sends `mono16`
//! (a UInt16 array of millimetres) or `32FC1` (a Float32 array of metres) frames whose every
//! sample is a known function of the frame index and pixel position; the recording is decoded
//! with `ffmpeg -f rawvideo -pix_fmt gray16le` and compared sample for sample.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use dora_recorder_test_nodes::depth::{DepthEncoding, expected_millimetres};
use e2e::{
    decode_frames, dora_run, file_name, files_ending, probe, read_json, serial, temp_dir, text, unbound_frames,
    videos_in,
};
use serde_json::Value;

/// Odd on purpose: 4:2:0 video pads to even sizes, depth must keep its own.
const WIDTH: u32 = 161;
const HEIGHT: u32 = 121;
const FRAMES: u64 = 30;

/// The counts the cameras logged as `sent N frames`, in log order.
fn frames_sent(log: &str) -> Vec<u64> {
    log.lines()
        .filter_map(|line| line.split("dora-test-pattern: sent ").nth(1))
        .filter_map(|after| after.split_whitespace().next()?.parse().ok())
        .collect()
}

/// Records `MAX_FRAMES` frames of `encoding` through `record.yml` with the default `FORMAT`
/// (mp4); returns the folder, the one video and the log.
fn record(encoding: DepthEncoding, test: &str, extra: &[(&str, &str)]) -> (PathBuf, PathBuf, String) {
    let dir = temp_dir(test);
    let (width, height, frames) = (WIDTH.to_string(), HEIGHT.to_string(), FRAMES.to_string());
    let storage = dir.display().to_string();
    let mut env = vec![
        ("STORAGE", storage.as_str()),
        ("ENCODING", encoding.name()),
        ("WIDTH", &width),
        ("HEIGHT", &height),
        ("MAX_FRAMES", &frames),
    ];
    env.extend_from_slice(extra);
    let log = text(&dora_run("dataflows/record.yml", 60, &env));
    assert_eq!(frames_sent(&log), [FRAMES], "{log}");
    let videos = videos_in(&dir);
    assert_eq!(videos.len(), 1, "{videos:?}\n{log}");
    (dir, videos[0].clone(), log)
}

/// Asserts `video` is `codec` gray16le Matroska of the test size, and returns its frames as
/// millimetres.
fn decoded_millimetres(video: &Path, codec: &str) -> Vec<Vec<u16>> {
    assert_eq!(video.extension().unwrap(), "mkv", "depth is Matroska whatever FORMAT says");
    let probed = probe(video);
    assert_eq!(
        (probed.codec.as_str(), probed.pix_fmt.as_str(), probed.width, probed.height),
        (codec, "gray16le", WIDTH, HEIGHT),
        "{}",
        video.display()
    );
    let frame_bytes = (WIDTH * HEIGHT * 2) as usize;
    decode_frames(video, "gray16le", frame_bytes)
        .into_iter()
        .map(|frame| frame.chunks_exact(2).map(|b| u16::from_le_bytes([b[0], b[1]])).collect())
        .collect()
}

#[test]
fn mono16_is_recorded_sample_for_sample() {
    let _serial = serial();
    let (_dir, video, log) = record(DepthEncoding::Mono16, "depth-mono16", &[]);
    let frames = decoded_millimetres(&video, "ffv1");
    assert_eq!(frames.len() as u64, FRAMES, "every frame sent is in the file\n{log}");
    for (index, frame) in frames.iter().enumerate() {
        let expected = expected_millimetres(DepthEncoding::Mono16, WIDTH, HEIGHT, index as u64);
        let wrong = frame.iter().zip(&expected).filter(|(got, want)| got != want).count();
        assert_eq!(wrong, 0, "frame {index}: {wrong} samples differ from what was sent");
    }
    assert!(log.contains("depth cameras are recorded losslessly as FFV1 in Matroska"), "FORMAT=mp4 is noted: {log}");
}

#[test]
fn float_metres_are_recorded_as_millimetres_within_one() {
    let _serial = serial();
    let (_dir, video, log) = record(DepthEncoding::Float32, "depth-float", &[]);
    let frames = decoded_millimetres(&video, "ffv1");
    assert_eq!(frames.len() as u64, FRAMES, "every frame sent is in the file\n{log}");
    let mut invalid_kept_as_zero = 0;
    for (index, frame) in frames.iter().enumerate() {
        let expected = expected_millimetres(DepthEncoding::Float32, WIDTH, HEIGHT, index as u64);
        let worst = frame.iter().zip(&expected).map(|(got, want)| got.abs_diff(*want)).max().unwrap();
        assert!(worst <= 1, "frame {index}: a sample is {worst} mm off");
        invalid_kept_as_zero += expected.iter().zip(frame).filter(|(want, got)| **want == 0 && **got == 0).count();
    }
    assert!(invalid_kept_as_zero > 0, "NaN, infinite, negative and too far samples are recorded as 0");
}

#[test]
fn depth_codec_ffvhuff_is_lossless_too() {
    let _serial = serial();
    let extra = [("DEPTH_CODEC", "ffvhuff"), ("FORMAT", "mkv")];
    let (_dir, video, log) = record(DepthEncoding::Mono16, "depth-ffvhuff", &extra);
    let frames = decoded_millimetres(&video, "ffvhuff");
    assert_eq!(frames.len() as u64, FRAMES, "every frame sent is in the file\n{log}");
    for (index, frame) in frames.iter().enumerate() {
        assert!(*frame == expected_millimetres(DepthEncoding::Mono16, WIDTH, HEIGHT, index as u64), "frame {index}");
    }
    assert!(!log.contains("depth cameras are recorded losslessly"), "FORMAT=mkv needs no note: {log}");
}

#[test]
fn rgbd_yml_records_colour_and_depth_in_one_session() {
    let _serial = serial();
    let dir = temp_dir("depth-rgbd");
    let storage = dir.display().to_string();
    let env = [("STORAGE", storage.as_str()), ("MAX_FRAMES", "30"), ("WIDTH", "160"), ("HEIGHT", "120")];
    let log = text(&dora_run("dataflows/rgbd.yml", 60, &env));
    assert_eq!(frames_sent(&log), [30, 30], "{log}");
    let manifests = files_ending(&dir, ".session.json");
    assert_eq!(manifests.len(), 1, "one session: {manifests:?}\n{log}");
    let manifest = read_json(&manifests[0]);
    let session = manifest["session_id"].as_str().unwrap();
    let listed = |camera: &str| -> Vec<String> {
        let files = manifest["cameras"][camera]["files"].as_array().cloned().unwrap_or_default();
        files.iter().map(|entry: &Value| entry["path"].as_str().unwrap_or_default().to_owned()).collect()
    };
    let (color, depth) = (listed("color"), listed("depth"));
    assert_eq!((color.len(), depth.len()), (1, 1), "a file per camera: {manifest}");
    let names: Vec<String> = videos_in(&dir).iter().map(|v| file_name(v)).collect();
    assert_eq!(names.len(), 2, "{names:?}");
    for name in [&color[0], &depth[0]] {
        assert!(names.contains(name) && name.starts_with(session), "{name} in {names:?} of session {session}");
    }
    assert_eq!(manifest["cameras"]["depth"]["codec"], "ffv1", "{manifest}");
    let colour = probe(&dir.join(&color[0]));
    let depth_video = dir.join(&depth[0]);
    let depth_probe = probe(&depth_video);
    assert_eq!((depth_probe.codec.as_str(), depth_probe.pix_fmt.as_str()), ("ffv1", "gray16le"));
    let samples = decode_frames(&depth_video, "gray16le", 160 * 120 * 2);
    // The run's session starts at the first frame the recorder gets; dora serves the two inputs
    // in turn, so the other camera's first frame, sent a moment earlier, may arrive after it. The
    // session takes it all the same: every frame of both cameras is recorded, none unbound.
    assert_eq!(colour.codec, "h264");
    assert_eq!(
        (colour.frames, samples.len(), unbound_frames(&log)),
        (30, 30, 0),
        "colour frames, depth frames, frames counted unbound\n{log}"
    );
    for (index, frame) in samples.iter().enumerate() {
        let expected: Vec<u8> = expected_millimetres(DepthEncoding::Mono16, 160, 120, index as u64)
            .iter()
            .flat_map(|mm| mm.to_le_bytes())
            .collect();
        assert!(*frame == expected, "depth frame {index} differs from what was sent");
    }
    // Every file has its frame index beside it.
    for name in [&color[0], &depth[0]] {
        let index = dir.join(name).with_extension("frames.csv");
        assert!(index.exists(), "{} has no index", index.display());
    }
}
