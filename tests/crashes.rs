//! Crash and stop paths under the real dora CLI: SIGKILL at random instants, Ctrl-C on
//! `dora run`, a recorder restarted by dora, and a camera that exits and comes back. Every file
//! must decode to its end without an error line and hold what the camera sent.

#![allow(clippy::unwrap_used)]

use std::{
    path::{Path, PathBuf},
    time::{Duration, SystemTime},
};

use e2e::{
    Background, csv_column, decode_errors, file_name, frame_indices, play_in_chromium, probe, random_between, read_csv,
    read_send_log, recorder_pids, serial, signal, temp_dir, top_level_boxes, videos_in, wait_for,
};

/// What a kill may cost at default settings: the frames sent in the last second.
const MAX_LOSS: Duration = Duration::from_secs(1);

/// Asserts the file decodes without errors and holds exactly the camera frames 0..n in order.
fn assert_clean_prefix(path: &Path, source: (u32, u32)) -> u32 {
    assert_eq!(decode_errors(path), "", "{} decodes to its end without an error", path.display());
    let indices = frame_indices(path, source);
    let expected: Vec<Option<u32>> = (0..indices.len() as u32).map(Some).collect();
    assert_eq!(indices, expected, "{}: frames 0..n in order", path.display());
    indices.len() as u32
}

fn kill_at_random_instant(flow: &str, fps: u32, kills: u32) {
    let _serial = serial();
    for round in 0..kills {
        let dir = temp_dir(&format!("kill-{fps}-{round}"));
        let send_log = dir.join("sent.log");
        let storage = dir.join("recordings");
        let run = Background::dora_run(
            flow,
            &[
                ("STORAGE", storage.display().to_string()),
                ("SEND_LOG", send_log.display().to_string()),
                ("WIDTH", "320".into()),
                ("HEIGHT", "240".into()),
            ],
        );
        wait_for("the first file", Duration::from_secs(300), || !videos_in(&storage).is_empty());
        std::thread::sleep(random_between(Duration::from_secs(2), Duration::from_secs(4)));
        let killed_at = SystemTime::now();
        let pids = recorder_pids();
        assert!(!pids.is_empty(), "the recorder runs");
        pids.into_iter().for_each(|pid| signal(pid, "KILL"));
        let (_, log) = run.wait(Duration::from_secs(2));
        let files = videos_in(&storage);
        assert_eq!(files.len(), 1, "{files:?}\n{log}");
        let kept = assert_clean_prefix(&files[0], (320, 240));
        // The index survives the kill too: a row for every frame the video still holds.
        let (header, rows) = read_csv(&files[0].with_extension("frames.csv"));
        let indexed: Vec<String> = csv_column(&header, &rows, "frame_index");
        assert!(indexed.len() as u32 >= kept, "index rows {} < video frames {kept}", indexed.len());
        assert!(indexed.iter().take(kept as usize).enumerate().all(|(k, v)| *v == k.to_string()), "{indexed:?}");
        let sent = read_send_log(&send_log);
        let must_keep = sent.iter().filter(|f| f.at + MAX_LOSS <= killed_at).map(|f| f.index + 1).max().unwrap_or(0);
        let sent_before_kill = sent.iter().filter(|f| f.at <= killed_at).count() as u32;
        let lost_secs = f64::from(sent_before_kill.saturating_sub(kept)) / f64::from(fps);
        eprintln!("kill at {fps} fps: sent {sent_before_kill}, kept {kept}, lost {lost_secs:.2} s");
        assert!(
            kept >= must_keep,
            "{fps} fps: kept {kept} frames, but {must_keep} were sent more than 1 s before the kill ({lost_secs:.2} s lost)"
        );
        if round == 0 {
            let playback = play_in_chromium(&files[0]);
            assert!(
                playback.error.is_none() && playback.ended,
                "a killed MP4 plays to its last fragment: {playback:?}"
            );
            let last_fragment_secs = f64::from(kept) / f64::from(fps);
            assert!(playback.current_time >= last_fragment_secs - 0.2, "{playback:?} for {kept} frames");
        }
    }
}

#[test]
fn sigkill_at_random_instants_keeps_every_frame_sent_up_to_a_second_before_at_15_fps() {
    kill_at_random_instant("dataflows/record.yml", 15, 2);
}

#[test]
fn sigkill_at_random_instants_keeps_every_frame_sent_up_to_a_second_before_at_30_fps() {
    kill_at_random_instant("tests/flows/record-30fps.yml", 30, 2);
}

/// Asserts a cleanly finished MP4 has its index and shows the right length in Chromium.
fn assert_plays_in_browser_with_right_duration(path: &Path, frames: u32, fps: f64) {
    assert_eq!(top_level_boxes(path).last().map(String::as_str), Some("moov"), "{}", path.display());
    let probed = probe(path);
    let playback = play_in_chromium(path);
    assert!(playback.error.is_none() && playback.ended, "{}: {playback:?}", path.display());
    let one_frame = 1.0 / fps;
    assert!(
        (playback.duration - probed.duration).abs() <= one_frame,
        "browser duration {} vs ffprobe {} ({} frames)",
        playback.duration,
        probed.duration,
        frames
    );
}

#[test]
fn ctrl_c_on_dora_run_finalizes_a_complete_file_with_every_frame_sent() {
    let _serial = serial();
    let dir = temp_dir("ctrl-c");
    let send_log = dir.join("sent.log");
    let storage = dir.join("recordings");
    let run = Background::dora_run(
        "dataflows/record.yml",
        &[
            ("STORAGE", storage.display().to_string()),
            ("SEND_LOG", send_log.display().to_string()),
            ("WIDTH", "320".into()),
            ("HEIGHT", "240".into()),
        ],
    );
    wait_for("the first file", Duration::from_secs(300), || !videos_in(&storage).is_empty());
    std::thread::sleep(Duration::from_secs(3));
    signal(run.pid(), "INT");
    let (status, log) = run.wait(Duration::from_secs(30));
    assert!(status.is_some(), "dora run exits after Ctrl-C: {log}");
    let files = videos_in(&storage);
    assert_eq!(files.len(), 1, "{files:?}\n{log}");
    let kept = assert_clean_prefix(&files[0], (320, 240));
    let sent = read_send_log(&send_log).len() as u32;
    assert_eq!(kept, sent, "every frame the camera sent is in the file\n{log}");
    assert_plays_in_browser_with_right_duration(&files[0], kept, 15.0);
}

#[test]
fn a_camera_that_closes_its_output_leaves_mp4_and_mkv_with_every_frame_and_the_right_browser_duration() {
    let _serial = serial();
    for format in ["mp4", "mkv"] {
        let dir = temp_dir(&format!("closed-{format}"));
        let storage = dir.join("recordings");
        let run = Background::dora_run(
            "dataflows/record.yml",
            &[
                ("STORAGE", storage.display().to_string()),
                ("MAX_FRAMES", "45".into()),
                ("WIDTH", "320".into()),
                ("HEIGHT", "240".into()),
                ("FORMAT", format.into()),
            ],
        );
        let (status, log) = run.wait(Duration::from_secs(600));
        assert!(status.is_some_and(|s| s.success()), "the dataflow ends when the camera is done: {log}");
        let files = videos_in(&storage);
        assert_eq!(files.len(), 1, "{files:?}");
        assert_eq!(assert_clean_prefix(&files[0], (320, 240)), 45, "{format}");
        let probed = probe(&files[0]);
        let playback = play_in_chromium(&files[0]);
        assert!(playback.error.is_none() && playback.ended, "{format}: {playback:?}");
        assert!(
            (playback.duration - probed.duration).abs() <= 1.0 / 15.0,
            "{format}: browser {} s, ffprobe {} s",
            playback.duration,
            probed.duration
        );
        assert!((probed.duration - 3.0).abs() < 0.35, "{format}: 45 frames at 15 fps: {}", probed.duration);
    }
}

fn recordings_named(dir: &Path, camera: &str) -> Vec<PathBuf> {
    videos_in(dir).into_iter().filter(|f| file_name(f).contains(&format!("_{camera}_"))).collect()
}

#[test]
fn a_restarted_recorder_and_a_camera_that_comes_back_never_lose_or_overwrite_files() {
    let _serial = serial();
    let dir = temp_dir("restart");
    let storage = dir.join("recordings");
    let run = Background::dora_run("tests/flows/restart.yml", &[("STORAGE", storage.display().to_string())]);
    // The wrist camera exits after 30 frames (2 s) and dora starts it again: each life is a
    // file. By its third life, the first one's file is finalized.
    wait_for("the wrist camera's third file", Duration::from_secs(300), || {
        recordings_named(&storage, "wrist").len() >= 3
    });
    let pids = recorder_pids();
    pids.into_iter().for_each(|pid| signal(pid, "KILL"));
    let killed = videos_in(&storage);
    // Files holding at least one fragment must survive; one opened just before the kill holds
    // no frame, and the restarted recorder's recovery removes it.
    let killed_with_frames: Vec<PathBuf> =
        killed.iter().filter(|f| top_level_boxes(f).iter().any(|b| b == "moof")).cloned().collect();
    wait_for("files of the restarted recorder", Duration::from_secs(30), || {
        videos_in(&storage).iter().any(|f| !killed.contains(f))
    });
    std::thread::sleep(Duration::from_secs(3));
    signal(run.pid(), "INT");
    let (_, log) = run.wait(Duration::from_secs(30));
    let files = videos_in(&storage);
    for file in &files {
        assert_eq!(decode_errors(file), "", "{} decodes without an error\n{log}", file.display());
    }
    for old in &killed_with_frames {
        assert!(files.contains(old), "{} of the killed recorder is still there", old.display());
        assert_eq!(top_level_boxes(old).last().map(String::as_str), Some("moov"), "recovered and indexed at restart");
    }
    // Files the killed recorder had finished were finished completely: 30 wrist frames each.
    let wrist = recordings_named(&storage, "wrist");
    let complete_lives = wrist.iter().filter(|f| frame_indices(f, (160, 120)).len() == 30).count();
    assert!(complete_lives >= 1, "a wrist camera life recorded whole: {wrist:?}");
    for file in &wrist {
        // One camera life per file, in order without a gap; the life during which the recorder
        // was down starts where the restarted recorder came in.
        let indices: Vec<u32> = frame_indices(file, (160, 120)).into_iter().map(Option::unwrap).collect();
        let expected: Vec<u32> = (indices[0]..indices[0] + indices.len() as u32).collect();
        assert_eq!(indices, expected, "{}", file.display());
    }
    assert!(recordings_named(&storage, "front").len() >= 2, "the front camera recorded before and after the restart");
}
