//! From fragments to sample tables: the samples described by every `moof`/`traf`/`trun`
//! ([`Timeline`]), and the `stbl` tables (`stts`, `stss`, `ctts`, `stsc`, `stsz`,
//! `stco`/`co64`) that index them in a regular `moov` ([`SampleTables`]).

use super::{
    Fmp4Error,
    boxes::{Cursor, children, put_u32, put_u64, require_child, write_box, write_full_box},
};

/// `tfhd` flag: an explicit base data offset follows.
const TFHD_BASE_DATA_OFFSET: u32 = 0x1;
/// `tfhd` flag: a sample description index follows.
const TFHD_DESCRIPTION_INDEX: u32 = 0x2;
/// `tfhd` flag: a default sample duration follows.
const TFHD_DEFAULT_DURATION: u32 = 0x8;
/// `tfhd` flag: a default sample size follows.
const TFHD_DEFAULT_SIZE: u32 = 0x10;
/// `tfhd` flag: default sample flags follow.
const TFHD_DEFAULT_FLAGS: u32 = 0x20;
/// `tfhd` flag: the fragment is an empty edit with no samples.
const TFHD_DURATION_IS_EMPTY: u32 = 0x1_0000;
/// `tfhd` flag: data offsets count from the start of the `moof`.
const TFHD_DEFAULT_BASE_IS_MOOF: u32 = 0x2_0000;
/// `trun` flag: a data offset follows.
const TRUN_DATA_OFFSET: u32 = 0x1;
/// `trun` flag: flags of the first sample follow.
const TRUN_FIRST_SAMPLE_FLAGS: u32 = 0x4;
/// `trun` flag: each sample has a duration.
const TRUN_SAMPLE_DURATION: u32 = 0x100;
/// `trun` flag: each sample has a size.
const TRUN_SAMPLE_SIZE: u32 = 0x200;
/// `trun` flag: each sample has flags.
const TRUN_SAMPLE_FLAGS: u32 = 0x400;
/// `trun` flag: each sample has a composition time offset.
const TRUN_COMPOSITION_OFFSET: u32 = 0x800;
/// Sample flags: `sample_is_non_sync_sample`.
const SAMPLE_IS_NON_SYNC: u32 = 0x1_0000;
/// Sample flags: `sample_depends_on` field (bits 24-25).
const SAMPLE_DEPENDS_ON_SHIFT: u32 = 24;
/// `sample_depends_on` value: the sample depends on others (not an I-frame).
const SAMPLE_DEPENDS_ON_OTHERS: u32 = 1;

/// Per-track defaults from the `moov`'s `mvex/trex`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TrackDefaults {
    /// Track the fragments must belong to.
    pub track_id: u32,
    /// Default sample description index.
    pub description_index: u32,
    /// Default sample duration.
    pub duration: u32,
    /// Default sample size.
    pub size: u32,
    /// Default sample flags.
    pub flags: u32,
}

impl TrackDefaults {
    /// Parses a `trex` payload.
    pub fn parse_trex(body: &[u8]) -> Result<Self, Fmp4Error> {
        let mut cursor = Cursor::new(body, "trex");
        cursor.version_flags()?;
        Ok(Self {
            track_id: cursor.u32()?,
            description_index: cursor.u32()?,
            duration: cursor.u32()?,
            size: cursor.u32()?,
            flags: cursor.u32()?,
        })
    }
}

/// A parsed `tfhd`.
#[derive(Debug, Clone, Copy)]
struct Tfhd {
    flags: u32,
    track_id: u32,
    base_data_offset: Option<u64>,
    description_index: Option<u32>,
    duration: Option<u32>,
    size: Option<u32>,
    sample_flags: Option<u32>,
}

impl Tfhd {
    /// Parses a `tfhd` payload.
    fn parse(body: &[u8]) -> Result<Self, Fmp4Error> {
        let mut cursor = Cursor::new(body, "tfhd");
        let (_, flags) = cursor.version_flags()?;
        let track_id = cursor.u32()?;
        let base_data_offset = if flags & TFHD_BASE_DATA_OFFSET != 0 { Some(cursor.u64()?) } else { None };
        let mut optional = |flag: u32| if flags & flag != 0 { cursor.u32().map(Some) } else { Ok(None) };
        Ok(Self {
            flags,
            track_id,
            base_data_offset,
            description_index: optional(TFHD_DESCRIPTION_INDEX)?,
            duration: optional(TFHD_DEFAULT_DURATION)?,
            size: optional(TFHD_DEFAULT_SIZE)?,
            sample_flags: optional(TFHD_DEFAULT_FLAGS)?,
        })
    }
}

/// A parsed `trun` header; the per-sample records follow in `records`.
struct TrunHeader<'a> {
    version: u8,
    flags: u32,
    count: u32,
    data_offset: Option<i32>,
    first_sample_flags: Option<u32>,
    records: Cursor<'a>,
}

impl<'a> TrunHeader<'a> {
    /// Parses a `trun` payload, checking that its records are all there.
    fn parse(body: &'a [u8]) -> Result<Self, Fmp4Error> {
        let mut cursor = Cursor::new(body, "trun");
        let (version, flags) = cursor.version_flags()?;
        let count = cursor.u32()?;
        let data_offset = if flags & TRUN_DATA_OFFSET != 0 { Some(cursor.i32()?) } else { None };
        let first_sample_flags = if flags & TRUN_FIRST_SAMPLE_FLAGS != 0 { Some(cursor.u32()?) } else { None };
        let per_sample = [TRUN_SAMPLE_DURATION, TRUN_SAMPLE_SIZE, TRUN_SAMPLE_FLAGS, TRUN_COMPOSITION_OFFSET]
            .iter()
            .filter(|&&flag| flags & flag != 0)
            .count()
            .saturating_mul(4);
        // Checked before anything is allocated: a corrupt count cannot claim more samples than
        // the box has bytes for.
        let needed = usize::try_from(count).ok().and_then(|count| count.checked_mul(per_sample));
        if needed.is_none_or(|needed| needed > cursor.remaining()) {
            return Err(Fmp4Error::Malformed(format!("trun announces {count} samples but is too short")));
        }
        Ok(Self { version, flags, count, data_offset, first_sample_flags, records: cursor })
    }

    /// Reads a per-sample field when `flag` says it is present.
    fn field(&mut self, flag: u32) -> Result<Option<u32>, Fmp4Error> {
        if self.flags & flag != 0 { self.records.u32().map(Some) } else { Ok(None) }
    }
}

/// The samples of all fragments, in decode order, with their decode times.
#[derive(Debug, Clone)]
pub(crate) struct Timeline {
    defaults: TrackDefaults,
    samples: Vec<Sample>,
    /// Decode time of the first sample.
    start: Option<u64>,
    /// Decode time just after the last sample.
    next_decode_time: u64,
    fragments: u64,
}

impl Timeline {
    /// An empty timeline for the track that `defaults` (its `trex`) describes.
    pub fn new(defaults: TrackDefaults) -> Self {
        Self { defaults, samples: Vec::new(), start: None, next_decode_time: 0, fragments: 0 }
    }

    /// An empty timeline whose next sample decodes at `decode_time`: where the previous fragment
    /// ended, for a fragment read on its own (its `tfdt`, when it has one, wins).
    pub fn continuing(defaults: TrackDefaults, decode_time: u64) -> Self {
        Self { next_decode_time: decode_time, ..Self::new(defaults) }
    }

    /// Decode time just after the last sample, in media timescale units.
    pub fn end(&self) -> u64 {
        self.next_decode_time
    }

    /// The samples so far, in decode order.
    pub fn samples(&self) -> &[Sample] {
        &self.samples
    }

    /// Decode time of the first sample (the first `tfdt`), in media timescale units.
    pub fn start(&self) -> u64 {
        self.start.unwrap_or(0)
    }

    /// Sum of the sample durations, in media timescale units.
    pub fn media_duration(&self) -> u64 {
        self.next_decode_time.saturating_sub(self.start())
    }

    /// `moof` boxes added.
    pub fn fragments(&self) -> u64 {
        self.fragments
    }

    /// Adds the samples of one `moof` (`body` is its payload, `moof_offset` its file offset).
    pub fn add_moof(&mut self, body: &[u8], moof_offset: u64) -> Result<(), Fmp4Error> {
        let mut previous_data_end = None;
        for child in children(body) {
            let child = child?;
            if &child.kind == b"traf" {
                previous_data_end = Some(self.add_traf(child.body, moof_offset, previous_data_end)?);
            }
        }
        self.fragments = self.fragments.saturating_add(1);
        Ok(())
    }

    /// Adds the samples of one `traf`; returns the end of its data.
    fn add_traf(&mut self, body: &[u8], moof_offset: u64, previous_data_end: Option<u64>) -> Result<u64, Fmp4Error> {
        let tfhd = Tfhd::parse(require_child(body, b"tfhd", "traf")?.body)?;
        if tfhd.track_id != self.defaults.track_id {
            return Err(Fmp4Error::Unsupported(format!(
                "fragment of track {} but the moov declares track {}",
                tfhd.track_id, self.defaults.track_id
            )));
        }
        if tfhd.flags & TFHD_DURATION_IS_EMPTY != 0 {
            return Err(Fmp4Error::Unsupported("empty-duration fragment".to_owned()));
        }
        // ISO 14496-12 8.8.7: without an explicit offset, the base is the moof for the first
        // traf (and always with default-base-is-moof), else where the previous traf's data ended.
        let base = match (tfhd.base_data_offset, previous_data_end) {
            (Some(offset), _) => offset,
            (None, Some(end)) if tfhd.flags & TFHD_DEFAULT_BASE_IS_MOOF == 0 => end,
            (None, _) => moof_offset,
        };
        for child in children(body) {
            let child = child?;
            if &child.kind == b"tfdt" {
                let mut cursor = Cursor::new(child.body, "tfdt");
                let (version, _) = cursor.version_flags()?;
                self.set_decode_time(cursor.u32_or_u64(version)?)?;
            }
        }
        let mut data_end = base;
        for child in children(body) {
            let child = child?;
            if &child.kind == b"trun" {
                data_end = self.add_trun(TrunHeader::parse(child.body)?, &tfhd, base, data_end)?;
            }
        }
        Ok(data_end)
    }

    /// Aligns the timeline on a fragment's `tfdt`. FFmpeg takes a fragment's decode times from
    /// its `tfdt`, so when it differs from the end of the previous fragment, the previous sample's
    /// duration absorbs the difference and every sample keeps its decode time.
    fn set_decode_time(&mut self, decode_time: u64) -> Result<(), Fmp4Error> {
        let gap = i128::from(decode_time) - i128::from(self.next_decode_time);
        match self.samples.last_mut() {
            None => self.start = Some(decode_time),
            Some(last) if gap != 0 => {
                last.duration =
                    u32::try_from(i128::from(last.duration) + gap).ok().filter(|&duration| duration > 0).ok_or_else(
                        || Fmp4Error::Unsupported(format!("fragment decode time {decode_time} is out of order")),
                    )?;
            }
            Some(_) => {}
        }
        self.next_decode_time = decode_time;
        Ok(())
    }

    /// Adds the samples of one `trun`; `data_end` is where the previous run's data ended (or the
    /// base for the first run). Returns the end of this run's data.
    fn add_trun(&mut self, mut trun: TrunHeader<'_>, tfhd: &Tfhd, base: u64, data_end: u64) -> Result<u64, Fmp4Error> {
        let mut offset = match trun.data_offset {
            Some(relative) => base.checked_add_signed(i64::from(relative)),
            None => Some(data_end),
        }
        .ok_or_else(|| Fmp4Error::Malformed("trun data offset out of range".to_owned()))?;
        if self.start.is_none() {
            self.start = Some(self.next_decode_time);
        }
        let defaults = self.defaults;
        self.samples.reserve(usize::try_from(trun.count).unwrap_or(0));
        for index in 0..trun.count {
            let duration = trun.field(TRUN_SAMPLE_DURATION)?.or(tfhd.duration).unwrap_or(defaults.duration);
            let size = trun.field(TRUN_SAMPLE_SIZE)?.or(tfhd.size).unwrap_or(defaults.size);
            let mut flags = trun.field(TRUN_SAMPLE_FLAGS)?.or(tfhd.sample_flags).unwrap_or(defaults.flags);
            if index == 0 {
                flags = trun.first_sample_flags.unwrap_or(flags);
            }
            let composition_offset = match trun.field(TRUN_COMPOSITION_OFFSET)? {
                // Version 0 offsets are unsigned, version 1 signed.
                Some(raw) if trun.version == 0 => i64::from(raw),
                Some(raw) => i64::from(raw.cast_signed()),
                None => 0,
            };
            self.samples.push(Sample {
                offset,
                size,
                duration,
                sync: is_sync(flags),
                composition_offset,
                description_index: tfhd.description_index.unwrap_or(defaults.description_index),
            });
            offset = offset
                .checked_add(u64::from(size))
                .ok_or_else(|| Fmp4Error::Malformed("sample offset out of range".to_owned()))?;
            self.next_decode_time = self
                .next_decode_time
                .checked_add(u64::from(duration))
                .ok_or_else(|| Fmp4Error::Malformed("decode time out of range".to_owned()))?;
        }
        Ok(offset)
    }
}

/// Whether sample `flags` mark a sync sample: not `sample_is_non_sync_sample`, and not
/// depending on other samples (what FFmpeg's demuxer checks too).
fn is_sync(flags: u32) -> bool {
    flags & SAMPLE_IS_NON_SYNC == 0 && (flags >> SAMPLE_DEPENDS_ON_SHIFT) & 0x3 != SAMPLE_DEPENDS_ON_OTHERS
}

/// One coded frame, as the fragments describe it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Sample {
    /// Absolute file offset of its data.
    pub offset: u64,
    /// Data size in bytes.
    pub size: u32,
    /// Decode duration in media timescale units.
    pub duration: u32,
    /// Whether it is a sync sample (a keyframe one can start decoding at).
    pub sync: bool,
    /// Composition (presentation) time minus decode time.
    pub composition_offset: i64,
    /// 1-based index into `stsd`.
    pub description_index: u32,
}

/// `stsz` content: one size for all samples, or one per sample.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SampleSizes {
    /// Every sample has this size.
    Constant { size: u32, count: u32 },
    /// Per-sample sizes.
    Table(Vec<u32>),
}

/// `stsc` entry: from `first_chunk` (1-based) on, chunks hold `samples_per_chunk` samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ChunkRun {
    pub first_chunk: u32,
    pub samples_per_chunk: u32,
    pub description_index: u32,
}

/// Every table of an `stbl` except `stsd`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SampleTables {
    /// `stts` run-length entries: (sample count, duration).
    pub time_to_sample: Vec<(u32, u32)>,
    /// `stss` 1-based sync sample numbers; `None` when every sample is a sync sample.
    pub sync_samples: Option<Vec<u32>>,
    /// `ctts` run-length entries (sample count, offset); `None` when every offset is 0.
    pub composition_offsets: Option<Vec<(u32, i64)>>,
    /// `stsc` entries.
    pub sample_to_chunk: Vec<ChunkRun>,
    /// `stsz`.
    pub sizes: SampleSizes,
    /// Chunk offsets (`stco`, or `co64` when one exceeds `u32::MAX`).
    pub chunk_offsets: Vec<u64>,
}

impl SampleTables {
    /// Builds the tables of `samples`, in decode order.
    pub fn build(samples: &[Sample]) -> Result<Self, Fmp4Error> {
        let count = u32::try_from(samples.len())
            .map_err(|_| Fmp4Error::Unsupported(format!("{} samples do not fit an MP4 track", samples.len())))?;
        let (sample_to_chunk, chunk_offsets) = chunks(samples)?;
        Ok(Self {
            time_to_sample: run_length(samples.iter().map(|s| s.duration)),
            sync_samples: sync_samples(samples),
            composition_offsets: composition_offsets(samples),
            sample_to_chunk,
            sizes: sample_sizes(samples, count),
            chunk_offsets,
        })
    }

    /// Appends the `stts`, `stss`, `ctts`, `stsc`, `stsz` and `stco`/`co64` boxes.
    pub fn write(&self, out: &mut Vec<u8>) -> Result<(), Fmp4Error> {
        write_entries(out, *b"stts", 0, &self.time_to_sample, |out, &(count, duration)| {
            put_u32(out, count);
            put_u32(out, duration);
        })?;
        if let Some(sync) = &self.sync_samples {
            write_entries(out, *b"stss", 0, sync, |out, &number| put_u32(out, number))?;
        }
        if let Some(offsets) = &self.composition_offsets {
            write_ctts(out, offsets)?;
        }
        write_entries(out, *b"stsc", 0, &self.sample_to_chunk, |out, run| {
            put_u32(out, run.first_chunk);
            put_u32(out, run.samples_per_chunk);
            put_u32(out, run.description_index);
        })?;
        self.write_stsz(out)?;
        self.write_chunk_offsets(out)
    }

    /// Appends `stsz`.
    fn write_stsz(&self, out: &mut Vec<u8>) -> Result<(), Fmp4Error> {
        write_full_box(out, *b"stsz", 0, 0, |out| {
            match &self.sizes {
                SampleSizes::Constant { size, count } => {
                    put_u32(out, *size);
                    put_u32(out, *count);
                }
                SampleSizes::Table(sizes) => {
                    put_u32(out, 0);
                    put_u32(out, len_u32(sizes.len())?);
                    sizes.iter().for_each(|&size| put_u32(out, size));
                }
            }
            Ok(())
        })
    }

    /// Appends `stco`, or `co64` when an offset does not fit 32 bits.
    fn write_chunk_offsets(&self, out: &mut Vec<u8>) -> Result<(), Fmp4Error> {
        if self.chunk_offsets.iter().all(|&offset| u32::try_from(offset).is_ok()) {
            write_entries(out, *b"stco", 0, &self.chunk_offsets, |out, &offset| {
                put_u32(out, u32::try_from(offset).unwrap_or(u32::MAX));
            })
        } else {
            write_entries(out, *b"co64", 0, &self.chunk_offsets, |out, &offset| put_u64(out, offset))
        }
    }
}

/// A table length as the u32 entry count of its box.
fn len_u32(len: usize) -> Result<u32, Fmp4Error> {
    u32::try_from(len).map_err(|_| Fmp4Error::Unsupported("sample table too long".to_owned()))
}

/// Appends a full box holding an entry count then `entries`, each written by `put`.
fn write_entries<T>(
    out: &mut Vec<u8>,
    kind: [u8; 4],
    version: u8,
    entries: &[T],
    put: impl Fn(&mut Vec<u8>, &T),
) -> Result<(), Fmp4Error> {
    write_full_box(out, kind, version, 0, |out| {
        put_u32(out, len_u32(entries.len())?);
        entries.iter().for_each(|entry| put(out, entry));
        Ok(())
    })
}

/// Appends `ctts`: version 0 (unsigned offsets) unless an offset is negative.
fn write_ctts(out: &mut Vec<u8>, offsets: &[(u32, i64)]) -> Result<(), Fmp4Error> {
    let signed = offsets.iter().any(|&(_, offset)| offset < 0);
    let mut words = Vec::with_capacity(offsets.len());
    for &(count, offset) in offsets {
        let word = if signed { i32::try_from(offset).map(i32::cast_unsigned).ok() } else { u32::try_from(offset).ok() };
        let word = word.ok_or_else(|| Fmp4Error::Unsupported(format!("composition offset {offset} out of range")))?;
        words.push((count, word));
    }
    write_entries(out, *b"ctts", u8::from(signed), &words, |out, &(count, word)| {
        put_u32(out, count);
        put_u32(out, word);
    })
}

/// Run-length encodes `values` as (count, value) pairs.
fn run_length<T: PartialEq + Copy>(values: impl IntoIterator<Item = T>) -> Vec<(u32, T)> {
    let mut runs: Vec<(u32, T)> = Vec::new();
    for value in values {
        match runs.last_mut() {
            Some((count, last)) if *last == value && *count < u32::MAX => *count += 1,
            _ => runs.push((1, value)),
        }
    }
    runs
}

/// 1-based numbers of the sync samples, or `None` when all are sync (no `stss` means that).
fn sync_samples(samples: &[Sample]) -> Option<Vec<u32>> {
    if samples.iter().all(|s| s.sync) {
        return None;
    }
    // Numbers fit: build() checked that the sample count fits a u32.
    let numbers = (1..=u32::MAX).zip(samples).filter(|(_, s)| s.sync).map(|(number, _)| number);
    Some(numbers.collect())
}

/// `ctts` runs, or `None` when no sample has a composition offset.
fn composition_offsets(samples: &[Sample]) -> Option<Vec<(u32, i64)>> {
    if samples.iter().all(|s| s.composition_offset == 0) {
        return None;
    }
    Some(run_length(samples.iter().map(|s| s.composition_offset)))
}

/// `stsz` content.
fn sample_sizes(samples: &[Sample], count: u32) -> SampleSizes {
    match samples.first() {
        Some(first) if samples.iter().all(|s| s.size == first.size) => {
            SampleSizes::Constant { size: first.size, count }
        }
        _ => SampleSizes::Table(samples.iter().map(|s| s.size).collect()),
    }
}

/// Groups samples into chunks (runs of samples stored back to back with the same sample
/// description), returning the `stsc` entries and the chunk offsets.
fn chunks(samples: &[Sample]) -> Result<(Vec<ChunkRun>, Vec<u64>), Fmp4Error> {
    // (offset, sample count, description index) of each chunk.
    let mut chunks: Vec<(u64, u32, u32)> = Vec::new();
    let mut next_offset = None;
    for sample in samples {
        let continues = matches!(chunks.last(), Some(&(_, count, index))
            if next_offset == Some(sample.offset) && index == sample.description_index && count < u32::MAX);
        match chunks.last_mut() {
            Some((_, count, _)) if continues => *count += 1,
            _ => chunks.push((sample.offset, 1, sample.description_index)),
        }
        next_offset = sample.offset.checked_add(u64::from(sample.size));
    }
    let mut runs: Vec<ChunkRun> = Vec::new();
    for (number, &(_, count, index)) in (1..=u32::MAX).zip(&chunks) {
        let same = runs.last().is_some_and(|r| r.samples_per_chunk == count && r.description_index == index);
        if !same {
            runs.push(ChunkRun { first_chunk: number, samples_per_chunk: count, description_index: index });
        }
    }
    len_u32(chunks.len())?;
    Ok((runs, chunks.into_iter().map(|(offset, _, _)| offset).collect()))
}

/// Appends an `stbl` made of the original `stsd` box (verbatim) and the tables of `samples`.
pub(crate) fn write_stbl(out: &mut Vec<u8>, stsd: &[u8], tables: &SampleTables) -> Result<(), Fmp4Error> {
    write_box(out, *b"stbl", |out| {
        out.extend_from_slice(stsd);
        tables.write(out)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fmp4::boxes::children;

    fn sample(offset: u64, size: u32, duration: u32, sync: bool) -> Sample {
        Sample { offset, size, duration, sync, composition_offset: 0, description_index: 1 }
    }

    /// Samples back to back from `start`, with the given durations.
    fn contiguous(start: u64, durations: &[u32]) -> Vec<Sample> {
        let mut offset = start;
        durations
            .iter()
            .enumerate()
            .map(|(i, &d)| {
                let s = sample(offset, 10 + i as u32, d, i == 0);
                offset += u64::from(s.size);
                s
            })
            .collect()
    }

    fn box_kinds(bytes: &[u8]) -> Vec<[u8; 4]> {
        children(bytes).map(|c| c.unwrap().kind).collect()
    }

    #[test]
    fn stts_is_run_length_encoded() {
        let samples = contiguous(100, &[512, 512, 512, 8192, 512, 512]);
        let tables = SampleTables::build(&samples).unwrap();
        assert_eq!(tables.time_to_sample, [(3, 512), (1, 8192), (2, 512)]);
        assert_eq!(run_length::<u8>([]), []);
    }

    #[test]
    fn stss_lists_sync_samples_or_is_omitted() {
        let mut samples = contiguous(0, &[1; 7]);
        samples[4].sync = true;
        assert_eq!(SampleTables::build(&samples).unwrap().sync_samples, Some(vec![1, 5]));
        samples.iter_mut().for_each(|s| s.sync = true);
        let tables = SampleTables::build(&samples).unwrap();
        assert_eq!(tables.sync_samples, None);
        let mut out = Vec::new();
        tables.write(&mut out).unwrap();
        assert_eq!(box_kinds(&out), [*b"stts", *b"stsc", *b"stsz", *b"stco"]);
    }

    #[test]
    fn ctts_only_with_offsets_and_signed_when_negative() {
        let mut samples = contiguous(0, &[1; 4]);
        samples[1].composition_offset = 2;
        samples[2].composition_offset = 2;
        let tables = SampleTables::build(&samples).unwrap();
        assert_eq!(tables.composition_offsets, Some(vec![(1, 0), (2, 2), (1, 0)]));
        let mut out = Vec::new();
        tables.write(&mut out).unwrap();
        let ctts = children(&out).map(|c| c.unwrap()).find(|c| &c.kind == b"ctts").unwrap();
        assert_eq!(ctts.body[0], 0, "version 0 without negative offsets");
        samples[3].composition_offset = -1;
        let mut out = Vec::new();
        SampleTables::build(&samples).unwrap().write(&mut out).unwrap();
        let ctts = children(&out).map(|c| c.unwrap()).find(|c| &c.kind == b"ctts").unwrap();
        assert_eq!(ctts.body[0], 1);
        assert_eq!(&ctts.body[ctts.body.len() - 4..], (-1i32).to_be_bytes());
    }

    #[test]
    fn chunks_follow_contiguous_runs() {
        let mut samples = contiguous(1000, &[1; 3]);
        samples.extend(contiguous(5000, &[1; 3]));
        samples.extend(contiguous(9000, &[1; 2]));
        let tables = SampleTables::build(&samples).unwrap();
        assert_eq!(tables.chunk_offsets, [1000, 5000, 9000]);
        assert_eq!(
            tables.sample_to_chunk,
            [
                ChunkRun { first_chunk: 1, samples_per_chunk: 3, description_index: 1 },
                ChunkRun { first_chunk: 3, samples_per_chunk: 2, description_index: 1 },
            ]
        );
        assert!(matches!(tables.sizes, SampleSizes::Table(ref sizes) if sizes.len() == 8));
        let same: Vec<Sample> = (0..4).map(|i| sample(i * 7, 7, 1, true)).collect();
        let tables = SampleTables::build(&same).unwrap();
        assert_eq!(tables.sizes, SampleSizes::Constant { size: 7, count: 4 });
        assert_eq!(tables.chunk_offsets, [0]);
    }

    #[test]
    fn chunk_offsets_switch_to_co64_past_4_gib() {
        let low = contiguous(u64::from(u32::MAX) - 100, &[1; 2]);
        let mut out = Vec::new();
        SampleTables::build(&low).unwrap().write(&mut out).unwrap();
        assert!(box_kinds(&out).contains(b"stco"));
        let mut high = low.clone();
        high.extend(contiguous(u64::from(u32::MAX) + 1, &[1; 2]));
        let mut out = Vec::new();
        SampleTables::build(&high).unwrap().write(&mut out).unwrap();
        let co64 = children(&out).map(|c| c.unwrap()).find(|c| &c.kind == b"co64").unwrap();
        assert_eq!(co64.body.len(), 4 + 4 + 2 * 8);
        assert_eq!(&co64.body[16..], (u64::from(u32::MAX) + 1).to_be_bytes());
    }
}
