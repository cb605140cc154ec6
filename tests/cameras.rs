//! End-to-end: compressed colour cameras (issue #15) under the real `dora` CLI. The test-pattern
//! camera sends JPEG or PNG frames (`ENCODING=jpeg|png`), with or without size metadata, some of
//! them cut short (`CORRUPT_EVERY`); the files are checked with `ffprobe` and by reading back the
//! frame-index barcode of every frame.

#![allow(clippy::unwrap_used)]

use std::path::Path;

use e2e::{dora_run, frame_indices, frames_sent, probe, serial, temp_dir, text, videos_in};

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

/// Records a JPEG camera with `COMPRESSED=copy` and `env`, the camera saving every image it
/// sends; returns the recording, the run's log and the images sent, by frame index.
fn record_copied(test: &str, frames: u32, env: &[(&str, &str)]) -> (std::path::PathBuf, String, Vec<Vec<u8>>) {
    let images = temp_dir(&format!("{test}-sent"));
    let image_dir = images.display().to_string();
    let mut all = vec![("ENCODING", "jpeg"), ("COMPRESSED", "copy"), ("IMAGE_DIR", image_dir.as_str())];
    all.extend_from_slice(env);
    let (file, log) = record(test, frames, &all);
    let sent: Vec<Vec<u8>> =
        (0..frames).map(|index| std::fs::read(images.join(format!("{index:05}.jpeg"))).unwrap()).collect();
    (file, log, sent)
}

/// The packets of `video`'s stream, as stored: `ffmpeg -c copy` into one file per packet.
fn stored_packets(video: &Path) -> Vec<Vec<u8>> {
    let out = temp_dir(&format!("packets-{}", e2e::file_name(video)));
    let status = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(video)
        .args(["-c", "copy", "-f", "image2"])
        .arg(out.join("%05d.jpg"))
        .status()
        .unwrap();
    assert!(status.success(), "ffmpeg cannot extract the packets of {}", video.display());
    e2e::files_in(&out).iter().map(|path| std::fs::read(path).unwrap()).collect()
}

#[test]
fn copied_jpegs_are_stored_byte_for_byte_as_motion_jpeg_in_matroska() {
    let _serial = serial();
    // FORMAT=mp4 (the default) gives Matroska, with one line saying so.
    let (file, log, sent) = record_copied("e2e-cam-copy", 30, &[]);
    assert_eq!(file.extension().unwrap(), "mkv", "{log}");
    assert!(log.contains("COMPRESSED=copy stores JPEG cameras as Motion JPEG in Matroska"), "{log}");
    let probe = probe(&file);
    assert_eq!((probe.codec.as_str(), probe.width, probe.height, probe.frames), ("mjpeg", 320, 240, 30), "{log}");
    let stored = stored_packets(&file);
    assert_eq!(stored.len(), 30);
    for (index, (stored, sent)) in stored.iter().zip(&sent).enumerate() {
        assert!(
            stored == sent,
            "frame {index}: {} bytes stored, {} sent, or different bytes",
            stored.len(),
            sent.len()
        );
    }
    assert_indices(&file, (320, 240), 0..30);
    let manifest = e2e::files_ending(file.parent().unwrap(), ".session.json");
    let manifest = e2e::read_json(&manifest[0]);
    assert_eq!(manifest["cameras"]["image"]["codec"], "mjpeg", "{manifest}");
    assert_eq!(manifest["cameras"]["image"]["files"][0]["frames"], 30, "{manifest}");
    let (_, rows) = e2e::read_csv(&e2e::files_ending(file.parent().unwrap(), ".frames.csv")[0]);
    assert_eq!(rows.len(), 30, "one index row per frame");
}

#[test]
fn copied_jpegs_skip_cut_off_images_and_keep_the_good_ones_byte_for_byte_in_avi() {
    let _serial = serial();
    // Frames 4, 9, ..., 29 are cut to half their bytes.
    let (file, log, sent) = record_copied("e2e-cam-copy-corrupt", 30, &[("FORMAT", "avi"), ("CORRUPT_EVERY", "5")]);
    assert_eq!(file.extension().unwrap(), "avi", "{log}");
    let good: Vec<u32> = (0..30).filter(|index| index % 5 != 4).collect();
    let probe = probe(&file);
    assert_eq!((probe.codec.as_str(), probe.width, probe.height, probe.frames), ("mjpeg", 320, 240, 24), "{log}");
    let stored = stored_packets(&file);
    let expected: Vec<&Vec<u8>> = good.iter().map(|&index| &sent[index as usize]).collect();
    assert_eq!(stored.len(), expected.len());
    assert!(stored.iter().zip(&expected).all(|(a, b)| a == *b), "the good frames, byte for byte, in order");
    assert!(log.contains("skipped=6"), "the file's report counts the 6 skipped frames: {log}");
    let lines = log.lines().filter(|line| line.contains("skipped frame: truncated or not a jpeg image")).count();
    assert_eq!(lines, 1, "one rate-limited line for 6 bad frames in 2 s: {log}");
    // Every player decodes what was kept: no decoder error at all.
    let check = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(&file)
        .args(["-f", "null", "-"])
        .output()
        .unwrap();
    assert!(check.status.success() && check.stderr.is_empty(), "{}", String::from_utf8_lossy(&check.stderr));
}

#[test]
fn copied_motion_jpeg_plays_in_gstreamer_in_mkv_and_avi_but_not_in_chromium() {
    let _serial = serial();
    for format in ["mkv", "avi"] {
        let (file, log, _) = record_copied(&format!("e2e-cam-copy-players-{format}"), 30, &[("FORMAT", format)]);
        let decoded = e2e::gstreamer::decode(&file);
        assert_eq!((decoded.frames.len(), decoded.problems.as_str()), (30, ""), "{format}: {log}");
        let discovered = e2e::gstreamer::discover(&file);
        assert_eq!((discovered.width, discovered.height), (320, 240), "{format}");
        // The owner tag that retention and startup repair go by (MKV `recorder`, AVI `comment`).
        let tags = std::process::Command::new("ffprobe")
            .args(["-v", "error", "-show_entries", "format_tags", "-of", "compact"])
            .arg(&file)
            .output()
            .unwrap();
        let tags = String::from_utf8_lossy(&tags.stdout).to_lowercase();
        let owner =
            if format == "mkv" { "tag:recorder=dora-video-recorder" } else { "tag:comment=dora-video-recorder" };
        assert!(tags.contains(owner), "{format}: {tags}");
        // Browsers decode no Motion JPEG in any container: the README says so, this checks it.
        let playback = e2e::play_in_chromium(&file);
        assert!(playback.error.is_some() || playback.video_width == 0, "{format}: Chromium played it: {playback:?}");
    }
}

#[test]
fn a_killed_recorder_leaves_copied_jpegs_byte_for_byte_up_to_the_kill() {
    use std::time::{Duration, SystemTime};
    let _serial = serial();
    let dir = temp_dir("e2e-cam-copy-kill");
    let (storage, images, send_log) = (dir.join("recordings"), dir.join("sent"), dir.join("sent.log"));
    std::fs::create_dir_all(&images).unwrap();
    let run = e2e::Background::dora_run(
        "dataflows/record.yml",
        &[
            ("STORAGE", storage.display().to_string()),
            ("SEND_LOG", send_log.display().to_string()),
            ("IMAGE_DIR", images.display().to_string()),
            ("WIDTH", "320".into()),
            ("HEIGHT", "240".into()),
            ("ENCODING", "jpeg".into()),
            ("COMPRESSED", "copy".into()),
        ],
    );
    e2e::wait_for("the first file", Duration::from_secs(300), || !videos_in(&storage).is_empty());
    std::thread::sleep(Duration::from_secs(3));
    let killed_at = SystemTime::now();
    let pids = e2e::recorder_pids();
    assert!(!pids.is_empty(), "the recorder runs");
    pids.into_iter().for_each(|pid| e2e::signal(pid, "KILL"));
    let (_, log) = run.wait(Duration::from_secs(2));
    let files = videos_in(&storage);
    assert_eq!(files.len(), 1, "{files:?}\n{log}");
    assert_eq!(e2e::decode_errors(&files[0]), "", "decodes to its end without an error");
    let stored = stored_packets(&files[0]);
    for (index, packet) in stored.iter().enumerate() {
        let sent = std::fs::read(images.join(format!("{index:05}.jpeg"))).unwrap();
        assert!(*packet == sent, "frame {index} is not the JPEG sent");
    }
    // Matroska holds each frame as soon as it is written: at most the frames of the last 0.5 s
    // (in the queue or being written) are lost.
    let sent = e2e::read_send_log(&send_log);
    let must_keep =
        sent.iter().filter(|f| f.at + Duration::from_millis(500) <= killed_at).map(|f| f.index + 1).max().unwrap_or(0);
    assert!(
        stored.len() as u32 >= must_keep,
        "kept {} frames, {must_keep} were sent 0.5 s before the kill",
        stored.len()
    );
    let (_, rows) = e2e::read_csv(&files[0].with_extension("frames.csv"));
    assert!(rows.len() >= stored.len(), "an index row for every frame kept");
}
