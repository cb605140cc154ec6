//! Which files in STORAGE are the recorder's own. Startup repair and retention change or delete
//! only those; every other file is foreign and never modified, moved or deleted, whatever its
//! name (another program may well write `run-7_20240101T000000.mp4`).
//!
//! A video (`*.mp4`, `*.mkv`, `*.avi` directly in STORAGE) is the recorder's own when it can show
//! one [`Evidence`], checked in this order:
//!
//! 1. [`Evidence::OwnerTag`]: its container header carries the tag `recorder` =
//!    [`OWNER_MARK`] (AVI, whose RIFF header keeps only a fixed set of fields: `comment` =
//!    [`OWNER_MARK`]). The muxer writes it with the header, before the first frame (see
//!    [`super::naming::file_tags`]), and it survives every later state of the file.
//! 2. [`Evidence::PreviousReleaseTags`]: an MP4 or MKV of the previous release, whose header
//!    carries `session_id`, `camera` and a numeric `session_offset`.
//! 3. [`Evidence::FrameIndex`]: its frame index `NAME.frames.csv` beside it starts with the
//!    recorder's header line (`frame,pts,time_ns`). The index is created right after the video's
//!    header is written, so this also covers an AVI of the previous release and a video whose own
//!    header a crash kept from reaching the disk.
//!
//! Its side files (`NAME.frames.csv`, `NAME.detections.jsonl`) belong to it. A session manifest
//! (`*.session.json`) is the recorder's own when it parses as a [`SessionManifest`] of
//! [`MANIFEST_VERSION`]: every one of its required fields, with their types.
//!
//! A file the recorder claimed and could not write a header into before it died (0 bytes, no
//! index beside it) shows nothing: it is left alone like a foreign file; it holds no data.

use std::{
    collections::HashSet,
    io::{self, BufRead, BufReader, Read},
    path::{Path, PathBuf},
};

use super::{
    claim::open_no_follow,
    tags::{Container, HeaderTags, read_header_tags},
};
use crate::{
    sidecars::detection_log::detections_path,
    sidecars::{
        index::{FIXED_COLUMNS, index_path},
        manifest::{MANIFEST_SUFFIX, MANIFEST_VERSION, SessionManifest},
    },
};

/// The value of the ownership tag: the recorder's name.
pub const OWNER_MARK: &str = "dora-video-recorder";
/// The container tag that carries [`OWNER_MARK`] in MP4 and Matroska.
pub const OWNER_TAG: &str = "recorder";
/// The tag that carries [`OWNER_MARK`] in AVI (RIFF `ICMT`); written to every container, so a
/// player shows who recorded the file.
pub const OWNER_COMMENT_TAG: &str = "comment";
/// Tags every MP4 and MKV of the previous release carries.
pub const PREVIOUS_RELEASE_TAGS: [&str; 3] = ["session_id", "camera", "session_offset"];
/// Extensions of the videos the recorder writes.
pub const VIDEO_EXTENSIONS: [&str; 3] = ["mp4", "mkv", "avi"];
/// Manifests are a few kB; a larger `*.session.json` is not one of ours and is not read.
const MAX_MANIFEST_BYTES: u64 = 16 * 1024 * 1024;

/// Why the recorder believes a video is its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Evidence {
    /// The container header carries `recorder=dora-video-recorder` (AVI: the comment).
    OwnerTag,
    /// The container header carries the tags the previous release wrote.
    PreviousReleaseTags,
    /// The frame index beside it starts with the recorder's header line.
    FrameIndex,
}

impl Evidence {
    /// A few words for the log.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OwnerTag => "owner tag",
            Self::PreviousReleaseTags => "previous release's tags",
            Self::FrameIndex => "frame index",
        }
    }
}

/// The side files of `video` that the recorder writes beside it: frame index, detections.
pub fn side_files(video: &Path) -> [PathBuf; 2] {
    [index_path(video), detections_path(video)]
}

/// Whether `name` ends in one of [`VIDEO_EXTENSIONS`].
pub fn is_video_name(name: &Path) -> bool {
    name.extension().is_some_and(|ext| VIDEO_EXTENSIONS.iter().any(|video| ext == *video))
}

/// Why the video at `path` is the recorder's own, or `None` when it is foreign (or no regular
/// file: symlinks are not followed).
///
/// # Errors
///
/// Reading the video fails for another reason than it being gone.
pub fn video_evidence(path: &Path) -> io::Result<Option<Evidence>> {
    let mut file = match open_no_follow(path) {
        Ok(file) => file,
        // Gone, or a symlink (which `O_NOFOLLOW` refuses): nothing of the recorder's is there.
        Err(error) if error.kind() == io::ErrorKind::NotFound || is_symlink(path) => return Ok(None),
        Err(error) => return Err(error),
    };
    if !file.metadata()?.is_file() {
        return Ok(None);
    }
    if let Some(evidence) = read_header_tags(&mut file)?.and_then(|header| header_evidence(path, &header)) {
        return Ok(Some(evidence));
    }
    Ok(has_own_index(path).then_some(Evidence::FrameIndex))
}

fn is_symlink(path: &Path) -> bool {
    path.symlink_metadata().is_ok_and(|m| m.file_type().is_symlink())
}

/// The evidence a container header gives, if its container is the one `path`'s extension names.
fn header_evidence(path: &Path, header: &HeaderTags) -> Option<Evidence> {
    let extension = path.extension()?.to_str()?;
    let (expected, mark_tag) = match extension {
        "mp4" => (Container::Mp4, OWNER_TAG),
        "mkv" => (Container::Matroska, OWNER_TAG),
        "avi" => (Container::Avi, OWNER_COMMENT_TAG),
        _ => return None,
    };
    if header.container != expected {
        return None;
    }
    if header.get(mark_tag) == Some(OWNER_MARK) {
        return Some(Evidence::OwnerTag);
    }
    let previous = header.container != Container::Avi
        && PREVIOUS_RELEASE_TAGS.iter().all(|tag| header.get(tag).is_some())
        && header.get("session_offset").is_some_and(|offset| offset.parse::<f64>().is_ok_and(f64::is_finite));
    previous.then_some(Evidence::PreviousReleaseTags)
}

/// Whether the frame index of `video` exists and starts with the recorder's header line:
/// `frame,pts,time_ns`, then a line end or the first metadata column.
fn has_own_index(video: &Path) -> bool {
    let Ok(file) = open_no_follow(&index_path(video)) else { return false };
    let mut line = Vec::new();
    let limit = 4096;
    if BufReader::new(file.take(limit)).read_until(b'\n', &mut line).is_err() {
        return false;
    }
    let header = FIXED_COLUMNS.join(",");
    line.strip_prefix(header.as_bytes()).is_some_and(|rest| rest.starts_with(b"\n") || rest.starts_with(b","))
}

/// The manifest at `path` if it is one of the recorder's own (see the module documentation).
pub fn own_manifest(path: &Path) -> Option<SessionManifest> {
    let file = open_no_follow(path).ok()?;
    let metadata = file.metadata().ok()?;
    if !metadata.is_file() || metadata.len() > MAX_MANIFEST_BYTES {
        return None;
    }
    let manifest: SessionManifest = serde_json::from_reader(BufReader::new(file)).ok()?;
    (manifest.version == MANIFEST_VERSION).then_some(manifest)
}

/// The files directly in STORAGE, told apart.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Survey {
    /// The recorder's own videos and why, sorted by path.
    pub videos: Vec<(PathBuf, Evidence)>,
    /// The recorder's own session manifests, sorted by path.
    pub manifests: Vec<PathBuf>,
    /// Every other regular file, sorted by path: never modified, moved or deleted.
    pub foreign: Vec<PathBuf>,
}

/// Sorts the regular files directly in `storage` into the recorder's own and foreign ones.
/// Folders and symlinks are neither entered nor listed; files that vanish meanwhile are left out.
/// A video that cannot be read (another user's file, say) shows nothing and counts as foreign.
///
/// # Errors
///
/// Listing `storage` fails.
pub fn survey(storage: &Path) -> io::Result<Survey> {
    let entries = std::fs::read_dir(storage)
        .map_err(|e| io::Error::new(e.kind(), format!("cannot list STORAGE {}: {e}", storage.display())))?;
    let mut files: Vec<PathBuf> = entries
        .flatten()
        .filter(|entry| entry.file_type().is_ok_and(|kind| kind.is_file()))
        .map(|entry| entry.path())
        .collect();
    files.sort();
    let mut survey = Survey::default();
    let mut own_side_files = Vec::new();
    for path in &files {
        if is_video_name(path) {
            match video_evidence(path) {
                Ok(Some(evidence)) => {
                    own_side_files.extend(side_files(path));
                    survey.videos.push((path.clone(), evidence));
                }
                Ok(None) => {}
                // Unreadable (another user's file, say): it shows nothing, so it is left alone.
                Err(error) => {
                    tracing::debug!(path = %path.display(), "cannot read a video to tell whose it is: {error}")
                }
            }
        } else if is_manifest_name(path) && own_manifest(path).is_some() {
            survey.manifests.push(path.clone());
        }
    }
    let own: HashSet<&PathBuf> =
        survey.videos.iter().map(|(video, _)| video).chain(&survey.manifests).chain(&own_side_files).collect();
    survey.foreign = files.iter().filter(|path| !own.contains(path)).cloned().collect();
    Ok(survey)
}

fn is_manifest_name(path: &Path) -> bool {
    path.file_name().is_some_and(|name| name.to_string_lossy().ends_with(MANIFEST_SUFFIX))
}

#[cfg(test)]
mod tests {
    use std::process::Command;

    use super::*;
    use crate::{
        encode::Container as Muxer,
        storage::{
            recovery::{Recovered, recover_storage},
            retention::{Limits, enforce},
            testing::{avi, matroska, mp4, record, temp_dir, write_aged},
        },
    };

    /// A file made by the ffmpeg CLI as another program would: a 2 s test pattern, `args` for the
    /// output.
    fn ffmpeg(args: &[&str], out: &Path) {
        let status = Command::new("ffmpeg")
            .args([
                "-v",
                "error",
                "-y",
                "-f",
                "lavfi",
                "-i",
                "testsrc=size=64x48:rate=15",
                "-t",
                "2",
                "-c:v",
                "libx264",
            ])
            .args(args)
            .arg(out)
            .status()
            .expect("the ffmpeg CLI runs (scripts/setup.sh installs it)");
        assert!(status.success(), "ffmpeg {args:?}");
    }

    fn evidence(path: &Path) -> Option<Evidence> {
        video_evidence(path).unwrap()
    }

    #[test]
    fn the_recorders_own_videos_show_the_owner_tag_in_every_container_and_state() {
        let dir = temp_dir("ownership-own");
        for (name, container) in [("a.mp4", Muxer::Mp4), ("a.mkv", Muxer::Mkv), ("a.avi", Muxer::Avi)] {
            record(&dir.join(name), container, 20, true);
            assert_eq!(evidence(&dir.join(name)), Some(Evidence::OwnerTag), "{name} finished");
            record(&dir.join(format!("killed-{name}")), container, 20, false);
            assert_eq!(evidence(&dir.join(format!("killed-{name}"))), Some(Evidence::OwnerTag), "{name} killed");
        }
        // Cut inside a fragment (a kill while writing), and the header alone (a kill before the
        // first frame).
        let killed = std::fs::read(dir.join("killed-a.mp4")).unwrap();
        let cut = write_aged(&dir, "cut.mp4", &killed[..killed.len() * 2 / 3], 0);
        assert_eq!(evidence(&cut), Some(Evidence::OwnerTag));
        record(&dir.join("header-only.mp4"), Muxer::Mp4, 0, false);
        assert!(std::fs::metadata(dir.join("header-only.mp4")).unwrap().len() > 0, "the header is on disk");
        assert_eq!(evidence(&dir.join("header-only.mp4")), Some(Evidence::OwnerTag));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    const TWO_DAYS_SECS: u64 = 2 * 24 * 3600;

    /// What other programs leave in a folder, two days old: every kind the recorder must never
    /// take for its own. Returns their paths.
    fn foreign_files(dir: &Path) -> Vec<PathBuf> {
        let fragmented = ["-movflags", "+frag_keyframe+empty_moov+default_base_moof", "-frag_duration", "400000"];
        ffmpeg(&[], &dir.join("holiday.mp4"));
        ffmpeg(&[], &dir.join("run-7_20240101T000000.mp4"));
        ffmpeg(&fragmented, &dir.join("other-recorder.mp4"));
        let whole = std::fs::read(dir.join("other-recorder.mp4")).unwrap();
        std::fs::write(dir.join("other-recorder.mp4"), &whole[..whole.len() * 2 / 3]).unwrap();
        let first_fragment = whole.windows(4).position(|w| w == b"moof").unwrap() - 4;
        std::fs::write(dir.join("header-only.mp4"), &whole[..first_fragment]).unwrap();
        std::fs::write(dir.join("empty.mp4"), b"").unwrap();
        let tagged = [
            "-movflags",
            "+use_metadata_tags+faststart",
            "-metadata",
            "recorder=another-recorder",
            "-metadata",
            "session_id=x",
        ];
        ffmpeg(&tagged, &dir.join("tagged.mp4"));
        ffmpeg(&[], &dir.join("clip.mkv"));
        ffmpeg(&["-c:v", "mpeg4"], &dir.join("old.avi"));
        std::fs::write(dir.join("notes.txt"), b"calibration notes\n").unwrap();
        std::fs::write(dir.join("notes.mp4"), b"a text file named like a video\n").unwrap();
        let paths = files_in(dir);
        for path in &paths {
            crate::storage::testing::age(path, TWO_DAYS_SECS);
        }
        paths
    }

    fn files_in(dir: &Path) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
        files.sort();
        files
    }

    #[test]
    fn foreign_files_of_every_kind_show_nothing() {
        let dir = temp_dir("ownership-foreign");
        let foreign = foreign_files(&dir);
        assert_eq!(foreign.len(), 10, "{foreign:?}");
        for path in foreign.iter().filter(|path| is_video_name(path)) {
            assert_eq!(evidence(path), None, "{}", path.display());
        }
        // One of the recorder's own files under another container's name is not one it wrote.
        record(&dir.join("own.mkv"), Muxer::Mkv, 5, true);
        std::fs::rename(dir.join("own.mkv"), dir.join("renamed.mp4")).unwrap();
        assert_eq!(evidence(&dir.join("renamed.mp4")), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn previous_release_videos_are_recognised_by_their_tags_or_their_frame_index() {
        let dir = temp_dir("ownership-previous");
        let previous =
            ["-metadata", "session_id=run 7", "-metadata", "camera=front", "-metadata", "session_offset=0.012"];
        let movflags = ["-movflags", "+frag_keyframe+empty_moov+default_base_moof+use_metadata_tags"];
        ffmpeg(&[movflags.as_slice(), &previous].concat(), &dir.join("p.mp4"));
        ffmpeg(&previous, &dir.join("p.mkv"));
        assert_eq!(evidence(&dir.join("p.mp4")), Some(Evidence::PreviousReleaseTags));
        assert_eq!(evidence(&dir.join("p.mkv")), Some(Evidence::PreviousReleaseTags));
        // Two of the three tags, or an offset that is no number: not the previous release's.
        ffmpeg(&[movflags.as_slice(), &previous[..4]].concat(), &dir.join("two.mp4"));
        let wrong_offset = ["-metadata", "session_id=s", "-metadata", "camera=c", "-metadata", "session_offset=soon"];
        ffmpeg(&[movflags.as_slice(), &wrong_offset].concat(), &dir.join("word.mp4"));
        assert_eq!((evidence(&dir.join("two.mp4")), evidence(&dir.join("word.mp4"))), (None, None));
        // The previous release's AVI has no tags (RIFF INFO drops them): its frame index shows it.
        ffmpeg(&[], &dir.join("p.avi"));
        assert_eq!(evidence(&dir.join("p.avi")), None);
        std::fs::write(dir.join("p.frames.csv"), b"frame,pts,time_ns,frame_id\n0,0.000000,1,7\n").unwrap();
        assert_eq!(evidence(&dir.join("p.avi")), Some(Evidence::FrameIndex));
        std::fs::write(dir.join("p.frames.csv"), b"frame,pts,time_ns_of_another_tool\n").unwrap();
        assert_eq!(evidence(&dir.join("p.avi")), None, "a look-alike header is not the recorder's");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_survey_tells_own_files_from_foreign_ones() {
        let dir = temp_dir("ownership-survey");
        let foreign = foreign_files(&dir);
        let own = write_aged(&dir, "s_20240101T000000.mp4", &mp4(&[(OWNER_TAG, OWNER_MARK)], &[]), 0);
        let index = write_aged(&dir, "s_20240101T000000.frames.csv", b"frame,pts,time_ns\n", 0);
        let detections = write_aged(&dir, "s_20240101T000000.detections.jsonl", b"{}\n", 0);
        let mkv = write_aged(&dir, "m.mkv", &matroska(&[(OWNER_TAG, OWNER_MARK)]), 0);
        let avi_file = write_aged(&dir, "a.avi", &avi(&[(b"ICMT", OWNER_MARK)]), 0);
        let manifest = dir.join("s_20240101T000000.session.json");
        SessionManifest::new("s", 0).write_atomically(&manifest).unwrap();
        let lonely = write_aged(&dir, "lonely.frames.csv", b"frame,pts,time_ns\n", 0);
        let not_ours = write_aged(&dir, "other.session.json", br#"{"version": 1, "session_id": "x"}"#, 0);
        std::fs::create_dir(dir.join("sub.mp4")).unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink(&own, dir.join("link.mp4")).unwrap();

        let survey = survey(&dir).unwrap();
        let videos: Vec<&PathBuf> = survey.videos.iter().map(|(path, _)| path).collect();
        assert_eq!(videos, [&avi_file, &mkv, &own]);
        assert!(survey.videos.iter().all(|(_, evidence)| *evidence == Evidence::OwnerTag));
        assert_eq!(survey.manifests, [manifest]);
        let mut expected = [foreign, vec![lonely, not_ours]].concat();
        expected.sort();
        assert_eq!(survey.foreign, expected, "side files of own videos are own: {index:?} {detections:?}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Startup repair and retention on a folder of other programs' files next to the recorder's
    /// own: only the recorder's own change or go; every foreign file stays byte for byte.
    #[test]
    fn repair_and_retention_touch_only_the_recorders_own_files() {
        let dir = temp_dir("ownership-repair-retention");
        let foreign = foreign_files(&dir);
        let before: Vec<Vec<u8>> = foreign.iter().map(|path| std::fs::read(path).unwrap()).collect();
        record(&dir.join("killed.mp4"), Muxer::Mp4, 30, false);
        let killed = std::fs::read(dir.join("killed.mp4")).unwrap();
        std::fs::write(dir.join("killed.mp4"), &killed[..killed.len() - 10]).unwrap();
        record(&dir.join("old.mkv"), Muxer::Mkv, 10, true);
        crate::storage::testing::age(&dir.join("old.mkv"), TWO_DAYS_SECS);

        let outcomes = recover_storage(&survey(&dir).unwrap().videos);
        assert_eq!(outcomes.len(), 1, "only the recorder's own killed file: {outcomes:?}");
        let (path, evidence, outcome) = &outcomes[0];
        assert!(path.ends_with("killed.mp4") && *evidence == Evidence::OwnerTag, "{outcomes:?}");
        assert!(matches!(outcome, Ok(Recovered::Repaired { indexed: true, .. })), "{outcomes:?}");
        let limits = Limits { max_total_bytes: Some(0), min_free_bytes: None };
        let enforced = enforce(&dir, &Default::default(), &limits).unwrap();
        let deleted: Vec<&Path> = enforced.deleted.iter().map(|d| d.video.as_path()).collect();
        assert_eq!(deleted, [dir.join("old.mkv").as_path(), &dir.join("killed.mp4")], "oldest first");
        for (path, bytes) in foreign.iter().zip(&before) {
            assert_eq!(&std::fs::read(path).unwrap(), bytes, "{} is byte-identical", path.display());
        }
        assert_eq!(files_in(&dir), foreign, "nothing else is left, nothing foreign is gone");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
