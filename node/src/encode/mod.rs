//! Everything FFmpeg: codec choice, the NVENC probe, conversion, image decoders, encoder and muxer. FFmpeg types
//! stay inside this module.

mod ahead;
mod codec;
mod colour;
mod container;
mod convert;
mod decode;
mod error;
mod muxer;
mod passthrough;
mod quality;
mod resolve;
mod settings;
mod stream;
mod writer;

use ffmpeg_next as ff;

pub use codec::{CodecRequest, EncoderKind, nvenc_preset};
pub use colour::ColourMatrix;
pub use container::{Container, MP4_FRAGMENT_MICROS};
pub use convert::{Converter, PlaneLayout, ffmpeg_pixel, padded_size, plane_layouts, planes_mut, rgb_to_yuv420};
pub use decode::{DecodeError, FfmpegImageDecoder, check_complete};
pub use error::{EncodeError, WrittenFile};
pub use muxer::{MuxedStream, PacketMuxer};
pub use passthrough::CopyStream;
pub use quality::{LOOKAHEAD_SECS, Latency, MAX_THREADS, PRESETS, Quality, RateControl, default_threads};
pub use resolve::{CodecProbe, PROBE_MAX_AGE, ResolvedCodec, probe_encoder, resolve_codec};
pub use settings::EncoderSettings;
pub use stream::{EncodedPacket, StreamEncoder};
pub use writer::VideoWriter;

/// Initializes FFmpeg once per process and keeps its own logging to real problems.
pub fn init_ffmpeg() -> Result<(), ff::Error> {
    ff::init()?;
    ff::util::log::set_level(ff::util::log::Level::Error);
    Ok(())
}
