//! `fmp4` on real files from the ffmpeg CLI, fragmented the way the recorder writes them:
//! hybrid finalization (frames, timestamps, duration, tags, every crash point) and trimming
//! after a cut, all checked with ffprobe/ffmpeg.

#![allow(clippy::unwrap_used)]

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use dora_video_recorder::fmp4::{CommitStep, Fmp4Error, finalize_hybrid, finalize_hybrid_with, trim_to_last_fragment};

/// The recorder's muxer options (see `encode::container`).
const FRAGMENTED: [&str; 6] =
    ["-movflags", "+frag_keyframe+empty_moov+default_base_moof", "-frag_duration", "400000", "-flush_packets", "1"];

/// Which test clip to encode.
#[derive(Clone, Copy)]
enum Clip {
    /// 10 s of 15 fps H.264 with a title tag.
    H264,
    /// 10 s of 30 fps H.264 with a 0.5 s jump after frame 100 (variable frame rate).
    Vfr,
    /// 10 s of 15 fps H.265.
    H265,
}

/// Encodes `clip` into a fragmented MP4 in `dir`.
fn fragmented(dir: &Path, clip: Clip) -> PathBuf {
    let (name, rate, codec, extra): (&str, u32, &[&str], &[&str]) = match clip {
        Clip::H264 => ("h264.mp4", 15, &["-c:v", "libx264"], &["-metadata", "title=x"]),
        Clip::Vfr => (
            "vfr.mp4",
            30,
            &["-c:v", "libx264"],
            &["-vf", "setpts='N/30/TB+if(gt(N,100),0.5/TB,0)'", "-fps_mode", "vfr"],
        ),
        Clip::H265 => ("h265.mp4", 15, &["-c:v", "libx265", "-x265-params", "bframes=0:log-level=error"], &[]),
    };
    let path = dir.join(name);
    let source = format!("testsrc=size=320x240:rate={rate}");
    let output = Command::new("ffmpeg")
        .args(["-y", "-v", "error", "-f", "lavfi", "-i", &source, "-t", "10"])
        .args(extra)
        .args(codec)
        .args(["-preset", "veryfast", "-bf", "0", "-g", "30"])
        .args(FRAGMENTED)
        .arg(&path)
        .output()
        .expect("ffmpeg runs (scripts/setup.sh installs it)");
    assert!(output.status.success(), "ffmpeg: {}", String::from_utf8_lossy(&output.stderr));
    path
}

/// What `ffmpeg -v error` prints while decoding every frame of `path` (empty when clean).
fn decode_errors(path: &Path) -> String {
    let output =
        Command::new("ffmpeg").args(["-v", "error", "-i"]).arg(path).args(["-f", "null", "-"]).output().unwrap();
    let errors = String::from_utf8_lossy(&output.stderr).into_owned();
    if output.status.success() { errors } else { format!("exit {}: {errors}", output.status) }
}

/// ffprobe output for `path` with `args`, one line per entry.
fn ffprobe_lines(path: &Path, args: &[&str]) -> Vec<String> {
    let output = Command::new("ffprobe").args(["-v", "error"]).args(args).arg(path).output().unwrap();
    assert!(output.status.success(), "ffprobe: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).lines().map(str::to_owned).collect()
}

/// Presentation time of every decoded frame.
fn frame_times(path: &Path) -> Vec<String> {
    let lines = ffprobe_lines(path, &["-select_streams", "v:0", "-show_entries", "frame=pts_time", "-of", "csv=p=0"]);
    // Frames with side data (x264's SEI) print a trailing comma and an empty line.
    lines.iter().filter_map(|line| line.split(',').next()).filter(|time| !time.is_empty()).map(str::to_owned).collect()
}

/// The `title` tag of the file.
fn title(path: &Path) -> Vec<String> {
    ffprobe_lines(path, &["-show_entries", "format_tags=title", "-of", "default=nw=1:nk=1"])
}

/// Byte range of every packet: (position, size).
fn packets(path: &Path) -> Vec<(u64, u64)> {
    ffprobe_lines(path, &["-select_streams", "v:0", "-show_entries", "packet=pos,size", "-of", "csv=p=0"])
        .iter()
        .map(|line| {
            let (size, pos) = line.split_once(',').unwrap();
            (pos.parse().unwrap(), size.parse().unwrap())
        })
        .collect()
}

/// Top-level boxes as (type, offset, size), read independently of the module under test.
fn top_level(path: &Path) -> Vec<(String, u64, u64)> {
    let bytes = std::fs::read(path).unwrap();
    let mut boxes = Vec::new();
    let mut offset = 0usize;
    while offset + 8 <= bytes.len() {
        let mut size = u64::from(u32::from_be_bytes(bytes[offset..offset + 4].try_into().unwrap()));
        if size == 1 {
            size = u64::from_be_bytes(bytes[offset + 8..offset + 16].try_into().unwrap());
        } else if size == 0 {
            size = (bytes.len() - offset) as u64;
        }
        let kind = String::from_utf8_lossy(&bytes[offset + 4..offset + 8]).into_owned();
        boxes.push((kind, offset as u64, size));
        offset += size as usize;
    }
    assert_eq!(offset, bytes.len(), "top-level boxes cover the file: {boxes:?}");
    boxes
}

/// Top-level box types joined by spaces.
fn layout(path: &Path) -> String {
    top_level(path).iter().map(|(kind, _, _)| kind.as_str()).collect::<Vec<_>>().join(" ")
}

/// Finalizes a copy of `clip`, checks it against the fragmented original, and returns it.
fn check_finalized(test: &str, clip: Clip, codec: &str) -> PathBuf {
    let dir = e2e::temp_dir(test);
    let original = fragmented(&dir, clip);
    let path = dir.join("hybrid.mp4");
    std::fs::copy(&original, &path).unwrap();
    let before = e2e::probe(&original);
    let moofs = top_level(&original).iter().filter(|(kind, _, _)| kind == "moof").count() as u64;

    let outcome = finalize_hybrid(&path).unwrap();

    let after = e2e::probe(&path);
    assert_eq!((after.codec.as_str(), after.width, after.height), (codec, 320, 240));
    assert_eq!(after.frames, before.frames, "every frame is indexed");
    assert_eq!(outcome.samples, before.frames);
    assert_eq!(outcome.fragments, moofs);
    assert!((after.duration - before.duration).abs() <= 0.001, "{} vs {}", after.duration, before.duration);
    assert!((after.duration - 10.0).abs() < 0.05, "duration {}", after.duration);
    assert!((outcome.duration_secs - after.duration).abs() <= 0.001, "{outcome:?} vs {}", after.duration);
    assert_eq!(decode_errors(&path), "");
    assert_eq!(frame_times(&path), frame_times(&original), "every frame keeps its timestamp");
    let layout = layout(&path);
    let expected_fragments = "free mdat ".repeat(moofs as usize);
    assert_eq!(layout, format!("ftyp free {expected_fragments}free moov"));
    assert_eq!(title(&path), title(&original), "tags survive");
    assert!(matches!(finalize_hybrid(&path), Err(Fmp4Error::AlreadyFinal)));
    path
}

#[test]
fn h264_becomes_a_regular_mp4_with_the_same_frames_times_and_tags() {
    let path = check_finalized("fmp4-h264", Clip::H264, "h264");
    assert_eq!(title(&path), ["x"]);
}

#[test]
fn variable_frame_rate_keeps_every_timestamp() {
    let path = check_finalized("fmp4-vfr", Clip::Vfr, "h264");
    let times = frame_times(&path);
    let jump = times.windows(2).any(|w| w[1].parse::<f64>().unwrap() - w[0].parse::<f64>().unwrap() > 0.5);
    assert!(jump, "the clip has its 0.5 s jump");
}

#[test]
fn h265_becomes_a_regular_mp4() {
    check_finalized("fmp4-h265", Clip::H265, "hevc");
}

#[test]
fn a_crash_between_any_two_commit_steps_leaves_a_playable_file() {
    let dir = e2e::temp_dir("fmp4-steps");
    let original = fragmented(&dir, Clip::H264);
    let frames = e2e::probe(&original).frames;
    let times = frame_times(&original);
    let path = dir.join("hybrid.mp4");
    std::fs::copy(&original, &path).unwrap();
    let mut snapshots = Vec::new();
    finalize_hybrid_with(&path, &mut |step| {
        let copy = dir.join(format!("after-{step:?}.mp4"));
        std::fs::copy(&path, &copy).unwrap();
        snapshots.push((step, copy));
    })
    .unwrap();
    let steps: Vec<CommitStep> = snapshots.iter().map(|(step, _)| *step).collect();
    assert_eq!(
        steps,
        [
            CommitStep::MoovAppended,
            CommitStep::MvexExposed,
            CommitStep::InitialMoovFreed,
            CommitStep::FragmentsFreed,
            CommitStep::HeaderMerged
        ]
    );
    let finalized = std::fs::read(&path).unwrap();
    for (step, copy) in &snapshots {
        assert_eq!(decode_errors(copy), "", "after {step:?}: {}", layout(copy));
        assert_eq!(e2e::probe(copy).frames, frames, "after {step:?}");
        assert_eq!(frame_times(copy), times, "after {step:?}");
        // Running again completes what the crash interrupted.
        match finalize_hybrid(copy) {
            Ok(outcome) => assert_eq!(outcome.samples, frames),
            Err(error) => assert!(matches!(error, Fmp4Error::AlreadyFinal), "after {step:?}: {error}"),
        }
        assert!(std::fs::read(copy).unwrap() == finalized, "resumed after {step:?}");
    }
}

#[test]
fn trimming_a_cut_file_keeps_its_whole_fragments() {
    let dir = e2e::temp_dir("fmp4-trim");
    let original = fragmented(&dir, Clip::H264);
    let bytes = std::fs::read(&original).unwrap();
    let packets = packets(&original);
    let boxes = top_level(&original);
    let moov_end = boxes.iter().find(|(kind, _, _)| kind == "moov").map(|(_, offset, size)| offset + size).unwrap();
    let fragment_ends: Vec<u64> =
        boxes.iter().filter(|(kind, _, _)| kind == "mdat").map(|(_, offset, size)| offset + size).collect();
    let mut played = 0;
    for i in 1..=20u64 {
        let cut = bytes.len() as u64 * i / 21;
        let path = dir.join(format!("cut-{i}.mp4"));
        std::fs::write(&path, &bytes[..cut as usize]).unwrap();
        let outcome = match trim_to_last_fragment(&path) {
            Ok(outcome) => outcome,
            Err(error) => {
                assert_eq!(error.kind(), std::io::ErrorKind::InvalidData);
                assert!(cut < moov_end, "cut at {cut} keeps a moov");
                continue;
            }
        };
        let kept_fragments = fragment_ends.iter().filter(|&&end| end <= cut).count() as u64;
        let expected_end = fragment_ends.iter().rev().find(|&&end| end <= cut).copied().unwrap_or(moov_end);
        assert_eq!(outcome.fragments, kept_fragments, "cut at {cut}");
        assert_eq!(outcome.kept_bytes, expected_end, "cut at {cut}");
        assert_eq!(outcome.removed_bytes, cut - expected_end);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), expected_end);
        if kept_fragments == 0 {
            continue;
        }
        let kept_samples = packets.iter().filter(|(pos, size)| pos + size <= outcome.kept_bytes).count() as u64;
        assert_eq!(decode_errors(&path), "", "cut at {cut}");
        assert_eq!(e2e::probe(&path).frames, kept_samples, "cut at {cut}");
        // A trimmed file (no mfra) can be finalized too.
        assert_eq!(finalize_hybrid(&path).unwrap().samples, kept_samples);
        assert_eq!(decode_errors(&path), "", "finalized after a cut at {cut}");
        assert_eq!(e2e::probe(&path).frames, kept_samples);
        played += 1;
    }
    assert!(played >= 15, "only {played} cuts kept a fragment");
}
