//! The whole-dataflow rows of the table.
//!
//! Method. A dataflow generated into a temp folder (absolute paths, no `build:` steps):
//! `dora-test-pattern` (bgr8, `MAX_FRAMES` = the case's frame count, `LOOP_FRAMES` =
//! [`crate::flow::CAMERA_LOOP_FRAMES`]: drawn once and sent in a loop, so that the camera costs a
//! copy per frame instead of 32 ms of drawing per 1080p frame, and the row measures the recorder) into
//! `dora-video-recorder` (`PRESET`, `FPS` = the case's rate, `TIMESTAMPS=frame` so the file has the
//! same duration and fragments as the in-process row, `FSYNC=true`), run with `dora run`. The wall
//! time runs from spawning `dora run` to its exit: the camera exits after its last frame, the
//! recorder finalizes and the dataflow ends. Each node runs under a wrapper, this binary again
//! (`ENCODE_BENCH_WRAP=report-file` in the node's `env`, the real binary as its argument), which
//! spawns the node, takes its CPU time and peak RSS from `wait4` exactly as for the in-process
//! rows, and writes them to the report file; the wrapper passes the exit code on, and the node
//! gets SIGTERM if the wrapper dies (`PR_SET_PDEATHSIG`). The row's CPU and RSS are the recorder's;
//! the camera's and `dora run`'s own CPU (its `wait4` figure minus its nodes') are printed below the
//! table. Lost frames: the camera's `SEND_LOG` (index and time of every frame sent) against the
//! `frame_index` column of the recorder's frame index (`NAME.frames.csv`), the frames `ffprobe`
//! decodes, and the recorder's log (`dropped=` of its "recording finished" line). They are told
//! apart: "last missing" are the camera's final frames, sent after the last frame the file holds
//! (seen at any load when the camera exits or the dataflow stops, and not counted by the recorder);
//! "dropped" are all other missing frames (the encoder falling behind). Only drops count as the
//! recorder not keeping up.
//!
//! Pacing. dora 1.1 has no sender-side backpressure: `queue_policy: backpressure` (dora-message
//! 1.1.0, `QueuePolicy`) only lets the receiving node's queue grow to 10x `queue_size` (at least
//! 100) before it drops the oldest. The recorder by default takes every frame off dora's queue at
//! once into its own bounded encoder queue (`QUEUE_FRAMES`/`QUEUE_BYTES`), dropping the oldest
//! beyond it; with `OVERFLOW=block` it waits instead, so frames pile up in dora's queue up to that
//! cap (100 frames: 600 MB at 1080p) and are dropped there. Either way nothing slows the camera
//! down to the recorder's speed, so the camera is paced by its timer instead: it starts
//! unpaced (`dora/timer/millis/1`: as fast as the camera draws frames); whenever a run drops
//! frames (in any round), the timer is set to 90% of the rate that reached the file (and at least
//! 15% slower than before), the samples taken at faster paces are discarded, and the row runs
//! again until it has a sample without drops per round (after 4 slowdowns, runs with drops are
//! kept and show them). The pace and its history are printed below the table. The camera costs CPU
//! to draw its test pattern on the same cores (its CPU per frame is printed too), and its frames
//! are not the `testsrc2` frames of the other rows, so bytes differ. Besides the wall time from
//! spawning `dora run`, the note gives the rate from the first frame sent to the finished file
//! (without dora's start-up).

use std::{fs, path::Path, time::Duration};

use crate::{
    case::{Case, CaseContext},
    flow::{CameraSpec, Dora, FlowRun, FlowSpec, Pace, fresh_dir, run_flow, write_flow},
    losses::{Losses, unix_secs},
    measure::Usage,
    rows::{Contender, Decoded, Job, Run},
};

/// Slowdowns of a dataflow row's camera before lossy runs are kept.
const MAX_SLOWDOWNS: u32 = 4;
/// A pace that lost frames is followed by this share of the rate that reached the file...
const PACE_MARGIN: f64 = 0.9;
/// ...and at least this factor below the pace before.
const PACE_STEP: f64 = 0.85;

/// The single-camera dataflow of a table row: the case's frame count at `pace`.
fn run_dataflow(dora: &Dora, case: Case, work: &Path, preset: &'static str, pace: Pace) -> Option<Run> {
    let dir = fresh_dir(work, &format!("dataflow-{preset}"));
    let camera = CameraSpec {
        id: "camera".to_owned(),
        width: case.width,
        height: case.height,
        pace,
        max_frames: Some(case.frames),
    };
    let recorder_env = vec![
        ("PRESET", preset.to_owned()),
        ("FPS", case.fps.to_string()),
        ("TIMESTAMPS", "frame".to_owned()),
        ("FSYNC", "true".to_owned()),
    ];
    write_flow(&dir, dora, &FlowSpec { cameras: vec![camera], recorder_env });
    // Generous: even 1 frame per second finishes.
    let timeout = Duration::from_secs(120 + u64::from(case.frames));
    let run = match run_flow(dora, &dir, None, timeout) {
        Ok(flow) => dataflow_row(preset, pace, &flow),
        Err(error) => {
            println!("{} ({preset}): FAILED ({error})", Contender::Dataflow.name());
            None
        }
    };
    fs::remove_dir_all(&dir).expect("remove a dataflow folder");
    run
}

/// The table row of a finished single-camera dataflow.
fn dataflow_row(preset: &'static str, pace: Pace, flow: &FlowRun) -> Option<Run> {
    let name = Contender::Dataflow.name();
    let (Some(recorder), Some(file)) = (flow.node_usage("recorder"), flow.finished().into_iter().next()) else {
        println!("{name} ({preset}): FAILED (no usage report or no finished recording):\n    {}", flow.log_tail());
        return None;
    };
    let camera_cpu_secs = flow.node_usage("camera").map_or(f64::NAN, |camera| camera.cpu_secs);
    let sent_frames = flow.sent("camera");
    let sent = sent_frames.len() as u64;
    let probe = Decoded::of(&file.path);
    let lost = Losses::of_camera(&sent_frames, &[&file], probe.frames);
    let dora_own_secs = (flow.total_cpu_secs - recorder.cpu_secs - camera_cpu_secs).max(0.0);
    let steady_fps = match (sent_frames.first().map(|first| unix_secs(first.at)), file.at) {
        (Some(first), Some(finished)) if finished > first => {
            format!("{:.1}", probe.frames as f64 / (finished - first))
        }
        _ => "-".to_owned(),
    };
    let note = format!(
        "{name} ({preset}), median round: camera {pace}, {sent} frames sent, {steady_fps} fps from the first frame \
         sent to the finished file; camera {:.1} ms CPU per frame (drawing and sending), `dora run` itself \
         {dora_own_secs:.2} CPU s, recorder's log dropped={}",
        1000.0 * camera_cpu_secs / sent.max(1) as f64,
        file.dropped
    );
    let usage = Usage {
        wall_secs: flow.wall_secs,
        cpu_secs: recorder.cpu_secs,
        peak_rss_mb: recorder.peak_rss_mb,
        background_cpu_secs: flow.background_cpu_secs,
    };
    let bytes = fs::metadata(&file.path).map(|m| m.len()).unwrap_or(0);
    let wall_range_secs = (flow.wall_secs, flow.wall_secs);
    let contender = Contender::Dataflow;
    Some(Run { contender, preset, usage, wall_range_secs, bytes, probe, lost: Some(lost), note: Some(note) })
}

/// One round of a whole-dataflow row (round `round`, from 0): a run at the job's pace. A run that
/// drops frames (missing last frames do not count: see [`Losses`]) slows the camera down (to [`PACE_MARGIN`] of the rate that reached the file, and at
/// least by [`PACE_STEP`]), discards the samples taken at faster paces and runs again until the job
/// has a sample per round so far; after [`MAX_SLOWDOWNS`] slowdowns, lossy runs are kept as they are.
pub fn dataflow_round(job: &mut Job, dora: &Dora, context: &CaseContext, round: usize) {
    while job.samples.len() <= round {
        let Some(run) = run_dataflow(dora, context.case, context.work, job.preset, job.pace) else {
            job.pace_log.push(format!("round {}: a run at {} failed", round + 1, job.pace));
            return;
        };
        let lost = run.lost.unwrap_or_default();
        job.runs += 1;
        job.tail_runs += u32::from(lost.tail > 0);
        if lost.dropped == 0 || job.slowdowns >= MAX_SLOWDOWNS {
            job.samples.push(run);
            continue;
        }
        let reached = PACE_MARGIN * run.fps();
        let slower = match job.pace {
            Pace::Hz(before) => reached.min(PACE_STEP * before),
            Pace::Unpaced => reached,
        };
        job.pace_log.push(format!(
            "round {}: {} dropped {} of {} frames ({}{:.1} fps reached the file)",
            round + 1,
            job.pace,
            lost.dropped,
            context.case.frames,
            lost.first_dropped.map(|index| format!("the first: #{index}; ")).unwrap_or_default(),
            run.fps()
        ));
        job.pace = Pace::Hz(slower);
        job.slowdowns += 1;
        job.samples.clear();
    }
}

/// How a whole-dataflow row found its camera pace.
pub fn pace_note(job: &Job) -> Option<String> {
    if job.contender != Contender::Dataflow {
        return None;
    }
    let history =
        if job.pace_log.is_empty() { "no run dropped a frame".to_owned() } else { job.pace_log.join("; then ") };
    Some(format!(
        "{} ({}): camera {} in every kept round; {history}; the camera's last frame(s) were missing from the file \
         in {} of {} runs",
        job.contender.name(),
        job.preset,
        job.pace,
        job.tail_runs,
        job.runs
    ))
}
