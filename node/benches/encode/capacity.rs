//! How many 640x480@15 and 1280x720@30 test-pattern cameras one recorder sustains, through
//! `dora run` with real timers (recorder defaults: veryfast, FSYNC): N camera nodes each sending a
//! fixed number of frames (8 s of frames), N = 1, 2, ... up to 6, stopping at the first N where
//! frames are dropped or the cameras could not keep their rate (then the offered load is no longer
//! N cameras at that rate: the machine is saturated).

use std::{fs, path::Path, time::Duration};

use crate::{
    flow::{
        CAMERA_LOOP_FRAMES, CameraSpec, Dora, Finished, FlowRun, FlowSpec, NodeUsage, Pace, fresh_dir, run_flow,
        write_flow,
    },
    losses::{Losses, send_rate},
    rows::Decoded,
};

/// How many cameras of each kind one recorder sustains through `dora run` with real timers.
pub fn bench_camera_capacity(dora: &Dora, work: &Path, quick: bool) {
    let (secs, max_cameras) = if quick { (3, 2) } else { (8, 6) };
    println!(
        "\n## Cameras one recorder sustains ({}; real timers, {secs} s of frames per camera, recorder defaults: \
         PRESET=veryfast, FSYNC=true)",
        dora.version
    );
    println!(
        "N test-pattern cameras (bgr8, `MAX_FRAMES` = {secs} s of frames, a loop of {CAMERA_LOOP_FRAMES} pre-drawn \
         frames) into one recorder, N = 1, 2, ... up to \
         {max_cameras}; a run fails when frames are dropped, or when a camera could not keep 90% of its rate \
         (the machine is saturated). Dropped: frames missing before the last one a file holds, or counted by the \
         recorder; last frames missing: a camera's final frames, missing at any load (not a capacity limit, and \
         not counted by the recorder). CPU is in % of one core over the run; \
         background is what other processes used meanwhile."
    );
    for kind in [(640, 480, 15), (1280, 720, 30)] {
        capacity_series(dora, work, kind, secs, max_cameras);
    }
}

/// N cameras of one kind at a time, until a run fails.
fn capacity_series(dora: &Dora, work: &Path, (width, height, fps): (u32, u32, u32), secs: u32, max_cameras: u32) {
    println!("\n### {width}x{height} @ {fps} fps\n");
    println!(
        "| cameras | frames sent | frames in files | dropped | last frames missing | slowest camera fps | \
         recorder CPU % | cameras CPU % | background CPU % | recorder peak RSS MB | wall s |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let mut sustained = 0;
    let mut verdict = format!("no failure up to the cap of {max_cameras}");
    for count in 1..=max_cameras {
        let cameras = (1..=count)
            .map(|n| CameraSpec {
                id: format!("cam{n}"),
                width,
                height,
                pace: Pace::Hz(f64::from(fps)),
                max_frames: Some(secs * fps),
            })
            .collect();
        let Some(outcome) = capacity_run(dora, work, cameras, fps) else {
            verdict = format!("the run with {count} cameras failed");
            break;
        };
        outcome.print_row(count);
        if let Some(problem) = outcome.problem(fps) {
            verdict = format!("with {count}: {problem}");
            break;
        }
        sustained = count;
    }
    println!("\none recorder sustains {sustained} camera(s) of {width}x{height} @ {fps} fps here ({verdict})");
}

/// One run of the camera series.
#[derive(Debug)]
struct CapacityOutcome {
    sent: u64,
    recorded: u64,
    /// Frames sent but not in their camera's files, summed over cameras.
    lost: Losses,
    slowest_fps: f64,
    recorder: NodeUsage,
    cameras_cpu_secs: f64,
    /// CPU other processes (not dora and its nodes) used during the run.
    background_cpu_secs: f64,
    wall_secs: f64,
}

impl CapacityOutcome {
    fn print_row(&self, cameras: u32) {
        let share = |cpu: f64| 100.0 * cpu / self.wall_secs;
        println!(
            "| {cameras} | {} | {} | {} | {} | {:.1} | {:.0} | {:.0} | {:.0} | {:.0} | {:.1} |",
            self.sent,
            self.recorded,
            self.lost.dropped,
            self.lost.tail,
            self.slowest_fps,
            share(self.recorder.cpu_secs),
            share(self.cameras_cpu_secs),
            share(self.background_cpu_secs),
            self.recorder.peak_rss_mb,
            self.wall_secs
        );
    }

    /// Why this run does not count as sustained, if it does not (missing last frames do not count:
    /// see [`Losses`]).
    fn problem(&self, fps: u32) -> Option<String> {
        if self.lost.dropped > 0 {
            let first = self.lost.first_dropped.map(|index| format!(", the first: #{index}")).unwrap_or_default();
            Some(format!("{} frame(s) dropped{first}", self.lost.dropped))
        } else if self.slowest_fps < 0.9 * f64::from(fps) {
            Some(format!("a camera sent only {:.1} fps of {fps}: the machine is saturated", self.slowest_fps))
        } else {
            None
        }
    }
}

fn capacity_run(dora: &Dora, work: &Path, cameras: Vec<CameraSpec>, fps: u32) -> Option<CapacityOutcome> {
    let dir = fresh_dir(work, "cameras");
    let ids: Vec<String> = cameras.iter().map(|camera| camera.id.clone()).collect();
    let frames = cameras.iter().filter_map(|camera| camera.max_frames).max().unwrap_or(0);
    let recorder_env = vec![("FPS", fps.to_string())];
    write_flow(&dir, dora, &FlowSpec { cameras, recorder_env });
    let timeout = Duration::from_secs(120 + 3 * u64::from(frames / fps.max(1)));
    let outcome = match run_flow(dora, &dir, None, timeout) {
        Ok(flow) => capacity_outcome(&flow, &ids),
        Err(error) => {
            println!("camera series: FAILED ({error})");
            None
        }
    };
    fs::remove_dir_all(&dir).expect("remove a dataflow folder");
    outcome
}

/// Frames sent and recorded per camera, and what the nodes used.
fn capacity_outcome(flow: &FlowRun, cameras: &[String]) -> Option<CapacityOutcome> {
    let Some(recorder) = flow.node_usage("recorder") else {
        println!("camera series: FAILED (no usage report of the recorder):\n    {}", flow.log_tail());
        return None;
    };
    let finished = flow.finished();
    let mut outcome = CapacityOutcome {
        sent: 0,
        recorded: 0,
        lost: Losses::default(),
        slowest_fps: f64::INFINITY,
        recorder,
        cameras_cpu_secs: 0.0,
        background_cpu_secs: flow.background_cpu_secs,
        wall_secs: flow.wall_secs,
    };
    for camera in cameras {
        let sent = flow.sent(camera);
        let files: Vec<&Finished> =
            finished.iter().filter(|file| file.camera == *camera || cameras.len() == 1).collect();
        let recorded: u64 = files.iter().map(|file| Decoded::of(&file.path).frames).sum();
        outcome.sent += sent.len() as u64;
        outcome.recorded += recorded;
        outcome.lost = outcome.lost.add(Losses::of_camera(&sent, &files, recorded));
        outcome.slowest_fps = outcome.slowest_fps.min(send_rate(&sent));
        outcome.cameras_cpu_secs += flow.node_usage(camera).map_or(0.0, |usage| usage.cpu_secs);
    }
    Some(outcome)
}
