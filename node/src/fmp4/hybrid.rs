//! Turning a finished fragmented MP4 into a regular ("hybrid") one: a `moov` indexing every
//! sample is appended, then the fragment boxes are retired, in an order that keeps the file
//! playable by FFmpeg at every instant.

use std::{
    fs::{File, OpenOptions},
    io::{Read, Seek, SeekFrom, Write},
    path::Path,
};

use super::{
    Fmp4Error,
    boxes::{
        BoxHeader, Child, Cursor, FourCc, children, find_child, kind_name, put_u32, put_u64, read_box, walk_top_level,
        write_box, write_full_box,
    },
    tables::{SampleTables, Timeline, TrackDefaults, write_stbl},
};

/// Largest `moov` read into memory (FFmpeg's initial `moov` is about 1 KiB).
const MAX_MOOV_BYTES: u64 = 256 << 20;
/// Largest `moof` read into memory (a few hundred bytes per fragment in practice).
const MAX_MOOF_BYTES: u64 = 64 << 20;

/// What [`finalize_hybrid`] did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HybridOutcome {
    /// Samples (frames) the new `moov` indexes.
    pub samples: u64,
    /// Sum of the sample durations, in seconds.
    pub duration_secs: f64,
    /// Fragments whose samples were indexed (`mdat` boxes when resuming an interrupted run).
    pub fragments: u64,
    /// Size of the `moov` at the end of the file.
    pub moov_bytes: u64,
}

/// The durable steps of [`finalize_hybrid_with`], each reported once synced to disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CommitStep {
    /// The complete `moov` is appended; FFmpeg ignores it as a duplicate, the file still reads
    /// as fragmented.
    MoovAppended,
    /// The initial `moov` is shortened so that its `mvex` (and what follows it) became
    /// top-level boxes; the file still reads as fragmented.
    MvexExposed,
    /// The initial `moov` is a `free` box: the appended `moov` is the one players use.
    InitialMoovFreed,
    /// Every `moof` and the `mfra` are `free` boxes.
    FragmentsFreed,
    /// The `free` box that was the initial `moov` covers its whole extent again (the exposed
    /// `mvex` is gone): the file is final.
    HeaderMerged,
}

/// Turns the fragmented MP4 at `path` (as FFmpeg writes it with
/// `movflags=+frag_keyframe+empty_moov+default_base_moof`, one video track, after
/// `write_trailer`) into a regular MP4 whose `moov`, at the end, indexes every sample.
///
/// Sample data does not move: the file only grows by the new `moov`. A file left half-way by an
/// interrupted earlier call is completed.
///
/// # Errors
///
/// [`Fmp4Error::AlreadyFinal`] when the file is already a regular MP4 (nothing is changed:
/// calling this twice is harmless); other variants say why the file cannot be converted. On
/// any error the file still plays as it did (see [`finalize_hybrid_with`]).
pub fn finalize_hybrid(path: &Path) -> Result<HybridOutcome, Fmp4Error> {
    finalize_hybrid_with(path, &mut |_| {})
}

/// [`finalize_hybrid`], calling `after_step` after each step is synced to disk (for tests that
/// simulate a crash between steps, or for progress logs).
///
/// # Errors
///
/// As [`finalize_hybrid`].
pub fn finalize_hybrid_with(path: &Path, after_step: &mut dyn FnMut(CommitStep)) -> Result<HybridOutcome, Fmp4Error> {
    let mut file = OpenOptions::new().read(true).write(true).open(path)?;
    let len = file.metadata()?.len();
    let plan = analyze(&mut file, len)?;
    execute(&mut file, plan, after_step)
}

/// What to write, decided before writing anything.
#[derive(Debug)]
enum Plan {
    /// A fragmented file (possibly with a `moov` appended by an interrupted run).
    Fresh(Fresh),
    /// A file an interrupted run left after [`CommitStep::MvexExposed`].
    Resume(Resume),
}

/// Everything needed to finalize a fragmented file.
#[derive(Debug)]
struct Fresh {
    /// A `moov` appended by an interrupted run, to cut before appending ours.
    stale_moov: Option<BoxHeader>,
    /// Where the new `moov` goes.
    append_at: u64,
    /// The new `moov`.
    moov: Vec<u8>,
    /// Header of the initial `moov`, and its size once shortened to end before its `mvex`.
    initial_moov: BoxHeader,
    shortened_size: u64,
    /// The `moof` and `mfra` boxes to retire.
    retired: Vec<BoxHeader>,
    outcome: HybridOutcome,
}

/// Everything needed to complete an interrupted run.
#[derive(Debug)]
struct Resume {
    /// The shortened initial `moov` (or the `free` it became) right before the exposed `mvex`.
    head: BoxHeader,
    /// Size of the initial `moov` (the head plus the boxes it exposed).
    merged_size: u64,
    /// The `moof` and `mfra` boxes still to retire.
    retired: Vec<BoxHeader>,
    outcome: HybridOutcome,
}

/// Reads the file and decides what to write (nothing is written).
fn analyze<R: Read + Seek>(reader: &mut R, len: u64) -> Result<Plan, Fmp4Error> {
    let top = walk_top_level(reader, len)?;
    if let Some(offset) = top.incomplete_at {
        return Err(Fmp4Error::Incomplete { offset });
    }
    let boxes = top.boxes;
    if let Some(index) = boxes.iter().position(|b| &b.kind == b"sidx" || &b.kind == b"styp") {
        let kind = boxes.get(index).map_or_else(String::new, |b| kind_name(b.kind));
        return Err(Fmp4Error::Unsupported(format!("top-level {kind} box (segmented MP4)")));
    }
    if let Some(mvex) = boxes.iter().position(|b| &b.kind == b"mvex") {
        return plan_resume(reader, &boxes, mvex).map(Plan::Resume);
    }
    plan_fresh(reader, &boxes, len).map(Plan::Fresh)
}

/// Plans the conversion of a fragmented file.
fn plan_fresh<R: Read + Seek>(reader: &mut R, boxes: &[BoxHeader], len: u64) -> Result<Fresh, Fmp4Error> {
    let moovs: Vec<&BoxHeader> = boxes.iter().filter(|b| &b.kind == b"moov").collect();
    let initial = **moovs.first().ok_or(Fmp4Error::NoMoov)?;
    let moov_bytes = read_box(reader, &initial, MAX_MOOV_BYTES)?;
    let body = body_of(&moov_bytes, &initial);
    let has_mvex = find_child(body, b"mvex")?.is_some();
    match (boxes.iter().find(|b| &b.kind == b"moof"), has_mvex) {
        (None, true) => return Err(Fmp4Error::NoSamples),
        (None, false) => return Err(Fmp4Error::AlreadyFinal),
        (Some(moof), _) if moof.offset < initial.offset => {
            return Err(Fmp4Error::Unsupported("moof before the moov".to_owned()));
        }
        (Some(_), false) => return Err(Fmp4Error::NotFragmented("the moov has no mvex".to_owned())),
        (Some(_), true) => {}
    }
    let moov = InitialMoov::parse(body)?;
    let stale_moov = match moovs.get(1..).unwrap_or_default() {
        [] => None,
        [stale] if Some(*stale) == boxes.last() => Some(**stale),
        _ => return Err(Fmp4Error::Unsupported("several moov boxes".to_owned())),
    };
    let append_at = stale_moov.map_or(len, |stale| stale.offset);
    let (timeline, retired) = read_fragments(reader, boxes, &moov)?;
    check_samples_in_mdats(&timeline, boxes)?;
    let new_moov = moov.build(&timeline)?;
    let outcome = HybridOutcome {
        samples: u64::try_from(timeline.samples().len()).unwrap_or(u64::MAX),
        duration_secs: seconds(timeline.media_duration(), moov.track.mdhd.timescale),
        fragments: timeline.fragments(),
        moov_bytes: u64::try_from(new_moov.len()).unwrap_or(u64::MAX),
    };
    let shortened_size = moov.shortened_size(initial.header_len)?;
    Ok(Fresh { stale_moov, append_at, moov: new_moov, initial_moov: initial, shortened_size, retired, outcome })
}

/// Reads every `moof` into a timeline; returns it with the boxes to retire (`moof`s, `mfra`).
fn read_fragments<R: Read + Seek>(
    reader: &mut R,
    boxes: &[BoxHeader],
    moov: &InitialMoov<'_>,
) -> Result<(Timeline, Vec<BoxHeader>), Fmp4Error> {
    let defaults = moov.defaults.ok_or_else(|| Fmp4Error::NotFragmented("the moov has no mvex/trex".to_owned()))?;
    let mut timeline = Timeline::new(defaults);
    let mut retired = Vec::new();
    for header in boxes {
        match &header.kind {
            b"moof" => {
                let bytes = read_box(reader, header, MAX_MOOF_BYTES)?;
                timeline.add_moof(body_of(&bytes, header), header.offset)?;
                retired.push(*header);
            }
            b"mfra" => retired.push(*header),
            _ => {}
        }
    }
    if timeline.samples().is_empty() {
        return Err(Fmp4Error::NoSamples);
    }
    Ok((timeline, retired))
}

/// Checks that every sample's data lies inside a top-level `mdat`, so the new `moov` cannot
/// point players at headers or past the end of the file.
fn check_samples_in_mdats(timeline: &Timeline, boxes: &[BoxHeader]) -> Result<(), Fmp4Error> {
    let mdats: Vec<(u64, u64)> =
        boxes.iter().filter(|b| &b.kind == b"mdat").map(|b| (b.body_start(), b.end())).collect();
    for sample in timeline.samples() {
        let end = sample.offset.checked_add(u64::from(sample.size));
        // mdats are in file order: the candidate is the last one starting at or before the sample.
        let candidate = mdats.partition_point(|&(start, _)| start <= sample.offset).checked_sub(1);
        let inside =
            candidate.and_then(|i| mdats.get(i)).is_some_and(|&(_, mdat_end)| end.is_some_and(|e| e <= mdat_end));
        if !inside {
            return Err(Fmp4Error::Malformed(format!(
                "sample data at {} ({} bytes) is outside every mdat",
                sample.offset, sample.size
            )));
        }
    }
    Ok(())
}

/// Plans the completion of a run interrupted after [`CommitStep::MvexExposed`]: the top-level
/// `mvex` at `mvex_index` follows the shortened initial `moov` (or the `free` it became), and the
/// complete `moov` is the last box.
fn plan_resume<R: Read + Seek>(reader: &mut R, boxes: &[BoxHeader], mvex_index: usize) -> Result<Resume, Fmp4Error> {
    let unsupported = || Fmp4Error::Unsupported("top-level mvex that no interrupted finalization left".to_owned());
    let head = *mvex_index.checked_sub(1).and_then(|i| boxes.get(i)).ok_or_else(unsupported)?;
    if &head.kind != b"moov" && &head.kind != b"free" {
        return Err(unsupported());
    }
    let exposed = boxes.iter().skip(mvex_index.saturating_add(1)).take_while(|b| is_exposable(b.kind)).count();
    let region_end = boxes.get(mvex_index.saturating_add(exposed)).ok_or_else(unsupported)?.end();
    let last = *boxes.last().ok_or_else(unsupported)?;
    let other_moovs = boxes.iter().filter(|b| &b.kind == b"moov" && **b != head && **b != last).count();
    if &last.kind != b"moov" || last == head || other_moovs > 0 {
        return Err(unsupported());
    }
    let moov_bytes = read_box(reader, &last, MAX_MOOV_BYTES)?;
    let (samples, duration_secs) = summarize_final_moov(body_of(&moov_bytes, &last))?;
    let retired = boxes.iter().filter(|b| &b.kind == b"moof" || &b.kind == b"mfra").copied().collect();
    let fragments = boxes.iter().filter(|b| &b.kind == b"mdat").count();
    let outcome = HybridOutcome {
        samples,
        duration_secs,
        fragments: u64::try_from(fragments).unwrap_or(u64::MAX),
        moov_bytes: last.size,
    };
    Ok(Resume { head, merged_size: region_end.saturating_sub(head.offset), retired, outcome })
}

/// Sample count and duration of a complete `moov` (the one a previous run appended).
fn summarize_final_moov(body: &[u8]) -> Result<(u64, f64), Fmp4Error> {
    let trak = require(body, b"trak", "moov")?;
    let mdia = require(trak.body, b"mdia", "trak")?;
    let mdhd = TimedHeader::parse(require(mdia.body, b"mdhd", "mdia")?.body, "mdhd")?;
    let stbl = require(require(mdia.body, b"minf", "mdia")?.body, b"stbl", "minf")?;
    let mut stsz = Cursor::new(require(stbl.body, b"stsz", "stbl")?.body, "stsz");
    stsz.version_flags()?;
    stsz.u32()?;
    let samples = stsz.u32()?;
    if samples == 0 {
        return Err(Fmp4Error::Unsupported("the moov after the fragments indexes no sample".to_owned()));
    }
    Ok((u64::from(samples), seconds(mdhd.duration, mdhd.timescale)))
}

/// Box types the initial `moov` may have after its `mvex`: they become top-level boxes for a
/// while (see [`execute_fresh`]), which must be harmless.
fn is_exposable(kind: FourCc) -> bool {
    &kind == b"udta" || &kind == b"meta"
}

/// Writes the plan.
fn execute(file: &mut File, plan: Plan, after_step: &mut dyn FnMut(CommitStep)) -> Result<HybridOutcome, Fmp4Error> {
    match plan {
        Plan::Fresh(fresh) => execute_fresh(file, fresh, after_step),
        Plan::Resume(resume) => {
            retire(file, &resume.head, resume.merged_size, &resume.retired, after_step)?;
            Ok(resume.outcome)
        }
    }
}

// Commit order. Each step is one kind of small in-place write followed by `sync_data`, and the
// file plays in FFmpeg (hence Chromium, which demuxes MP4 with FFmpeg) with every frame after
// each of them, so a crash at any instant loses nothing:
//
// 1. Append the complete moov. FFmpeg uses the first moov it meets and skips a second one
//    ("Found duplicated MOOV Atom"): the file still reads as fragmented.
// 2. Shorten the initial moov's size so it ends before its `mvex`: the `mvex` (and the
//    `udta`/`meta` after it) become top-level boxes. FFmpeg parses any `trex` it meets, inside
//    a moov or not, so the (shorter) initial moov plus the top-level `trex` still read as the
//    same fragmented file.
// 3. Retype the initial moov as `free`: the appended moov is now the only one. FFmpeg reads the
//    top-level boxes in order, so it meets the moofs before that moov; it skips them ("could not
//    find corresponding track id") because the exposed `trex` makes their `tfhd` valid. Without
//    step 2 (freeing the whole initial moov at once, trex included) FFmpeg rejects the file:
//    "trun track id unknown, no tfhd was found", "error reading header".
// 4. Retype every moof and the mfra as `free` (one sync for all: any mix of retyped and
//    visible moofs reads the same, as in 3).
// 5. Restore the size of the `free` that was the initial moov, so it swallows the exposed
//    boxes again; no moof is left, so the `trex` is no longer needed. The file is now
//    `ftyp free (free mdat)* free moov`.
/// Writes a [`Fresh`] plan, in the order described above.
fn execute_fresh(
    file: &mut File,
    fresh: Fresh,
    after_step: &mut dyn FnMut(CommitStep),
) -> Result<HybridOutcome, Fmp4Error> {
    if let Some(stale) = fresh.stale_moov {
        // Left by an interrupted run (before step 2): ignored by players, but it would be a
        // second complete moov after ours.
        file.set_len(stale.offset)?;
        file.sync_data()?;
    }
    append(file, fresh.append_at, &fresh.moov)?;
    after_step(CommitStep::MoovAppended);
    write_size(file, &fresh.initial_moov, fresh.shortened_size)?;
    file.sync_data()?;
    after_step(CommitStep::MvexExposed);
    let shortened = BoxHeader { size: fresh.shortened_size, ..fresh.initial_moov };
    retire(file, &shortened, fresh.initial_moov.size, &fresh.retired, after_step)?;
    Ok(fresh.outcome)
}

/// Steps 3 to 5: frees the shortened initial `moov` at `head` (unless already `free`), then the
/// fragment boxes, then gives `head` back its `merged_size`.
fn retire(
    file: &mut File,
    head: &BoxHeader,
    merged_size: u64,
    retired: &[BoxHeader],
    after_step: &mut dyn FnMut(CommitStep),
) -> Result<(), Fmp4Error> {
    if &head.kind != b"free" {
        write_type(file, head, b"free")?;
        file.sync_data()?;
        after_step(CommitStep::InitialMoovFreed);
    }
    for header in retired {
        write_type(file, header, b"free")?;
    }
    file.sync_data()?;
    after_step(CommitStep::FragmentsFreed);
    write_size(file, head, merged_size)?;
    file.sync_data()?;
    after_step(CommitStep::HeaderMerged);
    Ok(())
}

/// Appends `bytes` at `at` (the end of the file) and syncs; on failure (disk full) cuts the
/// partial box off again, so no truncated box is left at the end.
fn append(file: &mut File, at: u64, bytes: &[u8]) -> Result<(), Fmp4Error> {
    let written = file.seek(SeekFrom::Start(at)).and_then(|_| file.write_all(bytes)).and_then(|()| file.sync_data());
    if let Err(error) = written {
        // Best effort: the original error is the one worth reporting.
        let _ = file.set_len(at).and_then(|()| file.sync_data());
        return Err(error.into());
    }
    Ok(())
}

/// Overwrites the type of the box at `header`.
fn write_type(file: &mut File, header: &BoxHeader, kind: &FourCc) -> Result<(), Fmp4Error> {
    file.seek(SeekFrom::Start(header.offset.saturating_add(4)))?;
    file.write_all(kind)?;
    Ok(())
}

/// Overwrites the size of the box at `header`, in the header form it already has (32-bit size,
/// or 64-bit largesize): a single small write that cannot tear.
fn write_size(file: &mut File, header: &BoxHeader, size: u64) -> Result<(), Fmp4Error> {
    if header.header_len == 16 {
        file.seek(SeekFrom::Start(header.offset.saturating_add(8)))?;
        file.write_all(&size.to_be_bytes())?;
    } else {
        let size =
            u32::try_from(size).ok().filter(|&s| s > 1).ok_or_else(|| Fmp4Error::Malformed("box size".to_owned()))?;
        file.seek(SeekFrom::Start(header.offset))?;
        file.write_all(&size.to_be_bytes())?;
    }
    Ok(())
}

/// The payload of a box read with [`read_box`].
fn body_of<'a>(bytes: &'a [u8], header: &BoxHeader) -> &'a [u8] {
    usize::try_from(header.header_len).ok().and_then(|start| bytes.get(start..)).unwrap_or_default()
}

/// `value` time units of `timescale` in seconds.
fn seconds(value: u64, timescale: u32) -> f64 {
    if timescale == 0 { 0.0 } else { value as f64 / f64::from(timescale) }
}

/// `value` converted from timescale `from` to `to`, rounded up (as FFmpeg does for durations,
/// so an edit or a duration never cuts the last sample short).
fn rescale_up(value: u64, from: u32, to: u32) -> Result<u64, Fmp4Error> {
    let from = u128::from(from);
    if from == 0 {
        return Err(Fmp4Error::Malformed("zero timescale".to_owned()));
    }
    let scaled = (u128::from(value) * u128::from(to)).div_ceil(from);
    u64::try_from(scaled).map_err(|_| Fmp4Error::Unsupported("duration out of range".to_owned()))
}

/// The only child of type `kind`; an error when missing or repeated.
fn require<'a>(body: &'a [u8], kind: &FourCc, parent: &str) -> Result<Child<'a>, Fmp4Error> {
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

/// An `mvhd` or `mdhd`: times, timescale, duration, then fields copied verbatim.
#[derive(Debug, Clone, Copy)]
struct TimedHeader<'a> {
    flags: u32,
    creation: u64,
    modification: u64,
    timescale: u32,
    duration: u64,
    /// Everything after the duration (rate, volume, matrix, next track id; or the language).
    tail: &'a [u8],
}

impl<'a> TimedHeader<'a> {
    /// Parses an `mvhd`/`mdhd` payload (version 0 or 1).
    fn parse(body: &'a [u8], what: &'static str) -> Result<Self, Fmp4Error> {
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

    /// Appends the box, in version 1 only when a value needs 64 bits.
    fn write(&self, out: &mut Vec<u8>, kind: FourCc) -> Result<(), Fmp4Error> {
        let long = [self.creation, self.modification, self.duration].iter().any(|&v| u32::try_from(v).is_err());
        write_full_box(out, kind, u8::from(long), self.flags, |out| {
            let put_time = |out: &mut Vec<u8>, value: u64| {
                if long { put_u64(out, value) } else { put_u32(out, u32::try_from(value).unwrap_or(u32::MAX)) }
            };
            put_time(out, self.creation);
            put_time(out, self.modification);
            put_u32(out, self.timescale);
            put_time(out, self.duration);
            out.extend_from_slice(self.tail);
            Ok(())
        })
    }
}

/// A `tkhd`: times, track id, then fields copied verbatim (layer, volume, matrix,
/// width and height).
#[derive(Debug, Clone, Copy)]
struct Tkhd<'a> {
    flags: u32,
    creation: u64,
    modification: u64,
    track_id: u32,
    tail: &'a [u8],
}

impl<'a> Tkhd<'a> {
    /// Parses a `tkhd` payload (version 0 or 1).
    fn parse(body: &'a [u8]) -> Result<Self, Fmp4Error> {
        let mut cursor = Cursor::new(body, "tkhd");
        let (version, flags) = cursor.version_flags()?;
        let creation = cursor.u32_or_u64(version)?;
        let modification = cursor.u32_or_u64(version)?;
        let track_id = cursor.u32()?;
        cursor.u32()?; // reserved
        cursor.u32_or_u64(version)?; // duration: 0 in a fragmented file, rewritten anyway
        let tail = cursor.rest();
        // reserved(8) layer(2) group(2) volume(2) reserved(2) matrix(36) width(4) height(4)
        if tail.len() < 60 || track_id == 0 {
            return Err(Fmp4Error::Malformed("tkhd is truncated or has track id 0".to_owned()));
        }
        Ok(Self { flags, creation, modification, track_id, tail })
    }

    /// Appends the box with `duration` (movie timescale).
    fn write(&self, out: &mut Vec<u8>, duration: u64) -> Result<(), Fmp4Error> {
        let long = [self.creation, self.modification, duration].iter().any(|&v| u32::try_from(v).is_err());
        write_full_box(out, *b"tkhd", u8::from(long), self.flags, |out| {
            let put_time = |out: &mut Vec<u8>, value: u64| {
                if long { put_u64(out, value) } else { put_u32(out, u32::try_from(value).unwrap_or(u32::MAX)) }
            };
            put_time(out, self.creation);
            put_time(out, self.modification);
            put_u32(out, self.track_id);
            put_u32(out, 0);
            put_time(out, duration);
            out.extend_from_slice(self.tail);
            Ok(())
        })
    }
}

/// The boxes of the one video track of the initial `moov`.
#[derive(Debug, Clone)]
struct Track<'a> {
    trak: Vec<Child<'a>>,
    tkhd: Tkhd<'a>,
    mdia: Vec<Child<'a>>,
    mdhd: TimedHeader<'a>,
    minf: Vec<Child<'a>>,
    /// The whole `stsd` box (codec configuration: avcC/hvcC), copied verbatim.
    stsd: &'a [u8],
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

    /// Appends the rebuilt `trak`: `tkhd`, `edts` when the first sample does not start at 0,
    /// `mdia` with the new `stbl`; other boxes verbatim.
    fn write(&self, out: &mut Vec<u8>, times: &Times, tables: &SampleTables) -> Result<(), Fmp4Error> {
        write_box(out, *b"trak", |out| {
            for child in &self.trak {
                match &child.kind {
                    b"tkhd" => {
                        self.tkhd.write(out, times.movie_duration()?)?;
                        if times.empty_edit > 0 {
                            write_edts(out, times.empty_edit, times.media_in_movie)?;
                        }
                    }
                    b"mdia" => self.write_mdia(out, times.media, tables)?,
                    _ => out.extend_from_slice(child.whole),
                }
            }
            Ok(())
        })
    }

    /// Appends the rebuilt `mdia` (`mdhd` with the media duration, original `hdlr`, new `minf`).
    fn write_mdia(&self, out: &mut Vec<u8>, media_duration: u64, tables: &SampleTables) -> Result<(), Fmp4Error> {
        write_box(out, *b"mdia", |out| {
            for child in &self.mdia {
                match &child.kind {
                    b"mdhd" => TimedHeader { duration: media_duration, ..self.mdhd }.write(out, *b"mdhd")?,
                    b"minf" => self.write_minf(out, tables)?,
                    _ => out.extend_from_slice(child.whole),
                }
            }
            Ok(())
        })
    }

    /// Appends the rebuilt `minf` (original `vmhd`/`dinf`, new `stbl`).
    fn write_minf(&self, out: &mut Vec<u8>, tables: &SampleTables) -> Result<(), Fmp4Error> {
        write_box(out, *b"minf", |out| {
            for child in &self.minf {
                match &child.kind {
                    b"stbl" => write_stbl(out, self.stsd, tables)?,
                    _ => out.extend_from_slice(child.whole),
                }
            }
            Ok(())
        })
    }
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

/// The initial `moov` of a fragmented file.
#[derive(Debug, Clone)]
struct InitialMoov<'a> {
    children: Vec<Child<'a>>,
    mvhd: TimedHeader<'a>,
    track: Track<'a>,
    /// The track's `trex`; `None` without `mvex` (not fragmented).
    defaults: Option<TrackDefaults>,
}

impl<'a> InitialMoov<'a> {
    /// Parses a `moov` payload with exactly one (video) track.
    fn parse(body: &'a [u8]) -> Result<Self, Fmp4Error> {
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

    /// Size of this `moov` shortened to end right before its `mvex` (commit step 2); only
    /// `udta`/`meta` may follow the `mvex`, as they become top-level boxes for a while.
    fn shortened_size(&self, header_len: u64) -> Result<u64, Fmp4Error> {
        let mvex = self.children.iter().position(|c| &c.kind == b"mvex");
        let mvex = mvex.ok_or_else(|| Fmp4Error::NotFragmented("the moov has no mvex".to_owned()))?;
        if !self.children.iter().skip(mvex.saturating_add(1)).all(|c| is_exposable(c.kind)) {
            return Err(Fmp4Error::Unsupported("moov boxes after mvex other than udta/meta".to_owned()));
        }
        let before: usize = self.children.iter().take(mvex).map(|c| c.whole.len()).sum();
        u64::try_from(before)
            .ok()
            .and_then(|b| b.checked_add(header_len))
            .ok_or_else(|| Fmp4Error::Malformed("moov".to_owned()))
    }

    /// The complete `moov` indexing `timeline`'s samples: `mvhd` with the total duration, the
    /// rebuilt `trak`, no `mvex`, other boxes (`udta`, `meta`: title, creation time) verbatim.
    fn build(&self, timeline: &Timeline) -> Result<Vec<u8>, Fmp4Error> {
        let tables = SampleTables::build(timeline.samples())?;
        let times = Times::new(timeline, self.mvhd.timescale, self.track.mdhd.timescale)?;
        let mvhd = TimedHeader { timescale: times.movie_timescale, duration: times.movie_duration()?, ..self.mvhd };
        let mut out = Vec::new();
        write_box(&mut out, *b"moov", |out| {
            mvhd.write(out, *b"mvhd")?;
            for child in &self.children {
                match &child.kind {
                    b"mvhd" | b"mvex" => {}
                    b"trak" => self.track.write(out, &times, &tables)?,
                    _ => out.extend_from_slice(child.whole),
                }
            }
            Ok(())
        })?;
        Ok(out)
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

#[cfg(test)]
mod tests {
    use std::io::Cursor as IoCursor;

    use super::*;
    use crate::fmp4::{boxes::tests::boxed, complete_fragments_end};

    const MEDIA_TIMESCALE: u32 = 15360;

    /// A full box payload: version, flags, then `rest`.
    fn full(version: u8, flags: u32, rest: &[u8]) -> Vec<u8> {
        let mut out = ((u32::from(version) << 24) | flags).to_be_bytes().to_vec();
        out.extend_from_slice(rest);
        out
    }

    fn words(values: &[u32]) -> Vec<u8> {
        values.iter().flat_map(|v| v.to_be_bytes()).collect()
    }

    /// One fragment: `sizes` samples of 512 ticks, the first a keyframe, optional per-sample
    /// composition offsets.
    struct Fragment {
        decode_time: u64,
        sizes: Vec<u32>,
        composition_offsets: Option<Vec<u32>>,
    }

    /// The layout FFmpeg writes (see the module docs), with `tracks` video tracks.
    fn initial_moov(tracks: usize, mvex: bool) -> Vec<u8> {
        let mut mvhd_tail = words(&[0x0001_0000]);
        mvhd_tail.extend([1, 0, 0, 0]);
        mvhd_tail.extend([0; 8]);
        mvhd_tail.extend(words(&[0x0001_0000, 0, 0, 0, 0x0001_0000, 0, 0, 0, 0x4000_0000]));
        mvhd_tail.extend([0; 24]);
        mvhd_tail.extend(words(&[2]));
        let mvhd = boxed(b"mvhd", &full(0, 0, &[words(&[7, 8, 1000, 0]), mvhd_tail].concat()));
        let mut tkhd_tail = vec![0; 16];
        tkhd_tail.extend(words(&[0x0001_0000, 0, 0, 0, 0x0001_0000, 0, 0, 0, 0x4000_0000]));
        tkhd_tail.extend(words(&[320 << 16, 240 << 16]));
        let tkhd = boxed(b"tkhd", &full(0, 3, &[words(&[7, 8, 1, 0, 0]), tkhd_tail].concat()));
        let mdhd = boxed(b"mdhd", &full(0, 0, &[words(&[7, 8, MEDIA_TIMESCALE, 0]), vec![0x55, 0xc4, 0, 0]].concat()));
        let hdlr =
            boxed(b"hdlr", &full(0, 0, &[words(&[0]), b"vide".to_vec(), vec![0; 12], b"Video\0".to_vec()].concat()));
        let stsd = boxed(b"stsd", &full(0, 0, &[words(&[1]), boxed(b"avc1", &[0xaa; 20])].concat()));
        let empty = |kind: &[u8; 4]| boxed(kind, &full(0, 0, &words(&[0])));
        let stsz = boxed(b"stsz", &full(0, 0, &words(&[0, 0])));
        let stbl = boxed(b"stbl", &[stsd, empty(b"stts"), empty(b"stsc"), stsz, empty(b"stco")].concat());
        let dinf =
            boxed(b"dinf", &boxed(b"dref", &full(0, 0, &[words(&[1]), boxed(b"url ", &full(0, 1, &[]))].concat())));
        let vmhd = boxed(b"vmhd", &full(0, 1, &[0; 8]));
        let minf = boxed(b"minf", &[vmhd, dinf, stbl].concat());
        let mdia = boxed(b"mdia", &[mdhd, hdlr, minf].concat());
        let trak = boxed(b"trak", &[tkhd, mdia].concat());
        let mut moov = mvhd;
        (0..tracks).for_each(|_| moov.extend(&trak));
        if mvex {
            moov.extend(boxed(b"mvex", &boxed(b"trex", &full(0, 0, &words(&[1, 1, 0, 0, 0])))));
        }
        moov.extend(boxed(b"udta", &boxed(b"meta", &full(0, 0, &boxed(b"ilst", b"title")))));
        boxed(b"moov", &moov)
    }

    /// moof+mdat for `fragment` (data offsets count from the moof).
    fn moof_mdat(fragment: &Fragment, sequence: u32) -> Vec<u8> {
        let build = |data_offset: u32| {
            let tfhd = boxed(b"tfhd", &full(0, 0x02_0038, &words(&[1, 512, 0, 0x0101_0000])));
            let tfdt = boxed(b"tfdt", &full(1, 0, &fragment.decode_time.to_be_bytes()));
            let mut flags = 0x205;
            let mut records = Vec::new();
            for (i, &size) in fragment.sizes.iter().enumerate() {
                records.extend(size.to_be_bytes());
                if let Some(offsets) = &fragment.composition_offsets {
                    flags |= 0x800;
                    records.extend(offsets[i].to_be_bytes());
                }
            }
            let count = fragment.sizes.len() as u32;
            let trun = boxed(b"trun", &full(0, flags, &[words(&[count, data_offset, 0x0200_0000]), records].concat()));
            let traf = boxed(b"traf", &[tfhd, tfdt, trun].concat());
            boxed(b"moof", &[boxed(b"mfhd", &full(0, 0, &words(&[sequence]))), traf].concat())
        };
        let moof = build(build(0).len() as u32 + 8);
        let data: Vec<u8> = fragment.sizes.iter().enumerate().flat_map(|(i, &s)| vec![i as u8; s as usize]).collect();
        [moof, boxed(b"mdat", &data)].concat()
    }

    /// A whole fragmented file.
    fn fragmented_file(fragments: &[Fragment]) -> Vec<u8> {
        let mut file = [boxed(b"ftyp", b"isom\0\0\x02\0isomiso6"), initial_moov(1, true)].concat();
        for (i, fragment) in fragments.iter().enumerate() {
            file.extend(moof_mdat(fragment, i as u32 + 1));
        }
        file.extend(boxed(b"mfra", &boxed(b"mfro", &full(0, 0, &words(&[24])))));
        file
    }

    fn cfr(fragments: usize, per_fragment: usize) -> Vec<Fragment> {
        (0..fragments)
            .map(|f| Fragment {
                decode_time: (f * per_fragment * 512) as u64,
                sizes: (0..per_fragment).map(|s| 30 + (f * 7 + s) as u32).collect(),
                composition_offsets: None,
            })
            .collect()
    }

    fn temp_file(name: &str, bytes: &[u8]) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("fmp4-hybrid-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }

    fn top_kinds(bytes: &[u8]) -> Vec<String> {
        let top = walk_top_level(&mut IoCursor::new(bytes), bytes.len() as u64).unwrap();
        assert_eq!(top.incomplete_at, None);
        top.boxes.iter().map(|b| kind_name(b.kind)).collect()
    }

    /// The stbl of the last top-level moov.
    fn final_stbl(bytes: &[u8]) -> Vec<u8> {
        let top = walk_top_level(&mut IoCursor::new(bytes), bytes.len() as u64).unwrap();
        let moov = top.boxes.iter().rev().find(|b| &b.kind == b"moov").unwrap();
        let body = &bytes[moov.body_start() as usize..moov.end() as usize];
        let mdia = require(require(body, b"trak", "moov").unwrap().body, b"mdia", "trak").unwrap();
        let minf = require(mdia.body, b"minf", "mdia").unwrap();
        require(minf.body, b"stbl", "minf").unwrap().body.to_vec()
    }

    /// Entries of a table box (after version/flags and count).
    fn table(stbl: &[u8], kind: &[u8; 4]) -> Option<Vec<u32>> {
        let child = find_child(stbl, kind).unwrap()?;
        Some(child.body[8..].chunks(4).map(|c| u32::from_be_bytes(c.try_into().unwrap())).collect())
    }

    #[test]
    fn finalizes_a_fragmented_file() {
        let original = fragmented_file(&cfr(3, 4));
        let path = temp_file("plain.mp4", &original);
        let outcome = finalize_hybrid(&path).unwrap();
        assert_eq!(outcome.samples, 12);
        assert_eq!(outcome.fragments, 3);
        assert!((outcome.duration_secs - 12.0 * 512.0 / 15360.0).abs() < 1e-9);
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(bytes.len() as u64, original.len() as u64 + outcome.moov_bytes);
        assert_eq!(top_kinds(&bytes), ["ftyp", "free", "free", "mdat", "free", "mdat", "free", "mdat", "free", "moov"]);
        let headers: Vec<usize> = walk_top_level(&mut IoCursor::new(&original), original.len() as u64)
            .unwrap()
            .boxes
            .iter()
            .map(|b| b.offset as usize)
            .collect();
        for (i, (a, b)) in original.iter().zip(&bytes).enumerate() {
            assert!(
                a == b || headers.iter().any(|&h| (h..h + 8).contains(&i)),
                "byte {i} outside a box header changed"
            );
        }
        let stbl = final_stbl(&bytes);
        assert_eq!(table(&stbl, b"stts").unwrap(), [12, 512]);
        assert_eq!(table(&stbl, b"stss").unwrap(), [1, 5, 9]);
        assert_eq!(table(&stbl, b"ctts"), None);
        assert_eq!(table(&stbl, b"stsc").unwrap(), [1, 4, 1]);
        assert_eq!(table(&stbl, b"stco").unwrap().len(), 3);
        let first_sample = table(&stbl, b"stco").unwrap()[0] as usize;
        assert_eq!(&bytes[first_sample..first_sample + 30], [0u8; 30], "chunk offsets point at sample data");
        assert!(find_child(&stbl, b"stsd").unwrap().unwrap().whole.windows(4).any(|w| w == b"avc1"));
        let moov_start = bytes.len() - outcome.moov_bytes as usize;
        let moov = &bytes[moov_start + 8..];
        assert!(find_child(moov, b"mvex").unwrap().is_none());
        assert!(find_child(moov, b"udta").unwrap().unwrap().whole.windows(5).any(|w| w == b"title"));
        let mvhd = TimedHeader::parse(find_child(moov, b"mvhd").unwrap().unwrap().body, "mvhd").unwrap();
        assert_eq!((mvhd.creation, mvhd.modification, mvhd.timescale, mvhd.duration), (7, 8, 1000, 400));
        assert!(matches!(finalize_hybrid(&path), Err(Fmp4Error::AlreadyFinal)));
        assert_eq!(std::fs::read(&path).unwrap(), bytes, "a second call changes nothing");
    }

    #[test]
    fn every_interrupted_state_completes_to_the_same_file() {
        let original = fragmented_file(&cfr(4, 3));
        let path = temp_file("steps.mp4", &original);
        let mut states = Vec::new();
        finalize_hybrid_with(&path, &mut |step| states.push((step, std::fs::read(&path).unwrap()))).unwrap();
        let final_bytes = std::fs::read(&path).unwrap();
        let steps: Vec<CommitStep> = states.iter().map(|(step, _)| *step).collect();
        use CommitStep::*;
        assert_eq!(steps, [MoovAppended, MvexExposed, InitialMoovFreed, FragmentsFreed, HeaderMerged]);
        assert_eq!(top_kinds(&states[1].1)[..5], ["ftyp", "moov", "mvex", "udta", "moof"]);
        assert_eq!(top_kinds(&states[2].1)[..5], ["ftyp", "free", "mvex", "udta", "moof"]);
        assert_eq!(top_kinds(&states[3].1)[..5], ["ftyp", "free", "mvex", "udta", "free"]);
        for (step, bytes) in &states {
            let copy = temp_file("resume.mp4", bytes);
            match finalize_hybrid(&copy) {
                Ok(outcome) => assert_eq!(outcome.samples, 12, "{step:?}"),
                Err(Fmp4Error::AlreadyFinal) => assert_eq!(*step, HeaderMerged),
                Err(error) => panic!("resuming after {step:?}: {error}"),
            }
            assert_eq!(std::fs::read(&copy).unwrap(), final_bytes, "resumed after {step:?}");
        }
        // A moov appended by a run killed during the append is cut first (trim does that).
        let mut torn = states[0].1.clone();
        torn.truncate(original.len() + 50);
        let copy = temp_file("torn.mp4", &torn);
        assert!(
            matches!(finalize_hybrid(&copy), Err(Fmp4Error::Incomplete { offset }) if offset == original.len() as u64)
        );
        crate::fmp4::trim_to_last_fragment(&copy).unwrap();
        finalize_hybrid(&copy).unwrap();
        assert_eq!(std::fs::read(&copy).unwrap(), final_bytes);
    }

    #[test]
    fn decode_time_gaps_stretch_the_previous_sample() {
        let mut fragments = cfr(3, 2);
        fragments[1].decode_time += 7680; // half a second missing before fragment 2
        fragments[2].decode_time += 7680;
        let bytes = fragmented_file(&fragments);
        let Plan::Fresh(fresh) = analyze(&mut IoCursor::new(&bytes), bytes.len() as u64).unwrap() else { panic!() };
        let moov = &fresh.moov[8..];
        let stbl = final_stbl(&[bytes.clone(), fresh.moov.clone()].concat());
        assert_eq!(table(&stbl, b"stts").unwrap(), [1, 512, 1, 512 + 7680, 4, 512]);
        assert!(find_child(require(moov, b"trak", "moov").unwrap().body, b"edts").unwrap().is_none());
        assert!((fresh.outcome.duration_secs - (6.0 * 512.0 + 7680.0) / 15360.0).abs() < 1e-9);
    }

    #[test]
    fn a_late_start_gets_an_exact_edit_list() {
        let mut fragments = cfr(2, 2);
        fragments.iter_mut().for_each(|f| f.decode_time += 1000); // 1000/15360 s: not whole ms
        let bytes = fragmented_file(&fragments);
        let Plan::Fresh(fresh) = analyze(&mut IoCursor::new(&bytes), bytes.len() as u64).unwrap() else { panic!() };
        let moov = &fresh.moov[8..];
        let mvhd = TimedHeader::parse(find_child(moov, b"mvhd").unwrap().unwrap().body, "mvhd").unwrap();
        assert_eq!((mvhd.timescale, mvhd.duration), (MEDIA_TIMESCALE, 1000 + 4 * 512));
        let trak = require(moov, b"trak", "moov").unwrap().body;
        let elst = find_child(find_child(trak, b"edts").unwrap().unwrap().body, b"elst").unwrap().unwrap();
        assert_eq!(elst.body[4..], words(&[2, 1000, u32::MAX, 0x0001_0000, 2048, 0, 0x0001_0000]));
    }

    #[test]
    fn composition_offsets_give_a_ctts() {
        let mut fragments = cfr(2, 3);
        fragments[0].composition_offsets = Some(vec![512, 1024, 0]);
        fragments[1].composition_offsets = Some(vec![0, 0, 0]);
        let bytes = fragmented_file(&fragments);
        let Plan::Fresh(fresh) = analyze(&mut IoCursor::new(&bytes), bytes.len() as u64).unwrap() else { panic!() };
        let stbl = final_stbl(&[bytes, fresh.moov].concat());
        assert_eq!(table(&stbl, b"ctts").unwrap(), [1, 512, 1, 1024, 4, 0]);
    }

    #[test]
    fn unsupported_and_broken_files_are_errors() {
        let analyze_bytes = |bytes: &[u8]| analyze(&mut IoCursor::new(bytes), bytes.len() as u64);
        let ftyp = boxed(b"ftyp", b"isom");
        assert!(matches!(analyze_bytes(&ftyp), Err(Fmp4Error::NoMoov)));
        let empty = [ftyp.clone(), initial_moov(1, true)].concat();
        assert!(matches!(analyze_bytes(&empty), Err(Fmp4Error::NoSamples)));
        let regular = [ftyp.clone(), initial_moov(1, false)].concat();
        assert!(matches!(analyze_bytes(&regular), Err(Fmp4Error::AlreadyFinal)));
        let fragment = moof_mdat(&cfr(1, 2)[0], 1);
        let no_mvex = [regular, fragment.clone()].concat();
        assert!(matches!(analyze_bytes(&no_mvex), Err(Fmp4Error::NotFragmented(_))));
        let two_tracks = [ftyp.clone(), initial_moov(2, true), fragment].concat();
        assert!(matches!(analyze_bytes(&two_tracks), Err(Fmp4Error::Unsupported(_))));
        let file = fragmented_file(&cfr(2, 2));
        assert!(matches!(analyze_bytes(&file[..file.len() - 3]), Err(Fmp4Error::Incomplete { .. })));
    }

    /// A tiny deterministic generator for the garbage test.
    fn next(seed: &mut u64) -> u64 {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        *seed
    }

    #[test]
    fn garbage_never_panics() {
        let mut fragments = cfr(3, 3);
        fragments[1].composition_offsets = Some(vec![1, 2, 3]);
        let file = fragmented_file(&fragments);
        let check = |bytes: &[u8]| {
            let _ = analyze(&mut IoCursor::new(bytes), bytes.len() as u64);
            let _ = complete_fragments_end(&mut IoCursor::new(bytes), bytes.len() as u64).unwrap();
        };
        for cut in 0..file.len() {
            check(&file[..cut]);
        }
        let mut seed = 0x9e37_79b9_7f4a_7c15;
        for position in 0..file.len() {
            for value in [0x00, 0xff, 0x01, 0x80, next(&mut seed) as u8] {
                let mut bytes = file.clone();
                bytes[position] = value;
                check(&bytes);
            }
        }
        for _ in 0..2000 {
            let mut bytes = file.clone();
            for _ in 0..1 + next(&mut seed) % 8 {
                let position = (next(&mut seed) % bytes.len() as u64) as usize;
                bytes[position] = next(&mut seed) as u8;
            }
            bytes.truncate(1 + (next(&mut seed) % bytes.len() as u64) as usize);
            check(&bytes);
        }
        for length in [0, 1, 7, 8, 16, 64, 1000] {
            let noise: Vec<u8> = (0..length).map(|_| next(&mut seed) as u8).collect();
            check(&noise);
        }
    }
}
