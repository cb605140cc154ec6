//! Whether a fragment's samples hold what their sizes promise.
//!
//! An H.264/H.265 sample in an MP4 is a run of NAL units, each behind a big-endian length
//! prefix of 1, 2 or 4 bytes (`lengthSizeMinusOne + 1` in `avcC`/`hvcC`). A disk that persists
//! blocks out of order can keep a fragment's box sizes but not all of its data: after a power
//! cut the fragment walks like a complete box and holds a block of zeros (at least 512 bytes).
//! Such a sample fails one of these checks:
//!
//! - the length prefixes, walked from the sample's start, must end exactly at its end, and no
//!   NAL unit is empty (zeros read as length 0);
//! - no NAL unit holds a run of [`MIN_ZERO_RUN`] zero bytes followed by more data: emulation
//!   prevention (H.264 7.4.1, H.265 7.4.2.2) rules out even three zeros in a row inside a NAL
//!   unit, so this catches a zeroed block that lies entirely inside a large NAL unit and leaves
//!   the prefixes intact;
//! - no NAL unit ends in [`MAX_TRAILING_ZEROS`] zero bytes or more: fewer are tolerated, as an
//!   encoder may pad its output and FFmpeg's muxer keeps that padding, but a block that ends
//!   where a NAL unit ends (or in the zero high bytes of the next length prefix) leaves more.

use super::fragments::Sample;

/// Zero bytes in a row that mark a NAL unit as damaged when more data follows them. Emulation
/// prevention forbids 3; a lost disk block is at least 512; the margin leaves room for encoders
/// that bend the rule.
const MIN_ZERO_RUN: usize = 16;

/// Zero bytes at the end of a NAL unit that mark it as damaged: more than any padding, less
/// than the smallest disk block (512 bytes) minus a length prefix.
const MAX_TRAILING_ZEROS: usize = 256;

/// Why a sample is not intact.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Damage {
    /// The sample's data is not inside the fragment's `mdat`.
    OutsideData,
    /// The length prefixes do not end exactly at the end of the sample.
    Lengths,
    /// A NAL unit of length 0.
    EmptyNal,
    /// A run of zero bytes inside a NAL unit, with data after it, or a long one at its end.
    Zeros,
}

/// Checks every sample of one fragment. `data` is the payload of its `mdat`, which starts at
/// file offset `data_offset`; sample offsets are file offsets. Returns the index of the first
/// damaged sample and why.
pub(crate) fn check_fragment(
    data: &[u8],
    data_offset: u64,
    samples: &[Sample],
    length_size: u8,
) -> Result<(), (usize, Damage)> {
    for (index, sample) in samples.iter().enumerate() {
        let start = sample.offset.checked_sub(data_offset).and_then(|start| usize::try_from(start).ok());
        let bytes = start.and_then(|start| data.get(start..start.checked_add(usize::try_from(sample.size).ok()?)?));
        let bytes = bytes.ok_or((index, Damage::OutsideData))?;
        check_sample(bytes, length_size).map_err(|damage| (index, damage))?;
    }
    Ok(())
}

/// Checks one sample made of NAL units with `length_size`-byte length prefixes.
pub(crate) fn check_sample(sample: &[u8], length_size: u8) -> Result<(), Damage> {
    let prefix = usize::from(length_size);
    let mut rest = sample;
    while !rest.is_empty() {
        let (length, after) = rest.split_at_checked(prefix).ok_or(Damage::Lengths)?;
        let length = length.iter().fold(0usize, |value, &byte| (value << 8) | usize::from(byte));
        if length == 0 {
            return Err(Damage::EmptyNal);
        }
        let (nal, after) = after.split_at_checked(length).ok_or(Damage::Lengths)?;
        if has_zero_block(nal) {
            return Err(Damage::Zeros);
        }
        rest = after;
    }
    Ok(())
}

/// Whether `nal` holds [`MIN_ZERO_RUN`] zero bytes in a row followed by a non-zero byte, or
/// ends in [`MAX_TRAILING_ZEROS`] zero bytes.
fn has_zero_block(nal: &[u8]) -> bool {
    let mut run = 0usize;
    for &byte in nal {
        if byte == 0 {
            run += 1;
        } else if run >= MIN_ZERO_RUN {
            return true;
        } else {
            run = 0;
        }
    }
    run >= MAX_TRAILING_ZEROS
}

#[cfg(test)]
mod tests {
    use super::*;

    /// NAL units with 4-byte prefixes.
    fn sample(nals: &[&[u8]]) -> Vec<u8> {
        nals.iter().flat_map(|nal| [(nal.len() as u32).to_be_bytes().to_vec(), nal.to_vec()].concat()).collect()
    }

    fn slice(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i as u8).wrapping_mul(37) | 1).collect()
    }

    #[test]
    fn intact_samples_pass_with_every_prefix_size() {
        let (a, b) = (slice(40), slice(3000));
        assert_eq!(check_sample(&sample(&[&a, &b]), 4), Ok(()));
        for size in [1u8, 2] {
            let mut two = Vec::new();
            for nal in [&a, &b[..200]] {
                two.extend(&(nal.len() as u32).to_be_bytes()[4 - usize::from(size)..]);
                two.extend(nal);
            }
            assert_eq!(check_sample(&two, size), Ok(()), "{size}-byte prefixes");
        }
        let mut padded = slice(100);
        padded.extend([0; MAX_TRAILING_ZEROS - 1]);
        assert_eq!(check_sample(&sample(&[&padded]), 4), Ok(()), "zero padding at a NAL unit's end is tolerated");
        let mut short_run = slice(50);
        short_run[20..20 + MIN_ZERO_RUN - 1].fill(0);
        assert_eq!(check_sample(&sample(&[&short_run]), 4), Ok(()));
    }

    #[test]
    fn prefixes_that_do_not_add_up_fail() {
        let whole = sample(&[&slice(40), &slice(60)]);
        assert_eq!(check_sample(&whole[..whole.len() - 1], 4), Err(Damage::Lengths), "last NAL unit cut short");
        assert_eq!(check_sample(&[whole.clone(), vec![0, 0]].concat(), 4), Err(Damage::Lengths), "half a prefix");
        let mut longer = whole.clone();
        longer[3] += 1;
        assert_eq!(check_sample(&longer, 4), Err(Damage::Lengths));
        assert_eq!(check_sample(&[], 4), Ok(()), "an empty sample has nothing to check");
    }

    #[test]
    fn a_block_of_zeros_anywhere_in_a_sample_fails() {
        let whole = sample(&[&slice(700), &slice(2500), &slice(900)]);
        for start in 0..=whole.len() - 512 {
            let mut damaged = whole.clone();
            damaged[start..start + 512].fill(0);
            assert!(check_sample(&damaged, 4).is_err(), "zeros at {start}");
        }
        let zeroed = vec![0; 4096];
        assert_eq!(check_sample(&zeroed, 4), Err(Damage::EmptyNal), "a sample that is all zeros");
    }

    #[test]
    fn fragments_fail_at_their_first_damaged_sample() {
        let data: Vec<u8> = [sample(&[&slice(30)]), sample(&[&slice(50)]), sample(&[&slice(20)])].concat();
        let at = |offset: u64, size: u32| Sample {
            offset,
            size,
            duration: 512,
            sync: false,
            composition_offset: 0,
            description_index: 1,
        };
        let samples = [at(1000, 34), at(1034, 54), at(1088, 24)];
        assert_eq!(check_fragment(&data, 1000, &samples, 4), Ok(()));
        let mut damaged = data.clone();
        damaged[40..80].fill(0);
        assert_eq!(check_fragment(&damaged, 1000, &samples, 4), Err((1, Damage::Zeros)));
        assert_eq!(check_fragment(&data, 1001, &samples, 4), Err((0, Damage::OutsideData)));
        let past_the_end = [at(1000, 34), at(1034, 54), at(1088, 25)];
        assert_eq!(check_fragment(&data, 1000, &past_the_end, 4), Err((2, Damage::OutsideData)));
    }
}
