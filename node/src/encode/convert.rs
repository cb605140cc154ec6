//! Raw frame to the encoder's YUV 4:2:0 picture, straight into the encoder's frame where it can:
//! RGB of even size through yuvutils-rs (SIMD, 6-13x faster than swscale and exact to one level,
//! measured by `node/benches/convert.rs`), grey through a lookup table, NV12 and odd-sized RGB
//! through swscale, I420 by a copy, a JPEG's own planes through `frame::ycbcr`.
//! Odd sizes are padded to even by repeating the last column and row, so every source pixel
//! stays in the video.

use ffmpeg_next::{self as ff, format::Pixel, frame, software::scaling};
use yuvutils_rs::{BufferStoreMut, YuvConversionMode, YuvPlanarImageMut, YuvRange, YuvStandardMatrix};

use super::colour::ColourMatrix;
use crate::frame::{
    Frame, FrameFormat, PixelEncoding,
    ycbcr::{FullRangeYcbcr, Planes, limited_range_luma},
};

/// Pixel format every encoder gets: accepted by libx264, libx265 and NVENC alike.
pub const ENCODER_PIXEL: Pixel = Pixel::YUV420P;
/// Pixel format of depth (`mono16`) frames and of their lossless encoder.
pub const DEPTH_PIXEL: Pixel = Pixel::GRAY16LE;

/// The geometry of one plane of a tightly packed image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlaneLayout {
    /// Bytes of one row.
    pub row_bytes: usize,
    /// Number of rows.
    pub rows: usize,
    /// Bytes of one pixel within the row (repeated into padding).
    pub pixel_bytes: usize,
}

/// The planes of a `width` x `height` image in `encoding`, in payload order.
pub fn plane_layouts(encoding: PixelEncoding, width: u32, height: u32) -> Vec<PlaneLayout> {
    let (w, h) = (width as usize, height as usize);
    let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
    let plane = |pixel_bytes: usize, pixels: usize, rows: usize| PlaneLayout {
        row_bytes: pixels * pixel_bytes,
        rows,
        pixel_bytes,
    };
    match encoding {
        PixelEncoding::Bgr8 | PixelEncoding::Rgb8 => vec![plane(3, w, h)],
        PixelEncoding::Rgba8 | PixelEncoding::Bgra8 => vec![plane(4, w, h)],
        PixelEncoding::Mono8 => vec![plane(1, w, h)],
        PixelEncoding::Yuv420 | PixelEncoding::Yuvj420 => vec![plane(1, w, h), plane(1, cw, ch), plane(1, cw, ch)],
        PixelEncoding::Nv12 => vec![plane(1, w, h), plane(2, cw, ch)],
        PixelEncoding::Mono16 => vec![plane(2, w, h)],
    }
}

/// Copies one tightly packed plane into a strided destination of `dst_rows` rows of
/// `dst_row_bytes`, repeating the last pixel and the last row into any padding.
pub fn copy_plane_padded(
    src: &[u8],
    layout: PlaneLayout,
    dst: &mut [u8],
    dst_stride: usize,
    dst_row_bytes: usize,
    dst_rows: usize,
) {
    for row in 0..dst_rows {
        let src_row = row.min(layout.rows - 1);
        let source = &src[src_row * layout.row_bytes..][..layout.row_bytes];
        let target = &mut dst[row * dst_stride..][..dst_row_bytes];
        target[..layout.row_bytes].copy_from_slice(source);
        let last_pixel = &source[layout.row_bytes - layout.pixel_bytes..];
        for pad in target[layout.row_bytes..].chunks_exact_mut(layout.pixel_bytes) {
            pad.copy_from_slice(last_pixel);
        }
    }
}

/// The even size a frame is encoded at.
pub fn padded_size(width: u32, height: u32) -> (u32, u32) {
    ((width + 1) & !1, (height + 1) & !1)
}

/// The FFmpeg pixel format of a raw encoding (what swscale reads it as).
pub fn ffmpeg_pixel(encoding: PixelEncoding) -> Pixel {
    match encoding {
        PixelEncoding::Bgr8 => Pixel::BGR24,
        PixelEncoding::Rgb8 => Pixel::RGB24,
        PixelEncoding::Rgba8 => Pixel::RGBA,
        PixelEncoding::Bgra8 => Pixel::BGRA,
        PixelEncoding::Mono8 => Pixel::GRAY8,
        PixelEncoding::Yuv420 => Pixel::YUV420P,
        PixelEncoding::Yuvj420 => Pixel::YUVJ420P,
        PixelEncoding::Nv12 => Pixel::NV12,
        PixelEncoding::Mono16 => Pixel::GRAY16LE,
    }
}

/// How one frame format becomes the encoder's picture.
enum Path {
    /// yuvutils-rs from the payload straight into the picture.
    Rgb(YuvStandardMatrix),
    /// A lookup table from the payload into the luma plane; chroma is neutral.
    Grey(Box<[u8; 256]>),
    /// Copied into a staging frame (padded), then swscale into the picture (NV12).
    Swscale { staging: frame::Video, context: scaling::Context },
    /// Copied into the picture (already I420, or depth, which keeps its size and samples).
    Copy,
    /// A JPEG's own planes, into limited range and the recording's matrix.
    JpegPlanes(Box<FullRangeYcbcr>),
}

/// Converts frames of one [`FrameFormat`] into encoder pictures (which the caller owns and reuses).
pub struct Converter {
    format: FrameFormat,
    source_layouts: Vec<PlaneLayout>,
    padded_layouts: Vec<PlaneLayout>,
    path: Path,
}

impl Converter {
    /// A converter for `format`. Creates the swscale context, so call it on the thread that uses it.
    pub fn new(format: FrameFormat) -> Result<Self, ff::Error> {
        let (width, height) = match format.encoding.is_depth() {
            true => (format.width, format.height),
            false => padded_size(format.width, format.height),
        };
        let colour = ColourMatrix::for_size(width, height);
        let matrix = match colour {
            ColourMatrix::Bt601 => YuvStandardMatrix::Bt601,
            ColourMatrix::Bt709 => YuvStandardMatrix::Bt709,
        };
        let even = (width, height) == (format.width, format.height);
        let rgb = format.encoding.is_rgb();
        let path = match format.encoding {
            // yuvutils-rs 0.8 panics on odd sizes: those (rare) go through swscale below.
            _ if rgb && even => Path::Rgb(matrix),
            PixelEncoding::Mono8 => Path::Grey(Box::new(limited_range_luma())),
            PixelEncoding::Yuv420 | PixelEncoding::Mono16 => Path::Copy,
            PixelEncoding::Yuvj420 => Path::JpegPlanes(Box::new(FullRangeYcbcr::new(colour.luma_weights()))),
            _ => {
                // Exact rounding; the matrix matters for RGB only (NV12 to I420 moves chroma).
                let pixel = ffmpeg_pixel(format.encoding);
                let flags = scaling::Flags::BILINEAR | scaling::Flags::ACCURATE_RND | scaling::Flags::FULL_CHR_H_INT;
                let mut context = scaling::Context::get(pixel, width, height, ENCODER_PIXEL, width, height, flags)?;
                if rgb {
                    ColourMatrix::for_size(width, height).configure_scaler(&mut context)?;
                }
                Path::Swscale { staging: frame::Video::new(pixel, width, height), context }
            }
        };
        Ok(Self {
            format,
            source_layouts: plane_layouts(format.encoding, format.width, format.height),
            padded_layouts: plane_layouts(format.encoding, width, height),
            path,
        })
    }

    /// A new picture of the size and pixel format the encoder takes.
    pub fn new_picture(&self) -> frame::Video {
        let (width, height) = self.encoded_size();
        let pixel = if self.format.encoding.is_depth() { DEPTH_PIXEL } else { ENCODER_PIXEL };
        frame::Video::new(pixel, width, height)
    }

    /// The picture size the encoder must be opened with: depth as it is (FFV1 takes any size),
    /// everything else padded to even (4:2:0).
    pub fn encoded_size(&self) -> (u32, u32) {
        let (width, height) = (self.format.width, self.format.height);
        if self.format.encoding.is_depth() { (width, height) } else { padded_size(width, height) }
    }

    /// Converts `frame` (which must have this converter's format) into `picture` (from
    /// [`new_picture`](Self::new_picture)) and stamps it with `pts`.
    pub fn convert_into(&mut self, frame: &Frame, pts: i64, picture: &mut frame::Video) -> Result<(), ff::Error> {
        debug_assert_eq!(frame.format, self.format);
        make_writable(picture)?;
        match &mut self.path {
            Path::Rgb(matrix) => rgb_to_picture(frame, *matrix, picture)?,
            Path::Grey(lut) => {
                grey_to_picture(frame, lut, picture);
                pad_luma(picture, self.format.width, self.format.height);
            }
            Path::Swscale { staging, context } => {
                make_writable(staging)?;
                copy_planes_padded(frame, &self.source_layouts, &self.padded_layouts, staging);
                context.run(staging, picture)?;
            }
            Path::Copy => copy_planes_padded(frame, &self.source_layouts, &self.padded_layouts, picture),
            Path::JpegPlanes(transform) => {
                jpeg_planes_to_picture(frame, &self.source_layouts, transform, picture);
                pad_luma(picture, self.format.width, self.format.height);
            }
        }
        picture.set_pts(Some(pts));
        Ok(())
    }
}

/// Copies the payload's planes into `target`, padding odd sizes by repeating edges.
fn copy_planes_padded(frame: &Frame, sources: &[PlaneLayout], padded: &[PlaneLayout], target: &mut frame::Video) {
    let mut offset = 0;
    for (index, (source, padded)) in sources.iter().zip(padded).enumerate() {
        let plane_bytes = source.row_bytes * source.rows;
        let stride = target.stride(index);
        copy_plane_padded(
            &frame.data[offset..offset + plane_bytes],
            *source,
            target.data_mut(index),
            stride,
            padded.row_bytes,
            padded.rows,
        );
        offset += plane_bytes;
    }
}

/// The three planes of a YUV 4:2:0 picture as separate mutable slices, and their strides.
pub fn planes_mut(picture: &mut frame::Video) -> ([&mut [u8]; 3], [usize; 3]) {
    let strides = [0, 1, 2].map(|index| picture.stride(index));
    let lengths = [0, 1, 2].map(|index| strides[index] * picture.plane_height(index) as usize);
    // SAFETY: `av_frame_get_buffer` gave every plane its own `stride * rows` bytes and no two
    // planes overlap; the slices borrow `picture` mutably, so nothing else touches them meanwhile.
    let planes = [0, 1, 2].map(|index| unsafe {
        let data = (*picture.as_mut_ptr()).data[index];
        std::slice::from_raw_parts_mut(data, lengths[index])
    });
    (planes, strides)
}

/// A JPEG's planes into the picture (whose chroma planes are as large as the frame's; odd luma is
/// padded afterwards).
fn jpeg_planes_to_picture(
    frame: &Frame,
    layouts: &[PlaneLayout],
    transform: &mut FullRangeYcbcr,
    picture: &mut frame::Video,
) {
    let (luma, chroma) = frame.data.split_at(layouts[0].row_bytes * layouts[0].rows);
    let (cb, cr) = chroma.split_at(layouts[1].row_bytes * layouts[1].rows);
    let source = Planes { data: [luma, cb, cr], strides: [0, 1, 2].map(|plane| layouts[plane].row_bytes) };
    let (data, strides) = planes_mut(picture);
    let (width, height) = (frame.format.width as usize, frame.format.height as usize);
    transform.apply(&source, &mut Planes { data, strides }, width, height);
}

/// RGB payload (even size) into the picture's planes: limited range, the recording's matrix.
fn rgb_to_picture(frame: &Frame, matrix: YuvStandardMatrix, picture: &mut frame::Video) -> Result<(), ff::Error> {
    let (width, height) = (frame.format.width, frame.format.height);
    rgb_to_yuv420(frame.format.encoding, &frame.data, (width, height), matrix, YuvConversionMode::Balanced, picture)
}

/// Packed RGB `pixels` (`encoding` one of bgr8, rgb8, rgba8, bgra8; `size` even) into a YUV
/// 4:2:0 picture with yuvutils-rs, limited range. Public for the convert benchmark, which
/// compares conversion modes.
pub fn rgb_to_yuv420(
    encoding: PixelEncoding,
    pixels: &[u8],
    (width, height): (u32, u32),
    matrix: YuvStandardMatrix,
    mode: YuvConversionMode,
    picture: &mut frame::Video,
) -> Result<(), ff::Error> {
    let ([y, u, v], [y_stride, u_stride, v_stride]) = planes_mut(picture);
    let mut image = YuvPlanarImageMut {
        y_plane: BufferStoreMut::Borrowed(y),
        y_stride: y_stride as u32,
        u_plane: BufferStoreMut::Borrowed(u),
        u_stride: u_stride as u32,
        v_plane: BufferStoreMut::Borrowed(v),
        v_stride: v_stride as u32,
        width,
        height,
    };
    let convert = match encoding {
        PixelEncoding::Bgr8 => yuvutils_rs::bgr_to_yuv420,
        PixelEncoding::Rgb8 => yuvutils_rs::rgb_to_yuv420,
        PixelEncoding::Rgba8 => yuvutils_rs::rgba_to_yuv420,
        PixelEncoding::Bgra8 => yuvutils_rs::bgra_to_yuv420,
        _ => return Err(ff::Error::InvalidData),
    };
    let row_bytes = plane_layouts(encoding, width, height)[0].row_bytes as u32;
    convert(&mut image, pixels, row_bytes, YuvRange::Limited, matrix, mode).map_err(|_| ff::Error::InvalidData)
}

/// Grey payload into the luma plane through `lut`; chroma neutral (128).
fn grey_to_picture(frame: &Frame, lut: &[u8; 256], picture: &mut frame::Video) {
    let (width, height) = (frame.format.width as usize, frame.format.height as usize);
    let ([y, u, v], [y_stride, _, _]) = planes_mut(picture);
    for (row, source) in frame.data.chunks_exact(width).take(height).enumerate() {
        for (target, grey) in y[row * y_stride..][..width].iter_mut().zip(source) {
            *target = lut[usize::from(*grey)];
        }
    }
    u.fill(128);
    v.fill(128);
}

/// Repeats the last luma column and row into the padding of an odd-sized picture (the chroma
/// planes are complete already).
fn pad_luma(picture: &mut frame::Video, width: u32, height: u32) {
    let (width, height) = (width as usize, height as usize);
    let (padded_width, padded_height) = (picture.width() as usize, picture.height() as usize);
    let stride = picture.stride(0);
    let luma = picture.data_mut(0);
    if padded_width > width {
        for row in 0..height {
            luma[row * stride + width] = luma[row * stride + width - 1];
        }
    }
    if padded_height > height {
        let (above, below) = luma.split_at_mut(height * stride);
        below[..padded_width].copy_from_slice(&above[(height - 1) * stride..][..padded_width]);
    }
}

/// The encoder may still hold a reference to the last picture; writing into a shared buffer
/// would corrupt it, so get a private one first (a no-op when nobody else holds it).
fn make_writable(picture: &mut frame::Video) -> Result<(), ff::Error> {
    // SAFETY: the pointer is a valid, allocated AVFrame owned by `picture`.
    let status = unsafe { ff::ffi::av_frame_make_writable(picture.as_mut_ptr()) };
    if status < 0 { Err(ff::Error::from(status)) } else { Ok(()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn odd_sizes_pad_to_even() {
        assert_eq!(padded_size(641, 481), (642, 482));
        assert_eq!(padded_size(640, 480), (640, 480));
        assert_eq!(padded_size(1, 1), (2, 2));
    }

    #[test]
    fn layouts_cover_the_payload_exactly() {
        for encoding in [
            PixelEncoding::Bgr8,
            PixelEncoding::Rgba8,
            PixelEncoding::Mono8,
            PixelEncoding::Yuv420,
            PixelEncoding::Nv12,
        ] {
            let total: usize = plane_layouts(encoding, 641, 481).iter().map(|p| p.row_bytes * p.rows).sum();
            assert_eq!(total, encoding.byte_len(641, 481), "{encoding:?}");
        }
    }

    #[test]
    fn padding_repeats_the_last_column_and_row() {
        // A 3x1 RGB image into a 4x2 destination with stride 16.
        let src = [1, 2, 3, 4, 5, 6, 7, 8, 9];
        let layout = PlaneLayout { row_bytes: 9, rows: 1, pixel_bytes: 3 };
        let mut dst = vec![0u8; 32];
        copy_plane_padded(&src, layout, &mut dst, 16, 12, 2);
        assert_eq!(&dst[..12], &[1, 2, 3, 4, 5, 6, 7, 8, 9, 7, 8, 9]);
        assert_eq!(&dst[16..28], &[1, 2, 3, 4, 5, 6, 7, 8, 9, 7, 8, 9]);
        assert_eq!(&dst[12..16], &[0; 4], "stride padding is left alone");
    }
}
