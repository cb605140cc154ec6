//! One video file with its own encoder, for tools and benchmarks that encode frames straight into
//! a file (the node's workers pair a [`StreamEncoder`] with a file of their own). Created and
//! used on one thread (swscale contexts are not `Send`).

use std::path::Path;

use super::{
    EncodeError, EncoderKind, EncoderSettings, WrittenFile,
    muxer::{MuxedStream, PacketMuxer},
    stream::{EncodedPacket, StreamEncoder},
};
use crate::frame::{Frame, FrameFormat};

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
        let muxer = PacketMuxer::create(path, MuxedStream::Encoded(&stream), settings, tags)?;
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
        self.muxer.finish(failure, Some(self.stream.kind()), self.stream.delay_frames())
    }

    fn mux_pending(&mut self) -> Result<(), EncodeError> {
        for packet in self.packets.drain(..) {
            self.muxer.write(&packet)?;
        }
        Ok(())
    }
}
