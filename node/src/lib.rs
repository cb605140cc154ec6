//! `dora-video-recorder`: a dora node that records Arrow camera frames into H.264/H.265 files,
//! one file per camera per session.
//!
//! Data flows `node` (dora edge) -> `pipeline` (sessions, counters) -> `recorder` (a worker
//! thread per camera) -> `encode` (FFmpeg). Everything outside `node` is plain Rust and
//! everything FFmpeg stays inside `encode`.

pub mod config;
pub mod control;
pub mod encode;
pub mod frame;
pub mod naming;
pub mod node;
pub mod pipeline;
pub mod recorder;
pub mod report;
pub mod session;
pub mod timing;

pub use config::Config;
pub use node::{run, run_from_env, run_with_wiring};
pub use pipeline::{RunSummary, Wiring};
