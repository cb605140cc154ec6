//! Video files to raw frames with FFmpeg: the only module of the replay that uses FFmpeg.
//!
//! A [`VideoDecoder`] reads one file's first video stream frame by frame and converts each frame
//! with swscale straight into a caller's buffer (dora's output sample), in the layout of the
//! recorder's [`PixelEncoding`]s. A file cut short by a crash decodes what it holds: a read
//! error past the last complete packet ends the file, it is not a failure.

use std::path::{Path, PathBuf};

use dora_video_recorder::{PixelEncoding, encode::ffmpeg_pixel, encode::plane_layouts};
use ffmpeg_next::{self as ff, Packet, Rational, color, format::Pixel, frame, media, software::scaling};

/// Why a video cannot be decoded.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// FFmpeg cannot open or decode the file.
    #[error("cannot decode {file}: {what}: {source}")]
    Ffmpeg {
        /// The video.
        file: PathBuf,
        /// The step that failed.
        what: &'static str,
        /// FFmpeg's error.
        source: ff::Error,
    },
    /// The file has no video stream.
    #[error("{0} has no video stream")]
    NoVideo(PathBuf),
    /// The caller's buffer does not fit the frame.
    #[error("a {width}x{height} {encoding} frame needs {needed} bytes, the buffer has {given}")]
    BufferSize {
        /// Frame width.
        width: u32,
        /// Frame height.
        height: u32,
        /// Layout asked for.
        encoding: &'static str,
        /// Bytes needed.
        needed: usize,
        /// Bytes given.
        given: usize,
    },
}

/// Pixels from which a video gets several decoding threads (1280x720).
const HD_PIXELS: u64 = 1280 * 720;

/// Width and height the stream's parameters declare.
fn parameters_size(context: &ff::codec::context::Context) -> (u32, u32) {
    // SAFETY: the context was just built from the stream's parameters and is not shared.
    let raw = unsafe { &*context.as_ptr() };
    (u32::try_from(raw.width).unwrap_or(0), u32::try_from(raw.height).unwrap_or(0))
}

/// Initializes FFmpeg once per process and keeps its log to errors.
pub fn init() -> Result<(), ff::Error> {
    ff::init()?;
    ff::util::log::set_level(ff::util::log::Level::Error);
    Ok(())
}

/// One decoded frame.
pub struct DecodedFrame {
    picture: frame::Video,
    /// Time from the file's first frame, from the file's own timestamps (`None` without any).
    pub pts_ns: Option<u64>,
}

impl DecodedFrame {
    /// Width and height in pixels.
    pub fn size(&self) -> (u32, u32) {
        (self.picture.width(), self.picture.height())
    }
}

/// A video file being decoded, frame by frame.
pub struct VideoDecoder {
    file: PathBuf,
    input: ff::format::context::Input,
    stream: usize,
    decoder: ff::decoder::Video,
    time_base: Rational,
    first_pts: Option<i64>,
    /// End of input was sent to the decoder: only buffered frames are left.
    draining: bool,
    /// Packets skipped as corrupt.
    pub corrupt_packets: u64,
    scaler: Option<Scaler>,
}

/// A swscale context and what it was built for.
struct Scaler {
    context: scaling::Context,
    from: (Pixel, u32, u32),
    to: PixelEncoding,
}

impl VideoDecoder {
    /// Opens `path` and its first video stream's decoder.
    pub fn open(path: &Path) -> Result<Self, DecodeError> {
        let fail = |what, source| DecodeError::Ffmpeg { file: path.to_owned(), what, source };
        let input = ff::format::input(&path).map_err(|e| fail("open", e))?;
        let stream = input.streams().best(media::Type::Video).ok_or_else(|| DecodeError::NoVideo(path.to_owned()))?;
        let (index, time_base) = (stream.index(), stream.time_base());
        let mut context = ff::codec::context::Context::from_parameters(stream.parameters())
            .map_err(|e| fail("read the stream parameters", e))?;
        // Small videos decode fast on one thread; more threads would only compete with the
        // sender and the dataflow's other nodes for the CPU. HD takes what FFmpeg finds useful.
        let (width, height) = parameters_size(&context);
        let threads = if u64::from(width) * u64::from(height) >= HD_PIXELS { 0 } else { 1 };
        context.set_threading(ff::threading::Config {
            kind: ff::threading::Type::Frame,
            count: threads,
            ..Default::default()
        });
        let decoder = context.decoder().video().map_err(|e| fail("open the decoder", e))?;
        Ok(Self {
            file: path.to_owned(),
            input,
            stream: index,
            decoder,
            time_base,
            first_pts: None,
            draining: false,
            corrupt_packets: 0,
            scaler: None,
        })
    }

    /// Whether the video holds depth (16-bit grey, the recorder's FFV1 depth files).
    pub fn is_depth(&self) -> bool {
        matches!(self.decoder.format(), Pixel::GRAY16LE | Pixel::GRAY16BE)
    }

    /// The next frame in presentation order, `None` at the end of what the file holds.
    pub fn next_frame(&mut self) -> Result<Option<DecodedFrame>, DecodeError> {
        let mut picture = frame::Video::empty();
        loop {
            match self.decoder.receive_frame(&mut picture) {
                Ok(()) => return Ok(Some(self.timed(picture))),
                Err(ff::Error::Eof) => return Ok(None),
                Err(ff::Error::Other { errno }) if errno == ff::error::EAGAIN => self.feed()?,
                // A frame that fails to decode (a damaged packet): skip it.
                Err(ff::Error::InvalidData) => self.corrupt_packets += 1,
                Err(error) => return Err(self.error("decode a frame", error)),
            }
        }
    }

    /// Converts `frame` into `out`, laid out as `encoding` (planes packed one after the other,
    /// rows without padding), the size of the frame.
    pub fn convert(
        &mut self,
        frame: &DecodedFrame,
        encoding: PixelEncoding,
        out: &mut [u8],
    ) -> Result<(), DecodeError> {
        let picture = &frame.picture;
        let (width, height) = frame.size();
        let needed = encoding.byte_len(width, height);
        if out.len() != needed {
            let given = out.len();
            return Err(DecodeError::BufferSize { width, height, encoding: encoding.name(), needed, given });
        }
        let scaler =
            self.scaler_for(picture.format(), width, height, encoding, picture.color_space(), picture.color_range())?;
        let mut planes: [*mut u8; 4] = [std::ptr::null_mut(); 4];
        let mut strides: [i32; 4] = [0; 4];
        let mut offset = 0;
        for (index, plane) in plane_layouts(encoding, width, height).iter().enumerate() {
            // In bounds: the planes add up to `encoding.byte_len`, which is `out.len()`.
            planes[index] = out[offset..].as_mut_ptr();
            strides[index] = i32::try_from(plane.row_bytes).unwrap_or(i32::MAX);
            offset += plane.row_bytes * plane.rows;
        }
        // SAFETY: the source planes and strides are the decoded frame's own, valid for its
        // height; each destination plane points into `out` with room for `rows * row_bytes` bytes
        // (checked above), and swscale writes `row_bytes` per row for `height` rows of the
        // context's output size, which is the frame's size.
        let rows = unsafe {
            let source = picture.as_ptr();
            ff::ffi::sws_scale(
                scaler.as_mut_ptr(),
                (*source).data.as_ptr().cast(),
                (*source).linesize.as_ptr(),
                0,
                i32::try_from(height).unwrap_or(i32::MAX),
                planes.as_ptr(),
                strides.as_ptr(),
            )
        };
        if rows < 0 {
            return Err(self.error("convert a frame", ff::Error::from(rows)));
        }
        Ok(())
    }

    /// The swscale context for this source and output, built when either changes.
    fn scaler_for(
        &mut self,
        format: Pixel,
        width: u32,
        height: u32,
        encoding: PixelEncoding,
        space: color::Space,
        range: color::Range,
    ) -> Result<&mut scaling::Context, DecodeError> {
        let from = (format, width, height);
        if self.scaler.as_ref().is_none_or(|scaler| scaler.from != from || scaler.to != encoding) {
            let mut context = scaling::Context::get(
                format,
                width,
                height,
                ffmpeg_pixel(encoding),
                width,
                height,
                scaling::Flags::BILINEAR,
            )
            .map_err(|e| self.error("set up the pixel conversion", e))?;
            if encoding.is_rgb() {
                set_yuv_to_rgb_matrix(&mut context, space, range);
            }
            self.scaler = Some(Scaler { context, from, to: encoding });
        }
        let file = &self.file;
        match self.scaler.as_mut() {
            Some(scaler) => Ok(&mut scaler.context),
            None => Err(DecodeError::Ffmpeg {
                file: file.clone(),
                what: "set up the pixel conversion",
                source: ff::Error::Bug,
            }),
        }
    }

    /// Reads the next packet of the stream into the decoder, or ends the input.
    fn feed(&mut self) -> Result<(), DecodeError> {
        if self.draining {
            // The decoder said "again" after the end of input: nothing more will come.
            return self.decoder.send_eof().or(Ok(()));
        }
        let mut packet = Packet::empty();
        loop {
            match packet.read(&mut self.input) {
                Ok(()) if packet.stream() != self.stream => {}
                Ok(()) => {
                    return match self.decoder.send_packet(&packet) {
                        Err(ff::Error::InvalidData) => {
                            self.corrupt_packets += 1;
                            Ok(())
                        }
                        sent => sent.map_err(|e| self.error("decode a packet", e)),
                    };
                }
                Err(ff::Error::InvalidData) => self.corrupt_packets += 1,
                Err(error) => {
                    if error != ff::Error::Eof {
                        // A file cut short (a crash, a full disk): what came before still plays.
                        tracing::warn!(video = %self.file.display(), "the file ends early ({error}): playing what it holds");
                    }
                    self.draining = true;
                    return self.decoder.send_eof().map_err(|e| self.error("flush the decoder", e));
                }
            }
        }
    }

    /// `picture` with its time from the file's first frame.
    fn timed(&mut self, picture: frame::Video) -> DecodedFrame {
        let pts_ns = picture.timestamp().or(picture.pts()).map(|pts| {
            let first = *self.first_pts.get_or_insert(pts);
            let ticks = i128::from(pts - first).max(0);
            let (num, den) = (i128::from(self.time_base.numerator()), i128::from(self.time_base.denominator().max(1)));
            u64::try_from(ticks * num * 1_000_000_000 / den).unwrap_or(u64::MAX)
        });
        DecodedFrame { picture, pts_ns }
    }

    fn error(&self, what: &'static str, source: ff::Error) -> DecodeError {
        DecodeError::Ffmpeg { file: self.file.clone(), what, source }
    }
}

/// Makes `context` read Y'CbCr with the stream's matrix and range (BT.709 for HD recordings,
/// BT.601 below, as the recorder tags them) and write full-range RGB.
fn set_yuv_to_rgb_matrix(context: &mut scaling::Context, space: color::Space, range: color::Range) {
    let standard = match space {
        color::Space::BT709 => ff::ffi::SWS_CS_ITU709,
        _ => ff::ffi::SWS_CS_ITU601,
    };
    let source_full_range = i32::from(range == color::Range::JPEG);
    // SAFETY: the context is a valid, initialized SwsContext owned by `context`; the coefficient
    // tables are static arrays inside libswscale.
    let status = unsafe {
        let table = ff::ffi::sws_getCoefficients(standard);
        // Destination range 1 = full (RGB); brightness 0, contrast and saturation 1.0 in 16.16.
        ff::ffi::sws_setColorspaceDetails(context.as_mut_ptr(), table, source_full_range, table, 1, 0, 1 << 16, 1 << 16)
    };
    if status < 0 {
        tracing::debug!("swscale keeps its default colour matrix (status {status})");
    }
}
