//! The time from a stop to a finalized file: `dora run --stop-after` with a real timer (recorder
//! defaults: veryfast, FSYNC), from the recorder's "stop requested" log line to its "recording
//! finished" line (both RFC 3339 timestamps), and from the camera's last frame sent before that
//! stop (the camera goes on sending the ticks dora still delivers; those frames are counted apart,
//! since a stopped recording rightly leaves them out).

use std::{fs, path::Path, time::Duration};

use e2e::SentFrame;

use crate::{
    case::Case,
    flow::{CameraSpec, Dora, FlowRun, FlowSpec, Pace, fresh_dir, run_flow, write_flow},
    losses::{Losses, send_rate, unix_secs},
    rows::Decoded,
};

/// Time from a stop to a finalized file, per case size at its rate, through `dora run --stop-after`.
pub fn bench_stop_latency(dora: &Dora, work: &Path, cases: &[Case], rounds: usize, quick: bool) {
    let secs = if quick { 3 } else { 5 };
    println!(
        "\n## Stop to finalized file (`dora run --stop-after {secs}s`, real timer, recorder defaults: PRESET=veryfast, \
         FSYNC=true; median of {rounds})\n"
    );
    println!(
        "From the recorder's \"stop requested\" log line, and from the camera's last frame sent before it, to its \
         \"recording finished\" line (the file is a finalized hybrid MP4 then), and to \"recorder done\" (the node \
         exits). Dropped and missing count the frames sent before the stop.\n"
    );
    println!(
        "| camera | camera fps | frames in file | dropped | last frames missing | sent after the stop | \
         stop → finished ms (range) | last frame → finished ms | stop → recorder done ms | background CPU % |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for &case in cases {
        let mut samples: Vec<StopSample> = (0..rounds).filter_map(|_| stop_sample(dora, work, case, secs)).collect();
        samples.sort_by(|a, b| a.stop_to_finished_ms.total_cmp(&b.stop_to_finished_ms));
        let (Some(fastest), Some(slowest)) = (samples.first(), samples.last()) else { continue };
        let median = &samples[samples.len() / 2];
        println!(
            "| {}x{} @ {} | {:.1} | {} | {} | {} | {} | {:.0} ({:.0}-{:.0}) | {:.0} | {:.0} | {:.0} |",
            case.width,
            case.height,
            case.fps,
            median.camera_fps,
            median.frames,
            median.lost.dropped,
            median.lost.tail,
            median.sent_after_stop,
            median.stop_to_finished_ms,
            fastest.stop_to_finished_ms,
            slowest.stop_to_finished_ms,
            median.last_frame_to_finished_ms,
            median.stop_to_done_ms,
            median.background_share
        );
    }
}

/// One stopped run.
#[derive(Debug, Clone, Copy)]
struct StopSample {
    camera_fps: f64,
    frames: u64,
    /// Of the frames sent before the recorder logged the stop.
    lost: Losses,
    /// Frames the camera sent after that (dora still delivers queued ticks): a stopped recording
    /// rightly leaves them out.
    sent_after_stop: usize,
    stop_to_finished_ms: f64,
    last_frame_to_finished_ms: f64,
    stop_to_done_ms: f64,
    /// CPU other processes used during the run, in % of one core.
    background_share: f64,
}

fn stop_sample(dora: &Dora, work: &Path, case: Case, secs: u32) -> Option<StopSample> {
    let dir = fresh_dir(work, "stop");
    let camera = CameraSpec {
        id: "camera".to_owned(),
        width: case.width,
        height: case.height,
        pace: Pace::Hz(f64::from(case.fps)),
        max_frames: None,
    };
    write_flow(&dir, dora, &FlowSpec { cameras: vec![camera], recorder_env: vec![("FPS", case.fps.to_string())] });
    let sample = match run_flow(dora, &dir, Some(secs), Duration::from_secs(120 + u64::from(secs))) {
        Ok(flow) => stop_figures(&flow),
        Err(error) => {
            println!("stop run: FAILED ({error})");
            None
        }
    };
    fs::remove_dir_all(&dir).expect("remove a dataflow folder");
    sample
}

fn stop_figures(flow: &FlowRun) -> Option<StopSample> {
    let file = flow.finished().into_iter().next();
    let stop = flow.recorder_event("stop requested");
    let done = flow.recorder_event("recorder done");
    let (Some(file), Some(stop), Some(done)) = (file, stop, done) else {
        println!("stop run: FAILED (missing \"stop requested\", \"recording finished\" or \"recorder done\"):");
        println!("    {}", flow.log_tail());
        return None;
    };
    let (sent, sent_after_stop): (Vec<SentFrame>, Vec<SentFrame>) =
        flow.sent("camera").into_iter().partition(|frame| unix_secs(frame.at) <= stop);
    let last_frame = sent.last()?;
    let finished = file.at?;
    let frames = Decoded::of(&file.path).frames;
    Some(StopSample {
        camera_fps: send_rate(&sent),
        frames,
        lost: Losses::of_camera(&sent, &[&file], frames),
        sent_after_stop: sent_after_stop.len(),
        stop_to_finished_ms: 1000.0 * (finished - stop),
        last_frame_to_finished_ms: 1000.0 * (finished - unix_secs(last_frame.at)),
        stop_to_done_ms: 1000.0 * (done - stop),
        background_share: 100.0 * flow.background_cpu_secs / flow.wall_secs,
    })
}
