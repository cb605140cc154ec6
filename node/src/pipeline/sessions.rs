//! Starting and ending sessions: the latest codec probe at each start, the manifest, the
//! workers of an ended session, and the trigger's clip.

use super::Pipeline;
use crate::{
    session::SessionRef,
    sidecars::manifest::{EndReason, SessionCause},
    timing::Now,
};

impl Pipeline {
    /// Starts session `id` at sender time `sent_nanos` by `cause` (ending the active one);
    /// returns its serial.
    pub(super) fn start_session(&mut self, id: String, sent_nanos: u64, cause: SessionCause, now: Now) -> u64 {
        let (session, ended) = match cause {
            SessionCause::RunStart => self.timeline.start_run(id, sent_nanos, now.instant),
            _ => self.timeline.start(id, sent_nanos, now.instant),
        };
        if let Some(ended) = ended {
            tracing::info!(session = %ended.id, next = %session.id, "session ended by the next start");
            self.books.session_ended(ended.serial, EndReason::Stop, cause, sent_nanos);
            self.note_session_ended(ended.serial);
        }
        self.books.session_started(&session, cause);
        let codec = self.codec_probe.resolve(now.instant);
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
                tracing::info!(session = %session.id, started_by = ?cause, codec = self.config.codec.name(), encoder = resolved.encoder().ffmpeg_name(), "session started");
            }
            Err(error) => {
                tracing::error!(session = %session.id, "session started but no encoder opens, nothing will be recorded: {error}")
            }
        }
        self.workers.session_started(session.serial, codec.map_err(|e| e.to_string()));
        session.serial
    }

    /// Starts session `id` at `at_nanos` by `cause` (a control message or a parameter) and hands
    /// it the frames held unbound that were sent since.
    pub(super) fn start_and_claim(&mut self, id: String, at_nanos: u64, cause: SessionCause, now: Now) {
        self.start_session(id, at_nanos, cause, now);
        let (claimed, lost) = self.unbound.claim_from(at_nanos);
        self.books.summary.frames_unbound += lost as u64;
        for (camera, frame) in claimed {
            let session = self.timeline.route(frame.sent_nanos()).cloned();
            if session.is_some() {
                self.submit(&camera, frame, session, now);
            }
        }
    }

    /// Stops the active session at sender time `at_nanos` for `reason`, by `cause`; it is
    /// finalized once its grace has passed.
    pub(super) fn stop_session(&mut self, at_nanos: u64, reason: EndReason, cause: SessionCause, now: Now) {
        match self.timeline.stop(at_nanos, now.instant) {
            Some(session) => {
                tracing::info!(session = %session.id, stopped_by = ?cause, "session stop received; finalizing after late frames");
                self.books.session_ended(session.serial, reason, cause, at_nanos);
                self.note_session_ended(session.serial);
            }
            None => tracing::info!(stopped_by = ?cause, "stop received with no active session: ignored"),
        }
    }

    /// A session ended by control: a clip the trigger was recording is over.
    fn note_session_ended(&mut self, serial: u64) {
        if let Some(trigger) = &mut self.trigger {
            trigger.session_ended(serial);
        }
    }

    /// The session's grace has passed: its workers finish.
    pub(super) fn end_session(&mut self, session: &SessionRef) {
        let finished = self.workers.session_ended(session.serial);
        self.finishing.extend(finished);
        tracing::debug!(session = %session.id, "session ended");
    }
}
