//! GStreamer as a player of the recorder's files (Debian's `gstreamer1.0-tools`,
//! `-plugins-base-apps`, `-plugins-good`, `-libav`; scripts/setup.sh installs them): what
//! `gst-discoverer-1.0` reports before playing (length, frame rate), and every frame a
//! `gst-launch-1.0` pipeline decodes, with the time GStreamer gives it.

use std::{path::Path, process::Command};

/// What `gst-discoverer-1.0` says about a file: what a player shows before it plays anything.
#[derive(Debug, Clone, PartialEq)]
pub struct Discovered {
    /// `Duration`, in seconds.
    pub duration: f64,
    /// The video stream's `Frame rate` as a fraction; `0/1` means "variable" (none stated).
    pub frame_rate: (u64, u64),
    /// The video stream's `Width`.
    pub width: u32,
    /// The video stream's `Height`.
    pub height: u32,
}

impl Discovered {
    /// The stated frame rate in frames per second; `None` when the file states none (`0/1`).
    pub fn fps(&self) -> Option<f64> {
        let (num, den) = self.frame_rate;
        (num > 0 && den > 0).then(|| num as f64 / den as f64)
    }
}

/// Runs `gst-discoverer-1.0 -v` on `path`. Panics if GStreamer cannot read it.
pub fn discover(path: &Path) -> Discovered {
    let output = Command::new("timeout")
        .args(["120", "gst-discoverer-1.0", "-v"])
        .arg(path)
        .output()
        .unwrap_or_else(|e| panic!("gst-discoverer-1.0 runs (scripts/setup.sh installs it): {e}"));
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success() && !text.contains("An error was encountered"),
        "gst-discoverer-1.0 cannot read {}: {text}{}",
        path.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    let field = |name: &str| {
        text.lines()
            .find_map(|line| line.trim().strip_prefix(name).map(str::trim))
            .unwrap_or_else(|| panic!("no {name} in gst-discoverer-1.0's report on {}: {text}", path.display()))
    };
    let (num, den) = field("Frame rate:").split_once('/').unwrap_or_else(|| panic!("frame rate in {text}"));
    Discovered {
        duration: clock_time(field("Duration:")).unwrap_or_else(|| panic!("a duration in {text}")),
        frame_rate: (num.parse().unwrap(), den.parse().unwrap()),
        width: field("Width:").parse().unwrap(),
        height: field("Height:").parse().unwrap(),
    }
}

/// One decoded frame as GStreamer times it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DecodedFrame {
    /// Presentation time, in seconds.
    pub pts: f64,
    /// How long it shows, in seconds (`None` when GStreamer gives it no duration).
    pub duration: Option<f64>,
}

/// What a `filesrc ! decodebin ! fakesink` pipeline played.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    /// Every decoded frame, in order.
    pub frames: Vec<DecodedFrame>,
    /// The pipeline's `ERROR`/`WARNING` lines (empty when it played cleanly to the end).
    pub problems: String,
}

impl Decoded {
    /// Where playback ends: the last frame's time plus its duration, in seconds.
    pub fn end_secs(&self) -> f64 {
        self.frames.last().map_or(0.0, |last| last.pts + last.duration.unwrap_or(0.0))
    }
}

/// Decodes every frame of `path` with GStreamer, as fast as it can (`sync=false`), and reads
/// each frame's time from the sink's `-v` messages (one `chain` line per buffer).
pub fn decode(path: &Path) -> Decoded {
    let output = Command::new("timeout")
        .args(["300", "gst-launch-1.0", "-v", "filesrc"])
        .arg(format!("location={}", path.display()))
        .args(["!", "decodebin", "!", "fakesink", "silent=false", "sync=false"])
        .output()
        .unwrap_or_else(|e| panic!("gst-launch-1.0 runs (scripts/setup.sh installs it): {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let frames = stdout.lines().filter(|line| line.contains("last-message = chain")).map(decoded_frame).collect();
    let mut problems: Vec<&str> =
        stdout.lines().chain(stderr.lines()).filter(|l| l.starts_with("ERROR") || l.starts_with("WARNING")).collect();
    if !output.status.success() && problems.is_empty() {
        problems.push("gst-launch-1.0 failed");
    }
    Decoded { frames, problems: problems.join("\n") }
}

/// Reads `pts: 0:00:01.000000000, duration: 0:00:00.066666666` out of a fakesink `chain` line.
fn decoded_frame(line: &str) -> DecodedFrame {
    let value = |key: &str| line.split(key).nth(1).and_then(|rest| rest.split(',').next()).map(str::trim);
    DecodedFrame {
        pts: value("pts: ").and_then(clock_time).unwrap_or_else(|| panic!("a pts in {line}")),
        duration: value("duration: ").and_then(clock_time),
    }
}

/// Parses GStreamer's `H:MM:SS.nnnnnnnnn` (`none` is no time).
fn clock_time(text: &str) -> Option<f64> {
    let mut parts = text.trim().split(':');
    let (hours, minutes, seconds) = (parts.next()?, parts.next()?, parts.next()?);
    let hours: f64 = hours.parse().ok()?;
    let minutes: f64 = minutes.parse().ok()?;
    let seconds: f64 = seconds.parse().ok()?;
    Some(hours * 3600.0 + minutes * 60.0 + seconds)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_times_and_chain_lines_parse() {
        assert_eq!(clock_time("0:00:03.500000000"), Some(3.5));
        assert_eq!(clock_time("1:02:03.000000000"), Some(3723.0));
        assert_eq!(clock_time("none"), None);
        let line = "/GstPipeline:pipeline0/GstFakeSink:fakesink0: last-message = chain   ******* (fakesink0:sink) \
                    (115200 bytes, dts: none, pts: 0:00:01.250000000, duration: 0:00:00.066666666, offset: -1, \
                    offset_end: -1, flags: 00000000 , meta: none) 0x7f9220034120";
        let frame = decoded_frame(line);
        assert_eq!(frame.pts, 1.25);
        assert!((frame.duration.unwrap() - 0.066_666_666).abs() < 1e-12);
    }
}
