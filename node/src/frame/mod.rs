//! Camera frames: the ecosystem's `encoding`/`width`/`height` metadata and a flat byte payload,
//! checked once at the boundary into a [`Frame`] the rest of the node can trust.

pub mod depth;

use std::{collections::BTreeMap, sync::Arc};

use arrow::buffer::Buffer;

/// Metadata key naming the pixel encoding.
pub const ENCODING_KEY: &str = "encoding";
/// Metadata key for the image width in pixels.
pub const WIDTH_KEY: &str = "width";
/// Metadata key for the image height in pixels.
pub const HEIGHT_KEY: &str = "height";
/// Metadata key naming the payload kind; `depth` marks float metres without an `encoding`.
pub const PRIMITIVE_KEY: &str = "primitive";
/// The [`PRIMITIVE_KEY`] value of a depth image.
pub const PRIMITIVE_DEPTH: &str = "depth";
/// Encoding assumed when a frame carries none (the ecosystem's default, OpenCV order).
pub const DEFAULT_ENCODING: PixelEncoding = PixelEncoding::Bgr8;
/// Largest accepted width or height: beyond any camera, small enough that sizes cannot overflow.
pub const MAX_DIMENSION: u32 = 16_384;

/// Raw pixel layouts the recorder encodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PixelEncoding {
    /// Packed 8-bit blue, green, red.
    Bgr8,
    /// Packed 8-bit red, green, blue.
    Rgb8,
    /// Packed 8-bit red, green, blue, alpha.
    Rgba8,
    /// Packed 8-bit blue, green, red, alpha.
    Bgra8,
    /// 8-bit grey.
    Mono8,
    /// Planar I420: Y, then U, then V at half resolution.
    Yuv420,
    /// Y plane, then interleaved U/V at half resolution.
    Nv12,
    /// 16-bit grey, little-endian: depth in millimetres. Recorded losslessly (FFV1).
    Mono16,
}

impl PixelEncoding {
    /// Every layout, in the order of the enum.
    pub const ALL: [Self; 7] =
        [Self::Bgr8, Self::Rgb8, Self::Rgba8, Self::Bgra8, Self::Mono8, Self::Yuv420, Self::Nv12];

    /// The canonical metadata spelling.
    pub fn name(self) -> &'static str {
        match self {
            Self::Bgr8 => "bgr8",
            Self::Rgb8 => "rgb8",
            Self::Rgba8 => "rgba8",
            Self::Bgra8 => "bgra8",
            Self::Mono8 => "mono8",
            Self::Yuv420 => "yuv420",
            Self::Nv12 => "nv12",
            Self::Mono16 => "mono16",
        }
    }

    /// Whether this is a packed RGB layout (with or without alpha): what a colour matrix applies to.
    pub fn is_rgb(self) -> bool {
        matches!(self, Self::Bgr8 | Self::Rgb8 | Self::Rgba8 | Self::Bgra8)
    }

    /// Whether frames of this layout are depth, recorded losslessly in their own container.
    pub fn is_depth(self) -> bool {
        self == Self::Mono16
    }

    /// Bytes of one `width` x `height` image in this layout (chroma planes round up).
    pub fn byte_len(self, width: u32, height: u32) -> usize {
        let (w, h) = (width as usize, height as usize);
        match self {
            Self::Bgr8 | Self::Rgb8 => w * h * 3,
            Self::Rgba8 | Self::Bgra8 => w * h * 4,
            Self::Mono8 => w * h,
            Self::Yuv420 => w * h + 2 * w.div_ceil(2) * h.div_ceil(2),
            Self::Nv12 => w * h + 2 * w.div_ceil(2) * h.div_ceil(2),
            Self::Mono16 => w * h * 2,
        }
    }
}

/// What an `encoding` metadata value means to the recorder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EncodingKind {
    /// A raw layout the recorder encodes.
    Raw(PixelEncoding),
    /// Depth in float metres (`32FC1`), converted to [`PixelEncoding::Mono16`] millimetres.
    FloatDepth,
    /// An already compressed payload (jpeg, png, h264, ...): skipped, not decoded.
    Compressed(String),
    /// Something else: rejected as bad input.
    Unknown(String),
}

/// Classifies an `encoding` value, case-insensitively, accepting common aliases.
pub fn classify_encoding(value: &str) -> EncodingKind {
    let lower = value.trim().to_ascii_lowercase();
    let raw = match lower.as_str() {
        "bgr8" | "bgr24" | "bgr" => PixelEncoding::Bgr8,
        "rgb8" | "rgb24" | "rgb" => PixelEncoding::Rgb8,
        "rgba8" | "rgba" => PixelEncoding::Rgba8,
        "bgra8" | "bgra" => PixelEncoding::Bgra8,
        "mono8" | "gray" | "gray8" | "grey8" | "8uc1" => PixelEncoding::Mono8,
        "yuv420" | "yuv420p" | "i420" => PixelEncoding::Yuv420,
        "nv12" => PixelEncoding::Nv12,
        "mono16" | "z16" | "16uc1" | "gray16" => PixelEncoding::Mono16,
        "32fc1" | "64fc1" => return EncodingKind::FloatDepth,
        "jpeg" | "jpg" | "mjpeg" | "png" | "webp" | "bmp" | "avif" | "av1" | "h264" | "h265" | "hevc" | "vp8"
        | "vp9" => return EncodingKind::Compressed(lower),
        _ => return EncodingKind::Unknown(value.to_owned()),
    };
    EncodingKind::Raw(raw)
}

/// The layout and size of a frame: when it changes, a new file starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FrameFormat {
    /// Pixel layout.
    pub encoding: PixelEncoding,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
}

impl FrameFormat {
    /// Bytes one frame of this format occupies.
    pub fn byte_len(&self) -> usize {
        self.encoding.byte_len(self.width, self.height)
    }
}

impl std::fmt::Display for FrameFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}x{} {}", self.width, self.height, self.encoding.name())
    }
}

/// A checked raw frame: the payload has exactly `format.byte_len()` bytes.
#[derive(Debug, Clone)]
pub struct Frame {
    /// Layout and size.
    pub format: FrameFormat,
    /// When the sender sent it, in nanoseconds since the UNIX epoch (dora's HLC time).
    pub sent_nanos: u64,
    /// The pixels, shared with dora's buffer (no copy).
    pub data: Buffer,
    /// The sender's metadata values that identify the frame (`frame_id`, `episode_index`, ...;
    /// see [`crate::sidecars::index::identifying_keys`]), as text: they go into the frame index.
    pub ids: Arc<BTreeMap<String, String>>,
}

/// Frame metadata as it arrived, before any check.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FrameMetadata {
    /// `encoding`, if present and a string.
    pub encoding: Option<String>,
    /// `width`, if present and an integer.
    pub width: Option<i64>,
    /// `height`, if present and an integer.
    pub height: Option<i64>,
    /// `primitive`, if present and a string.
    pub primitive: Option<String>,
    /// Identifying metadata values, as text.
    pub ids: BTreeMap<String, String>,
}

/// Why an input could not become a [`Frame`]. `Compressed` is expected and skipped quietly;
/// the others are bad input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameRejection {
    /// The payload is already compressed.
    #[error("compressed {0} payload (the recorder takes raw frames)")]
    Compressed(String),
    /// The encoding is not one the recorder knows.
    #[error("unsupported encoding {0:?}: send bgr8, rgb8, rgba8, bgra8, mono8, yuv420, nv12, mono16 or 32FC1")]
    UnknownEncoding(String),
    /// Neither metadata nor config give the size.
    #[error("no width/height: add them to the frame metadata or set IMAGE_WIDTH and IMAGE_HEIGHT")]
    MissingSize,
    /// A depth frame without its shape: a flat array of samples cannot be recorded without it.
    #[error("depth frame without metadata {missing}: its shape cannot be known, add them to the frame metadata")]
    DepthMissingSize {
        /// The missing keys, e.g. `width, height`.
        missing: String,
    },
    /// The size is zero, negative or absurd.
    #[error("invalid size {width}x{height}: each side must be 1..={MAX_DIMENSION}")]
    InvalidSize {
        /// Width as given.
        width: i64,
        /// Height as given.
        height: i64,
    },
    /// The payload length does not match the declared format.
    #[error("payload has {actual} bytes but {format} needs {expected}")]
    LengthMismatch {
        /// Declared format.
        format: FrameFormat,
        /// Bytes needed.
        expected: usize,
        /// Bytes received.
        actual: usize,
    },
    /// The payload is not a flat UInt8 array without nulls (or UInt16/Float32/Float64 for depth).
    #[error("payload is {0}, expected a UInt8 array without nulls (UInt16, Float32 or Float64 for depth)")]
    BadPayload(String),
}

/// A frame's payload as it arrived, by sample type: the dora edge turns Arrow arrays into this.
#[derive(Debug, Clone)]
pub enum Payload {
    /// Bytes (a UInt8 array), laid out as the `encoding` says.
    Bytes(Buffer),
    /// Little-endian uint16 samples (a UInt16 array): `mono16` depth.
    Mono16(Buffer),
    /// Float metres (a Float32 or Float64 array), already converted to little-endian uint16
    /// millimetres by [`depth`].
    DepthMetres(Buffer),
}

impl FrameRejection {
    /// Whether this is an expected skip rather than bad input.
    pub fn is_compressed(&self) -> bool {
        matches!(self, Self::Compressed(_))
    }
}

/// Checks metadata and payload, using `fallback_size` (config) when metadata has no size.
pub fn check_frame(
    metadata: &FrameMetadata,
    fallback_size: (Option<u32>, Option<u32>),
    sent_nanos: u64,
    payload: Payload,
) -> Result<Frame, FrameRejection> {
    let kind = metadata.encoding.as_deref().map(classify_encoding);
    let depth_primitive = metadata.primitive.as_deref().is_some_and(|p| p.eq_ignore_ascii_case(PRIMITIVE_DEPTH));
    let kind = match kind {
        Some(EncodingKind::Compressed(name)) => return Err(FrameRejection::Compressed(name)),
        Some(EncodingKind::Unknown(name)) => return Err(FrameRejection::UnknownEncoding(name)),
        known => known,
    };
    let (encoding, data) = match payload {
        // Arrays of uint16 or float samples are depth, as long as the metadata says nothing contrary.
        Payload::Mono16(data) | Payload::DepthMetres(data) => match kind {
            Some(EncodingKind::Raw(encoding)) if !encoding.is_depth() => {
                return Err(FrameRejection::BadPayload(format!("a depth array for encoding {}", encoding.name())));
            }
            _ => (PixelEncoding::Mono16, DepthData::Ready(data)),
        },
        Payload::Bytes(data) => match kind {
            Some(EncodingKind::Raw(encoding)) => (encoding, DepthData::Ready(data)),
            Some(_) => (PixelEncoding::Mono16, DepthData::Float32Bytes(data)),
            None if depth_primitive => (PixelEncoding::Mono16, DepthData::Ready(data)),
            None => (DEFAULT_ENCODING, DepthData::Ready(data)),
        },
    };
    let width = metadata.width.or(fallback_size.0.map(i64::from));
    let height = metadata.height.or(fallback_size.1.map(i64::from));
    let (Some(width), Some(height)) = (width, height) else {
        if !encoding.is_depth() {
            return Err(FrameRejection::MissingSize);
        }
        let missing = [(WIDTH_KEY, width), (HEIGHT_KEY, height)].into_iter().filter(|(_, v)| v.is_none());
        let missing = missing.map(|(key, _)| key).collect::<Vec<_>>().join(", ");
        return Err(FrameRejection::DepthMissingSize { missing });
    };
    let valid = |side: i64| (1..=i64::from(MAX_DIMENSION)).contains(&side);
    if !valid(width) || !valid(height) {
        return Err(FrameRejection::InvalidSize { width, height });
    }
    let format = FrameFormat { encoding, width: width as u32, height: height as u32 };
    let expected = format.byte_len();
    let data = match data {
        DepthData::Ready(data) => data,
        DepthData::Float32Bytes(floats) if floats.len() == expected * 2 => {
            Buffer::from_vec(depth::f32_le_bytes_to_mono16(&floats).unwrap_or_default())
        }
        DepthData::Float32Bytes(floats) => {
            return Err(FrameRejection::LengthMismatch { format, expected: expected * 2, actual: floats.len() });
        }
    };
    if data.len() != expected {
        return Err(FrameRejection::LengthMismatch { format, expected, actual: data.len() });
    }
    Ok(Frame { format, sent_nanos, data, ids: Arc::new(metadata.ids.clone()) })
}

/// A payload on its way to becoming a frame's data.
enum DepthData {
    /// Laid out as the frame's encoding says.
    Ready(Buffer),
    /// Little-endian float32 metres sent as bytes: converted once the size is checked.
    Float32Bytes(Buffer),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rgb_layouts_are_the_packed_colour_ones() {
        let rgb: Vec<_> =
            PixelEncoding::ALL.into_iter().filter(|encoding| encoding.is_rgb()).map(PixelEncoding::name).collect();
        assert_eq!(rgb, ["bgr8", "rgb8", "rgba8", "bgra8"]);
    }

    fn meta(encoding: &str, width: i64, height: i64) -> FrameMetadata {
        FrameMetadata {
            encoding: Some(encoding.into()),
            width: Some(width),
            height: Some(height),
            ..Default::default()
        }
    }

    fn bytes(n: usize) -> Payload {
        Payload::Bytes(Buffer::from_vec(vec![0u8; n]))
    }

    #[test]
    fn aliases_map_to_one_layout() {
        assert_eq!(classify_encoding("BGR24"), EncodingKind::Raw(PixelEncoding::Bgr8));
        assert_eq!(classify_encoding("rgb24"), EncodingKind::Raw(PixelEncoding::Rgb8));
        assert_eq!(classify_encoding("I420"), EncodingKind::Raw(PixelEncoding::Yuv420));
        assert_eq!(classify_encoding("jpeg"), EncodingKind::Compressed("jpeg".into()));
        assert_eq!(classify_encoding("z16"), EncodingKind::Raw(PixelEncoding::Mono16));
        assert_eq!(classify_encoding("16UC1"), EncodingKind::Raw(PixelEncoding::Mono16));
        assert_eq!(classify_encoding("32FC1"), EncodingKind::FloatDepth);
        assert_eq!(classify_encoding("yuyv"), EncodingKind::Unknown("yuyv".into()));
    }

    #[test]
    fn planar_sizes_round_chroma_up_for_odd_dimensions() {
        assert_eq!(PixelEncoding::Yuv420.byte_len(640, 480), 640 * 480 * 3 / 2);
        assert_eq!(PixelEncoding::Yuv420.byte_len(641, 481), 641 * 481 + 2 * 321 * 241);
        assert_eq!(PixelEncoding::Nv12.byte_len(4, 2), 8 + 4);
        assert_eq!(PixelEncoding::Rgba8.byte_len(3, 3), 36);
    }

    #[test]
    fn well_formed_frame_is_accepted() {
        let frame = check_frame(&meta("bgr8", 641, 481), (None, None), 7, bytes(641 * 481 * 3)).unwrap();
        assert_eq!(frame.format, FrameFormat { encoding: PixelEncoding::Bgr8, width: 641, height: 481 });
        assert_eq!(frame.sent_nanos, 7);
    }

    #[test]
    fn wrong_length_is_rejected_with_both_sizes() {
        let err = check_frame(&meta("rgb8", 4, 4), (None, None), 0, bytes(47)).unwrap_err();
        assert!(matches!(err, FrameRejection::LengthMismatch { expected: 48, actual: 47, .. }));
    }

    #[test]
    fn hostile_sizes_are_rejected_before_any_allocation() {
        for (w, h) in [(0, 10), (-5, 10), (10, i64::MAX), (100_000, 100_000)] {
            let err = check_frame(&meta("mono8", w, h), (None, None), 0, bytes(10)).unwrap_err();
            assert!(matches!(err, FrameRejection::InvalidSize { .. }), "{w}x{h}: {err}");
        }
    }

    #[test]
    fn config_size_fills_in_missing_metadata() {
        let metadata = FrameMetadata { encoding: Some("mono8".into()), ..Default::default() };
        assert_eq!(check_frame(&metadata, (None, None), 0, bytes(12)).unwrap_err(), FrameRejection::MissingSize);
        let frame = check_frame(&metadata, (Some(4), Some(3)), 0, bytes(12)).unwrap();
        assert_eq!((frame.format.width, frame.format.height), (4, 3));
    }

    #[test]
    fn missing_encoding_means_bgr8_and_compressed_is_a_skip() {
        let metadata = FrameMetadata { width: Some(2), height: Some(2), ..Default::default() };
        assert_eq!(check_frame(&metadata, (None, None), 0, bytes(12)).unwrap().format.encoding, PixelEncoding::Bgr8);
        let err = check_frame(&meta("png", 2, 2), (None, None), 0, bytes(5)).unwrap_err();
        assert!(err.is_compressed());
        assert!(!check_frame(&meta("yuyv", 2, 2), (None, None), 0, bytes(8)).unwrap_err().is_compressed());
    }

    fn depth_array(samples: &[u16]) -> Payload {
        Payload::Mono16(Buffer::from_vec(samples.iter().flat_map(|s| s.to_le_bytes()).collect::<Vec<u8>>()))
    }

    #[test]
    fn uint16_arrays_and_mono16_bytes_are_depth_frames() {
        let from_array = check_frame(&meta("16UC1", 2, 1), (None, None), 0, depth_array(&[1, 65535])).unwrap();
        assert_eq!(from_array.format.encoding, PixelEncoding::Mono16);
        assert_eq!(from_array.data.as_slice(), &[1, 0, 255, 255]);
        let no_encoding = FrameMetadata { width: Some(2), height: Some(1), ..Default::default() };
        let unlabelled = check_frame(&no_encoding, (None, None), 0, depth_array(&[1, 2])).unwrap();
        assert_eq!(unlabelled.format.encoding, PixelEncoding::Mono16);
        let from_bytes = check_frame(&meta("mono16", 2, 1), (None, None), 0, bytes(4)).unwrap();
        assert_eq!(from_bytes.format.byte_len(), 4);
        let err = check_frame(&meta("bgr8", 2, 1), (None, None), 0, depth_array(&[1, 2])).unwrap_err();
        assert!(matches!(err, FrameRejection::BadPayload(_)), "{err}");
    }

    #[test]
    fn float_depth_bytes_become_millimetres_once_the_size_is_checked() {
        let metres: Vec<u8> = [1.5f32, f32::NAN].iter().flat_map(|m| m.to_le_bytes()).collect();
        let payload = Payload::Bytes(Buffer::from_vec(metres));
        let frame = check_frame(&meta("32FC1", 2, 1), (None, None), 0, payload).unwrap();
        assert_eq!(frame.data.as_slice(), &[0xdc, 0x05, 0, 0], "1500 mm, then NaN as 0");
        let err = check_frame(&meta("32FC1", 2, 2), (None, None), 0, bytes(8)).unwrap_err();
        assert!(matches!(err, FrameRejection::LengthMismatch { expected: 16, actual: 8, .. }), "{err}");
    }

    #[test]
    fn a_depth_frame_without_its_shape_names_the_missing_keys() {
        let metadata = FrameMetadata { height: Some(4), ..Default::default() };
        let err = check_frame(&metadata, (None, None), 0, depth_array(&[0; 4])).unwrap_err();
        assert_eq!(err, FrameRejection::DepthMissingSize { missing: "width".into() });
        let primitive = FrameMetadata { primitive: Some("depth".into()), ..Default::default() };
        let err = check_frame(&primitive, (None, None), 0, bytes(8)).unwrap_err();
        assert!(err.to_string().contains("without metadata width, height"), "{err}");
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;

    fn any_encoding() -> impl Strategy<Value = Option<String>> {
        let known = prop::sample::select(vec![
            "bgr8", "rgb8", "rgba8", "bgra8", "mono8", "yuv420", "nv12", "mono16", "32FC1", "jpeg", "",
        ]);
        prop_oneof![Just(None), known.prop_map(|s| Some(s.to_owned())), any::<String>().prop_map(Some)]
    }

    fn any_side() -> impl Strategy<Value = Option<i64>> {
        prop_oneof![Just(None), (-4i64..70).prop_map(Some), any::<i64>().prop_map(Some)]
    }

    proptest! {
        #[test]
        fn any_metadata_and_payload_is_accepted_exactly_or_rejected_without_panic(
            encoding in any_encoding(),
            width in any_side(),
            height in any_side(),
            fallback in (prop::option::of(1u32..64), prop::option::of(1u32..64)),
            payload in 0usize..20_000,
            sent in any::<u64>(),
        ) {
            let metadata = FrameMetadata { encoding, width, height, ..Default::default() };
            if let Ok(frame) = check_frame(&metadata, fallback, sent, Payload::Bytes(Buffer::from_vec(vec![0u8; payload]))) {
                prop_assert_eq!(frame.data.len(), frame.format.byte_len());
                prop_assert!(frame.format.width >= 1 && frame.format.width <= MAX_DIMENSION);
                prop_assert!(frame.format.height >= 1 && frame.format.height <= MAX_DIMENSION);
            }
        }
    }
}
