//! JPEG's own Y'CbCr into the recording's, without a trip through RGB.
//!
//! A JPEG (JFIF) holds full-range Y'CbCr in the BT.601 matrix, its chroma halved both ways (4:2:0,
//! what OpenCV writes) or across (4:2:2, what most UVC webcams send). The recording holds
//! limited-range 4:2:0 in BT.709 for HD and BT.601 below (`encode::colour`). Decoding a JPEG to
//! RGB and converting that costs an upsampling and two matrix passes per pixel; instead the planes
//! libjpeg-turbo decodes are taken as they are:
//! - chroma beyond 4:2:0 is averaged down to it ([`downsample_chroma`]);
//! - one fixed-point pass maps them to limited range in the recording's matrix ([`FullRangeYcbcr`]).
//!   Chroma depends on chroma only, so it maps at its own resolution. Luma in another matrix needs
//!   its own pixel's colour, taken from the chroma upsampled as libjpeg upsamples it for RGB (its
//!   "fancy" triangle filter), so the result matches the RGB path to within a level or two.

/// The luma weights (Kr, Kb) of a Y'CbCr matrix: all that sets one matrix apart from another.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LumaWeights {
    /// Red's share of luma (Kr).
    pub red: f64,
    /// Blue's share of luma (Kb).
    pub blue: f64,
}

impl LumaWeights {
    /// ITU-R BT.601: JPEG's matrix, and the recording's below HD.
    pub const BT601: Self = Self { red: 0.299, blue: 0.114 };
    /// ITU-R BT.709: the recording's matrix for HD and above.
    pub const BT709: Self = Self { red: 0.2126, blue: 0.0722 };

    /// R'G'B' of a Y'CbCr triple (all in 0..1, chroma centred on 0).
    fn ycbcr_to_rgb(self, luma: f64, cb: f64, cr: f64) -> [f64; 3] {
        let red = luma + 2.0 * (1.0 - self.red) * cr;
        let blue = luma + 2.0 * (1.0 - self.blue) * cb;
        let green = (luma - self.red * red - self.blue * blue) / (1.0 - self.red - self.blue);
        [red, green, blue]
    }

    /// Y'CbCr (all in 0..1, chroma centred on 0) of an R'G'B' triple.
    fn rgb_to_ycbcr(self, [red, green, blue]: [f64; 3]) -> [f64; 3] {
        let luma = self.red * red + (1.0 - self.red - self.blue) * green + self.blue * blue;
        [luma, (blue - luma) / (2.0 * (1.0 - self.blue)), (red - luma) / (2.0 * (1.0 - self.red))]
    }
}

/// The upsampling filter's weights (3/4 near, 1/4 far, each way) sum to 16; the coefficients
/// luma's share of chroma is taken with are divided by it beforehand.
const FILTER_SUM: f32 = 16.0;

/// Three planes (Y, Cb, Cr) of a 4:2:0 image, each with its row stride in bytes.
#[derive(Debug)]
pub struct Planes<T> {
    /// Y, Cb and Cr.
    pub data: [T; 3],
    /// Bytes from one row to the next, per plane.
    pub strides: [usize; 3],
}

/// Full-range BT.601 Y'CbCr 4:2:0 (a JPEG's planes) into limited range in a target matrix.
///
/// The arithmetic is `f32`: on the baseline x86-64 the node is built for (SSE2, no 32-bit
/// integer multiply in vector registers) the compiler vectorizes it, four samples at a time.
#[derive(Debug, Clone)]
pub struct FullRangeYcbcr {
    luma_from_luma: f32,
    /// Luma's share of (Cb, Cr), divided by [`FILTER_SUM`]: zero when the matrix stays BT.601.
    luma_from_chroma: [f32; 2],
    cb_from_chroma: [f32; 2],
    cr_from_chroma: [f32; 2],
    /// Luma's share of chroma at chroma resolution, and one row of it blended vertically.
    chroma_share: Vec<f32>,
    blended_row: Vec<f32>,
}

impl FullRangeYcbcr {
    /// The transform into limited range with `target`'s matrix.
    pub fn new(target: LumaWeights) -> Self {
        let (luma_range, chroma_range) = (219.0 / 255.0, 224.0 / 255.0);
        let through = |cb, cr| target.rgb_to_ycbcr(LumaWeights::BT601.ycbcr_to_rgb(0.0, cb, cr));
        let ([luma_cb, cb_cb, cr_cb], [luma_cr, cb_cr, cr_cr]) = (through(1.0, 0.0), through(0.0, 1.0));
        // Rounded to zero when the matrix stays, so the cheaper path below is taken.
        let share = |value: f64| if value.abs() < 1e-9 { 0.0 } else { (value * luma_range) as f32 / FILTER_SUM };
        Self {
            luma_from_luma: luma_range as f32,
            luma_from_chroma: [share(luma_cb), share(luma_cr)],
            cb_from_chroma: [(cb_cb * chroma_range) as f32, (cb_cr * chroma_range) as f32],
            cr_from_chroma: [(cr_cb * chroma_range) as f32, (cr_cr * chroma_range) as f32],
            chroma_share: Vec::new(),
            blended_row: Vec::new(),
        }
    }

    /// Whether luma takes a share of chroma (the matrix changes), not only a new range.
    fn mixes_chroma_into_luma(&self) -> bool {
        self.luma_from_chroma != [0.0, 0.0]
    }

    /// Writes `source` (full range, BT.601) into `target` (limited range, this transform's
    /// matrix); both are `width` x `height`, chroma rounded up to half of each.
    pub fn apply(&mut self, source: &Planes<&[u8]>, target: &mut Planes<&mut [u8]>, width: usize, height: usize) {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2, checked just above.
            unsafe { self.apply_avx2(source, target, width, height) };
            return;
        }
        self.apply_portable(source, target, width, height);
    }

    /// [`apply`](Self::apply) compiled for AVX2 (eight samples per instruction instead of four):
    /// everything it calls is inlined into it.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn apply_avx2(&mut self, source: &Planes<&[u8]>, target: &mut Planes<&mut [u8]>, width: usize, height: usize) {
        self.apply_portable(source, target, width, height);
    }

    #[inline(always)]
    fn apply_portable(&mut self, source: &Planes<&[u8]>, target: &mut Planes<&mut [u8]>, width: usize, height: usize) {
        let (chroma_width, chroma_height) = (width.div_ceil(2), height.div_ceil(2));
        if self.mixes_chroma_into_luma() {
            self.fill_chroma_share(source, chroma_width, chroma_height);
            for row in 0..height {
                self.blend_rows(row, chroma_width, chroma_height);
                let luma = &source.data[0][row * source.strides[0]..][..width];
                let out = &mut target.data[0][row * target.strides[0]..][..width];
                self.luma_row_mixed(luma, out);
            }
        } else {
            let lut = self.luma_lut();
            for row in 0..height {
                let luma = &source.data[0][row * source.strides[0]..][..width];
                let out = &mut target.data[0][row * target.strides[0]..][..width];
                out.iter_mut().zip(luma).for_each(|(out, luma)| *out = lut[usize::from(*luma)]);
            }
        }
        for row in 0..chroma_height {
            let at = |plane: usize| row * source.strides[plane];
            let (cb, cr) = (&source.data[1][at(1)..][..chroma_width], &source.data[2][at(2)..][..chroma_width]);
            let [_, cb_out, cr_out] = &mut target.data;
            let cb_out = &mut cb_out[row * target.strides[1]..][..chroma_width];
            let cr_out = &mut cr_out[row * target.strides[2]..][..chroma_width];
            chroma_row(self.cb_from_chroma, cb, cr, cb_out);
            chroma_row(self.cr_from_chroma, cb, cr, cr_out);
        }
    }

    /// Full-range luma to limited, when the matrix stays.
    #[inline(always)]
    fn luma_lut(&self) -> [u8; 256] {
        std::array::from_fn(|luma| to_sample(self.luma_from_luma * luma as f32 + 16.0))
    }

    /// Luma's share of each chroma sample.
    #[inline(always)]
    fn fill_chroma_share(&mut self, source: &Planes<&[u8]>, chroma_width: usize, chroma_height: usize) {
        let [from_cb, from_cr] = self.luma_from_chroma;
        self.chroma_share.resize(chroma_width * chroma_height, 0.0);
        for (row, shares) in self.chroma_share.chunks_exact_mut(chroma_width).enumerate() {
            let cb = &source.data[1][row * source.strides[1]..][..chroma_width];
            let cr = &source.data[2][row * source.strides[2]..][..chroma_width];
            for ((share, cb), cr) in shares.iter_mut().zip(cb).zip(cr) {
                *share = from_cb * (f32::from(*cb) - 128.0) + from_cr * (f32::from(*cr) - 128.0);
            }
        }
    }

    /// The vertical half of the triangle filter for luma row `row`: 3 parts of the chroma row it
    /// lies in, 1 of the one on its other side (the edge row stands in beyond the edges).
    #[inline(always)]
    fn blend_rows(&mut self, row: usize, chroma_width: usize, chroma_height: usize) {
        let near = row / 2;
        let far = if row.is_multiple_of(2) { near.saturating_sub(1) } else { (near + 1).min(chroma_height - 1) };
        let near = &self.chroma_share[near * chroma_width..][..chroma_width];
        let far = &self.chroma_share[far * chroma_width..][..chroma_width];
        self.blended_row.resize(chroma_width, 0.0);
        for ((blended, near), far) in self.blended_row.iter_mut().zip(near).zip(far) {
            *blended = 3.0 * near + far;
        }
    }

    /// One luma row with its share of chroma (the horizontal half of the triangle filter: column
    /// `2c` takes 3 parts of blended chroma column `c` and 1 of `c - 1`, column `2c + 1` 3 of `c`
    /// and 1 of `c + 1`; the edge column stands in beyond the edges), then the range.
    #[inline(always)]
    fn luma_row_mixed(&self, luma: &[u8], out: &mut [u8]) {
        let (blended, gain) = (self.blended_row.as_slice(), self.luma_from_luma);
        let value = |luma: u8, share: f32| to_sample(gain * f32::from(luma) + share + 16.0);
        let last = blended.len() - 1;
        let pair = |column: usize| {
            let here = 3.0 * blended[column];
            (here + blended[column.saturating_sub(1)], here + blended[(column + 1).min(last)])
        };
        // The edges with their clamped neighbours; everything between in one branch-free pass.
        for column in [0, last] {
            let (left, right) = pair(column);
            out[2 * column] = value(luma[2 * column], left);
            if let (Some(out), Some(luma)) = (out.get_mut(2 * column + 1), luma.get(2 * column + 1)) {
                *out = value(*luma, right);
            }
        }
        if luma.len() > 2 {
            let pairs = out[2..].chunks_exact_mut(2).zip(luma[2..].chunks_exact(2));
            for ((out, luma), window) in pairs.zip(blended.windows(3)) {
                let here = 3.0 * window[1];
                out[0] = value(luma[0], here + window[0]);
                out[1] = value(luma[1], here + window[2]);
            }
        }
    }
}

/// One row of limited-range chroma from full-range (Cb, Cr) rows through `weights`.
#[inline(always)]
fn chroma_row(weights: [f32; 2], cb: &[u8], cr: &[u8], out: &mut [u8]) {
    for ((out, cb), cr) in out.iter_mut().zip(cb).zip(cr) {
        *out = to_sample(weights[0] * (f32::from(*cb) - 128.0) + weights[1] * (f32::from(*cr) - 128.0) + 128.0);
    }
}

/// Rounds to the nearest sample, clamped to 0..=255. Not `value as u8`: that saturating cast
/// becomes one scalar conversion per sample on SSE2. Adding 1.5 * 2^23 instead leaves the rounded
/// integer in the low mantissa bits, a bit cast away, four samples per instruction.
#[inline(always)]
fn to_sample(value: f32) -> u8 {
    const ROUNDING: f32 = 12_582_912.0;
    ((value.clamp(0.0, 255.0) + ROUNDING).to_bits() & 0xFF) as u8
}

/// Averages a tightly packed chroma plane of `size` (width, height) down by `factor` (1 or 2
/// each way) into `target`, which holds `size` divided by `factor`, rounded up; an odd last row
/// or column averages what it has.
pub fn downsample_chroma(source: &[u8], size: (usize, usize), factor: (usize, usize), target: &mut [u8]) {
    let ((width, height), (across, down)) = (size, factor);
    let target_width = width.div_ceil(across);
    for (target_row, out) in target.chunks_exact_mut(target_width).take(height.div_ceil(down)).enumerate() {
        let rows = target_row * down..((target_row + 1) * down).min(height);
        for (target_column, out) in out.iter_mut().enumerate() {
            let columns = target_column * across..((target_column + 1) * across).min(width);
            let (mut sum, mut count) = (0_u32, 0_u32);
            for row in rows.clone() {
                for &sample in &source[row * width..][columns.clone()] {
                    sum += u32::from(sample);
                    count += 1;
                }
            }
            *out = ((sum + count / 2) / count) as u8;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The exact result in floating point: full-range BT.601 through RGB into limited `target`.
    fn reference(target: LumaWeights, [luma, cb, cr]: [u8; 3]) -> [f64; 3] {
        let centred = |value: u8| (f64::from(value) - 128.0) / 255.0;
        let rgb = LumaWeights::BT601.ycbcr_to_rgb(f64::from(luma) / 255.0, centred(cb), centred(cr));
        let [luma, cb, cr] = target.rgb_to_ycbcr(rgb);
        [16.0 + 219.0 * luma, 128.0 + 224.0 * cb, 128.0 + 224.0 * cr]
    }

    /// A `width` x `height` image of one colour through the transform into `target`.
    fn convert_flat(target: LumaWeights, colour: [u8; 3], width: usize, height: usize) -> [Vec<u8>; 3] {
        let (chroma_width, chroma_height) = (width.div_ceil(2), height.div_ceil(2));
        let luma = vec![colour[0]; width * height];
        let (cb, cr) = (vec![colour[1]; chroma_width * chroma_height], vec![colour[2]; chroma_width * chroma_height]);
        let source = Planes { data: [&luma[..], &cb[..], &cr[..]], strides: [width, chroma_width, chroma_width] };
        let mut out = [vec![0; luma.len()], vec![0; cb.len()], vec![0; cr.len()]];
        let [y, u, v] = &mut out;
        let mut target_planes = Planes { data: [&mut y[..], &mut u[..], &mut v[..]], strides: source.strides };
        FullRangeYcbcr::new(target).apply(&source, &mut target_planes, width, height);
        out
    }

    const COLOURS: [[u8; 3]; 7] = [
        [0, 128, 128],
        [255, 128, 128],
        [76, 85, 255],   // red
        [150, 44, 21],   // green
        [29, 255, 107],  // blue
        [170, 110, 160], // skin
        [128, 128, 128],
    ];

    #[test]
    fn flat_colours_match_the_exact_conversion_to_within_one_level() {
        for target in [LumaWeights::BT601, LumaWeights::BT709] {
            for colour in COLOURS {
                let [luma, cb, cr] = convert_flat(target, colour, 6, 4);
                let expected = reference(target, colour);
                for (plane, got) in [luma, cb, cr].iter().enumerate() {
                    let want = expected[plane].clamp(0.0, 255.0);
                    assert!(
                        got.iter().all(|value| (f64::from(*value) - want).abs() <= 1.0),
                        "{target:?} {colour:?} plane {plane}: {got:?}, want {want:.2}"
                    );
                }
            }
        }
    }

    #[test]
    fn the_range_squeezes_to_16_235_and_16_240() {
        let [black, _, _] = convert_flat(LumaWeights::BT601, [0, 128, 128], 2, 2);
        let [white, cb, cr] = convert_flat(LumaWeights::BT601, [255, 0, 255], 2, 2);
        assert_eq!((black[0], white[0]), (16, 235));
        assert_eq!((cb[0], cr[0]), (16, 240));
    }

    #[test]
    fn luma_takes_its_own_pixels_colour_at_a_chroma_edge() {
        // Left half red, right half grey, at equal luma: BT.709's luma of red is lower, so only
        // the left pixels (and the filter's one-pixel blend at the edge) move.
        let (width, height) = (8, 2);
        let luma = vec![76; width * height];
        let (cb, cr) = (vec![85, 85, 128, 128], vec![255, 255, 128, 128]);
        let source = Planes { data: [&luma[..], &cb[..], &cr[..]], strides: [width, 4, 4] };
        let (mut y, mut u, mut v) = (vec![0; width * height], vec![0; 4], vec![0; 4]);
        let mut target = Planes { data: [&mut y[..], &mut u[..], &mut v[..]], strides: [width, 4, 4] };
        FullRangeYcbcr::new(LumaWeights::BT709).apply(&source, &mut target, width, height);
        let red = reference(LumaWeights::BT709, [76, 85, 255])[0].round() as u8;
        let grey = reference(LumaWeights::BT709, [76, 128, 128])[0].round() as u8;
        assert_eq!(&y[..3], &[red, red, red]);
        assert_eq!(&y[5..8], &[grey, grey, grey]);
        assert!(red < y[3] && y[3] < y[4] && y[4] < grey, "a blend across the edge: {:?}", &y[..8]);
    }

    #[test]
    fn odd_sizes_convert_their_last_row_and_column() {
        let [luma, cb, _] = convert_flat(LumaWeights::BT709, [200, 60, 190], 5, 3);
        let want = reference(LumaWeights::BT709, [200, 60, 190]);
        assert_eq!((luma.len(), cb.len()), (15, 6));
        assert!((f64::from(luma[14]) - want[0]).abs() <= 1.0 && (f64::from(cb[5]) - want[1]).abs() <= 1.0);
    }

    #[test]
    fn chroma_averages_down_by_blocks_and_keeps_odd_edges() {
        // 4:4:4 (3 x 2) to 4:2:0 (2 x 1): a 2x2 block, then the odd column's two rows.
        let mut out = vec![0; 2];
        downsample_chroma(&[10, 20, 100, 30, 41, 200], (3, 2), (2, 2), &mut out);
        assert_eq!(out, vec![25, 150]);
        // 4:2:2 (2 x 3) to 4:2:0 (2 x 2): row pairs, the odd last row alone.
        let mut out = vec![0; 4];
        downsample_chroma(&[0, 10, 2, 20, 7, 9], (2, 3), (1, 2), &mut out);
        assert_eq!(out, vec![1, 15, 7, 9]);
    }
}
