//! Encoded packets into a file: the muxer, the background sync of each fragment, and what
//! happens at the end: a hybrid MP4 index after a clean finish, a trim to the last complete
//! fragment after a failed write.

use std::{
    fs::{File, OpenOptions},
    path::{Path, PathBuf},
};

use ffmpeg_next::{self as ff, Dictionary, Rational, codec, format};

use super::{
    EncodeError, EncoderKind, EncoderSettings, WrittenFile,
    passthrough::CopyStream,
    stream::{EncodedPacket, StreamEncoder},
};
use crate::{
    fmp4,
    storage::durability::{AfterSync, FragmentSyncer, SideFiles},
};

/// The one stream of a file: an encoder's packets, or images stored as they came.
#[derive(Clone, Copy)]
pub enum MuxedStream<'a> {
    /// Packets of an encoder.
    Encoded(&'a StreamEncoder),
    /// JPEGs copied as they came (`COMPRESSED=copy`).
    Copied(&'a CopyStream),
}

impl MuxedStream<'_> {
    /// The codec context that describes the stream to the muxer.
    fn context(&self) -> &codec::Context {
        match self {
            Self::Encoded(stream) => stream.context().as_ref(),
            Self::Copied(stream) => stream.context(),
        }
    }

    /// The time base of its packets' timestamps.
    fn time_base(&self) -> Rational {
        match self {
            Self::Encoded(stream) => stream.time_base(),
            Self::Copied(stream) => stream.time_base(),
        }
    }
}

/// An open output file taking the packets of one [`MuxedStream`].
pub struct PacketMuxer {
    path: PathBuf,
    output: format::context::Output,
    stream_index: usize,
    encoder_time_base: Rational,
    stream_time_base: Rational,
    /// PTS of the file's first packet in the encoder's time base: the file starts at 0.
    first_pts: Option<i64>,
    packets: u64,
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
    /// Starts syncing `path`; an MP4 (`indexable`) also gets its header durations kept up to date.
    fn start(path: &Path, indexable: bool) -> std::io::Result<Self> {
        let after_sync = if indexable { Some(header_durations(path)?) } else { None };
        Ok(Self { syncer: FragmentSyncer::start(path, after_sync)?, file: File::open(path)?, synced_len: 0 })
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

impl PacketMuxer {
    /// Creates the file at `path` for `stream`'s packets, with container metadata `tags`.
    pub fn create(
        path: &Path,
        stream: MuxedStream<'_>,
        settings: &EncoderSettings,
        tags: &[(&str, String)],
    ) -> Result<Self, EncodeError> {
        let output_error = |e: ff::Error| EncodeError::Output { path: path.to_owned(), reason: e.to_string() };
        let mut output = format::output_as(path, settings.container.muxer()).map_err(output_error)?;
        let encoder_time_base = stream.time_base();
        let stream_index = {
            let mut out_stream = output.add_stream_with(stream.context()).map_err(output_error)?;
            out_stream.set_time_base(encoder_time_base);
            let frame_timestamps = settings.time_base == settings.fps.frame_time_base();
            if settings.container.states_frame_rate(frame_timestamps) {
                let rate = Rational::new(settings.fps.num as i32, settings.fps.den as i32);
                out_stream.set_avg_frame_rate(rate);
                out_stream.set_rate(rate);
            }
            out_stream.index()
        };
        output.set_metadata(tags.iter().map(|(key, value)| ((*key).to_owned(), c_string_safe(value))).collect());
        let mut options = settings.container.header_options();
        if let MuxedStream::Copied(_) = stream {
            options.extend(CopyStream::header_options(settings.container));
        }
        let options: Dictionary = options.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
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
            true => Some(Durability::start(path, settings.container.indexable()).map_err(|e| EncodeError::Output {
                path: path.to_owned(),
                reason: format!("cannot start syncing it to disk: {e}"),
            })?),
            false => None,
        };
        Ok(Self {
            path: path.to_owned(),
            output,
            stream_index,
            encoder_time_base,
            stream_time_base,
            first_pts: None,
            packets: 0,
            indexable: settings.container.indexable(),
            durability,
        })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file time of a packet with encoder `pts`, in seconds (the first packet is at 0).
    pub fn file_secs(&self, pts: i64) -> f64 {
        let shifted = pts - self.first_pts.unwrap_or(pts);
        shifted as f64 * f64::from(self.encoder_time_base.numerator()) / f64::from(self.encoder_time_base.denominator())
    }

    /// The side files synced with this file, before it, after each fragment; `None` when
    /// fragments are not synced (`FSYNC=false`).
    pub fn side_files(&self) -> Option<SideFiles> {
        self.durability.as_ref().map(|d| d.syncer.side_files())
    }

    /// The file's size on disk now (what the muxer has flushed).
    pub fn bytes_on_disk(&self) -> u64 {
        std::fs::metadata(&self.path).map_or(0, |m| m.len())
    }

    /// Writes one packet; the first one written sets the file's time 0.
    pub fn write(&mut self, packet: &EncodedPacket) -> Result<(), EncodeError> {
        let first = *self.first_pts.get_or_insert(packet.pts());
        let mut packet = packet.shared();
        // No B-frames: decode order is presentation order, so dts follows pts.
        packet.set_pts(packet.pts().map(|pts| pts - first));
        packet.set_dts(packet.dts().map(|dts| dts - first));
        packet.set_stream(self.stream_index);
        packet.rescale_ts(self.encoder_time_base, self.stream_time_base);
        packet
            .write_interleaved(&mut self.output)
            .map_err(|e| EncodeError::Output { path: self.path.clone(), reason: e.to_string() })?;
        self.packets += 1;
        if let Some(durability) = &mut self.durability {
            durability.after_write();
        }
        Ok(())
    }

    /// Writes the trailer, indexes an MP4 for players that need it, syncs the file to disk and
    /// reports what it holds. `failure` (an earlier write error) or a failing trailer gets the
    /// file trimmed back to its last complete fragment, so what was kept decodes without errors.
    pub fn finish(
        mut self,
        failure: Option<EncodeError>,
        encoder: Option<EncoderKind>,
        encoder_delay_frames: u64,
    ) -> Result<WrittenFile, EncodeError> {
        let trailer = match failure {
            Some(error) => Err(error),
            None => self
                .output
                .write_trailer()
                .map_err(|e| EncodeError::Output { path: self.path.clone(), reason: e.to_string() }),
        };
        let Self { path, output, packets, indexable, durability, .. } = self;
        // Closing the output flushes and closes the file; only then may it be rewritten.
        drop(output);
        let sync = durability.map(|d| d.syncer.finish()).unwrap_or_default();
        if let Err(error) = trailer {
            return Err(salvage(&path, indexable, error));
        }
        let indexed = indexable && index_mp4(&path);
        sync_to_disk(&path);
        let bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        Ok(WrittenFile { path, encoder, packets, bytes, indexed, sync, encoder_delay_frames })
    }
}

/// After each sync, states the length of the synced fragments in the MP4's header, so a file a
/// crash cuts short shows its true length in every player (see [`fmp4::LiveDurations`]). The
/// first failure is logged and ends the updates: the header then keeps an earlier length.
fn header_durations(path: &Path) -> std::io::Result<AfterSync> {
    let file = OpenOptions::new().read(true).write(true).open(path)?;
    let path = path.to_owned();
    let mut durations = Some(fmp4::LiveDurations::new());
    Ok(Box::new(move |synced_len| {
        if let Some(Err(error)) = durations.as_mut().map(|d| d.update(&file, synced_len)) {
            durations = None;
            tracing::warn!(path = %path.display(), "stopped stating the length in the file's header (a crash may leave a wrong length until the next start): {error}");
        }
    }))
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::{
        encode::{Container, Quality, RateControl, init_ffmpeg},
        frame::{Frame, FrameFormat, PixelEncoding},
        timing::{FrameRate, PtsClock, TimestampMode},
    };

    /// Matroska's element ids: a track's DefaultDuration, and the first Cluster (the media).
    const DEFAULT_DURATION_ID: [u8; 3] = [0x23, 0xE3, 0x83];
    const CLUSTER_ID: [u8; 4] = [0x1F, 0x43, 0xB6, 0x75];

    /// Records ten frames sent every 66.0 ms under FPS=15 into an MKV and returns the bytes of
    /// its header (everything before the first Cluster).
    fn mkv_header(name: &str, timestamps: TimestampMode) -> Vec<u8> {
        init_ffmpeg().unwrap();
        let fps = FrameRate { num: 15, den: 1 };
        let mut clock = PtsClock::new(timestamps, fps, Container::Mkv.variable_rate());
        let settings = EncoderSettings {
            container: Container::Mkv,
            quality: Quality::new("ultrafast", RateControl::Crf(30), 30, fps.as_f64()),
            fps,
            time_base: clock.time_base(),
            fsync: false,
        };
        let format = FrameFormat { encoding: PixelEncoding::Mono8, width: 64, height: 48 };
        let (mut stream, _) =
            StreamEncoder::open(format, &[EncoderKind::Libx264], &settings, clock.frame_duration()).unwrap();
        let path = std::env::temp_dir().join(format!("muxer-{name}-{}.mkv", std::process::id()));
        let mut muxer = PacketMuxer::create(&path, MuxedStream::Encoded(&stream), &settings, &[]).unwrap();
        let mut packets = Vec::new();
        for n in 0..10_u64 {
            let sent_nanos = 1_000_000_000 + n * 66_000_000;
            let data = arrow::buffer::Buffer::from_vec(vec![(n * 20) as u8; format.byte_len()]);
            let frame = Frame { format, sent_nanos, data, ids: Arc::default() };
            stream.encode(&frame, clock.next_pts(sent_nanos), &mut packets).unwrap();
        }
        stream.flush(&mut packets).unwrap();
        packets.iter().for_each(|packet| muxer.write(packet).unwrap());
        let written = muxer.finish(None, Some(EncoderKind::Libx264), 0).unwrap();
        assert_eq!(written.packets, 10);
        let bytes = std::fs::read(&path).unwrap();
        let _ = std::fs::remove_file(&path);
        let header_end = bytes.windows(4).position(|w| w == CLUSTER_ID).unwrap();
        bytes[..header_end].to_vec()
    }

    fn has_default_duration(header: &[u8]) -> bool {
        header.windows(3).any(|w| w == DEFAULT_DURATION_ID)
    }

    #[test]
    fn an_mkv_of_source_timestamps_claims_no_frame_rate() {
        assert!(!has_default_duration(&mkv_header("source", TimestampMode::Source)));
    }

    #[test]
    fn an_mkv_of_frame_counted_timestamps_states_its_nominal_rate() {
        let header = mkv_header("frame", TimestampMode::Frame);
        let at = header.windows(3).position(|w| w == DEFAULT_DURATION_ID).unwrap();
        // An EBML unsigned integer: one size byte (0x80 | n), then n big-endian bytes.
        let size = usize::from(header[at + 3] & 0x7f);
        let nanos = header[at + 4..at + 4 + size].iter().fold(0_u64, |n, b| n << 8 | u64::from(*b));
        assert_eq!(nanos, 66_666_666, "1/15 s");
    }
}
