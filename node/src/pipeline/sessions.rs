//! Starting and ending sessions: the latest codec probe at each start, the manifest, the
//! workers of an ended session, and the trigger's clip.

use super::Pipeline;
use crate::{session::SessionRef, sidecars::manifest::EndReason, timing::Now};

impl Pipeline {
    /// Starts session `id` at sender time `sent_nanos` (ending the active one); returns its serial.
    pub(super) fn start_session(&mut self, id: String, sent_nanos: u64, now: Now) -> u64 {
        let (session, ended) = self.timeline.start(id, sent_nanos, now.instant);
        if let Some(ended) = ended {
            tracing::info!(session = %ended.id, next = %session.id, "session ended by the next start");
            self.books.session_ended(ended.serial, EndReason::Stop, sent_nanos);
            self.note_session_ended(ended.serial);
        }
        self.books.session_started(&session);
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
                tracing::info!(session = %session.id, codec = self.config.codec.name(), encoder = resolved.encoder().ffmpeg_name(), "session started");
            }
            Err(error) => {
                tracing::error!(session = %session.id, "session started but no encoder opens, nothing will be recorded: {error}")
            }
        }
        self.workers.session_started(session.serial, codec.map_err(|e| e.to_string()));
        session.serial
    }

    /// Stops the active session at sender time `at_nanos` for `reason`; it is finalized once
    /// its grace has passed.
    pub(super) fn stop_session(&mut self, at_nanos: u64, reason: EndReason, now: Now) {
        match self.timeline.stop(at_nanos, now.instant) {
            Some(session) => {
                tracing::info!(session = %session.id, "session stop received; finalizing after late frames");
                self.books.session_ended(session.serial, reason, at_nanos);
                self.note_session_ended(session.serial);
            }
            None => tracing::info!("stop received with no active session: ignored"),
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
