//! Retention: keeps the recorder's own recordings in STORAGE within `MAX_TOTAL_BYTES` and at
//! least `MIN_FREE_BYTES` free on its filesystem, by deleting the oldest finished recordings first.
//!
//! A recording is one of the recorder's own videos directly in STORAGE (see
//! [`super::ownership`]) with its side files (`NAME.frames.csv`, `NAME.detections.jsonl`); they go
//! together. One of the recorder's own session manifests goes once none of the videos it lists
//! exists any more. Foreign files are never counted, modified or deleted: `MAX_TOTAL_BYTES` is a
//! limit on the recorder's own recordings, and when only foreign files could free space,
//! [`Enforced::unmet`] says so. Files of an active session are never deleted: those the caller
//! lists and those another recorder holds or has just claimed (see [`super::claim`]).
//!
//! [`plan_deletions`] decides without touching the filesystem; [`scan`] and [`enforce`] do the I/O.
//! Only regular files directly in STORAGE are ever deleted: symlinks are neither followed nor
//! deleted, and subfolders are not entered.

use std::{
    collections::HashSet,
    ffi::{OsStr, OsString},
    fs::Metadata,
    io,
    path::{Component, Path, PathBuf},
    time::SystemTime,
};

use super::{
    claim::{self, Taken, remove_regular_file},
    ownership::{self, Evidence, Survey, own_manifest, side_files},
};

/// [`Deleted::reason`] when the recordings' total was above `MAX_TOTAL_BYTES`.
pub const REASON_MAX_TOTAL_BYTES: &str = "max_total_bytes";
/// [`Deleted::reason`] when the filesystem had less than `MIN_FREE_BYTES` free.
pub const REASON_MIN_FREE_BYTES: &str = "min_free_bytes";

/// The limits to keep; `None` turns a limit off.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Limits {
    /// Most bytes the recorder's own recordings in STORAGE (videos and side files) may take together;
    /// foreign files do not count.
    pub max_total_bytes: Option<u64>,
    /// Fewest bytes that must stay free for unprivileged users on STORAGE's filesystem.
    pub min_free_bytes: Option<u64>,
}

impl Limits {
    /// Whether neither limit is set, so retention never deletes anything.
    pub fn is_off(&self) -> bool {
        self.max_total_bytes.is_none() && self.min_free_bytes.is_none()
    }
}

/// One recording in STORAGE: a video and the sidecars that exist beside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recording {
    /// The video file.
    pub video: PathBuf,
    /// Its sidecars that exist: frame index, detections log.
    pub sidecars: Vec<PathBuf>,
    /// Size of the video and its sidecars together.
    pub bytes: u64,
    /// When the video was last modified; the oldest go first.
    pub modified: SystemTime,
    /// Part of an active session (listed by the caller, or held or just claimed by a recorder):
    /// never deleted.
    pub protected: bool,
    /// Why it is the recorder's own.
    pub evidence: Evidence,
}

/// A recording [`enforce`] deleted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deleted {
    /// The video; its sidecars went with it.
    pub video: PathBuf,
    /// Bytes of the video and its sidecars.
    pub bytes: u64,
    /// The limit that was not held: [`REASON_MAX_TOTAL_BYTES`] or [`REASON_MIN_FREE_BYTES`].
    pub reason: &'static str,
    /// Why it was the recorder's own.
    pub evidence: Evidence,
}

/// One step of a plan: which recording goes and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Planned {
    index: usize,
    reason: &'static str,
}

/// Which recordings to delete, as indices into `recordings`, oldest first: unprotected ones, until
/// the total of all recordings (protected ones count too) is at most `max_total_bytes` and
/// `free_bytes` plus what the plan frees is at least `min_free_bytes`. When the limits cannot be
/// met, every unprotected recording is planned. `free_bytes: None` (unknown) never asks for a
/// deletion on its own.
#[cfg(test)]
pub fn plan_deletions(recordings: &[Recording], free_bytes: Option<u64>, limits: &Limits) -> Vec<usize> {
    plan(recordings, free_bytes, limits).into_iter().map(|step| step.index).collect()
}

fn plan(recordings: &[Recording], free_bytes: Option<u64>, limits: &Limits) -> Vec<Planned> {
    // u128: sums of u64 sizes never overflow, so the totals stay exact.
    let mut total_bytes: u128 = recordings.iter().map(|r| u128::from(r.bytes)).sum();
    let mut free_bytes = free_bytes.map(u128::from);
    let mut planned = Vec::new();
    for index in unprotected_oldest_first(recordings) {
        let Some(reason) = broken_limit(total_bytes, free_bytes, limits) else { break };
        let bytes = u128::from(recordings[index].bytes);
        total_bytes -= bytes;
        free_bytes = free_bytes.map(|free| free + bytes);
        planned.push(Planned { index, reason });
    }
    planned
}

/// Indices of the unprotected recordings, oldest first; equal times in path order, so a plan never
/// depends on the order the directory listing happened to give.
fn unprotected_oldest_first(recordings: &[Recording]) -> Vec<usize> {
    let mut indices: Vec<usize> = (0..recordings.len()).filter(|&i| !recordings[i].protected).collect();
    indices.sort_by(|&a, &b| {
        let (a, b) = (&recordings[a], &recordings[b]);
        a.modified.cmp(&b.modified).then_with(|| a.video.cmp(&b.video))
    });
    indices
}

/// The first limit that does not hold, as a [`Deleted::reason`].
fn broken_limit(total_bytes: u128, free_bytes: Option<u128>, limits: &Limits) -> Option<&'static str> {
    if limits.max_total_bytes.is_some_and(|max| total_bytes > u128::from(max)) {
        return Some(REASON_MAX_TOTAL_BYTES);
    }
    match (limits.min_free_bytes, free_bytes) {
        (Some(min), Some(free)) if free < u128::from(min) => Some(REASON_MIN_FREE_BYTES),
        _ => None,
    }
}

/// What [`enforce`] did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Enforced {
    /// The recordings deleted, oldest first.
    pub deleted: Vec<Deleted>,
    /// A limit that still does not hold once every recording that may go is gone.
    pub unmet: Option<Unmet>,
}

/// A limit retention could not meet: what is left is the active sessions' recordings, foreign
/// files (never deleted) and whatever else fills the filesystem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unmet {
    /// The limit: [`REASON_MAX_TOTAL_BYTES`] or [`REASON_MIN_FREE_BYTES`].
    pub reason: &'static str,
    /// The recorder's own recordings left, in bytes.
    pub own_bytes: u64,
    /// Free bytes on STORAGE's filesystem, when known.
    pub free_bytes: Option<u64>,
    /// Foreign files directly in STORAGE.
    pub foreign_files: usize,
    /// Bytes of those foreign files.
    pub foreign_bytes: u64,
}

/// The recorder's own recordings directly in `storage`, sorted by video path. A video is
/// protected when it (or a side file) is in `active`, or another recorder holds or has just
/// claimed it. Files that vanish while scanning are left out.
///
/// # Errors
///
/// Listing `storage` fails.
#[cfg(test)]
pub fn scan(storage: &Path, active: &HashSet<PathBuf>) -> io::Result<Vec<Recording>> {
    Ok(recordings(storage, &ownership::survey(storage)?, active))
}

fn recordings(storage: &Path, survey: &Survey, active: &HashSet<PathBuf>) -> Vec<Recording> {
    let active = ActiveNames::new(storage, active);
    survey.videos.iter().filter_map(|(video, evidence)| inspect(video, *evidence, &active)).collect()
}

/// The recording of `video`, or `None` if it vanished.
fn inspect(video: &Path, evidence: Evidence, active: &ActiveNames) -> Option<Recording> {
    let metadata = std::fs::symlink_metadata(video).ok().filter(Metadata::is_file)?;
    let sidecars: Vec<(PathBuf, u64)> =
        side_files(video).into_iter().filter_map(|path| regular_file_len(&path).map(|len| (path, len))).collect();
    let bytes = sidecars.iter().map(|(_, len)| *len).fold(metadata.len(), u64::saturating_add);
    // An unknown time counts as new: such a file is deleted last, not first.
    let modified = metadata.modified().unwrap_or_else(|_| SystemTime::now());
    let sidecars: Vec<PathBuf> = sidecars.into_iter().map(|(path, _)| path).collect();
    let protected = active.contains(video) || sidecars.iter().any(|path| active.contains(path)) || is_in_use(video);
    Some(Recording { video: video.to_path_buf(), sidecars, bytes, modified, protected, evidence })
}

/// Whether another recorder holds `video` or has just claimed it; a file whose lock cannot be
/// tested counts as in use, since deleting a file being written loses a recording.
fn is_in_use(video: &Path) -> bool {
    match claim::take(video) {
        Ok(Taken::Free(_) | Taken::Gone) => false,
        Ok(Taken::InUse) => true,
        Err(error) => {
            tracing::warn!(path = %video.display(), "retention keeps a file whose lock it cannot test: {error}");
            true
        }
    }
}

/// Bytes available to unprivileged users on the filesystem that holds `storage`
/// (`statvfs`: `f_bavail * f_frsize`).
#[cfg(unix)]
pub fn free_bytes(storage: &Path) -> io::Result<u64> {
    use std::os::unix::ffi::OsStrExt;

    let c_path = std::ffi::CString::new(storage.as_os_str().as_bytes()).map_err(|_| {
        io::Error::new(io::ErrorKind::InvalidInput, format!("STORAGE {} holds a NUL byte", storage.display()))
    })?;
    let mut stat = std::mem::MaybeUninit::<libc::statvfs>::zeroed();
    // SAFETY: `c_path` is NUL-terminated and outlives the call; `stat` is valid for one `statvfs`.
    let status = unsafe { libc::statvfs(c_path.as_ptr(), stat.as_mut_ptr()) };
    if status != 0 {
        let error = io::Error::last_os_error();
        return Err(io::Error::new(
            error.kind(),
            format!("cannot read the free space of {}: {error}", storage.display()),
        ));
    }
    // SAFETY: statvfs returned 0, so it filled `stat` (which started zeroed anyway).
    let stat = unsafe { stat.assume_init() };
    // The field types differ between platforms (u32 on some, u64 on Linux).
    #[allow(clippy::unnecessary_cast)]
    Ok((stat.f_bavail as u64).saturating_mul(stat.f_frsize as u64))
}

/// Bytes available on the filesystem that holds `storage`: not supported on this platform.
#[cfg(not(unix))]
pub fn free_bytes(storage: &Path) -> io::Result<u64> {
    let message = format!("cannot read the free space of {}: not supported on this platform", storage.display());
    Err(io::Error::new(io::ErrorKind::Unsupported, message))
}

/// Deletes the oldest unprotected recordings in `storage` until `limits` hold (see
/// [`plan_deletions`]), then every one of the recorder's own session manifests none of whose
/// listed videos exists any more, unless it is in `active`.
///
/// Does nothing when [`Limits::is_off`]. Only listing `storage` fails the call; a file that cannot
/// be deleted is logged and kept, and the next oldest goes in its place. When the free space
/// cannot be read, only `max_total_bytes` is enforced.
///
/// # Errors
///
/// Listing `storage` fails.
pub fn enforce(storage: &Path, active: &HashSet<PathBuf>, limits: &Limits) -> io::Result<Enforced> {
    if limits.is_off() {
        return Ok(Enforced::default());
    }
    let survey = ownership::survey(storage)?;
    let mut recordings = recordings(storage, &survey, active);
    let own_bytes: u64 = recordings.iter().map(|r| r.bytes).fold(0, u64::saturating_add);
    let free = limits.min_free_bytes.and_then(|_| known_free_bytes(storage));
    let deleted = delete_oldest(&mut recordings, free, limits);
    let freed: u64 = deleted.iter().map(|d| d.bytes).fold(0, u64::saturating_add);
    let (own_bytes, free_bytes) = (own_bytes.saturating_sub(freed), free.map(|free| free.saturating_add(freed)));
    let unmet = broken_limit(u128::from(own_bytes), free_bytes.map(u128::from), limits).map(|reason| {
        let foreign_bytes =
            survey.foreign.iter().filter_map(|path| regular_file_len(path)).fold(0, u64::saturating_add);
        Unmet { reason, own_bytes, free_bytes, foreign_files: survey.foreign.len(), foreign_bytes }
    });
    remove_orphan_manifests(storage, &survey.manifests, &ActiveNames::new(storage, active));
    Ok(Enforced { deleted, unmet })
}

/// The free space, or `None` (logged) when it cannot be read, so the total limit still works.
fn known_free_bytes(storage: &Path) -> Option<u64> {
    free_bytes(storage).map_err(|error| tracing::warn!("retention ignores MIN_FREE_BYTES this time: {error}")).ok()
}

/// Deletes recordings as planned. A recording that cannot be deleted is protected from then on and
/// the rest is planned again, so the next oldest takes its place; each round protects one more
/// recording, so this ends.
fn delete_oldest(recordings: &mut Vec<Recording>, mut free: Option<u64>, limits: &Limits) -> Vec<Deleted> {
    let mut deleted = Vec::new();
    loop {
        let mut removed = HashSet::new();
        let mut kept = None;
        for step in plan(recordings, free, limits) {
            let recording = &recordings[step.index];
            if !delete_recording(recording) {
                kept = Some(step.index);
                break;
            }
            free = free.map(|free| free.saturating_add(recording.bytes));
            let (video, bytes, evidence) = (recording.video.clone(), recording.bytes, recording.evidence);
            deleted.push(Deleted { video, bytes, reason: step.reason, evidence });
            removed.insert(step.index);
        }
        let Some(kept) = kept else { return deleted };
        recordings[kept].protected = true;
        let mut index = 0;
        recordings.retain(|_| {
            index += 1;
            !removed.contains(&(index - 1))
        });
    }
}

/// Deletes a recording's side files, then its video, holding the video's lock meanwhile so a
/// recorder's startup repair never repairs a file as it goes. Side files go first: a side file
/// whose video is gone would never be found again. Returns whether it is gone.
fn delete_recording(recording: &Recording) -> bool {
    let _lock = match claim::take(&recording.video) {
        Ok(Taken::InUse) => return false,
        Ok(taken) => taken,
        Err(error) => {
            tracing::warn!(path = %recording.video.display(), "retention keeps a file it cannot lock: {error}");
            return false;
        }
    };
    let all_removed =
        recording.sidecars.iter().chain([&recording.video]).try_for_each(|path| remove_regular_file(path));
    if let Err(error) = &all_removed {
        tracing::warn!(path = %recording.video.display(), "retention cannot delete a recording: {error}");
    }
    all_removed.is_ok()
}

/// Removes every one of the recorder's own `manifests` that lists videos, none of which exists,
/// unless it is active. Problems are logged: the recordings are already deleted, and a manifest
/// left over is harmless and tried again next time.
fn remove_orphan_manifests(storage: &Path, manifests: &[PathBuf], active: &ActiveNames) {
    for path in manifests.iter().filter(|path| !active.contains(path) && is_orphan(storage, path)) {
        match remove_regular_file(path) {
            Ok(()) => tracing::debug!(path = %path.display(), "retention removed a manifest whose files are all gone"),
            Err(error) => tracing::warn!("retention keeps a manifest: {error}"),
        }
    }
}

/// Whether the manifest at `path` lists at least one video and none of them exists. A manifest
/// that lists none is kept: its session just started or never recorded, so no deletion orphaned it.
/// A manifest that cannot be read any more is kept too.
fn is_orphan(storage: &Path, path: &Path) -> bool {
    let Some(manifest) = own_manifest(path) else { return false };
    let mut listed =
        manifest.cameras.values().flat_map(|camera| &camera.files).map(|file| file.path.as_str()).peekable();
    listed.peek().is_some() && listed.all(|name| !exists_in(storage, name))
}

/// Whether the file `name` (relative to `storage`) exists. A name that is not a plain file name,
/// or a file whose existence cannot be told, counts as existing, so its manifest is kept.
fn exists_in(storage: &Path, name: &str) -> bool {
    let mut components = Path::new(name).components();
    let plain = matches!((components.next(), components.next()), (Some(Component::Normal(_)), None));
    if !plain {
        return true;
    }
    match std::fs::symlink_metadata(storage.join(name)) {
        Ok(_) => true,
        Err(error) => error.kind() != io::ErrorKind::NotFound,
    }
}

/// The size of `path` if it is a regular file (not a symlink, not a folder).
fn regular_file_len(path: &Path) -> Option<u64> {
    std::fs::symlink_metadata(path).ok().filter(Metadata::is_file).map(|metadata| metadata.len())
}

/// The file names in STORAGE the caller marked active. The caller may name them as
/// `STORAGE/NAME`, through another spelling of STORAGE (relative, via a symlink) or as bare
/// names; comparing names in STORAGE treats all of these alike.
struct ActiveNames(HashSet<OsString>);

impl ActiveNames {
    fn new(storage: &Path, active: &HashSet<PathBuf>) -> Self {
        let canonical_storage = storage.canonicalize().ok();
        let names = active
            .iter()
            .filter(|path| is_in_folder(path, storage, canonical_storage.as_deref()))
            .filter_map(|path| path.file_name().map(OsStr::to_os_string))
            .collect();
        Self(names)
    }

    fn contains(&self, path: &Path) -> bool {
        path.file_name().is_some_and(|name| self.0.contains(name))
    }
}

fn is_in_folder(path: &Path, folder: &Path, canonical_folder: Option<&Path>) -> bool {
    let Some(parent) = path.parent() else { return false };
    parent.as_os_str().is_empty()
        || parent == folder
        || canonical_folder.is_some_and(|canonical| parent.canonicalize().is_ok_and(|parent| parent == canonical))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::{
        sidecars::manifest::{SessionManifest, manifest_path},
        storage::testing::{age, own_video, temp_dir, write_aged},
    };

    const HOUR: Duration = Duration::from_secs(3600);

    fn recording(name: &str, bytes: u64, hours_ago: u32, protected: bool) -> Recording {
        Recording {
            video: PathBuf::from(name),
            sidecars: Vec::new(),
            bytes,
            modified: SystemTime::UNIX_EPOCH + HOUR * (1000 - hours_ago),
            protected,
            evidence: Evidence::OwnerTag,
        }
    }

    fn limits(max_total_bytes: Option<u64>, min_free_bytes: Option<u64>) -> Limits {
        Limits { max_total_bytes, min_free_bytes }
    }

    /// Four 10-byte recordings, listed newest first: index 3 is the oldest.
    fn four() -> Vec<Recording> {
        vec![
            recording("d", 10, 1, false),
            recording("c", 10, 2, false),
            recording("b", 10, 3, false),
            recording("a", 10, 4, false),
        ]
    }

    #[test]
    fn the_oldest_go_first_and_only_until_the_total_fits() {
        assert_eq!(plan_deletions(&four(), None, &limits(Some(25), None)), [3, 2]);
        assert_eq!(plan_deletions(&four(), None, &limits(Some(40), None)), Vec::<usize>::new());
    }

    #[test]
    fn a_protected_recording_is_skipped_even_when_oldest_but_still_counts() {
        let mut recordings = four();
        recordings[3].protected = true;
        assert_eq!(plan_deletions(&recordings, None, &limits(Some(25), None)), [2, 1]);
    }

    #[test]
    fn planning_stops_as_soon_as_both_limits_hold_and_names_the_limit_that_did_not() {
        // Total 40 > 35 asks for one; free 5 + 10 < 20 asks for one more; then 25 >= 20.
        let steps = plan(&four(), Some(5), &limits(Some(35), Some(20)));
        let expected =
            [Planned { index: 3, reason: REASON_MAX_TOTAL_BYTES }, Planned { index: 2, reason: REASON_MIN_FREE_BYTES }];
        assert_eq!(steps, expected);
    }

    #[test]
    fn the_free_space_limit_works_alone() {
        assert_eq!(plan_deletions(&four(), Some(0), &limits(None, Some(15))), [3, 2]);
        assert_eq!(plan_deletions(&four(), Some(15), &limits(None, Some(15))), Vec::<usize>::new());
    }

    #[test]
    fn unknown_free_space_asks_for_nothing() {
        assert_eq!(plan_deletions(&four(), None, &limits(None, Some(u64::MAX))), Vec::<usize>::new());
    }

    #[test]
    fn no_limit_set_deletes_nothing() {
        assert!(limits(None, None).is_off());
        assert_eq!(plan_deletions(&four(), Some(0), &limits(None, None)), Vec::<usize>::new());
    }

    #[test]
    fn limits_that_cannot_be_met_delete_every_unprotected_recording_and_stop() {
        let mut recordings = four();
        recordings[1].protected = true;
        assert_eq!(plan_deletions(&recordings, Some(0), &limits(Some(0), Some(u64::MAX))), [3, 2, 0]);
    }

    #[test]
    fn equal_times_go_in_path_order_and_huge_sizes_do_not_overflow() {
        let recordings =
            vec![recording("c", u64::MAX, 1, false), recording("b", u64::MAX, 1, false), recording("a", 1, 1, false)];
        assert_eq!(plan_deletions(&recordings, Some(u64::MAX), &limits(Some(u64::MAX), None)), [2, 1]);
        assert_eq!(plan_deletions(&recordings, Some(u64::MAX), &limits(None, Some(u64::MAX))), Vec::<usize>::new());
    }

    /// Writes `bytes` bytes to `dir/name`, last modified `hours_ago`: one of the recorder's own
    /// videos (its header carries the owner tag) when the name is a video's, else plain bytes.
    fn write(dir: &Path, name: &str, bytes: usize, hours_ago: u32) -> PathBuf {
        let contents =
            if ownership::is_video_name(Path::new(name)) { own_video(name, bytes) } else { vec![7u8; bytes] };
        write_aged(dir, name, &contents, u64::from(hours_ago) * 3600)
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> =
            std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        names.sort();
        names
    }

    #[test]
    fn sidecars_are_deleted_with_their_video_and_foreign_files_are_untouched_and_uncounted() {
        let dir = temp_dir("retention-sidecars");
        let old = write(&dir, "old.mp4", 1000, 3);
        write(&dir, "old.frames.csv", 10, 3);
        write(&dir, "old.detections.jsonl", 10, 3);
        write(&dir, "new.mkv", 1000, 1);
        write(&dir, "new.frames.csv", 10, 1);
        write(&dir, "notes.txt", 100_000, 9);
        write_aged(&dir, "film.mp4", &vec![7u8; 100_000], 9 * 3600);

        let enforced = enforce(&dir, &HashSet::new(), &limits(Some(1010), None)).unwrap();
        let expected =
            Deleted { video: old, bytes: 1020, reason: REASON_MAX_TOTAL_BYTES, evidence: Evidence::OwnerTag };
        assert_eq!(enforced.deleted, [expected]);
        assert_eq!(enforced.unmet, None, "foreign bytes do not count against MAX_TOTAL_BYTES");
        assert_eq!(names(&dir), ["film.mp4", "new.frames.csv", "new.mkv", "notes.txt"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn held_active_and_fresh_empty_videos_survive() {
        let dir = temp_dir("retention-protected");
        let held = claim::claim_file(&dir, "held", "mp4").unwrap();
        std::fs::write(&held.path, own_video("held.mp4", 1000)).unwrap();
        age(&held.path, 5 * 3600);
        let listed = write(&dir, "listed.avi", 1000, 4);
        write_aged(&dir, "fresh.mp4", b"", 0);
        write_aged(&dir, "fresh.frames.csv", b"frame,pts,time_ns\n", 0);
        write(&dir, "plain.mp4", 1000, 3);

        let active = HashSet::from([listed]);
        let enforced = enforce(&dir, &active, &limits(Some(0), None)).unwrap();
        assert_eq!(enforced.deleted.len(), 1, "{enforced:?}");
        assert_eq!(enforced.unmet.map(|unmet| unmet.reason), Some(REASON_MAX_TOTAL_BYTES));
        assert_eq!(names(&dir), ["fresh.frames.csv", "fresh.mp4", "held.mp4", "listed.avi"]);

        let recordings = scan(&dir, &active).unwrap();
        assert_eq!(recordings.len(), 3, "{recordings:?}");
        assert!(recordings.iter().all(|r| r.protected), "{recordings:?}");
        let path = held.path.clone();
        drop(held);
        assert!(scan(&dir, &active).unwrap().iter().any(|r| r.video == path && !r.protected));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn when_only_foreign_files_could_free_space_nothing_of_theirs_goes_and_the_limit_is_reported_unmet() {
        let dir = temp_dir("retention-free");
        write(&dir, "own.mp4", 1000, 5);
        write_aged(&dir, "film.mkv", &vec![7u8; 5000], 9 * 3600);
        let enforced = enforce(&dir, &HashSet::new(), &limits(None, Some(u64::MAX))).unwrap();
        assert_eq!(enforced.deleted.len(), 1, "the recorder's own recording goes: {enforced:?}");
        let unmet = enforced.unmet.unwrap();
        assert_eq!((unmet.reason, unmet.own_bytes), (REASON_MIN_FREE_BYTES, 0));
        assert_eq!((unmet.foreign_files, unmet.foreign_bytes), (1, 5000));
        assert!(unmet.free_bytes.is_some_and(|free| free > 0));
        assert_eq!(names(&dir), ["film.mkv"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn symlinks_are_neither_followed_nor_deleted() {
        let dir = temp_dir("retention-symlink");
        let outside = temp_dir("retention-symlink-outside");
        let target = write(&outside, "precious.mp4", 1000, 9);
        std::os::unix::fs::symlink(&target, dir.join("link.mp4")).unwrap();
        std::os::unix::fs::symlink(&target, dir.join("real.frames.csv")).unwrap();
        write(&dir, "real.mp4", 1000, 8);

        let enforced = enforce(&dir, &HashSet::new(), &limits(Some(0), None)).unwrap();
        assert_eq!(enforced.deleted.len(), 1, "{enforced:?}");
        assert_eq!(enforced.deleted[0].bytes, 1000, "a symlinked sidecar is not counted");
        assert_eq!(names(&dir), ["link.mp4", "real.frames.csv"]);
        assert!(target.exists());
        std::fs::remove_dir_all(&dir).unwrap();
        std::fs::remove_dir_all(&outside).unwrap();
    }

    /// A manifest in `dir` for session `stem` listing `videos`.
    fn manifest(dir: &Path, stem: &str, videos: &[&str]) -> PathBuf {
        let mut manifest = SessionManifest::new(stem, 0);
        for video in videos {
            let video = Path::new(video);
            manifest.file_started("cam", video, &crate::sidecars::index::index_path(video), 0);
        }
        let path = manifest_path(dir, stem);
        manifest.write_atomically(&path).unwrap();
        path
    }

    #[test]
    fn a_manifest_whose_videos_are_all_gone_is_removed_unless_active() {
        let dir = temp_dir("retention-orphan");
        write(&dir, "a_1.mp4", 1000, 5);
        write(&dir, "a_2.mp4", 1000, 4);
        write(&dir, "b_1.mp4", 1000, 3);
        let orphan = manifest(&dir, "a", &["a_1.mp4", "a_2.mp4"]);
        let active = manifest(&dir, "b", &["b_1.mp4", "gone.mp4"]);

        let enforced = enforce(&dir, &HashSet::from([active.clone()]), &limits(Some(0), None)).unwrap();
        assert_eq!(enforced.deleted.len(), 3, "{enforced:?}");
        assert!(!orphan.exists());
        assert_eq!(names(&dir), ["b.session.json"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_manifest_still_listing_a_kept_video_stays_and_so_do_empty_or_foreign_ones() {
        let dir = temp_dir("retention-kept");
        write(&dir, "s_1.mp4", 1000, 5);
        write(&dir, "s_2.mp4", 1000, 1);
        manifest(&dir, "s", &["s_1.mp4", "s_2.mp4"]);
        manifest(&dir, "empty", &[]);
        std::fs::write(dir.join("foreign.session.json"), b"not json").unwrap();
        // Not written by the recorder: a path outside STORAGE is never taken for a deleted file.
        std::fs::write(dir.join("escape.session.json"), br#"{"cameras": {"c": {"files": [{"path": "../s_1.mp4"}]}}}"#)
            .unwrap();
        // Shaped like one of ours, but of another version: foreign, though it lists only gone files.
        let mut other_version: serde_json::Value =
            serde_json::from_slice(&std::fs::read(manifest(&dir, "v2", &["gone.mp4"])).unwrap()).unwrap();
        other_version["version"] = 2.into();
        std::fs::write(dir.join("v2.session.json"), other_version.to_string()).unwrap();

        let enforced = enforce(&dir, &HashSet::new(), &limits(Some(1000), None)).unwrap();
        assert_eq!(enforced.deleted.iter().map(|d| d.video.clone()).collect::<Vec<_>>(), [dir.join("s_1.mp4")]);
        let expected = [
            "empty.session.json",
            "escape.session.json",
            "foreign.session.json",
            "s.session.json",
            "s_2.mp4",
            "v2.session.json",
        ];
        assert_eq!(names(&dir), expected);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn free_space_of_the_temp_dir_is_positive_and_a_missing_folder_is_an_error() {
        let dir = temp_dir("retention-free-space");
        assert!(free_bytes(&dir).unwrap() > 0);
        assert!(free_bytes(&dir.join("missing")).is_err());
        assert!(enforce(&dir.join("missing"), &HashSet::new(), &limits(Some(0), None)).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn enforcing_with_no_limit_touches_nothing() {
        let dir = temp_dir("retention-off");
        write(&dir, "a.mp4", 1000, 5);
        manifest(&dir, "x", &["gone.mp4"]);
        assert_eq!(enforce(&dir, &HashSet::new(), &Limits::default()).unwrap(), Enforced::default());
        assert_eq!(names(&dir), ["a.mp4", "x.session.json"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn active_files_match_by_name_in_storage_however_storage_is_spelled() {
        let dir = temp_dir("retention-active");
        let spelled = dir.join(".").join("a.mp4");
        let names = ActiveNames::new(
            &dir,
            &HashSet::from([spelled, PathBuf::from("b.mp4"), PathBuf::from("/elsewhere/c.mp4")]),
        );
        assert!(names.contains(&dir.join("a.mp4")) && names.contains(&dir.join("b.mp4")));
        assert!(!names.contains(&dir.join("c.mp4")));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
