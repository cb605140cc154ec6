//! Everything FFmpeg: codec choice, the NVENC probe, conversion, encoder and muxer. FFmpeg types
//! stay inside this module.

mod ahead;
mod codec;
mod colour;
mod container;
mod convert;
mod muxer;
mod quality;
mod stream;
mod writer;

pub use codec::{CodecRequest, EncoderKind, nvenc_preset};
pub use colour::ColourMatrix;
pub use container::{Container, MP4_FRAGMENT_MICROS};
pub use convert::{PlaneLayout, ffmpeg_pixel, padded_size, plane_layouts, planes_mut, rgb_to_yuv420};
pub use muxer::PacketMuxer;
pub use quality::{LOOKAHEAD_SECS, Latency, MAX_THREADS, PRESETS, Quality, RateControl, default_threads};
pub use stream::{EncodedPacket, StreamEncoder};
pub use writer::{EncodeError, EncoderSettings, VideoWriter, WrittenFile, init_ffmpeg, probe_encoder};
mod resolve;
pub use resolve::{CodecProbe, PROBE_MAX_AGE, ResolvedCodec, resolve_codec};
