//! Why encoding could not start or go on: the one error type of encoders and muxers, and what a
//! finished file holds.

use std::path::{Path, PathBuf};

use super::EncoderKind;
use crate::storage::durability::SyncStats;

/// Why encoding could not start or go on.
#[derive(Debug, Clone, thiserror::Error)]
pub enum EncodeError {
    /// FFmpeg was built without this encoder.
    #[error("encoder {encoder} is not in this FFmpeg build: {hint}")]
    EncoderMissing {
        /// FFmpeg encoder name.
        encoder: &'static str,
        /// What to install.
        hint: &'static str,
    },
    /// The encoder exists but does not open (no GPU, odd settings, session limit).
    #[error("encoder {encoder} does not open ({reason}): {hint}")]
    EncoderOpen {
        /// FFmpeg encoder name.
        encoder: &'static str,
        /// FFmpeg's error.
        reason: String,
        /// What to do about it.
        hint: &'static str,
    },
    /// The file cannot be created or written.
    #[error("cannot write {path}: {reason}")]
    Output {
        /// The file.
        path: PathBuf,
        /// FFmpeg's or the OS's error.
        reason: String,
    },
    /// A frame could not be converted or encoded.
    #[error("encoding {path} failed: {reason}")]
    Encode {
        /// The file.
        path: PathBuf,
        /// FFmpeg's error.
        reason: String,
    },
    /// A bug panicked while recording; the file keeps its completed fragments.
    #[error(
        "the recorder panicked while writing this file ({reason}); it keeps its completed fragments. Please report this bug"
    )]
    Panic {
        /// The panic message.
        reason: String,
    },
}

impl EncodeError {
    /// The same error naming `path` (encoder errors do not know their file).
    pub fn in_file(self, path: &Path) -> Self {
        match self {
            Self::Encode { reason, .. } => Self::Encode { path: path.to_owned(), reason },
            other => other,
        }
    }

    /// What went wrong, without the advice: for logs where the fallback already is the advice.
    pub fn reason(&self) -> String {
        match self {
            Self::EncoderMissing { encoder, .. } => format!("{encoder} is not in this FFmpeg build"),
            Self::EncoderOpen { encoder, reason, .. } => format!("{encoder} does not open ({reason})"),
            Self::Output { path, reason } => format!("cannot write {}: {reason}", path.display()),
            Self::Encode { path, reason } => format!("encoding {} failed: {reason}", path.display()),
            Self::Panic { reason } => format!("the recorder panicked: {reason}"),
        }
    }
}

/// What a finished file holds.
#[derive(Debug, Clone, PartialEq)]
pub struct WrittenFile {
    /// Where it is.
    pub path: PathBuf,
    /// The encoder that produced it; `None` for images stored as they came.
    pub encoder: Option<EncoderKind>,
    /// Encoded packets (one per frame).
    pub packets: u64,
    /// File size in bytes.
    pub bytes: u64,
    /// Whether the MP4 got its complete index (right duration in every player); `false` for
    /// other containers, or when indexing failed and the file stayed fragmented (it still plays).
    pub indexed: bool,
    /// Background syncs of this file.
    pub sync: SyncStats,
    /// Most frames the encoder held at once: its delay, part of what a crash loses.
    pub encoder_delay_frames: u64,
}
