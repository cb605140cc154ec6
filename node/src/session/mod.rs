//! Sessions: the timeline that binds frames to sessions by send time, the control messages that
//! start and stop them, and the trigger that starts clips from detections.

pub mod control;
mod timeline;
pub mod trigger;

pub use timeline::{SessionRef, Timeline, UnboundFrames};
