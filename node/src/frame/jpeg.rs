//! What `COMPRESSED=copy` needs to know about a JPEG without decoding it: that it is whole (a
//! start and an end marker), that its markers up to the scan are well formed, and its size from
//! the frame header. A few hundred bytes are read, whatever the image's size; the entropy-coded
//! data is not looked at (damage inside it is what every player's decoder conceals).

use crate::{
    encode::check_complete,
    frame::{ImageCodec, MAX_DIMENSION},
};

/// The size of a JPEG, from its frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JpegHeader {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
}

/// Why a JPEG cannot be stored as a Motion JPEG frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JpegError {
    /// Cut short, or not a JPEG at all.
    #[error("{0}")]
    Incomplete(String),
    /// The markers before the scan do not add up.
    #[error("malformed jpeg image: {0}")]
    Malformed(&'static str),
    /// A JPEG process Motion JPEG players do not decode (lossless, arithmetic, hierarchical).
    #[error("jpeg process SOF{0} is not playable as Motion JPEG (only baseline, extended and progressive are)")]
    Unplayable(u8),
    /// A size no camera has.
    #[error("{width}x{height} jpeg image: each side must be 1..={MAX_DIMENSION}")]
    BadSize {
        /// Width from the frame header.
        width: u32,
        /// Height from the frame header.
        height: u32,
    },
}

/// Start of a frame header of a baseline, extended or progressive (Huffman-coded) JPEG.
const PLAYABLE_FRAMES: [u8; 3] = [0xC0, 0xC1, 0xC2];
/// The other frame headers (0xC4 is DHT, 0xC8 is reserved, 0xCC is DAC).
const OTHER_FRAMES: [u8; 10] = [0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF];
/// Start of scan: the entropy-coded data follows.
const SOS: u8 = 0xDA;
/// End of image.
const EOI: u8 = 0xD9;

/// Checks `bytes` is a whole JPEG a Motion JPEG player decodes, and reads its size.
pub fn read_header(bytes: &[u8]) -> Result<JpegHeader, JpegError> {
    check_complete(ImageCodec::Jpeg, bytes).map_err(|e| JpegError::Incomplete(e.to_string()))?;
    let mut at = 2; // after SOI
    let mut header = None;
    loop {
        if bytes.get(at) != Some(&0xFF) {
            return Err(JpegError::Malformed("a marker was expected"));
        }
        // Any number of 0xFF fill bytes may precede a marker.
        while bytes.get(at) == Some(&0xFF) {
            at += 1;
        }
        let marker = *bytes.get(at).ok_or(JpegError::Malformed("ends inside a marker"))?;
        at += 1;
        if marker == 0x01 || (0xD0..=0xD7).contains(&marker) {
            continue; // markers without a length
        }
        if marker == EOI || marker == 0x00 {
            return Err(JpegError::Malformed("no scan before the end of the image"));
        }
        let length = bytes.get(at..at + 2).map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])));
        let segment = length.filter(|len| *len >= 2).and_then(|len| bytes.get(at + 2..at + len));
        let segment = segment.ok_or(JpegError::Malformed("a segment runs past the end"))?;
        if PLAYABLE_FRAMES.contains(&marker) {
            header = Some(frame_header(segment)?);
        } else if OTHER_FRAMES.contains(&marker) {
            return Err(JpegError::Unplayable(marker - 0xC0));
        } else if marker == SOS {
            return header.ok_or(JpegError::Malformed("a scan before the frame header"));
        }
        at += 2 + segment.len();
    }
}

/// The size in a frame header's body: precision, height, width, components.
fn frame_header(body: &[u8]) -> Result<JpegHeader, JpegError> {
    let fields = body.get(..6).ok_or(JpegError::Malformed("a short frame header"))?;
    let height = u32::from(u16::from_be_bytes([fields[1], fields[2]]));
    let width = u32::from(u16::from_be_bytes([fields[3], fields[4]]));
    let components = usize::from(fields[5]);
    if fields[0] != 8 {
        return Err(JpegError::Malformed("not 8 bits per sample"));
    }
    if !matches!(components, 1 | 3) || body.len() < 6 + 3 * components {
        return Err(JpegError::Malformed("neither grey nor three-component colour"));
    }
    // A height of 0 is defined later by a DNL marker, which players do not support.
    if !(1..=MAX_DIMENSION).contains(&width) || !(1..=MAX_DIMENSION).contains(&height) {
        return Err(JpegError::BadSize { width, height });
    }
    Ok(JpegHeader { width, height })
}

#[cfg(test)]
mod tests {
    use dora_recorder_test_nodes::{compress::ImageFormat, encoding::Encoding, pattern};
    use proptest::prelude::*;

    use super::*;

    fn jpeg(width: u32, height: u32) -> Vec<u8> {
        let format = pattern::FrameFormat::new(width, height, Encoding::Rgb8).expect("valid size");
        ImageFormat::Jpeg.compress(&pattern::draw_frame(&format, 3, 0), width, height).expect("compresses")
    }

    /// A minimal JPEG skeleton: SOI, one frame header of `sof`, a scan of one byte, EOI.
    fn skeleton(sof: u8, width: u16, height: u16) -> Vec<u8> {
        let mut bytes = vec![0xFF, 0xD8, 0xFF, sof, 0, 11, 8];
        bytes.extend_from_slice(&height.to_be_bytes());
        bytes.extend_from_slice(&width.to_be_bytes());
        bytes.extend_from_slice(&[1, 1, 0x11, 0]);
        bytes.extend_from_slice(&[0xFF, SOS, 0, 8, 1, 1, 0, 0, 63, 0, 0x55, 0xFF, EOI]);
        bytes
    }

    #[test]
    fn a_whole_jpeg_tells_its_size_without_decoding() {
        assert_eq!(read_header(&jpeg(161, 121)), Ok(JpegHeader { width: 161, height: 121 }));
        assert_eq!(read_header(&skeleton(0xC2, 7, 5)), Ok(JpegHeader { width: 7, height: 5 }), "progressive");
        let mut padded = jpeg(64, 48);
        padded.extend_from_slice(&[0, 0, 0]);
        assert!(read_header(&padded).is_ok(), "cameras pad after the end marker");
    }

    #[test]
    fn a_cut_off_or_foreign_image_is_incomplete() {
        let whole = jpeg(64, 48);
        for len in [0, 1, 2, 100, whole.len() / 2, whole.len() - 1] {
            assert!(matches!(read_header(&whole[..len]), Err(JpegError::Incomplete(_))), "cut to {len}");
        }
        assert!(matches!(read_header(b"\x89PNG\r\n\x1a\n"), Err(JpegError::Incomplete(_))));
    }

    #[test]
    fn processes_players_cannot_decode_and_impossible_sizes_are_refused() {
        assert_eq!(read_header(&skeleton(0xC3, 7, 5)), Err(JpegError::Unplayable(3)), "lossless");
        assert_eq!(read_header(&skeleton(0xC9, 7, 5)), Err(JpegError::Unplayable(9)), "arithmetic");
        assert_eq!(read_header(&skeleton(0xC0, 7, 0)), Err(JpegError::BadSize { width: 7, height: 0 }));
        assert!(matches!(read_header(&skeleton(0xC0, 20_000, 5)), Err(JpegError::BadSize { .. })));
        let no_frame: Vec<u8> = [&[0xFF, 0xD8][..], &[0xFF, SOS, 0, 2, 0x55, 0xFF, EOI]].concat();
        assert_eq!(read_header(&no_frame), Err(JpegError::Malformed("a scan before the frame header")));
        let mut long_segment = skeleton(0xC0, 7, 5);
        long_segment[5] = 200; // the frame header's length now runs past the end
        assert_eq!(read_header(&long_segment), Err(JpegError::Malformed("a segment runs past the end")));
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 500, ..ProptestConfig::default() })]
        /// Damaged headers never panic, and what passes states a size within bounds.
        #[test]
        fn damaged_headers_are_refused_or_sized(edits in prop::collection::vec((0_usize..40, any::<u8>()), 1..6)) {
            let mut bytes = skeleton(0xC0, 7, 5);
            for (at, value) in edits {
                let at = at % bytes.len();
                bytes[at] = value;
            }
            if let Ok(header) = read_header(&bytes) {
                prop_assert!((1..=MAX_DIMENSION).contains(&header.width));
                prop_assert!((1..=MAX_DIMENSION).contains(&header.height));
            }
        }
    }
}
