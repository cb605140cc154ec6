//! Frames a camera sent (its `SEND_LOG`, read by `e2e::read_send_log`) against what its files
//! hold, and the rate it sent them at.

use std::{
    path::Path,
    time::{SystemTime, UNIX_EPOCH},
};

use e2e::SentFrame;

use crate::flow::Finished;

/// Frames a camera sent that are not in its recordings. `tail`: its last frames, sent after the
/// last frame the files hold (seen when a camera exits or the dataflow stops, at any load); the
/// rest are `dropped`: missing before that point, or counted as dropped by the recorder's log.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Losses {
    /// Missing before the last frame the files hold, or counted by the recorder.
    pub dropped: u64,
    /// The camera's last frames, after the last frame the files hold.
    pub tail: u64,
    /// The index of the first frame missing before the last recorded one, if the index tells.
    pub first_dropped: Option<u64>,
}

impl Losses {
    /// The losses of one camera: its send log against the `frame_index` column of its files'
    /// frame index (`NAME.frames.csv`) and the frames ffprobe decodes; without an index, every
    /// missing frame counts as dropped.
    pub fn of_camera(sent: &[SentFrame], files: &[&Finished], frames_in_files: u64) -> Self {
        let missing_by_count = (sent.len() as u64).saturating_sub(frames_in_files);
        let logged: u64 = files.iter().map(|file| file.dropped).sum();
        let recorded: Option<Vec<u64>> =
            files.iter().map(|file| recorded_indices(&file.path)).collect::<Option<Vec<_>>>().map(|v| v.concat());
        let (tail, first_dropped) =
            match recorded.as_deref().and_then(|indices| indices.iter().max().map(|last| (indices, *last))) {
                Some((indices, last)) => {
                    let missing =
                        sent.iter().map(|frame| u64::from(frame.index)).filter(|index| !indices.contains(index));
                    let first_dropped = missing.clone().find(|index| *index < last);
                    (missing.filter(|index| *index > last).count() as u64, first_dropped)
                }
                None => (0, None),
            };
        Self { dropped: missing_by_count.saturating_sub(tail).max(logged), tail, first_dropped }
    }

    /// The losses of two cameras together.
    pub fn add(self, other: Self) -> Self {
        let first_dropped = self.first_dropped.into_iter().chain(other.first_dropped).min();
        Self { dropped: self.dropped + other.dropped, tail: self.tail + other.tail, first_dropped }
    }
}

/// The `frame_index` column of a video's frame index (`NAME.frames.csv`), if it has one.
fn recorded_indices(video: &Path) -> Option<Vec<u64>> {
    let index = video.with_extension("frames.csv");
    if !index.is_file() {
        return None;
    }
    let (header, rows) = e2e::read_csv(&index);
    header
        .iter()
        .any(|name| name == "frame_index")
        .then(|| e2e::csv_column(&header, &rows, "frame_index").iter().filter_map(|value| value.parse().ok()).collect())
}

/// Frames per second between a camera's first and last frame.
pub fn send_rate(sent: &[SentFrame]) -> f64 {
    let (Some(first), Some(last)) = (sent.first(), sent.last()) else { return 0.0 };
    match last.at.duration_since(first.at) {
        Ok(span) if !span.is_zero() => (sent.len() - 1) as f64 / span.as_secs_f64(),
        _ => 0.0,
    }
}

/// Unix seconds of `time`, to compare a sent frame with the recorder's log lines.
pub fn unix_secs(time: SystemTime) -> f64 {
    time.duration_since(UNIX_EPOCH).map_or(0.0, |since| since.as_secs_f64())
}
