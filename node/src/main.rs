//! The `dora-video-recorder` binary: logging, then the node.

use tracing::{
    Event, Level, Subscriber,
    field::{Field, Visit},
};
use tracing_subscriber::{
    EnvFilter, Layer,
    fmt::MakeWriter,
    layer::{Context, SubscriberExt},
    util::SubscriberInitExt,
};

/// Our own lines at info; dora's networking layer (zenoh) only when something is wrong.
/// `RUST_LOG` overrides it. dora's #2742 diagnostic is hidden either way ([`HideDoraDiagnostic`]).
const DEFAULT_LOG_FILTER: &str = "info,zenoh=error";

/// The module of dora-node-api 1.1 that logs the #2742 diagnostic (`DoraNode::send_output_sample`
/// and its zenoh publish, in `src/node/mod.rs`): the events' tracing target.
const DORA_NODE_TARGET: &str = "dora_node_api::node";

/// How each line of that diagnostic ends.
const DORA_DIAGNOSTIC_TAG: &str = "(dora-rs/dora#2742 diagnostic)";

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
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_LOG_FILTER));
    log_subscriber(filter, std::io::stderr).init();
    dora_video_recorder::return_large_buffers_to_the_system();
    dora_video_recorder::run_from_env().map(drop)
}

/// Plain-text log lines through `filter` to `writer`, without dora's #2742 diagnostic.
fn log_subscriber<W>(filter: EnvFilter, writer: W) -> impl Subscriber + Send + Sync
where
    W: for<'writer> MakeWriter<'writer> + Send + Sync + 'static,
{
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(false)
        .finish()
        .with(HideDoraDiagnostic)
}

/// Drops the WARN lines that dora-node-api 1.1 logs on entry to each step of sending a message of
/// 4 KiB or more (its zero-copy threshold), for the node's first three such messages: "output
/// `recording`: 4104 B -> zenoh direct path (dora-rs/dora#2742 diagnostic)", then "entering zenoh
/// put of an SHM buffer", "entering report_output_sent". They exist to find where dora's
/// Windows CI wedges (dora-rs/dora#2742) and say nothing about this node or its data: noise, at
/// WARN so that a filter does not hide them. An `EnvFilter` cannot tell them apart from the real
/// warnings of the same module ("zenoh publish failed ... message dropped", "Ignoring output ...
/// not in node's output list", "type mismatch", routing fallbacks), which all have the same target
/// and level, so this matches the target, the level and the tag at the end of the message.
struct HideDoraDiagnostic;

impl<S: Subscriber> Layer<S> for HideDoraDiagnostic {
    fn event_enabled(&self, event: &Event<'_>, _context: Context<'_, S>) -> bool {
        let metadata = event.metadata();
        if metadata.target() != DORA_NODE_TARGET || *metadata.level() != Level::WARN {
            return true;
        }
        let mut message = TaggedMessage::default();
        event.record(&mut message);
        !message.tagged
    }
}

/// Whether an event's message carries [`DORA_DIAGNOSTIC_TAG`].
#[derive(Default)]
struct TaggedMessage {
    tagged: bool,
}

impl Visit for TaggedMessage {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.tagged = format!("{value:?}").contains(DORA_DIAGNOSTIC_TAG);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::{
        io,
        sync::{Arc, Mutex},
    };

    use super::*;

    /// Log output collected in memory.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl<'writer> MakeWriter<'writer> for Captured {
        type Writer = Self;

        fn make_writer(&'writer self) -> Self::Writer {
            self.clone()
        }
    }

    /// What the default filter lets through of dora's diagnostic and its real warnings.
    fn log_with_default_filter(log: impl FnOnce()) -> String {
        let captured = Captured::default();
        let subscriber = log_subscriber(EnvFilter::new(DEFAULT_LOG_FILTER), captured.clone());
        tracing::subscriber::with_default(subscriber, log);
        String::from_utf8(captured.0.lock().unwrap().clone()).unwrap()
    }

    #[test]
    fn the_dora_2742_diagnostic_is_hidden_and_real_dora_warnings_are_not() {
        let log = log_with_default_filter(|| {
            // As dora-node-api 1.1 words them, from the same target.
            tracing::warn!(
                target: "dora_node_api::node",
                "output `recording`: 5000 B -> zenoh direct path (dora-rs/dora#2742 diagnostic)"
            );
            tracing::warn!(
                target: "dora_node_api::node",
                "output `recording`: entering report_output_sent (dora-rs/dora#2742 diagnostic)"
            );
            tracing::warn!(
                target: "dora_node_api::node",
                "zenoh publish failed (timeout); message dropped (SHM payload consumed, no daemon fallback)"
            );
            tracing::warn!(target: "dora_node_api::node", "Ignoring output `bogus` not in node's output list.");
            tracing::info!(target: "dora_video_recorder::node", "recording finished");
            tracing::info!(target: "zenoh::net", "scouting");
        });
        assert!(!log.contains("2742"), "{log}");
        assert!(log.contains("zenoh publish failed (timeout); message dropped"), "{log}");
        assert!(log.contains("Ignoring output `bogus`"), "{log}");
        assert!(log.contains("recording finished"), "{log}");
        assert!(!log.contains("scouting"), "{log}");
    }

    #[test]
    fn the_tag_hides_only_warnings_of_dora_node_api() {
        let log = log_with_default_filter(|| {
            tracing::warn!(target: "dora_video_recorder::node", "a session id quoting (dora-rs/dora#2742 diagnostic)");
            tracing::error!(target: "dora_node_api::node", "failed (dora-rs/dora#2742 diagnostic)");
        });
        assert_eq!(log.matches("2742").count(), 2, "{log}");
    }
}
