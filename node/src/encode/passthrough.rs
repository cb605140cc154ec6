//! Images stored as they came (`COMPRESSED=copy`): each JPEG becomes one Motion JPEG packet,
//! byte for byte, with no decoder and no encoder. The packets go through the same
//! [`super::PacketMuxer`] as an encoder's, so a copied file has everything an encoded one has.

use ffmpeg_next::{Packet, Rational, codec, encoder, packet};

use super::{Container, EncodeError, EncoderSettings, stream::EncodedPacket};

/// A Motion JPEG stream of one picture size: what the muxer needs to know, and packets made
/// from JPEG bytes.
pub struct CopyStream {
    /// Codec parameters only (never opened): FFmpeg's muxers take a stream's description from a
    /// codec context.
    parameters: encoder::video::Video,
    time_base: Rational,
    frame_duration: i64,
}

impl CopyStream {
    /// FFmpeg's name of the stored codec, as files and manifests report it.
    pub const CODEC: &'static str = "mjpeg";

    /// A stream of `width` x `height` JPEGs, timed in `settings.time_base`, each packet lasting
    /// `frame_duration` (the last one's counts).
    pub fn open(width: u32, height: u32, settings: &EncoderSettings, frame_duration: i64) -> Result<Self, EncodeError> {
        // Any codec of the id gives the context its id and type; libavcodec always has this one.
        let codec = encoder::find(codec::Id::MJPEG)
            .ok_or(EncodeError::EncoderMissing { encoder: Self::CODEC, hint: "install an FFmpeg build with mjpeg" })?;
        let mut parameters = codec::context::Context::new_with_codec(codec).encoder().video().map_err(|e| {
            EncodeError::EncoderOpen { encoder: Self::CODEC, reason: e.to_string(), hint: "a bug: please report it" }
        })?;
        parameters.set_width(width);
        parameters.set_height(height);
        let time_base = Rational::new(settings.time_base.num, settings.time_base.den);
        parameters.set_time_base(time_base);
        Ok(Self { parameters, time_base, frame_duration })
    }

    /// The packet holding `jpeg` at `pts` (time base of [`open`](Self::open), strictly
    /// increasing). Every JPEG stands alone: each packet is a keyframe.
    pub fn packet(&self, jpeg: &[u8], pts: i64) -> EncodedPacket {
        let mut packet = Packet::copy(jpeg);
        packet.set_pts(Some(pts));
        packet.set_dts(Some(pts));
        packet.set_duration(self.frame_duration);
        packet.set_flags(packet::Flags::KEY);
        EncodedPacket::new(packet)
    }

    /// Muxer options for copied JPEGs in `container`, besides its own. Matroska checksums each
    /// cluster (CRC-32 over every byte, after copying it into a growing buffer): with megabyte
    /// JPEGs that doubled the recorder's CPU per frame (2.4 ms against 1.2 ms for AVI at 1080p,
    /// `cargo bench --bench copy`), so copied files go without; the JPEGs' own markers still
    /// delimit each frame.
    pub(super) fn header_options(container: Container) -> Vec<(&'static str, String)> {
        match container {
            Container::Mkv => vec![("write_crc32", "0".to_owned())],
            _ => Vec::new(),
        }
    }

    pub(super) fn context(&self) -> &codec::Context {
        &self.parameters
    }

    pub(super) fn time_base(&self) -> Rational {
        self.time_base
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        encode::{Container, PacketMuxer, Quality, RateControl, init_ffmpeg, muxer::MuxedStream},
        timing::FrameRate,
    };

    #[test]
    fn copied_packets_hold_the_bytes_as_given_as_keyframes() {
        init_ffmpeg().unwrap();
        let fps = FrameRate { num: 30, den: 1 };
        let settings = EncoderSettings {
            container: Container::Mkv,
            quality: Quality::new("ultrafast", RateControl::Crf(30), 30, 30.0),
            fps,
            time_base: fps.frame_time_base(),
            fsync: false,
        };
        let stream = CopyStream::open(64, 48, &settings, 1).unwrap();
        let bytes = [0xFF, 0xD8, 1, 2, 3, 0xFF, 0xD9];
        let packet = stream.packet(&bytes, 7);
        assert_eq!((packet.pts(), packet.is_key(), packet.size()), (7, true, bytes.len()));
        assert_eq!(packet.packet().data(), Some(&bytes[..]));
        // The muxer takes the stream like an encoder's.
        let path = std::env::temp_dir().join(format!("copy-stream-{}.mkv", std::process::id()));
        let mut muxer = PacketMuxer::create(&path, MuxedStream::Copied(&stream), &settings, &[]).unwrap();
        muxer.write(&packet).unwrap();
        let written = muxer.finish(None, None, 0).unwrap();
        assert_eq!((written.packets, written.encoder), (1, None));
        let _ = std::fs::remove_file(&path);
    }
}
