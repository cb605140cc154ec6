//! The `stbl` tables (`stts`, `stss`, `ctts`, `stsc`, `stsz`, `stco`/`co64`) that index the
//! samples of a fragmented file's [`Timeline`](super::fragments::Timeline) in a regular `moov`
//! ([`SampleTables`]).

use super::{
    Fmp4Error,
    boxes::{put_u32, put_u64, write_box, write_full_box},
    fragments::Sample,
};

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
