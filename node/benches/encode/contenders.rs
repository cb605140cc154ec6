//! The contenders of the in-process rows, each a child process measured by
//! [`crate::measure::measure`]: our pipeline (a re-exec of this binary, see [`crate::child`]), the
//! `ffmpeg` CLI at identical settings, and the reference recorder.

use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use dora_video_recorder::encode::{EncoderKind, MP4_FRAGMENT_MICROS, Quality, RateControl};

use crate::{
    CHILD_ENV, CRF, DEFAULT_X264_PRESET, FSYNC_ENV, ROOMKIT_PYTHON_ENV, ROOMKIT_SCRIPT_ENV,
    case::Case,
    measure::{Usage, measure},
    rows::{Contender, Decoded, Run},
};

/// Our pipeline at `preset`, with or without `fdatasync` per fragment (by `contender`).
pub fn run_ours(contender: Contender, case: Case, raw: &Path, work: &Path, preset: &'static str) -> Option<Run> {
    let out = work.join(format!("ours-{preset}.mp4"));
    let exe = std::env::current_exe().expect("path of this bench binary");
    let mut command = Command::new(exe);
    let fsync = if contender == Contender::OursWithoutFsync { "0" } else { "1" };
    command
        .env(CHILD_ENV, "1")
        .env(FSYNC_ENV, fsync)
        .arg(raw)
        .args([case.width, case.height, case.fps, case.frames].map(|n| n.to_string()))
        .arg(preset)
        .arg(&out);
    let (usage, _) = measure(contender, "this bench binary", command)?;
    Some(finished_run(contender, preset, usage, &out, None))
}

/// The CLI at our settings, from `input` in bgr24 ([`Contender::FfmpegCli`]) or yuv420p
/// ([`Contender::FfmpegYuv`]).
pub fn run_ffmpeg_cli(
    contender: Contender,
    case: Case,
    input: &Path,
    work: &Path,
    preset: &'static str,
) -> Option<Run> {
    let pix_fmt = if contender == Contender::FfmpegYuv { "yuv420p" } else { "bgr24" };
    let out = work.join(format!("ffmpeg-{pix_fmt}-{preset}.mp4"));
    let mut command = Command::new("ffmpeg");
    command
        .args(["-hide_banner", "-loglevel", "error", "-nostats", "-y"])
        .args(["-f", "rawvideo", "-pix_fmt", pix_fmt, "-s", &format!("{}x{}", case.width, case.height)])
        .args(["-r", &case.fps.to_string(), "-i"])
        .arg(input)
        .args(cli_output_args(case, preset))
        .arg(&out);
    let (usage, _) = measure(contender, "ffmpeg", command)?;
    Some(finished_run(contender, preset, usage, &out, None))
}

/// The CLI's output options at our settings: libx264 at `preset` and [`CRF`], our GOP, no
/// B-frames, yuv420p, our x264 parameters, fragmented MP4 with our fragment duration.
pub fn cli_output_args(case: Case, preset: &str) -> Vec<String> {
    let args = [
        "-c:v",
        "libx264",
        "-preset",
        preset,
        "-crf",
        &CRF.to_string(),
        "-g",
        &case.gop_frames().to_string(),
        "-bf",
        "0",
        "-pix_fmt",
        "yuv420p",
        "-x264-params",
        &x264_params(case, preset),
        "-movflags",
        dora_video_recorder::fmp4::FRAGMENTED_MOVFLAGS,
        "-frag_duration",
        &MP4_FRAGMENT_MICROS.to_string(),
    ];
    args.map(str::to_owned).to_vec()
}

/// The `x264-params` the recorder itself passes (look-ahead, `sync-lookahead=0`, one thread per
/// core), taken from its own option list, so the CLI runs x264 at identical settings.
fn x264_params(case: Case, preset: &str) -> String {
    let quality = bench_quality(case, preset);
    let options = EncoderKind::Libx264.options(&quality);
    options.into_iter().find(|(key, _)| *key == "x264-params").map(|(_, value)| value).unwrap_or_default()
}

/// The recorder's default quality for `case` at `preset`, CRF [`CRF`].
pub fn bench_quality(case: Case, preset: &str) -> Quality {
    let mut quality = Quality::new(preset, RateControl::Crf(CRF), case.gop_frames(), f64::from(case.fps));
    if let Some(threads) = std::env::var("ENCODER_THREADS").ok().and_then(|n| n.parse().ok()) {
        quality.threads = threads;
    }
    quality
}

/// Where the reference recorder comes from.
#[derive(Debug, Clone)]
pub struct Roomkit {
    /// A Python with PyAV and roomkit.
    pub python: PathBuf,
    /// `scripts/roomkit_pyav.py` or its override.
    pub script: PathBuf,
}

/// The reference recorder from [`ROOMKIT_PYTHON_ENV`] and [`ROOMKIT_SCRIPT_ENV`], if the first is set.
pub fn roomkit_setup() -> Option<Roomkit> {
    let python = from_workspace_root(PathBuf::from(std::env::var_os(ROOMKIT_PYTHON_ENV)?));
    let script = std::env::var_os(ROOMKIT_SCRIPT_ENV)
        .map_or_else(|| e2e::workspace_root().join("scripts/roomkit_pyav.py"), |path| from_workspace_root(path.into()));
    Some(Roomkit { python, script })
}

/// `cargo bench` runs this binary in the package folder, so a relative path such as
/// `.bench-venv/bin/python` is taken from the workspace root, where the command is typed. A bare
/// name (`python3`) is left to the `PATH` lookup.
fn from_workspace_root(path: PathBuf) -> PathBuf {
    if path.is_relative() && path.components().count() > 1 && !path.exists() {
        e2e::workspace_root().join(path)
    } else {
        path
    }
}

/// The reference recorder at its own defaults, its file in a fresh folder.
pub fn run_roomkit(case: Case, raw: &Path, work: &Path, roomkit: &Roomkit) -> Option<Run> {
    let out = work.join("roomkit");
    // A fresh folder per case: the recorder names files by session and second.
    if out.exists() {
        fs::remove_dir_all(&out).expect("clear the roomkit output folder");
    }
    let mut command = Command::new(&roomkit.python);
    let program = roomkit.python.display().to_string();
    command
        .arg(&roomkit.script)
        .arg("--raw")
        .arg(raw)
        .args(["--size", &format!("{}x{}", case.width, case.height), "--fps", &case.fps.to_string()])
        .args(["--codec", "libx264", "--out"])
        .arg(&out);
    let (usage, stdout) = measure(Contender::Roomkit, &program, command)?;
    let files = e2e::files_in(&out);
    let [file] = files.as_slice() else {
        println!("{}: FAILED (no output file in {})", Contender::Roomkit.name(), out.display());
        return None;
    };
    let in_loop = json_number(&stdout, "seconds")
        .map(|secs| format!("roomkit's own in-loop time: {secs:.2} s (start-up and imports excluded)"));
    let note = Some(format!(
        "roomkit runs libx264 at its own defaults: preset medium, keyint 250, B-frames, plain MP4{}",
        in_loop.map(|t| format!("; {t}")).unwrap_or_default()
    ));
    Some(finished_run(Contender::Roomkit, DEFAULT_X264_PRESET, usage, file, note))
}

/// The row of a run that wrote `out`: its size and what ffprobe decodes.
pub fn finished_run(contender: Contender, preset: &'static str, usage: Usage, out: &Path, note: Option<String>) -> Run {
    let bytes = fs::metadata(out).map(|m| m.len()).unwrap_or(0);
    let probe = Decoded::of(out);
    let wall_range_secs = (usage.wall_secs, usage.wall_secs);
    Run { contender, preset, usage, wall_range_secs, bytes, probe, lost: None, note }
}

/// A number field of the JSON object on one of `text`'s lines.
fn json_number(text: &str, key: &str) -> Option<f64> {
    text.lines().find_map(|line| serde_json::from_str::<serde_json::Value>(line).ok()?.get(key)?.as_f64())
}
