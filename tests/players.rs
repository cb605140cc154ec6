//! Every player shows the right length: recordings of a camera slightly faster than `FPS` (a
//! frame every 66 ms while `FPS=15` says 66.67 ms, as a real camera's clock drifts), made under
//! the real dora CLI and played in GStreamer (`gst-discoverer-1.0` for what a player shows
//! before it plays, a decoding pipeline for every frame and its time) and in headless Chromium.
//!
//! The truth each player is held to is the recorder's own frame index (`NAME.frames.csv`: one
//! row per frame, with its time in the file) and ffprobe's count of the frames the file holds:
//! a player must decode every one of them, at its time, and state the file's length as the last
//! frame's time plus one nominal frame (what the muxer gives the last sample), within one frame
//! for a cleanly finished file and within one MP4 fragment for a file whose recorder was killed.

#![allow(clippy::unwrap_used)]

use std::{
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use e2e::{
    Background, Playback, csv_column, dora_run, files_ending, gstreamer, play_in_chromium, probe, read_csv, read_json,
    recorder_pids, serial, signal, temp_dir, text, videos_in,
};

/// The camera sends every 66 ms; the recorder's nominal rate is 15 fps.
const FLOW: &str = "tests/flows/record-66ms.yml";
/// The recorder's `FPS` in that dataflow.
const FPS: f64 = 15.0;
/// One nominal frame: how long a file shows its last frame, and the tolerance on a clean file.
const ONE_FRAME: f64 = 1.0 / FPS;
/// The longest MP4 fragment (README, "Never loses a recording"): what a kill may leave a player
/// unsure about.
const ONE_FRAGMENT: f64 = 0.3;
/// How far a frame's time may differ between the index and a player: Matroska stores
/// milliseconds, MP4 microseconds.
const TIME_TOLERANCE: f64 = 0.001;
/// Frames of a finite recording: 9.9 s at 66 ms, where a stated 15 fps drifts by 1.5 frames.
const FRAMES: u32 = 150;

/// What the recorder says a file holds: each frame's time (its index), and where it ends.
#[derive(Debug)]
struct Truth {
    /// Each frame's time in the file, in seconds, from the index.
    times: Vec<f64>,
}

impl Truth {
    /// The index of `video`, cut to the `frames` frames the video holds (after a kill the index
    /// may have rows for frames that were still in the encoder).
    fn of(video: &Path, frames: usize) -> Self {
        let (header, rows) = read_csv(&video.with_extension("frames.csv"));
        let times: Vec<f64> = csv_column(&header, &rows, "pts").iter().map(|t| t.parse().unwrap()).collect();
        assert!(times.len() >= frames, "{}: index rows {} < video frames {frames}", video.display(), times.len());
        Self { times: times[..frames].to_vec() }
    }

    fn frames(&self) -> usize {
        self.times.len()
    }

    /// The file's length: its last frame's time plus one nominal frame.
    fn length(&self) -> f64 {
        self.times.last().map_or(0.0, |last| last + ONE_FRAME)
    }
}

/// Plays `video` in GStreamer and Chromium and returns every way they disagree with `truth`
/// (durations within `tolerance`), with a line of what each player said, so that one run shows
/// every disagreement at once.
fn disagreements(video: &Path, truth: &Truth, tolerance: f64) -> (Vec<String>, String) {
    let mut problems = Vec::new();
    let name = e2e::file_name(video);
    let discovered = gstreamer::discover(video);
    let decoded = gstreamer::decode(video);
    let playback = play_in_chromium(video);
    let summary = format!(
        "{name}: {} frames, {:.3} s long | GStreamer: discoverer {:.3} s at {}/{} fps, decoded {} frames to {:.3} s | \
         Chromium: duration {:.3} s, played to {:.3} s, ended {}, error {:?}",
        truth.frames(),
        truth.length(),
        discovered.duration,
        discovered.frame_rate.0,
        discovered.frame_rate.1,
        decoded.frames.len(),
        decoded.end_secs(),
        playback.duration,
        playback.current_time,
        playback.ended,
        playback.error,
    );
    if !decoded.problems.is_empty() {
        problems.push(format!("GStreamer reported problems: {}", decoded.problems));
    }
    if decoded.frames.len() != truth.frames() {
        problems.push(format!("GStreamer decoded {} frames, the file holds {}", decoded.frames.len(), truth.frames()));
    }
    let misplaced: Vec<(usize, f64, f64)> = decoded
        .frames
        .iter()
        .zip(&truth.times)
        .enumerate()
        .filter(|(_, (frame, time))| (frame.pts - **time).abs() > TIME_TOLERANCE)
        .map(|(n, (frame, time))| (n, frame.pts, *time))
        .collect();
    if !misplaced.is_empty() {
        problems.push(format!(
            "GStreamer shows {} frames at another time (n, GStreamer, index): {misplaced:?}",
            misplaced.len()
        ));
    }
    if (discovered.duration - truth.length()).abs() > tolerance {
        problems.push(format!(
            "GStreamer's duration {:.3} s, true length {:.3} s",
            discovered.duration,
            truth.length()
        ));
    }
    // An MKV states its rate (the track's DefaultDuration), which mediainfo, OpenCV's frame
    // count and seeks by time trust; an MP4 states none (GStreamer guesses one from the
    // sample durations, which only GStreamer has to answer for).
    let states_rate = video.extension().is_some_and(|ext| ext == "mkv");
    if let Some(fps) = discovered.fps().filter(|_| states_rate) {
        // What those players do with a stated rate: frames = length x rate.
        let implied = discovered.duration * fps;
        if (implied - truth.frames() as f64).abs() >= 0.5 {
            problems.push(format!(
                "GStreamer reads a rate of {fps:.3} fps: {implied:.2} frames in {:.3} s, the file holds {}",
                discovered.duration,
                truth.frames()
            ));
        }
    }
    problems.extend(chromium_disagreements(&playback, truth, tolerance));
    (problems, summary)
}

fn chromium_disagreements(playback: &Playback, truth: &Truth, tolerance: f64) -> Vec<String> {
    let mut problems = Vec::new();
    if playback.error.is_some() || !playback.ended {
        problems.push(format!("Chromium did not play to the end: {playback:?}"));
    }
    // NaN (no metadata loaded) fails too.
    let off = (playback.duration - truth.length()).abs();
    if off.is_nan() || off > tolerance {
        problems.push(format!("Chromium's duration {:.3} s, true length {:.3} s", playback.duration, truth.length()));
    }
    if playback.current_time.is_nan() || playback.current_time < truth.length() - tolerance {
        problems.push(format!("Chromium stopped at {:.3} s of {:.3} s", playback.current_time, truth.length()));
    }
    problems
}

/// Asserts GStreamer and Chromium agree with the file's index and length (within `tolerance`).
fn assert_players_agree(video: &Path, truth: &Truth, tolerance: f64) {
    let (problems, summary) = disagreements(video, truth, tolerance);
    eprintln!("{summary}");
    assert!(problems.is_empty(), "{summary}\n- {}", problems.join("\n- "));
}

/// Records `FRAMES` frames from the 66 ms camera with `env`, cleanly (the camera exits, the
/// recorder finishes its files); returns the storage folder and the dora output.
fn record(test: &str, env: &[(&str, &str)]) -> (PathBuf, String) {
    let storage = temp_dir(test);
    let storage_env = storage.display().to_string();
    let frames = FRAMES.to_string();
    let mut all = vec![("STORAGE", storage_env.as_str()), ("MAX_FRAMES", frames.as_str())];
    all.extend_from_slice(env);
    let output = dora_run(FLOW, 60, &all);
    (storage, text(&output))
}

/// The one video of a clean recording, and its truth: as many frames as ffprobe finds, which
/// must be every row of its index.
fn only_video(storage: &Path, log: &str) -> (PathBuf, Truth) {
    let videos = videos_in(storage);
    assert_eq!(videos.len(), 1, "{videos:?}\n{log}");
    let frames = probe(&videos[0]).frames as usize;
    let (_, rows) = read_csv(&videos[0].with_extension("frames.csv"));
    assert_eq!(rows.len(), frames, "{}: index rows and ffprobe's frames", videos[0].display());
    let truth = Truth::of(&videos[0], frames);
    (videos[0].clone(), truth)
}

#[test]
fn a_cleanly_stopped_mp4_shows_its_length_and_every_frame_in_gstreamer_and_chromium() {
    let _serial = serial();
    let (storage, log) = record("players-mp4", &[]);
    let (video, truth) = only_video(&storage, &log);
    let real_rate = (truth.frames() - 1) as f64 / truth.times.last().unwrap();
    assert!(real_rate > FPS + 0.05, "the camera runs faster than FPS: {real_rate:.3} fps");
    assert_players_agree(&video, &truth, ONE_FRAME);
}

#[test]
fn an_mkv_shows_its_length_and_every_frame_and_claims_no_rate_its_frames_do_not_have() {
    let _serial = serial();
    let (storage, log) = record("players-mkv", &[("FORMAT", "mkv")]);
    let (video, truth) = only_video(&storage, &log);
    assert_players_agree(&video, &truth, ONE_FRAME);
}

#[test]
fn an_mp4_whose_recorder_was_killed_shows_its_length_within_a_fragment_in_gstreamer_and_chromium() {
    let _serial = serial();
    let storage = temp_dir("players-killed");
    // The dataflow's usual 640x480: a file big enough that Chromium reads its start, not all of it,
    // before it states a length.
    let storage_env = format!("STORAGE={}", storage.display());
    let args =
        ["run", FLOW, "--stop-after", "120s", "--env", &storage_env, "--env", "WIDTH=640", "--env", "HEIGHT=480"];
    let run = Background::start(&args);
    let deadline = Instant::now() + Duration::from_secs(300);
    while videos_in(&storage).is_empty() {
        assert!(Instant::now() < deadline, "no file within 300 s");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(5300));
    let pids = recorder_pids();
    assert!(!pids.is_empty(), "the recorder runs");
    pids.into_iter().for_each(|pid| signal(pid, "KILL"));
    let (_, log) = run.wait(Duration::from_secs(2));
    let videos = videos_in(&storage);
    assert_eq!(videos.len(), 1, "{videos:?}\n{log}");
    let frames = probe(&videos[0]).frames as usize;
    assert!(frames >= 45, "a kill after 5 s keeps all but the last second: {frames} frames");
    assert_players_agree(&videos[0], &Truth::of(&videos[0], frames), ONE_FRAGMENT);
}

#[test]
fn segments_are_at_most_segment_seconds_long_in_every_player_and_hold_every_frame_once() {
    let _serial = serial();
    let (storage, log) = record("players-segments", &[("SEGMENT_SECONDS", "2")]);
    let videos = videos_in(&storage);
    // 150 frames 66 ms apart span 9.9 s: at least five segments of at most 2 s (30 frames,
    // 1.98 s, where a 31st frame would have ended at 2.05 s).
    assert!(videos.len() >= 5, "{videos:?}\n{log}");
    let mut frame_indices = Vec::new();
    let mut first_times_ns = Vec::new();
    for video in &videos {
        let (header, rows) = read_csv(&video.with_extension("frames.csv"));
        frame_indices.extend(csv_column(&header, &rows, "frame_index").iter().map(|i| i.parse::<u64>().unwrap()));
        first_times_ns.push(csv_column(&header, &rows, "time_ns")[0].parse::<u64>().unwrap());
        let truth = Truth::of(video, rows.len());
        assert_eq!(probe(video).frames as usize, truth.frames(), "{}: ffprobe and the index", video.display());
        assert!(truth.length() <= 2.0 + TIME_TOLERANCE, "{}: {:.4} s", video.display(), truth.length());
        let discovered = gstreamer::discover(video);
        assert!(discovered.duration <= 2.0 + TIME_TOLERANCE, "{}: {discovered:?}", video.display());
        assert_players_agree(video, &truth, ONE_FRAME);
    }
    // The rule: a frame joins a segment only if it ends by the limit. So each cut came at the
    // first frame that would have ended past 2 s.
    for (n, pair) in first_times_ns.windows(2).enumerate() {
        let next_would_end = (pair[1] - pair[0]) as f64 / 1e9 + ONE_FRAME;
        assert!(
            next_would_end > 2.0,
            "segment {n} was cut early: its next frame would have ended at {next_would_end:.4} s"
        );
    }
    // Every frame once, in order, across the cuts. A machine too busy for the encoder makes the
    // recorder drop frames from its queue (counted, reported in the manifest): those, and only
    // those, may be missing.
    let manifests = files_ending(&storage, ".session.json");
    assert_eq!(manifests.len(), 1, "one session");
    let dropped = read_json(&manifests[0])["cameras"]["image"]["dropped"].as_u64().unwrap();
    assert!(frame_indices.windows(2).all(|w| w[0] < w[1]), "no frame repeated, in order: {frame_indices:?}");
    let span = frame_indices.last().unwrap() - frame_indices[0] + 1;
    let missing = span - frame_indices.len() as u64;
    assert_eq!(missing, dropped, "frames missing across the cuts are the ones dropped: {frame_indices:?}");
}
