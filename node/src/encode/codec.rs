//! Codec choice and per-encoder options. Pure: no FFmpeg calls, so every mapping is unit-tested.

use super::quality::{Latency, Quality, RateControl};

/// The codec a user asks for; resolved to concrete [`EncoderKind`] candidates in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodecRequest {
    /// H.264: NVENC when an encoder really opens, else libx264.
    Auto,
    /// H.265: NVENC when an encoder really opens, else libx265.
    Hevc,
    /// Software H.264, always.
    Libx264,
    /// Software H.265, always.
    Libx265,
    /// NVIDIA H.264, or fail at startup.
    H264Nvenc,
    /// NVIDIA H.265, or fail at startup.
    HevcNvenc,
}

impl CodecRequest {
    /// What `CODEC` accepts, for error messages.
    pub const ALLOWED: &'static str = "auto, h264, hevc, h265, libx264, libx265, h264_nvenc or hevc_nvenc";

    /// Parses a `CODEC` value.
    pub fn parse(value: &str) -> Option<Self> {
        match value.to_ascii_lowercase().as_str() {
            "auto" | "h264" | "avc" => Some(Self::Auto),
            "hevc" | "h265" => Some(Self::Hevc),
            "libx264" => Some(Self::Libx264),
            "libx265" => Some(Self::Libx265),
            "h264_nvenc" => Some(Self::H264Nvenc),
            "hevc_nvenc" => Some(Self::HevcNvenc),
            _ => None,
        }
    }

    /// The canonical spelling.
    pub fn name(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Hevc => "hevc",
            Self::Libx264 => "libx264",
            Self::Libx265 => "libx265",
            Self::H264Nvenc => "h264_nvenc",
            Self::HevcNvenc => "hevc_nvenc",
        }
    }

    /// Encoders to try, best first. Explicit requests have exactly one.
    pub fn candidates(self) -> &'static [EncoderKind] {
        match self {
            Self::Auto => &[EncoderKind::H264Nvenc, EncoderKind::Libx264],
            Self::Hevc => &[EncoderKind::HevcNvenc, EncoderKind::Libx265],
            Self::Libx264 => &[EncoderKind::Libx264],
            Self::Libx265 => &[EncoderKind::Libx265],
            Self::H264Nvenc => &[EncoderKind::H264Nvenc],
            Self::HevcNvenc => &[EncoderKind::HevcNvenc],
        }
    }

    /// Whether the user named one encoder, which must then work or stop the node.
    pub fn is_explicit(self) -> bool {
        self.candidates().len() == 1
    }
}

/// A concrete FFmpeg encoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EncoderKind {
    /// x264.
    Libx264,
    /// x265.
    Libx265,
    /// NVIDIA NVENC H.264.
    H264Nvenc,
    /// NVIDIA NVENC H.265.
    HevcNvenc,
    /// FFV1, lossless 16-bit grey: depth cameras, whatever `CODEC` says (H.264 and H.265 as
    /// configured here hold 8 bits and lose detail).
    Ffv1,
    /// FFmpeg's HuffYUV, lossless 16-bit grey: about a tenth of FFV1's CPU for files about 10 %
    /// larger (`DEPTH_CODEC=ffvhuff`; measured by `node/benches/depth.rs`).
    Ffvhuff,
}

impl EncoderKind {
    /// FFmpeg's encoder name.
    pub fn ffmpeg_name(self) -> &'static str {
        match self {
            Self::Libx264 => "libx264",
            Self::Libx265 => "libx265",
            Self::H264Nvenc => "h264_nvenc",
            Self::HevcNvenc => "hevc_nvenc",
            Self::Ffv1 => "ffv1",
            Self::Ffvhuff => "ffvhuff",
        }
    }

    /// Parses a `DEPTH_CODEC` value: one of the lossless encoders.
    pub fn parse_lossless(value: &str) -> Option<Self> {
        match value.trim().to_ascii_lowercase().as_str() {
            "ffv1" => Some(Self::Ffv1),
            "ffvhuff" | "huffyuv" => Some(Self::Ffvhuff),
            _ => None,
        }
    }

    /// Whether this encoder keeps every sample exactly (depth).
    pub fn is_lossless(self) -> bool {
        matches!(self, Self::Ffv1 | Self::Ffvhuff)
    }

    /// Whether this needs an NVIDIA GPU.
    pub fn is_nvenc(self) -> bool {
        matches!(self, Self::H264Nvenc | Self::HevcNvenc)
    }

    /// What to do when FFmpeg lacks or cannot open this encoder.
    pub fn install_hint(self) -> &'static str {
        match self {
            Self::Libx264 | Self::Libx265 => {
                "install an FFmpeg built with it (Debian: apt-get install libavcodec-dev libavcodec59, which include libx264 and libx265)"
            }
            Self::H264Nvenc | Self::HevcNvenc => {
                "needs an NVIDIA GPU with NVENC, its driver (libcuda.so.1, libnvidia-encode.so.1) and a free encoder session; use CODEC=auto to fall back to software"
            }
            Self::Ffv1 | Self::Ffvhuff => {
                "FFV1 and HuffYUV are part of libavcodec itself; install an FFmpeg build that is not stripped of them"
            }
        }
    }

    /// Encoder options (`AVOptions`) for the given quality. Each encoder gets its own set:
    /// libx264's preset names make NVENC fail to open, and its `crf` means nothing to NVENC.
    pub fn options(self, quality: &Quality) -> Vec<(&'static str, String)> {
        let mut options = Vec::new();
        match self {
            Self::Libx264 | Self::Libx265 => {
                options.push(("preset", quality.preset.clone()));
                match quality.rate {
                    RateControl::Crf(crf) => options.push(("crf", crf.to_string())),
                    RateControl::Bitrate(bps) => options.push(("bufsize", (bps * 2).to_string())),
                }
                let mut params = Vec::new();
                match quality.latency {
                    Latency::Zero => options.push(("tune", "zerolatency".to_owned())),
                    // sync-lookahead=0: no extra frames buffered for the look-ahead thread,
                    // whose work is small at a short look-ahead.
                    Latency::Lookahead(frames) if self == Self::Libx264 => {
                        params.push(format!("rc-lookahead={frames}:sync-lookahead=0"))
                    }
                    Latency::Lookahead(frames) => params.push(format!("rc-lookahead={frames}")),
                }
                if self == Self::Libx264 {
                    params.push(format!("threads={}", quality.threads));
                }
                if self == Self::Libx265 {
                    params.push(format!("pools={}", quality.threads));
                    params.push("log-level=error".to_owned());
                    options.push(("x265-params", params.join(":")));
                } else if !params.is_empty() {
                    options.push(("x264-params", params.join(":")));
                }
            }
            Self::H264Nvenc | Self::HevcNvenc => {
                options.push(("preset", nvenc_preset(&quality.preset).to_owned()));
                match quality.rate {
                    RateControl::Crf(crf) => {
                        options.push(("rc", "vbr".to_owned()));
                        options.push(("cq", crf.to_string()));
                    }
                    RateControl::Bitrate(_) => options.push(("rc", "cbr".to_owned())),
                }
                if quality.latency == Latency::Zero {
                    options.push(("zerolatency", "1".to_owned()));
                    options.push(("delay", "0".to_owned()));
                }
            }
            Self::Ffv1 => {
                // Version 3 codes slices in parallel and checks each with a CRC; the range coder
                // with its default table is the one FFmpeg takes for 16-bit samples anyway.
                options.push(("level", "3".to_owned()));
                options.push(("slices", FFV1_SLICES.to_string()));
                options.push(("slicecrc", "1".to_owned()));
                options.push(("threads", quality.threads.to_string()));
            }
            // Every frame on its own (per-frame tables), coded in parallel slices of rows.
            Self::Ffvhuff => options.push(("threads", quality.threads.to_string())),
        }
        options
    }
}

/// Slices per FFV1 frame: work for up to four threads (FFV1 version 3 takes no fewer than 4;
/// 16 slices were 0.3 % smaller on a depth scene, docs/benchmarks.md).
const FFV1_SLICES: u32 = 4;

/// The NVENC preset (`p1` fastest .. `p7` best) nearest to an x264 preset name.
pub fn nvenc_preset(x264_preset: &str) -> &'static str {
    match x264_preset {
        "ultrafast" | "superfast" => "p1",
        "veryfast" => "p2",
        "faster" => "p3",
        "fast" | "medium" => "p4",
        "slow" => "p5",
        "slower" => "p6",
        _ => "p7",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quality(rate: RateControl) -> Quality {
        Quality { preset: "veryfast".into(), rate, gop_frames: 30, latency: Latency::Lookahead(3), threads: 2 }
    }

    #[test]
    fn auto_tries_nvenc_then_software() {
        assert_eq!(CodecRequest::parse("AUTO").unwrap().candidates(), &[EncoderKind::H264Nvenc, EncoderKind::Libx264]);
        assert_eq!(CodecRequest::parse("h265").unwrap().candidates(), &[EncoderKind::HevcNvenc, EncoderKind::Libx265]);
        assert!(!CodecRequest::Auto.is_explicit());
        assert!(CodecRequest::H264Nvenc.is_explicit());
        assert!(CodecRequest::parse("vp9").is_none());
    }

    #[test]
    fn nvenc_never_gets_x264_presets_or_crf() {
        let options = EncoderKind::H264Nvenc.options(&quality(RateControl::Crf(23)));
        assert!(options.contains(&("preset", "p2".into())));
        assert!(options.contains(&("cq", "23".into())));
        assert!(!options.iter().any(|(key, _)| *key == "crf"));
    }

    #[test]
    fn software_encoders_use_crf_or_a_buffer_for_bitrate() {
        let crf = EncoderKind::Libx264.options(&quality(RateControl::Crf(20)));
        assert_eq!(
            crf,
            vec![
                ("preset", "veryfast".into()),
                ("crf", "20".into()),
                ("x264-params", "rc-lookahead=3:sync-lookahead=0:threads=2".into())
            ]
        );
        let cbr = EncoderKind::Libx265.options(&quality(RateControl::Bitrate(1_000_000)));
        assert!(cbr.contains(&("bufsize", "2000000".into())));
        assert!(cbr.iter().any(|(key, _)| *key == "x265-params"));
    }

    #[test]
    fn zero_latency_tunes_each_encoder_its_own_way() {
        let zero = Quality { latency: Latency::Zero, ..quality(RateControl::Crf(23)) };
        assert!(EncoderKind::Libx264.options(&zero).contains(&("tune", "zerolatency".into())));
        assert!(EncoderKind::Libx264.options(&zero).contains(&("x264-params", "threads=2".into())));
        assert!(EncoderKind::Libx265.options(&zero).contains(&("x265-params", "pools=2:log-level=error".into())));
        let nvenc = EncoderKind::H264Nvenc.options(&zero);
        assert!(nvenc.contains(&("zerolatency", "1".into())) && !nvenc.iter().any(|(key, _)| *key == "tune"));
    }

    #[test]
    fn every_x264_preset_maps_to_an_nvenc_preset() {
        for preset in super::super::PRESETS {
            assert!(nvenc_preset(preset).starts_with('p'));
        }
        assert_eq!(nvenc_preset("ultrafast"), "p1");
        assert_eq!(nvenc_preset("veryslow"), "p7");
    }
}
