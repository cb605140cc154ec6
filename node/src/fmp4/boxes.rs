//! ISO-BMFF box plumbing: top-level headers read from a file, child boxes walked inside a
//! buffer, a bounds-checked big-endian reader, and box writers.
//!
//! Nothing here trusts a size field: every length is checked against what is really there,
//! so corrupt input is an error or an "incomplete" answer, never a panic.

use std::{
    fs::File,
    io::{self, Read, Seek, SeekFrom},
    os::unix::fs::FileExt,
};

use super::Fmp4Error;

/// A box type (`moov`, `moof`...).
pub(crate) type FourCc = [u8; 4];

/// Size of a compact box header (32-bit size + type).
const HEADER_LEN: u64 = 8;
/// Size of a header with a 64-bit `largesize`.
const LARGE_HEADER_LEN: u64 = 16;

/// One box header found in a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BoxHeader {
    /// Box type.
    pub kind: FourCc,
    /// Offset of the first header byte in the file.
    pub offset: u64,
    /// Header length: 8, or 16 with a `largesize`.
    pub header_len: u64,
    /// Total size, header included (size 0 already resolved to "up to the end of the file").
    pub size: u64,
}

impl BoxHeader {
    /// Offset just past the box.
    pub fn end(&self) -> u64 {
        // Cannot overflow: read_header checks that the box fits in the file.
        self.offset.saturating_add(self.size)
    }

    /// Offset of the first byte after the header.
    pub fn body_start(&self) -> u64 {
        self.offset.saturating_add(self.header_len)
    }
}

/// The top-level boxes of a file, up to the first one that is not complete.
#[derive(Debug, Clone, Default)]
pub(crate) struct TopLevel {
    /// Complete boxes, in file order.
    pub boxes: Vec<BoxHeader>,
    /// Where the walk stopped before the end of the file: a truncated header, a box that
    /// extends past the end, or bytes that are no box header at all.
    pub incomplete_at: Option<u64>,
}

/// Whether `kind` can be a top-level box type. Real types are printable ASCII; this rejects the
/// zero-filled tail a crash can leave, which would otherwise read as a "size 0" box.
fn is_plausible_type(kind: FourCc) -> bool {
    kind.iter().all(|b| (0x20..=0x7e).contains(b))
}

/// Reads the box header at `offset` of a file of `len` bytes. `None` when no complete box starts
/// there (truncated header, size smaller than its header, box past the end, garbage type).
pub(crate) fn read_header<R: Read + Seek>(reader: &mut R, offset: u64, len: u64) -> io::Result<Option<BoxHeader>> {
    let available = len.saturating_sub(offset);
    if available < HEADER_LEN {
        return Ok(None);
    }
    reader.seek(SeekFrom::Start(offset))?;
    let mut compact = [0u8; 8];
    reader.read_exact(&mut compact)?;
    let [s0, s1, s2, s3, k0, k1, k2, k3] = compact;
    let kind = [k0, k1, k2, k3];
    if !is_plausible_type(kind) {
        return Ok(None);
    }
    let (size, header_len) = match u32::from_be_bytes([s0, s1, s2, s3]) {
        0 => (available, HEADER_LEN),
        1 => {
            if available < LARGE_HEADER_LEN {
                return Ok(None);
            }
            let mut large = [0u8; 8];
            reader.read_exact(&mut large)?;
            (u64::from_be_bytes(large), LARGE_HEADER_LEN)
        }
        size => (u64::from(size), HEADER_LEN),
    };
    if size < header_len || size > available {
        return Ok(None);
    }
    Ok(Some(BoxHeader { kind, offset, header_len, size }))
}

/// Walks the top-level boxes of a file of `len` bytes.
pub(crate) fn walk_top_level<R: Read + Seek>(reader: &mut R, len: u64) -> io::Result<TopLevel> {
    let mut top = TopLevel::default();
    let mut offset = 0u64;
    while offset < len {
        match read_header(reader, offset, len)? {
            Some(header) => {
                offset = header.end();
                top.boxes.push(header);
            }
            None => {
                top.incomplete_at = Some(offset);
                break;
            }
        }
    }
    Ok(top)
}

/// Reads a whole box (header included) into memory, refusing boxes larger than `limit` so a
/// corrupt size cannot make us allocate the whole file.
pub(crate) fn read_box<R: Read + Seek>(reader: &mut R, header: &BoxHeader, limit: u64) -> Result<Vec<u8>, Fmp4Error> {
    if header.size > limit {
        return Err(Fmp4Error::Unsupported(format!(
            "{} box of {} bytes at {} is larger than {limit} bytes",
            kind_name(header.kind),
            header.size,
            header.offset
        )));
    }
    let size = usize::try_from(header.size).map_err(|_| Fmp4Error::Unsupported("box too large".to_owned()))?;
    let mut bytes = vec![0u8; size];
    reader.seek(SeekFrom::Start(header.offset))?;
    reader.read_exact(&mut bytes)?;
    Ok(bytes)
}

/// A `Read + Seek` view of a file that reads with `pread`: a seek costs no system call, so a
/// box header costs one. Shares the file with other users (the muxer writing it) without
/// moving their position.
#[derive(Debug)]
pub(crate) struct PositionedFile<'a> {
    file: &'a File,
    pos: u64,
}

impl<'a> PositionedFile<'a> {
    /// A reader at the start of `file`.
    pub fn new(file: &'a File) -> Self {
        Self { file, pos: 0 }
    }
}

impl Read for PositionedFile<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let read = self.file.read_at(buf, self.pos)?;
        self.pos = self.pos.saturating_add(read as u64);
        Ok(read)
    }
}

impl Seek for PositionedFile<'_> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let target = match to {
            SeekFrom::Start(offset) => Some(offset),
            SeekFrom::Current(delta) => self.pos.checked_add_signed(delta),
            SeekFrom::End(delta) => self.file.metadata()?.len().checked_add_signed(delta),
        };
        self.pos = target.ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "seek before the start"))?;
        Ok(self.pos)
    }
}

/// A box type for messages (`moov`, or the bytes escaped when not ASCII).
pub(crate) fn kind_name(kind: FourCc) -> String {
    kind.iter().map(|&b| if b.is_ascii_graphic() { char::from(b).to_string() } else { format!("\\x{b:02x}") }).collect()
}

/// One child box inside an in-memory parent.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Child<'a> {
    /// Box type.
    pub kind: FourCc,
    /// Offset of the box's first byte in the buffer given to [`children`].
    pub offset: usize,
    /// The whole box, header included (for verbatim copies).
    pub whole: &'a [u8],
    /// The box payload after its header.
    pub body: &'a [u8],
}

impl Child<'_> {
    /// Offset of the first payload byte in the buffer given to [`children`].
    pub fn body_offset(&self) -> usize {
        self.offset.saturating_add(self.whole.len().saturating_sub(self.body.len()))
    }
}

/// Iterates over the boxes packed in `buf` (a parent's payload). Yields one error and stops on
/// a malformed header.
pub(crate) fn children(buf: &[u8]) -> Children<'_> {
    Children { rest: buf, consumed: 0, failed: false }
}

/// Iterator returned by [`children`].
pub(crate) struct Children<'a> {
    rest: &'a [u8],
    /// Bytes of the parent split off so far: the offset of `rest`.
    consumed: usize,
    failed: bool,
}

impl<'a> Children<'a> {
    /// Splits the next child off `self.rest`.
    fn split_next(&mut self) -> Result<Child<'a>, Fmp4Error> {
        let mut cursor = Cursor::new(self.rest, "box header");
        let compact = cursor.u32()?;
        let kind = cursor.fourcc()?;
        let size = match compact {
            0 => self.rest.len(),
            1 => usize::try_from(cursor.u64()?).map_err(|_| Fmp4Error::Malformed("box size overflows".to_owned()))?,
            size => usize::try_from(size).map_err(|_| Fmp4Error::Malformed("box size overflows".to_owned()))?,
        };
        let header_len = cursor.position();
        if size < header_len || size > self.rest.len() {
            return Err(Fmp4Error::Malformed(format!(
                "{} box declares {size} bytes but {} are available",
                kind_name(kind),
                self.rest.len()
            )));
        }
        let (whole, rest) = self.rest.split_at(size);
        let body = whole.get(header_len..).unwrap_or_default();
        let offset = self.consumed;
        self.rest = rest;
        self.consumed = self.consumed.saturating_add(size);
        Ok(Child { kind, offset, whole, body })
    }
}

impl<'a> Iterator for Children<'a> {
    type Item = Result<Child<'a>, Fmp4Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.rest.is_empty() {
            return None;
        }
        let child = self.split_next();
        self.failed = child.is_err();
        Some(child)
    }
}

/// The first child of type `kind`, if any.
pub(crate) fn find_child<'a>(buf: &'a [u8], kind: &FourCc) -> Result<Option<Child<'a>>, Fmp4Error> {
    for child in children(buf) {
        let child = child?;
        if &child.kind == kind {
            return Ok(Some(child));
        }
    }
    Ok(None)
}

/// Like [`find_child`], but the child must be there.
pub(crate) fn require_child<'a>(buf: &'a [u8], kind: &FourCc, parent: &str) -> Result<Child<'a>, Fmp4Error> {
    find_child(buf, kind)?.ok_or_else(|| Fmp4Error::Malformed(format!("{parent} has no {} box", kind_name(*kind))))
}

/// Bounds-checked big-endian reader over a box payload.
#[derive(Debug, Clone)]
pub(crate) struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
    /// What is being read, for error messages.
    what: &'static str,
}

impl<'a> Cursor<'a> {
    /// A reader at the start of `buf`; `what` names it in errors.
    pub fn new(buf: &'a [u8], what: &'static str) -> Self {
        Self { buf, pos: 0, what }
    }

    /// Bytes read so far.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Bytes left.
    pub fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    /// The next `n` bytes.
    pub fn bytes(&mut self, n: usize) -> Result<&'a [u8], Fmp4Error> {
        let end = self.pos.checked_add(n).filter(|&end| end <= self.buf.len());
        let slice = end.and_then(|end| self.buf.get(self.pos..end));
        let slice = slice.ok_or_else(|| Fmp4Error::Malformed(format!("{} is truncated", self.what)))?;
        self.pos = self.pos.saturating_add(n);
        Ok(slice)
    }

    /// Everything not read yet.
    pub fn rest(&mut self) -> &'a [u8] {
        let rest = self.buf.get(self.pos..).unwrap_or_default();
        self.pos = self.buf.len();
        rest
    }

    /// Reads a fixed-size array.
    fn array<const N: usize>(&mut self) -> Result<[u8; N], Fmp4Error> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.bytes(N)?);
        Ok(out)
    }

    /// A big-endian u32.
    pub fn u32(&mut self) -> Result<u32, Fmp4Error> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    /// A big-endian i32.
    pub fn i32(&mut self) -> Result<i32, Fmp4Error> {
        Ok(i32::from_be_bytes(self.array()?))
    }

    /// A big-endian u64.
    pub fn u64(&mut self) -> Result<u64, Fmp4Error> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    /// A box type.
    pub fn fourcc(&mut self) -> Result<FourCc, Fmp4Error> {
        self.array()
    }

    /// A full box's version and 24-bit flags.
    pub fn version_flags(&mut self) -> Result<(u8, u32), Fmp4Error> {
        let word = self.u32()?;
        Ok(((word >> 24) as u8, word & 0x00ff_ffff))
    }

    /// A u32 (version 0) or u64 (version 1) field, as in `mvhd`/`tkhd`/`mdhd`/`tfdt`.
    pub fn u32_or_u64(&mut self, version: u8) -> Result<u64, Fmp4Error> {
        if version == 1 { self.u64() } else { self.u32().map(u64::from) }
    }
}

/// Appends a big-endian u32.
pub(crate) fn put_u32(out: &mut Vec<u8>, value: u32) {
    out.extend_from_slice(&value.to_be_bytes());
}

/// Appends a big-endian u64.
pub(crate) fn put_u64(out: &mut Vec<u8>, value: u64) {
    out.extend_from_slice(&value.to_be_bytes());
}

/// Appends a box of type `kind` whose payload `fill` writes. Uses a 64-bit `largesize` header
/// only when the box does not fit a 32-bit size.
pub(crate) fn write_box<F>(out: &mut Vec<u8>, kind: FourCc, fill: F) -> Result<(), Fmp4Error>
where
    F: FnOnce(&mut Vec<u8>) -> Result<(), Fmp4Error>,
{
    let start = out.len();
    put_u32(out, 0);
    out.extend_from_slice(&kind);
    fill(out)?;
    let size = out.len().saturating_sub(start);
    match u32::try_from(size) {
        Ok(size) => {
            if let Some(field) = out.get_mut(start..start.saturating_add(4)) {
                field.copy_from_slice(&size.to_be_bytes());
            }
        }
        Err(_) => {
            let large = u64::try_from(size)
                .ok()
                .and_then(|s| s.checked_add(8))
                .ok_or_else(|| Fmp4Error::Unsupported("box too large".to_owned()))?;
            let body_start = start.saturating_add(8);
            out.splice(body_start..body_start, large.to_be_bytes());
            if let Some(field) = out.get_mut(start..start.saturating_add(4)) {
                field.copy_from_slice(&1u32.to_be_bytes());
            }
        }
    }
    Ok(())
}

/// Appends a full box (version and flags first) whose remaining payload `fill` writes.
pub(crate) fn write_full_box<F>(
    out: &mut Vec<u8>,
    kind: FourCc,
    version: u8,
    flags: u32,
    fill: F,
) -> Result<(), Fmp4Error>
where
    F: FnOnce(&mut Vec<u8>) -> Result<(), Fmp4Error>,
{
    write_box(out, kind, |out| {
        put_u32(out, (u32::from(version) << 24) | (flags & 0x00ff_ffff));
        fill(out)
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use std::io::Cursor as IoCursor;

    use super::*;

    /// A box with a compact header.
    pub(crate) fn boxed(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        write_box(&mut out, *kind, |out| {
            out.extend_from_slice(body);
            Ok(())
        })
        .unwrap();
        out
    }

    /// A box with a 64-bit largesize header.
    pub(crate) fn large_boxed(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut out = 1u32.to_be_bytes().to_vec();
        out.extend_from_slice(kind);
        out.extend_from_slice(&(body.len() as u64 + 16).to_be_bytes());
        out.extend_from_slice(body);
        out
    }

    fn walk(bytes: &[u8]) -> TopLevel {
        walk_top_level(&mut IoCursor::new(bytes), bytes.len() as u64).unwrap()
    }

    fn kinds(top: &TopLevel) -> Vec<&[u8]> {
        top.boxes.iter().map(|b| &b.kind[..]).collect()
    }

    #[test]
    fn walks_compact_large_and_to_end_boxes() {
        let mut file = boxed(b"ftyp", b"isom");
        file.extend(large_boxed(b"moov", &[1, 2, 3]));
        file.extend([0, 0, 0, 0]);
        file.extend(b"mdat");
        file.extend([9; 20]);
        let top = walk(&file);
        assert_eq!(kinds(&top), [&b"ftyp"[..], b"moov", b"mdat"]);
        assert_eq!(top.incomplete_at, None);
        assert_eq!(top.boxes[1], BoxHeader { kind: *b"moov", offset: 12, header_len: 16, size: 19 });
        assert_eq!(top.boxes[2].size, 28, "size 0 runs to the end of the file");
        assert_eq!(top.boxes[2].end(), file.len() as u64);
    }

    #[test]
    fn stops_at_truncated_or_garbage_boxes() {
        let file = [boxed(b"ftyp", b"isom"), boxed(b"moov", &[0; 10])].concat();
        for cut in 13..file.len() {
            let top = walk(&file[..cut]);
            assert_eq!(kinds(&top), [b"ftyp"], "cut at {cut}");
            assert_eq!(top.incomplete_at, Some(12));
        }
        let mut bad_size = boxed(b"ftyp", b"isom");
        bad_size.extend([0, 0, 0, 5]);
        bad_size.extend(b"free");
        assert_eq!(walk(&bad_size).incomplete_at, Some(12), "size below the header length");
        let mut zeros = boxed(b"ftyp", b"isom");
        zeros.extend([0; 64]);
        assert_eq!(walk(&zeros).incomplete_at, Some(12), "a zero-filled tail is no size-0 box");
        let mut short_large = boxed(b"ftyp", b"isom");
        short_large.extend(&large_boxed(b"mdat", &[0; 4])[..12]);
        assert_eq!(walk(&short_large).incomplete_at, Some(12));
        let mut huge = boxed(b"ftyp", b"isom");
        huge.extend(1u32.to_be_bytes());
        huge.extend(b"mdat");
        huge.extend(u64::MAX.to_be_bytes());
        assert_eq!(walk(&huge).incomplete_at, Some(12), "largesize past the end");
    }

    #[test]
    fn children_and_cursor_are_bounds_checked() {
        let parent = [boxed(b"mvhd", &[1, 2]), large_boxed(b"trak", &[3]), boxed(b"udta", &[])].concat();
        let kids: Vec<Child<'_>> = children(&parent).collect::<Result<_, _>>().unwrap();
        assert_eq!(kids.len(), 3);
        assert_eq!(kids[1].body, [3]);
        assert_eq!(kids[0].whole, &parent[..10]);
        assert_eq!(kids.iter().map(|k| k.offset).collect::<Vec<_>>(), [0, 10, 27]);
        for cut in 1..parent.len() {
            let results: Vec<_> = children(&parent[..cut]).collect();
            assert!(results.iter().any(Result::is_err) || cut == 10 || cut == 27, "cut at {cut}");
        }
        let mut cursor = Cursor::new(&[0, 0, 0, 7, 1], "test");
        assert_eq!(cursor.u32().unwrap(), 7);
        assert!(cursor.u32().is_err());
        assert_eq!(cursor.bytes(1).unwrap(), [1]);
        assert!(cursor.bytes(usize::MAX).is_err());
    }

    #[test]
    fn write_box_switches_to_largesize_only_when_needed() {
        let small = boxed(b"free", &[0; 3]);
        assert_eq!(small, [0, 0, 0, 11, b'f', b'r', b'e', b'e', 0, 0, 0]);
        let mut out = Vec::new();
        write_full_box(&mut out, *b"stco", 1, 0x123456, |out| {
            put_u64(out, 5);
            Ok(())
        })
        .unwrap();
        assert_eq!(out, [0, 0, 0, 20, b's', b't', b'c', b'o', 1, 0x12, 0x34, 0x56, 0, 0, 0, 0, 0, 0, 0, 5]);
    }
}
