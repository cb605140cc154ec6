//! How a camera's files are written, the same for the session worker and the pre-roll worker.

use std::{path::PathBuf, sync::Once};

use super::{
    copy::{Compressed, StreamFormat, copy_container},
    queue::QueueLimits,
    segments::SegmentLimits,
};
use crate::{
    encode::{CodecRequest, Container, EncoderKind, EncoderSettings, Quality},
    timing::{FrameRate, PtsClock, TimestampMode},
};

/// The container note for depth cameras is logged once per run, not once per file.
static DEPTH_CONTAINER_NOTED: Once = Once::new();

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
    /// The lossless encoder of depth frames (`DEPTH_CODEC`).
    pub depth_encoder: EncoderKind,
    /// What happens to compressed images (`COMPRESSED`).
    pub compressed: Compressed,
}

impl FileSettings {
    /// The settings for a stream of `format`: depth is recorded losslessly (`DEPTH_CODEC`) in
    /// [`Container::DEPTH`], whatever `CODEC` and `FORMAT` say; copied JPEGs go into the
    /// container of [`copy_container`]; everything else as configured.
    pub fn for_format(&self, format: StreamFormat) -> FileSettings {
        let format = match format {
            StreamFormat::Mjpeg(_) => {
                return FileSettings { container: copy_container(self.container), ..self.clone() };
            }
            StreamFormat::Raw(format) => format,
        };
        if !format.encoding.is_depth() {
            return self.clone();
        }
        if self.container != Container::DEPTH {
            DEPTH_CONTAINER_NOTED.call_once(|| {
                tracing::info!(
                    format = self.container.extension(),
                    depth_format = Container::DEPTH.extension(),
                    "depth cameras are recorded losslessly as {} in Matroska: FORMAT={} cannot hold it with \
                     per-frame timestamps",
                    self.depth_encoder.ffmpeg_name().to_uppercase(),
                    self.container.extension()
                );
            });
        }
        FileSettings { container: Container::DEPTH, candidates: vec![self.depth_encoder], ..self.clone() }
    }

    /// Whether JPEGs are copied rather than decoded: `COMPRESSED=copy` without `OVERLAY` (boxes
    /// cannot be drawn into images that are not decoded).
    pub fn copies_jpeg(&self) -> bool {
        self.compressed == Compressed::Copy && !self.overlay
    }

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
