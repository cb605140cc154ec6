//! How a camera's files are written, the same for the session worker and the pre-roll worker.

use std::path::PathBuf;

use super::{queue::QueueLimits, segments::SegmentLimits};
use crate::{
    encode::{CodecRequest, Container, EncoderKind, EncoderSettings, Quality},
    timing::{FrameRate, PtsClock, TimestampMode},
};

/// Where a camera's files go, in which container, with which encoder settings.
#[derive(Debug, Clone)]
pub struct FileSettings {
    /// Folder for files.
    pub storage: PathBuf,
    /// Whether file names include the camera (more than one camera wired).
    pub name_camera: bool,
    /// Container.
    pub container: Container,
    /// The requested codec, reported as is.
    pub codec: CodecRequest,
    /// Encoders to open, best first (probed before the worker starts).
    pub candidates: Vec<EncoderKind>,
    /// Encoder quality.
    pub quality: Quality,
    /// Nominal frame rate.
    pub fps: FrameRate,
    /// Timestamp mode.
    pub timestamps: TimestampMode,
    /// Bounds of the queue in front of the encoder, and what a full one does.
    pub queue: QueueLimits,
    /// Whether completed fragments are synced to disk.
    pub fsync: bool,
    /// When to cut the next file of a session.
    pub segments: SegmentLimits,
    /// Whether detector boxes are drawn into the video.
    pub overlay: bool,
}

impl FileSettings {
    /// A fresh PTS clock and the encoder settings for one encoder.
    pub fn encoder_settings(&self) -> (PtsClock, EncoderSettings) {
        let clock = PtsClock::new(self.timestamps, self.fps, self.container.variable_rate());
        let settings = EncoderSettings {
            container: self.container,
            quality: self.quality.clone(),
            fps: self.fps,
            time_base: clock.time_base(),
            fsync: self.fsync,
        };
        (clock, settings)
    }
}
