//! `dora-video-recorder`: a dora node that records Arrow camera frames into H.264/H.265 files,
//! one file per camera per session.
//!
//! Data flows `node` (dora edge) -> `pipeline` (sessions, counters) -> `recorder` (a worker
//! thread per camera) -> `encode` (FFmpeg). Everything outside `node` is plain Rust and
//! everything FFmpeg stays inside `encode`.

pub mod clip;
pub mod closing;
pub mod config;
pub mod contain;
pub mod control;
pub mod detections;
pub mod durability;
pub mod encode;
pub mod fmp4;
pub mod frame;
pub mod index;
pub mod limiter;
pub mod manifest;
pub mod manifests;
pub mod memory;
pub mod naming;
pub mod node;
pub mod overlay;
pub mod packet_ring;
pub mod pipeline;
pub mod queue;
pub mod recorder;
pub mod recovery;
pub mod report;
pub mod retention;
pub mod segments;
pub mod session;
pub mod sidecars;
pub mod stats;
pub mod storage;
pub mod timing;
pub mod trigger;
pub mod wiring;

pub use config::Config;
pub use node::{run, run_from_env, run_with_wiring};
pub use wiring::{RunSummary, Wiring};
