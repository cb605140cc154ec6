//! Power cuts, simulated for real: STORAGE on a FUSE file system that keeps only what a sync
//! covered ([`e2e::crashfs`]), the real recorder under the real dora CLI killed at a random
//! instant, and the disk rebuilt as the power cut leaves it. The video must decode without an
//! error, the index must hold a row for every frame the video still holds, and the loss must stay
//! within about a second.

#![allow(clippy::unwrap_used)]

use std::{
    ffi::OsString,
    fs::{File, OpenOptions},
    io::Write,
};

use e2e::{
    CrashFs,
    crashfs::{Entry, OpKind},
    powercut::{PowerCutTrial, summarize},
    serial, temp_dir,
};

fn file(bytes: &[u8]) -> Entry {
    Entry::File(bytes.to_vec())
}

#[test]
fn the_crash_file_system_keeps_only_what_a_sync_covered() {
    let dir = temp_dir("crashfs-model");
    let mount_point = dir.join("mnt");
    std::fs::create_dir_all(&mount_point).unwrap();
    let fs = CrashFs::mount(&mount_point).unwrap();
    let synced_folder = mount_point.join("kept");
    std::fs::create_dir(&synced_folder).unwrap();
    std::fs::create_dir(mount_point.join("lost")).unwrap();
    File::open(&mount_point).unwrap().sync_all().unwrap();
    std::fs::write(mount_point.join("lost/never-synced"), b"gone").unwrap();
    // Synced data, then more that no sync covers.
    let mut video = File::create(synced_folder.join("video")).unwrap();
    video.write_all(b"fragment 1;").unwrap();
    video.sync_data().unwrap();
    video.write_all(b"fragment 2;").unwrap();
    // An atomic replace: the new name is durable once the folder is synced.
    std::fs::write(synced_folder.join("manifest"), b"old").unwrap();
    File::open(synced_folder.join("manifest")).unwrap().sync_all().unwrap();
    File::open(&synced_folder).unwrap().sync_all().unwrap();
    std::fs::write(synced_folder.join(".manifest.tmp"), b"new").unwrap();
    File::open(synced_folder.join(".manifest.tmp")).unwrap().sync_all().unwrap();
    std::fs::rename(synced_folder.join(".manifest.tmp"), synced_folder.join("manifest")).unwrap();
    File::open(&synced_folder).unwrap().sync_all().unwrap();
    // A file whose data was synced but whose name never was.
    let mut unnamed = File::create(synced_folder.join("unnamed")).unwrap();
    unnamed.write_all(b"data").unwrap();
    unnamed.sync_all().unwrap();
    // A truncate after the last sync is lost too.
    OpenOptions::new().write(true).open(synced_folder.join("manifest")).unwrap().set_len(1).unwrap();

    let image = fs.power_cut();
    assert!(std::fs::write(mount_point.join("late"), b"x").is_err(), "nothing changes after the power cut");
    let kept = match &image.root[&OsString::from("kept")] {
        Entry::Folder(entries) => entries.clone(),
        Entry::File(_) => panic!("kept is a folder"),
    };
    assert_eq!(
        kept.into_iter().collect::<Vec<_>>(),
        [(OsString::from("manifest"), file(b"new")), (OsString::from("video"), file(b"fragment 1;"))],
        "the synced bytes under synced names, nothing else"
    );
    assert_eq!(image.root[&OsString::from("lost")], Entry::Folder(Default::default()), "its entry was never synced");
    let journal = fs.journal();
    let kinds = |kind: OpKind| journal.iter().filter(|op| op.kind == kind).count();
    assert_eq!((kinds(OpKind::Fdatasync), kinds(OpKind::Rename), kinds(OpKind::Truncate)), (1, 1, 1), "{journal:?}");
    let out = dir.join("image");
    image.write_to(&out).unwrap();
    assert_eq!(std::fs::read(out.join("kept/video")).unwrap(), b"fragment 1;");
    drop((video, unnamed));
    drop(fs);
}

/// How many power cuts the test makes; `POWERCUT_TRIALS` asks for more (scripts/powercut.sh).
fn trials() -> usize {
    std::env::var("POWERCUT_TRIALS").ok().and_then(|n| n.parse().ok()).unwrap_or(5)
}

#[test]
fn a_power_cut_at_a_random_instant_keeps_a_decodable_video_and_an_index_row_for_every_frame() {
    let _serial = serial();
    // Every other trial runs a detector too, recording without its trigger: its log is synced
    // with the video as the index is.
    let trial = |round: usize| match round % 2 {
        0 => PowerCutTrial::new("dataflows/record.yml", round),
        _ => PowerCutTrial::new("dataflows/detect.yml", round)
            .with_env(&[("TRIGGER", "off"), ("PRE_ROLL", "0")])
            .with_detections(),
    };
    let outcomes: Vec<_> = (0..trials()).map(|round| trial(round).run()).collect();
    eprintln!("{}", summarize(&outcomes));
}
