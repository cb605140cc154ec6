//! Synthetic fragmented MP4 files laid out as FFmpeg writes them (`ftyp`, an initial `moov` with
//! `mvex`, `moof`+`mdat` pairs, an `mfra`), for the unit tests of this module. Sample data are
//! H.264-style NAL units with 4-byte length prefixes.

use super::boxes::tests::boxed;

/// Media timescale of the synthetic track (FFmpeg's for 15 fps).
pub(crate) const MEDIA_TIMESCALE: u32 = 15360;
/// Movie timescale of the synthetic files (FFmpeg's).
pub(crate) const MOVIE_TIMESCALE: u32 = 1000;
/// Duration of each sample in media timescale units.
pub(crate) const SAMPLE_TICKS: u32 = 512;

/// A full box payload: version, flags, then `rest`.
pub(crate) fn full(version: u8, flags: u32, rest: &[u8]) -> Vec<u8> {
    let mut out = ((u32::from(version) << 24) | flags).to_be_bytes().to_vec();
    out.extend_from_slice(rest);
    out
}

/// Big-endian words.
pub(crate) fn words(values: &[u32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_be_bytes()).collect()
}

/// One fragment: `sizes` samples of [`SAMPLE_TICKS`], the first a keyframe, optional
/// per-sample composition offsets.
pub(crate) struct Fragment {
    pub decode_time: u64,
    pub sizes: Vec<u32>,
    pub composition_offsets: Option<Vec<u32>>,
}

/// An `avc1` sample entry with an `avcC` announcing 4-byte NAL length prefixes.
pub(crate) fn avc1_entry() -> Vec<u8> {
    let mut fields = vec![0; 78];
    fields[7] = 1; // data_reference_index
    let avcc = boxed(b"avcC", &[1, 0x64, 0, 0x1f, 0xff, 0xe0, 0]);
    boxed(b"avc1", &[fields, avcc].concat())
}

/// The layout FFmpeg writes, with `tracks` video tracks whose sample entry is `entry`.
pub(crate) fn initial_moov_with(tracks: usize, mvex: bool, entry: &[u8]) -> Vec<u8> {
    let mut mvhd_tail = words(&[0x0001_0000]);
    mvhd_tail.extend([1, 0, 0, 0]);
    mvhd_tail.extend([0; 8]);
    mvhd_tail.extend(words(&[0x0001_0000, 0, 0, 0, 0x0001_0000, 0, 0, 0, 0x4000_0000]));
    mvhd_tail.extend([0; 24]);
    mvhd_tail.extend(words(&[2]));
    let mvhd = boxed(b"mvhd", &full(0, 0, &[words(&[7, 8, MOVIE_TIMESCALE, 0]), mvhd_tail].concat()));
    let mut tkhd_tail = vec![0; 16];
    tkhd_tail.extend(words(&[0x0001_0000, 0, 0, 0, 0x0001_0000, 0, 0, 0, 0x4000_0000]));
    tkhd_tail.extend(words(&[320 << 16, 240 << 16]));
    let tkhd = boxed(b"tkhd", &full(0, 3, &[words(&[7, 8, 1, 0, 0]), tkhd_tail].concat()));
    let mdhd = boxed(b"mdhd", &full(0, 0, &[words(&[7, 8, MEDIA_TIMESCALE, 0]), vec![0x55, 0xc4, 0, 0]].concat()));
    let hdlr = boxed(b"hdlr", &full(0, 0, &[words(&[0]), b"vide".to_vec(), vec![0; 12], b"Video\0".to_vec()].concat()));
    let stsd = boxed(b"stsd", &full(0, 0, &[words(&[1]), entry.to_vec()].concat()));
    let empty = |kind: &[u8; 4]| boxed(kind, &full(0, 0, &words(&[0])));
    let stsz = boxed(b"stsz", &full(0, 0, &words(&[0, 0])));
    let stbl = boxed(b"stbl", &[stsd, empty(b"stts"), empty(b"stsc"), stsz, empty(b"stco")].concat());
    let dinf = boxed(b"dinf", &boxed(b"dref", &full(0, 0, &[words(&[1]), boxed(b"url ", &full(0, 1, &[]))].concat())));
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

/// [`initial_moov_with`] an H.264 sample entry.
pub(crate) fn initial_moov(tracks: usize, mvex: bool) -> Vec<u8> {
    initial_moov_with(tracks, mvex, &avc1_entry())
}

/// The data of a sample of `size` bytes (at least 6): one NAL unit with a 4-byte length prefix,
/// an IDR slice header for a keyframe, else a non-IDR one, then bytes that never hold three
/// zeros in a row.
pub(crate) fn sample_data(size: u32, key: bool, seed: u8) -> Vec<u8> {
    let mut data = (size - 4).to_be_bytes().to_vec();
    data.push(if key { 0x65 } else { 0x41 });
    data.extend((0..size - 5).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) | 1));
    data
}

/// moof+mdat for `fragment` (data offsets count from the moof).
pub(crate) fn moof_mdat(fragment: &Fragment, sequence: u32) -> Vec<u8> {
    let build = |data_offset: u32| {
        let tfhd = boxed(b"tfhd", &full(0, 0x02_0038, &words(&[1, SAMPLE_TICKS, 0, 0x0101_0000])));
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
    let data: Vec<u8> = fragment
        .sizes
        .iter()
        .enumerate()
        .flat_map(|(i, &s)| sample_data(s, i == 0, sequence as u8 ^ i as u8))
        .collect();
    [moof, boxed(b"mdat", &data)].concat()
}

/// A whole fragmented file, without the `mfra` a clean stop writes.
pub(crate) fn killed_file(fragments: &[Fragment]) -> Vec<u8> {
    let mut file = [boxed(b"ftyp", b"isom\0\0\x02\0isomiso6"), initial_moov(1, true)].concat();
    for (i, fragment) in fragments.iter().enumerate() {
        file.extend(moof_mdat(fragment, i as u32 + 1));
    }
    file
}

/// A whole fragmented file, as a clean stop leaves it.
pub(crate) fn fragmented_file(fragments: &[Fragment]) -> Vec<u8> {
    let mut file = killed_file(fragments);
    file.extend(boxed(b"mfra", &boxed(b"mfro", &full(0, 0, &words(&[24])))));
    file
}

/// `fragments` fragments of `per_fragment` samples of [`SAMPLE_TICKS`] each, back to back.
pub(crate) fn cfr(fragments: usize, per_fragment: usize) -> Vec<Fragment> {
    (0..fragments)
        .map(|f| Fragment {
            decode_time: (f * per_fragment) as u64 * u64::from(SAMPLE_TICKS),
            sizes: (0..per_fragment).map(|s| 30 + (f * 7 + s) as u32).collect(),
            composition_offsets: None,
        })
        .collect()
}

/// Writes `bytes` to a file named `name` in a folder of this test process, named after `group`.
pub(crate) fn temp_file(group: &str, name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("fmp4-{group}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}
