//! A camera's running encoder: frames in, each encoded packet out together with what its frame
//! was (time, identifying metadata, session), so every file writes its index rows and matches
//! its detections the same way whichever worker feeds it.

use std::{collections::BTreeMap, collections::VecDeque, sync::Arc};

use super::{
    copy::{JobFrame, StreamFormat},
    settings::FileSettings,
};
use crate::{
    encode::{CopyStream, EncodeError, EncodedPacket, EncoderKind, EncoderSettings, MuxedStream, StreamEncoder},
    session::SessionRef,
    timing::PtsClock,
};

/// What a frame was, kept until its packet leaves the encoder.
#[derive(Debug, Clone)]
pub struct FrameInfo {
    /// When the camera sent it (Unix nanoseconds).
    pub time_ns: u64,
    /// Its identifying metadata.
    pub ids: Arc<BTreeMap<String, String>>,
    /// The session it was bound to, if any.
    pub session: Option<SessionRef>,
}

/// An encoded packet and the frame it holds.
pub type EncodedFrame = (EncodedPacket, FrameInfo);

/// Where packets come from: an encoder, or JPEGs copied as they came.
enum Packets {
    Encoder(StreamEncoder),
    Copy(CopyStream),
}

/// An open encoder (or copy stream) for one stream format.
pub struct Encoding {
    packets: Packets,
    format: StreamFormat,
    clock: PtsClock,
    settings: EncoderSettings,
    /// Frames sent to the encoder whose packets have not come out yet, oldest first (no
    /// B-frames: packets come out in frame order).
    pending: VecDeque<FrameInfo>,
}

impl Encoding {
    /// Opens the first candidate encoder that works for `format` (a copy stream for copied
    /// JPEGs); returns it and the reasons earlier candidates were passed over.
    pub fn open(format: StreamFormat, files: &FileSettings) -> Result<(Self, Vec<EncodeError>), EncodeError> {
        let files = files.for_format(format);
        let (clock, settings) = files.encoder_settings();
        let (packets, passed_over) = match format {
            StreamFormat::Raw(raw) => {
                let (stream, passed_over) =
                    StreamEncoder::open(raw, &files.candidates, &settings, clock.frame_duration())?;
                (Packets::Encoder(stream), passed_over)
            }
            StreamFormat::Mjpeg(header) => {
                let stream = CopyStream::open(header.width, header.height, &settings, clock.frame_duration())?;
                (Packets::Copy(stream), Vec::new())
            }
        };
        Ok((Self { packets, format, clock, settings, pending: VecDeque::new() }, passed_over))
    }

    /// The stream format it was opened for.
    pub fn format(&self) -> StreamFormat {
        self.format
    }

    /// The stream and the settings it was opened with, for a muxer.
    pub fn stream(&self) -> (MuxedStream<'_>, &EncoderSettings) {
        let stream = match &self.packets {
            Packets::Encoder(stream) => MuxedStream::Encoded(stream),
            Packets::Copy(stream) => MuxedStream::Copied(stream),
        };
        (stream, &self.settings)
    }

    /// The encoder that opened; `None` when JPEGs are copied.
    pub fn encoder(&self) -> Option<EncoderKind> {
        match &self.packets {
            Packets::Encoder(stream) => Some(stream.kind()),
            Packets::Copy(_) => None,
        }
    }

    /// Display time of one nominal frame, in seconds: the last frame's duration in a file.
    pub fn frame_secs(&self) -> f64 {
        self.clock.time_base().secs(self.clock.frame_duration())
    }

    /// The file time, in seconds from this encoder's first frame, a frame sent at `sent_nanos`
    /// would get.
    pub fn secs_at(&self, sent_nanos: u64) -> f64 {
        self.clock.secs_at(sent_nanos)
    }

    /// Encodes (or copies) `frame`, which must be of [`format`](Self::format); appends the
    /// packets that came out, each with its frame, to `out`.
    pub fn encode(
        &mut self,
        frame: &JobFrame,
        session: Option<SessionRef>,
        out: &mut Vec<EncodedFrame>,
    ) -> Result<(), EncodeError> {
        let sent_nanos = frame.sent_nanos();
        let ids = match frame {
            JobFrame::Raw(raw) => &raw.ids,
            JobFrame::Jpeg(jpeg) => &jpeg.image.ids,
        };
        let pts = self.clock.next_pts(sent_nanos);
        self.pending.push_back(FrameInfo { time_ns: sent_nanos, ids: Arc::clone(ids), session });
        let mut packets = Vec::new();
        let encoded = match (&mut self.packets, frame) {
            (Packets::Encoder(stream), JobFrame::Raw(raw)) => stream.encode(raw, pts, &mut packets),
            (Packets::Copy(stream), JobFrame::Jpeg(jpeg)) => {
                packets.push(stream.packet(&jpeg.image.data, pts));
                Ok(())
            }
            _ => {
                self.pending.pop_back();
                let reason = format!("a {} frame for a {} stream", frame.format(), self.format);
                return Err(EncodeError::Encode { path: "(encoder)".into(), reason });
            }
        };
        self.pair(packets, out);
        encoded
    }

    /// Drains the encoder at the end of its stream into `out`.
    pub fn flush(&mut self, out: &mut Vec<EncodedFrame>) -> Result<(), EncodeError> {
        let mut packets = Vec::new();
        let flushed = match &mut self.packets {
            Packets::Encoder(stream) => stream.flush(&mut packets),
            Packets::Copy(_) => Ok(()),
        };
        self.pair(packets, out);
        if !self.pending.is_empty() && flushed.is_ok() {
            tracing::warn!(frames = self.pending.len(), "the encoder returned fewer packets than it took frames");
        }
        flushed
    }

    /// Most frames the encoder held at once: its delay, part of what a crash loses.
    pub fn delay_frames(&self) -> u64 {
        match &self.packets {
            Packets::Encoder(stream) => stream.delay_frames(),
            Packets::Copy(_) => 0,
        }
    }

    fn pair(&mut self, packets: Vec<EncodedPacket>, out: &mut Vec<EncodedFrame>) {
        for packet in packets {
            if let Some(info) = self.pending.pop_front() {
                out.push((packet, info));
            }
        }
    }
}
