//! Repairs what a crashed run left in `STORAGE`, once at startup: an MP4 cut off in the middle
//! of a fragment is trimmed to its last complete one, a file that never got a frame is removed,
//! and a fragmented MP4 gets the complete index a clean stop would have written, so it shows the
//! right length in every player. Files another live recorder is writing are locked and skipped.

use std::{
    fs::{File, TryLockError},
    io,
    path::{Path, PathBuf},
    time::{Duration, SystemTime},
};

use crate::fmp4::{self, Fmp4Error};

/// Empty files this recent are left alone even when unlocked: a recorder that just created one
/// takes its lock a moment later (before writing anything). Files with content are judged by
/// their lock alone, so a recorder restarted right after a crash repairs the crash's files.
const MIN_AGE_OF_EMPTY: Duration = Duration::from_secs(2);

/// What recovery did to one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recovered {
    /// Already complete, or in use by a live recorder, or too new: untouched.
    Untouched,
    /// A crashed recording, now trimmed (by this many bytes) and indexed.
    Repaired {
        /// Bytes of the broken last fragment that were cut.
        trimmed_bytes: u64,
        /// Whether the complete index was written.
        indexed: bool,
    },
    /// A file without a single complete frame, removed.
    Removed,
}

/// Recovers every `*.mp4` directly in `storage`; returns what happened to each file that
/// changed, or why it could not be repaired.
pub fn recover_storage(storage: &Path) -> Vec<(PathBuf, Result<Recovered, String>)> {
    let Ok(entries) = std::fs::read_dir(storage) else { return Vec::new() };
    let mut mp4s: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "mp4") && path.is_file())
        .collect();
    mp4s.sort();
    mp4s.into_iter()
        .map(|path| {
            let outcome = recover_file(&path).map_err(|e| e.to_string());
            (path, outcome)
        })
        .filter(|(_, outcome)| outcome.as_ref().map_or(true, |r| *r != Recovered::Untouched))
        .collect()
}

/// Recovers one MP4 unless a live recorder holds it.
pub fn recover_file(path: &Path) -> io::Result<Recovered> {
    let file = File::open(path)?;
    let metadata = file.metadata()?;
    let age = SystemTime::now().duration_since(metadata.modified()?).unwrap_or_default();
    if metadata.len() == 0 && age < MIN_AGE_OF_EMPTY {
        return Ok(Recovered::Untouched);
    }
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => return Ok(Recovered::Untouched),
        Err(TryLockError::Error(error)) => return Err(error),
    }
    let trimmed_bytes = match fmp4::trim_to_last_fragment(path) {
        Ok(trim) => trim.removed_bytes,
        // Not even the header is complete: the recorder died before the first frame.
        Err(error) if error.kind() == io::ErrorKind::InvalidData => return remove(path),
        Err(error) => return Err(error),
    };
    match fmp4::finalize_hybrid(path) {
        Ok(_) => Ok(Recovered::Repaired { trimmed_bytes, indexed: true }),
        Err(Fmp4Error::AlreadyFinal) if trimmed_bytes == 0 => Ok(Recovered::Untouched),
        Err(Fmp4Error::AlreadyFinal) => Ok(Recovered::Repaired { trimmed_bytes, indexed: false }),
        Err(Fmp4Error::NoSamples) => remove(path),
        // Still a playable fragmented file: keep it as it is.
        Err(_) if trimmed_bytes > 0 => Ok(Recovered::Repaired { trimmed_bytes, indexed: false }),
        Err(error) => Err(io::Error::other(error.to_string())),
    }
}

fn remove(path: &Path) -> io::Result<Recovered> {
    std::fs::remove_file(path)?;
    Ok(Recovered::Removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("recovery-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn age(path: &Path) {
        let old = SystemTime::now() - Duration::from_secs(60);
        File::options().write(true).open(path).unwrap().set_modified(old).unwrap();
    }

    #[test]
    fn a_file_without_a_complete_header_is_removed_and_other_files_are_ignored() {
        let dir = temp_dir("header");
        let broken = dir.join("broken.mp4");
        std::fs::write(&broken, [0, 0, 0, 24, b'f', b't', b'y', b'p', 0, 0]).unwrap();
        age(&broken);
        std::fs::write(dir.join("notes.txt"), b"not a video").unwrap();
        let outcome = recover_storage(&dir);
        assert_eq!(outcome, vec![(broken.clone(), Ok(Recovered::Removed))]);
        assert!(!broken.exists() && dir.join("notes.txt").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn locked_files_and_fresh_empty_ones_are_left_alone() {
        let dir = temp_dir("locked");
        let locked = dir.join("live.mp4");
        std::fs::write(&locked, b"garbage").unwrap();
        age(&locked);
        let holder = File::open(&locked).unwrap();
        holder.lock().unwrap();
        let fresh = dir.join("fresh.mp4");
        std::fs::write(&fresh, b"").unwrap();
        assert!(recover_storage(&dir).is_empty());
        assert!(locked.exists() && fresh.exists());
        drop(holder);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
