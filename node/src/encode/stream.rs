//! Frames in, encoded packets out: the converter (on its own thread, one frame ahead, see
//! [`super::ahead`]) and an opened encoder (first working candidate), independent of any file, so
//! one encoder can feed a file per session or a pre-roll ring.

use ffmpeg_next::{
    self as ff, Codec, Dictionary, Packet, Rational, codec, encoder, frame,
    packet::{Mut, Ref},
};

use super::{
    EncodeError, EncoderKind, EncoderSettings,
    ahead::ConvertAhead,
    colour::ColourMatrix,
    convert::{DEPTH_PIXEL, ENCODER_PIXEL},
    quality::RateControl,
};
use crate::{
    frame::{Frame, FrameFormat},
    timing::TimeBase,
};

/// One encoded frame, owned (it can wait in a ring before it reaches a file).
#[derive(Clone)]
pub struct EncodedPacket {
    packet: Packet,
}

impl EncodedPacket {
    pub(super) fn new(packet: Packet) -> Self {
        Self { packet }
    }

    /// Presentation time in the encoder's time base.
    pub fn pts(&self) -> i64 {
        self.packet.pts().unwrap_or(0)
    }

    /// Whether a decoder can start here.
    pub fn is_key(&self) -> bool {
        self.packet.is_key()
    }

    /// Bytes of encoded data.
    pub fn size(&self) -> usize {
        self.packet.size()
    }

    #[cfg(test)]
    pub(super) fn packet(&self) -> &Packet {
        &self.packet
    }

    /// Another reference to the same data, for the muxer to take while a pre-roll ring may keep
    /// this one. `Packet::clone` would copy the data (it makes the new reference writable): a
    /// whole JPEG per frame when frames are copied. FFmpeg's reference-counted buffers are
    /// read-only to whoever shares them, so no copy is needed.
    pub(super) fn shared(&self) -> Packet {
        let mut shared = Packet::empty();
        // SAFETY: both are valid packets; av_packet_ref adds a reference to the source's buffer
        // (copying only data that is not reference-counted) and copies its properties.
        let status = unsafe { ff::ffi::av_packet_ref(shared.as_mut_ptr(), self.packet.as_ptr()) };
        if status < 0 { self.packet.clone() } else { shared }
    }
}

impl std::fmt::Debug for EncodedPacket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "EncodedPacket {{ pts: {}, key: {}, size: {} }}", self.pts(), self.is_key(), self.size())
    }
}

/// An open encoder for one frame format.
pub struct StreamEncoder {
    encoder: encoder::Video,
    kind: EncoderKind,
    converter: ConvertAhead,
    time_base: Rational,
    /// Nominal frame duration in the time base: each packet's duration (the last one's counts).
    frame_duration: i64,
    frames: u64,
    packets: u64,
    delay_frames: u64,
}

impl StreamEncoder {
    /// Opens an encoder for `format`: the first of `candidates` that works. Returns it with the
    /// reasons earlier candidates were passed over.
    pub fn open(
        format: FrameFormat,
        candidates: &[EncoderKind],
        settings: &EncoderSettings,
        frame_duration: i64,
    ) -> Result<(Self, Vec<EncodeError>), EncodeError> {
        let converter = ConvertAhead::start(format).map_err(convert_error)?;
        let (width, height) = converter.encoded_size();
        let ((encoder, _codec), kind, passed_over) = open_first(candidates, width, height, settings)?;
        let time_base = rational(settings.time_base);
        let stream =
            Self { encoder, kind, converter, time_base, frame_duration, frames: 0, packets: 0, delay_frames: 0 };
        Ok((stream, passed_over))
    }

    /// The encoder that opened.
    pub fn kind(&self) -> EncoderKind {
        self.kind
    }

    /// Most frames the encoder held at once: its delay, part of what a crash loses.
    pub fn delay_frames(&self) -> u64 {
        self.delay_frames
    }

    /// Encodes `frame` at `pts` (encoder time base, strictly increasing); appends the packets
    /// that came out to `out`. The encoder takes the previous frame's picture while this one
    /// converts; this one follows with the next frame or at [`flush`](Self::flush).
    pub fn encode(&mut self, frame: &Frame, pts: i64, out: &mut Vec<EncodedPacket>) -> Result<(), EncodeError> {
        self.converter.submit(frame, pts).map_err(convert_error)?;
        let sent = match self.converter.take_ready() {
            Some(picture) => {
                let sent = self.send(&picture, out);
                self.converter.recycle(picture);
                sent
            }
            None => Ok(()),
        };
        // Always wait for the conversion, even after a failed send: it owns a picture and a frame.
        let converted = self.converter.finish().map_err(convert_error);
        sent.and(converted)
    }

    /// Ends the stream: appends every packet still inside the encoder to `out`. The encoder
    /// takes no frame after this.
    pub fn flush(&mut self, out: &mut Vec<EncodedPacket>) -> Result<(), EncodeError> {
        if let Some(picture) = self.converter.take_ready() {
            self.send(&picture, out)?;
        }
        match self.encoder.send_eof() {
            Ok(()) | Err(ff::Error::Eof) => self.drain(out),
            Err(e) => Err(encoder_error(e)),
        }
    }

    pub(super) fn context(&self) -> &encoder::Video {
        &self.encoder
    }

    pub(super) fn time_base(&self) -> Rational {
        self.time_base
    }

    /// Gives one picture to the encoder and collects what comes out.
    fn send(&mut self, picture: &frame::Video, out: &mut Vec<EncodedPacket>) -> Result<(), EncodeError> {
        self.encoder.send_frame(picture).map_err(encoder_error)?;
        self.frames += 1;
        self.delay_frames = self.delay_frames.max(self.frames - self.packets);
        self.drain(out)
    }

    fn drain(&mut self, out: &mut Vec<EncodedPacket>) -> Result<(), EncodeError> {
        loop {
            let mut packet = Packet::empty();
            match self.encoder.receive_packet(&mut packet) {
                Ok(()) => {
                    // Encoders leave the duration at 0; the muxer needs it for the last sample.
                    packet.set_duration(self.frame_duration);
                    self.packets += 1;
                    out.push(EncodedPacket::new(packet));
                }
                Err(ff::Error::Other { errno: ff::error::EAGAIN }) | Err(ff::Error::Eof) => return Ok(()),
                Err(e) => return Err(encoder_error(e)),
            }
        }
    }
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

pub(super) fn open_encoder(
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
    video.set_format(if kind.is_lossless() { DEPTH_PIXEL } else { ENCODER_PIXEL });
    video.set_time_base(rational(settings.time_base));
    // Without a frame rate x264 derives the H.264 level from the microsecond time base (level 6.2).
    video.set_frame_rate(Some(Rational::new(settings.fps.num as i32, settings.fps.den as i32)));
    video.set_gop(settings.quality.gop_frames);
    if !kind.is_lossless() {
        // Depth samples are distances, not colours: no matrix to tag.
        ColourMatrix::for_size(width, height).tag_encoder(&mut video);
    }
    // No B-frames: lower latency, less lost on a crash, and Foxglove's player refuses them.
    video.set_max_b_frames(0);
    if let (RateControl::Bitrate(bps), false) = (settings.quality.rate, kind.is_lossless()) {
        video.set_bit_rate(bps as usize);
        video.set_max_bit_rate(bps as usize);
    }
    if settings.container.global_header() {
        video.set_flags(codec::Flags::GLOBAL_HEADER);
    }
    let options: Dictionary = kind.options(&settings.quality).into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
    video.open_with(options).map(|opened| (opened, codec)).map_err(open_error)
}

/// A conversion failure; [`EncodeError::in_file`] names the file once the caller knows it.
fn convert_error(error: ff::Error) -> EncodeError {
    EncodeError::Encode { path: "(converter)".into(), reason: error.to_string() }
}

/// An encoder failure; [`EncodeError::in_file`] names the file once the caller knows it.
fn encoder_error(error: ff::Error) -> EncodeError {
    EncodeError::Encode { path: "(encoder)".into(), reason: error.to_string() }
}

fn rational(time_base: TimeBase) -> Rational {
    Rational::new(time_base.num, time_base.den)
}
