//! End-to-end: the recorder shares STORAGE with other programs' files and never touches them.
//!
//! STORAGE is pre-filled with two-day-old files as other programs leave them (a regular MP4, a
//! fragmented MP4 another recorder's crash cut short, an empty `.mp4`, an MP4 holding only a
//! header, an MKV, a text file, and a regular MP4 named exactly like one of the recorder's
//! recordings), then `sessions.yml` records three short sessions under the real `dora` CLI with a
//! `MAX_TOTAL_BYTES` that forces retention to delete. Afterwards every foreign file is
//! byte-identical with its mtime unchanged, the recorder's newest session is kept, its older ones
//! are gone, and the log says once how many foreign files STORAGE holds.

#![allow(clippy::unwrap_used)]

use std::{
    collections::hash_map::DefaultHasher,
    hash::{Hash, Hasher},
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, SystemTime},
};

use e2e::{dora_run, file_name, files_in, format_tag, probe, serial, temp_dir, text, videos_in};

/// How old the foreign files are.
const TWO_DAYS: Duration = Duration::from_secs(2 * 24 * 3600);
/// As `logflows.rs` measured for sessions.yml at 320x240 with 1.5 s sessions: each recording is
/// about 30 kB, so two exceed this and one does not: `b` finishing deletes `a`, `c` finishing
/// deletes `b`. The foreign files (about 160 kB) would exceed it alone, were they counted.
const MAX_TOTAL_BYTES: u64 = 45_000;

/// Runs the ffmpeg CLI as another program would: `secs` of a 320x240 test pattern into `out`.
fn ffmpeg(secs: &str, args: &[&str], out: &Path) {
    let status = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=15", "-t", secs])
        .args(args)
        .arg(out)
        .status()
        .expect("ffmpeg runs (scripts/setup.sh installs it)");
    assert!(status.success(), "ffmpeg {args:?} {}", out.display());
}

/// Fills `dir` with other programs' files, two days old; returns their paths.
fn foreign_files(dir: &Path) -> Vec<PathBuf> {
    ffmpeg("4", &["-c:v", "libx264"], &dir.join("holiday.mp4"));
    // Named like the recorder's own files (`{session}_{YYYYMMDDTHHMMSS}.mp4`), session `a`.
    ffmpeg("2", &["-c:v", "libx264"], &dir.join("a_20240101T000000.mp4"));
    let fragmented = dir.join("other-recorder.mp4");
    let movflags = ["-movflags", "+frag_keyframe+empty_moov+default_base_moof", "-frag_duration", "400000"];
    ffmpeg("4", &[["-c:v", "libx264"].as_slice(), &movflags].concat(), &fragmented);
    let whole = std::fs::read(&fragmented).unwrap();
    // Cut inside a fragment, as a crash leaves it.
    std::fs::write(&fragmented, &whole[..whole.len() * 2 / 3]).unwrap();
    let first_fragment = whole.windows(4).position(|w| w == b"moof").unwrap() - 4;
    std::fs::write(dir.join("header-only.mp4"), &whole[..first_fragment]).unwrap();
    std::fs::write(dir.join("empty.mp4"), b"").unwrap();
    ffmpeg("2", &["-c:v", "libx264"], &dir.join("clip.mkv"));
    std::fs::write(dir.join("notes.txt"), b"lens calibration, 2 days ago\n").unwrap();
    let files = files_in(dir);
    let two_days_ago = SystemTime::now() - TWO_DAYS;
    for file in &files {
        std::fs::File::options().write(true).open(file).unwrap().set_modified(two_days_ago).unwrap();
    }
    files
}

/// What a file is: its bytes' hash, length and mtime.
fn fingerprint(path: &Path) -> (u64, u64, SystemTime) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{} is still there: {e}", path.display()));
    let mut hasher = DefaultHasher::new();
    bytes.hash(&mut hasher);
    let metadata = std::fs::metadata(path).unwrap();
    (hasher.finish(), metadata.len(), metadata.modified().unwrap())
}

#[test]
fn foreign_files_in_storage_stay_byte_identical_while_retention_deletes_the_recorders_own() {
    let _serial = serial();
    let dir = temp_dir("foreign");
    let foreign = foreign_files(&dir);
    assert_eq!(foreign.len(), 7, "{foreign:?}");
    let before: Vec<_> = foreign.iter().map(|path| fingerprint(path)).collect();

    let limit = MAX_TOTAL_BYTES.to_string();
    let storage = dir.display().to_string();
    let env = [
        ("STORAGE", storage.as_str()),
        ("SCHEDULE", "a:0.5-2,b:3-4.5,c:5.5-7"),
        ("WIDTH", "320"),
        ("HEIGHT", "240"),
        ("MAX_TOTAL_BYTES", limit.as_str()),
    ];
    let output = dora_run("dataflows/sessions.yml", 10, &env);
    let log = text(&output);

    let mut problems = Vec::new();
    for (path, before) in foreign.iter().zip(&before) {
        if !path.exists() {
            problems.push(format!("{} was deleted", file_name(path)));
        } else if fingerprint(path) != *before {
            problems.push(format!("{} changed: {before:?} -> {:?}", file_name(path), fingerprint(path)));
        }
    }
    let own: Vec<PathBuf> = videos_in(&dir).into_iter().filter(|video| !foreign.contains(video)).collect();
    let names: Vec<String> = files_in(&dir).iter().map(|f| file_name(f)).collect();
    match own.as_slice() {
        [video] if file_name(video).starts_with("c_") => {
            if probe(video).frames < 15 {
                problems.push(format!("c's video holds {} frames", probe(video).frames));
            }
            if format_tag(video, "recorder").as_deref() != Some("dora-video-recorder") {
                problems.push(format!("c's video carries no owner tag: {:?}", format_tag(video, "recorder")));
            }
        }
        other => problems.push(format!("expected only session c's video of the recorder's own, found {other:?}")),
    }
    for session in ["a", "b"] {
        let deleted = format!("{}/{session}_2", dir.display());
        if !log.lines().any(|line| line.contains("deleted the oldest recording") && line.contains(&deleted)) {
            problems.push(format!("no `deleted the oldest recording` line for session {session}"));
        }
    }
    if !names.iter().any(|name| name.starts_with("c_") && name.ends_with(".session.json")) {
        problems.push(format!("c's manifest is gone: {names:?}"));
    }
    for path in &foreign {
        if log.lines().any(|line| line.contains("deleted the oldest recording") && line.contains(&file_name(path))) {
            problems.push(format!("the log says {} was deleted", file_name(path)));
        }
    }
    let foreign_lines: Vec<&str> = log.lines().filter(|line| line.contains("foreign files")).collect();
    match foreign_lines.as_slice() {
        [line] if line.contains("STORAGE holds 7 foreign files") && line.contains("left alone") => {}
        other => problems.push(format!("expected one line saying STORAGE holds 7 foreign files, found {other:?}")),
    }
    assert!(problems.is_empty(), "{}\nfiles: {names:?}\n\n{log}", problems.join("\n"));
}
