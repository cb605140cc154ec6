//! An RGB drawing surface: the test pattern is drawn here once, then packed into the requested
//! [`Encoding`].

use crate::encoding::{Encoding, chroma_limited_range, chroma_size, clamp_u8, luma_full_range, luma_limited_range};

/// An RGB colour.
pub type Rgb = [u8; 3];

/// Pure white.
pub const WHITE: Rgb = [255, 255, 255];
/// Pure black.
pub const BLACK: Rgb = [0, 0, 0];

/// A width x height grid of RGB pixels, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Canvas {
    width: usize,
    height: usize,
    pixels: Vec<Rgb>,
}

impl Canvas {
    /// A black canvas.
    pub fn new(width: usize, height: usize) -> Self {
        Self { width, height, pixels: vec![BLACK; width * height] }
    }

    /// Width in pixels.
    pub fn width(&self) -> usize {
        self.width
    }

    /// Height in pixels.
    pub fn height(&self) -> usize {
        self.height
    }

    /// The pixel at (`x`, `y`); panics outside the canvas (callers iterate over its size).
    pub fn pixel(&self, x: usize, y: usize) -> Rgb {
        self.pixels[y * self.width + x]
    }

    /// Sets every pixel from a function of its coordinates.
    pub fn fill_with(&mut self, mut colour_at: impl FnMut(usize, usize) -> Rgb) {
        for y in 0..self.height {
            for x in 0..self.width {
                self.pixels[y * self.width + x] = colour_at(x, y);
            }
        }
    }

    /// Fills a rectangle, clipped to the canvas.
    pub fn fill_rect(&mut self, x: usize, y: usize, width: usize, height: usize, colour: Rgb) {
        let x_end = (x + width).min(self.width);
        let y_end = (y + height).min(self.height);
        for row in y.min(y_end)..y_end {
            let start = row * self.width;
            self.pixels[start + x.min(x_end)..start + x_end].fill(colour);
        }
    }

    /// Fills the disc inscribed in the `diameter` x `diameter` square whose top-left pixel is
    /// (`x`, `y`): the pixels whose centres are within `diameter / 2` of the square's centre.
    /// Clipped to the canvas.
    pub fn fill_disc(&mut self, x: usize, y: usize, diameter: usize, colour: Rgb) {
        // Twice the offset of a pixel centre from the disc centre, along one axis.
        let doubled_offset = |index: usize| (2 * index + 1).abs_diff(diameter);
        for row in 0..diameter.min(self.height.saturating_sub(y)) {
            let dy = doubled_offset(row);
            for column in 0..diameter.min(self.width.saturating_sub(x)) {
                let dx = doubled_offset(column);
                if dx * dx + dy * dy <= diameter * diameter {
                    self.pixels[(y + row) * self.width + x + column] = colour;
                }
            }
        }
    }

    /// Packs the canvas into a frame payload of the given encoding.
    pub fn encode(&self, encoding: Encoding) -> Vec<u8> {
        match encoding {
            Encoding::Rgb8 => self.packed(|[r, g, b]| vec![r, g, b]),
            Encoding::Bgr8 => self.packed(|[r, g, b]| vec![b, g, r]),
            Encoding::Rgba8 => self.packed(|[r, g, b]| vec![r, g, b, 255]),
            Encoding::Bgra8 => self.packed(|[r, g, b]| vec![b, g, r, 255]),
            Encoding::Mono8 => self.pixels.iter().copied().map(luma_full_range).collect(),
            Encoding::Yuv420 => self.planar_yuv(false),
            Encoding::Nv12 => self.planar_yuv(true),
        }
    }

    /// Packed formats: each pixel becomes the bytes `layout` returns.
    fn packed(&self, layout: impl Fn(Rgb) -> Vec<u8>) -> Vec<u8> {
        self.pixels.iter().copied().flat_map(layout).collect()
    }

    /// 4:2:0 formats: a limited-range Y plane, then either separate U and V planes (I420) or one
    /// interleaved UV plane (NV12).
    fn planar_yuv(&self, interleaved: bool) -> Vec<u8> {
        let mut bytes: Vec<u8> = self.pixels.iter().copied().map(luma_limited_range).collect();
        let (u_plane, v_plane) = self.chroma_planes();
        if interleaved {
            bytes.extend(u_plane.iter().zip(&v_plane).flat_map(|(&u, &v)| [u, v]));
        } else {
            bytes.extend(u_plane);
            bytes.extend(v_plane);
        }
        bytes
    }

    /// U and V planes, each sample the mean over its 2x2 block (1 or 2 pixels on odd edges).
    fn chroma_planes(&self) -> (Vec<u8>, Vec<u8>) {
        let (chroma_width, chroma_height) = chroma_size(self.width, self.height);
        let mut u_plane = Vec::with_capacity(chroma_width * chroma_height);
        let mut v_plane = Vec::with_capacity(chroma_width * chroma_height);
        for cy in 0..chroma_height {
            for cx in 0..chroma_width {
                let (u, v) = self.mean_chroma(2 * cx, 2 * cy);
                u_plane.push(u);
                v_plane.push(v);
            }
        }
        (u_plane, v_plane)
    }

    /// Mean limited-range chroma of the up-to-2x2 block whose top-left pixel is (`x`, `y`).
    fn mean_chroma(&self, x: usize, y: usize) -> (u8, u8) {
        let (mut u_sum, mut v_sum, mut count) = (0_i32, 0_i32, 0_i32);
        for py in y..(y + 2).min(self.height) {
            for px in x..(x + 2).min(self.width) {
                let (u, v) = chroma_limited_range(self.pixel(px, py));
                u_sum += u;
                v_sum += v;
                count += 1;
            }
        }
        let mean = |sum: i32| clamp_u8((sum + count / 2) / count);
        (mean(u_sum), mean(v_sum))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fill_rect_clips_at_the_edges() {
        let mut canvas = Canvas::new(4, 3);
        canvas.fill_rect(2, 1, 10, 10, WHITE);
        assert_eq!(canvas.pixel(1, 1), BLACK);
        assert_eq!(canvas.pixel(2, 1), WHITE);
        assert_eq!(canvas.pixel(3, 2), WHITE);
        canvas.fill_rect(9, 9, 2, 2, WHITE);
    }

    #[test]
    fn a_disc_touches_the_middle_of_each_side_of_its_box_but_not_the_corners() {
        let mut canvas = Canvas::new(12, 12);
        canvas.fill_disc(1, 2, 8, WHITE);
        for (x, y) in [(1, 6), (8, 6), (5, 2), (5, 9), (5, 5)] {
            assert_eq!(canvas.pixel(x, y), WHITE, "({x}, {y})");
        }
        for (x, y) in [(1, 2), (8, 2), (1, 9), (8, 9), (0, 6), (9, 6), (5, 1), (5, 10)] {
            assert_eq!(canvas.pixel(x, y), BLACK, "({x}, {y})");
        }
        canvas.fill_disc(10, 10, 8, WHITE);
    }

    #[test]
    fn packed_orders_follow_the_encoding_name() {
        let mut canvas = Canvas::new(1, 1);
        canvas.fill_rect(0, 0, 1, 1, [10, 20, 30]);
        assert_eq!(canvas.encode(Encoding::Rgb8), [10, 20, 30]);
        assert_eq!(canvas.encode(Encoding::Bgr8), [30, 20, 10]);
        assert_eq!(canvas.encode(Encoding::Rgba8), [10, 20, 30, 255]);
        assert_eq!(canvas.encode(Encoding::Bgra8), [30, 20, 10, 255]);
    }

    #[test]
    fn nv12_interleaves_the_same_chroma_that_i420_keeps_planar() {
        let mut canvas = Canvas::new(3, 3);
        canvas.fill_rect(0, 0, 1, 3, [200, 30, 60]);
        let i420 = canvas.encode(Encoding::Yuv420);
        let nv12 = canvas.encode(Encoding::Nv12);
        let (luma, chroma) = (9, 4);
        assert_eq!(i420[..luma], nv12[..luma]);
        for index in 0..chroma {
            assert_eq!(nv12[luma + 2 * index], i420[luma + index]);
            assert_eq!(nv12[luma + 2 * index + 1], i420[luma + chroma + index]);
        }
    }
}
