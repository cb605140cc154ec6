//! Test files for the storage tests: videos written by the recorder's own writer, small
//! containers with the header tags a test asks for (built byte by byte, as FFmpeg lays them out),
//! and temp folders with aged files.

#![allow(clippy::unwrap_used)]

use std::{
    fs::File,
    path::{Path, PathBuf},
    time::{Duration, SystemTime},
};

use arrow::buffer::Buffer;

use super::{
    naming::file_tags,
    ownership::{OWNER_MARK, OWNER_TAG},
};
use crate::{
    encode::{Container, EncoderKind, EncoderSettings, Quality, RateControl, VideoWriter},
    frame::{Frame, FrameFormat, PixelEncoding},
    timing::{FrameRate, PtsClock, TimestampMode},
};

/// A fresh, empty folder for one test.
pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("storage-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Sets the file's modification time `secs_ago` seconds back.
pub fn age(path: &Path, secs_ago: u64) {
    let old = SystemTime::now() - Duration::from_secs(secs_ago);
    File::options().write(true).open(path).unwrap().set_modified(old).unwrap();
}

/// Writes `bytes` to `dir/name`, last modified `secs_ago` seconds back.
pub fn write_aged(dir: &Path, name: &str, bytes: &[u8], secs_ago: u64) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    age(&path, secs_ago);
    path
}

/// A video as the recorder writes it: its own writer and muxer, the tags of [`file_tags`],
/// `frames` 64x48 grey frames at 15 fps; finished, or left as a kill leaves it (the writer
/// dropped without its trailer).
pub fn record(path: &Path, container: Container, frames: u64, finish: bool) {
    crate::encode::init_ffmpeg().unwrap();
    let fps = FrameRate::from_f64(15.0).unwrap();
    let mut clock = PtsClock::new(TimestampMode::Source, fps, container.variable_rate());
    let quality = Quality::new("ultrafast", RateControl::Crf(23), 5, 15.0);
    let settings = EncoderSettings { container, quality, fps, time_base: clock.time_base(), fsync: false };
    let format = FrameFormat { encoding: PixelEncoding::Mono8, width: 64, height: 48 };
    let tags = file_tags("run 7", "front", 1_000_000_000, 1_000_000_000);
    let duration = clock.frame_duration();
    let (mut writer, _) =
        VideoWriter::create(path, format, &[EncoderKind::Libx264], &settings, duration, &tags).unwrap();
    for i in 0..frames {
        let sent_nanos = 1_000_000_000 + i * 66_666_667;
        let data = Buffer::from_vec(vec![(i * 10 % 250) as u8; 64 * 48]);
        let frame = Frame { format, sent_nanos, data, ids: Default::default() };
        writer.write(&frame, clock.next_pts(sent_nanos)).unwrap();
    }
    if finish {
        writer.finish().unwrap();
    }
}

/// The recorder's own video of exactly `len` bytes (at least a header's worth) in the container
/// `name`'s extension names.
pub fn own_video(name: &str, len: usize) -> Vec<u8> {
    let tags = [(OWNER_TAG, OWNER_MARK)];
    let mut file = match Path::new(name).extension().and_then(|e| e.to_str()) {
        Some("mkv") => matroska(&tags),
        Some("avi") => avi(&[(b"ICMT", OWNER_MARK)]),
        _ => mp4(&tags, &[]),
    };
    assert!(file.len() <= len, "{name}: a header takes {} bytes", file.len());
    file.resize(len, 0);
    file
}

/// An ISO-BMFF box with a 32-bit size.
pub fn boxed(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
    let size = u32::try_from(body.len() + 8).unwrap();
    [size.to_be_bytes().as_slice(), kind, body].concat()
}

/// A `udta` as FFmpeg writes it with `use_metadata_tags`: a `meta` holding `tags` as `mdta` items.
pub fn udta(tags: &[(&str, &str)]) -> Vec<u8> {
    let count = u32::try_from(tags.len()).unwrap();
    let mut keys = [0u32.to_be_bytes(), count.to_be_bytes()].concat();
    let mut ilst = Vec::new();
    for (i, (name, value)) in tags.iter().enumerate() {
        keys.extend(u32::try_from(name.len() + 8).unwrap().to_be_bytes());
        keys.extend(b"mdta");
        keys.extend(name.as_bytes());
        let data = boxed(b"data", &[1u32.to_be_bytes().as_slice(), &[0; 4], value.as_bytes()].concat());
        ilst.extend(boxed(&u32::try_from(i + 1).unwrap().to_be_bytes(), &data));
    }
    let hdlr = boxed(b"hdlr", &[[0u8; 8].as_slice(), b"mdta", &[0; 13]].concat());
    let meta = boxed(b"meta", &[[0u8; 4].as_slice(), &hdlr, &boxed(b"keys", &keys), &boxed(b"ilst", &ilst)].concat());
    boxed(b"udta", &meta)
}

/// An MP4 as FFmpeg writes it with `use_metadata_tags`: `ftyp`, a `moov` whose `udta` holds
/// `tags`, then `rest` (fragments or sample data).
pub fn mp4(tags: &[(&str, &str)], rest: &[u8]) -> Vec<u8> {
    let moov = boxed(b"moov", &[boxed(b"mvhd", &[0; 100]), udta(tags)].concat());
    [boxed(b"ftyp", b"isom\0\0\0\0"), moov, rest.to_vec()].concat()
}

/// An EBML element with a one-byte size (bodies here are short).
pub fn ebml(id: u64, body: &[u8]) -> Vec<u8> {
    let id_bytes: Vec<u8> = id.to_be_bytes().into_iter().skip_while(|&b| b == 0).collect();
    [id_bytes.as_slice(), &[0x80 | u8::try_from(body.len()).unwrap()], body].concat()
}

/// A Matroska file whose header holds `tags` (names upper-cased, as FFmpeg writes them), in a
/// segment of unknown size as FFmpeg writes it live, then a cluster.
pub fn matroska(tags: &[(&str, &str)]) -> Vec<u8> {
    let simple = |name: &str, value: &str| {
        ebml(0x67c8, &[ebml(0x45a3, name.to_ascii_uppercase().as_bytes()), ebml(0x4487, value.as_bytes())].concat())
    };
    let head = ebml(0x1a45_dfa3, &ebml(0x4282, b"matroska"));
    let tag_body: Vec<u8> = tags.iter().flat_map(|(k, v)| simple(k, v)).collect();
    let tags = ebml(0x1254_c367, &ebml(0x7373, &[ebml(0x63c0, &[]), tag_body].concat()));
    let info = ebml(0x1549_a966, &[0; 8]);
    let cluster = [0x1f, 0x43, 0xb6, 0x75, 0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xe7, 0x81, 0x00];
    let segment_head = [0x18, 0x53, 0x80, 0x67, 0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff];
    [head, segment_head.to_vec(), info, tags, cluster.to_vec()].concat()
}

/// A RIFF chunk (little-endian size, body padded to even).
pub fn chunk(id: &[u8; 4], body: &[u8]) -> Vec<u8> {
    let mut out = [id.as_slice(), &u32::try_from(body.len()).unwrap().to_le_bytes(), body].concat();
    if body.len() % 2 == 1 {
        out.push(0);
    }
    out
}

/// An AVI as FFmpeg lays it out: `hdrl`, a `LIST INFO` with `info`, `JUNK`, then `movi`.
pub fn avi(info: &[(&[u8; 4], &str)]) -> Vec<u8> {
    let entries: Vec<u8> = info.iter().flat_map(|(id, value)| chunk(id, format!("{value}\0").as_bytes())).collect();
    let body = [
        b"AVI ".as_slice(),
        &chunk(b"LIST", &[b"hdrl".as_slice(), &[0; 20]].concat()),
        &chunk(b"LIST", &[b"INFO".as_slice(), &entries].concat()),
        &chunk(b"JUNK", &[0; 7]),
        &chunk(b"LIST", &[b"movi".as_slice(), &chunk(b"00dc", &[1; 9])].concat()),
    ]
    .concat();
    chunk(b"RIFF", &body)
}
