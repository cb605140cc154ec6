//! Hardware-free helper nodes for testing and demonstrating `dora-video-recorder`.
//!
//! - [`pattern`] draws test-pattern frames with a machine-readable frame-index barcode, and reads
//!   the barcode back from decoded video ([`pattern::decode_frame_index`]);
//!   [`pattern_node`] is the `dora-test-pattern` camera node around it.
//! - [`schedule`] parses a session schedule and turns elapsed time into start/stop commands;
//!   [`script_node`] is the `dora-session-script` controller node around it.

pub mod canvas;
pub mod encoding;
mod env;
mod font;
pub mod pattern;
pub mod pattern_node;
pub mod schedule;
pub mod script_node;
