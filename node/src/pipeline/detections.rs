//! Detector output: written beside the video of its camera, and the trigger that starts and ends
//! clips from it.

use std::collections::BTreeMap;

use super::Pipeline;
use crate::{
    camera::DetectionMessage,
    detections::Detections,
    sidecars::manifest::{EndReason, SessionCause},
    timing::Now,
};

impl Pipeline {
    /// A detector's output on `input` (`detections` for the only camera, `NAME_detections` for
    /// camera `NAME`), sent at `sent_nanos`: written beside the video of that camera's session.
    pub fn on_detections(
        &mut self,
        input: &str,
        parsed: Result<Detections, String>,
        ids: BTreeMap<String, String>,
        sent_nanos: u64,
        now: Now,
    ) {
        if let Ok(detections) = &parsed {
            self.trigger_on(detections, sent_nanos, now);
        }
        let routed = parsed.and_then(|detections| {
            let camera = self.wiring.detections_camera(input).ok_or_else(|| {
                format!("no camera for {input}: with several cameras, name the input CAMERA_detections")
            })?;
            let message = DetectionMessage { time_ns: sent_nanos, ids, detections };
            let session = self.timeline.route(sent_nanos).cloned();
            self.workers.submit_detections(camera, session, message)
        });
        if let Err(error) = routed {
            self.books.summary.detections_dropped += 1;
            if let Some(suppressed) = self.limiter.allow(&format!("detections/{input}"), now.instant) {
                tracing::warn!(input, suppressed, "detections not recorded: {error}");
            }
        }
    }

    /// Feeds the trigger; starts the clip it asks for.
    fn trigger_on(&mut self, detections: &Detections, sent_nanos: u64, now: Now) {
        let Some(trigger) = &mut self.trigger else { return };
        let Some(clip) = trigger.on_detections(detections, sent_nanos) else { return };
        tracing::info!(session = %clip, "detection matched the trigger: starting a clip");
        let serial = self.start_session(clip, sent_nanos, SessionCause::Trigger, now);
        if let Some(trigger) = &mut self.trigger {
            trigger.clip_started(serial);
        }
    }

    /// Ends the trigger's clip once its post-roll has passed.
    pub(super) fn expire_clip(&mut self, now: Now) {
        let Some((serial, ends_at)) = self.trigger.as_mut().and_then(|t| t.expired(now.unix_nanos)) else { return };
        if serial.is_some() && self.timeline.active().map(|s| s.serial) == serial {
            tracing::info!("no matching detection for POST_ROLL: ending the clip");
            self.stop_session(ends_at, EndReason::TriggerTimeout, SessionCause::Trigger, now);
        }
    }
}
