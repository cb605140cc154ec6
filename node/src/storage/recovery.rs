//! Repairs what a crashed run left in `STORAGE`, once at startup, touching only the recorder's
//! own MP4s (see [`super::ownership`]): one cut off in the middle of a fragment is trimmed to its
//! last complete one, one that never got a frame is removed with its side files, and a fragmented
//! one gets the complete index a clean stop would have written, so it shows the right length in
//! every player. Files another live recorder holds are skipped (see [`super::claim`]).

use std::{
    io,
    path::{Path, PathBuf},
};

use super::{
    claim::{self, Taken},
    ownership::{Evidence, side_files},
};
use crate::fmp4::{self, Fmp4Error};

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
    /// A file without a single complete frame, removed with its side files.
    Removed,
}

/// Recovers the MP4s among `own_videos` (the recorder's own videos in STORAGE, from
/// [`super::ownership::survey`], with why); returns what happened to each file that changed, or
/// why it could not be repaired.
pub fn recover_storage(own_videos: &[(PathBuf, Evidence)]) -> Vec<(PathBuf, Evidence, Result<Recovered, String>)> {
    own_videos
        .iter()
        .filter(|(path, _)| path.extension().is_some_and(|ext| ext == "mp4"))
        .map(|(path, evidence)| (path.clone(), *evidence, recover_file(path).map_err(|e| e.to_string())))
        .filter(|(_, _, outcome)| outcome.as_ref().map_or(true, |r| *r != Recovered::Untouched))
        .collect()
}

/// Recovers one of the recorder's own MP4s unless a live recorder holds it. The caller has shown
/// the file is the recorder's own.
pub fn recover_file(path: &Path) -> io::Result<Recovered> {
    // Held until the repair is done, so no other recorder's startup repairs it at the same time.
    let _lock = match claim::take(path)? {
        Taken::Free(file) => file,
        Taken::InUse | Taken::Gone => return Ok(Recovered::Untouched),
    };
    let trimmed_bytes = match fmp4::trim_to_last_fragment(path) {
        Ok(trim) => trim.removed_bytes,
        // Not even the header is complete: the recorder died before the first frame.
        Err(error) if error.kind() == io::ErrorKind::InvalidData => return remove_recording(path),
        Err(error) => return Err(error),
    };
    match fmp4::finalize_hybrid(path) {
        Ok(_) => Ok(Recovered::Repaired { trimmed_bytes, indexed: true }),
        Err(Fmp4Error::AlreadyFinal) if trimmed_bytes == 0 => Ok(Recovered::Untouched),
        Err(Fmp4Error::AlreadyFinal) => Ok(Recovered::Repaired { trimmed_bytes, indexed: false }),
        Err(Fmp4Error::NoSamples) => remove_recording(path),
        // Still a playable fragmented file: keep it as it is.
        Err(_) if trimmed_bytes > 0 => Ok(Recovered::Repaired { trimmed_bytes, indexed: false }),
        Err(error) => Err(io::Error::other(error.to_string())),
    }
}

/// Removes a frameless video and its side files (an index holding only its header line).
fn remove_recording(video: &Path) -> io::Result<Recovered> {
    side_files(video).iter().chain([&video.to_path_buf()]).try_for_each(|path| claim::remove_regular_file(path))?;
    Ok(Recovered::Removed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{
        claim::claim_file,
        ownership::survey,
        testing::{temp_dir, write_aged},
    };

    /// The first bytes of an `ftyp` box: a header a crash cut short.
    const CUT_HEADER: &[u8] = &[0, 0, 0, 24, b'f', b't', b'y', b'p', 0, 0];
    const INDEX_HEADER: &[u8] = b"frame,pts,time_ns\n";

    #[test]
    fn an_own_file_without_a_complete_header_goes_with_its_index_and_a_foreign_one_stays() {
        let dir = temp_dir("recovery-header");
        let own = write_aged(&dir, "own.mp4", CUT_HEADER, 60);
        let index = write_aged(&dir, "own.frames.csv", INDEX_HEADER, 60);
        let foreign = write_aged(&dir, "run-7_20240101T000000.mp4", CUT_HEADER, 60);
        write_aged(&dir, "notes.txt", b"not a video", 60);
        let outcome = recover_storage(&survey(&dir).unwrap().videos);
        assert_eq!(outcome, vec![(own.clone(), Evidence::FrameIndex, Ok(Recovered::Removed))]);
        assert!(!own.exists() && !index.exists());
        assert_eq!(std::fs::read(&foreign).unwrap(), CUT_HEADER, "a foreign file is never touched");
        assert!(dir.join("notes.txt").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn files_a_live_recorder_holds_or_just_claimed_are_left_alone() {
        let dir = temp_dir("recovery-locked");
        let held = claim_file(&dir, "live", "mp4").unwrap();
        std::fs::write(&held.path, CUT_HEADER).unwrap();
        write_aged(&dir, "live.frames.csv", INDEX_HEADER, 60);
        let fresh = write_aged(&dir, "fresh.mp4", b"", 0);
        write_aged(&dir, "fresh.frames.csv", INDEX_HEADER, 0);
        let own = survey(&dir).unwrap().videos;
        assert_eq!(own.len(), 2, "{own:?}");
        assert!(recover_storage(&own).is_empty());
        assert!(held.path.exists() && fresh.exists());
        drop(held);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
