//! Pre-roll recording (`PRE_ROLL` > 0): every frame of a camera goes to that camera's
//! pre-roll worker with the session it belongs to (or none), instead of a worker per session.

use std::time::Instant;

use super::Pipeline;
use crate::{
    camera::{CameraWorker, DetectionMessage, preroll::PreRollJob},
    frame::Frame,
    session::SessionRef,
};

impl Pipeline {
    /// Whether files begin before their session's start (a ring of encoded packets per camera).
    pub(super) fn clip_mode(&self) -> bool {
        self.config.pre_roll_secs > 0.0
    }

    /// A frame for `camera`'s clip recorder, bound to `session` (none: it only feeds the ring).
    /// Returns the frames dropped to make room (or this one, when no encoder opens).
    pub(super) fn submit_clip(&mut self, camera: &str, frame: Frame, session: Option<SessionRef>, now: Instant) -> u64 {
        match self.clip_recorder(camera, now) {
            Some(recorder) => recorder.submit(frame, session),
            None => {
                self.stats.counters(camera).dropped(1);
                1
            }
        }
    }

    /// A detector's output for `camera`'s file of `session`; an error when the camera has no
    /// clip recorder yet (it starts at the camera's first frame).
    pub(super) fn submit_clip_detections(
        &mut self,
        camera: &str,
        session: Option<SessionRef>,
        message: DetectionMessage,
    ) -> Result<(), String> {
        let recorder = self.clips.get(camera).ok_or_else(|| format!("camera {camera} has not sent a frame yet"))?;
        recorder.submit_detections(session, message);
        Ok(())
    }

    /// Session `serial` ended: each camera closes its file once the session's last packets are out.
    pub(super) fn clips_session_ended(&self, serial: u64) {
        for recorder in self.clips.values() {
            recorder.session_ended(serial);
        }
    }

    /// `camera` went away: its file and encoder finish; a camera that comes back starts anew.
    pub(super) fn clips_camera_gone(&self, camera: &str) {
        if let Some(recorder) = self.clips.get(camera) {
            recorder.camera_gone();
        }
    }

    /// Ends every clip recorder (their threads are joined with the other workers).
    pub(super) fn finish_clips(&mut self) {
        let recorders = std::mem::take(&mut self.clips);
        self.finishing.extend(recorders.into_values().map(CameraWorker::finish));
    }

    /// The clip recorder of `camera`, started (with the latest codec probe) on its first frame.
    fn clip_recorder(&mut self, camera: &str, now: Instant) -> Option<&CameraWorker> {
        if !self.clips.contains_key(camera) {
            let candidates = match self.codec_probe.resolve(now) {
                Ok(resolved) => resolved.candidates,
                Err(error) => {
                    if let Some(suppressed) = self.limiter.allow("clip-codec", now) {
                        tracing::error!(suppressed, "no encoder opens, nothing will be recorded: {error}");
                    }
                    return None;
                }
            };
            let files = self.file_settings(candidates);
            let (queue, overlay) = (files.queue, files.overlay);
            let pre_roll_nanos = (self.config.pre_roll_secs * 1e9) as u64;
            let stats = self.stats.counters(camera);
            let job_camera = camera.to_owned();
            let make_job = move |links| PreRollJob::new(job_camera, files, pre_roll_nanos, links);
            match CameraWorker::spawn(camera, queue, overlay, self.reports_tx.clone(), stats, make_job) {
                Ok(recorder) => {
                    self.clips.insert(camera.to_owned(), recorder);
                }
                Err(error) => {
                    tracing::error!(camera, "cannot start the camera's encoder thread: {error}");
                    return None;
                }
            }
        }
        self.clips.get(camera)
    }
}
