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
    boxes::{BoxHeader, FourCc, find_child, kind_name, read_box, walk_top_level},
    fragments::Timeline,
    moov::{InitialMoov, seconds, summarize_final_moov},
    moov_writer::complete_moov,
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
/// `movflags` [`FRAGMENTED_MOVFLAGS`](super::FRAGMENTED_MOVFLAGS), one video track, after
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
    let new_moov = complete_moov(&moov, &timeline)?;
    let outcome = HybridOutcome {
        samples: u64::try_from(timeline.samples().len()).unwrap_or(u64::MAX),
        duration_secs: seconds(timeline.media_duration(), moov.track.mdhd.timescale),
        fragments: timeline.fragments(),
        moov_bytes: u64::try_from(new_moov.len()).unwrap_or(u64::MAX),
    };
    let shortened_size = shortened_size(&moov, initial.header_len)?;
    Ok(Fresh { stale_moov, append_at, moov: new_moov, initial_moov: initial, shortened_size, retired, outcome })
}

/// Reads every `moof` into a timeline; returns it with the boxes to retire (`moof`s, `mfra`).
fn read_fragments<R: Read + Seek>(
    reader: &mut R,
    boxes: &[BoxHeader],
    moov: &InitialMoov<'_>,
) -> Result<(Timeline, Vec<BoxHeader>), Fmp4Error> {
    let mut timeline = Timeline::new(moov.fragment_defaults()?);
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

/// Box types the initial `moov` may have after its `mvex`: they become top-level boxes for a
/// while (see [`execute_fresh`]), which must be harmless.
fn is_exposable(kind: FourCc) -> bool {
    &kind == b"udta" || &kind == b"meta"
}

/// Size of the initial `moov` shortened to end right before its `mvex` (commit step 2); only
/// `udta`/`meta` may follow the `mvex`, as they become top-level boxes for a while.
fn shortened_size(moov: &InitialMoov<'_>, header_len: u64) -> Result<u64, Fmp4Error> {
    let mvex = moov.children.iter().position(|c| &c.kind == b"mvex");
    let mvex = mvex.ok_or_else(|| Fmp4Error::NotFragmented("the moov has no mvex".to_owned()))?;
    if !moov.children.iter().skip(mvex.saturating_add(1)).all(|c| is_exposable(c.kind)) {
        return Err(Fmp4Error::Unsupported("moov boxes after mvex other than udta/meta".to_owned()));
    }
    let before: usize = moov.children.iter().take(mvex).map(|c| c.whole.len()).sum();
    u64::try_from(before)
        .ok()
        .and_then(|b| b.checked_add(header_len))
        .ok_or_else(|| Fmp4Error::Malformed("moov".to_owned()))
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

#[cfg(test)]
mod tests {
    use std::io::Cursor as IoCursor;

    use super::*;
    use crate::fmp4::{
        boxes::tests::boxed,
        complete_fragments_end,
        moov::{TimedHeader, require},
        test_files::{
            MEDIA_TIMESCALE, cfr, fragmented_file, initial_moov, moof_mdat, sample_data, temp_file as temp_file_in,
            words,
        },
    };

    fn temp_file(name: &str, bytes: &[u8]) -> std::path::PathBuf {
        temp_file_in("hybrid", name, bytes)
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
        assert_eq!(
            bytes[first_sample..first_sample + 30],
            sample_data(30, true, 1),
            "chunk offsets point at sample data"
        );
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
