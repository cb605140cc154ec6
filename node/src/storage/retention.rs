//! Retention: keeps STORAGE within `MAX_TOTAL_BYTES` of recordings and at least `MIN_FREE_BYTES`
//! free on its filesystem, by deleting the oldest finished recordings first.
//!
//! A recording is a video directly in STORAGE (`*.mp4`, `*.mkv`, `*.avi`) with its sidecars
//! (`NAME.frames.csv`, `NAME.detections.jsonl`); they go together. A session manifest
//! (`STEM.session.json`) goes once none of the videos it lists exists any more. Files of an active
//! session are never deleted: those the caller lists, those another recorder holds locked (see
//! [`crate::storage::naming::ClaimedFile`]) and empty ones just created, not locked yet.
//!
//! [`plan_deletions`] decides without touching the filesystem; [`scan`] and [`enforce`] do the I/O.
//! Only regular files directly in STORAGE are ever deleted: symlinks are neither followed nor
//! deleted, and subfolders are not entered.

use std::{
    collections::HashSet,
    ffi::{OsStr, OsString},
    fs::{File, Metadata, TryLockError},
    io,
    path::{Component, Path, PathBuf},
    time::{Duration, SystemTime},
};

use serde_json::Value;

use crate::sidecars::{detection_log::detections_path, index::index_path, manifest::MANIFEST_SUFFIX};

/// Extensions of the videos retention manages (those the recorder writes).
pub const VIDEO_EXTENSIONS: [&str; 3] = ["mp4", "mkv", "avi"];
/// [`Deleted::reason`] when the recordings' total was above `MAX_TOTAL_BYTES`.
pub const REASON_MAX_TOTAL_BYTES: &str = "max_total_bytes";
/// [`Deleted::reason`] when the filesystem had less than `MIN_FREE_BYTES` free.
pub const REASON_MIN_FREE_BYTES: &str = "min_free_bytes";
/// Empty videos this recent are protected even when unlocked: a recorder creates its file and takes
/// the lock a moment later (the same rule as [`crate::storage::recovery`]).
const MIN_AGE_OF_EMPTY: Duration = Duration::from_secs(2);
/// Manifests are a few kB; a larger `*.session.json` is not one of ours and is not read.
const MAX_MANIFEST_BYTES: u64 = 16 * 1024 * 1024;

/// The limits to keep; `None` turns a limit off.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Limits {
    /// Most bytes all recordings in STORAGE (videos and sidecars) may take together.
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
    /// Part of an active session (listed by the caller, locked, or new and empty): never deleted.
    pub protected: bool,
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

/// The recordings directly in `storage`, sorted by video path. A video is protected when it (or a
/// sidecar) is in `active`, another process holds its lock, or it is empty and was modified within
/// the last 2 s. Files that vanish while scanning are left out.
pub fn scan(storage: &Path, active: &HashSet<PathBuf>) -> io::Result<Vec<Recording>> {
    let active = ActiveNames::new(storage, active);
    let entries = std::fs::read_dir(storage)
        .map_err(|e| io::Error::new(e.kind(), format!("cannot list STORAGE {}: {e}", storage.display())))?;
    let mut recordings: Vec<Recording> = entries
        .flatten()
        .filter(|entry| is_video_name(&entry.file_name()) && is_regular(entry))
        .filter_map(|entry| inspect(&entry.path(), &active))
        .collect();
    recordings.sort_by(|a, b| a.video.cmp(&b.video));
    Ok(recordings)
}

/// The recording of `video`, or `None` if it vanished.
fn inspect(video: &Path, active: &ActiveNames) -> Option<Recording> {
    let metadata = std::fs::symlink_metadata(video).ok().filter(Metadata::is_file)?;
    let sidecars: Vec<(PathBuf, u64)> = [index_path(video), detections_path(video)]
        .into_iter()
        .filter_map(|path| regular_file_len(&path).map(|len| (path, len)))
        .collect();
    let bytes = sidecars.iter().map(|(_, len)| *len).fold(metadata.len(), u64::saturating_add);
    // An unknown time counts as new: such a file is deleted last, not first.
    let modified = metadata.modified().unwrap_or_else(|_| SystemTime::now());
    let sidecars: Vec<PathBuf> = sidecars.into_iter().map(|(path, _)| path).collect();
    let protected = active.contains(video)
        || sidecars.iter().any(|path| active.contains(path))
        || is_new_and_empty(&metadata)
        || is_locked(video);
    Some(Recording { video: video.to_path_buf(), sidecars, bytes, modified, protected })
}

fn is_new_and_empty(metadata: &Metadata) -> bool {
    let age = metadata.modified().ok().and_then(|modified| SystemTime::now().duration_since(modified).ok());
    // A time in the future (clock set back) counts as new.
    metadata.len() == 0 && age.is_none_or(|age| age < MIN_AGE_OF_EMPTY)
}

/// Whether another recorder holds `video`'s lock; a file whose lock cannot be tested counts as
/// locked, since deleting a file being written loses a recording.
fn is_locked(video: &Path) -> bool {
    match lock(video) {
        Ok(Lock::Held(_) | Lock::Missing) => false,
        Ok(Lock::Busy) => true,
        Err(error) => {
            tracing::warn!(path = %video.display(), "retention keeps a file whose lock it cannot test: {error}");
            true
        }
    }
}

/// The outcome of trying to take a video's exclusive lock.
enum Lock {
    /// Taken; released when the file is dropped.
    Held(#[allow(dead_code, reason = "held only for its lock, never read")] File),
    /// Another open file (a recorder, or recovery) holds it.
    Busy,
    /// The file is gone.
    Missing,
}

fn lock(path: &Path) -> io::Result<Lock> {
    let file = match open_no_follow(path) {
        Ok(file) => file,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(Lock::Missing),
        Err(error) => return Err(error),
    };
    match file.try_lock() {
        Ok(()) => Ok(Lock::Held(file)),
        Err(TryLockError::WouldBlock) => Ok(Lock::Busy),
        Err(TryLockError::Error(error)) => Err(error),
    }
}

/// Opens `path` for reading without following a symlink put there since it was listed, and
/// without blocking should it have become a FIFO.
fn open_no_follow(path: &Path) -> io::Result<File> {
    let mut options = File::options();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK);
    }
    options.open(path)
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
/// [`plan_deletions`]), then every session manifest none of whose listed videos exists any more,
/// unless it is in `active`. Returns what was deleted, oldest first.
///
/// Does nothing when [`Limits::is_off`]. Only listing `storage` fails the call; a file that cannot
/// be deleted is logged and kept, and the next oldest goes in its place. When the free space
/// cannot be read, only `max_total_bytes` is enforced.
pub fn enforce(storage: &Path, active: &HashSet<PathBuf>, limits: &Limits) -> io::Result<Vec<Deleted>> {
    if limits.is_off() {
        return Ok(Vec::new());
    }
    let mut recordings = scan(storage, active)?;
    let free = limits.min_free_bytes.and_then(|_| known_free_bytes(storage));
    let deleted = delete_oldest(&mut recordings, free, limits);
    remove_orphan_manifests(storage, &ActiveNames::new(storage, active));
    Ok(deleted)
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
            deleted.push(Deleted { video: recording.video.clone(), bytes: recording.bytes, reason: step.reason });
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

/// Deletes a recording's sidecars, then its video, holding the video's lock meanwhile so a
/// recorder's startup recovery never repairs a file as it goes. Sidecars go first: a sidecar whose
/// video is gone would never be found again. Returns whether it is gone.
fn delete_recording(recording: &Recording) -> bool {
    let _lock = match lock(&recording.video) {
        Ok(Lock::Busy) => return false,
        Ok(lock) => lock,
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

/// Removes `path` if it is a regular file; a file already gone is fine, and anything else (a
/// symlink put there since, a folder) is left alone.
fn remove_regular_file(path: &Path) -> io::Result<()> {
    if regular_file_len(path).is_none() {
        return Ok(());
    }
    match std::fs::remove_file(path) {
        Err(error) if error.kind() != io::ErrorKind::NotFound => {
            Err(io::Error::new(error.kind(), format!("cannot delete {}: {error}", path.display())))
        }
        _ => Ok(()),
    }
}

/// Removes every `*.session.json` in `storage` that lists videos, none of which exists, unless it
/// is active. Problems are logged: the recordings are already deleted, and a manifest left over is
/// harmless and tried again next time.
fn remove_orphan_manifests(storage: &Path, active: &ActiveNames) {
    let entries = match std::fs::read_dir(storage) {
        Ok(entries) => entries,
        Err(error) => {
            tracing::warn!(path = %storage.display(), "retention cannot list STORAGE for manifests: {error}");
            return;
        }
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let is_manifest = entry.file_name().to_string_lossy().ends_with(MANIFEST_SUFFIX) && is_regular(&entry);
        if !is_manifest || active.contains(&path) || !is_orphan(storage, &path) {
            continue;
        }
        match remove_regular_file(&path) {
            Ok(()) => tracing::debug!(path = %path.display(), "retention removed a manifest whose files are all gone"),
            Err(error) => tracing::warn!("retention keeps a manifest: {error}"),
        }
    }
}

/// Whether the manifest at `path` lists at least one video and none of them exists. A manifest
/// that lists none is kept: its session just started or never recorded, so no deletion orphaned it.
/// A manifest that cannot be read or parsed is kept too.
fn is_orphan(storage: &Path, path: &Path) -> bool {
    let Some(manifest) = read_manifest(path) else { return false };
    let listed = listed_videos(&manifest);
    !listed.is_empty() && listed.iter().all(|name| !exists_in(storage, name))
}

fn read_manifest(path: &Path) -> Option<Value> {
    let len = std::fs::symlink_metadata(path).ok()?.len();
    if len > MAX_MANIFEST_BYTES {
        return None;
    }
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}

/// `cameras.*.files[].path` of a manifest (see [`crate::sidecars::manifest::FileEntry`]).
fn listed_videos(manifest: &Value) -> Vec<&str> {
    let cameras = manifest.get("cameras").and_then(Value::as_object);
    cameras
        .into_iter()
        .flat_map(|cameras| cameras.values())
        .filter_map(|camera| camera.get("files").and_then(Value::as_array))
        .flatten()
        .filter_map(|file| file.get("path").and_then(Value::as_str))
        .collect()
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

/// Whether a directory entry is a regular file itself (a symlink is not, whatever it points to).
fn is_regular(entry: &std::fs::DirEntry) -> bool {
    entry.file_type().is_ok_and(|kind| kind.is_file())
}

fn is_video_name(name: &OsStr) -> bool {
    Path::new(name).extension().is_some_and(|ext| VIDEO_EXTENSIONS.iter().any(|video| ext == *video))
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
    use super::*;
    use crate::sidecars::manifest::{SessionManifest, manifest_path};

    const HOUR: Duration = Duration::from_secs(3600);

    fn recording(name: &str, bytes: u64, hours_ago: u32, protected: bool) -> Recording {
        Recording {
            video: PathBuf::from(name),
            sidecars: Vec::new(),
            bytes,
            modified: SystemTime::UNIX_EPOCH + HOUR * (1000 - hours_ago),
            protected,
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

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("retention-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// Writes `bytes` bytes to `dir/name`, last modified `hours_ago`.
    fn write(dir: &Path, name: &str, bytes: usize, hours_ago: u32) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, vec![7u8; bytes]).unwrap();
        File::options().write(true).open(&path).unwrap().set_modified(SystemTime::now() - HOUR * hours_ago).unwrap();
        path
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> =
            std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        names.sort();
        names
    }

    #[test]
    fn sidecars_are_deleted_with_their_video_and_other_files_are_untouched() {
        let dir = temp_dir("sidecars");
        let old = write(&dir, "old.mp4", 100, 3);
        write(&dir, "old.frames.csv", 10, 3);
        write(&dir, "old.detections.jsonl", 10, 3);
        write(&dir, "new.mkv", 100, 1);
        write(&dir, "new.frames.csv", 10, 1);
        write(&dir, "notes.txt", 1000, 9);

        let deleted = enforce(&dir, &HashSet::new(), &limits(Some(110), None)).unwrap();
        assert_eq!(deleted, [Deleted { video: old, bytes: 120, reason: REASON_MAX_TOTAL_BYTES }]);
        assert_eq!(names(&dir), ["new.frames.csv", "new.mkv", "notes.txt"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn locked_active_and_fresh_empty_videos_survive() {
        let dir = temp_dir("protected");
        let locked = write(&dir, "locked.mp4", 100, 5);
        let holder = File::open(&locked).unwrap();
        holder.lock().unwrap();
        let listed = write(&dir, "listed.avi", 100, 4);
        std::fs::write(dir.join("fresh.mp4"), b"").unwrap();
        write(&dir, "plain.mp4", 100, 3);

        let active = HashSet::from([listed]);
        let deleted = enforce(&dir, &active, &limits(Some(0), None)).unwrap();
        assert_eq!(deleted.len(), 1, "{deleted:?}");
        assert_eq!(names(&dir), ["fresh.mp4", "listed.avi", "locked.mp4"]);

        let recordings = scan(&dir, &active).unwrap();
        assert!(recordings.iter().all(|r| r.protected), "{recordings:?}");
        drop(holder);
        assert!(scan(&dir, &active).unwrap().iter().any(|r| r.video == locked && !r.protected));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn symlinks_are_neither_followed_nor_deleted() {
        let dir = temp_dir("symlink");
        let outside = temp_dir("symlink-outside");
        let target = write(&outside, "precious.mp4", 100, 9);
        std::os::unix::fs::symlink(&target, dir.join("link.mp4")).unwrap();
        std::os::unix::fs::symlink(&target, dir.join("real.frames.csv")).unwrap();
        write(&dir, "real.mp4", 100, 8);

        let deleted = enforce(&dir, &HashSet::new(), &limits(Some(0), None)).unwrap();
        assert_eq!(deleted.len(), 1, "{deleted:?}");
        assert_eq!(deleted[0].bytes, 100, "a symlinked sidecar is not counted");
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
            manifest.file_started("cam", video, &index_path(video), 0);
        }
        let path = manifest_path(dir, stem);
        manifest.write_atomically(&path).unwrap();
        path
    }

    #[test]
    fn a_manifest_whose_videos_are_all_gone_is_removed_unless_active() {
        let dir = temp_dir("orphan");
        write(&dir, "a_1.mp4", 100, 5);
        write(&dir, "a_2.mp4", 100, 4);
        write(&dir, "b_1.mp4", 100, 3);
        let orphan = manifest(&dir, "a", &["a_1.mp4", "a_2.mp4"]);
        let active = manifest(&dir, "b", &["b_1.mp4", "gone.mp4"]);

        let deleted = enforce(&dir, &HashSet::from([active.clone()]), &limits(Some(0), None)).unwrap();
        assert_eq!(deleted.len(), 3, "{deleted:?}");
        assert!(!orphan.exists());
        assert_eq!(names(&dir), ["b.session.json"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_manifest_still_listing_a_kept_video_stays_and_so_do_empty_or_foreign_ones() {
        let dir = temp_dir("kept");
        write(&dir, "s_1.mp4", 100, 5);
        write(&dir, "s_2.mp4", 100, 1);
        manifest(&dir, "s", &["s_1.mp4", "s_2.mp4"]);
        manifest(&dir, "empty", &[]);
        std::fs::write(dir.join("foreign.session.json"), b"not json").unwrap();
        // Not written by the recorder: a path outside STORAGE is never taken for a deleted file.
        std::fs::write(dir.join("escape.session.json"), br#"{"cameras": {"c": {"files": [{"path": "../s_1.mp4"}]}}}"#)
            .unwrap();

        let deleted = enforce(&dir, &HashSet::new(), &limits(Some(100), None)).unwrap();
        assert_eq!(deleted.iter().map(|d| d.video.clone()).collect::<Vec<_>>(), [dir.join("s_1.mp4")]);
        let expected =
            ["empty.session.json", "escape.session.json", "foreign.session.json", "s.session.json", "s_2.mp4"];
        assert_eq!(names(&dir), expected);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn free_space_of_the_temp_dir_is_positive_and_a_missing_folder_is_an_error() {
        let dir = temp_dir("free");
        assert!(free_bytes(&dir).unwrap() > 0);
        assert!(free_bytes(&dir.join("missing")).is_err());
        assert!(enforce(&dir.join("missing"), &HashSet::new(), &limits(Some(0), None)).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn enforcing_with_no_limit_touches_nothing() {
        let dir = temp_dir("off");
        write(&dir, "a.mp4", 100, 5);
        manifest(&dir, "x", &["gone.mp4"]);
        assert!(enforce(&dir, &HashSet::new(), &Limits::default()).unwrap().is_empty());
        assert_eq!(names(&dir), ["a.mp4", "x.session.json"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn active_files_match_by_name_in_storage_however_storage_is_spelled() {
        let dir = temp_dir("active");
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
