//! `dora-video-recorder`: a dora node that records Arrow camera frames into H.264/H.265 files,
//! one file per camera per session.
//!
//! Frames flow through the folders in this order:
//! - [`node`](crate::node): the dora edge, the only code that names dora types (events in,
//!   `recording` and `stats` out);
//! - `pipeline`: sessions ([`session`](crate::session) binds frames to them by send time),
//!   the camera workers of the recording mode, manifests, retention and counters;
//! - `camera`: a worker thread per camera feeding one `RecordingFile` per file;
//! - [`encode`]: FFmpeg (codec choice, conversion, encoder, muxer), nothing else uses FFmpeg;
//! - [`fmp4`]: MP4 boxes without FFmpeg (live header durations, repair, the hybrid index);
//! - `storage`: what the recorder owns in STORAGE, file claims, durability, recovery, retention;
//! - `sidecars`: what goes beside a video (frame index, detections, session manifests);
//! - `params`: runtime parameters (`dora param set`), checked with the configuration's rules.

mod camera;
mod config;
mod detections;
pub mod encode;
pub mod fmp4;
mod frame;
mod limiter;
mod memory;
mod node;
mod params;
mod pipeline;
mod session;
mod sidecars;
mod stats;
mod storage;
mod timing;

/// The recorder's files read back (what `dora-video-replay` plays): session manifests, frame
/// indexes, detections logs, and the control messages that start and stop a session.
pub mod recording {
    pub use crate::{
        detections::{BoxFormat, Detections},
        node::detections_array,
        session::control::{Control, control_text},
        sidecars::{
            detection_log::{DetectionLines, LoggedDetections, detections_path, read_detection_log},
            index::{IndexRow, IndexRows, index_path, parse_index, read_index},
            manifest::{CameraEntry, FileEntry, FileState, MANIFEST_SUFFIX, ManifestReadError, SessionManifest},
        },
    };
}

pub use camera::{
    CameraWorker, FileSettings,
    copy::Compressed,
    decode::{FrameDecoder, JpegDecoder},
    queue::{Overflow, QueueLimits},
    report::{FileReport, FileStatus},
    session::SessionJob,
};
pub use config::Config;
pub use frame::{CameraFrame, Frame, FrameFormat, ImageCodec, ImageFrame, PixelEncoding};
pub use memory::return_large_buffers_to_the_system;
pub use node::{run, run_from_env, run_with_wiring};
pub use pipeline::wiring::{RunSummary, Wiring};
pub use session::SessionRef;
pub use timing::{FrameRate, PtsClock, TimeBase, TimestampMode};
