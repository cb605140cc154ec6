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

    /// Y'CbCr (all in 0..1, chroma centred on 0) of an R'G'B' triple (0..1).
    pub fn rgb_to_ycbcr(self, [red, green, blue]: [f64; 3]) -> [f64; 3] {
        let luma = self.red * red + (1.0 - self.red - self.blue) * green + self.blue * blue;
        [luma, (blue - luma) / (2.0 * (1.0 - self.blue)), (red - luma) / (2.0 * (1.0 - self.red))]
    }
}

/// Luma is computed in `i16` with this many fraction bits (sixteen samples per AVX2 instruction):
/// `255 * 219/255 * 2^6` plus the largest share of chroma stays far below `i16::MAX`.
const LUMA_BITS: u32 = 6;
/// Fraction bits of luma's share of chroma per chroma sample: the triangle filter's weights
/// (3/4 near, 1/4 far, each way) multiply it by 16, which brings it to [`LUMA_BITS`].
const SHARE_BITS: u32 = LUMA_BITS - 4;
/// Fraction bits of the coefficients luma's share is taken with (`128 * |coefficient| * 2^7`
/// summed over Cb and Cr fits an `i16`).
const COEFFICIENT_BITS: u32 = 7;
/// Fraction bits of the chroma coefficients.
const CHROMA_COEFFICIENT_BITS: u32 = 15;

/// Full-range luma (or grey) to limited-range luma: `16 + 219 g / 255`, rounded.
pub fn limited_range_luma() -> [u8; 256] {
    std::array::from_fn(|g| (16.0 + 219.0 * g as f64 / 255.0).round() as u8)
}

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
/// All in `i16` fixed point, which the compiler vectorizes on the baseline x86-64 (eight samples
/// per instruction; `f32` or `i32` would be four, and the baseline has no 32-bit integer multiply
/// in vector registers) and with AVX2 where the CPU has it (sixteen).
#[derive(Debug, Clone)]
pub struct FullRangeYcbcr {
    /// 219/255 in [`LUMA_BITS`].
    luma_from_luma: i16,
    /// Luma's share of (Cb, Cr) in [`COEFFICIENT_BITS`] of [`SHARE_BITS`] units: zero when the
    /// matrix stays BT.601.
    luma_from_chroma: [i16; 2],
    /// Full-range luma to limited, the whole of luma's work when the matrix stays.
    luma_lut: [u8; 256],
    /// Chroma from (Cb, Cr), in [`CHROMA_COEFFICIENT_BITS`].
    cb_from_chroma: [i16; 2],
    cr_from_chroma: [i16; 2],
    /// Luma's share of chroma at chroma resolution, one row of it blended vertically, and that
    /// row spread across a luma row.
    chroma_share: Vec<i16>,
    blended_row: Vec<i16>,
    share_row: Vec<i16>,
}

impl FullRangeYcbcr {
    /// The transform into limited range with `target`'s matrix.
    pub fn new(target: LumaWeights) -> Self {
        let (luma_range, chroma_range) = (219.0 / 255.0, 224.0 / 255.0);
        let through = |cb, cr| target.rgb_to_ycbcr(LumaWeights::BT601.ycbcr_to_rgb(0.0, cb, cr));
        let ([luma_cb, cb_cb, cr_cb], [luma_cr, cb_cr, cr_cr]) = (through(1.0, 0.0), through(0.0, 1.0));
        // Exactly zero when the matrix stays, so the cheaper path below is taken.
        let share = |value: f64| (value * luma_range * f64::from(1 << (SHARE_BITS + COEFFICIENT_BITS))).round() as i16;
        Self {
            luma_from_luma: (luma_range * f64::from(1 << LUMA_BITS)).round() as i16,
            luma_from_chroma: [share(luma_cb), share(luma_cr)],
            luma_lut: limited_range_luma(),
            cb_from_chroma: [chroma_coefficient(cb_cb * chroma_range), chroma_coefficient(cb_cr * chroma_range)],
            cr_from_chroma: [chroma_coefficient(cr_cb * chroma_range), chroma_coefficient(cr_cr * chroma_range)],
            chroma_share: Vec::new(),
            blended_row: Vec::new(),
            share_row: Vec::new(),
        }
    }

    /// Whether luma takes a share of chroma (the matrix changes), not only a new range.
    fn mixes_chroma_into_luma(&self) -> bool {
        self.luma_from_chroma != [0, 0]
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

    /// [`apply`](Self::apply) compiled for AVX2 (sixteen `i16` samples per instruction instead of
    /// eight): everything it calls is inlined into it.
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
            for row in 0..height {
                let luma = &source.data[0][row * source.strides[0]..][..width];
                let out = &mut target.data[0][row * target.strides[0]..][..width];
                out.iter_mut().zip(luma).for_each(|(out, luma)| *out = self.luma_lut[usize::from(*luma)]);
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

    /// Luma's share of each chroma sample.
    #[inline(always)]
    fn fill_chroma_share(&mut self, source: &Planes<&[u8]>, chroma_width: usize, chroma_height: usize) {
        let [from_cb, from_cr] = self.luma_from_chroma;
        self.chroma_share.resize(chroma_width * chroma_height, 0);
        let rounding = 1 << (COEFFICIENT_BITS - 1);
        for (row, shares) in self.chroma_share.chunks_exact_mut(chroma_width).enumerate() {
            let cb = &source.data[1][row * source.strides[1]..][..chroma_width];
            let cr = &source.data[2][row * source.strides[2]..][..chroma_width];
            for ((share, cb), cr) in shares.iter_mut().zip(cb).zip(cr) {
                let (cb, cr) = (i16::from(*cb) - 128, i16::from(*cr) - 128);
                *share = (from_cb * cb + from_cr * cr + rounding) >> COEFFICIENT_BITS;
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
        self.blended_row.resize(chroma_width, 0);
        for ((blended, near), far) in self.blended_row.iter_mut().zip(near).zip(far) {
            *blended = 3 * near + far;
        }
    }

    /// One luma row with its share of chroma (the horizontal half of the triangle filter), then
    /// the range: two plain passes over the row, which the compiler vectorizes.
    #[inline(always)]
    fn luma_row_mixed(&mut self, luma: &[u8], out: &mut [u8]) {
        self.share_row.resize(luma.len(), 0);
        spread_across(&self.blended_row, &mut self.share_row);
        let (gain, offset) = (self.luma_from_luma, (16 << LUMA_BITS) + (1 << (LUMA_BITS - 1)));
        for ((out, luma), share) in out.iter_mut().zip(luma).zip(&self.share_row) {
            *out = ((gain * i16::from(*luma) + share + offset) >> LUMA_BITS).clamp(0, 255) as u8;
        }
    }
}

/// The horizontal half of the triangle filter: luma column `2c` takes 3 parts of chroma column
/// `c` and 1 of `c - 1`, column `2c + 1` 3 of `c` and 1 of `c + 1`; the edge column stands in
/// beyond the edges. `row` is the luma row (`2 * chroma.len()` or one less).
#[inline(always)]
fn spread_across(chroma: &[i16], row: &mut [i16]) {
    let last = chroma.len() - 1;
    row[0] = 4 * chroma[0];
    if let Some(second) = row.get_mut(1) {
        *second = 3 * chroma[0] + chroma[last.min(1)];
    }
    for (pair, window) in row[2..].chunks_exact_mut(2).zip(chroma.windows(3)) {
        pair[0] = 3 * window[1] + window[0];
        pair[1] = 3 * window[1] + window[2];
    }
    if last > 0 {
        row[2 * last] = 3 * chroma[last] + chroma[last - 1];
        if let Some(end) = row.get_mut(2 * last + 1) {
            *end = 4 * chroma[last];
        }
    }
}

/// A chroma coefficient in [`CHROMA_COEFFICIENT_BITS`] (all are below 1 in magnitude).
fn chroma_coefficient(value: f64) -> i16 {
    (value * f64::from(1 << CHROMA_COEFFICIENT_BITS)).round() as i16
}

/// One row of limited-range chroma from full-range (Cb, Cr) rows through `weights`. Each
/// product keeps its high half (`(a * b) >> 16`, one `pmulhw` per eight or sixteen samples): a
/// sample shifted up by 7 times a coefficient in 15 bits leaves [`LUMA_BITS`] fraction bits.
#[inline(always)]
fn chroma_row(weights: [i16; 2], cb: &[u8], cr: &[u8], out: &mut [u8]) {
    let high_half =
        |sample: u8, weight: i16| ((i32::from((i16::from(sample) - 128) << 7) * i32::from(weight)) >> 16) as i16;
    let offset = (128 << LUMA_BITS) + (1 << (LUMA_BITS - 1));
    for ((out, cb), cr) in out.iter_mut().zip(cb).zip(cr) {
        let value = high_half(*cb, weights[0]) + high_half(*cr, weights[1]) + offset;
        *out = (value >> LUMA_BITS).clamp(0, 255) as u8;
    }
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
    fn spreading_across_weights_three_parts_near_and_one_far() {
        let chroma = [0, 4, 8];
        for width in [5, 6] {
            let mut row = vec![0; width];
            spread_across(&chroma, &mut row);
            assert_eq!(row, [0, 4, 12, 20, 28, 32][..width], "width {width}");
        }
        let mut single = vec![0; 2];
        spread_across(&[5], &mut single);
        assert_eq!(single, vec![20, 20]);
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
