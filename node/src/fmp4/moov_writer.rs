//! The complete `moov` of a regular MP4, written from the description of a fragmented file's
//! initial `moov` ([`InitialMoov`]) and the samples of its fragments ([`Timeline`]). Stateless:
//! what it writes depends on nothing else.

use super::{
    Fmp4Error,
    boxes::{FourCc, put_u32, put_u64, write_box, write_full_box},
    fragments::Timeline,
    moov::{InitialMoov, TimedHeader, Tkhd, Track, rescale_up},
    tables::{SampleTables, write_stbl},
};

/// The complete `moov` indexing `timeline`'s samples: `mvhd` with the total duration, the
/// rebuilt `trak`, no `mvex`, other boxes (`udta`, `meta`: title, creation time) verbatim.
pub(crate) fn complete_moov(moov: &InitialMoov<'_>, timeline: &Timeline) -> Result<Vec<u8>, Fmp4Error> {
    let tables = SampleTables::build(timeline.samples())?;
    let times = Times::new(timeline, moov.mvhd.timescale, moov.track.mdhd.timescale)?;
    let mvhd = TimedHeader { timescale: times.movie_timescale, duration: times.movie_duration()?, ..moov.mvhd };
    let mut out = Vec::new();
    write_box(&mut out, *b"moov", |out| {
        write_timed_header(out, &mvhd, *b"mvhd")?;
        for child in &moov.children {
            match &child.kind {
                b"mvhd" | b"mvex" => {}
                b"trak" => write_trak(out, &moov.track, &times, &tables)?,
                _ => out.extend_from_slice(child.whole),
            }
        }
        Ok(())
    })?;
    Ok(out)
}

/// The durations of the new `moov`.
#[derive(Debug, Clone, Copy)]
struct Times {
    /// Movie timescale (`mvhd`).
    movie_timescale: u32,
    /// Sum of the sample durations (media timescale).
    media: u64,
    /// The same in movie timescale.
    media_in_movie: u64,
    /// Decode time of the first sample in movie timescale (0: no edit list).
    empty_edit: u64,
}

impl Times {
    /// Durations for `timeline`, given the original movie and media timescales.
    fn new(timeline: &Timeline, movie_timescale: u32, media_timescale: u32) -> Result<Self, Fmp4Error> {
        let start = timeline.start();
        // An empty edit must land exactly on the first decode time; when the movie timescale
        // cannot say it exactly, use the media one (the movie timescale is ours to choose).
        let exact = (u128::from(start) * u128::from(movie_timescale)) % u128::from(media_timescale.max(1)) == 0;
        let movie_timescale = if exact { movie_timescale } else { media_timescale };
        Ok(Self {
            movie_timescale,
            media: timeline.media_duration(),
            media_in_movie: rescale_up(timeline.media_duration(), media_timescale, movie_timescale)?,
            empty_edit: rescale_up(start, media_timescale, movie_timescale)?,
        })
    }

    /// The track and movie duration: the empty edit and the media.
    fn movie_duration(&self) -> Result<u64, Fmp4Error> {
        self.empty_edit.checked_add(self.media_in_movie).ok_or_else(|| Fmp4Error::Unsupported("duration".to_owned()))
    }
}

/// Appends a time field: 64 bits when `long`, else 32.
fn put_time(out: &mut Vec<u8>, long: bool, value: u64) {
    if long { put_u64(out, value) } else { put_u32(out, u32::try_from(value).unwrap_or(u32::MAX)) }
}

/// Appends an `mvhd`/`mdhd`, in version 1 only when a value needs 64 bits.
fn write_timed_header(out: &mut Vec<u8>, header: &TimedHeader<'_>, kind: FourCc) -> Result<(), Fmp4Error> {
    let long = [header.creation, header.modification, header.duration].iter().any(|&v| u32::try_from(v).is_err());
    write_full_box(out, kind, u8::from(long), header.flags, |out| {
        put_time(out, long, header.creation);
        put_time(out, long, header.modification);
        put_u32(out, header.timescale);
        put_time(out, long, header.duration);
        out.extend_from_slice(header.tail);
        Ok(())
    })
}

/// Appends a `tkhd` with `duration` (movie timescale).
fn write_tkhd(out: &mut Vec<u8>, tkhd: &Tkhd<'_>, duration: u64) -> Result<(), Fmp4Error> {
    let long = [tkhd.creation, tkhd.modification, duration].iter().any(|&v| u32::try_from(v).is_err());
    write_full_box(out, *b"tkhd", u8::from(long), tkhd.flags, |out| {
        put_time(out, long, tkhd.creation);
        put_time(out, long, tkhd.modification);
        put_u32(out, tkhd.track_id);
        put_u32(out, 0);
        put_time(out, long, duration);
        out.extend_from_slice(tkhd.tail);
        Ok(())
    })
}

/// Appends the rebuilt `trak`: `tkhd`, `edts` when the first sample does not start at 0,
/// `mdia` with the new `stbl`; other boxes verbatim.
fn write_trak(out: &mut Vec<u8>, track: &Track<'_>, times: &Times, tables: &SampleTables) -> Result<(), Fmp4Error> {
    write_box(out, *b"trak", |out| {
        for child in &track.trak {
            match &child.kind {
                b"tkhd" => {
                    write_tkhd(out, &track.tkhd, times.movie_duration()?)?;
                    if times.empty_edit > 0 {
                        write_edts(out, times.empty_edit, times.media_in_movie)?;
                    }
                }
                b"mdia" => write_mdia(out, track, times.media, tables)?,
                _ => out.extend_from_slice(child.whole),
            }
        }
        Ok(())
    })
}

/// Appends the rebuilt `mdia` (`mdhd` with the media duration, original `hdlr`, new `minf`).
fn write_mdia(
    out: &mut Vec<u8>,
    track: &Track<'_>,
    media_duration: u64,
    tables: &SampleTables,
) -> Result<(), Fmp4Error> {
    write_box(out, *b"mdia", |out| {
        for child in &track.mdia {
            match &child.kind {
                b"mdhd" => write_timed_header(out, &TimedHeader { duration: media_duration, ..track.mdhd }, *b"mdhd")?,
                b"minf" => write_minf(out, track, tables)?,
                _ => out.extend_from_slice(child.whole),
            }
        }
        Ok(())
    })
}

/// Appends the rebuilt `minf` (original `vmhd`/`dinf`, new `stbl`).
fn write_minf(out: &mut Vec<u8>, track: &Track<'_>, tables: &SampleTables) -> Result<(), Fmp4Error> {
    write_box(out, *b"minf", |out| {
        for child in &track.minf {
            match &child.kind {
                b"stbl" => write_stbl(out, track.stsd, tables)?,
                _ => out.extend_from_slice(child.whole),
            }
        }
        Ok(())
    })
}

/// Appends an `edts` that shows nothing for `empty` then the media from its start for `media`
/// (both in movie timescale): how a track whose first decode time is not 0 keeps its times.
fn write_edts(out: &mut Vec<u8>, empty: u64, media: u64) -> Result<(), Fmp4Error> {
    let long = u32::try_from(empty).is_err() || u32::try_from(media).is_err();
    write_box(out, *b"edts", |out| {
        write_full_box(out, *b"elst", u8::from(long), 0, |out| {
            put_u32(out, 2);
            for (duration, media_time) in [(empty, -1i64), (media, 0)] {
                if long {
                    put_u64(out, duration);
                    put_u64(out, media_time.cast_unsigned());
                } else {
                    put_u32(out, u32::try_from(duration).unwrap_or(u32::MAX));
                    put_u32(out, i32::try_from(media_time).unwrap_or(-1).cast_unsigned());
                }
                put_u32(out, 0x0001_0000); // media rate 1.0
            }
            Ok(())
        })
    })
}
