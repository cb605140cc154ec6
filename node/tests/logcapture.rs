//! Robot log capture through the node's event loop: the frame index beside every video, the
//! session manifest, several cameras on one timeline, detections beside the video and segments.

#![allow(clippy::unwrap_used)]

mod support;

use std::path::Path;

use e2e::{csv_column, decode_errors, files_ending, frame_times, read_csv, read_json, read_jsonl};
use serde_json::json;
use support::{Script, events_with_status, probe, temp_storage, videos_in};

fn storage_env(dir: &Path) -> String {
    dir.display().to_string()
}

fn index_of(video: &Path) -> std::path::PathBuf {
    video.with_extension("frames.csv")
}

/// Row k of the index holds the k-th decoded frame's time (within 1 ms) and its metadata.
fn assert_index_matches_video(video: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let (header, rows) = read_csv(&index_of(video));
    assert_eq!(&header[..3], ["frame", "pts", "time_ns"], "{header:?}");
    let decoded = frame_times(video);
    assert_eq!(rows.len(), decoded.len(), "{}: one row per frame", video.display());
    for (k, (row, time)) in rows.iter().zip(&decoded).enumerate() {
        assert_eq!(row[0], k.to_string());
        let pts: f64 = row[1].parse().unwrap();
        assert!((pts - time).abs() < 0.001, "{}: row {k} pts {pts} vs decoded {time}", video.display());
    }
    (header, rows)
}

#[test]
fn every_video_has_an_index_whose_rows_are_its_frames_at_constant_and_variable_rates() {
    let dir = temp_storage("index");
    let storage = storage_env(&dir);
    let constant: Vec<f64> = (0..20).map(|i| 0.1 + f64::from(i) / 15.0).collect();
    let variable: Vec<f64> = [0.0, 0.03, 0.2, 0.21, 0.5, 0.9, 0.95, 1.4, 1.45, 1.5].iter().map(|t| t + 2.0).collect();
    let (result, _) = Script::new(&[("image", "camera/image"), ("control", "script/control")])
        .control_json(0.0, &json!({"action": "start", "session_id": "constant"}))
        .indexed_frames("image", &constant, 100, 64, 48)
        .control_json(1.9, &json!({"action": "start", "session_id": "variable"}))
        .indexed_frames("image", &variable, 500, 64, 48)
        .stop(4.0)
        .run(&[("STORAGE", &storage)]);
    result.unwrap();
    for (video, first_index) in videos_in(&dir).iter().zip([100, 500]) {
        let (header, rows) = assert_index_matches_video(video);
        let indices = csv_column(&header, &rows, "frame_index");
        assert_eq!(indices[0], first_index.to_string(), "the camera's own frame ids are columns");
        let times: Vec<u64> = csv_column(&header, &rows, "time_ns").iter().map(|t| t.parse().unwrap()).collect();
        assert!(times.windows(2).all(|w| w[0] < w[1]), "time_ns increases");
        assert!(times[0] > 1_600_000_000_000_000_000, "UTC nanoseconds since the epoch: {}", times[0]);
    }
}

#[test]
fn a_session_manifest_lists_every_file_with_counts_and_times() {
    let dir = temp_storage("manifest");
    let storage = storage_env(&dir);
    let times: Vec<f64> = (0..10).map(|i| 0.2 + f64::from(i) * 0.1).collect();
    let (result, _) = Script::new(&[("image", "camera/image"), ("control", "script/control")])
        .control_json(0.0, &json!({"action": "start", "session_id": "run/7"}))
        .indexed_frames("image", &times, 0, 64, 48)
        .control_text(1.5, "stop", None)
        .stop(2.3)
        .run(&[("STORAGE", &storage)]);
    result.unwrap();
    let manifests = files_ending(&dir, ".session.json");
    assert_eq!(manifests.len(), 1, "{manifests:?}");
    let manifest = read_json(&manifests[0]);
    assert_eq!(manifest["session_id"], "run/7", "the id in full");
    assert_eq!(manifest["end_reason"], "stop");
    assert_eq!(
        (manifest["started_by"].as_str(), manifest["stopped_by"].as_str()),
        (Some("control_message"), Some("control_message"))
    );
    assert!(manifest["started_utc"].as_str().unwrap().ends_with('Z') && manifest["ended_utc"].is_string());
    let camera = &manifest["cameras"]["image"];
    assert_eq!((camera["frames"].as_u64(), camera["codec"].as_str()), (Some(10), Some("libx264")));
    let file = &camera["files"][0];
    let video = &videos_in(&dir)[0];
    assert_eq!(file["path"], video.file_name().unwrap().to_string_lossy().as_ref());
    assert_eq!((file["status"].as_str(), file["frames"].as_u64()), (Some("finished"), Some(10)));
    assert_eq!(file["bytes"].as_u64(), Some(std::fs::metadata(video).unwrap().len()));
    let offset = file["offset_secs"].as_f64().unwrap();
    assert!((offset - 0.2).abs() < 0.05, "first frame 0.2 s after the start: {offset}");
}

#[test]
fn three_cameras_of_different_sizes_and_rates_line_up_on_the_session_timeline() {
    let dir = temp_storage("timeline");
    let storage = storage_env(&dir);
    let every = |start: f64, step: f64, until: f64| -> Vec<f64> {
        (0..).map(|i| start + f64::from(i) * step).take_while(|t| *t < until).collect()
    };
    // Every 0.2 s all three cameras send a frame at the same instant; between those, each
    // follows its own rate, and `top` starts late.
    let (result, _) = Script::new(&[("front", "a/image"), ("wrist", "b/image"), ("top", "c/image")])
        .indexed_frames("front", &every(0.0, 0.1, 2.0), 0, 64, 48)
        .indexed_frames("wrist", &every(0.0, 0.05, 2.0), 0, 32, 24)
        .indexed_frames("top", &every(0.6, 0.2, 2.0), 0, 80, 60)
        .stop(2.4)
        .run(&[("STORAGE", &storage)]);
    result.unwrap();
    let manifest = read_json(&files_ending(&dir, ".session.json")[0]);
    let mut session_times: std::collections::BTreeMap<u64, Vec<f64>> = Default::default();
    for camera in ["front", "wrist", "top"] {
        let file = &manifest["cameras"][camera]["files"][0];
        let video = dir.join(file["path"].as_str().unwrap());
        let offset = file["offset_secs"].as_f64().unwrap();
        let tagged: f64 = e2e::format_tag(&video, "session_offset").unwrap().parse().unwrap();
        assert!((tagged - offset).abs() < 1e-6, "the file's metadata has the same offset");
        let decoded = frame_times(&video);
        let (header, rows) = assert_index_matches_video(&video);
        for (row, pts) in csv_column(&header, &rows, "time_ns").iter().zip(decoded) {
            session_times.entry(row.parse().unwrap()).or_default().push(offset + pts);
        }
    }
    let shared: Vec<&Vec<f64>> = session_times.values().filter(|times| times.len() == 3).collect();
    assert!(shared.len() >= 5, "frames sent at the same instant by all three cameras: {}", shared.len());
    for times in shared {
        let spread = times.iter().cloned().fold(f64::MIN, f64::max) - times.iter().cloned().fold(f64::MAX, f64::min);
        assert!(spread < 0.001, "same instant, same session time within 1 ms: {times:?}");
    }
}

#[test]
fn detections_are_written_beside_the_video_with_the_frame_they_belong_to() {
    let dir = temp_storage("detections");
    let storage = storage_env(&dir);
    let times: Vec<f64> = (0..10).map(|i| 0.1 + f64::from(i) * 0.1).collect();
    let (result, _) = Script::new(&[("image", "camera/image"), ("detections", "yolo/bbox")])
        .indexed_frames("image", &times, 40, 64, 48)
        .detections("detections", 0.55, Some(43), &["person", "car"], &[[1.0, 2.0, 10.0, 20.0], [5.0, 5.0, 9.0, 9.0]])
        .detections("detections", 0.75, None, &[], &[])
        .raw_input("detections", 0.8, json!({}), json!("not a struct"), "Utf8")
        .stop(1.4)
        .run(&[("STORAGE", &storage)]);
    let summary = result.unwrap();
    assert_eq!(summary.detections_dropped, 1, "the malformed message is counted: {summary:?}");
    let video = &videos_in(&dir)[0];
    let lines = read_jsonl(&video.with_extension("detections.jsonl"));
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(lines[0]["frame"], 3, "frame_index 43 is the video's frame 3");
    assert_eq!(lines[0]["labels"], json!(["person", "car"]));
    assert_eq!(lines[0]["bbox"][0], json!([1.0, 2.0, 10.0, 20.0]));
    assert_eq!(lines[0]["format"], "xyxy");
    assert!(lines[0]["time_ns"].as_u64().unwrap() > 0);
    assert_eq!(lines[1]["labels"], json!([]), "an empty detection is a line too");
    assert!(lines[1]["frame"].as_u64().is_some(), "without ids: the latest frame sent before it");
}

#[test]
fn segments_split_a_session_without_losing_or_repeating_a_frame() {
    let dir = temp_storage("segments");
    let storage = storage_env(&dir);
    let times: Vec<f64> = (0..35).map(|i| 0.1 + f64::from(i) * 0.1).collect();
    let (result, events) = Script::new(&[("image", "camera/image")])
        .indexed_frames("image", &times, 0, 64, 48)
        .stop(3.9)
        .run(&[("STORAGE", &storage), ("SEGMENT_SECONDS", "1")]);
    result.unwrap();
    let videos = videos_in(&dir);
    assert_eq!(videos.len(), 4, "3.5 s in 1 s segments: {videos:?}");
    assert_eq!(events_with_status(&events, "finished").len(), 4);
    let mut all_ids = Vec::new();
    let mut all_times = Vec::new();
    for video in &videos {
        let (header, rows) = assert_index_matches_video(video);
        assert!(probe(video).duration <= 1.05, "{}: {}", video.display(), probe(video).duration);
        all_ids.extend(csv_column(&header, &rows, "frame_index").iter().map(|v| v.parse::<u32>().unwrap()));
        all_times.extend(csv_column(&header, &rows, "time_ns").iter().map(|v| v.parse::<u64>().unwrap()));
    }
    assert_eq!(all_ids, (0..35).collect::<Vec<u32>>(), "every frame once, in order, across the cuts");
    let steps: Vec<u64> = all_times.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(steps.iter().all(|s| (50_000_000..150_000_000).contains(s)), "time_ns continuous across cuts: {steps:?}");
    let manifest = read_json(&files_ending(&dir, ".session.json")[0]);
    assert_eq!(manifest["cameras"]["image"]["files"].as_array().unwrap().len(), 4, "segments in the manifest");
}

#[test]
fn copied_jpegs_are_cut_into_segments_and_a_new_size_starts_the_next_file() {
    use dora_recorder_test_nodes::{compress::ImageFormat, encoding::Encoding, pattern};
    let dir = temp_storage("segments-copy");
    let storage = storage_env(&dir);
    let mut script = Script::new(&[("image", "camera/image")]);
    // 35 frames of 64x48 every 0.1 s, then 5 of 80x60.
    for index in 0..40_u64 {
        let (width, height) = if index < 35 { (64, 48) } else { (80, 60) };
        let format = pattern::FrameFormat::new(width, height, Encoding::Rgb8).unwrap();
        let jpeg = ImageFormat::Jpeg.compress(&pattern::draw_frame(&format, index, 0), width, height).unwrap();
        let metadata = json!({"encoding": {"String": "jpeg"}, "frame_index": {"Integer": index}});
        script = script.raw_input("image", 0.1 + index as f64 * 0.1, metadata, json!(jpeg), "UInt8");
    }
    let (result, events) =
        script.stop(4.5).run(&[("STORAGE", &storage), ("SEGMENT_SECONDS", "1"), ("COMPRESSED", "copy")]);
    result.unwrap();
    let mut videos = videos_in(&dir);
    assert_eq!(videos.len(), 5, "3.5 s in 1 s segments, then the new size: {videos:?}");
    assert_eq!(events_with_status(&events, "finished").len(), 5);
    // In the order they were recorded (names of files started in the same second do not say it).
    videos.sort_by_key(|video| {
        let (header, rows) = read_csv(&index_of(video));
        csv_column(&header, &rows, "time_ns")[0].parse::<u64>().unwrap()
    });
    let mut all_ids = Vec::new();
    for (n, video) in videos.iter().enumerate() {
        let (header, rows) = assert_index_matches_video(video);
        let probed = probe(video);
        let size = if n < 4 { (64, 48) } else { (80, 60) };
        assert_eq!((probed.codec.as_str(), probed.width, probed.height), ("mjpeg", size.0, size.1), "{n}");
        assert!(probed.duration <= 1.05, "{}: {}", video.display(), probed.duration);
        all_ids.extend(csv_column(&header, &rows, "frame_index").iter().map(|v| v.parse::<u32>().unwrap()));
    }
    assert_eq!(all_ids, (0..40).collect::<Vec<u32>>(), "every frame once, in order, across the cuts");
    let manifest = read_json(&files_ending(&dir, ".session.json")[0]);
    assert_eq!(manifest["cameras"]["image"]["codec"], "mjpeg");
}

#[test]
fn retention_deletes_the_oldest_finished_recordings_with_their_side_files() {
    let dir = temp_storage("retention");
    let storage = storage_env(&dir);
    let limit: u64 = 200_000;
    let mut script = Script::new(&[("image", "camera/image"), ("control", "script/control")]);
    for (n, session) in ["s1", "s2", "s3"].iter().enumerate() {
        let start = n as f64 * 1.5;
        script = script
            .control_json(start, &json!({"action": "start", "session_id": session}))
            .noise_frames("image", start + 0.1, 0.1, 8, 160, 120)
            .control_text(start + 1.0, "stop", None);
    }
    let (result, events) = script.stop(5.0).run(&[("STORAGE", &storage), ("MAX_TOTAL_BYTES", &limit.to_string())]);
    result.unwrap();
    let deleted = events_with_status(&events, "deleted");
    assert!(!deleted.is_empty(), "the limit forced a deletion: {events:?}");
    let deleted_names: Vec<&str> = deleted.iter().map(|e| e["path"].as_str().unwrap()).collect();
    assert!(deleted_names[0].contains("/s1_"), "the oldest goes first: {deleted_names:?}");
    assert!(videos_in(&dir).iter().any(|v| v.to_string_lossy().contains("/s3_")), "the newest stays");
    let total: u64 = e2e::files_in(&dir).iter().map(|f| std::fs::metadata(f).unwrap().len()).sum();
    assert!(total <= limit + 10_000, "recordings fit the limit (manifests are a few kB): {total}");
    for index in files_ending(&dir, ".frames.csv") {
        assert!(index.with_extension("").with_extension("mp4").exists(), "{} has its video", index.display());
    }
    assert!(
        files_ending(&dir, ".session.json").iter().all(|m| !m.to_string_lossy().contains("/s1_")),
        "a manifest whose files are all gone goes too"
    );
}

#[test]
fn pre_roll_starts_a_control_session_at_the_keyframe_before_it_with_true_times_in_the_index() {
    let dir = temp_storage("pre-roll");
    let storage = storage_env(&dir);
    // 15 fps nominal, GOP 2 s = 30 frames: keyframes at frames 0, 30, 60 of the camera.
    let times: Vec<f64> = (0..60).map(|i| 0.05 + f64::from(i) / 15.0).collect();
    let (result, events) = Script::new(&[("image", "camera/image"), ("control", "script/control")])
        .indexed_frames("image", &times, 0, 64, 48)
        .control_json(3.0, &json!({"action": "start", "session_id": "after-the-fact"}))
        .control_text(3.6, "stop", None)
        .stop(4.6)
        .run(&[("STORAGE", &storage), ("PRE_ROLL", "1")]);
    result.unwrap();
    let videos = videos_in(&dir);
    assert_eq!(videos.len(), 1, "{videos:?} {events:?}");
    let (header, rows) = assert_index_matches_video(&videos[0]);
    let ids: Vec<u32> = csv_column(&header, &rows, "frame_index").iter().map(|v| v.parse().unwrap()).collect();
    // Start at 3.0 s (frame 44); 1 s of pre-roll reaches back to 2.0 s (frame 29): the keyframe
    // at or before it is frame 0.
    assert_eq!(ids.first(), Some(&0), "from the keyframe at or before start - PRE_ROLL: {ids:?}");
    assert_eq!(ids, (0..ids.len() as u32).collect::<Vec<_>>(), "every frame once, in order");
    let last = *ids.last().unwrap();
    assert!((52..=54).contains(&last), "up to the stop at 3.6 s (frame 53): {last}");
    let manifest = read_json(&files_ending(&dir, ".session.json")[0]);
    let offset = manifest["cameras"]["image"]["files"][0]["offset_secs"].as_f64().unwrap();
    assert!(offset < -2.5, "the file begins before the session: offset {offset}");
    assert_eq!(decode_errors(&videos[0]), "");
}

#[test]
fn pre_roll_of_copied_jpegs_starts_at_the_frame_before_it_byte_for_byte() {
    use dora_recorder_test_nodes::{compress::ImageFormat, encoding::Encoding, pattern};
    let dir = temp_storage("pre-roll-copy");
    let storage = storage_env(&dir);
    let format = pattern::FrameFormat::new(64, 48, Encoding::Rgb8).unwrap();
    let jpegs: Vec<Vec<u8>> =
        (0..60).map(|i| ImageFormat::Jpeg.compress(&pattern::draw_frame(&format, i, 0), 64, 48).unwrap()).collect();
    let mut script = Script::new(&[("image", "camera/image"), ("control", "script/control")]);
    for (index, jpeg) in jpegs.iter().enumerate() {
        // Only `encoding`, as JPEG cameras may send: the image knows its size.
        let metadata = json!({"encoding": {"String": "jpeg"}, "frame_index": {"Integer": index}});
        script = script.raw_input("image", 0.05 + index as f64 / 15.0, metadata, json!(jpeg), "UInt8");
    }
    let (result, events) = script
        .control_json(3.0, &json!({"action": "start", "session_id": "after-the-fact"}))
        .control_text(3.6, "stop", None)
        .stop(4.6)
        .run(&[("STORAGE", &storage), ("PRE_ROLL", "1"), ("COMPRESSED", "copy")]);
    result.unwrap();
    let videos = videos_in(&dir);
    assert_eq!(videos.len(), 1, "{videos:?} {events:?}");
    assert_eq!(probe(&videos[0]).codec, "mjpeg");
    let (header, rows) = assert_index_matches_video(&videos[0]);
    let ids: Vec<usize> = csv_column(&header, &rows, "frame_index").iter().map(|v| v.parse().unwrap()).collect();
    // Every copied JPEG is a keyframe: 1 s before the start at 3.0 s is 2.0 s, and the frame at or
    // before it is frame 29 (sent at 1.983 s).
    assert_eq!(ids.first(), Some(&29), "from the frame at or before start - PRE_ROLL: {ids:?}");
    assert_eq!(ids, (29..29 + ids.len()).collect::<Vec<_>>(), "every frame once, in order");
    let out = dir.join("packets");
    std::fs::create_dir_all(&out).unwrap();
    let status = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(&videos[0])
        .args(["-c", "copy", "-f", "image2"])
        .arg(out.join("%05d.jpg"))
        .status()
        .unwrap();
    assert!(status.success());
    let stored: Vec<Vec<u8>> = e2e::files_in(&out).iter().map(|p| std::fs::read(p).unwrap()).collect();
    assert_eq!(stored.len(), ids.len());
    for (packet, index) in stored.iter().zip(&ids) {
        assert!(*packet == jpegs[*index], "frame {index} is not the JPEG sent");
    }
}

#[test]
fn overlay_draws_the_latest_boxes_into_the_video_only_when_asked() {
    let mut green_pixels = Vec::new();
    for overlay in ["true", "false"] {
        let dir = temp_storage(&format!("overlay-{overlay}"));
        let storage = storage_env(&dir);
        let times: Vec<f64> = (0..6).map(|i| 0.1 + f64::from(i) * 0.1).collect();
        let (result, _) = Script::new(&[("image", "camera/image"), ("detections", "yolo/bbox")])
            .indexed_frames("image", &times[..2], 0, 64, 48)
            .detections("detections", 0.25, Some(1), &["person"], &[[10.0, 10.0, 40.0, 30.0]])
            .indexed_frames("image", &times[2..], 2, 64, 48)
            .stop(1.0)
            .run(&[("STORAGE", &storage), ("OVERLAY", overlay), ("CRF", "0")]);
        result.unwrap();
        let video = &videos_in(&dir)[0];
        let frames = support::decode_frames(video, "rgb24", 64 * 48 * 3);
        let green = |frame: &Vec<u8>| frame.chunks(3).filter(|p| p[1] > 200 && p[0] < 80 && p[2] < 80).count();
        green_pixels.push((green(&frames[0]), green(&frames[3])));
    }
    let (with, without) = (green_pixels[0], green_pixels[1]);
    assert_eq!(with.0, 0, "no boxes before the first detection");
    assert!(with.1 > 100, "the box outline is drawn after it: {with:?}");
    assert_eq!(without, (0, 0), "OVERLAY off leaves the frames untouched");
}

#[test]
fn triggered_clips_and_control_sessions_work_side_by_side() {
    let dir = temp_storage("trigger-control");
    let storage = storage_env(&dir);
    let times: Vec<f64> = (0..40).map(|i| 0.05 + f64::from(i) * 0.1).collect();
    let boxes = [[1.0, 1.0, 5.0, 5.0]];
    let (result, events) = Script::new(&[("image", "camera/image"), ("detections", "det/bbox"), ("control", "c/c")])
        .indexed_frames("image", &times, 0, 64, 48)
        .detections("detections", 0.3, None, &["car"], &boxes)
        .detections("detections", 0.5, None, &["person"], &boxes)
        .detections("detections", 0.9, None, &["person"], &boxes)
        .control_json(2.5, &json!({"action": "start", "session_id": "operator"}))
        .control_text(3.3, "stop", None)
        .stop(4.4)
        .run(&[("STORAGE", &storage), ("TRIGGER", "detections"), ("TRIGGER_LABELS", "person"), ("POST_ROLL", "0.6")]);
    result.unwrap();
    let finished = events_with_status(&events, "finished");
    let sessions: Vec<&str> = finished.iter().map(|e| e["session_id"].as_str().unwrap()).collect();
    assert_eq!(sessions, ["person_000001", "operator"], "a car does not trigger; the control session still records");
    let clip = finished[0];
    let clip_secs = (clip["last_time_ns"].as_u64().unwrap() - clip["first_time_ns"].as_u64().unwrap()) as f64 / 1e9;
    assert!(
        (clip_secs - 0.9).abs() < 0.15,
        "from the first match (0.5 s) to the last + POST_ROLL (1.5 s): {clip_secs}"
    );
    let manifests = files_ending(&dir, ".session.json");
    let reasons: Vec<String> =
        manifests.iter().map(|m| read_json(m)["end_reason"].as_str().unwrap().to_owned()).collect();
    assert!(reasons.contains(&"trigger_timeout".to_owned()) && reasons.contains(&"stop".to_owned()), "{reasons:?}");
    let causes: Vec<(String, String)> = manifests
        .iter()
        .map(|m| read_json(m))
        .map(|m| (m["started_by"].as_str().unwrap().to_owned(), m["stopped_by"].as_str().unwrap().to_owned()))
        .collect();
    assert!(causes.contains(&("trigger".to_owned(), "trigger".to_owned())), "the clip: {causes:?}");
    assert!(causes.contains(&("control_message".to_owned(), "control_message".to_owned())), "{causes:?}");
}

#[test]
fn segment_bytes_cut_files_by_size() {
    let dir = temp_storage("segment-bytes");
    let storage = storage_env(&dir);
    let (result, _) = Script::new(&[("image", "camera/image")])
        .noise_frames("image", 0.1, 0.1, 24, 160, 120)
        .stop(2.8)
        .run(&[("STORAGE", &storage), ("SEGMENT_BYTES", "60k"), ("FSYNC", "false")]);
    result.unwrap();
    let videos = videos_in(&dir);
    assert!(videos.len() >= 2, "{videos:?}");
    let frames: u64 = videos.iter().map(|v| probe(v).frames).sum();
    assert_eq!(frames, 24, "every frame once across the segments");
}

/// Issue 14: a session of 30 good and 3 invalid frames reports the same counts and duration in
/// its "finished" event whichever worker wrote it (session worker, or pre-roll worker).
#[test]
fn skipped_frames_and_duration_are_reported_the_same_with_and_without_pre_roll() {
    for pre_roll in ["0", "2"] {
        let dir = temp_storage(&format!("counters-{pre_roll}"));
        let storage = storage_env(&dir);
        let times: Vec<f64> = (0..30).map(|i| 0.5 + f64::from(i) / 15.0).collect();
        let mut script = Script::new(&[("image", "camera/image"), ("control", "script/control")])
            .control_json(0.3, &json!({"action": "start", "session_id": "counted"}))
            .indexed_frames("image", &times, 0, 64, 48);
        for at in [1.01, 1.52, 2.03] {
            // A bgr8 frame whose payload is far too short for 64x48: invalid, skipped.
            script = script.frame("image", at, "bgr8", 64, 48, vec![7; 10]);
        }
        let (result, events) =
            script.control_text(2.6, "stop", None).stop(4.0).run(&[("STORAGE", &storage), ("PRE_ROLL", pre_roll)]);
        let summary = result.unwrap();
        assert_eq!(summary.frames_invalid, 3, "PRE_ROLL={pre_roll}: {summary:?}");
        let finished = events_with_status(&events, "finished");
        assert_eq!(finished.len(), 1, "PRE_ROLL={pre_roll}: {events:?}");
        let report = finished[0];
        assert_eq!(report["frames"], 30, "PRE_ROLL={pre_roll}: {report:?}");
        assert_eq!(
            report["skipped"], 3,
            "PRE_ROLL={pre_roll}: the invalid frames are counted with the file: {report:?}"
        );
        assert_eq!(report["dropped"], 0, "PRE_ROLL={pre_roll}: {report:?}");
        let duration = report["duration_secs"].as_f64().unwrap();
        // 30 frames at 15 fps: 29 intervals plus the last frame's own duration.
        assert!((duration - 2.0).abs() < 0.01, "PRE_ROLL={pre_roll}: duration {duration}");
    }
}
