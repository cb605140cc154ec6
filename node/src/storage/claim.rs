//! The claim and lock protocol every recorder follows in STORAGE, in one place: a writer claims a
//! new name by creating the file (`create_new`, so two recorders never share one) and holds an
//! exclusive advisory lock on it until the file is final; startup repair and retention, in this
//! or another recorder, [`take`] a file's lock before changing or deleting it, and leave alone a
//! file another live recorder holds.
//!
//! A writer creates its file first and locks it a moment later, so an empty, unlocked file younger
//! than [`MIN_AGE_OF_EMPTY`] counts as claimed too.

use std::{
    fs::{File, Metadata, OpenOptions, TryLockError},
    io,
    path::{Path, PathBuf},
    time::{Duration, SystemTime},
};

use super::ownership::side_files;

/// Empty files this recent count as being claimed even when unlocked: a recorder that just
/// created one takes its lock a moment later, before writing anything. Files with content are
/// judged by their lock alone, so a recorder restarted right after a crash repairs the crash's
/// files at once.
pub const MIN_AGE_OF_EMPTY: Duration = Duration::from_secs(2);
/// How many `-N` suffixes to try before giving up on a name.
const MAX_COLLISION_SUFFIX: u32 = 10_000;

/// A new file this process is writing: its path, and an open handle holding the exclusive
/// advisory lock for as long as it is kept, so startup repair (of this or another recorder) never
/// repairs it and retention never deletes it while it is written.
#[derive(Debug)]
pub struct ClaimedFile {
    /// Where it is.
    pub path: PathBuf,
    /// Holds the lock; drop it once the file is final.
    pub lock: File,
}

/// Creates and locks the video `dir/stem.ext`, or `dir/stem-1.ext`, `-2`, ... when that name or
/// one of its side files (frame index, detections) exists: the side files are created later with
/// the video's name, and must never overwrite another program's file.
///
/// # Errors
///
/// Creating the file or taking its lock fails, or [`MAX_COLLISION_SUFFIX`] names are taken.
pub fn claim_file(dir: &Path, stem: &str, extension: &str) -> io::Result<ClaimedFile> {
    let (path, lock) = claim(dir, stem, extension, true)?;
    // Until this lock is held the file is empty, which counts as claimed while it is new.
    lock.lock()?;
    Ok(ClaimedFile { path, lock })
}

/// Creates `dir/stem.ext`, or `dir/stem-1.ext`, `-2`, ... if taken, and returns the path: for a
/// file replaced whole on every write (a session manifest), which needs no lock.
///
/// # Errors
///
/// As [`claim_file`].
pub fn claim_path(dir: &Path, stem: &str, extension: &str) -> io::Result<PathBuf> {
    claim(dir, stem, extension, false).map(|(path, _)| path)
}

fn claim(dir: &Path, stem: &str, extension: &str, with_side_files: bool) -> io::Result<(PathBuf, File)> {
    for suffix in 0..=MAX_COLLISION_SUFFIX {
        let name = match suffix {
            0 => format!("{stem}.{extension}"),
            n => format!("{stem}-{n}.{extension}"),
        };
        let path = dir.join(name);
        if with_side_files && side_files(&path).iter().any(|side| side.symlink_metadata().is_ok()) {
            continue;
        }
        match OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(file) => return Ok((path, file)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::new(io::ErrorKind::AlreadyExists, format!("{MAX_COLLISION_SUFFIX} files named {stem}-N exist")))
}

/// What [`take`] found.
#[derive(Debug)]
pub enum Taken {
    /// The lock is ours until this handle (opened read-only) is dropped: nobody is writing the
    /// file, so it may be repaired or deleted.
    Free(File),
    /// A live recorder holds the file, or has just claimed it.
    InUse,
    /// Gone, or no longer a regular file (a symlink or folder put there since it was listed).
    Gone,
}

/// Takes the exclusive lock of the file at `path`, without following a symlink and without
/// blocking should it have become a FIFO.
///
/// # Errors
///
/// Opening the file or testing its lock fails for another reason than the file being gone; a
/// caller must then treat the file as in use.
pub fn take(path: &Path) -> io::Result<Taken> {
    let file = match open_no_follow(path) {
        Ok(file) => file,
        Err(error) if is_gone(&error) => return Ok(Taken::Gone),
        Err(error) => return Err(error),
    };
    let metadata = file.metadata()?;
    if !metadata.is_file() {
        return Ok(Taken::Gone);
    }
    if is_just_claimed(&metadata) {
        return Ok(Taken::InUse);
    }
    match file.try_lock() {
        Ok(()) => Ok(Taken::Free(file)),
        Err(TryLockError::WouldBlock) => Ok(Taken::InUse),
        Err(TryLockError::Error(error)) => Err(error),
    }
}

/// Removes `path` if it is a regular file; a file already gone is fine, and anything else (a
/// symlink put there since, a folder) is left alone.
///
/// # Errors
///
/// The file is there and cannot be removed.
pub fn remove_regular_file(path: &Path) -> io::Result<()> {
    if !path.symlink_metadata().is_ok_and(|metadata| metadata.is_file()) {
        return Ok(());
    }
    match std::fs::remove_file(path) {
        Err(error) if error.kind() != io::ErrorKind::NotFound => {
            Err(io::Error::new(error.kind(), format!("cannot delete {}: {error}", path.display())))
        }
        _ => Ok(()),
    }
}

/// Whether a file is empty and younger than [`MIN_AGE_OF_EMPTY`]; a time in the future (clock set
/// back) counts as new.
pub fn is_just_claimed(metadata: &Metadata) -> bool {
    let age = metadata.modified().ok().and_then(|modified| SystemTime::now().duration_since(modified).ok());
    metadata.len() == 0 && age.is_none_or(|age| age < MIN_AGE_OF_EMPTY)
}

/// Opens `path` for reading without following a symlink put there since it was listed, and
/// without blocking should it be a FIFO.
///
/// # Errors
///
/// The file cannot be opened (`ELOOP` for a symlink).
pub fn open_no_follow(path: &Path) -> io::Result<File> {
    let mut options = File::options();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK);
    }
    options.open(path)
}

/// A file that vanished, or a symlink (`O_NOFOLLOW` gives `ELOOP`): nothing of ours is there.
fn is_gone(error: &io::Error) -> bool {
    #[cfg(unix)]
    if error.raw_os_error() == Some(libc::ELOOP) {
        return true;
    }
    error.kind() == io::ErrorKind::NotFound
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::testing::{age, temp_dir};

    #[test]
    fn collisions_get_numbered_suffixes() {
        let dir = temp_dir("claim-suffix");
        let first = claim_path(&dir, "s_20240102T030405", "mp4").unwrap();
        let second = claim_path(&dir, "s_20240102T030405", "mp4").unwrap();
        let third = claim_path(&dir, "s_20240102T030405", "mp4").unwrap();
        assert_eq!(first.file_name().unwrap(), "s_20240102T030405.mp4");
        assert_eq!(second.file_name().unwrap(), "s_20240102T030405-1.mp4");
        assert_eq!(third.file_name().unwrap(), "s_20240102T030405-2.mp4");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_video_name_whose_side_file_exists_is_skipped_so_no_other_file_is_overwritten() {
        let dir = temp_dir("claim-side");
        std::fs::write(dir.join("s.frames.csv"), b"someone else's table").unwrap();
        std::fs::write(dir.join("s-1.detections.jsonl"), b"{}").unwrap();
        let claimed = claim_file(&dir, "s", "mp4").unwrap();
        assert_eq!(claimed.path.file_name().unwrap(), "s-2.mp4");
        assert_eq!(std::fs::read(dir.join("s.frames.csv")).unwrap(), b"someone else's table");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_claimed_file_is_in_use_until_its_lock_is_dropped() {
        let dir = temp_dir("claim-lock");
        let claimed = claim_file(&dir, "s", "mp4").unwrap();
        age(&claimed.path, 60);
        assert!(matches!(take(&claimed.path).unwrap(), Taken::InUse));
        let path = claimed.path.clone();
        drop(claimed);
        let Taken::Free(held) = take(&path).unwrap() else { panic!("the lock is free once dropped") };
        assert!(matches!(take(&path).unwrap(), Taken::InUse), "taken locks exclude each other");
        drop(held);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_fresh_empty_file_counts_as_claimed_and_an_old_one_does_not() {
        let dir = temp_dir("claim-fresh");
        let path = dir.join("fresh.mp4");
        std::fs::write(&path, b"").unwrap();
        assert!(matches!(take(&path).unwrap(), Taken::InUse));
        age(&path, 60);
        assert!(matches!(take(&path).unwrap(), Taken::Free(_)));
        assert!(matches!(take(&dir.join("missing.mp4")).unwrap(), Taken::Gone));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn symlinks_and_folders_are_gone_not_followed() {
        let dir = temp_dir("claim-symlink");
        let target = dir.join("target.mp4");
        std::fs::write(&target, b"data").unwrap();
        std::os::unix::fs::symlink(&target, dir.join("link.mp4")).unwrap();
        std::fs::create_dir(dir.join("folder.mp4")).unwrap();
        assert!(matches!(take(&dir.join("link.mp4")).unwrap(), Taken::Gone));
        assert!(matches!(take(&dir.join("folder.mp4")).unwrap(), Taken::Gone));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
