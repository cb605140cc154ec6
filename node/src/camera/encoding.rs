//! A camera's running encoder: frames in, each encoded packet out together with what its frame
//! was (time, identifying metadata, session), so every file writes its index rows and matches
//! its detections the same way whichever worker feeds it.

use std::{collections::BTreeMap, collections::VecDeque, sync::Arc};

use super::settings::FileSettings;
use crate::{
    encode::{EncodeError, EncodedPacket, EncoderSettings, StreamEncoder},
    frame::{Frame, FrameFormat},
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

/// An open encoder for one frame format.
pub struct Encoding {
    stream: StreamEncoder,
    format: FrameFormat,
    clock: PtsClock,
    settings: EncoderSettings,
    /// Frames sent to the encoder whose packets have not come out yet, oldest first (no
    /// B-frames: packets come out in frame order).
    pending: VecDeque<FrameInfo>,
}

impl Encoding {
    /// Opens the first candidate encoder that works for `format`; returns it and the reasons
    /// earlier candidates were passed over.
    pub fn open(format: FrameFormat, files: &FileSettings) -> Result<(Self, Vec<EncodeError>), EncodeError> {
        let files = files.for_format(format);
        let (clock, settings) = files.encoder_settings();
        let (stream, passed_over) = StreamEncoder::open(format, &files.candidates, &settings, clock.frame_duration())?;
        Ok((Self { stream, format, clock, settings, pending: VecDeque::new() }, passed_over))
    }

    /// The frame format it was opened for.
    pub fn format(&self) -> FrameFormat {
        self.format
    }

    /// The encoder and the settings it was opened with, for a muxer.
    pub fn stream(&self) -> (&StreamEncoder, &EncoderSettings) {
        (&self.stream, &self.settings)
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

    /// Encodes `frame`; appends the packets that came out, each with its frame, to `out`.
    pub fn encode(
        &mut self,
        frame: &Frame,
        session: Option<SessionRef>,
        out: &mut Vec<EncodedFrame>,
    ) -> Result<(), EncodeError> {
        let pts = self.clock.next_pts(frame.sent_nanos);
        self.pending.push_back(FrameInfo { time_ns: frame.sent_nanos, ids: Arc::clone(&frame.ids), session });
        let mut packets = Vec::new();
        let encoded = self.stream.encode(frame, pts, &mut packets);
        self.pair(packets, out);
        encoded
    }

    /// Drains the encoder at the end of its stream into `out`.
    pub fn flush(&mut self, out: &mut Vec<EncodedFrame>) -> Result<(), EncodeError> {
        let mut packets = Vec::new();
        let flushed = self.stream.flush(&mut packets);
        self.pair(packets, out);
        if !self.pending.is_empty() && flushed.is_ok() {
            tracing::warn!(frames = self.pending.len(), "the encoder returned fewer packets than it took frames");
        }
        flushed
    }

    /// Most frames the encoder held at once: its delay, part of what a crash loses.
    pub fn delay_frames(&self) -> u64 {
        self.stream.delay_frames()
    }

    fn pair(&mut self, packets: Vec<EncodedPacket>, out: &mut Vec<EncodedFrame>) {
        for packet in packets {
            if let Some(info) = self.pending.pop_front() {
                out.push((packet, info));
            }
        }
    }
}
