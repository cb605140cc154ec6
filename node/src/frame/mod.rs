//! Camera frames: the ecosystem's `encoding`/`width`/`height` metadata and a flat byte payload,
//! checked once at the boundary into a [`CameraFrame`] the rest of the node can trust.
//!
//! Two kinds arrive: raw pixels ([`Frame`], checked against their declared size here) and
//! compressed still images ([`ImageFrame`]: JPEG, PNG, BMP, WebP), whose size only the image
//! itself knows. Images travel compressed to the camera's worker thread and are decoded there
//! into a [`Frame`] (see [`crate::camera::decode`]), so the dora event loop never decodes.

pub mod depth;
pub mod jpeg;
pub mod ycbcr;

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
    /// I420 planes as a JPEG decodes: full range, BT.601 (`yuvj420p`). Never sent by a camera
    /// (not in [`ALL`](Self::ALL)); the recorder's own JPEG decoder makes it ([`ycbcr`]).
    Yuvj420,
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
            Self::Yuvj420 => "yuvj420p",
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
            Self::Yuv420 | Self::Yuvj420 => w * h + 2 * w.div_ceil(2) * h.div_ceil(2),
            Self::Nv12 => w * h + 2 * w.div_ceil(2) * h.div_ceil(2),
            Self::Mono16 => w * h * 2,
        }
    }
}

/// Compressed still-image formats the recorder decodes (what `cv2.imencode` and camera nodes send).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ImageCodec {
    /// JPEG (`jpeg`, `jpg`, `jpe`, `mjpeg`: one JPEG per frame).
    Jpeg,
    /// PNG.
    Png,
    /// Windows bitmap.
    Bmp,
    /// WebP (still).
    Webp,
}

impl ImageCodec {
    /// The canonical metadata spelling.
    pub fn name(self) -> &'static str {
        match self {
            Self::Jpeg => "jpeg",
            Self::Png => "png",
            Self::Bmp => "bmp",
            Self::Webp => "webp",
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
    /// A compressed still image, decoded on the camera's worker thread.
    Image(ImageCodec),
    /// A compressed video stream (h264, av1, ...): skipped, not decoded.
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
        "jpeg" | "jpg" | "jpe" | "mjpeg" => return EncodingKind::Image(ImageCodec::Jpeg),
        "png" => return EncodingKind::Image(ImageCodec::Png),
        "bmp" => return EncodingKind::Image(ImageCodec::Bmp),
        "webp" => return EncodingKind::Image(ImageCodec::Webp),
        "avif" | "av1" | "h264" | "h265" | "hevc" | "vp8" | "vp9" => return EncodingKind::Compressed(lower),
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

/// A compressed still image as it arrived: its size is known once it is decoded.
#[derive(Debug, Clone)]
pub struct ImageFrame {
    /// Its format, from the `encoding` metadata.
    pub codec: ImageCodec,
    /// The `width`/`height` the metadata declared, if valid: only compared with the decoded
    /// size (the image wins) to log senders whose metadata is wrong.
    pub declared: Option<(u32, u32)>,
    /// When the sender sent it, in nanoseconds since the UNIX epoch (dora's HLC time).
    pub sent_nanos: u64,
    /// The compressed bytes, shared with dora's buffer (no copy).
    pub data: Buffer,
    /// Identifying metadata values, as in [`Frame::ids`].
    pub ids: Arc<BTreeMap<String, String>>,
}

impl ImageFrame {
    /// The raw frame `pixels` decoded from this image, with its time and ids.
    pub fn decoded(&self, format: FrameFormat, pixels: Buffer) -> Frame {
        Frame { format, sent_nanos: self.sent_nanos, data: pixels, ids: Arc::clone(&self.ids) }
    }
}

/// A checked camera input: raw pixels ready to encode, or an image still to decode.
#[derive(Debug, Clone)]
pub enum CameraFrame {
    /// Raw pixels of a known format.
    Raw(Frame),
    /// A compressed still image.
    Image(ImageFrame),
}

impl From<Frame> for CameraFrame {
    fn from(frame: Frame) -> Self {
        Self::Raw(frame)
    }
}

impl CameraFrame {
    /// When the sender sent it (Unix nanoseconds).
    pub fn sent_nanos(&self) -> u64 {
        match self {
            Self::Raw(frame) => frame.sent_nanos,
            Self::Image(image) => image.sent_nanos,
        }
    }

    /// Bytes of its payload as it waits in a queue.
    pub fn byte_len(&self) -> usize {
        match self {
            Self::Raw(frame) => frame.data.len(),
            Self::Image(image) => image.data.len(),
        }
    }
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
    /// The payload is a compressed video stream.
    #[error("compressed {0} payload (the recorder takes raw frames and jpeg/png/bmp/webp images)")]
    Compressed(String),
    /// The encoding is not one the recorder knows.
    #[error(
        "unsupported encoding {0:?}: send bgr8, rgb8, rgba8, bgra8, mono8, yuv420, nv12, mono16, 32FC1, jpeg, png, bmp or webp"
    )]
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
    /// An image payload with no bytes.
    #[error("empty {0} image")]
    EmptyImage(&'static str),
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

/// Checks a camera input: images are accepted as they are (their bytes are checked when they are
/// decoded), raw frames as [`check_frame`] says.
pub fn check_input(
    metadata: &FrameMetadata,
    fallback_size: (Option<u32>, Option<u32>),
    sent_nanos: u64,
    payload: Payload,
) -> Result<CameraFrame, FrameRejection> {
    let Some(EncodingKind::Image(codec)) = metadata.encoding.as_deref().map(classify_encoding) else {
        return check_frame(metadata, fallback_size, sent_nanos, payload).map(CameraFrame::Raw);
    };
    let Payload::Bytes(data) = payload else {
        return Err(FrameRejection::BadPayload(format!("a depth array for a {} image", codec.name())));
    };
    if data.is_empty() {
        return Err(FrameRejection::EmptyImage(codec.name()));
    }
    let valid =
        |side: Option<i64>| side.and_then(|s| u32::try_from(s).ok()).filter(|s| (1..=MAX_DIMENSION).contains(s));
    let declared = valid(metadata.width).zip(valid(metadata.height));
    Ok(CameraFrame::Image(ImageFrame { codec, declared, sent_nanos, data, ids: Arc::new(metadata.ids.clone()) }))
}

/// Checks a raw frame's metadata and payload, using `fallback_size` (config) when metadata has
/// no size.
pub fn check_frame(
    metadata: &FrameMetadata,
    fallback_size: (Option<u32>, Option<u32>),
    sent_nanos: u64,
    payload: Payload,
) -> Result<Frame, FrameRejection> {
    let kind = metadata.encoding.as_deref().map(classify_encoding);
    let depth_primitive = metadata.primitive.as_deref().is_some_and(|p| p.eq_ignore_ascii_case(PRIMITIVE_DEPTH));
    let kind = match kind {
        Some(EncodingKind::Image(codec)) => return Err(FrameRejection::Compressed(codec.name().to_owned())),
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
        assert_eq!(classify_encoding("JPG"), EncodingKind::Image(ImageCodec::Jpeg));
        assert_eq!(classify_encoding("jpe"), EncodingKind::Image(ImageCodec::Jpeg));
        assert_eq!(classify_encoding("h264"), EncodingKind::Compressed("h264".into()));
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
        let err = check_frame(&meta("av1", 2, 2), (None, None), 0, bytes(5)).unwrap_err();
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
mod image_tests {
    use super::*;

    #[test]
    fn an_image_needs_no_size_and_keeps_a_valid_declared_one() {
        let only_encoding = FrameMetadata { encoding: Some("jpeg".into()), ..Default::default() };
        let Ok(CameraFrame::Image(image)) =
            check_input(&only_encoding, (None, None), 3, Payload::Bytes(Buffer::from_vec(vec![1u8; 9])))
        else {
            panic!("a jpeg without width/height is accepted")
        };
        assert_eq!((image.codec, image.declared, image.sent_nanos), (ImageCodec::Jpeg, None, 3));
        let declared = FrameMetadata { width: Some(64), height: Some(48), ..only_encoding.clone() };
        let Ok(CameraFrame::Image(image)) =
            check_input(&declared, (None, None), 0, Payload::Bytes(Buffer::from_vec(vec![1u8; 9])))
        else {
            panic!("accepted")
        };
        assert_eq!(image.declared, Some((64, 48)));
        let empty = check_input(&only_encoding, (None, None), 0, Payload::Bytes(Buffer::from_vec(Vec::<u8>::new())))
            .unwrap_err();
        assert_eq!(empty, FrameRejection::EmptyImage("jpeg"));
    }

    #[test]
    fn raw_inputs_are_checked_as_before() {
        let metadata =
            FrameMetadata { encoding: Some("mono8".into()), width: Some(2), height: Some(2), ..Default::default() };
        assert!(matches!(
            check_input(&metadata, (None, None), 0, Payload::Bytes(Buffer::from_vec(vec![0u8; 4]))),
            Ok(CameraFrame::Raw(_))
        ));
        assert!(check_input(&metadata, (None, None), 0, Payload::Bytes(Buffer::from_vec(vec![0u8; 5]))).is_err());
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
