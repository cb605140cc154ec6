//! Pure-Rust knowledge of the ISO-BMFF box structure of the fragmented MP4 files the recorder
//! writes (FFmpeg movenc with `movflags` [`FRAGMENTED_MOVFLAGS`]).
//!
//! Three jobs, and one reading:
//!
//! - [`LiveDurations`]: while the file is written, keep the durations its header states (`mvhd`,
//!   `tkhd`, `mdhd`) up to date in place, covering only fragments already synced to disk, so a
//!   file cut short by a kill or a power cut shows its true length in every player.
//! - [`trim_to_last_fragment`]: after a failed write (disk full) or a crash, cut the file after
//!   its last complete fragment whose samples are intact, so it plays without errors.
//! - [`finalize_hybrid`]: at a clean stop, append a `moov` that indexes every sample and retire
//!   the fragment boxes, so players that only trust the `moov` (Chromium reports the first
//!   fragment's length as the duration otherwise) see the whole recording. Every intermediate
//!   state on disk plays in FFmpeg, so a crash in the middle loses nothing.
//! - [`header_tags`]: the metadata tags of the header `moov`, which tell the recorder's own
//!   files from others' (see `crate::storage::ownership`).
//!
//! The files: `boxes` (box plumbing), `moov` (the header as plain data) and `moov_writer` (the
//! stateless writer of a complete `moov`), `fragments` (the samples the fragments describe),
//! `tables` (their `stbl` index), `samples` (are a fragment's samples intact?), and one file per
//! job: `live`, `trim`, `hybrid`, `tags`.
//!
//! Nothing here trusts the bytes it reads: a corrupt file gives an error, never a panic.

mod boxes;
mod fragments;
mod hybrid;
mod live;
mod moov;
mod moov_writer;
mod samples;
mod tables;
mod tags;
#[cfg(test)]
mod test_files;
mod trim;

use std::io;

pub use hybrid::{CommitStep, HybridOutcome, finalize_hybrid, finalize_hybrid_with};
pub use live::LiveDurations;
pub use tags::header_tags;
pub use trim::{FragmentsEnd, TrimOutcome, complete_fragments_end, trim_to_last_fragment};

/// The `movflags` that make FFmpeg's MP4 muxer write the fragmented MP4 this module handles: a
/// fragment at least at every keyframe (`frag_keyframe`; `frag_duration` cuts shorter ones), an
/// initial `moov` without samples (`empty_moov`), sample offsets relative to each `moof`
/// (`default_base_moof`). What survives a crash is every complete fragment.
pub const FRAGMENTED_MOVFLAGS: &str = "+frag_keyframe+empty_moov+default_base_moof";

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
