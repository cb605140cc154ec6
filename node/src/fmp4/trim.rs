//! Cutting a fragmented MP4 back to its last complete fragment after a failed write (disk
//! full): whatever a failed write left half-written at the end is removed so that every byte
//! left is a complete box and the file plays without errors.

use std::{
    fs::OpenOptions,
    io::{self, Read, Seek},
    path::Path,
};

use super::boxes::{BoxHeader, walk_top_level};

/// What [`trim_to_last_fragment`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrimOutcome {
    /// File length after trimming.
    pub kept_bytes: u64,
    /// Bytes cut off the end (0 when the file was already complete).
    pub removed_bytes: u64,
    /// Complete `moof`+`mdat` fragments kept.
    pub fragments: u64,
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
/// changing anything.
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

/// Cuts the file at `path` after its last complete `moof`+`mdat` fragment (or after its `moov`
/// when no fragment is complete), so a recording whose last write failed (disk full) plays
/// without errors. A file with nothing incomplete at its end is left unchanged.
///
/// # Errors
///
/// [`io::ErrorKind::InvalidData`] when even the `ftyp`/`moov` header is incomplete: nothing is
/// playable and the caller should delete the file (it is left unchanged). Other kinds are I/O
/// errors.
pub fn trim_to_last_fragment(path: &Path) -> io::Result<TrimOutcome> {
    let mut file = OpenOptions::new().read(true).write(true).open(path)?;
    let len = file.metadata()?.len();
    let Some(prefix) = complete_fragments_end(&mut file, len)? else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: no complete moov header, nothing is playable", path.display()),
        ));
    };
    let removed_bytes = len.saturating_sub(prefix.end);
    if removed_bytes > 0 {
        file.set_len(prefix.end)?;
        file.sync_data()?;
    }
    Ok(TrimOutcome { kept_bytes: prefix.end, removed_bytes, fragments: prefix.fragments })
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use super::*;
    use crate::fmp4::boxes::tests::{boxed, large_boxed};

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
        assert_eq!(outcome, TrimOutcome { kept_bytes: ends[2], removed_bytes: ends[3] - 7 - ends[2], fragments: 2 });
        assert_eq!(std::fs::metadata(&path).unwrap().len(), ends[2]);
        assert_eq!(trim_to_last_fragment(&path).unwrap().removed_bytes, 0, "trimming twice changes nothing");
        std::fs::write(&path, &file[..20]).unwrap();
        let error = trim_to_last_fragment(&path).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidData);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 20, "an unplayable file is left for the caller");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
