//! End-to-end: compressed colour cameras (issue #15) under the real `dora` CLI. The test-pattern
//! camera sends JPEG or PNG frames (`ENCODING=jpeg|png`), with or without size metadata, some of
//! them cut short (`CORRUPT_EVERY`); the files are checked with `ffprobe` and by reading back the
//! frame-index barcode of every frame.

#![allow(clippy::unwrap_used)]

use std::path::Path;

use e2e::{dora_run, frame_indices, probe, serial, temp_dir, text, videos_in};

/// The number the camera logged as `sent N frames`.
fn frames_sent(log: &str) -> u32 {
    let line = log
        .lines()
        .rev()
        .find(|line| line.contains("dora-test-pattern: sent"))
        .unwrap_or_else(|| panic!("no camera count in log: {log}"));
    line.split("dora-test-pattern: sent ").nth(1).unwrap().split_whitespace().next().unwrap().parse().unwrap()
}

/// Runs `dataflows/record.yml` until the camera has sent `frames` frames, with `env` on top of
/// a 320x240 camera; returns the one recording and the run's log.
fn record(test: &str, frames: u32, env: &[(&str, &str)]) -> (std::path::PathBuf, String) {
    let dir = temp_dir(test);
    let storage = dir.display().to_string();
    let max_frames = frames.to_string();
    let mut all = vec![("STORAGE", storage.as_str()), ("MAX_FRAMES", &max_frames), ("WIDTH", "320"), ("HEIGHT", "240")];
    all.extend_from_slice(env);
    let output = dora_run("dataflows/record.yml", 120, &all);
    let log = text(&output);
    assert_eq!(frames_sent(&log), frames, "{log}");
    let files = videos_in(&dir);
    assert_eq!(files.len(), 1, "{files:?}\n{log}");
    (files[0].clone(), log)
}

fn assert_indices(path: &Path, source: (u32, u32), expected: impl IntoIterator<Item = u32>) {
    let expected: Vec<Option<u32>> = expected.into_iter().map(Some).collect();
    assert_eq!(frame_indices(path, source), expected, "{}: frame indices", path.display());
}

#[test]
fn jpeg_and_png_cameras_record_every_frame_at_the_image_size() {
    let _serial = serial();
    for encoding in ["jpeg", "png"] {
        let (file, log) = record(&format!("e2e-cam-{encoding}"), 30, &[("ENCODING", encoding)]);
        let probe = probe(&file);
        assert_eq!((probe.codec.as_str(), probe.width, probe.height, probe.frames), ("h264", 320, 240, 30), "{log}");
        assert_indices(&file, (320, 240), 0..30);
    }
}

#[test]
fn a_jpeg_camera_that_sends_only_its_encoding_still_records() {
    let _serial = serial();
    // An odd size that nothing but the images says: the file is padded to even, as for raw frames.
    let (file, log) = record(
        "e2e-cam-no-size",
        24,
        &[("ENCODING", "jpeg"), ("SIZE_METADATA", "false"), ("WIDTH", "161"), ("HEIGHT", "121")],
    );
    let probe = probe(&file);
    assert_eq!((probe.width, probe.height, probe.frames), (162, 122, 24), "{log}");
    assert_indices(&file, (161, 121), 0..24);
}

#[test]
fn corrupt_jpegs_between_good_ones_are_skipped_and_counted() {
    let _serial = serial();
    // Frames 4, 9, ..., 29 are cut to half their bytes.
    let (file, log) = record("e2e-cam-corrupt", 30, &[("ENCODING", "jpeg"), ("CORRUPT_EVERY", "5")]);
    let good: Vec<u32> = (0..30).filter(|index| index % 5 != 4).collect();
    assert_eq!(probe(&file).frames, good.len() as u64, "{log}");
    assert_indices(&file, (320, 240), good);
    assert!(log.contains("skipped=6"), "the file's report counts the 6 skipped frames: {log}");
    let lines = log.lines().filter(|line| line.contains("skipped frame: truncated or not a jpeg image")).count();
    assert_eq!(lines, 1, "one rate-limited line for 6 bad frames in 2 s: {log}");
}
