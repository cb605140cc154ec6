//! One video file: an opened encoder (with fallback through the candidates), the muxer, and the
//! packet plumbing. Created and used on one worker thread (swscale contexts are not `Send`).

use std::{
    fs::File,
    path::{Path, PathBuf},
};

use ffmpeg_next::{self as ff, Codec, Dictionary, Packet, Rational, codec, encoder, format};

use super::{
    Container, EncoderKind,
    convert::{Converter, ENCODER_PIXEL},
};
use super::{
    colour::ColourMatrix,
    quality::{Quality, RateControl},
};
use crate::{
    durability::{FragmentSyncer, SyncStats},
    fmp4,
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

/// Opens the first candidate that works; returns it with the reasons the earlier ones failed.
fn open_first(
    candidates: &[EncoderKind],
    width: u32,
    height: u32,
    settings: &EncoderSettings,
) -> Result<(OpenedEncoder, EncoderKind, Vec<EncodeError>), EncodeError> {
    let mut failures = Vec::new();
    for &kind in candidates {
        match open_encoder(kind, width, height, settings) {
            Ok(opened) => return Ok((opened, kind, failures)),
            Err(error) => failures.push(error),
        }
    }
    Err(failures.pop().unwrap_or(EncodeError::EncoderOpen {
        encoder: "none",
        reason: "no encoder candidates".into(),
        hint: "set CODEC",
    }))
}

/// An opened encoder and the FFmpeg codec it belongs to (the muxer's stream needs both).
type OpenedEncoder = (encoder::Video, Codec);

fn open_encoder(
    kind: EncoderKind,
    width: u32,
    height: u32,
    settings: &EncoderSettings,
) -> Result<OpenedEncoder, EncodeError> {
    let name = kind.ffmpeg_name();
    let codec =
        encoder::find_by_name(name).ok_or(EncodeError::EncoderMissing { encoder: name, hint: kind.install_hint() })?;
    let open_error =
        |e: ff::Error| EncodeError::EncoderOpen { encoder: name, reason: e.to_string(), hint: kind.install_hint() };
    let mut video = codec::context::Context::new_with_codec(codec).encoder().video().map_err(open_error)?;
    video.set_width(width);
    video.set_height(height);
    video.set_format(ENCODER_PIXEL);
    video.set_time_base(rational(settings.time_base));
    // Without a frame rate x264 derives the H.264 level from the microsecond time base (level 6.2).
    video.set_frame_rate(Some(Rational::new(settings.fps.num as i32, settings.fps.den as i32)));
    video.set_gop(settings.quality.gop_frames);
    ColourMatrix::for_size(width, height).tag_encoder(&mut video);
    // No B-frames: lower latency, less lost on a crash, and Foxglove's player refuses them.
    video.set_max_b_frames(0);
    if let RateControl::Bitrate(bps) = settings.quality.rate {
        video.set_bit_rate(bps as usize);
        video.set_max_bit_rate(bps as usize);
    }
    if settings.container.global_header() {
        video.set_flags(codec::Flags::GLOBAL_HEADER);
    }
    let options: Dictionary = kind.options(&settings.quality).into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
    video.open_with(options).map(|opened| (opened, codec)).map_err(open_error)
}

fn rational(time_base: TimeBase) -> Rational {
    Rational::new(time_base.num, time_base.den)
}

/// An open video file: feed frames of one format, then [`finish`](Self::finish) it.
pub struct VideoWriter {
    path: PathBuf,
    output: format::context::Output,
    encoder: encoder::Video,
    kind: EncoderKind,
    converter: Converter,
    stream_index: usize,
    encoder_time_base: Rational,
    stream_time_base: Rational,
    frame_duration: i64,
    frames: u64,
    packets: u64,
    encoder_delay_frames: u64,
    indexable: bool,
    durability: Option<Durability>,
}

/// The background sync of a file and what tells it a fragment completed: with `flush_packets`,
/// a fragmented MP4 grows only when the muxer writes a whole fragment.
struct Durability {
    syncer: FragmentSyncer,
    file: File,
    synced_len: u64,
}

impl Durability {
    fn start(path: &Path) -> std::io::Result<Self> {
        Ok(Self { syncer: FragmentSyncer::start(path)?, file: File::open(path)?, synced_len: 0 })
    }

    /// Signals the syncer when the file grew since the last signal.
    fn after_write(&mut self) {
        let len = self.file.metadata().map_or(0, |m| m.len());
        if len > self.synced_len {
            self.synced_len = len;
            self.syncer.fragment_written();
        }
    }
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
        let output_error = |e: ff::Error| EncodeError::Output { path: path.to_owned(), reason: e.to_string() };
        let converter =
            Converter::new(format).map_err(|e| EncodeError::Encode { path: path.to_owned(), reason: e.to_string() })?;
        let (width, height) = converter.encoded_size();
        let ((encoder, codec), kind, passed_over) = open_first(candidates, width, height, settings)?;
        let mut output = format::output_as(path, settings.container.muxer()).map_err(output_error)?;
        let encoder_time_base = rational(settings.time_base);
        let stream_index = {
            let mut stream = output.add_stream(codec).map_err(output_error)?;
            stream.set_parameters(&encoder);
            stream.set_time_base(encoder_time_base);
            let rate = Rational::new(settings.fps.num as i32, settings.fps.den as i32);
            stream.set_avg_frame_rate(rate);
            stream.set_rate(rate);
            stream.index()
        };
        output.set_metadata(tags.iter().map(|(key, value)| ((*key).to_owned(), c_string_safe(value))).collect());
        let options: Dictionary =
            settings.container.header_options().into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
        let unused: Vec<String> = {
            let left = output.write_header_with(options).map_err(output_error)?;
            left.iter().map(|(key, _)| key.to_owned()).collect()
        };
        if !unused.is_empty() {
            tracing::warn!(path = %path.display(), ?unused, "muxer ignored options");
        }
        // The muxer may change the stream's time base while writing the header (MP4 does for
        // coarse bases), so read it back and rescale every packet into it.
        let stream_time_base = output.stream(stream_index).map(|s| s.time_base()).unwrap_or(encoder_time_base);
        let durability = match settings.fsync {
            true => Some(Durability::start(path).map_err(|e| EncodeError::Output {
                path: path.to_owned(),
                reason: format!("cannot start syncing it to disk: {e}"),
            })?),
            false => None,
        };
        let writer = Self {
            path: path.to_owned(),
            output,
            encoder,
            kind,
            converter,
            stream_index,
            encoder_time_base,
            stream_time_base,
            frame_duration,
            frames: 0,
            packets: 0,
            encoder_delay_frames: 0,
            indexable: settings.container.indexable(),
            durability,
        };
        Ok((writer, passed_over))
    }

    /// The file's size on disk now (what the muxer has flushed).
    pub fn bytes_on_disk(&self) -> u64 {
        std::fs::metadata(&self.path).map_or(0, |m| m.len())
    }

    /// The encoder that opened.
    pub fn encoder_kind(&self) -> EncoderKind {
        self.kind
    }

    /// Encodes one frame at `pts` (encoder time base, strictly increasing).
    pub fn write(&mut self, frame: &Frame, pts: i64) -> Result<(), EncodeError> {
        let path = &self.path;
        let encode_error = |e: ff::Error| EncodeError::Encode { path: path.clone(), reason: e.to_string() };
        let picture = self.converter.convert(frame, pts).map_err(encode_error)?;
        self.encoder.send_frame(picture).map_err(encode_error)?;
        self.frames += 1;
        self.encoder_delay_frames = self.encoder_delay_frames.max(self.frames - self.packets);
        self.drain_packets()
    }

    /// Flushes the encoder, writes the trailer, indexes an MP4 for players that need it, syncs the
    /// file to disk and reports what it holds. When writing failed (a full disk), an MP4 is
    /// trimmed back to its last complete fragment so that what was kept decodes without errors.
    pub fn finish(mut self) -> Result<WrittenFile, EncodeError> {
        let flushed = self.flush_and_write_trailer();
        let Self { path, output, kind, packets, encoder_delay_frames, indexable, durability, .. } = self;
        // Closing the output flushes and closes the file; only then may it be rewritten.
        drop(output);
        let sync = durability.map(|d| d.syncer.finish()).unwrap_or_default();
        if let Err(error) = flushed {
            return Err(salvage(&path, indexable, error));
        }
        let indexed = indexable && index_mp4(&path);
        sync_to_disk(&path);
        let bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        Ok(WrittenFile { path, encoder: kind, packets, bytes, indexed, sync, encoder_delay_frames })
    }

    fn flush_and_write_trailer(&mut self) -> Result<(), EncodeError> {
        self.encoder.send_eof().map_err(|e| self.encode_error(e))?;
        self.drain_packets()?;
        self.output.write_trailer().map_err(|e| EncodeError::Output { path: self.path.clone(), reason: e.to_string() })
    }

    fn drain_packets(&mut self) -> Result<(), EncodeError> {
        let mut packet = Packet::empty();
        loop {
            match self.encoder.receive_packet(&mut packet) {
                Ok(()) => {
                    packet.set_stream(self.stream_index);
                    // Encoders leave the duration at 0; the muxer needs it for the last sample.
                    packet.set_duration(self.frame_duration);
                    packet.rescale_ts(self.encoder_time_base, self.stream_time_base);
                    packet
                        .write_interleaved(&mut self.output)
                        .map_err(|e| EncodeError::Output { path: self.path.clone(), reason: e.to_string() })?;
                    self.packets += 1;
                    if let Some(durability) = &mut self.durability {
                        durability.after_write();
                    }
                }
                Err(ff::Error::Other { errno: ff::error::EAGAIN }) | Err(ff::Error::Eof) => return Ok(()),
                Err(e) => return Err(self.encode_error(e)),
            }
        }
    }

    fn encode_error(&self, error: ff::Error) -> EncodeError {
        EncodeError::Encode { path: self.path.clone(), reason: error.to_string() }
    }
}

/// FFmpeg keeps metadata as C strings: a NUL byte would cut the value (and panics in
/// `Dictionary`), so it becomes U+FFFD.
fn c_string_safe(value: &str) -> String {
    value.replace('\0', "\u{fffd}")
}

/// Turns a cleanly finished fragmented MP4 into one with a complete index. A failure leaves the
/// fragmented file, which plays everywhere but shows a wrong length in some browsers.
fn index_mp4(path: &Path) -> bool {
    match fmp4::finalize_hybrid(path) {
        Ok(_) => true,
        Err(error) => {
            tracing::warn!(path = %path.display(), "kept the file fragmented (it plays; some browsers show a wrong length): {error}");
            false
        }
    }
}

/// A clean stop must survive a power cut right after it, like every fragment before it.
fn sync_to_disk(path: &Path) {
    if let Err(error) = File::open(path).and_then(|file| file.sync_all()) {
        tracing::warn!(path = %path.display(), "cannot sync the finished file to disk: {error}");
    }
}

/// After a failed write: cuts an MP4 back to its last complete fragment, and says in the error
/// what was kept.
fn salvage(path: &Path, indexable: bool, error: EncodeError) -> EncodeError {
    if !indexable {
        return error;
    }
    let kept = match fmp4::trim_to_last_fragment(path) {
        Ok(trim) => {
            format!("trimmed to its last complete fragment: kept {} bytes, cut {}", trim.kept_bytes, trim.removed_bytes)
        }
        Err(trim_error) => format!("could not trim it to its last complete fragment: {trim_error}"),
    };
    match error {
        EncodeError::Output { path, reason } => EncodeError::Output { path, reason: format!("{reason}; {kept}") },
        EncodeError::Encode { path, reason } => EncodeError::Encode { path, reason: format!("{reason}; {kept}") },
        other => other,
    }
}
