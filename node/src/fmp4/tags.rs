//! The metadata tags in the header of an MP4 the recorder wrote. With `use_metadata_tags`,
//! FFmpeg puts them in `moov/udta/meta` as QuickTime `mdta` items: `keys` lists the names, `ilst`
//! holds one item per key (its type is the key's 1-based index) with the value in a `data` box.
//!
//! Only the boxes before the first fragment or sample data are read, so this costs a few kB of
//! reading whatever the file's length. The recorder's header `moov` stays there in every state of
//! a file: while it is written, after a crash, half-way through the hybrid commit (its `udta`
//! then is a top-level box for a while) and once final (the `moov` became a `free` box that still
//! holds its children; see [`super::finalize_hybrid`]).

use std::io::{self, Read, Seek};

use super::{
    Fmp4Error,
    boxes::{Cursor, children, find_child, read_box, read_header},
};

/// Top-level boxes looked at before giving up: the recorder's files have their header `moov`
/// second, a finalized or half-finalized one at most fourth.
const MAX_HEAD_BOXES: usize = 8;
/// Largest header box read into memory (a 100 kB session id makes the tags that large).
const MAX_HEADER_BOX_BYTES: u64 = 16 << 20;
/// `data` type of a UTF-8 value (the only type FFmpeg writes for `mdta` items).
const UTF8: u32 = 1;

/// The `mdta` tags (name, value) in the header of the MP4 `reader` (`len` bytes): empty when
/// the file is no MP4 (no leading `ftyp`), has no header `moov` before its first `moof`/`mdat`,
/// or its tags cannot be read. Malformed boxes are skipped, never trusted.
///
/// # Errors
///
/// Only reading the file fails the call.
pub fn header_tags<R: Read + Seek>(reader: &mut R, len: u64) -> io::Result<Vec<(String, String)>> {
    let mut tags = Vec::new();
    let mut offset = 0;
    for position in 0..MAX_HEAD_BOXES {
        let Some(header) = read_header(reader, offset, len)? else { break };
        match (&header.kind, position) {
            (b"ftyp", 0) => {}
            (_, 0) | (b"moof" | b"mdat", _) => break,
            (b"moov" | b"free" | b"udta" | b"meta", _) => {
                let whole = match read_box(reader, &header, MAX_HEADER_BOX_BYTES) {
                    Ok(whole) => whole,
                    Err(Fmp4Error::Io(error)) => return Err(error),
                    Err(_) => break,
                };
                let body = whole.get(usize::try_from(header.header_len).unwrap_or(usize::MAX)..).unwrap_or_default();
                tags.extend(tags_in(header.kind, body).unwrap_or_default());
            }
            _ => {}
        }
        offset = header.end();
    }
    Ok(tags)
}

/// The tags in a box of type `kind` with payload `body`: a `moov` (or the `free` box a finalized
/// file's header `moov` became) holds a `udta`, which holds a `meta`.
fn tags_in(kind: [u8; 4], body: &[u8]) -> Result<Vec<(String, String)>, Fmp4Error> {
    match &kind {
        b"moov" | b"free" => match find_child(body, b"udta")? {
            Some(udta) => tags_in(*b"udta", udta.body),
            None => Ok(Vec::new()),
        },
        b"udta" => match find_child(body, b"meta")? {
            Some(meta) => meta_tags(meta.body),
            None => Ok(Vec::new()),
        },
        b"meta" => meta_tags(body),
        _ => Ok(Vec::new()),
    }
}

/// The tags of a `meta` payload. FFmpeg writes `meta` as a full box (version and flags before its
/// children); QuickTime's own files do not, so both are read.
fn meta_tags(body: &[u8]) -> Result<Vec<(String, String)>, Fmp4Error> {
    let children_start = if body.get(4..8) == Some(b"hdlr".as_slice()) { 0 } else { 4 };
    let body = body.get(children_start..).unwrap_or_default();
    let (Some(keys), Some(ilst)) = (find_child(body, b"keys")?, find_child(body, b"ilst")?) else {
        return Ok(Vec::new());
    };
    let names = key_names(keys.body)?;
    let mut tags = Vec::new();
    for item in children(ilst.body) {
        let item = item?;
        let index = u32::from_be_bytes(item.kind) as usize;
        let Some(name) = index.checked_sub(1).and_then(|i| names.get(i)) else { continue };
        if let Some(value) = utf8_value(item.body)? {
            tags.push((name.clone(), value));
        }
    }
    Ok(tags)
}

/// The names a `keys` box lists, in order (full box: version, flags, count, then per key its
/// size, namespace and name).
fn key_names(body: &[u8]) -> Result<Vec<String>, Fmp4Error> {
    let mut cursor = Cursor::new(body, "keys");
    cursor.version_flags()?;
    let count = cursor.u32()?;
    let mut names = Vec::new();
    for _ in 0..count {
        let size = cursor.u32()? as usize;
        let _namespace = cursor.fourcc()?;
        let name = cursor.bytes(size.saturating_sub(8))?;
        names.push(String::from_utf8_lossy(name).into_owned());
    }
    Ok(names)
}

/// The UTF-8 value of an `ilst` item: its first `data` box (type, locale, then the text).
fn utf8_value(item: &[u8]) -> Result<Option<String>, Fmp4Error> {
    let Some(data) = find_child(item, b"data")? else { return Ok(None) };
    let mut cursor = Cursor::new(data.body, "data");
    let kind = cursor.u32()? & 0x00ff_ffff;
    let _locale = cursor.u32()?;
    Ok((kind == UTF8).then(|| String::from_utf8_lossy(cursor.rest()).into_owned()))
}

#[cfg(test)]
mod tests {
    use std::io::Cursor as Reader;

    use super::*;
    use crate::storage::testing::{boxed, udta};

    fn tags_of(file: &[u8]) -> Vec<(String, String)> {
        header_tags(&mut Reader::new(file), file.len() as u64).unwrap()
    }

    fn pairs(tags: &[(&str, &str)]) -> Vec<(String, String)> {
        tags.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn tags_are_read_from_the_header_moov_in_every_state_of_a_file() {
        let tags = [("recorder", "dora-video-recorder"), ("session_id", "run 7")];
        let ftyp = boxed(b"ftyp", b"isom\0\0\0\0");
        let mvhd = boxed(b"mvhd", &[0; 100]);
        let mvex = boxed(b"mvex", &boxed(b"trex", &[0; 24]));
        let moov = boxed(b"moov", &[mvhd.clone(), mvex.clone(), udta(&tags)].concat());
        let fragment = [boxed(b"moof", &[0; 16]), boxed(b"mdat", &[0; 32])].concat();
        let writing = [ftyp.clone(), moov.clone(), fragment.clone()].concat();
        assert_eq!(tags_of(&writing), pairs(&tags));
        let freed = [ftyp.clone(), boxed(b"free", &moov[8..]), fragment.clone()].concat();
        assert_eq!(tags_of(&freed), pairs(&tags), "a finalized file's header moov is a free box");
        let exposed = [ftyp.clone(), boxed(b"free", &mvhd), mvex, udta(&tags), fragment].concat();
        assert_eq!(tags_of(&exposed), pairs(&tags), "half-way through the commit, udta is top-level");
        assert_eq!(tags_of(&[ftyp.clone(), moov.clone()].concat()), pairs(&tags), "a header alone");
    }

    #[test]
    fn files_without_a_tagged_header_moov_have_no_tags() {
        let ftyp = boxed(b"ftyp", b"isom\0\0\0\0");
        let moov = boxed(b"moov", &udta(&[("recorder", "dora-video-recorder")]));
        let moov_after_data = [ftyp.clone(), boxed(b"mdat", &[0; 64]), moov.clone()].concat();
        assert!(tags_of(&moov_after_data).is_empty(), "a regular MP4's moov after its data is not read");
        assert!(tags_of(&[boxed(b"moov", &[]), moov.clone()].concat()).is_empty(), "no ftyp: no MP4");
        assert!(tags_of(b"").is_empty() && tags_of(b"plain text, not boxes").is_empty());
        let garbage_free = [ftyp.clone(), boxed(b"free", &[0xff; 40])].concat();
        assert!(tags_of(&garbage_free).is_empty());
        let mut truncated = [ftyp, moov].concat();
        truncated.truncate(truncated.len() - 3);
        assert!(tags_of(&truncated).is_empty());
    }

    #[test]
    fn items_pointing_at_missing_keys_or_holding_binary_data_are_skipped() {
        let mut keys = [0u32.to_be_bytes(), 1u32.to_be_bytes()].concat();
        keys.extend([12u32.to_be_bytes().as_slice(), b"mdta", b"abcd"].concat());
        let text = boxed(b"data", &[1u32.to_be_bytes().as_slice(), &[0; 4], b"yes"].concat());
        let binary = boxed(b"data", &[0u32.to_be_bytes().as_slice(), &[0; 4], b"\xff"].concat());
        let ilst =
            [boxed(&1u32.to_be_bytes(), &text), boxed(&9u32.to_be_bytes(), &text), boxed(&1u32.to_be_bytes(), &binary)]
                .concat();
        let meta = [[0u8; 4].as_slice(), &boxed(b"keys", &keys), &boxed(b"ilst", &ilst)].concat();
        assert_eq!(meta_tags(&meta).unwrap(), pairs(&[("abcd", "yes")]));
    }
}
