//! Raw frame to the encoder's YUV 4:2:0 picture: copy row by row (FFmpeg frames have padded
//! strides), pad odd sizes to even by repeating the last column and row so every source pixel
//! stays in the video, then convert the colour layout with swscale.

use ffmpeg_next::{self as ff, format::Pixel, frame, software::scaling};

use super::colour::ColourMatrix;
use crate::frame::{Frame, FrameFormat, PixelEncoding};

/// Pixel format every encoder gets: accepted by libx264, libx265 and NVENC alike.
pub const ENCODER_PIXEL: Pixel = Pixel::YUV420P;

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
        PixelEncoding::Yuv420 => vec![plane(1, w, h), plane(1, cw, ch), plane(1, cw, ch)],
        PixelEncoding::Nv12 => vec![plane(1, w, h), plane(2, cw, ch)],
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

fn ffmpeg_pixel(encoding: PixelEncoding) -> Pixel {
    match encoding {
        PixelEncoding::Bgr8 => Pixel::BGR24,
        PixelEncoding::Rgb8 => Pixel::RGB24,
        PixelEncoding::Rgba8 => Pixel::RGBA,
        PixelEncoding::Bgra8 => Pixel::BGRA,
        PixelEncoding::Mono8 => Pixel::GRAY8,
        PixelEncoding::Yuv420 => Pixel::YUV420P,
        PixelEncoding::Nv12 => Pixel::NV12,
    }
}

/// Whether the encoding is RGB (converted with the recording's matrix) rather than Y'CbCr or
/// grey (passed through as they are).
fn is_rgb(encoding: PixelEncoding) -> bool {
    matches!(encoding, PixelEncoding::Bgr8 | PixelEncoding::Rgb8 | PixelEncoding::Rgba8 | PixelEncoding::Bgra8)
}

/// Converts frames of one [`FrameFormat`] into encoder pictures, reusing its buffers.
pub struct Converter {
    format: FrameFormat,
    source_layouts: Vec<PlaneLayout>,
    padded_layouts: Vec<PlaneLayout>,
    /// The frame in its own layout at the padded size.
    staging: frame::Video,
    /// swscale and its output, unless the source already is YUV 4:2:0.
    scaler: Option<(scaling::Context, frame::Video)>,
}

impl Converter {
    /// A converter for `format`. Creates the swscale context, so call it on the thread that uses it.
    pub fn new(format: FrameFormat) -> Result<Self, ff::Error> {
        let (width, height) = padded_size(format.width, format.height);
        let pixel = ffmpeg_pixel(format.encoding);
        let scaler = if pixel == ENCODER_PIXEL {
            None
        } else {
            // Exact rounding: the default fast path is several levels off on saturated colours.
            let flags = scaling::Flags::BILINEAR | scaling::Flags::ACCURATE_RND | scaling::Flags::FULL_CHR_H_INT;
            let mut context = scaling::Context::get(pixel, width, height, ENCODER_PIXEL, width, height, flags)?;
            if is_rgb(format.encoding) {
                ColourMatrix::for_size(width, height).configure_scaler(&mut context)?;
            }
            Some((context, frame::Video::new(ENCODER_PIXEL, width, height)))
        };
        Ok(Self {
            format,
            source_layouts: plane_layouts(format.encoding, format.width, format.height),
            padded_layouts: plane_layouts(format.encoding, width, height),
            staging: frame::Video::new(pixel, width, height),
            scaler,
        })
    }

    /// The picture size the encoder must be opened with.
    pub fn encoded_size(&self) -> (u32, u32) {
        padded_size(self.format.width, self.format.height)
    }

    /// Converts `frame` (which must have this converter's format) and stamps it with `pts`.
    pub fn convert(&mut self, frame: &Frame, pts: i64) -> Result<&frame::Video, ff::Error> {
        debug_assert_eq!(frame.format, self.format);
        make_writable(&mut self.staging)?;
        let mut offset = 0;
        for (index, (source, padded)) in self.source_layouts.iter().zip(&self.padded_layouts).enumerate() {
            let plane_bytes = source.row_bytes * source.rows;
            let stride = self.staging.stride(index);
            copy_plane_padded(
                &frame.data[offset..offset + plane_bytes],
                *source,
                self.staging.data_mut(index),
                stride,
                padded.row_bytes,
                padded.rows,
            );
            offset += plane_bytes;
        }
        let picture = match &mut self.scaler {
            None => &mut self.staging,
            Some((context, output)) => {
                make_writable(output)?;
                context.run(&self.staging, output)?;
                output
            }
        };
        picture.set_pts(Some(pts));
        Ok(picture)
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
