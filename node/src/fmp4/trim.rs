//! Cutting a fragmented MP4 back to its last intact fragment after a failed write (disk full)
//! or a crash: whatever was left half-written at the end is removed, so that every byte left is
//! a complete box, every sample holds what its size promises, and the file plays without errors.
//!
//! Two checks, in order. Top-level boxes are walked by their sizes: a fragment counts once its
//! `moof` and `mdat` are complete. Then the samples of the fragments are checked (see
//! [`super::samples`]): after a power cut, a disk that persists blocks out of order can leave a
//! fragment whose sizes are all there but whose data holds a block of zeros. Fragments the
//! header's duration covers are not read again: the recorder writes that duration only once an
//! `fdatasync` covered them (see [`super::LiveDurations`]). Every later fragment is read, and
//! the last [`ALWAYS_CHECKED`] whatever the header says (a disk that acknowledges a sync it has
//! not done), and the file is cut before the first damaged one.

use std::{
    fs::OpenOptions,
    io::{self, Read, Seek, SeekFrom},
    path::Path,
};

use super::{
    Fmp4Error,
    boxes::{BoxHeader, PositionedFile, read_box, walk_top_level},
    fragments::{Timeline, TrackDefaults},
    moov::{InitialMoov, nal_length_size},
    samples::check_fragment,
};

/// Largest `moov` read to check samples (FFmpeg's initial one is about 1 KiB).
const MAX_MOOV_BYTES: u64 = 16 << 20;
/// Largest `moof` read (a few hundred bytes per fragment in practice).
const MAX_MOOF_BYTES: u64 = 64 << 20;
/// Largest `mdat` payload read to check its samples; a larger fragment is kept unchecked.
const MAX_MDAT_BYTES: u64 = 1 << 30;
/// Fragments at the end of a file whose samples are checked even when the header vouches for
/// them: 3 s of the recorder's 0.3 s fragments, a few MB at most.
const ALWAYS_CHECKED: usize = 10;

/// What [`trim_to_last_fragment`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrimOutcome {
    /// File length after trimming.
    pub kept_bytes: u64,
    /// Bytes cut off the end (0 when the file was already complete).
    pub removed_bytes: u64,
    /// Complete `moof`+`mdat` fragments kept.
    pub fragments: u64,
    /// Complete fragments cut because their samples were not intact (data a crash did not let
    /// reach the disk), and every fragment after the first of them.
    pub damaged_fragments: u64,
}

/// The playable prefix of a fragmented MP4, found by [`complete_fragments_end`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FragmentsEnd {
    /// Length of the prefix made of complete boxes: the header and complete fragments, plus any
    /// complete box (`mfra`, `free`...) that directly follows them.
    pub end: u64,
    /// Complete `moof`+`mdat` pairs in the prefix.
    pub fragments: u64,
}

/// Finds the end of the last complete fragment of the file `reader` (`len` bytes long) without
/// changing anything. Box sizes only: samples are not checked.
///
/// Top-level boxes are walked from the start; a box is complete when its declared size fits in
/// the file, and a `moof` only counts once a complete `mdat` follows it. The prefix also keeps
/// complete boxes that follow a complete fragment and are no `moof` (an `mfra` index, `free`),
/// so an intact file, fragmented or not, is left whole.
///
/// Returns `None` when there is no complete `moov` before the first incomplete box: nothing
/// in the file is playable.
pub fn complete_fragments_end<R: Read + Seek>(reader: &mut R, len: u64) -> io::Result<Option<FragmentsEnd>> {
    let top = walk_top_level(reader, len)?;
    Ok(playable_prefix(&top.boxes))
}

/// The playable prefix of a list of complete top-level boxes (see [`complete_fragments_end`]).
fn playable_prefix(boxes: &[BoxHeader]) -> Option<FragmentsEnd> {
    let moov = boxes.iter().position(|b| &b.kind == b"moov")?;
    // Nothing before the moov may be a fragment: it would refer to a track not yet declared.
    if boxes.iter().take(moov).any(|b| &b.kind == b"moof") {
        return None;
    }
    let mut kept = FragmentsEnd { end: boxes.get(moov)?.end(), fragments: 0 };
    let mut pending_moof = false;
    for header in boxes.iter().skip(moov.saturating_add(1)) {
        match &header.kind {
            b"moof" if pending_moof => break, // the previous moof has no data: stop before it
            b"moof" => pending_moof = true,
            b"mdat" if pending_moof => {
                pending_moof = false;
                kept = FragmentsEnd { end: header.end(), fragments: kept.fragments.saturating_add(1) };
            }
            // FFmpeg writes the mdat right after its moof; anything else in between means the
            // fragment is not one we can vouch for.
            _ if pending_moof => break,
            _ => kept.end = header.end(),
        }
    }
    Some(kept)
}

/// The `moof`+`mdat` pairs that end at or before `end`, in file order.
fn fragments_before(boxes: &[BoxHeader], end: u64) -> Vec<(BoxHeader, BoxHeader)> {
    boxes
        .windows(2)
        .filter_map(|pair| match pair {
            [moof, mdat] if &moof.kind == b"moof" && &mdat.kind == b"mdat" && mdat.end() <= end => Some((*moof, *mdat)),
            _ => None,
        })
        .collect()
}

/// Cuts the file at `path` after its last intact `moof`+`mdat` fragment (or after its `moov`
/// when none is), so a recording whose last write failed (disk full) or that a crash cut short
/// plays without errors. A file with nothing incomplete or damaged at its end is left unchanged.
///
/// # Errors
///
/// [`io::ErrorKind::InvalidData`] when even the `ftyp`/`moov` header is incomplete: nothing is
/// playable and the caller should delete the file (it is left unchanged). Other kinds are I/O
/// errors.
pub fn trim_to_last_fragment(path: &Path) -> io::Result<TrimOutcome> {
    let file = OpenOptions::new().read(true).write(true).open(path)?;
    let len = file.metadata()?.len();
    let mut reader = PositionedFile::new(&file);
    let top = walk_top_level(&mut reader, len)?;
    let Some(prefix) = playable_prefix(&top.boxes) else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: no complete moov header, nothing is playable", path.display()),
        ));
    };
    let fragments = fragments_before(&top.boxes, prefix.end);
    let damaged = match SampleCheck::read(&mut reader, &top.boxes, &fragments)? {
        Some(check) => check.first_damaged(&mut reader, &fragments)?,
        None => None,
    };
    let (kept_bytes, damaged_fragments) = match damaged.and_then(|index| fragments.get(index).map(|f| (index, f))) {
        Some((index, (moof, _))) => (moof.offset, fragments.len().saturating_sub(index)),
        None => (prefix.end, 0),
    };
    let damaged_fragments = u64::try_from(damaged_fragments).unwrap_or(u64::MAX);
    let removed_bytes = len.saturating_sub(kept_bytes);
    if removed_bytes > 0 {
        file.set_len(kept_bytes)?;
        file.sync_data()?;
    }
    let fragments = prefix.fragments.saturating_sub(damaged_fragments);
    Ok(TrimOutcome { kept_bytes, removed_bytes, fragments, damaged_fragments })
}

/// What checking the samples of a file's fragments needs from its `moov`.
struct SampleCheck {
    defaults: TrackDefaults,
    /// Bytes of each NAL unit's length prefix.
    length_size: u8,
    /// The `mdhd` duration: fragments that end within it from the first decode time are on
    /// disk already and not read again.
    vouched: u64,
}

impl SampleCheck {
    /// Reads the `moov`. `None` when there is nothing to check, or the file is not one this
    /// module can check (a layout it does not read, a codec without NAL length prefixes): it is
    /// then kept as the box walk found it.
    fn read(
        reader: &mut PositionedFile<'_>,
        boxes: &[BoxHeader],
        fragments: &[(BoxHeader, BoxHeader)],
    ) -> io::Result<Option<Self>> {
        let Some(moov) = boxes.iter().find(|b| &b.kind == b"moov").filter(|_| !fragments.is_empty()) else {
            return Ok(None);
        };
        let bytes = match read_box(reader, moov, MAX_MOOV_BYTES) {
            Ok(bytes) => bytes,
            Err(Fmp4Error::Io(error)) => return Err(error),
            Err(_) => return Ok(None),
        };
        let body = usize::try_from(moov.header_len).ok().and_then(|start| bytes.get(start..)).unwrap_or_default();
        let Ok(parsed) = InitialMoov::parse(body) else { return Ok(None) };
        let (Some(defaults), Some(length_size)) = (parsed.defaults, nal_length_size(parsed.track.stsd)) else {
            return Ok(None);
        };
        Ok(Some(Self { defaults, length_size, vouched: parsed.track.mdhd.duration }))
    }

    /// Index of the first fragment whose `moof` does not parse or whose samples are not intact
    /// (samples are read for the fragments the header does not vouch for and the last
    /// [`ALWAYS_CHECKED`]).
    fn first_damaged<R: Read + Seek>(
        &self,
        reader: &mut R,
        fragments: &[(BoxHeader, BoxHeader)],
    ) -> io::Result<Option<usize>> {
        let (mut first, mut end) = (None, 0);
        let always_from = fragments.len().saturating_sub(ALWAYS_CHECKED);
        for (index, (moof, mdat)) in fragments.iter().enumerate() {
            let timeline = match self.read_moof(reader, moof, end) {
                Ok(timeline) => timeline,
                Err(Fmp4Error::Io(error)) => return Err(error),
                Err(_) => return Ok(Some(index)),
            };
            end = timeline.end();
            let start = *first.get_or_insert(timeline.start());
            if end.saturating_sub(start) <= self.vouched && index < always_from {
                continue;
            }
            if !self.samples_intact(reader, mdat, &timeline)? {
                return Ok(Some(index));
            }
        }
        Ok(None)
    }

    /// The samples of one `moof`, decoding from `previous_end` unless its `tfdt` says otherwise.
    fn read_moof<R: Read + Seek>(
        &self,
        reader: &mut R,
        moof: &BoxHeader,
        previous_end: u64,
    ) -> Result<Timeline, Fmp4Error> {
        let bytes = read_box(reader, moof, MAX_MOOF_BYTES)?;
        let body = usize::try_from(moof.header_len).ok().and_then(|start| bytes.get(start..)).unwrap_or_default();
        let mut timeline = Timeline::continuing(self.defaults, previous_end);
        timeline.add_moof(body, moof.offset)?;
        Ok(timeline)
    }

    /// Whether every sample of `timeline` lies in `mdat` and holds intact NAL units.
    fn samples_intact<R: Read + Seek>(
        &self,
        reader: &mut R,
        mdat: &BoxHeader,
        timeline: &Timeline,
    ) -> io::Result<bool> {
        let payload = mdat.size.saturating_sub(mdat.header_len);
        let Some(payload) = usize::try_from(payload).ok().filter(|_| payload <= MAX_MDAT_BYTES) else {
            return Ok(true);
        };
        let mut data = vec![0; payload];
        reader.seek(SeekFrom::Start(mdat.body_start()))?;
        reader.read_exact(&mut data)?;
        Ok(check_fragment(&data, mdat.body_start(), timeline.samples(), self.length_size).is_ok())
    }
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use std::fs::OpenOptions;

    use super::*;
    use crate::fmp4::{
        LiveDurations,
        boxes::tests::{boxed, large_boxed},
        test_files::{Fragment, SAMPLE_TICKS, killed_file, temp_file},
    };

    /// ftyp, moov, then `fragments` moof+mdat pairs; returns the bytes and each fragment's end.
    fn fragmented(fragments: usize) -> (Vec<u8>, Vec<u64>) {
        let mut file = [boxed(b"ftyp", b"isom\0\0\0\0"), boxed(b"moov", &[0; 30])].concat();
        let mut ends = vec![file.len() as u64];
        for i in 0..fragments {
            file.extend(boxed(b"moof", &[i as u8; 40]));
            file.extend(boxed(b"mdat", &vec![0xab; 100 + i]));
            ends.push(file.len() as u64);
        }
        (file, ends)
    }

    fn prefix(bytes: &[u8]) -> Option<FragmentsEnd> {
        complete_fragments_end(&mut Cursor::new(bytes), bytes.len() as u64).unwrap()
    }

    #[test]
    fn every_cut_keeps_the_complete_fragments_before_it() {
        let (file, ends) = fragmented(4);
        for cut in 0..=file.len() {
            let expected = ends.iter().rposition(|&end| end <= cut as u64);
            let got = prefix(&file[..cut]);
            match expected {
                None => assert_eq!(got, None, "cut at {cut}"),
                Some(n) => assert_eq!(got, Some(FragmentsEnd { end: ends[n], fragments: n as u64 }), "cut at {cut}"),
            }
        }
    }

    #[test]
    fn a_moof_without_mdat_is_incomplete() {
        let (mut file, ends) = fragmented(2);
        file.extend(boxed(b"moof", &[0; 40]));
        assert_eq!(prefix(&file), Some(FragmentsEnd { end: ends[2], fragments: 2 }));
        file.extend(boxed(b"moof", &[0; 40]));
        file.extend(boxed(b"mdat", &[0; 4]));
        assert_eq!(prefix(&file), Some(FragmentsEnd { end: ends[2], fragments: 2 }), "moof moof mdat");
    }

    #[test]
    fn complete_trailing_boxes_and_finalized_files_are_kept() {
        let (mut file, _) = fragmented(3);
        file.extend(boxed(b"mfra", &[0; 16]));
        assert_eq!(prefix(&file), Some(FragmentsEnd { end: file.len() as u64, fragments: 3 }));
        let hybrid = [
            boxed(b"ftyp", b"isom"),
            boxed(b"free", &[0; 30]),
            boxed(b"free", &[0; 40]),
            boxed(b"mdat", &[0; 9]),
            boxed(b"moov", &[0; 50]),
        ]
        .concat();
        assert_eq!(prefix(&hybrid), Some(FragmentsEnd { end: hybrid.len() as u64, fragments: 0 }));
    }

    #[test]
    fn largesize_and_size_zero_mdat_count() {
        let mut file = [boxed(b"ftyp", b"isom"), boxed(b"moov", &[0; 8])].concat();
        file.extend(boxed(b"moof", &[0; 8]));
        file.extend(large_boxed(b"mdat", &[0; 8]));
        let after_large = file.len() as u64;
        file.extend(boxed(b"moof", &[0; 8]));
        file.extend([0, 0, 0, 0]);
        file.extend(b"mdat");
        file.extend([7; 33]);
        assert_eq!(prefix(&file), Some(FragmentsEnd { end: file.len() as u64, fragments: 2 }));
        assert_eq!(prefix(&file[..after_large as usize + 20]), Some(FragmentsEnd { end: after_large, fragments: 1 }));
    }

    #[test]
    fn no_moov_or_moof_before_moov_is_unplayable() {
        assert_eq!(prefix(&boxed(b"ftyp", b"isom")), None);
        assert_eq!(prefix(&[]), None);
        let odd = [boxed(b"ftyp", b"isom"), boxed(b"moof", &[0; 4]), boxed(b"mdat", &[0; 4]), boxed(b"moov", &[])];
        assert_eq!(prefix(&odd.concat()), None);
    }

    #[test]
    fn trims_files_on_disk() {
        let dir = std::env::temp_dir().join(format!("fmp4-trim-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (file, ends) = fragmented(3);
        let path = dir.join("cut.mp4");
        std::fs::write(&path, &file[..file.len() - 7]).unwrap();
        let outcome = trim_to_last_fragment(&path).unwrap();
        let removed_bytes = ends[3] - 7 - ends[2];
        assert_eq!(outcome, TrimOutcome { kept_bytes: ends[2], removed_bytes, fragments: 2, damaged_fragments: 0 });
        assert_eq!(std::fs::metadata(&path).unwrap().len(), ends[2]);
        assert_eq!(trim_to_last_fragment(&path).unwrap().removed_bytes, 0, "trimming twice changes nothing");
        std::fs::write(&path, &file[..20]).unwrap();
        let error = trim_to_last_fragment(&path).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidData);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 20, "an unplayable file is left for the caller");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// `count` fragments of a 900-byte keyframe and two 300-byte frames, without `mfra`.
    fn recording(count: usize) -> Vec<u8> {
        let fragments: Vec<Fragment> = (0..count)
            .map(|f| Fragment {
                decode_time: f as u64 * 3 * u64::from(SAMPLE_TICKS),
                sizes: vec![900, 300, 300],
                composition_offsets: None,
            })
            .collect();
        killed_file(&fragments)
    }

    /// (moof offset, mdat payload start, mdat end) of every fragment.
    fn fragment_spans(bytes: &[u8]) -> Vec<(u64, u64, u64)> {
        let top = walk_top_level(&mut Cursor::new(bytes), bytes.len() as u64).unwrap();
        fragments_before(&top.boxes, bytes.len() as u64)
            .iter()
            .map(|(moof, mdat)| (moof.offset, mdat.body_start(), mdat.end()))
            .collect()
    }

    fn zeroed(bytes: &[u8], at: u64, len: usize) -> Vec<u8> {
        let mut damaged = bytes.to_vec();
        damaged[at as usize..at as usize + len].fill(0);
        damaged
    }

    #[test]
    fn a_block_of_zeros_anywhere_in_a_fragment_cuts_it_and_every_later_one() {
        let bytes = recording(4);
        let spans = fragment_spans(&bytes);
        let intact = temp_file("damage", "intact.mp4", &bytes);
        assert_eq!(trim_to_last_fragment(&intact).unwrap().removed_bytes, 0, "an intact file is kept whole");
        let (moof, data, end) = spans[2];
        for at in (moof..end - 512).step_by(61) {
            let path = temp_file("damage", "zeros.mp4", &zeroed(&bytes, at, 512));
            let outcome = trim_to_last_fragment(&path).unwrap();
            let kept = (outcome.kept_bytes, outcome.removed_bytes, outcome.fragments);
            assert_eq!(kept, (moof, bytes.len() as u64 - moof, 2), "zeros at {at}");
            assert_eq!(std::fs::metadata(&path).unwrap().len(), moof);
            // Zeros over box headers stop the walk by sizes first; zeros in the samples are
            // found by checking them.
            if at >= data {
                assert_eq!(outcome.damaged_fragments, 2, "zeros at {at}");
            }
        }
    }

    #[test]
    fn fragments_the_header_vouches_for_are_not_read_again_but_the_last_ones_are() {
        let fragments = ALWAYS_CHECKED + 4;
        let bytes = recording(fragments);
        let spans = fragment_spans(&bytes);
        let path = temp_file("damage", "vouched.mp4", &bytes);
        let file = OpenOptions::new().read(true).write(true).open(&path).unwrap();
        // The header states all but the last fragment, as after a sync that covered them.
        LiveDurations::new().update(&file, spans[fragments - 2].2).unwrap();
        let stated = std::fs::read(&path).unwrap();
        let zeros_in = |fragment: usize| {
            std::fs::write(&path, zeroed(&stated, spans[fragment].1 + 100, 512)).unwrap();
            trim_to_last_fragment(&path).unwrap()
        };
        // Zeros in a vouched fragment (beyond what a crash can do) are not looked for...
        assert_eq!(zeros_in(1).damaged_fragments, 0);
        // ...unless it is one of the last ones; zeros in a fragment not vouched for are found.
        for fragment in [fragments - ALWAYS_CHECKED, fragments - 1] {
            let outcome = zeros_in(fragment);
            let expected = (spans[fragment].0, fragment as u64, (fragments - fragment) as u64);
            assert_eq!((outcome.kept_bytes, outcome.fragments, outcome.damaged_fragments), expected);
        }
    }

    #[test]
    fn files_it_cannot_check_keep_their_complete_fragments() {
        // The synthetic files of the other tests have no codec configuration to check against.
        let (file, ends) = fragmented(2);
        let path = temp_file("damage", "unknown.mp4", &zeroed(&file, ends[2] - 20, 10));
        let outcome = trim_to_last_fragment(&path).unwrap();
        assert_eq!((outcome.kept_bytes, outcome.damaged_fragments), (file.len() as u64, 0));
    }
}
