//! `COMPRESSED=copy`: a camera's JPEG frames are stored as Motion JPEG exactly as they came,
//! never decoded or encoded (zero-CPU recording of USB cameras that deliver MJPEG).
//!
//! Decisions, all said in the README:
//! - Only JPEG is copied. PNG, BMP and WebP have no streaming container players read, and raw
//!   frames have nothing to copy: they are decoded and encoded with `CODEC` as in `decode` mode.
//!   A camera that switches between JPEG and anything else starts a new file at each switch, as
//!   for any format change.
//! - A JPEG of another size than the file's starts the next file (never a rescale).
//! - A JPEG is checked cheaply first ([`crate::frame::jpeg::read_header`]: start and end markers,
//!   the markers up to the scan, a baseline, extended or progressive frame header): a cut-off or
//!   garbage image is skipped and counted, so the file holds only images every player decodes.
//! - The file is Matroska or AVI; `FORMAT=mp4` gives Matroska (see [`copy_container`]).
//! - `OVERLAY` cannot draw into images that are not decoded: with it, JPEGs are decoded.
//! - H.264/H.265/AV1 access units are not copied: starting a file needs the stream's parameter
//!   sets and keyframes found in its bitstream, which the recorder does not parse. They stay
//!   skipped and counted.

use std::{sync::Once, time::Instant};

use crate::{
    encode::Container,
    frame::{
        Frame, FrameFormat, ImageCodec, ImageFrame,
        jpeg::{JpegHeader, read_header},
    },
    limiter::LogLimiter,
};

/// What the recorder does with a camera's compressed images (`COMPRESSED`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Compressed {
    /// Decode them and encode the pictures with `CODEC`, like raw frames.
    #[default]
    Decode,
    /// Store JPEGs as they came (Motion JPEG); other images are decoded.
    Copy,
}

impl Compressed {
    /// What `COMPRESSED` accepts, for error messages.
    pub const ALLOWED: &'static str = "decode or copy";

    /// Parses a `COMPRESSED` value.
    pub fn parse(value: &str) -> Option<Self> {
        match value.trim().to_ascii_lowercase().as_str() {
            "decode" => Some(Self::Decode),
            "copy" => Some(Self::Copy),
            _ => None,
        }
    }
}

/// A JPEG to store as it came, with the size its header states.
#[derive(Debug, Clone)]
pub struct JpegFrame {
    /// The image as it arrived.
    pub image: ImageFrame,
    /// Its size.
    pub header: JpegHeader,
}

/// What a camera's job records: pixels to encode, or a JPEG to copy.
#[derive(Debug, Clone)]
pub enum JobFrame {
    /// Raw pixels (or a decoded image).
    Raw(Frame),
    /// A JPEG stored as it came.
    Jpeg(JpegFrame),
}

impl JobFrame {
    /// The stream format it belongs to: a file holds one.
    pub fn format(&self) -> StreamFormat {
        match self {
            Self::Raw(frame) => StreamFormat::Raw(frame.format),
            Self::Jpeg(jpeg) => StreamFormat::Mjpeg(jpeg.header),
        }
    }

    /// When the camera sent it (Unix nanoseconds).
    pub fn sent_nanos(&self) -> u64 {
        match self {
            Self::Raw(frame) => frame.sent_nanos,
            Self::Jpeg(jpeg) => jpeg.image.sent_nanos,
        }
    }
}

/// What one file holds: encoded pictures of one format, or copied JPEGs of one size. When it
/// changes, the next file starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamFormat {
    /// Pictures of this format, encoded.
    Raw(FrameFormat),
    /// JPEGs of this size, copied.
    Mjpeg(JpegHeader),
}

impl std::fmt::Display for StreamFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Raw(format) => format.fmt(f),
            Self::Mjpeg(header) => write!(f, "{}x{} jpeg (copied)", header.width, header.height),
        }
    }
}

/// The container of copied JPEGs for `FORMAT`: Matroska and AVI hold Motion JPEG and keep it;
/// MP4 becomes Matroska. FFmpeg can put JPEG into MP4, but browsers, the usual reason to choose
/// MP4, do not play Motion JPEG (Chromium in no container), and the recorder's MP4 crash repair
/// and index are built for H.264/H.265 fragments.
pub fn copy_container(format: Container) -> Container {
    match format {
        Container::Mp4 => {
            static NOTED: Once = Once::new();
            NOTED.call_once(|| {
                tracing::info!("COMPRESSED=copy stores JPEG cameras as Motion JPEG in Matroska (.mkv): FORMAT=mp4 does not hold it for the players MP4 is chosen for");
            });
            Container::Mkv
        }
        other => other,
    }
}

/// Checks JPEGs for copying on a camera's worker thread.
#[derive(Default)]
pub struct JpegCopier {
    limiter: LogLimiter,
    size_mismatch_logged: bool,
}

impl JpegCopier {
    /// The JPEG to copy, or `None` when it is no whole playable JPEG (logged, rate-limited; the
    /// caller counts it as skipped). Any other image is given back to be decoded.
    pub fn check(&mut self, camera: &str, image: ImageFrame) -> Result<Option<JpegFrame>, ImageFrame> {
        if image.codec != ImageCodec::Jpeg {
            return Err(image);
        }
        match read_header(&image.data) {
            Ok(header) => {
                self.check_declared(camera, &image, header);
                Ok(Some(JpegFrame { image, header }))
            }
            Err(error) => {
                if let Some(suppressed) = self.limiter.allow("copy", Instant::now()) {
                    tracing::warn!(camera, suppressed, bytes = image.data.len(), "skipped frame: {error}");
                }
                Ok(None)
            }
        }
    }

    /// The image's own size is the truth; metadata that says otherwise is worth one line.
    fn check_declared(&mut self, camera: &str, image: &ImageFrame, header: JpegHeader) {
        let Some((width, height)) = image.declared else { return };
        if (width, height) != (header.width, header.height) && !self.size_mismatch_logged {
            self.size_mismatch_logged = true;
            tracing::warn!(
                camera,
                declared = format_args!("{width}x{height}"),
                image = format_args!("{}x{}", header.width, header.height),
                "the jpeg images' width/height metadata disagree with the images: storing them at the images' size (logged once)"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::buffer::Buffer;

    use super::*;

    fn image(codec: ImageCodec, bytes: Vec<u8>) -> ImageFrame {
        ImageFrame { codec, declared: None, sent_nanos: 9, data: Buffer::from_vec(bytes), ids: Arc::default() }
    }

    #[test]
    fn compressed_takes_decode_or_copy() {
        assert_eq!(Compressed::parse(" Copy"), Some(Compressed::Copy));
        assert_eq!(Compressed::parse("decode"), Some(Compressed::Decode));
        assert_eq!(Compressed::parse("remux"), None);
        assert_eq!(Compressed::default(), Compressed::Decode);
    }

    #[test]
    fn copied_jpegs_go_to_matroska_or_avi() {
        assert_eq!(copy_container(Container::Mp4), Container::Mkv);
        assert_eq!(copy_container(Container::Mkv), Container::Mkv);
        assert_eq!(copy_container(Container::Avi), Container::Avi);
    }

    #[test]
    fn only_whole_jpegs_are_copied_and_other_images_go_to_the_decoder() {
        use dora_recorder_test_nodes::{compress::ImageFormat, encoding::Encoding, pattern};
        let format = pattern::FrameFormat::new(64, 48, Encoding::Rgb8).unwrap();
        let rgb = pattern::draw_frame(&format, 1, 0);
        let jpeg = ImageFormat::Jpeg.compress(&rgb, 64, 48).unwrap();
        let mut copier = JpegCopier::default();
        let copied = copier.check("cam", image(ImageCodec::Jpeg, jpeg.clone())).unwrap().unwrap();
        assert_eq!(copied.header, JpegHeader { width: 64, height: 48 });
        let frame = JobFrame::Jpeg(copied);
        assert_eq!(
            (frame.format(), frame.sent_nanos()),
            (StreamFormat::Mjpeg(JpegHeader { width: 64, height: 48 }), 9)
        );
        assert!(copier.check("cam", image(ImageCodec::Jpeg, jpeg[..jpeg.len() / 2].to_vec())).unwrap().is_none());
        let png = ImageFormat::Png.compress(&rgb, 64, 48).unwrap();
        assert!(copier.check("cam", image(ImageCodec::Png, png)).is_err(), "a PNG is decoded");
    }
}
