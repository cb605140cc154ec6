//! Encode benchmark: this crate's encode pipeline in-process and the whole recording dataflow under
//! `dora run`, next to the `ffmpeg` CLI (from bgr24 at identical settings, and from already-converted
//! yuv420p: the x264-only limit) and the reference recorder (roomkit's PyAV recorder), printed as
//! one markdown table per frame size with ratios; then how many test-pattern cameras one recorder
//! sustains, how long a stopped recorder takes to finalize its file, and an MJPEG camera (JPEG frames
//! decoded and encoded, ours against the CLI). It prints figures and
//! asserts nothing.
//!
//! Run: `cargo bench -p dora-video-recorder --bench encode` (or `scripts/bench.sh`, which also
//! builds the test-pattern camera and sets up the reference recorder). Environment:
//! - `BENCH_QUICK=1`: a smoke run of about a minute (one small case, short dataflow sections)
//!   instead of the full 640x480 and 1920x1080 cases (about 15 minutes on 2 cores);
//! - `BENCH_RUNS=n`: rounds per case (default 3); each row is the median round by wall time;
//! - `BENCH_MJPEG_ONLY=1`: only the MJPEG camera section ([`mjpeg`]: JPEG frames decoded and
//!   encoded, ours against the CLI);
//! - `ROOMKIT_PYTHON=path/to/python`: a Python with PyAV and roomkit (see `scripts/roomkit_pyav.py`);
//!   without it the reference recorder is skipped;
//! - `ROOMKIT_SCRIPT=path`: the reference runner, default `scripts/roomkit_pyav.py` in this workspace;
//! - `ENCODER_THREADS=n`: the recorder's setting of that name for our in-process rows and the CLI's
//!   identical x264 settings (default one per core, as in the node);
//! - `DORA=path`: the dora CLI, default `.venv/bin/dora` in this workspace (scripts/setup.sh), else
//!   `dora` on `PATH` (`e2e::dora_cli`). The dataflow rows need it and
//!   `target/release/dora-test-pattern` (`cargo build --release -p dora-recorder-test-nodes`);
//!   without either they are skipped.
//!
//! How each figure is taken is told where it is measured: [`rows`] (the in-process rows and the
//! table), [`flow`] (the whole-dataflow runs), [`dataflow`] (the dataflow rows and the camera's
//! pace), [`capacity`] (cameras per recorder), [`stop`] (stop to finalized file). The files,
//! ffprobe, the workspace and the dora CLI come from the test kit (`e2e`, tests/common).

mod capacity;
mod case;
mod child;
mod contenders;
mod dataflow;
mod flow;
mod losses;
mod measure;
mod mjpeg;
mod rows;
mod stop;

use std::{fs, path::Path, process::ExitCode};

use case::{Case, CaseContext, FULL_CASES, QUICK_CASES};

/// Set in the re-executed child that runs our pipeline alone.
const CHILD_ENV: &str = "ENCODE_BENCH_CHILD";
/// Set (to a report file) in a dataflow node's `env`: this binary then wraps the node's real binary.
const WRAP_ENV: &str = "ENCODE_BENCH_WRAP";
/// `1` runs only the small case.
const QUICK_ENV: &str = "BENCH_QUICK";
/// `1` runs only the MJPEG camera section.
const MJPEG_ONLY_ENV: &str = "BENCH_MJPEG_ONLY";
/// Rounds per case.
const RUNS_ENV: &str = "BENCH_RUNS";
const DEFAULT_RUNS: usize = 3;
/// Python interpreter with PyAV and roomkit installed.
const ROOMKIT_PYTHON_ENV: &str = "ROOMKIT_PYTHON";
/// Overrides the path of the reference runner script.
const ROOMKIT_SCRIPT_ENV: &str = "ROOMKIT_SCRIPT";
/// The preset our node defaults to.
const FAST_PRESET: &str = "veryfast";
/// libx264's own default, which the reference recorder runs at.
const DEFAULT_X264_PRESET: &str = "medium";
/// Child-process switch: `0` runs our writer without syncing fragments to disk.
const FSYNC_ENV: &str = "ENCODE_BENCH_FSYNC";
/// Same quality for everyone.
const CRF: u8 = 23;
/// Keyframe interval in seconds.
const GOP_SECS: u32 = 2;

fn main() -> ExitCode {
    if let Some(report) = std::env::var_os(WRAP_ENV) {
        return child::wrapper_main(Path::new(&report));
    }
    if std::env::var_os(CHILD_ENV).is_some() {
        return child::child_main();
    }
    if std::env::var_os(mjpeg::MJPEG_CHILD_ENV).is_some() {
        return mjpeg::mjpeg_child_main();
    }
    let quick = std::env::var(QUICK_ENV).is_ok_and(|v| v == "1");
    let cases: &[Case] = if quick { &QUICK_CASES } else { &FULL_CASES };
    let work = e2e::temp_dir("encode-bench");
    let rounds = std::env::var(RUNS_ENV).ok().and_then(|v| v.parse().ok()).filter(|n| *n > 0).unwrap_or(DEFAULT_RUNS);
    let roomkit = contenders::roomkit_setup();
    let dora = flow::dora_setup();
    println!(
        "encode bench: libx264, crf {CRF}, GOP {GOP_SECS} s, yuv420p, MP4; {} cores; median of {rounds} rounds",
        measure::cores()
    );
    if let Err(reason) = &dora {
        println!("whole-dataflow rows and sections: skipped ({reason})");
    }
    let dora = dora.ok();
    if std::env::var(MJPEG_ONLY_ENV).is_ok_and(|v| v == "1") {
        mjpeg::bench_mjpeg_camera(&work, rounds, quick);
        fs::remove_dir_all(&work).expect("remove the bench temp folder");
        return ExitCode::SUCCESS;
    }
    for &case in cases {
        let context = CaseContext::prepare(case, &work, roomkit.as_ref(), dora.as_ref());
        rows::bench_case(&context, rounds);
        context.clean_up();
    }
    if let Some(dora) = &dora {
        capacity::bench_camera_capacity(dora, &work, quick);
        stop::bench_stop_latency(dora, &work, cases, if quick { 1 } else { rounds }, quick);
    }
    mjpeg::bench_mjpeg_camera(&work, rounds, quick);
    println!("\nparent peak RSS {:.1} MB (a floor for every in-process RSS figure above)", measure::own_peak_rss_mb());
    fs::remove_dir_all(&work).expect("remove the bench temp folder");
    ExitCode::SUCCESS
}
