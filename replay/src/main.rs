//! The `dora-video-replay` binary: logging, then the node.

use tracing_subscriber::EnvFilter;

/// Our own lines at info; dora's networking layer (zenoh) only when something is wrong.
/// `RUST_LOG` overrides it.
const DEFAULT_LOG_FILTER: &str = "info,zenoh=error";

fn main() -> eyre::Result<()> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_LOG_FILTER));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(false).init();
    dora_video_replay::run_from_env().map(drop)
}
