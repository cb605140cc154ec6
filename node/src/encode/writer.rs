//! One video file with its own encoder (the session path), the settings and errors every
//! encoder and file share, and the encoder probe. Created and used on one worker thread
//! (swscale contexts are not `Send`).

use std::path::{Path, PathBuf};

use ffmpeg_next as ff;

use super::{
    Container, EncoderKind,
    muxer::PacketMuxer,
    quality::Quality,
    stream::{EncodedPacket, StreamEncoder, open_encoder},
};
use crate::{
    durability::SyncStats,
    frame::{Frame, FrameFormat},
    timing::{FrameRate, TimeBase},
};

/// Size of the throwaway picture used to probe whether an encoder really opens. NVENC's minimum
/// is 145x49 on some GPUs; 256x256 suits every encoder.
const PROBE_SIZE: u32 = 256;

/// Everything an encoder needs besides the picture size.
#[derive(Debug, Clone)]
pub struct EncoderSettings {
    /// Output container.
    pub container: Container,
    /// Preset, rate control, GOP.
    pub quality: Quality,
    /// Nominal frame rate (H.264 level, stream rate).
    pub fps: FrameRate,
    /// Time base of the PTS values handed to [`VideoWriter::write`].
    pub time_base: TimeBase,
    /// Whether completed fragments are `fdatasync`ed in the background.
    pub fsync: bool,
}

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
    /// The encoder that produced it.
    pub encoder: EncoderKind,
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

/// Initializes FFmpeg once per process and keeps its own logging to real problems.
pub fn init_ffmpeg() -> Result<(), ff::Error> {
    ff::init()?;
    ff::util::log::set_level(ff::util::log::Level::Error);
    Ok(())
}

/// Opens (and drops) a small encoder of `kind`: "compiled in" is not "usable".
pub fn probe_encoder(kind: EncoderKind, settings: &EncoderSettings) -> Result<(), EncodeError> {
    // A failed probe is expected on machines without a GPU and is reported once by the caller;
    // FFmpeg's own "Cannot load libcuda.so.1" line would repeat at every session start.
    ff::util::log::set_level(ff::util::log::Level::Fatal);
    let probe = open_encoder(kind, PROBE_SIZE, PROBE_SIZE, settings).map(drop);
    ff::util::log::set_level(ff::util::log::Level::Error);
    probe
}

/// A file with its own encoder, for one frame format: feed frames, then
/// [`finish`](Self::finish) it.
pub struct VideoWriter {
    stream: StreamEncoder,
    muxer: PacketMuxer,
    packets: Vec<EncodedPacket>,
}

impl VideoWriter {
    /// Opens an encoder for `format` (first working candidate) and the file at `path`.
    /// Returns the writer and the reasons earlier candidates were passed over.
    pub fn create(
        path: &Path,
        format: FrameFormat,
        candidates: &[EncoderKind],
        settings: &EncoderSettings,
        frame_duration: i64,
        tags: &[(&str, String)],
    ) -> Result<(Self, Vec<EncodeError>), EncodeError> {
        let (stream, passed_over) = StreamEncoder::open(format, candidates, settings, frame_duration)?;
        let muxer = PacketMuxer::create(path, &stream, settings, tags)?;
        Ok((Self { stream, muxer, packets: Vec::new() }, passed_over))
    }

    /// The file's size on disk now (what the muxer has flushed).
    pub fn bytes_on_disk(&self) -> u64 {
        self.muxer.bytes_on_disk()
    }

    /// The encoder that opened.
    pub fn encoder_kind(&self) -> EncoderKind {
        self.stream.kind()
    }

    /// Encodes one frame at `pts` (encoder time base, strictly increasing); returns the bytes
    /// of the packets that came out.
    pub fn write(&mut self, frame: &Frame, pts: i64) -> Result<u64, EncodeError> {
        self.stream.encode(frame, pts, &mut self.packets).map_err(|e| e.in_file(self.muxer.path()))?;
        let bytes = self.packets.iter().map(|p| p.size() as u64).sum();
        self.mux_pending().map(|()| bytes)
    }

    /// Flushes the encoder, finishes the file (see [`PacketMuxer::finish`]) and reports what it
    /// holds.
    pub fn finish(mut self) -> Result<WrittenFile, EncodeError> {
        let flushed = self.stream.flush(&mut self.packets).map_err(|e| e.in_file(self.muxer.path()));
        let failure = flushed.and_then(|()| self.mux_pending()).err();
        self.muxer.finish(failure, self.stream.kind(), self.stream.delay_frames())
    }

    fn mux_pending(&mut self) -> Result<(), EncodeError> {
        for packet in self.packets.drain(..) {
            self.muxer.write(&packet)?;
        }
        Ok(())
    }
}
