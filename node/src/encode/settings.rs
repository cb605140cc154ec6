//! Everything an encoder needs besides the picture size.

use super::{Container, quality::Quality};
use crate::timing::{FrameRate, TimeBase};

/// Everything an encoder needs besides the picture size.
#[derive(Debug, Clone)]
pub struct EncoderSettings {
    /// Output container.
    pub container: Container,
    /// Preset, rate control, GOP.
    pub quality: Quality,
    /// Nominal frame rate (H.264 level, stream rate).
    pub fps: FrameRate,
    /// Time base of the PTS values handed to the encoder.
    pub time_base: TimeBase,
    /// Whether completed fragments are `fdatasync`ed in the background.
    pub fsync: bool,
}
