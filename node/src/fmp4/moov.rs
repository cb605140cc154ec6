//! The `moov` of a fragmented MP4 as plain data: the header boxes of its one video track
//! ([`InitialMoov`]), where its durations are stored ([`DurationFields`]) and how long the NAL
//! length prefixes of its samples are ([`nal_length_size`]). [`super::moov_writer`] turns such a
//! description and the fragments' samples into the complete `moov` of a regular MP4.
//!
//! Parsing borrows from the box bytes: fields the writer copies verbatim stay slices.

use super::{
    Fmp4Error,
    boxes::{Child, Cursor, FourCc, children, find_child, kind_name},
    fragments::TrackDefaults,
};

/// An `mvhd` or `mdhd`: times, timescale, duration, then fields copied verbatim.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TimedHeader<'a> {
    /// Full-box flags.
    pub flags: u32,
    /// Creation time (seconds since 1904).
    pub creation: u64,
    /// Modification time (seconds since 1904).
    pub modification: u64,
    /// Time units per second.
    pub timescale: u32,
    /// Duration in `timescale` units.
    pub duration: u64,
    /// Everything after the duration (rate, volume, matrix, next track id; or the language).
    pub tail: &'a [u8],
}

impl<'a> TimedHeader<'a> {
    /// Parses an `mvhd`/`mdhd` payload (version 0 or 1).
    pub fn parse(body: &'a [u8], what: &'static str) -> Result<Self, Fmp4Error> {
        let mut cursor = Cursor::new(body, what);
        let (version, flags) = cursor.version_flags()?;
        let creation = cursor.u32_or_u64(version)?;
        let modification = cursor.u32_or_u64(version)?;
        let timescale = cursor.u32()?;
        let duration = cursor.u32_or_u64(version)?;
        if timescale == 0 {
            return Err(Fmp4Error::Malformed(format!("{what} timescale is 0")));
        }
        Ok(Self { flags, creation, modification, timescale, duration, tail: cursor.rest() })
    }
}

/// A `tkhd`: times, track id, then fields copied verbatim (layer, volume, matrix,
/// width and height). Its duration is not kept: the writer computes it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tkhd<'a> {
    /// Full-box flags (enabled, in movie...).
    pub flags: u32,
    /// Creation time (seconds since 1904).
    pub creation: u64,
    /// Modification time (seconds since 1904).
    pub modification: u64,
    /// Track id (never 0).
    pub track_id: u32,
    /// Everything after the duration.
    pub tail: &'a [u8],
}

impl<'a> Tkhd<'a> {
    /// Parses a `tkhd` payload (version 0 or 1).
    pub fn parse(body: &'a [u8]) -> Result<Self, Fmp4Error> {
        let mut cursor = Cursor::new(body, "tkhd");
        let (version, flags) = cursor.version_flags()?;
        let creation = cursor.u32_or_u64(version)?;
        let modification = cursor.u32_or_u64(version)?;
        let track_id = cursor.u32()?;
        cursor.u32()?; // reserved
        cursor.u32_or_u64(version)?; // duration: rewritten anyway
        let tail = cursor.rest();
        // reserved(8) layer(2) group(2) volume(2) reserved(2) matrix(36) width(4) height(4)
        if tail.len() < 60 || track_id == 0 {
            return Err(Fmp4Error::Malformed("tkhd is truncated or has track id 0".to_owned()));
        }
        Ok(Self { flags, creation, modification, track_id, tail })
    }
}

/// The boxes of the one video track of the initial `moov`.
#[derive(Debug, Clone)]
pub(crate) struct Track<'a> {
    /// Children of the `trak`, in order.
    pub trak: Vec<Child<'a>>,
    /// Its `tkhd`.
    pub tkhd: Tkhd<'a>,
    /// Children of the `mdia`, in order.
    pub mdia: Vec<Child<'a>>,
    /// Its `mdhd`.
    pub mdhd: TimedHeader<'a>,
    /// Children of the `minf`, in order.
    pub minf: Vec<Child<'a>>,
    /// The whole `stsd` box (codec configuration: avcC/hvcC), copied verbatim.
    pub stsd: &'a [u8],
}

impl<'a> Track<'a> {
    /// Parses a `trak` payload, checking it is a video track whose `moov` indexes no sample.
    fn parse(body: &'a [u8]) -> Result<Self, Fmp4Error> {
        let trak = all_children(body)?;
        if find_child(body, b"edts")?.is_some() {
            return Err(Fmp4Error::Unsupported("the track has an edit list".to_owned()));
        }
        let tkhd = Tkhd::parse(require(body, b"tkhd", "trak")?.body)?;
        let mdia_body = require(body, b"mdia", "trak")?.body;
        let mdhd = TimedHeader::parse(require(mdia_body, b"mdhd", "mdia")?.body, "mdhd")?;
        let mut hdlr = Cursor::new(require(mdia_body, b"hdlr", "mdia")?.body, "hdlr");
        hdlr.version_flags()?;
        hdlr.u32()?; // pre_defined
        if &hdlr.fourcc()? != b"vide" {
            return Err(Fmp4Error::Unsupported("not a video track".to_owned()));
        }
        let minf_body = require(mdia_body, b"minf", "mdia")?.body;
        require(minf_body, b"vmhd", "minf")?;
        let stbl_body = require(minf_body, b"stbl", "minf")?.body;
        let stsd = require(stbl_body, b"stsd", "stbl")?.whole;
        if indexed_samples(stbl_body)? != 0 {
            return Err(Fmp4Error::Unsupported("the initial moov already indexes samples".to_owned()));
        }
        Ok(Self { trak, tkhd, mdia: all_children(mdia_body)?, mdhd, minf: all_children(minf_body)?, stsd })
    }
}

/// The initial `moov` of a fragmented file.
#[derive(Debug, Clone)]
pub(crate) struct InitialMoov<'a> {
    /// Children of the `moov`, in order.
    pub children: Vec<Child<'a>>,
    /// Its `mvhd`.
    pub mvhd: TimedHeader<'a>,
    /// Its one video track.
    pub track: Track<'a>,
    /// The track's `trex`; `None` without `mvex` (not fragmented).
    pub defaults: Option<TrackDefaults>,
}

impl<'a> InitialMoov<'a> {
    /// Parses a `moov` payload with exactly one (video) track.
    pub fn parse(body: &'a [u8]) -> Result<Self, Fmp4Error> {
        let children = all_children(body)?;
        let mvhd = TimedHeader::parse(require(body, b"mvhd", "moov")?.body, "mvhd")?;
        let tracks = children.iter().filter(|c| &c.kind == b"trak").count();
        if tracks != 1 {
            return Err(Fmp4Error::Unsupported(format!("{tracks} tracks (only one video track is supported)")));
        }
        let track = Track::parse(require(body, b"trak", "moov")?.body)?;
        let defaults = match find_child(body, b"mvex")? {
            None => None,
            Some(mvex) => Some(track_defaults(mvex.body, track.tkhd.track_id)?),
        };
        Ok(Self { children, mvhd, track, defaults })
    }

    /// The track's `trex`, which a fragmented file must have.
    pub fn fragment_defaults(&self) -> Result<TrackDefaults, Fmp4Error> {
        self.defaults.ok_or_else(|| Fmp4Error::NotFragmented("the moov has no mvex/trex".to_owned()))
    }
}

/// The `trex` of `track_id` in an `mvex` payload.
fn track_defaults(mvex: &[u8], track_id: u32) -> Result<TrackDefaults, Fmp4Error> {
    for child in children(mvex) {
        let child = child?;
        if &child.kind == b"trex" {
            let defaults = TrackDefaults::parse_trex(child.body)?;
            if defaults.track_id == track_id {
                return Ok(defaults);
            }
        }
    }
    Err(Fmp4Error::Malformed(format!("mvex has no trex for track {track_id}")))
}

/// Samples an `stbl` indexes (its `stsz`/`stz2` count; 0 without one).
fn indexed_samples(stbl: &[u8]) -> Result<u32, Fmp4Error> {
    for kind in [b"stsz", b"stz2"] {
        if let Some(child) = find_child(stbl, kind)? {
            let mut cursor = Cursor::new(child.body, "stsz");
            cursor.version_flags()?;
            cursor.u32()?; // sample size, or reserved + field size
            return cursor.u32();
        }
    }
    Ok(0)
}

/// Sample count and duration in seconds of a complete `moov` (the one a finalization appended).
pub(crate) fn summarize_final_moov(body: &[u8]) -> Result<(u64, f64), Fmp4Error> {
    let trak = require(body, b"trak", "moov")?;
    let mdia = require(trak.body, b"mdia", "trak")?;
    let mdhd = TimedHeader::parse(require(mdia.body, b"mdhd", "mdia")?.body, "mdhd")?;
    let stbl = require(require(mdia.body, b"minf", "mdia")?.body, b"stbl", "minf")?;
    let samples = indexed_samples(stbl.body)?;
    if samples == 0 {
        return Err(Fmp4Error::Unsupported("the moov after the fragments indexes no sample".to_owned()));
    }
    Ok((u64::from(samples), seconds(mdhd.duration, mdhd.timescale)))
}

/// One duration field of a header box, located in the `moov` payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DurationField {
    /// Offset of the field in the `moov` payload.
    pub offset: usize,
    /// 64 bits wide (a version 1 box) rather than 32.
    pub wide: bool,
}

impl DurationField {
    /// The field of the full box `child`, `after_times` bytes after its creation and
    /// modification times (4 for `mvhd`/`mdhd`: the timescale; 8 for `tkhd`: track id and a
    /// reserved word). `base` is the offset of `child`'s parent payload in the `moov` payload.
    fn locate(base: usize, child: &Child<'_>, after_times: usize) -> Result<Self, Fmp4Error> {
        let version = *child.body.first().ok_or_else(|| Fmp4Error::Malformed("empty header box".to_owned()))?;
        let wide = version == 1;
        let time = if wide { 8 } else { 4 };
        let within = 4 + 2 * time + after_times;
        if child.body.len() < within + time {
            return Err(Fmp4Error::Malformed(format!("{} is truncated", kind_name(child.kind))));
        }
        Ok(Self { offset: base + child.body_offset() + within, wide })
    }

    /// Bytes the field takes.
    pub fn len(self) -> usize {
        if self.wide { 8 } else { 4 }
    }

    /// The field's bytes for `value`; `None` when a 32-bit field cannot hold it.
    pub fn encode(self, value: u64) -> Option<Vec<u8>> {
        if self.wide {
            Some(value.to_be_bytes().to_vec())
        } else {
            u32::try_from(value).ok().map(|v| v.to_be_bytes().to_vec())
        }
    }
}

/// Where the movie, track and media durations of a one-track `moov` are, and their timescales:
/// what a player reads first for a file's length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DurationFields {
    /// `mvhd` duration (movie timescale): GStreamer's length.
    pub mvhd: DurationField,
    /// `tkhd` duration (movie timescale).
    pub tkhd: DurationField,
    /// `mdhd` duration (media timescale): FFmpeg's (hence Chromium's) stream length.
    pub mdhd: DurationField,
    /// `mvhd` timescale.
    pub movie_timescale: u32,
    /// `mdhd` timescale: the one of the fragments' decode times.
    pub media_timescale: u32,
}

impl DurationFields {
    /// Locates the durations in a `moov` payload (parsed by [`InitialMoov::parse`] first).
    pub fn locate(moov_body: &[u8], moov: &InitialMoov<'_>) -> Result<Self, Fmp4Error> {
        let mvhd = require(moov_body, b"mvhd", "moov")?;
        let trak = require(moov_body, b"trak", "moov")?;
        let tkhd = require(trak.body, b"tkhd", "trak")?;
        let mdia = require(trak.body, b"mdia", "trak")?;
        let mdhd = require(mdia.body, b"mdhd", "mdia")?;
        let mdia_base = trak.body_offset() + mdia.body_offset();
        Ok(Self {
            mvhd: DurationField::locate(0, &mvhd, 4)?,
            tkhd: DurationField::locate(trak.body_offset(), &tkhd, 8)?,
            mdhd: DurationField::locate(mdia_base, &mdhd, 4)?,
            movie_timescale: moov.mvhd.timescale,
            media_timescale: moov.track.mdhd.timescale,
        })
    }
}

/// Bytes of the length prefix of each NAL unit in the samples of the track whose whole `stsd`
/// box is `stsd`: `lengthSizeMinusOne + 1` from its `avcC` (H.264) or `hvcC` (H.265). `None`
/// for other codecs or a configuration that does not say.
pub(crate) fn nal_length_size(stsd: &[u8]) -> Option<u8> {
    // Box header, version/flags, entry count; then the first sample entry.
    let entry = children(stsd.get(16..)?).next()?.ok()?;
    // A visual sample entry has 78 bytes of fields before its child boxes.
    let configs = entry.body.get(78..)?;
    let (config, byte) = match &entry.kind {
        b"avc1" | b"avc3" => (find_child(configs, b"avcC").ok()??, 4),
        b"hvc1" | b"hev1" => (find_child(configs, b"hvcC").ok()??, 21),
        _ => return None,
    };
    let size = (config.body.get(byte)? & 0b11) + 1;
    // H.264 and H.265 allow 1, 2 and 4 bytes.
    (size != 3).then_some(size)
}

/// The only child of type `kind`; an error when missing or repeated.
pub(crate) fn require<'a>(body: &'a [u8], kind: &FourCc, parent: &str) -> Result<Child<'a>, Fmp4Error> {
    let mut found = None;
    for child in children(body) {
        let child = child?;
        if &child.kind == kind {
            if found.is_some() {
                return Err(Fmp4Error::Malformed(format!("{parent} has several {} boxes", kind_name(*kind))));
            }
            found = Some(child);
        }
    }
    found.ok_or_else(|| Fmp4Error::Malformed(format!("{parent} has no {} box", kind_name(*kind))))
}

/// All children of a container, or the first error.
fn all_children(body: &[u8]) -> Result<Vec<Child<'_>>, Fmp4Error> {
    children(body).collect()
}

/// `value` time units of `timescale` in seconds.
pub(crate) fn seconds(value: u64, timescale: u32) -> f64 {
    if timescale == 0 { 0.0 } else { value as f64 / f64::from(timescale) }
}

/// `value` converted from timescale `from` to `to`, rounded up (as FFmpeg does for durations,
/// so an edit or a duration never cuts the last sample short).
pub(crate) fn rescale_up(value: u64, from: u32, to: u32) -> Result<u64, Fmp4Error> {
    let from = u128::from(from);
    if from == 0 {
        return Err(Fmp4Error::Malformed("zero timescale".to_owned()));
    }
    let scaled = (u128::from(value) * u128::from(to)).div_ceil(from);
    u64::try_from(scaled).map_err(|_| Fmp4Error::Unsupported("duration out of range".to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fmp4::{
        boxes::tests::boxed,
        test_files::{MEDIA_TIMESCALE, MOVIE_TIMESCALE, avc1_entry, full, initial_moov, initial_moov_with},
    };

    /// The payload of a `moov` built by the test files.
    fn payload(moov: &[u8]) -> &[u8] {
        &moov[8..]
    }

    #[test]
    fn duration_fields_point_at_the_durations() {
        let moov = initial_moov(1, true);
        let body = payload(&moov);
        let parsed = InitialMoov::parse(body).unwrap();
        let fields = DurationFields::locate(body, &parsed).unwrap();
        assert_eq!((fields.movie_timescale, fields.media_timescale), (MOVIE_TIMESCALE, MEDIA_TIMESCALE));
        // Each field follows the timescale (mvhd, mdhd) or the track id and a reserved word (tkhd).
        let word = |at: usize| u32::from_be_bytes(body[at..at + 4].try_into().unwrap());
        assert_eq!(word(fields.mvhd.offset - 4), MOVIE_TIMESCALE);
        assert_eq!(word(fields.mdhd.offset - 4), MEDIA_TIMESCALE);
        assert_eq!(word(fields.tkhd.offset - 8), 1, "track id");
        assert_eq!(&body[fields.mvhd.offset - 20..fields.mvhd.offset - 16], b"mvhd");
        assert!(!fields.mvhd.wide && !fields.tkhd.wide && !fields.mdhd.wide);
    }

    #[test]
    fn version_1_headers_have_wide_durations() {
        let mut mdhd = full(1, 0, &[0; 16]);
        mdhd.extend(MEDIA_TIMESCALE.to_be_bytes());
        mdhd.extend(7u64.to_be_bytes());
        mdhd.extend([0x55, 0xc4, 0, 0]);
        let mdhd = boxed(b"mdhd", &mdhd);
        let child = crate::fmp4::boxes::children(&mdhd).next().unwrap().unwrap();
        let field = DurationField::locate(100, &child, 4).unwrap();
        assert_eq!(field, DurationField { offset: 100 + 8 + 4 + 16 + 4, wide: true });
        assert_eq!(field.encode(u64::MAX), Some(u64::MAX.to_be_bytes().to_vec()));
        let narrow = DurationField { offset: 0, wide: false };
        assert_eq!(narrow.encode(5), Some(vec![0, 0, 0, 5]));
        assert_eq!(narrow.encode(1 << 32), None, "a 32-bit field cannot state it");
        let truncated = boxed(b"mdhd", &full(1, 0, &[0; 20]));
        let child = crate::fmp4::boxes::children(&truncated).next().unwrap().unwrap();
        assert!(DurationField::locate(0, &child, 4).is_err());
    }

    #[test]
    fn nal_length_size_comes_from_avcc_or_hvcc() {
        let stsd = |entry: &[u8]| boxed(b"stsd", &full(0, 0, &[1u32.to_be_bytes().to_vec(), entry.to_vec()].concat()));
        assert_eq!(nal_length_size(&stsd(&avc1_entry())), Some(4));
        let mut hvcc = vec![0; 23];
        hvcc[21] = 0b1111_1001; // lengthSizeMinusOne = 1
        let hvc1 = boxed(b"hvc1", &[vec![0; 78], boxed(b"hvcC", &hvcc)].concat());
        assert_eq!(nal_length_size(&stsd(&hvc1)), Some(2));
        let mp4v = boxed(b"mp4v", &[vec![0; 78], boxed(b"esds", &[0; 20])].concat());
        assert_eq!(nal_length_size(&stsd(&mp4v)), None);
        let three = boxed(b"avc1", &[vec![0; 78], boxed(b"avcC", &[1, 0x64, 0, 0x1f, 0xfe])].concat());
        assert_eq!(nal_length_size(&stsd(&three)), None, "3-byte prefixes do not exist");
        assert_eq!(nal_length_size(&stsd(&boxed(b"avc1", &[0; 40]))), None, "entry too short");
        let parsed_moov = initial_moov_with(1, true, &hvc1);
        let parsed = InitialMoov::parse(payload(&parsed_moov)).unwrap();
        assert_eq!(nal_length_size(parsed.track.stsd), Some(2));
    }
}
