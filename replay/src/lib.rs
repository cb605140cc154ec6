//! `dora-video-replay`: plays a `dora-video-recorder` recording back into a dataflow at its
//! original timing, the other half of the recorder.
//!
//! - [`config`]: the settings (`RECORDING`, `ENCODING`, `RATE`, `START`, `END`, `LOOP`), checked
//!   at startup;
//! - [`recording`]: the manifest, segments, frame indexes and detections logs, read with the
//!   recorder's own readers, as a plan on the session timeline;
//! - [`schedule`]: recorded times to monotonic-clock deadlines (plain logic);
//! - [`decode`]: FFmpeg, nothing else uses it: video files to raw frames, converted straight into
//!   dora's output buffers;
//! - [`feeder`]: one thread per camera decoding ahead of the send times;
//! - [`priority`]: the sending thread before ordinary work, the camera threads not;
//! - [`node`]: the dora edge, the only module that names dora types.

pub mod config;
pub mod decode;
pub mod feeder;
pub mod node;
pub mod priority;
pub mod recording;
pub mod schedule;

pub use config::{Config, Rate};
pub use node::{RECORDED_TIME_KEY, ReplaySummary, run, run_from_env};
pub use recording::Recording;
