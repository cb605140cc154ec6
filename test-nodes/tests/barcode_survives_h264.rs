//! The frame-index barcode survives a real H.264 round trip: frames are encoded with the `ffmpeg`
//! CLI (libx264, CRF 23, yuv420p, as the recorder does by default; odd sizes padded to even),
//! decoded back to grayscale the way the end-to-end tests do (`-f rawvideo -pix_fmt gray`), and
//! every barcode must read back. Needs `ffmpeg` with libx264 on `PATH`.

use std::{path::PathBuf, process::Command};

use dora_recorder_test_nodes::{
    encoding::Encoding,
    pattern::{FrameFormat, decode_frame_index_strided, draw_frame},
};

/// Frame indices to write: a sequential run, then scattered values that flip many bits at once.
fn frame_indices() -> Vec<u64> {
    let scattered = (1..=16_u64).map(|n| (n * 0x2F_5A37) % (1 << 24));
    (0..16).chain(scattered).chain([0xFF_FFFF, 0]).collect()
}

/// A scratch folder unique to this test run and frame size.
fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("barcode-h264-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir is writable");
    dir
}

fn run_ffmpeg(args: &[&str]) -> Vec<u8> {
    let output = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y"])
        .args(args)
        .output()
        .expect("this test needs the ffmpeg CLI on PATH");
    assert!(output.status.success(), "ffmpeg {args:?} failed: {}", String::from_utf8_lossy(&output.stderr));
    output.stdout
}

/// Decoded luma frames of a video, and the video's (padded) width, its row stride.
struct Decoded {
    frames: Vec<Vec<u8>>,
    width: usize,
}

/// Encodes the frames as H.264 (padding odd sizes to even) and decodes them to luma.
fn h264_round_trip(format: &FrameFormat, indices: &[u64]) -> Decoded {
    let (width, height) = (format.width() as usize, format.height() as usize);
    let (padded_width, padded_height) = (width.next_multiple_of(2), height.next_multiple_of(2));
    let dir = scratch_dir(&format!("{width}x{height}"));
    let (raw_path, video_path) = (dir.join("frames.bgr"), dir.join("frames.mp4"));
    let raw: Vec<u8> = indices.iter().zip(0_u64..).flat_map(|(&index, n)| draw_frame(format, index, n * 66)).collect();
    std::fs::write(&raw_path, raw).expect("scratch file is writable");

    let size = format!("{width}x{height}");
    let pad = format!("pad={padded_width}:{padded_height}");
    let (raw_arg, video_arg) = (raw_path.to_string_lossy(), video_path.to_string_lossy());
    let input = ["-f", "rawvideo", "-pix_fmt", "bgr24", "-s", &size, "-r", "15", "-i", &raw_arg];
    let encode = ["-vf", &pad, "-c:v", "libx264", "-crf", "23", "-pix_fmt", "yuv420p"];
    run_ffmpeg(&[&input[..], &encode[..], &["-preset", "veryfast", &video_arg]].concat());
    let gray = run_ffmpeg(&["-i", &video_arg, "-f", "rawvideo", "-pix_fmt", "gray", "-"]);
    std::fs::remove_dir_all(&dir).expect("scratch dir can be removed");

    let frames = gray.chunks(padded_width * padded_height).map(<[u8]>::to_vec).collect();
    Decoded { frames, width: padded_width }
}

#[test]
fn barcode_reads_back_after_libx264_crf_23() {
    let indices = frame_indices();
    let sizes = [(48, 16), (64, 48), (71, 63), (160, 120), (641, 481)];
    for (width, height) in sizes {
        let format = FrameFormat::new(width, height, Encoding::Bgr8).expect("valid test size");
        let decoded = h264_round_trip(&format, &indices);
        assert_eq!(decoded.frames.len(), indices.len(), "{width}x{height}: frame count");
        for (frame, &index) in decoded.frames.iter().zip(&indices) {
            let read = decode_frame_index_strided(frame, decoded.width, width, height);
            assert_eq!(read, Some(index as u32), "{width}x{height}, frame index {index}");
        }
    }
}
