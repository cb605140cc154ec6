//! Runtime parameters (`dora param set` / `delete`): the `session` key goes through the same
//! start and stop path as control messages, the settings apply as [`Effect`] says.
//!
//! A parameter carries no send time, so it acts at the moment it **arrives**: frames sent before
//! a `session` start are not in the session, frames sent before its stop are. Between a
//! parameter and a control message acting on the same session the later arrival wins: the
//! timeline never lets a later start begin before an earlier one.

use super::{Pipeline, workers::Workers};
use crate::{
    params::{Effect, ParamChange, ParamError, Setting},
    sidecars::manifest::{EndReason, SessionCause},
    timing::Now,
};

impl Pipeline {
    /// A runtime parameter, decoded by [`crate::params::parse_param`], arrived at `now`.
    pub fn on_param(&mut self, change: Result<ParamChange, ParamError>, now: Now) {
        match change {
            Ok(ParamChange::StartSession(id)) => {
                self.auto_session = false;
                if self.timeline.active().is_some_and(|active| active.id == id) {
                    tracing::info!(session = %id, "session parameter names the session already recording: nothing changed");
                    return;
                }
                self.start_and_claim(id, now.unix_nanos, SessionCause::Parameter, now);
            }
            Ok(ParamChange::StopSession) => {
                self.auto_session = false;
                self.stop_session(now.unix_nanos, EndReason::Stop, SessionCause::Parameter, now);
            }
            Ok(ParamChange::Setting(setting)) => self.change_setting(setting),
            Err(error) => {
                self.books.summary.bad_params += 1;
                if let Some(suppressed) = self.limiter.allow(&error.limiter_key(), now.instant) {
                    tracing::warn!(suppressed, "{error}");
                }
            }
        }
    }

    fn change_setting(&mut self, setting: Setting) {
        let key = setting.key();
        let effect = setting.effect();
        if effect == Effect::Trigger && self.trigger.is_none() {
            tracing::warn!(key, "the trigger is off (TRIGGER=detections at startup turns it on): nothing changed");
            return;
        }
        let reset = setting.is_reset();
        self.overrides.set(setting);
        match effect {
            Effect::Trigger => self.apply_trigger_settings(key, reset),
            Effect::NextFile => self.apply_quality(key, reset),
            Effect::PreRoll => self.apply_pre_roll(reset),
        }
    }

    fn apply_trigger_settings(&mut self, key: &str, reset: bool) {
        let (Some(trigger), Some(base)) = (&mut self.trigger, &self.config.trigger) else { return };
        let settings = self.overrides.trigger(base);
        tracing::info!(
            key, reset, labels = ?settings.labels, min_confidence = settings.min_confidence,
            post_roll_secs = settings.post_roll_nanos as f64 / 1e9,
            "trigger setting changed: applies from the next detection (a clip in progress too)"
        );
        trigger.set_settings(settings);
    }

    fn apply_quality(&mut self, key: &str, reset: bool) {
        let quality = self.overrides.quality(&self.config.quality);
        let when = if self.workers.is_pre_roll() {
            "takes effect at the next file: with PRE_ROLL each camera's encoder restarts with it once no session is recording (its pre-roll buffer starts over)"
        } else {
            "takes effect at the next file (next session or segment); files being written keep their encoder"
        };
        tracing::info!(key, reset, preset = %quality.preset, rate = ?quality.rate, "encoder setting changed: {when}");
        self.workers.quality_changed(&quality);
        self.spawner.files.quality = quality;
    }

    fn apply_pre_roll(&mut self, reset: bool) {
        let secs = self.overrides.pre_roll_secs(self.config.pre_roll_secs);
        if self.workers.set_pre_roll(secs) {
            self.pending_pre_roll = None;
            tracing::info!(pre_roll_secs = secs, reset, "pre_roll changed: applies to the next session's files");
        } else {
            self.pending_pre_roll = Some(secs);
            self.switch_mode_when_idle();
            if self.pending_pre_roll.is_some() {
                tracing::info!(
                    pre_roll_secs = secs,
                    reset,
                    "pre_roll changed: the recording mode changes (with pre-roll each camera's encoder runs all the time) once no session is recording"
                );
            }
        }
    }

    /// Applies a pending `PRE_ROLL` that changes the recording mode once no session is
    /// recording or finishing: the old workers finish, the next frames start new ones.
    pub(super) fn switch_mode_when_idle(&mut self) {
        let Some(secs) = self.pending_pre_roll else { return };
        if !self.timeline.is_empty() || !self.workers.is_idle() {
            return;
        }
        self.pending_pre_roll = None;
        let mut old = std::mem::replace(&mut self.workers, Workers::new(secs));
        self.finishing.extend(old.finish_all());
        tracing::info!(
            pre_roll_secs = secs,
            "no session recording: pre_roll now in effect (the recording mode changed)"
        );
    }
}

#[cfg(test)]
mod tests {
    //! The pipeline with real encoders, driven like the event loop drives it (parameters cannot
    //! be scripted through dora's testing mode).

    use std::{collections::BTreeMap, path::Path, time::Duration};

    use arrow::buffer::Buffer;
    use serde_json::{Value, json};

    use super::*;
    use crate::{
        camera::report::{FileReport, FileStatus},
        config::Config,
        frame::{FrameMetadata, Payload},
        params::parse_param,
        pipeline::wiring::Wiring,
    };

    const FRAME_NANOS: u64 = 66_666_667;

    struct Run {
        pipeline: Pipeline,
        storage: std::path::PathBuf,
        clock: Now,
    }

    impl Run {
        fn new(name: &str, env: &[(&str, &str)]) -> Self {
            let storage = std::env::temp_dir().join(format!("params-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&storage);
            let mut env: BTreeMap<String, String> = env.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect();
            env.insert("STORAGE".into(), storage.display().to_string());
            env.insert("STOP_GRACE_MS".into(), "0".into());
            let config = Config::from_lookup(|key| env.get(key).cloned(), &BTreeMap::new()).unwrap();
            let wiring = Wiring::from_inputs(["image".to_owned()], "flow".into());
            crate::encode::init_ffmpeg().unwrap();
            let clock = Now::read();
            Self { pipeline: Pipeline::new(config, wiring, clock).unwrap(), storage, clock }
        }

        /// One 64x48 frame sent now, then the clock moves a frame on.
        fn frame(&mut self) {
            let metadata = FrameMetadata {
                encoding: Some("bgr8".into()),
                width: Some(64),
                height: Some(48),
                ..FrameMetadata::default()
            };
            let data = Payload::Bytes(Buffer::from_vec(vec![90_u8; 64 * 48 * 3]));
            let sent = self.clock.unix_nanos;
            self.pipeline.on_frame("image", &metadata, sent, Ok(data), self.clock);
            self.advance(FRAME_NANOS);
        }

        fn frames(&mut self, count: usize) {
            (0..count).for_each(|_| self.frame());
        }

        fn advance(&mut self, nanos: u64) {
            self.clock.unix_nanos += nanos;
            self.clock.instant += Duration::from_nanos(nanos);
            self.pipeline.tick(self.clock);
        }

        fn param(&mut self, key: &str, value: Option<Value>) {
            self.pipeline.on_param(parse_param(key, value.as_ref()), self.clock);
        }

        /// Finishes the run; the video files and manifests by name.
        fn finish(mut self) -> (Vec<FileReport>, Vec<Value>, std::path::PathBuf) {
            self.pipeline.finish(self.clock);
            let reports = self.pipeline.take_reports(self.clock);
            let manifests = manifests_in(&self.storage);
            (reports, manifests, self.storage)
        }
    }

    fn manifests_in(dir: &Path) -> Vec<Value> {
        let mut paths: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.to_string_lossy().ends_with(".session.json"))
            .collect();
        paths.sort();
        paths.iter().map(|p| serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()).collect()
    }

    /// Finished files as (session, frames), by session id (workers finish in any order).
    fn finished(reports: &[FileReport]) -> Vec<(String, u64)> {
        let mut files: Vec<(String, u64)> = reports
            .iter()
            .filter(|r| r.status == FileStatus::Finished)
            .map(|r| (r.session_id.clone(), r.frames))
            .collect();
        files.sort();
        files
    }

    #[test]
    fn without_auto_session_nothing_records_until_the_session_parameter_and_its_deletion_ends_it() {
        let mut run = Run::new("session", &[("AUTO_SESSION", "false")]);
        run.frames(5);
        run.param("session", Some(json!("run-1")));
        run.frames(7);
        run.param("session", None);
        run.frames(4);
        let (reports, manifests, _) = run.finish();
        assert_eq!(finished(&reports), [("run-1".to_owned(), 7)], "only the frames sent between set and delete");
        assert_eq!(manifests.len(), 1);
        assert_eq!(
            (manifests[0]["started_by"].as_str(), manifests[0]["stopped_by"].as_str()),
            (Some("parameter"), Some("parameter"))
        );
        assert_eq!(manifests[0]["end_reason"], "stop");
    }

    #[test]
    fn the_run_is_one_session_by_default_and_a_session_parameter_switches_it() {
        let mut run = Run::new("switch", &[]);
        run.frames(3);
        run.param("session", Some(json!("run-2")));
        run.frames(4);
        run.param("session", Some(json!("run-2")));
        run.frames(2);
        run.param("session", Some(Value::Null));
        let (reports, manifests, _) = run.finish();
        assert_eq!(
            finished(&reports),
            [("flow".to_owned(), 3), ("run-2".to_owned(), 6)],
            "setting the same id again changes nothing"
        );
        let causes: Vec<(&str, &str, &str)> = manifests
            .iter()
            .map(|m| {
                (
                    m["session_id"].as_str().unwrap(),
                    m["started_by"].as_str().unwrap(),
                    m["stopped_by"].as_str().unwrap(),
                )
            })
            .collect();
        assert!(causes.contains(&("flow", "run_start", "parameter")), "{causes:?}");
        assert!(causes.contains(&("run-2", "parameter", "parameter")), "{causes:?}");
    }

    #[test]
    fn a_parameter_and_a_control_message_act_in_the_order_they_arrive() {
        use crate::session::control::ControlPayload;
        let mut run = Run::new("order", &[("AUTO_SESSION", "false")]);
        run.frames(2);
        run.param("session", Some(json!("p")));
        run.frames(3);
        // A `start` sent before the parameter arrived, delivered after it: the later arrival wins.
        let sent_before = run.clock.unix_nanos - 2 * FRAME_NANOS;
        let start = Ok(ControlPayload::Text("start".into()));
        run.pipeline.on_control(start, Some("c"), sent_before, run.clock);
        assert_eq!(run.pipeline.timeline.active().map(|s| s.id.as_str()), Some("c"));
        run.frames(4);
        run.param("session", None);
        assert!(run.pipeline.timeline.active().is_none(), "the parameter stops the control message's session");
        let (reports, manifests, _) = run.finish();
        assert_eq!(finished(&reports), [("c".to_owned(), 4), ("p".to_owned(), 3)]);
        let causes: Vec<(&str, &str, &str)> = manifests
            .iter()
            .map(|m| {
                let text = |key: &str| m[key].as_str().unwrap();
                (text("session_id"), text("started_by"), text("stopped_by"))
            })
            .collect();
        assert!(causes.contains(&("p", "parameter", "control_message")), "{causes:?}");
        assert!(causes.contains(&("c", "control_message", "parameter")), "{causes:?}");
    }

    #[test]
    fn a_bad_value_or_an_unknown_key_changes_nothing_and_is_counted() {
        let mut run = Run::new("bad", &[]);
        run.frames(2);
        run.param("crf", Some(json!(99)));
        run.param("session", Some(json!(42)));
        run.param("fps", Some(json!(30)));
        run.frames(2);
        assert_eq!(run.pipeline.summary().bad_params, 3);
        assert_eq!(run.pipeline.spawner.files.quality, run.pipeline.config.quality);
        let (reports, _, _) = run.finish();
        assert_eq!(finished(&reports), [("flow".to_owned(), 4)], "the session went on");
    }

    /// x264's options as it writes them into the stream (an SEI message in the first keyframe).
    fn x264_options(reports: &[FileReport], session: &str) -> String {
        let report = reports.iter().find(|r| r.status == FileStatus::Finished && r.session_id == session).unwrap();
        let bytes = std::fs::read(report.path.as_ref().unwrap()).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        let start = text.find("options: ").unwrap_or_else(|| panic!("{session}: no x264 options in the file"));
        text[start..].chars().take_while(|c| *c != '\0').collect()
    }

    #[test]
    fn encoder_settings_apply_to_the_next_file_and_return_to_the_configuration_when_deleted() {
        let mut run = Run::new("quality", &[("AUTO_SESSION", "false"), ("CODEC", "libx264")]);
        let session = |run: &mut Run, id: &str| {
            run.param("session", Some(json!(id)));
            run.frames(3);
        };
        session(&mut run, "a");
        run.param("crf", Some(json!(40)));
        run.frames(3);
        session(&mut run, "b");
        run.param("bitrate", Some(json!("200k")));
        run.param("preset", Some(json!("ultrafast")));
        session(&mut run, "c");
        run.param("bitrate", None);
        run.param("crf", None);
        run.param("preset", Some(Value::Null));
        session(&mut run, "d");
        assert_eq!(run.pipeline.spawner.files.quality, run.pipeline.config.quality);
        let (reports, _, _) = run.finish();
        let a = x264_options(&reports, "a");
        assert!(a.contains("crf=23.0"), "a file being written keeps its encoder: {a}");
        assert!(x264_options(&reports, "b").contains("crf=40.0"));
        let c = x264_options(&reports, "c");
        assert!(
            c.contains("rc=cbr") && c.contains("bitrate=200") && c.contains("subme=0"),
            "ultrafast, 200 kbit/s: {c}"
        );
        let d = x264_options(&reports, "d");
        assert!(d.contains("crf=23.0") && d.contains("subme=2"), "back to veryfast, CRF 23: {d}");
    }

    #[test]
    fn pre_roll_switches_the_recording_mode_once_no_session_records() {
        let mut run = Run::new("preroll", &[("AUTO_SESSION", "false")]);
        run.param("session", Some(json!("a")));
        run.frames(3);
        run.param("pre_roll", Some(json!(1)));
        run.frames(2);
        assert!(!run.pipeline.workers.is_pre_roll(), "session a is recording: the mode waits");
        run.param("session", None);
        run.advance(1_000_000);
        assert!(run.pipeline.workers.is_pre_roll(), "no session: pre-roll in effect");
        run.frames(10);
        run.param("crf", Some(json!(35)));
        run.frames(10);
        run.param("session", Some(json!("b")));
        run.frames(5);
        run.param("session", None);
        run.advance(1_500_000_000);
        let (reports, manifests, _) = run.finish();
        let files = finished(&reports);
        assert_eq!(files[0], ("a".to_owned(), 5));
        let (id, frames) = &files[1];
        assert_eq!(id, "b");
        assert!(*frames > 5, "b's file begins before its start: {frames} frames");
        assert!(*frames <= 15, "the encoder restarted for the new CRF: its pre-roll starts there: {frames} frames");
        assert!(x264_options(&reports, "b").contains("crf=35.0"));
        assert_eq!(manifests.len(), 2);
    }

    #[test]
    fn pre_roll_set_while_no_session_records_applies_at_once() {
        let mut run = Run::new("preroll-idle", &[("AUTO_SESSION", "false")]);
        run.param("pre_roll", Some(json!(0.5)));
        assert!(run.pipeline.workers.is_pre_roll());
        run.param("pre_roll", Some(json!(2)));
        assert!(run.pipeline.workers.is_pre_roll() && run.pipeline.pending_pre_roll.is_none(), "same mode: in place");
        run.param("pre_roll", None);
        assert!(!run.pipeline.workers.is_pre_roll(), "back to the configured 0");
        run.finish();
    }

    #[test]
    fn trigger_settings_without_a_trigger_change_nothing() {
        let mut run = Run::new("notrigger", &[]);
        run.param("trigger_labels", Some(json!("person")));
        assert_eq!(run.pipeline.overrides, crate::params::Overrides::default());
        assert_eq!(run.pipeline.summary().bad_params, 0, "a valid value, only without effect");
        run.finish();
    }
}
