//! `dora-video-recorder`: a dora node that records Arrow camera frames into H.264/H.265 files,
//! one file per camera per session.
//!
//! Data flows `node` (dora edge) -> `pipeline` (sessions, counters) -> `camera` (a worker
//! thread per camera) -> `encode` (FFmpeg) -> `storage` (claimed files, durability, recovery,
//! retention) and `sidecars` (frame index, detections, manifests). Everything outside `node` is
//! plain Rust and everything FFmpeg stays inside `encode`.

pub mod camera;
pub mod config;
pub mod detections;
pub mod encode;
pub mod fmp4;
pub mod frame;
pub mod limiter;
pub mod memory;
pub mod node;
pub mod pipeline;
pub mod session;
pub mod sidecars;
pub mod stats;
pub mod storage;
pub mod timing;

pub use config::Config;
pub use node::{run, run_from_env, run_with_wiring};
pub use pipeline::wiring::{RunSummary, Wiring};
