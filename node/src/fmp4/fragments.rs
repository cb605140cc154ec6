//! From fragments to samples: what every `moof`/`traf`/`trun` says about the samples it
//! describes ([`Timeline`]): their file offsets, sizes, decode times and flags.

use super::{
    Fmp4Error,
    boxes::{Cursor, children, require_child},
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
