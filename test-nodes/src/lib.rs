//! Hardware-free helper nodes for testing and demonstrating `dora-video-recorder`.
//!
//! - [`pattern`] draws test-pattern frames with a machine-readable frame-index barcode
//!   ([`barcode`]), and reads the barcode back from decoded video ([`pattern::decode_frame_index`]);
//!   [`pattern_node`] is the `dora-test-pattern` camera node around it. [`object`] says where
//!   the pattern's occasional moving red disc is ([`object::object_at`]).
//! - [`blob`] finds saturated-red blobs in raw frames; [`blob_node`] is the `dora-blob-detector`
//!   node around it, a model-free stand-in for dora-yolo (same `bbox` output format).
//! - [`schedule`] parses a session schedule and turns elapsed time into start/stop commands;
//!   [`script_node`] is the `dora-session-script` controller node around it.

pub mod barcode;
pub mod blob;
pub mod blob_node;
pub mod canvas;
pub mod compress;
pub mod depth;
pub mod encoding;
mod env;
mod font;
pub mod object;
pub mod pattern;
pub mod pattern_node;
pub mod schedule;
pub mod script_node;
