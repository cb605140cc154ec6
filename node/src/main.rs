//! The `dora-video-recorder` binary: logging, then the node.

use tracing_subscriber::EnvFilter;

/// Our own lines at info; dora's networking layer (zenoh) only when something is wrong.
/// `RUST_LOG` overrides it.
const DEFAULT_LOG_FILTER: &str = "info,zenoh=error";

/// The variable that turns backtraces of `eyre` reports (and `std::backtrace::Backtrace::capture`)
/// on or off, ahead of `RUST_BACKTRACE`, which keeps governing panics.
const LIBRARY_BACKTRACE_VAR: &str = "RUST_LIB_BACKTRACE";

fn main() -> eyre::Result<()> {
    // dora's `recv_timeout` reports every idle tick (0.1 s) as an error event built from an
    // `eyre` report's Debug text. With `RUST_BACKTRACE=1` in the environment (dora passes the
    // user's on to its nodes) each one captured and symbolized a backtrace: CPU at every idle
    // tick, and about 40 MB of debug info parsed and kept resident for the whole run. Panics keep
    // their backtraces. Set before any thread starts, as `set_var` requires.
    if std::env::var_os(LIBRARY_BACKTRACE_VAR).is_none() {
        // SAFETY: single-threaded here: nothing has spawned a thread or reads the environment.
        unsafe { std::env::set_var(LIBRARY_BACKTRACE_VAR, "0") };
    }
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_LOG_FILTER)))
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
    dora_video_recorder::memory::return_large_buffers_to_the_system();
    dora_video_recorder::run_from_env().map(drop)
}
