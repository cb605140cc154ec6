//! Depth samples: float metres (`32FC1`, Orbbec's float32, Reachy's float64) become the uint16
//! millimetres every depth camera is recorded as (`mono16`), so one lossless path records them all.
//!
//! The rule, also in the README: `round(metres * 1000)`, half away from zero; NaN, infinite,
//! negative and anything that rounds above 65535 mm (65.535 m) becomes 0, the value depth cameras
//! already use for "no measurement".

/// Largest depth a uint16 millimetre sample holds, in millimetres.
pub const MAX_MILLIMETRES: u16 = u16::MAX;

/// One depth sample in metres as uint16 millimetres: rounded; 0 when it is NaN, infinite,
/// negative or beyond [`MAX_MILLIMETRES`].
pub fn metres_to_millimetres(metres: f64) -> u16 {
    let millimetres = (metres * 1000.0).round();
    // NaN is in no range; infinities and negatives fall outside this one.
    if !(0.0..=f64::from(MAX_MILLIMETRES)).contains(&millimetres) {
        return 0;
    }
    // Within 0..=65535 after the checks, so the cast is exact.
    millimetres as u16
}

/// Float32 metres as little-endian uint16 millimetres (the `mono16` payload).
pub fn f32_metres_to_mono16(metres: &[f32]) -> Vec<u8> {
    metres.iter().flat_map(|&m| metres_to_millimetres(f64::from(m)).to_le_bytes()).collect()
}

/// Float64 metres as little-endian uint16 millimetres (the `mono16` payload).
pub fn f64_metres_to_mono16(metres: &[f64]) -> Vec<u8> {
    metres.iter().flat_map(|&m| metres_to_millimetres(m).to_le_bytes()).collect()
}

/// Little-endian float32 metres given as bytes (a `32FC1` payload sent as UInt8) as
/// little-endian uint16 millimetres; `None` when the length is not a whole number of floats.
pub fn f32_le_bytes_to_mono16(bytes: &[u8]) -> Option<Vec<u8>> {
    if !bytes.len().is_multiple_of(4) {
        return None;
    }
    let samples = bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]));
    Some(samples.flat_map(|m| metres_to_millimetres(f64::from(m)).to_le_bytes()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metres_round_to_the_nearest_millimetre() {
        assert_eq!(metres_to_millimetres(1.0), 1000);
        assert_eq!(metres_to_millimetres(0.0014), 1);
        assert_eq!(metres_to_millimetres(0.0015), 2);
        assert_eq!(metres_to_millimetres(0.0), 0);
        assert_eq!(metres_to_millimetres(65.535), 65535);
        assert_eq!(metres_to_millimetres(-0.0004), 0, "rounds to -0: still no depth");
    }

    #[test]
    fn invalid_and_out_of_range_depths_become_zero() {
        for metres in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -0.5, -1e9, 65.536, 1e12] {
            assert_eq!(metres_to_millimetres(metres), 0, "{metres}");
        }
    }

    #[test]
    fn float32_arrays_and_their_bytes_convert_alike() {
        let metres = [0.25f32, f32::NAN, 3.0, -1.0];
        let expected: Vec<u8> = [250u16, 0, 3000, 0].iter().flat_map(|v| v.to_le_bytes()).collect();
        assert_eq!(f32_metres_to_mono16(&metres), expected);
        let bytes: Vec<u8> = metres.iter().flat_map(|m| m.to_le_bytes()).collect();
        assert_eq!(f32_le_bytes_to_mono16(&bytes), Some(expected));
        assert_eq!(f32_le_bytes_to_mono16(&bytes[..7]), None);
        assert_eq!(f64_metres_to_mono16(&[0.001, 70.0]), vec![1, 0, 0, 0]);
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn every_millimetre_survives_a_trip_through_float32_metres(mm in any::<u16>()) {
            prop_assert_eq!(metres_to_millimetres(f64::from(mm as f32 / 1000.0)), mm);
        }

        #[test]
        fn in_range_depths_land_within_half_a_millimetre(metres in 0.0f64..65.5349) {
            let mm = metres_to_millimetres(metres);
            prop_assert!((f64::from(mm) - metres * 1000.0).abs() <= 0.5);
        }

        #[test]
        fn any_float_gives_its_rounded_millimetres_or_zero(metres in any::<f64>()) {
            let rounded = (metres * 1000.0).round();
            let expected = if (0.0..=65535.0).contains(&rounded) { rounded } else { 0.0 };
            prop_assert_eq!(f64::from(metres_to_millimetres(metres)), expected);
        }
    }
}
