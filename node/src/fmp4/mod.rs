//! Pure-Rust knowledge of the ISO-BMFF box structure of the fragmented MP4 files the recorder
//! writes (FFmpeg movenc with `movflags=+frag_keyframe+empty_moov+default_base_moof`).
//!
//! Two jobs, both on files FFmpeg has closed:
//!
//! - [`trim_to_last_fragment`]: after a failed write (disk full), cut the file after its last
//!   complete `moof`+`mdat` fragment so it plays without errors.
//! - [`finalize_hybrid`]: at a clean stop, append a `moov` that indexes every sample and retire
//!   the fragment boxes, so players that only trust the `moov` (Chromium reports the first
//!   fragment's length as the duration otherwise) see the whole recording. Every intermediate
//!   state on disk plays in FFmpeg, so a crash in the middle loses nothing.
//!
//! Nothing here trusts the bytes it reads: a corrupt file gives an error, never a panic.

mod boxes;
mod hybrid;
mod tables;
mod trim;

use std::io;

pub use hybrid::{CommitStep, HybridOutcome, finalize_hybrid, finalize_hybrid_with};
pub use trim::{FragmentsEnd, TrimOutcome, complete_fragments_end, trim_to_last_fragment};

/// Why a fragmented MP4 could not be turned into a hybrid one. The file is left playable as
/// it was (fragmented, or in a crash-safe intermediate state); log the error and keep it.
#[derive(Debug, thiserror::Error)]
pub enum Fmp4Error {
    /// Reading or writing the file failed.
    #[error("I/O error: {0}")]
    Io(#[from] io::Error),
    /// No complete top-level `moov` box: not an MP4 file, or its header was never written.
    #[error("no moov box: not an MP4 file")]
    NoMoov,
    /// The file is already a regular MP4 (no `moof` left, `moov` without `mvex`), for instance
    /// one finalized before: nothing was changed.
    #[error("already a regular MP4 (no fragments, complete moov): nothing to do")]
    AlreadyFinal,
    /// The file has fragments but its `moov` does not announce them (no `mvex`).
    #[error("not a fragmented MP4: {0}")]
    NotFragmented(String),
    /// A fragmented MP4 without a single sample (the recording stopped before its first frame).
    #[error("fragmented MP4 without any sample")]
    NoSamples,
    /// A top-level box is truncated or not a box at all; trim the file first.
    #[error("top-level box at byte {offset} is truncated or garbage (trim the file first)")]
    Incomplete {
        /// Offset of the first byte that is not part of a complete box.
        offset: u64,
    },
    /// A box is internally inconsistent (truncated fields, sizes that do not add up).
    #[error("malformed MP4: {0}")]
    Malformed(String),
    /// A valid layout this module does not handle (several tracks, edit lists, sizes...).
    #[error("unsupported MP4 layout: {0}")]
    Unsupported(String),
}
