//! Detector output: written beside the video of its camera, and the trigger that starts and ends
//! clips from it.

use std::{collections::BTreeMap, time::Instant};

use super::Pipeline;
use crate::{camera::DetectionMessage, detections::Detections, sidecars::manifest::EndReason, timing::unix_nanos_now};

impl Pipeline {
    /// A detector's output on `input` (`detections` for the only camera, `NAME_detections` for
    /// camera `NAME`), sent at `sent_nanos`: written beside the video of that camera's session.
    pub fn on_detections(
        &mut self,
        input: &str,
        parsed: Result<Detections, String>,
        ids: BTreeMap<String, String>,
        sent_nanos: u64,
        now: Instant,
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
            if self.clip_mode() {
                let camera = camera.to_owned();
                return self.submit_clip_detections(&camera, session, message);
            }
            let Some(session) = session else {
                // Between sessions detections have no video to go beside; that is not an error.
                tracing::trace!(input, "detections while no session is recording");
                return Ok(());
            };
            let key = (session.serial, camera.to_owned());
            let recorder = self.recorders.get(&key).or_else(|| self.closing.route(&key, sent_nanos));
            let recorder = recorder.ok_or_else(|| format!("camera {camera} has no file open"))?;
            recorder.submit_detections(Some(session), message);
            Ok(())
        });
        if let Err(error) = routed {
            self.summary.detections_dropped += 1;
            if let Some(suppressed) = self.limiter.allow(&format!("detections/{input}"), now) {
                tracing::warn!(input, suppressed, "detections not recorded: {error}");
            }
        }
    }

    /// Feeds the trigger; starts the clip it asks for.
    fn trigger_on(&mut self, detections: &Detections, sent_nanos: u64, now: Instant) {
        let Some(trigger) = &mut self.trigger else { return };
        let Some(clip) = trigger.on_detections(detections, sent_nanos) else { return };
        tracing::info!(session = %clip, "detection matched the trigger: starting a clip");
        let serial = self.start_session(clip, sent_nanos, now);
        if let Some(trigger) = &mut self.trigger {
            trigger.clip_started(serial);
        }
    }

    /// Ends the trigger's clip once its post-roll has passed.
    pub(super) fn expire_clip(&mut self, now: Instant) {
        let Some((serial, ends_at)) = self.trigger.as_mut().and_then(|t| t.expired(unix_nanos_now())) else { return };
        if serial.is_some()
            && self.timeline.active().map(|s| s.serial) == serial
            && let Some(session) = self.timeline.stop(ends_at, now)
        {
            tracing::info!(session = %session.id, "no matching detection for POST_ROLL: ending the clip");
            self.manifests.session_ended(session.serial, EndReason::TriggerTimeout, ends_at);
        }
    }
}
