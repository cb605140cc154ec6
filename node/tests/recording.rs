//! The real node loop driven through `DoraNode::init_testing`: scripted frames and control
//! messages in, real FFmpeg files out, checked with `ffprobe`.

#![allow(clippy::unwrap_used)]

mod support;

use dora_video_recorder::encode::{
    CodecRequest, Container, EncoderKind, EncoderSettings, Quality, RateControl, probe_encoder,
};
use serde_json::json;
use support::{Script, decode_frames, events_with_status, first_frame_rgb, probe, temp_storage, videos_in};

const CAMERA: [(&str, &str); 1] = [("image", "camera/image")];
const CAMERA_AND_CONTROL: [(&str, &str); 2] = [("image", "camera/image"), ("control", "ctl/control")];

fn storage_env(dir: &std::path::Path) -> String {
    dir.display().to_string()
}

#[test]
fn a_run_without_control_is_one_session_with_every_frame() {
    let dir = temp_storage("one-session");
    let storage = storage_env(&dir);
    let (result, events) = Script::new(&CAMERA).frames("image", 0.05, 0.05, 20, 64, 48).stop(1.2).run(&[
        ("STORAGE", &storage),
        ("FPS", "20"),
        ("SESSION_ID", "robot run/1"),
    ]);
    let summary = result.unwrap();
    let files = videos_in(&dir);
    assert_eq!(files.len(), 1, "{files:?}");
    let name = files[0].file_name().unwrap().to_str().unwrap();
    assert!(name.starts_with("robot_run_1_") && name.ends_with(".mp4"), "{name}");
    let probe = probe(&files[0]);
    assert_eq!((probe.codec.as_str(), probe.width, probe.height), ("h264", 64, 48));
    assert_eq!(probe.frames, 20);
    assert_eq!(probe.pix_fmt, "yuv420p");
    // 19 intervals of 50 ms plus the last frame's nominal 1/20 s.
    assert!((probe.duration - 1.0).abs() < 0.01, "duration {}", probe.duration);
    assert_eq!(summary.frames_recorded, 20);
    let finished = events_with_status(&events, "finished");
    assert_eq!(finished.len(), 1, "{events:?}");
    assert_eq!(finished[0]["frames"], 20);
    assert_eq!(finished[0]["session_id"], "robot run/1");
    assert_eq!(finished[0]["path"], files[0].display().to_string());
    assert_eq!(events_with_status(&events, "started").len(), 1);
}

#[test]
fn duration_follows_source_timestamps_not_the_nominal_fps() {
    let dir = temp_storage("vfr");
    let storage = storage_env(&dir);
    // A camera delivering 5 fps while FPS says 15: 10 frames span 1.8 s + 1/15 s.
    let (result, _) = Script::new(&CAMERA)
        .frames("image", 0.0, 0.2, 10, 32, 32)
        .stop(2.0)
        .run(&[("STORAGE", &storage), ("FPS", "15")]);
    result.unwrap();
    let probe = probe(&videos_in(&dir)[0]);
    assert_eq!(probe.frames, 10);
    assert!((probe.duration - (1.8 + 1.0 / 15.0)).abs() < 0.01, "duration {}", probe.duration);
}

#[test]
fn frame_timestamps_mode_is_constant_rate() {
    let dir = temp_storage("cfr");
    let storage = storage_env(&dir);
    let (result, _) = Script::new(&CAMERA).frames("image", 0.0, 0.2, 6, 32, 32).stop(1.3).run(&[
        ("STORAGE", &storage),
        ("FPS", "10"),
        ("TIMESTAMPS", "frame"),
    ]);
    result.unwrap();
    let probe = probe(&videos_in(&dir)[0]);
    assert_eq!(probe.frames, 6);
    assert!((probe.duration - 0.6).abs() < 0.01, "duration {}", probe.duration);
}

#[test]
fn odd_sizes_are_padded_not_refused() {
    let dir = temp_storage("odd");
    let storage = storage_env(&dir);
    let (result, _) =
        Script::new(&CAMERA).frames("image", 0.0, 0.05, 5, 33, 25).stop(0.5).run(&[("STORAGE", &storage)]);
    result.unwrap();
    let probe = probe(&videos_in(&dir)[0]);
    assert_eq!((probe.width, probe.height, probe.frames), (34, 26, 5));
}

#[test]
fn a_size_change_finalizes_the_file_and_opens_the_next() {
    let dir = temp_storage("resize");
    let storage = storage_env(&dir);
    let (result, events) = Script::new(&CAMERA)
        .frames("image", 0.0, 0.05, 5, 32, 24)
        .frames("image", 0.3, 0.05, 7, 48, 32)
        .stop(0.8)
        .run(&[("STORAGE", &storage)]);
    result.unwrap();
    let files = videos_in(&dir);
    assert_eq!(files.len(), 2, "{files:?}");
    let mut probes: Vec<_> = files.iter().map(|f| probe(f)).collect();
    probes.sort_by_key(|p| p.width);
    assert_eq!((probes[0].width, probes[0].height, probes[0].frames), (32, 24, 5));
    assert_eq!((probes[1].width, probes[1].height, probes[1].frames), (48, 32, 7));
    assert_eq!(events_with_status(&events, "finished").len(), 2);
}

#[test]
fn frames_bind_to_the_session_active_when_they_were_sent() {
    let dir = temp_storage("binding");
    let storage = storage_env(&dir);
    let (result, events) = Script::new(&CAMERA_AND_CONTROL)
        .frames("image", 0.0, 0.1, 2, 32, 32) // before any session: not recorded
        .control_text(0.15, "start", Some("first"))
        .frames("image", 0.2, 0.05, 4, 32, 32) // 0.20 .. 0.35
        .control_text(0.5, "stop", None)
        // Sent before the stop, delivered after it: still the first session's.
        .frames("image", 0.4, 0.05, 2, 32, 32) // 0.40, 0.45
        .frames("image", 0.55, 0.05, 2, 32, 32) // after the stop: no session
        // Sent after the next start, delivered before it: the second session's.
        .frames("image", 0.85, 0.05, 2, 32, 32) // 0.85, 0.90
        .control_text(0.8, r#"{"action": "start", "session_id": "second"}"#, None)
        .frames("image", 0.95, 0.05, 3, 32, 32) // 0.95 .. 1.05
        .control_text(1.1, "stop", None)
        .stop(1.2)
        .run(&[("STORAGE", &storage)]);
    let summary = result.unwrap();
    let files = videos_in(&dir);
    assert_eq!(files.len(), 2, "{files:?}");
    let count = |prefix: &str| {
        let file = files.iter().find(|f| f.file_name().unwrap().to_str().unwrap().starts_with(prefix)).unwrap();
        probe(file).frames
    };
    assert_eq!(count("first_"), 6);
    assert_eq!(count("second_"), 5);
    assert_eq!(summary.frames_unbound, 4);
    assert_eq!(events_with_status(&events, "finished").len(), 2);
}

#[test]
fn episode_indices_name_sessions_and_a_start_ends_the_previous_one() {
    let dir = temp_storage("episodes");
    let storage = storage_env(&dir);
    let (result, _) = Script::new(&CAMERA_AND_CONTROL)
        .control_episode(0.0, 3)
        .frames("image", 0.05, 0.05, 3, 32, 32)
        .control_episode(0.25, 4)
        .frames("image", 0.3, 0.05, 2, 32, 32)
        .control_episode(0.45, -1)
        .stop(0.5)
        .run(&[("STORAGE", &storage)]);
    result.unwrap();
    let files = videos_in(&dir);
    let names: Vec<String> = files.iter().map(|f| f.file_name().unwrap().to_string_lossy().into_owned()).collect();
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(names[0].starts_with("episode_000003_") && names[1].starts_with("episode_000004_"), "{names:?}");
    assert_eq!((probe(&files[0]).frames, probe(&files[1]).frames), (3, 2));
}

#[test]
fn a_session_without_frames_leaves_no_file() {
    let dir = temp_storage("empty");
    let storage = storage_env(&dir);
    let (result, events) = Script::new(&CAMERA_AND_CONTROL)
        .control_text(0.0, "start", Some("nothing"))
        .control_text(0.1, "stop", None)
        .control_text(0.2, "stop", None) // stop with no session: ignored
        .stop(0.3)
        .run(&[("STORAGE", &storage)]);
    result.unwrap();
    assert!(videos_in(&dir).is_empty());
    assert!(events.is_empty(), "{events:?}");
}

#[test]
fn bad_input_is_counted_and_never_loses_good_frames() {
    let dir = temp_storage("hostile");
    let storage = storage_env(&dir);
    let meta = |encoding: &str, w: i64, h: i64| json!({"encoding": {"String": encoding}, "width": {"Integer": w}, "height": {"Integer": h}});
    let (result, events) = Script::new(&CAMERA_AND_CONTROL)
        .control_text(0.0, "start", Some("s"))
        .frames("image", 0.05, 0.05, 3, 32, 32)
        .raw_input("image", 0.2, meta("bgr8", 32, 32), json!([1, 2, 3]), "UInt8") // short payload
        .raw_input("image", 0.21, meta("yuyv", 32, 32), json!([0, 0, 0, 0, 0, 0, 0, 0]), "UInt8") // unknown encoding
        .raw_input("image", 0.22, meta("h264", 32, 32), json!([0, 0, 0, 1, 103]), "UInt8") // a video stream
        .raw_input("image", 0.225, meta("jpeg", 32, 32), json!([255, 216, 255]), "UInt8") // a cut-off image
        .raw_input("image", 0.23, meta("bgr8", -4, 1 << 40), json!([0]), "UInt8") // absurd size
        .raw_input("image", 0.24, json!({}), json!([0]), "UInt8") // no size at all
        .raw_input("image", 0.25, meta("bgr8", 2, 2), json!([1.5, 2.5]), "Float32") // not bytes
        .raw_input("control", 0.26, json!({}), json!("pause"), "Utf8") // unknown command
        .raw_input("control", 0.27, json!({}), json!([1.0]), "Float64") // wrong type
        .frames("image", 0.3, 0.05, 3, 32, 32)
        .control_text(0.5, "stop", None)
        .stop(0.6)
        .run(&[("STORAGE", &storage)]);
    let summary = result.unwrap();
    let files = videos_in(&dir);
    assert_eq!(files.len(), 1);
    assert_eq!(probe(&files[0]).frames, 6);
    assert_eq!(summary.frames_compressed, 1);
    assert_eq!(summary.frames_invalid, 5);
    assert_eq!(summary.bad_control, 2);
    let finished = events_with_status(&events, "finished");
    // 5 invalid, the video stream, and the image that did not decode (on the camera's worker).
    assert_eq!(finished[0]["skipped"], 7, "{finished:?}");
}

#[test]
fn depth_arrays_record_losslessly_and_shapeless_ones_are_skipped() {
    let dir = temp_storage("depth-node");
    let storage = storage_env(&dir);
    let shape = json!({"width": {"Integer": 4}, "height": {"Integer": 3}});
    let mono16 = json!({"encoding": {"String": "mono16"}, "width": {"Integer": 4}, "height": {"Integer": 3}});
    let millimetres: Vec<u16> = (0..12).map(|i| i * 5000 + 7).collect();
    let metres: Vec<f32> = millimetres.iter().map(|&mm| f32::from(mm) / 1000.0).collect();
    let (result, _) = Script::new(&CAMERA_AND_CONTROL)
        .control_text(0.0, "start", Some("s"))
        .raw_input("image", 0.05, mono16, json!(millimetres), "UInt16")
        .raw_input("image", 0.10, shape, json!(metres), "Float32")
        .raw_input("image", 0.15, json!({}), json!(metres), "Float32") // no shape: skipped
        .control_text(0.5, "stop", None)
        .stop(0.6)
        .run(&[("STORAGE", &storage)]);
    assert_eq!(result.unwrap().frames_invalid, 1, "the frame without width and height");
    let files = videos_in(&dir);
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(files[0].extension().unwrap(), "mkv", "depth is Matroska under the default FORMAT=mp4");
    let probed = probe(&files[0]);
    assert_eq!((probed.codec.as_str(), probed.pix_fmt.as_str(), probed.frames), ("ffv1", "gray16le", 2));
    let expected: Vec<u8> = millimetres.iter().flat_map(|mm| mm.to_le_bytes()).collect();
    for frame in decode_frames(&files[0], "gray16le", 4 * 3 * 2) {
        assert_eq!(frame, expected, "UInt16 millimetres and Float32 metres both come back exactly");
    }
}

#[test]
fn every_raw_encoding_records_with_the_right_colours() {
    let dir = temp_storage("encodings");
    let storage = storage_env(&dir);
    let (w, h) = (16usize, 16usize);
    let red_bgr: Vec<u8> = [0u8, 0, 255].repeat(w * h);
    let red_rgb: Vec<u8> = [255u8, 0, 0].repeat(w * h);
    let red_rgba: Vec<u8> = [255u8, 0, 0, 255].repeat(w * h);
    let red_bgra: Vec<u8> = [0u8, 0, 255, 255].repeat(w * h);
    let grey: Vec<u8> = vec![128; w * h];
    // BT.601 limited-range red: Y 81, U 90, V 240.
    let red_i420: Vec<u8> = [vec![81u8; w * h], vec![90; w * h / 4], vec![240; w * h / 4]].concat();
    let red_nv12: Vec<u8> = [vec![81u8; w * h], [90u8, 240].repeat(w * h / 4)].concat();
    let cases: [(&str, Vec<u8>, [u8; 3]); 7] = [
        ("bgr8", red_bgr, [255, 0, 0]),
        ("rgb8", red_rgb, [255, 0, 0]),
        ("rgba8", red_rgba, [255, 0, 0]),
        ("bgra8", red_bgra, [255, 0, 0]),
        ("mono8", grey, [128, 128, 128]),
        ("yuv420", red_i420, [255, 0, 0]),
        ("nv12", red_nv12, [255, 0, 0]),
    ];
    let mut script = Script::new(&CAMERA);
    for (i, (encoding, bytes, _)) in cases.iter().enumerate() {
        for k in 0..3 {
            script =
                script.frame("image", 0.2 * i as f64 + 0.05 * k as f64, encoding, w as i64, h as i64, bytes.clone());
        }
    }
    let (result, events) = script.stop(1.6).run(&[("STORAGE", &storage), ("CRF", "10")]);
    result.unwrap();
    let finished = events_with_status(&events, "finished");
    assert_eq!(finished.len(), cases.len(), "an encoding change starts a new file: {events:?}");
    for (event, (encoding, _, expected)) in finished.iter().zip(&cases) {
        let path = std::path::PathBuf::from(event["path"].as_str().unwrap());
        assert_eq!(probe(&path).frames, 3, "{encoding}");
        let rgb = first_frame_rgb(&path);
        let centre = &rgb[(h / 2 * w + w / 2) * 3..][..3];
        for (got, want) in centre.iter().zip(expected) {
            assert!(got.abs_diff(*want) <= 12, "{encoding}: centre pixel {centre:?}, expected about {expected:?}");
        }
    }
}

#[test]
fn several_cameras_get_one_file_each_named_after_the_camera() {
    let dir = temp_storage("cameras");
    let storage = storage_env(&dir);
    let (result, _) = Script::new(&[("left", "cam_l/image"), ("right", "cam_r/image")])
        .frames("left", 0.0, 0.1, 4, 32, 32)
        .frames("right", 0.05, 0.1, 3, 48, 32)
        .stop(0.5)
        .run(&[("STORAGE", &storage), ("SESSION_ID", "rig")]);
    result.unwrap();
    let files = videos_in(&dir);
    assert_eq!(files.len(), 2);
    let name = |f: &std::path::Path| f.file_name().unwrap().to_string_lossy().into_owned();
    let left = files.iter().find(|f| name(f).starts_with("rig_left_")).unwrap();
    let right = files.iter().find(|f| name(f).starts_with("rig_right_")).unwrap();
    assert_eq!((probe(left).frames, probe(right).frames), (4, 3));
    assert_eq!(probe(right).width, 48);
}

#[test]
fn mkv_avi_and_hevc_containers_hold_every_frame() {
    for (format, codec, format_name, codec_name) in [
        ("mkv", "libx264", "matroska,webm", "h264"),
        ("avi", "libx264", "avi", "h264"),
        ("mp4", "libx265", "mov,mp4,m4a,3gp,3g2,mj2", "hevc"),
    ] {
        let dir = temp_storage(&format!("container-{format}-{codec}"));
        let storage = storage_env(&dir);
        let (result, _) = Script::new(&CAMERA).frames("image", 0.0, 0.1, 8, 64, 48).stop(0.9).run(&[
            ("STORAGE", &storage),
            ("FORMAT", format),
            ("CODEC", codec),
            ("FPS", "10"),
        ]);
        result.unwrap();
        let files = videos_in(&dir);
        assert_eq!(files.len(), 1, "{format}/{codec}");
        assert!(files[0].extension().unwrap() == format);
        let probe = probe(&files[0]);
        assert_eq!((probe.format_name.as_str(), probe.codec.as_str()), (format_name, codec_name));
        assert_eq!(probe.frames, 8, "{format}/{codec}");
        assert!((probe.duration - 0.8).abs() < 0.02, "{format}/{codec}: duration {}", probe.duration);
    }
}

#[test]
fn a_finished_mp4_is_indexed_and_its_fragments_are_kept_as_free_space() {
    let dir = temp_storage("hybrid");
    let storage = storage_env(&dir);
    let (result, _) =
        Script::new(&CAMERA).frames("image", 0.0, 0.1, 25, 32, 32).stop(2.6).run(&[("STORAGE", &storage)]);
    result.unwrap();
    let boxes = e2e::top_level_boxes(&videos_in(&dir)[0]);
    assert_eq!(boxes.first().map(String::as_str), Some("ftyp"), "{boxes:?}");
    assert_eq!(boxes.last().map(String::as_str), Some("moov"), "a complete index at the end: {boxes:?}");
    assert_eq!(boxes.iter().filter(|b| *b == "moov").count(), 1, "{boxes:?}");
    assert!(!boxes.iter().any(|b| b == "moof"), "fragment headers became free space: {boxes:?}");
    assert!(boxes.iter().filter(|b| *b == "mdat").count() >= 7, "2.5 s in fragments of at most 0.3 s: {boxes:?}");
    let probe = probe(&videos_in(&dir)[0]);
    assert_eq!(probe.frames, 25);
    // 24 intervals of 0.1 s, and the last frame lasts one nominal frame (1/15 s).
    assert!((probe.duration - (2.4 + 1.0 / 15.0)).abs() < 0.02, "duration {}", probe.duration);
}

/// Whether this machine can really open NVENC (false on CI: Debian's FFmpeg lists it, no GPU).
fn nvenc_opens() -> bool {
    dora_video_recorder::encode::init_ffmpeg().unwrap();
    let settings = EncoderSettings {
        container: Container::Mp4,
        quality: Quality::new("veryfast", RateControl::Crf(23), 30, 15.0),
        fps: dora_video_recorder::FrameRate::from_f64(15.0).unwrap(),
        time_base: dora_video_recorder::TimeBase::MICROS,
        fsync: false,
    };
    probe_encoder(EncoderKind::H264Nvenc, &settings).is_ok()
}

#[test]
fn auto_uses_nvenc_only_when_it_really_opens() {
    let dir = temp_storage("auto");
    let storage = storage_env(&dir);
    let (result, events) = Script::new(&CAMERA)
        .frames("image", 0.0, 0.1, 4, 64, 48)
        .stop(0.5)
        .run(&[("STORAGE", &storage), ("CODEC", "auto")]);
    result.unwrap();
    let expected = if nvenc_opens() { "h264_nvenc" } else { "libx264" };
    let finished = events_with_status(&events, "finished");
    assert_eq!(finished[0]["encoder"], expected);
    assert_eq!(finished[0]["codec"], CodecRequest::Auto.name());
    let probe = probe(&videos_in(&dir)[0]);
    assert_eq!((probe.codec.as_str(), probe.frames), ("h264", 4));
}

#[test]
fn an_explicit_codec_that_cannot_open_stops_the_node_before_any_frame() {
    if nvenc_opens() {
        return; // a GPU machine: h264_nvenc is usable, nothing to refuse
    }
    let dir = temp_storage("nvenc");
    let storage = storage_env(&dir);
    let (result, _) = Script::new(&CAMERA)
        .frames("image", 0.0, 0.1, 2, 64, 48)
        .stop(0.3)
        .run(&[("STORAGE", &storage), ("CODEC", "h264_nvenc")]);
    let message = format!("{:#}", result.unwrap_err());
    assert!(
        message.contains("h264_nvenc") && message.contains("libx264") && message.contains("CODEC=auto"),
        "{message}"
    );
    assert!(videos_in(&dir).is_empty());
}

#[test]
fn repeated_session_ids_never_overwrite_files() {
    let dir = temp_storage("collide");
    let storage = storage_env(&dir);
    let (result, _) = Script::new(&CAMERA_AND_CONTROL)
        .control_text(0.0, "start", Some("same"))
        .frames("image", 0.05, 0.05, 2, 32, 32)
        .control_text(0.2, "start", Some("same"))
        .frames("image", 0.25, 0.05, 3, 32, 32)
        .stop(0.45)
        .run(&[("STORAGE", &storage)]);
    result.unwrap();
    let files = videos_in(&dir);
    assert_eq!(files.len(), 2, "{files:?}");
    let mut frames: Vec<u64> = files.iter().map(|f| probe(f).frames).collect();
    frames.sort();
    assert_eq!(frames, vec![2, 3]);
}

#[test]
fn stats_report_every_camera_on_the_stats_output() {
    let dir = temp_storage("stats");
    let storage = storage_env(&dir);
    let (result, outputs) = Script::new(&[("front", "a/image"), ("wrist", "b/image")])
        .frames("front", 0.0, 0.1, 30, 64, 48)
        .frames("wrist", 0.0, 0.2, 15, 32, 24)
        .stop(3.2)
        .run_with_outputs(&[("STORAGE", &storage), ("STATS_INTERVAL", "1")]);
    result.unwrap();
    let stats = &outputs["stats"];
    let cameras: std::collections::BTreeSet<&str> = stats.iter().map(|row| row["camera"].as_str().unwrap()).collect();
    assert_eq!(cameras, ["front", "wrist"].into_iter().collect(), "{stats:?}");
    let last_front = stats.iter().rev().find(|row| row["camera"] == "front").unwrap();
    assert!(last_front["frames_in"].as_u64().unwrap() >= 20, "{last_front}");
    assert!(last_front["encode_fps"].as_f64().unwrap() > 5.0, "about 10 fps: {last_front}");
    assert!(last_front["bitrate_bps"].as_f64().unwrap() > 0.0);
}
