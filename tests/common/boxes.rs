//! The top-level box structure of an MP4 file, and FFmpeg's verdict on decoding a file: the two
//! checks that tell a crash-safe or finalized recording from a damaged one.

use std::{
    fs::File,
    io::{Read, Seek, SeekFrom},
    path::Path,
    process::Command,
};

/// The types of an MP4 file's top-level boxes, in order. A box that runs past the end of the
/// file is listed with a `!` suffix (`mdat!`), and the walk stops there.
pub fn top_level_boxes(path: &Path) -> Vec<String> {
    let mut file = File::open(path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let mut boxes = Vec::new();
    let mut offset = 0u64;
    while offset + 8 <= len {
        let mut header = [0u8; 16];
        file.seek(SeekFrom::Start(offset)).unwrap();
        let read = file.read(&mut header).unwrap();
        let size32 = u64::from(u32::from_be_bytes([header[0], header[1], header[2], header[3]]));
        let kind = String::from_utf8_lossy(&header[4..8]).into_owned();
        let size = match size32 {
            0 => len - offset,
            1 if read >= 16 => u64::from_be_bytes(header[8..16].try_into().unwrap()),
            _ => size32,
        };
        if size < 8 || offset + size > len {
            boxes.push(format!("{kind}!"));
            break;
        }
        boxes.push(kind);
        offset += size;
    }
    boxes
}

/// What `ffmpeg -v error -i FILE -f null -` prints, with each frame kept at its own time
/// (`-fps_mode passthrough -enc_time_base -1`): empty when every frame decodes cleanly. Without
/// those the null output rounds variable-rate video (a 30 fps camera in a file whose nominal
/// rate is 15) to the nominal rate and reports two frames in one tick as "non monotonically
/// increasing dts": a message about FFmpeg's output side, not about the file.
pub fn decode_errors(path: &Path) -> String {
    let output = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(path)
        .args(["-fps_mode", "passthrough", "-enc_time_base", "-1", "-f", "null", "-"])
        .output()
        .unwrap_or_else(|e| panic!("ffmpeg runs (scripts/setup.sh installs it): {e}"));
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A container-level metadata tag as ffprobe reports it (`creation_time`, `session_id`).
pub fn format_tag(path: &Path, key: &str) -> Option<String> {
    let output = Command::new("ffprobe")
        .args(["-v", "error", "-show_entries", &format!("format_tags={key}"), "-of", "json"])
        .arg(path)
        .output()
        .unwrap_or_else(|e| panic!("ffprobe runs (scripts/setup.sh installs it): {e}"));
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).ok()?;
    json["format"]["tags"][key].as_str().map(str::to_owned)
}
