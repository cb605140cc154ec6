//! Sessions and their per-camera workers: starting a session (with the latest codec probe),
//! ending it, and handing frames to the worker of their session and camera.

use std::time::Instant;

use super::Pipeline;
use crate::{
    camera::{CameraWorker, session::SessionJob},
    session::SessionRef,
    sidecars::manifest::EndReason,
};

impl Pipeline {
    /// Starts session `id` at sender time `sent_nanos` (ending the active one); returns its serial.
    pub(super) fn start_session(&mut self, id: String, sent_nanos: u64, now: Instant) -> u64 {
        let (session, ended) = self.timeline.start(id, sent_nanos, now);
        if let Some(ended) = ended {
            tracing::info!(session = %ended.id, next = %session.id, "session ended by the next start");
            self.manifests.session_ended(ended.serial, EndReason::Stop, sent_nanos);
            self.note_session_ended(ended.serial);
        }
        self.manifests.session_started(&session);
        let codec = self.codec_probe.resolve(now);
        match &codec {
            Ok(resolved) => {
                for passed_over in &resolved.passed_over {
                    let (reason, encoder) = (passed_over.reason(), resolved.encoder().ffmpeg_name());
                    if std::mem::replace(&mut self.fallback_logged, true) {
                        tracing::debug!("{reason}; using {encoder}");
                    } else {
                        tracing::warn!("{reason}; using {encoder} (logged once per run)");
                    }
                }
                tracing::info!(session = %session.id, codec = self.config.codec.name(), encoder = resolved.encoder().ffmpeg_name(), "session started");
            }
            Err(error) => {
                tracing::error!(session = %session.id, "session started but no encoder opens, nothing will be recorded: {error}")
            }
        }
        self.sessions.insert(session.serial, codec.map_err(|e| e.to_string()));
        session.serial
    }

    /// A session ended by control: a clip the trigger was recording is over.
    pub(super) fn note_session_ended(&mut self, serial: u64) {
        if let Some(trigger) = &mut self.trigger {
            trigger.session_ended(serial);
        }
    }

    pub(super) fn end_session(&mut self, session: &SessionRef) {
        let cameras: Vec<(u64, String)> =
            self.recorders.keys().filter(|(serial, _)| *serial == session.serial).cloned().collect();
        for key in cameras {
            if let Some(recorder) = self.recorders.remove(&key) {
                self.finishing.push(recorder.finish());
            }
        }
        for recorder in self.closing.take_matching(|(serial, _)| *serial == session.serial) {
            self.finishing.push(recorder.finish());
        }
        self.clips_session_ended(session.serial);
        self.sessions.remove(&session.serial);
        tracing::debug!(session = %session.id, "session ended");
    }

    pub(super) fn submit(&mut self, session: &SessionRef, camera: &str, frame: crate::frame::Frame, now: Instant) {
        let key = (session.serial, camera.to_owned());
        let dropped = match self.closing.route(&key, frame.sent_nanos) {
            Some(late) => late.submit(frame, Some(session.clone())),
            None => match self.recorder_for(session, camera, now) {
                Some(recorder) => recorder.submit(frame, Some(session.clone())),
                None => {
                    self.stats.counters(camera).dropped(1);
                    1
                }
            },
        };
        self.count_behind(camera, dropped, now);
    }

    /// `dropped` frames of `camera` were lost because its encoder is behind (already counted
    /// per camera): one rate-limited line, and the run's counter.
    pub(super) fn count_behind(&mut self, camera: &str, dropped: u64, now: Instant) {
        if dropped == 0 {
            return;
        }
        self.summary.frames_dropped += dropped;
        if let Some(suppressed) = self.limiter.allow(&format!("behind/{camera}"), now) {
            let queue = self.config.queue;
            tracing::warn!(
                camera,
                dropped,
                suppressed,
                queue_frames = queue.frames,
                queue_bytes = queue.bytes,
                "encoder is behind: queue full, oldest frames dropped; use a faster PRESET, lower FPS/size, or OVERFLOW=block"
            );
        }
    }

    /// The session's worker for `camera`, started on first use.
    fn recorder_for(&mut self, session: &SessionRef, camera: &str, now: Instant) -> Option<&CameraWorker> {
        let key = (session.serial, camera.to_owned());
        if !self.recorders.contains_key(&key) {
            let candidates = match self.sessions.get(&session.serial)? {
                Ok(resolved) => resolved.candidates.clone(),
                Err(_) => return None,
            };
            let files = self.file_settings(candidates);
            let (queue, overlay) = (files.queue, files.overlay);
            let stats = self.stats.counters(camera);
            let (job_session, job_camera) = (session.clone(), camera.to_owned());
            let make_job = move |links| SessionJob::new(job_session, job_camera, files, links);
            match CameraWorker::spawn(camera, queue, overlay, self.reports_tx.clone(), stats, make_job) {
                Ok(recorder) => {
                    self.recorders.insert(key.clone(), recorder);
                }
                Err(error) => {
                    if let Some(suppressed) = self.limiter.allow("spawn", now) {
                        tracing::error!(suppressed, "cannot start an encoder thread: {error}");
                    }
                    return None;
                }
            }
        }
        self.recorders.get(&key)
    }
}
