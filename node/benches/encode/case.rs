//! The bench's inputs: a case (frame size, rate, count) and its raw frames, generated with the
//! `ffmpeg` CLI's `testsrc2` in bgr24 and converted once to yuv420p for the x264-only row.

use std::{fs, path::Path, path::PathBuf, process::Command};

use crate::{GOP_SECS, contenders::Roomkit, flow::Dora};

/// One input: raw bgr24 frames of a size at a rate.
#[derive(Debug, Clone, Copy)]
pub struct Case {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Frames per second (nominal; the in-process rows are not paced).
    pub fps: u32,
    /// Frames in the raw file.
    pub frames: u32,
}

impl Case {
    /// The case's heading.
    pub fn label(self) -> String {
        format!("{}x{}, {} frames @ {} fps", self.width, self.height, self.frames, self.fps)
    }

    /// Bytes of one bgr24 frame.
    pub fn frame_bytes(self) -> usize {
        self.width as usize * self.height as usize * 3
    }

    /// The keyframe interval in frames.
    pub fn gop_frames(self) -> u32 {
        self.fps * GOP_SECS
    }
}

/// The full run's cases.
pub const FULL_CASES: [Case; 2] =
    [Case { width: 640, height: 480, fps: 15, frames: 450 }, Case { width: 1920, height: 1080, fps: 30, frames: 300 }];
/// `BENCH_QUICK=1`: one small case.
pub const QUICK_CASES: [Case; 1] = [Case { width: 640, height: 480, fps: 15, frames: 90 }];

/// One case's inputs and the contenders' prerequisites.
pub struct CaseContext<'a> {
    /// The case.
    pub case: Case,
    /// The raw bgr24 frames.
    pub raw: PathBuf,
    /// The same frames in yuv420p.
    pub yuv: PathBuf,
    /// The bench's temp folder.
    pub work: &'a Path,
    /// The reference recorder, when set up.
    pub roomkit: Option<&'a Roomkit>,
    /// The dora CLI and node binaries, when found.
    pub dora: Option<&'a Dora>,
}

impl<'a> CaseContext<'a> {
    /// Generates the case's frames, in bgr24 and (outside any timing) in yuv420p.
    pub fn prepare(case: Case, work: &'a Path, roomkit: Option<&'a Roomkit>, dora: Option<&'a Dora>) -> Self {
        let raw = work.join(format!("{}x{}.bgr", case.width, case.height));
        let yuv = work.join(format!("{}x{}.yuv", case.width, case.height));
        generate_frames(case, &raw);
        convert_to_yuv420p(case, &raw, &yuv);
        Self { case, raw, yuv, work, roomkit, dora }
    }

    /// Removes the case's frame files.
    pub fn clean_up(&self) {
        fs::remove_file(&self.raw).expect("remove the raw frames");
        fs::remove_file(&self.yuv).expect("remove the yuv420p frames");
    }
}

/// Writes the case's frames (`testsrc2`) to `raw` as bgr24.
pub fn generate_frames(case: Case, raw: &Path) {
    let status = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i"])
        .arg(format!("testsrc2=size={}x{}:rate={}", case.width, case.height, case.fps))
        .args(["-frames:v", &case.frames.to_string(), "-pix_fmt", "bgr24", "-f", "rawvideo"])
        .arg(raw)
        .status()
        .expect("run ffmpeg (install it: apt-get install ffmpeg)");
    assert!(status.success(), "ffmpeg could not generate the test frames");
    let expected = case.frame_bytes() as u64 * u64::from(case.frames);
    let actual = fs::metadata(raw).expect("raw frames written").len();
    assert_eq!(actual, expected, "raw frame file has the wrong size");
}

/// The x264-only input: the same frames converted once with swscale's defaults, exactly as the
/// bgr24 CLI run converts them, so the two CLI rows encode the same pictures.
pub fn convert_to_yuv420p(case: Case, raw: &Path, yuv: &Path) {
    let status = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y"])
        .args(["-f", "rawvideo", "-pix_fmt", "bgr24", "-s", &format!("{}x{}", case.width, case.height), "-i"])
        .arg(raw)
        .args(["-pix_fmt", "yuv420p", "-f", "rawvideo"])
        .arg(yuv)
        .status()
        .expect("run ffmpeg (install it: apt-get install ffmpeg)");
    assert!(status.success(), "ffmpeg could not convert the test frames to yuv420p");
    let expected = case.frame_bytes() as u64 / 2 * u64::from(case.frames);
    let actual = fs::metadata(yuv).expect("yuv420p frames written").len();
    assert_eq!(actual, expected, "yuv420p frame file has the wrong size");
}
