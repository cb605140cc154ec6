//! A camera's worker thread: frames in through a bounded queue, encoded packets into files.
//! One protocol ([`worker::CameraWorker`], a [`worker::Job`] on a named thread) with two jobs:
//! [`session::SessionJob`] writes one camera of one session with an encoder per file;
//! [`preroll::PreRollJob`] keeps one encoder and a ring of recent packets so a file can begin
//! before its session. Both write through the same [`file::RecordingFile`].

pub mod contain;
pub mod copy;
pub mod decode;
pub mod encoding;
pub mod file;
pub mod overlay;
pub mod packet_ring;
pub mod preroll;
pub mod queue;
pub mod report;
pub mod segments;
pub mod session;
pub mod settings;
pub mod worker;

pub use settings::FileSettings;
pub use worker::{CameraWorker, DetectionMessage};
