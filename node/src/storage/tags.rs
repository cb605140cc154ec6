//! The metadata tags in a video's container header, read without FFmpeg (which stays inside
//! `crate::encode`): MP4 through [`crate::fmp4::header_tags`], Matroska and AVI with the two small
//! walkers below. Only the header is read (what comes before the first fragment, cluster or
//! `movi` list), so the cost does not grow with the file. Nothing read is trusted: a corrupt or
//! foreign file has no tags, never a panic.

use std::{
    fs::File,
    io::{self, Read, Seek, SeekFrom},
};

/// Largest header element or chunk read into memory (a 100 kB session id makes the tags that
/// large).
const MAX_HEADER_BYTES: u64 = 16 << 20;
/// Header elements (Matroska) or chunks (AVI) looked at before giving up.
const MAX_HEAD_ITEMS: usize = 64;

/// A container the recorder writes, told by the file's first bytes (not its name).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Container {
    /// ISO-BMFF: the file starts with an `ftyp` box.
    Mp4,
    /// EBML with a Matroska segment.
    Matroska,
    /// RIFF `AVI `.
    Avi,
}

/// What a video's header says about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderTags {
    /// Its container.
    pub container: Container,
    /// Its global tags (name in lower case, value), in file order. FFmpeg upper-cases Matroska
    /// tag names; AVI's `ICMT` reads as `comment`.
    pub tags: Vec<(String, String)>,
}

impl HeaderTags {
    /// The value of tag `name` (lower case), if the header has it.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.tags.iter().find(|(key, _)| key == name).map(|(_, value)| value.as_str())
    }
}

/// The container and tags of the open `file`; `None` when it is none of the recorder's
/// containers (or too short to tell).
///
/// # Errors
///
/// Only reading the file fails the call.
pub fn read_header_tags(file: &mut File) -> io::Result<Option<HeaderTags>> {
    let len = file.metadata()?.len();
    let mut magic = [0u8; 12];
    if len < magic.len() as u64 {
        return Ok(None);
    }
    file.seek(SeekFrom::Start(0))?;
    file.read_exact(&mut magic)?;
    let container = match magic {
        [_, _, _, _, b'f', b't', b'y', b'p', ..] => Container::Mp4,
        [0x1a, 0x45, 0xdf, 0xa3, ..] => Container::Matroska,
        [b'R', b'I', b'F', b'F', _, _, _, _, b'A', b'V', b'I', b' '] => Container::Avi,
        _ => return Ok(None),
    };
    let tags = match container {
        Container::Mp4 => crate::fmp4::header_tags(file, len)?,
        Container::Matroska => matroska_tags(file, len)?,
        Container::Avi => avi_tags(file, len)?,
    };
    let tags = tags.into_iter().map(|(name, value)| (name.to_ascii_lowercase(), value)).collect();
    Ok(Some(HeaderTags { container, tags }))
}

/// Reads `size` bytes at `offset`, or `None` when they are not all there or more than
/// [`MAX_HEADER_BYTES`].
fn read_at<R: Read + Seek>(reader: &mut R, offset: u64, size: u64, len: u64) -> io::Result<Option<Vec<u8>>> {
    if size > MAX_HEADER_BYTES || offset.checked_add(size).is_none_or(|end| end > len) {
        return Ok(None);
    }
    let mut bytes = vec![0u8; size as usize];
    reader.seek(SeekFrom::Start(offset))?;
    reader.read_exact(&mut bytes)?;
    Ok(Some(bytes))
}

// ---------------------------------------------------------------------------------------------
// Matroska: EBML elements, each an ID and a size (variable-length integers) before its body.

const EBML_HEADER: u64 = 0x1a45_dfa3;
const SEGMENT: u64 = 0x1853_8067;
const CLUSTER: u64 = 0x1f43_b675;
const TAGS: u64 = 0x1254_c367;
const TAG: u64 = 0x7373;
const SIMPLE_TAG: u64 = 0x67c8;
const TAG_NAME: u64 = 0x45a3;
const TAG_STRING: u64 = 0x4487;

/// One EBML element header: its ID, where its body starts (relative to where it was read) and
/// its size (`None`: unknown, runs to the end of its parent).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Element {
    id: u64,
    header_len: usize,
    size: Option<u64>,
}

/// An EBML variable-length integer at the start of `buf`: its value (the length marker kept for
/// IDs, dropped for sizes), its length, and whether all its value bits are set.
fn vint(buf: &[u8], keep_marker: bool) -> Option<(u64, usize, bool)> {
    let first = *buf.first()?;
    let len = first.leading_zeros() as usize + 1;
    if len > 8 {
        return None;
    }
    let mask = 0xffu8.checked_shr(len as u32).unwrap_or(0);
    let head = if keep_marker { first } else { first & mask };
    let mut value = u64::from(head);
    let mut all_ones = first & mask == mask;
    for &byte in buf.get(1..len)? {
        value = (value << 8) | u64::from(byte);
        all_ones &= byte == 0xff;
    }
    Some((value, len, all_ones))
}

/// The element header at the start of `buf`.
fn element(buf: &[u8]) -> Option<Element> {
    let (id, id_len, _) = vint(buf, true)?;
    let (size, size_len, unknown) = vint(buf.get(id_len..)?, false)?;
    Some(Element { id, header_len: id_len + size_len, size: (!unknown).then_some(size) })
}

/// The element header at `offset` of the file, if one fits before `end`.
fn element_at<R: Read + Seek>(reader: &mut R, offset: u64, end: u64) -> io::Result<Option<Element>> {
    let available = end.saturating_sub(offset).min(12);
    let Some(bytes) = read_at(reader, offset, available, end)? else { return Ok(None) };
    Ok(element(&bytes))
}

/// The global tags of a Matroska file: the `Tags` elements of its segment before the first
/// cluster (where FFmpeg writes them with the header).
fn matroska_tags<R: Read + Seek>(reader: &mut R, len: u64) -> io::Result<Vec<(String, String)>> {
    let mut tags = Vec::new();
    let Some(head) = element_at(reader, 0, len)?.filter(|e| e.id == EBML_HEADER) else { return Ok(tags) };
    let Some(mut offset) = head.size.and_then(|size| size.checked_add(head.header_len as u64)) else {
        return Ok(tags);
    };
    let Some(segment) = element_at(reader, offset, len)?.filter(|e| e.id == SEGMENT) else { return Ok(tags) };
    offset += segment.header_len as u64;
    let end = segment.size.and_then(|size| offset.checked_add(size)).map_or(len, |end| end.min(len));
    for _ in 0..MAX_HEAD_ITEMS {
        let Some(child) = element_at(reader, offset, end)? else { break };
        let (Some(size), false) = (child.size, child.id == CLUSTER) else { break };
        let body_start = offset + child.header_len as u64;
        if child.id == TAGS
            && let Some(body) = read_at(reader, body_start, size, end)?
        {
            tags.extend(simple_tags(&body));
        }
        let Some(next) = body_start.checked_add(size) else { break };
        offset = next;
    }
    Ok(tags)
}

/// The children of an element body, as (ID, body); stops at the first one that does not fit.
fn children(mut buf: &[u8]) -> impl Iterator<Item = (u64, &[u8])> {
    std::iter::from_fn(move || {
        let child = element(buf)?;
        let size = usize::try_from(child.size?).ok()?;
        let end = child.header_len.checked_add(size)?;
        let body = buf.get(child.header_len..end)?;
        buf = buf.get(end..)?;
        Some((child.id, body))
    })
}

/// The (name, value) of every `SimpleTag` of every `Tag` in a `Tags` body.
fn simple_tags(tags: &[u8]) -> Vec<(String, String)> {
    let text = |body: &[u8]| String::from_utf8_lossy(body).trim_end_matches('\0').to_owned();
    children(tags)
        .filter(|(id, _)| *id == TAG)
        .flat_map(|(_, tag)| children(tag).filter(|(id, _)| *id == SIMPLE_TAG))
        .filter_map(|(_, simple)| {
            let name = children(simple).find(|(id, _)| *id == TAG_NAME)?.1;
            let value = children(simple).find(|(id, _)| *id == TAG_STRING)?.1;
            Some((text(name), text(value)))
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// AVI: RIFF chunks, a four-character ID and a little-endian size before an even-padded body.

/// The `LIST INFO` entries of an AVI before its `movi` list (FFmpeg writes them with the
/// header). RIFF INFO has a fixed set of fields: `ICMT` (comment) is the one the recorder uses.
fn avi_tags<R: Read + Seek>(reader: &mut R, len: u64) -> io::Result<Vec<(String, String)>> {
    let mut tags = Vec::new();
    let Some(riff) = read_at(reader, 0, 12, len)? else { return Ok(tags) };
    let riff_size = u64::from(u32::from_le_bytes([riff[4], riff[5], riff[6], riff[7]]));
    let end = (riff_size + 8).min(len);
    let mut offset = 12u64;
    for _ in 0..MAX_HEAD_ITEMS {
        let Some(head) = read_at(reader, offset, 12.min(end.saturating_sub(offset)), end)? else { break };
        let (Some(id), Some(size)) = (head.get(0..4), head.get(4..8)) else { break };
        let size = u64::from(u32::from_le_bytes([size[0], size[1], size[2], size[3]]));
        if id == b"idx1" || (id == b"LIST" && head.get(8..12) == Some(b"movi".as_slice())) {
            break;
        }
        if id == b"LIST"
            && head.get(8..12) == Some(b"INFO".as_slice())
            && let Some(body) = read_at(reader, offset + 12, size.saturating_sub(4), end)?
        {
            tags.extend(info_entries(&body));
        }
        offset += 8 + size + (size & 1);
    }
    Ok(tags)
}

/// The (name, value) entries of a `LIST INFO` body; `ICMT` is named `comment`.
fn info_entries(mut body: &[u8]) -> Vec<(String, String)> {
    let mut entries = Vec::new();
    while let (Some(id), Some(size)) = (body.get(0..4), body.get(4..8)) {
        let size = u32::from_le_bytes([size[0], size[1], size[2], size[3]]) as usize;
        let Some(value) = body.get(8..8usize.saturating_add(size)) else { break };
        let name = if id == b"ICMT" { "comment".to_owned() } else { String::from_utf8_lossy(id).into_owned() };
        entries.push((name, String::from_utf8_lossy(value).trim_end_matches('\0').to_owned()));
        body = body.get(8 + size + (size & 1)..).unwrap_or_default();
    }
    entries
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use super::*;
    use crate::storage::testing::{avi, matroska};

    fn pairs(tags: &[(&str, &str)]) -> Vec<(String, String)> {
        tags.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn matroska_tags_before_the_first_cluster_are_read() {
        let file = matroska(&[("recorder", "dora-video-recorder"), ("session_id", "s")]);
        let tags = matroska_tags(&mut Cursor::new(&file), file.len() as u64).unwrap();
        assert_eq!(tags, pairs(&[("RECORDER", "dora-video-recorder"), ("SESSION_ID", "s")]));
        // The same tags after the first cluster (where other muxers may put them) are not read.
        let cluster_at = file.windows(4).position(|w| w == [0x1f, 0x43, 0xb6, 0x75]).unwrap();
        let tags_at = file.windows(4).position(|w| w == [0x12, 0x54, 0xc3, 0x67]).unwrap();
        let late = [&file[..tags_at], &file[cluster_at..], &file[tags_at..cluster_at]].concat();
        assert!(matroska_tags(&mut Cursor::new(&late), late.len() as u64).unwrap().is_empty());
    }

    #[test]
    fn variable_length_integers_decode_and_garbage_is_refused() {
        assert_eq!(vint(&[0x81], false), Some((1, 1, false)));
        assert_eq!(vint(&[0x40, 0x02], false), Some((2, 2, false)));
        assert_eq!(vint(&[0x1a, 0x45, 0xdf, 0xa3], true), Some((EBML_HEADER, 4, false)));
        assert_eq!(vint(&[0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff], false).map(|v| v.2), Some(true));
        assert_eq!(vint(&[0x00, 1, 2], false), None);
        assert_eq!(vint(&[0x40], false), None, "truncated");
        let file = [0x1a, 0x45, 0xdf, 0xa3, 0x08, 0x42];
        assert!(matroska_tags(&mut Cursor::new(&file), file.len() as u64).unwrap().is_empty());
    }

    #[test]
    fn avi_info_entries_are_read_and_icmt_is_the_comment() {
        let file = avi(&[(b"ICMT", "dora-video-recorder"), (b"ISFT", "Lavf59")]);
        let tags = avi_tags(&mut Cursor::new(&file), file.len() as u64).unwrap();
        assert_eq!(tags, pairs(&[("comment", "dora-video-recorder"), ("ISFT", "Lavf59")]));
        let truncated = &file[..30];
        assert!(avi_tags(&mut Cursor::new(truncated), truncated.len() as u64).unwrap().is_empty());
    }
}
