//! Keeping the length a fragmented MP4's header states true while the file is written.
//!
//! FFmpeg's `empty_moov` header says "duration 0" and is never rewritten, so a recording cut
//! short by a kill or a power cut (no clean stop, hence no hybrid index) shows a wrong length
//! until startup repair: GStreamer's qtdemux takes the `mvhd` duration (0.66 s for a 5.35 s
//! file), and FFmpeg's mov demuxer, which Chromium uses, starts a stream's duration at its
//! `mdhd` duration and only grows it with the fragments it has read, which is all of them for
//! a seekable file but only the first second or two when the file is streamed (served without
//! byte ranges). FFmpeg never reads `mehd`, and the `mvex` FFmpeg writes has none: the `mvhd`,
//! `tkhd` and `mdhd` durations, fixed-size fields patched in place, are what players need.
//!
//! Crash ordering: [`LiveDurations::update`] is told how much of the file an `fdatasync` has
//! covered, and states the length of the complete fragments in that part only, so the header
//! never claims a fragment that is not on disk. Its own write reaches the disk with the next
//! sync; until then (or if a power cut loses it) the header states an earlier, shorter length.
//! Startup repair relies on that: fragments within the stated length are known to be on disk.

use std::{fs::File, os::unix::fs::FileExt};

use super::{
    Fmp4Error,
    boxes::{BoxHeader, PositionedFile, read_box, read_header},
    fragments::{Timeline, TrackDefaults},
    moov::{DurationFields, InitialMoov, rescale_up, seconds},
};

/// Largest `moov` read (FFmpeg's initial one is about 1 KiB).
const MAX_MOOV_BYTES: u64 = 16 << 20;
/// Largest `moof` read (a few hundred bytes per fragment in practice).
const MAX_MOOF_BYTES: u64 = 64 << 20;

/// The header durations of one fragmented MP4 being written, kept up to date in place.
#[derive(Debug, Default)]
pub struct LiveDurations {
    /// Known once the `moov` is on disk.
    header: Option<Header>,
    /// Offset of the first top-level box not read yet.
    scan_at: u64,
    /// Decode time of the first sample (media timescale), once a fragment is read.
    start: Option<u64>,
    /// Decode time after the last sample of the complete fragments read.
    end: u64,
    /// The media duration the header states now.
    stated: u64,
}

/// What [`LiveDurations`] knows of the file's `moov`.
#[derive(Debug)]
struct Header {
    /// File offset of the `moov` payload.
    payload_offset: u64,
    /// Where the durations are in the payload.
    fields: DurationFields,
    /// The track's `trex`.
    defaults: TrackDefaults,
    /// The payload bytes from the first duration field to the end of the last: what one write
    /// replaces, always holding what the file holds.
    span: Vec<u8>,
    /// Payload offset of `span`.
    span_offset: usize,
}

impl LiveDurations {
    /// Nothing known yet: the first [`update`](Self::update) reads the header.
    pub fn new() -> Self {
        Self::default()
    }

    /// Brings the header of `file` (open for reading and writing) up to date with the complete
    /// fragments in its first `durable_len` bytes, which an `fdatasync` has put on disk. Cheap
    /// to call after every sync: it reads only the fragments added since the last call, and
    /// writes once (a few hundred bytes at the start of the file) when the length changed.
    ///
    /// Returns the length the header states, in seconds; `None` while the `moov` is not on disk.
    ///
    /// # Errors
    ///
    /// I/O errors, and a file that is not a one-track fragmented MP4 as FFmpeg writes it. The
    /// header is left as it was; stop calling.
    pub fn update(&mut self, file: &File, durable_len: u64) -> Result<Option<f64>, Fmp4Error> {
        let mut reader = PositionedFile::new(file);
        if self.header.is_none() {
            let Some((header, moov_end)) = Header::read(&mut reader, durable_len)? else { return Ok(None) };
            self.header = Some(header);
            self.scan_at = moov_end;
        }
        let Some(header) = self.header.as_mut() else { return Ok(None) };
        while let Some(fragment) = next_fragment(&mut reader, self.scan_at, durable_len, header.defaults, self.end)? {
            self.start.get_or_insert(fragment.start);
            self.end = fragment.end;
            self.scan_at = fragment.next;
        }
        let media = self.end.saturating_sub(self.start.unwrap_or(self.end));
        if media != self.stated && header.write(file, media, self.end)? {
            self.stated = media;
        }
        Ok(Some(seconds(self.stated, header.fields.media_timescale)))
    }
}

/// Where a complete fragment's samples are in time, and where the next box starts.
#[derive(Debug, Clone, Copy)]
struct FragmentSpan {
    /// Decode time of its first sample (media timescale).
    start: u64,
    /// Decode time after its last sample.
    end: u64,
    /// Offset of the box after its `mdat`.
    next: u64,
}

/// Reads the first complete fragment (`moof` then `mdat`) from `offset` on, when the first
/// `len` bytes hold one, skipping other boxes (`free`, `mfra`). Its samples decode from
/// `previous_end` unless its `tfdt` says otherwise.
fn next_fragment(
    reader: &mut PositionedFile<'_>,
    mut offset: u64,
    len: u64,
    defaults: TrackDefaults,
    previous_end: u64,
) -> Result<Option<FragmentSpan>, Fmp4Error> {
    loop {
        let Some(first) = read_header(reader, offset, len)? else { return Ok(None) };
        if &first.kind != b"moof" {
            offset = first.end();
            continue;
        }
        let Some(mdat) = read_header(reader, first.end(), len)? else { return Ok(None) };
        if &mdat.kind != b"mdat" {
            return Err(Fmp4Error::Unsupported("a moof not followed by its mdat".to_owned()));
        }
        let bytes = read_box(reader, &first, MAX_MOOF_BYTES)?;
        let body = payload(&bytes, &first);
        let mut timeline = Timeline::continuing(defaults, previous_end);
        timeline.add_moof(body, first.offset)?;
        return Ok(Some(FragmentSpan { start: timeline.start(), end: timeline.end(), next: mdat.end() }));
    }
}

impl Header {
    /// Reads the `moov` when the first `len` bytes hold it; returns it with the offset after it.
    fn read(reader: &mut PositionedFile<'_>, len: u64) -> Result<Option<(Self, u64)>, Fmp4Error> {
        let mut offset = 0;
        let moov = loop {
            let Some(header) = read_header(reader, offset, len)? else { return Ok(None) };
            match &header.kind {
                b"moov" => break header,
                b"moof" | b"mdat" => return Err(Fmp4Error::NoMoov),
                _ => offset = header.end(),
            }
        };
        let bytes = read_box(reader, &moov, MAX_MOOV_BYTES)?;
        let body = payload(&bytes, &moov);
        let parsed = InitialMoov::parse(body)?;
        let fields = DurationFields::locate(body, &parsed)?;
        let fields_at = [fields.mvhd, fields.tkhd, fields.mdhd];
        let span_offset = fields_at.iter().map(|f| f.offset).min().unwrap_or(0);
        let span_end = fields_at.iter().map(|f| f.offset.saturating_add(f.len())).max().unwrap_or(0);
        let span = body.get(span_offset..span_end).ok_or_else(|| Fmp4Error::Malformed("moov".to_owned()))?.to_vec();
        let header = Self {
            payload_offset: moov.body_start(),
            fields,
            defaults: parsed.fragment_defaults()?,
            span,
            span_offset,
        };
        Ok(Some((header, moov.end())))
    }

    /// Writes `media` (media timescale) as the `mdhd` duration and `end` (the last decode time)
    /// as the movie and track durations. Returns `false`, writing nothing, when a 32-bit field
    /// cannot hold a value: the header keeps stating an earlier length.
    fn write(&mut self, file: &File, media: u64, end: u64) -> Result<bool, Fmp4Error> {
        let movie = rescale_up(end, self.fields.media_timescale, self.fields.movie_timescale)?;
        let mut span = self.span.clone();
        for (field, value) in [(self.fields.mvhd, movie), (self.fields.tkhd, movie), (self.fields.mdhd, media)] {
            let Some(bytes) = field.encode(value) else { return Ok(false) };
            let at = field.offset.saturating_sub(self.span_offset);
            let Some(slot) = span.get_mut(at..at.saturating_add(bytes.len())) else { return Ok(false) };
            slot.copy_from_slice(&bytes);
        }
        let span_offset = u64::try_from(self.span_offset).unwrap_or(u64::MAX);
        file.write_all_at(&span, self.payload_offset.saturating_add(span_offset))?;
        self.span = span;
        Ok(true)
    }
}

/// The payload of a box read with [`read_box`].
fn payload<'a>(bytes: &'a [u8], header: &BoxHeader) -> &'a [u8] {
    usize::try_from(header.header_len).ok().and_then(|start| bytes.get(start..)).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use std::{fs::OpenOptions, io::Write};

    use super::*;
    use crate::fmp4::{
        boxes::walk_top_level,
        finalize_hybrid,
        test_files::{MEDIA_TIMESCALE, SAMPLE_TICKS, cfr, fragmented_file, killed_file, temp_file},
    };

    /// The `mvhd`, `tkhd` and `mdhd` durations of a file, read at fixed places after each box
    /// type (version 0 boxes), independently of the code under test.
    fn stated(bytes: &[u8]) -> [u32; 3] {
        let at = |kind: &[u8], skip: usize| {
            let box_type = bytes.windows(4).position(|w| w == kind).unwrap();
            let field = box_type + 4 + skip;
            u32::from_be_bytes(bytes[field..field + 4].try_into().unwrap())
        };
        [at(b"mvhd", 16), at(b"tkhd", 20), at(b"mdhd", 16)]
    }

    /// Ends of the top-level boxes.
    fn box_ends(bytes: &[u8]) -> Vec<u64> {
        let top = walk_top_level(&mut std::io::Cursor::new(bytes), bytes.len() as u64).unwrap();
        top.boxes.iter().map(BoxHeader::end).collect()
    }

    #[test]
    fn states_the_length_of_the_synced_complete_fragments_only() {
        let bytes = killed_file(&cfr(4, 3));
        let ends = box_ends(&bytes); // ftyp, moov, then moof, mdat pairs
        let path = temp_file("live", "growing.mp4", &bytes[..ends[0] as usize + 10]);
        let file = OpenOptions::new().read(true).write(true).open(&path).unwrap();
        let mut durations = LiveDurations::new();
        assert_eq!(durations.update(&file, ends[0] + 10).unwrap(), None, "the moov is not on disk yet");
        let mut written = ends[0] + 10;
        // Grow the file in uneven steps; after each, the synced part is all of it or less.
        for cut in [ends[1], ends[2] + 5, ends[3] - 1, ends[3], ends[5] + 20, ends[9]] {
            let mut appender = OpenOptions::new().append(true).open(&path).unwrap();
            appender.write_all(&bytes[written as usize..cut as usize]).unwrap();
            written = cut;
            for synced in [cut.saturating_sub(30), cut].into_iter().filter(|&synced| synced >= ends[1]) {
                let fragments = ends.iter().skip(3).step_by(2).filter(|&&end| end <= synced).count() as u64;
                let media = fragments * 3 * u64::from(SAMPLE_TICKS);
                let secs = durations.update(&file, synced).unwrap();
                assert_eq!(secs, Some(media as f64 / f64::from(MEDIA_TIMESCALE)), "synced {synced}");
                let movie = (media * 1000).div_ceil(u64::from(MEDIA_TIMESCALE)) as u32;
                let on_disk = std::fs::read(&path).unwrap();
                assert_eq!(stated(&on_disk), [movie, movie, media as u32], "synced {synced} of {cut}");
            }
        }
        assert_eq!(std::fs::read(&path).unwrap().len(), bytes.len(), "only the header changed in place");
    }

    #[test]
    fn an_updated_file_still_finalizes_with_the_same_index() {
        let bytes = fragmented_file(&cfr(3, 4));
        let plain = temp_file("live", "plain.mp4", &bytes);
        let updated = temp_file("live", "updated.mp4", &bytes);
        let file = OpenOptions::new().read(true).write(true).open(&updated).unwrap();
        let secs = LiveDurations::new().update(&file, bytes.len() as u64).unwrap();
        assert_eq!(secs, Some(12.0 * f64::from(SAMPLE_TICKS) / f64::from(MEDIA_TIMESCALE)));
        let (outcome, updated_outcome) = (finalize_hybrid(&plain).unwrap(), finalize_hybrid(&updated).unwrap());
        assert_eq!(outcome, updated_outcome);
        let (a, b) = (std::fs::read(&plain).unwrap(), std::fs::read(&updated).unwrap());
        let moov = a.len() - outcome.moov_bytes as usize;
        assert_eq!((a.len(), &a[moov..]), (b.len(), &b[moov..]), "the same moov at the end");
    }

    #[test]
    fn files_it_cannot_read_are_errors_and_left_alone() {
        let fragments = killed_file(&cfr(1, 2));
        let ends = box_ends(&fragments);
        let no_moov = [&fragments[..ends[0] as usize], &fragments[ends[1] as usize..]].concat();
        let path = temp_file("live", "no-moov.mp4", &no_moov);
        let file = OpenOptions::new().read(true).write(true).open(&path).unwrap();
        assert!(LiveDurations::new().update(&file, no_moov.len() as u64).is_err());
        assert_eq!(std::fs::read(&path).unwrap(), no_moov);
        let garbage = temp_file("live", "garbage.mp4", &[0xff; 64]);
        let file = OpenOptions::new().read(true).write(true).open(&garbage).unwrap();
        assert_eq!(LiveDurations::new().update(&file, 64).unwrap(), None);
        assert_eq!(std::fs::read(&garbage).unwrap(), [0xff; 64]);
    }
}
