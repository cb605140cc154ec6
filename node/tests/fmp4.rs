//! `fmp4` on real files from the ffmpeg CLI, fragmented the way the recorder writes them:
//! hybrid finalization (frames, timestamps, duration, tags, every crash point), trimming after
//! a cut or a block of zeros, and the length a killed file states in its header, all checked
//! with ffprobe/ffmpeg (and GStreamer's `gst-discoverer-1.0` for the length).

#![allow(clippy::unwrap_used)]

use std::{
    fs::{File, OpenOptions},
    io::{Seek, SeekFrom, Write},
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use dora_video_recorder::fmp4::{
    CommitStep, FRAGMENTED_MOVFLAGS, Fmp4Error, LiveDurations, finalize_hybrid, finalize_hybrid_with,
    trim_to_last_fragment,
};

/// The recorder's muxer options (see `encode::container`).
const FRAGMENTED: [&str; 6] = ["-movflags", FRAGMENTED_MOVFLAGS, "-frag_duration", "400000", "-flush_packets", "1"];

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

/// A copy of the clean file `original` as a kill leaves it: no `mfra`, and, when `partial` is
/// given, that many bytes of a fragment the muxer had begun to write.
fn killed_copy(original: &Path, name: &str, partial: Option<usize>) -> PathBuf {
    let boxes = top_level(original);
    let (_, mfra, _) = boxes.iter().find(|(kind, _, _)| kind == "mfra").unwrap();
    let bytes = std::fs::read(original).unwrap();
    let mut killed = bytes[..*mfra as usize].to_vec();
    if let Some(partial) = partial {
        // The start of another fragment: the last moof and a part of its mdat again.
        let (_, moof, _) = boxes.iter().rev().find(|(kind, _, _)| kind == "moof").unwrap();
        killed.extend_from_slice(&bytes[*moof as usize..*moof as usize + partial]);
    }
    let path = original.with_file_name(name);
    std::fs::write(&path, killed).unwrap();
    path
}

/// Overwrites `len` bytes of `path` at `offset` with zeros, in place.
fn zero_block(path: &Path, offset: u64, len: usize) {
    let mut file = OpenOptions::new().write(true).open(path).unwrap();
    file.seek(SeekFrom::Start(offset)).unwrap();
    file.write_all(&vec![0; len]).unwrap();
}

#[test]
fn a_block_of_zeros_in_the_last_fragment_is_trimmed_away() {
    let dir = e2e::temp_dir("fmp4-zeros");
    for (clip, name) in [(Clip::H264, "h264"), (Clip::H265, "h265")] {
        let original = fragmented(&dir, clip);
        let killed = killed_copy(&original, &format!("{name}-killed.mp4"), None);
        let boxes = top_level(&killed);
        let (_, last_moof, _) = boxes.iter().rev().find(|(kind, _, _)| kind == "moof").unwrap().clone();
        let (_, mdat, mdat_size) = boxes.last().unwrap().clone();
        let intact_frames = packets(&killed).iter().filter(|(pos, size)| pos + size <= last_moof).count() as u64;
        let payload = (mdat + 8, mdat_size - 8);
        let block = 512.min(payload.1 / 3);
        for at in [payload.0, payload.0 + (payload.1 - block) / 2, payload.0 + payload.1 - block - 1] {
            let path = dir.join(format!("{name}-zeros-{at}.mp4"));
            std::fs::copy(&killed, &path).unwrap();
            zero_block(&path, at, block as usize);
            assert_eq!(top_level(&path), boxes, "{name}: the zeros leave every box size intact");
            assert_ne!(decode_errors(&path), "", "{name}: zeros at {at} are decode errors before the repair");

            let outcome = trim_to_last_fragment(&path).unwrap();

            assert_eq!((outcome.kept_bytes, outcome.damaged_fragments), (last_moof, 1), "{name}: zeros at {at}");
            assert_eq!(decode_errors(&path), "", "{name}: zeros at {at}");
            assert_eq!(e2e::probe(&path).frames, intact_frames, "{name}: zeros at {at}");
        }
        let intact = trim_to_last_fragment(&killed).unwrap();
        assert_eq!((intact.removed_bytes, intact.damaged_fragments), (0, 0), "{name}: an intact file is kept");
    }
}

/// `format=duration` of `path` read through a pipe: FFmpeg cannot seek, so it knows only the
/// header and the fragments it read, as Chromium when a server does not take byte ranges.
fn streamed_duration(path: &Path) -> f64 {
    let output = Command::new("ffprobe")
        .args(["-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", "-i", "pipe:0"])
        .stdin(Stdio::from(File::open(path).unwrap()))
        .output()
        .unwrap();
    assert!(output.status.success(), "ffprobe: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).trim().parse().unwrap()
}

/// The duration GStreamer's `gst-discoverer-1.0` reports, in seconds.
fn gstreamer_duration(path: &Path) -> f64 {
    let output = Command::new("gst-discoverer-1.0")
        .arg(path)
        .output()
        .expect("gst-discoverer-1.0 runs (scripts/setup.sh installs gstreamer1.0-tools)");
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let line = text.lines().find_map(|line| line.trim().strip_prefix("Duration: ")).unwrap_or_else(|| panic!("{text}"));
    let parts: Vec<f64> = line.split(':').map(|part| part.parse().unwrap()).collect();
    parts.iter().fold(0.0, |total, part| total * 60.0 + part)
}

#[test]
fn a_killed_file_states_the_length_of_its_synced_fragments() {
    let dir = e2e::temp_dir("fmp4-length");
    let original = fragmented(&dir, Clip::H264);
    let path = killed_copy(&original, "killed.mp4", Some(700));
    let complete_end = top_level(&original).iter().find(|(kind, _, _)| kind == "mfra").unwrap().1;
    let frames = packets(&original).iter().filter(|(pos, size)| pos + size <= complete_end).count();
    let expected = frames as f64 / 15.0;
    let (streamed, gstreamer) = (streamed_duration(&path), gstreamer_duration(&path));
    assert!(streamed < expected / 2.0 && gstreamer < expected / 2.0, "before: {streamed} s, {gstreamer} s");

    let file = OpenOptions::new().read(true).write(true).open(&path).unwrap();
    let len = file.metadata().unwrap().len();
    let stated = LiveDurations::new().update(&file, len).unwrap().unwrap();

    assert!((stated - expected).abs() < 1e-3, "stated {stated} s for {frames} frames");
    assert!((streamed_duration(&path) - expected).abs() < 1e-3, "streamed: {}", streamed_duration(&path));
    assert!((gstreamer_duration(&path) - expected).abs() < 2e-3, "GStreamer: {}", gstreamer_duration(&path));
    assert_eq!(e2e::probe(&path).frames, frames as u64, "the frames did not change");
    // Startup repair still trims and indexes such a file.
    let trim = trim_to_last_fragment(&path).unwrap();
    assert_eq!((trim.removed_bytes, trim.damaged_fragments), (700, 0));
    assert_eq!(finalize_hybrid(&path).unwrap().samples, frames as u64);
    assert_eq!(decode_errors(&path), "");
    assert!((e2e::probe(&path).duration - expected).abs() < 1e-3);
}
