//! Never lose a recording: hostile session ids, storage faults (full, read-only, removed) and
//! cameras that close, through the node's real event loop (`DoraNode::init_testing`) and real
//! FFmpeg, checked with ffprobe and ffmpeg's decoder.

#![allow(clippy::unwrap_used)]

mod support;

use std::{
    path::Path,
    time::{Duration, Instant},
};

use dora_video_recorder::{
    CameraWorker, FileSettings, Frame, FrameFormat, FrameRate, Overflow, PixelEncoding, QueueLimits, SessionJob,
    SessionRef, TimestampMode,
    encode::{CodecRequest, Container, EncoderKind, Quality, RateControl},
    fmp4::FRAGMENTED_MOVFLAGS,
};
use e2e::{Tmpfs, decode_errors, format_tag};
use serde_json::json;
use support::{Script, events_with_status, probe, temp_storage, videos_in};

const CONTROLLED: [(&str, &str); 2] = [("image", "camera/image"), ("control", "script/control")];

fn storage_env(dir: &Path) -> String {
    dir.display().to_string()
}

#[test]
fn a_session_id_with_a_nul_byte_records_and_later_sessions_still_record() {
    let dir = temp_storage("nul-id");
    let storage = storage_env(&dir);
    let (result, events) = Script::new(&CONTROLLED)
        .control_json(0.0, &json!({"action": "start", "session_id": "x\u{0}y"}))
        .frames("image", 0.1, 0.1, 5, 64, 48)
        .control_json(0.7, &json!({"action": "start", "session_id": "next"}))
        .frames("image", 0.8, 0.1, 5, 64, 48)
        .control_text(1.4, "stop", None)
        .stop(1.6)
        .run(&[("STORAGE", &storage)]);
    let summary = result.unwrap();
    assert_eq!(summary.files_finished, 2, "{summary:?}");
    let finished = events_with_status(&events, "finished");
    assert_eq!(finished[0]["session_id"], "x\u{0}y", "the event carries the id as sent");
    let files = videos_in(&dir);
    assert_eq!(files.len(), 2, "{files:?}");
    let first = files.iter().find(|f| f.file_name().unwrap().to_string_lossy().starts_with("x_y_")).unwrap();
    assert_eq!(probe(first).frames, 5);
    assert_eq!(format_tag(first, "session_id").as_deref(), Some("x\u{fffd}y"), "NUL cannot live in a C string");
}

#[test]
fn a_5000_character_session_id_records_under_a_short_unique_name_with_the_full_id_kept() {
    let dir = temp_storage("long-id");
    let storage = storage_env(&dir);
    let long_a = format!("{}a", "é".repeat(2500));
    let long_b = format!("{}b", "é".repeat(2500));
    let (result, events) = Script::new(&CONTROLLED)
        .control_json(0.0, &json!({"action": "start", "session_id": long_a}))
        .frames("image", 0.1, 0.1, 3, 64, 48)
        .control_json(0.5, &json!({"action": "start", "session_id": long_b}))
        .frames("image", 0.6, 0.1, 3, 64, 48)
        .stop(1.2)
        .run(&[("STORAGE", &storage)]);
    result.unwrap();
    let files = videos_in(&dir);
    assert_eq!(files.len(), 2, "two long ids that share a prefix never share a file: {files:?}");
    for file in &files {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        assert!(name.len() <= 130, "{} bytes: {name}", name.len());
        assert_eq!(probe(file).frames, 3);
    }
    let ids: Vec<&str> =
        events_with_status(&events, "finished").iter().map(|e| e["session_id"].as_str().unwrap()).collect();
    assert!(ids.contains(&long_a.as_str()) && ids.contains(&long_b.as_str()), "full ids in the events");
    let tagged: Vec<String> = files.iter().filter_map(|f| format_tag(f, "session_id")).collect();
    assert!(tagged.contains(&long_a) && tagged.contains(&long_b), "full ids in the files' metadata");
}

#[test]
fn storage_that_cannot_be_written_stops_the_node_at_startup_naming_the_path() {
    let not_a_folder = temp_storage("not-a-folder").join("file");
    std::fs::write(&not_a_folder, b"x").unwrap();
    let storage = not_a_folder.join("recordings").display().to_string();
    let (result, _) = Script::new(&CONTROLLED).stop(0.1).run(&[("STORAGE", &storage)]);
    let error = format!("{:#}", result.unwrap_err());
    assert!(error.contains(&storage) && error.contains("STORAGE"), "{error}");

    let read_only = Tmpfs::mount("ro-startup", "1m");
    Tmpfs::set_read_only(read_only.path(), true);
    let (result, _) = Script::new(&CONTROLLED).stop(0.1).run(&[("STORAGE", &storage_env(read_only.path()))]);
    let error = format!("{:#}", result.unwrap_err());
    assert!(error.contains("not writable") && error.contains(&read_only.path().display().to_string()), "{error}");
}

/// Runs `fault` on another thread at about `seconds` of script time. The script's clock starts
/// only once its frames are parsed, so the first file (opened by the frame at 0.1 s) marks it.
fn at(seconds: f64, storage: &Path, fault: impl FnOnce() + Send + 'static) -> std::thread::JoinHandle<()> {
    let storage = storage.to_owned();
    std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !videos_in(&storage).iter().any(|f| f.extension().is_some_and(|e| e == "mp4")) {
            assert!(Instant::now() < deadline, "no recording started in {}", storage.display());
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_secs_f64(seconds - 0.1));
        fault();
    })
}

#[test]
fn a_full_disk_trims_the_file_to_its_last_fragment_and_the_next_session_records() {
    let disk = Tmpfs::mount("full", "3m");
    let filler = disk.path().join("filler.bin");
    std::fs::write(&filler, vec![0u8; 2_200_000]).unwrap();
    let storage = storage_env(disk.path());
    // Room comes back once the recorder has met the full disk: the file it writes shrank (trimmed
    // to its last fragment) or the disk stayed full for a second. Timed frees raced the encoder
    // on a loaded machine (freed before the bytes that would not fit were written, or after the
    // next session began); the next session starts late enough for either way.
    let full_disk = disk.path().to_owned();
    let free_space = std::thread::spawn(move || {
        free_once_full(&full_disk, Duration::from_secs(60));
        std::fs::remove_file(&filler).unwrap();
    });
    let (result, events) = Script::new(&CONTROLLED)
        .control_json(0.0, &json!({"action": "start", "session_id": "full"}))
        .noise_frames("image", 0.1, 0.1, 30, 320, 240)
        .control_text(3.3, "stop", None)
        .control_json(14.0, &json!({"action": "start", "session_id": "after"}))
        .frames("image", 14.1, 0.1, 10, 64, 48)
        .control_text(15.2, "stop", None)
        .stop(15.4)
        .run(&[("STORAGE", &storage)]);
    free_space.join().unwrap();
    let summary = result.unwrap();
    let failed = events_with_status(&events, "failed");
    assert!(!failed.is_empty(), "the full disk is reported: {events:?}");
    let why = failed[0]["error"].as_str().unwrap();
    assert!(why.contains("trimmed to its last complete fragment"), "{why}");
    let full = videos_in(disk.path()).into_iter().find(|f| f.to_string_lossy().contains("full_")).unwrap();
    assert_eq!(decode_errors(&full), "", "the cut-short file decodes without a single error");
    let kept = probe(&full).frames;
    eprintln!("disk full: kept {kept} of 30 frames; {why}");
    assert!(kept >= 4, "at least one complete fragment was kept: {kept} frames");
    let after = events_with_status(&events, "finished").into_iter().find(|e| e["session_id"] == "after").unwrap();
    assert_eq!(after["frames"], 10, "the next session records once there is room: {summary:?}");
}

/// Returns once the recorder has met a full disk at `dir` (a 3 MiB tmpfs): its `full_` video
/// shrank, or the disk held within 64 KiB of its size for a second; or after `timeout`.
fn free_once_full(dir: &Path, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    let size_of = |path: &Path| std::fs::metadata(path).map_or(0, |m| m.len());
    let (mut largest, mut full_since) = (0_u64, None::<Instant>);
    while Instant::now() < deadline {
        let files = e2e::files_in(dir);
        let video =
            files.iter().find(|f| f.to_string_lossy().contains("full_") && f.extension().is_some_and(|e| e == "mp4"));
        let size = video.map_or(0, |v| size_of(v));
        if size < largest {
            return;
        }
        largest = size;
        let used: u64 = files.iter().map(|f| size_of(f)).sum();
        if used + 64 * 1024 >= 3 * 1024 * 1024 {
            let since = *full_since.get_or_insert_with(Instant::now);
            if since.elapsed() >= Duration::from_secs(1) {
                return;
            }
        } else {
            full_since = None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Three sessions in `storage`, with `fault` applied between the first and the second and
/// `repair` between the second and the third. Asserts the session during the fault only fails
/// (one or more `failed` events) and the ones before and after record all their frames.
fn storage_fault_then_repair(storage: &Path, fault: fn(&Path), repair: fn(&Path)) {
    let (path_fault, path_repair) = (storage.to_owned(), storage.to_owned());
    let faulted = at(1.8, storage, move || fault(&path_fault));
    let repaired = at(3.8, storage, move || repair(&path_repair));
    let (result, events) = Script::new(&CONTROLLED)
        .control_json(0.0, &json!({"action": "start", "session_id": "before"}))
        .frames("image", 0.1, 0.1, 8, 64, 48)
        .control_text(1.0, "stop", None)
        .control_json(2.0, &json!({"action": "start", "session_id": "during"}))
        .frames("image", 2.1, 0.1, 8, 64, 48)
        .control_text(3.0, "stop", None)
        .control_json(4.0, &json!({"action": "start", "session_id": "repaired"}))
        .frames("image", 4.1, 0.1, 8, 64, 48)
        .control_text(5.0, "stop", None)
        .stop(5.2)
        .run(&[("STORAGE", &storage_env(storage))]);
    faulted.join().unwrap();
    repaired.join().unwrap();
    result.unwrap();
    let status_of = |session: &str| -> Vec<String> {
        events.iter().filter(|e| e["session_id"] == session).map(|e| e["status"].as_str().unwrap().to_owned()).collect()
    };
    assert!(status_of("before").contains(&"finished".to_owned()), "{events:?}");
    assert!(status_of("during").iter().all(|s| s == "failed") && !status_of("during").is_empty(), "{events:?}");
    for session in ["before", "repaired"] {
        let finished = events_with_status(&events, "finished").into_iter().find(|e| e["session_id"] == session);
        assert_eq!(finished.map(|e| e["frames"].clone()), Some(json!(8)), "{session}: {events:?}");
    }
}

#[test]
fn storage_made_read_only_mid_run_fails_that_session_and_records_again_when_writable() {
    let disk = Tmpfs::mount("ro-mid-run", "16m");
    storage_fault_then_repair(
        disk.path(),
        |dir| Tmpfs::set_read_only(dir, true),
        |dir| Tmpfs::set_read_only(dir, false),
    );
}

#[test]
fn storage_folder_removed_mid_run_fails_that_session_and_records_again_when_recreated() {
    let disk = Tmpfs::mount("removed-mid-run", "16m");
    let storage = disk.path().join("recordings");
    std::fs::create_dir_all(&storage).unwrap();
    storage_fault_then_repair(
        &storage,
        |dir| std::fs::remove_dir_all(dir).unwrap(),
        |dir| std::fs::create_dir_all(dir).unwrap(),
    );
    assert_eq!(probe(&videos_in(&storage)[0]).frames, 8, "the file after the folder came back");
}

#[test]
fn a_restart_repairs_the_files_a_crash_left_behind() {
    let dir = temp_storage("recovery");
    let storage = storage_env(&dir);
    let (result, _) = Script::new(&CONTROLLED)
        .control_json(0.0, &json!({"action": "start", "session_id": "whole"}))
        .noise_frames("image", 0.1, 0.1, 20, 160, 120)
        .stop(2.4)
        .run(&[("STORAGE", &storage), ("FSYNC", "false")]);
    result.unwrap();
    let whole = videos_in(&dir)[0].clone();
    // What a crash leaves: a fragmented file cut in the middle of its last fragment, as the
    // recorder's muxer settings write it (its header carrying the recorder's owner tag), and a
    // file whose recorder died before any frame (its header alone).
    let fragmented = dir.join("crashed.mp4");
    let made = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-f", "lavfi", "-i", "testsrc=size=160x120:rate=15", "-t", "3"])
        .args(["-c:v", "libx264", "-bf", "0", "-g", "30", "-movflags"])
        .arg(format!("{FRAGMENTED_MOVFLAGS}+use_metadata_tags"))
        .args(["-metadata", "recorder=dora-video-recorder", "-frag_duration", "400000"])
        .arg(&fragmented)
        .status()
        .unwrap();
    assert!(made.success());
    let bytes = std::fs::read(&fragmented).unwrap();
    std::fs::write(&fragmented, &bytes[..bytes.len() * 2 / 3]).unwrap();
    let cut = e2e::top_level_boxes(&fragmented);
    assert!(cut.last().is_some_and(|b| b.ends_with('!')), "the file ends in a cut box: {cut:?}");
    let empty = dir.join("never-started.mp4");
    let first_fragment = bytes.windows(4).position(|w| w == b"moof").unwrap() - 4;
    std::fs::write(&empty, &bytes[..first_fragment]).unwrap();
    for path in [&fragmented, &empty] {
        let old = std::time::SystemTime::now() - Duration::from_secs(60);
        std::fs::File::options().write(true).open(path).unwrap().set_modified(old).unwrap();
    }
    let (result, _) = Script::new(&CONTROLLED).stop(0.2).run(&[("STORAGE", &storage)]);
    result.unwrap();
    assert!(!empty.exists(), "a file without frames is removed");
    assert_eq!(decode_errors(&fragmented), "", "the cut file was trimmed to its last complete fragment");
    assert!(probe(&fragmented).frames >= 15, "{} frames kept", probe(&fragmented).frames);
    let repaired = e2e::top_level_boxes(&fragmented);
    assert_eq!(repaired.last().map(String::as_str), Some("moov"), "trimmed and indexed: {repaired:?}");
    assert!(!repaired.iter().any(|b| b.ends_with('!')), "{repaired:?}");
    assert_eq!(probe(&whole).frames, 20, "finished files are untouched");
}

#[test]
fn a_closed_camera_input_finalizes_its_file_and_a_restarted_camera_gets_a_new_one() {
    let dir = temp_storage("input-closed");
    let storage = storage_env(&dir);
    let cameras = [("front", "a/image"), ("wrist", "b/image"), ("control", "script/control")];
    let (result, events) = Script::new(&cameras)
        .control_json(0.0, &json!({"action": "start", "session_id": "run"}))
        .frames("front", 0.1, 0.1, 30, 64, 48)
        .frames("wrist", 0.1, 0.1, 6, 64, 48)
        .input_closed(0.7, "wrist")
        // The wrist camera's node comes back (dora's restart_policy) and sends again.
        .frames("wrist", 2.0, 0.1, 4, 64, 48)
        .control_text(3.2, "stop", None)
        .stop(3.4)
        .run(&[("STORAGE", &storage)]);
    result.unwrap();
    let finished = events_with_status(&events, "finished");
    let frames_of = |camera: &str| -> Vec<u64> {
        finished.iter().filter(|e| e["camera"] == camera).map(|e| e["frames"].as_u64().unwrap()).collect()
    };
    assert_eq!(frames_of("wrist"), vec![6, 4], "finalized at the close, a new file after the restart");
    assert_eq!(frames_of("front"), vec![30], "the other camera went on in one file");
    // The closed camera's file was finished while the session still ran.
    let order: Vec<(String, String)> = events
        .iter()
        .map(|e| (e["status"].as_str().unwrap().to_owned(), e["camera"].as_str().unwrap().to_owned()))
        .collect();
    let wrist_done = order.iter().position(|e| *e == ("finished".into(), "wrist".into())).unwrap();
    let front_done = order.iter().position(|e| *e == ("finished".into(), "front".into())).unwrap();
    assert!(wrist_done < front_done, "{order:?}");
    assert_eq!(videos_in(&dir).len(), 3);
}

/// A bug that panics inside a camera worker (here: a frame whose payload is shorter than its
/// format, which the node's input checks never let through) ends that file with a `failed`
/// event, and the same worker goes on to record the next frames into a new file.
#[test]
fn a_panic_inside_a_worker_fails_that_file_and_the_worker_goes_on() {
    let dir = temp_storage("worker-panic");
    let limits = QueueLimits { frames: 30, bytes: 1 << 30, overflow: Overflow::DropOldest };
    let (recorder, reports) = spawn_recorder(&dir, limits, "veryfast");
    // An odd size goes through the copy-then-swscale path, whose copy trusts the payload length.
    let format = FrameFormat { encoding: PixelEncoding::Bgr8, width: 65, height: 49 };
    let frame = |index: u64, bytes: usize| Frame {
        format,
        sent_nanos: 1_000_000_000 + index * 66_666_666,
        data: arrow::buffer::Buffer::from_vec(vec![90u8; bytes]),
        ids: Default::default(),
    };
    for index in 0..5 {
        recorder.submit(frame(index, 65 * 49 * 3), None);
    }
    recorder.submit(frame(5, 10), None);
    for index in 6..10 {
        recorder.submit(frame(index, 65 * 49 * 3), None);
    }
    recorder.finish().join().unwrap();
    let reports: Vec<_> = reports.try_iter().collect();
    let failed: Vec<_> = reports.iter().filter(|r| r.error.is_some()).collect();
    assert_eq!(failed.len(), 1, "{reports:?}");
    assert!(failed[0].panicked && failed[0].error.as_deref().unwrap().contains("panicked"), "{:?}", failed[0]);
    let finished: Vec<u64> = reports.iter().filter(|r| r.error.is_none() && r.frames > 0).map(|r| r.frames).collect();
    assert_eq!(finished, vec![4], "the frames after the panic are in a new, finished file: {reports:?}");
    for file in videos_in(&dir) {
        assert_eq!(decode_errors(&file), "", "{}", file.display());
    }
}

/// A camera worker of session `bug`, as the pipeline starts one, writing into `dir`.
fn spawn_recorder(
    dir: &Path,
    queue: QueueLimits,
    preset: &str,
) -> (CameraWorker, std::sync::mpsc::Receiver<dora_video_recorder::FileReport>) {
    dora_video_recorder::encode::init_ffmpeg().unwrap();
    let files = FileSettings {
        storage: dir.to_owned(),
        name_camera: false,
        container: Container::Mp4,
        codec: CodecRequest::Libx264,
        candidates: vec![EncoderKind::Libx264],
        quality: Quality::new(preset, RateControl::Crf(23), 30, 15.0),
        fps: FrameRate::from_f64(15.0).unwrap(),
        timestamps: TimestampMode::Source,
        queue,
        fsync: false,
        segments: Default::default(),
        overlay: false,
        depth_encoder: EncoderKind::Ffv1,
        compressed: Default::default(),
    };
    let session = SessionRef { serial: 1, id: "bug".into(), start_nanos: 1_000_000_000 };
    let (reports_tx, reports) = std::sync::mpsc::channel();
    let make_job = move |links| SessionJob::new(session, "image".into(), files, links);
    (CameraWorker::spawn("image", queue, false, false, reports_tx, Default::default(), make_job).unwrap(), reports)
}

/// A frame of random bytes (incompressible: slow to encode) sent at `index` / 15 s.
fn noise_frame(format: FrameFormat, index: u64) -> Frame {
    Frame {
        format,
        sent_nanos: 1_000_000_000 + index * 66_666_666,
        data: arrow::buffer::Buffer::from_vec(support::noise(format.byte_len(), index)),
        ids: Default::default(),
    }
}

/// A burst faster than the encoder: `drop` keeps the newest frames and counts the evicted
/// ones, `block` makes the sender wait and keeps every frame.
#[test]
fn a_full_queue_drops_its_oldest_frames_and_block_keeps_every_one() {
    let format = FrameFormat { encoding: PixelEncoding::Bgr8, width: 640, height: 480 };
    let frames: Vec<Frame> = (0..12).map(|i| noise_frame(format, i)).collect();
    for overflow in [Overflow::DropOldest, Overflow::Block] {
        let dir = temp_storage(&format!("overflow-{overflow:?}"));
        let limits = QueueLimits { frames: 2, bytes: 1 << 30, overflow };
        let (recorder, reports) = spawn_recorder(&dir, limits, "veryslow");
        let dropped: u64 = frames.iter().map(|frame| recorder.submit(frame.clone(), None)).sum();
        recorder.finish().join().unwrap();
        let finished: Vec<_> = reports.try_iter().filter(|r| r.frames > 0).collect();
        let recorded = probe(&videos_in(&dir)[0]).frames;
        assert_eq!(recorded + dropped, 12, "{overflow:?}: every frame recorded or counted");
        assert_eq!(finished[0].dropped, dropped, "{overflow:?}: the drops are in the file's event");
        match overflow {
            Overflow::DropOldest => assert!(dropped > 0, "the encoder could not keep up with a burst"),
            Overflow::Block => assert_eq!(dropped, 0),
        }
        // The newest frame is always kept: the file ends with the burst's last frame.
        let video = &videos_in(&dir)[0];
        let (header, rows) = e2e::read_csv(&video.with_extension("frames.csv"));
        let last_time = e2e::csv_column(&header, &rows, "time_ns").pop().unwrap();
        assert_eq!(last_time, (1_000_000_000 + 11 * 66_666_666_u64).to_string(), "{overflow:?}");
    }
}
