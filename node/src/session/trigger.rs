//! Detector-triggered clips (`TRIGGER=detections`): a matching detection starts a session named
//! after what started it (`person_000003`), later matches keep it going, and it ends `POST_ROLL`
//! after the last match. A state machine over detection times; the pipeline starts and stops
//! the sessions it asks for.

use crate::detections::{Detections, matches_trigger};

/// Default `TRIGGER_MIN_CONFIDENCE`.
pub const DEFAULT_MIN_CONFIDENCE: f32 = 0.5;
/// Default `POST_ROLL`, seconds.
pub const DEFAULT_POST_ROLL_SECS: f64 = 2.0;

/// What starts a clip and how long it outlives its last match.
#[derive(Debug, Clone, PartialEq)]
pub struct TriggerSettings {
    /// Labels that start a clip; empty means any label.
    pub labels: Vec<String>,
    /// Lowest confidence that counts.
    pub min_confidence: f32,
    /// How long a clip goes on after the last matching detection, nanoseconds.
    pub post_roll_nanos: u64,
}

/// The trigger's state.
#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    /// No clip of ours is recording.
    Idle,
    /// A clip is recording; it ends `post_roll` after `last_match_nanos`.
    Recording { session_serial: Option<u64>, last_match_nanos: u64 },
}

/// Starts and ends clips from detections.
#[derive(Debug, Clone)]
pub struct Trigger {
    settings: TriggerSettings,
    state: State,
    clips: u64,
}

impl Trigger {
    /// An idle trigger.
    pub fn new(settings: TriggerSettings) -> Self {
        Self { settings, state: State::Idle, clips: 0 }
    }

    /// New settings (runtime parameters): the next detection is judged by them, and a clip in
    /// progress ends by the new post-roll.
    pub fn set_settings(&mut self, settings: TriggerSettings) {
        self.settings = settings;
    }

    /// A detector's output sent at `time_nanos`. Returns the id of a clip to start when it
    /// matches and no clip is recording; a match during a clip extends it.
    pub fn on_detections(&mut self, detections: &Detections, time_nanos: u64) -> Option<String> {
        let label = matches_trigger(detections, &self.settings.labels, self.settings.min_confidence)?;
        match &mut self.state {
            State::Recording { last_match_nanos, .. } => {
                *last_match_nanos = (*last_match_nanos).max(time_nanos);
                None
            }
            State::Idle => {
                self.clips += 1;
                self.state = State::Recording { session_serial: None, last_match_nanos: time_nanos };
                Some(clip_id(&label, self.clips))
            }
        }
    }

    /// The clip just asked for became session `serial`.
    pub fn clip_started(&mut self, serial: u64) {
        if let State::Recording { session_serial, .. } = &mut self.state {
            *session_serial = Some(serial);
        }
    }

    /// If the clip's post-roll has passed at `now_nanos`: goes idle and returns the clip's
    /// session and when it ends (last match + post-roll), for the pipeline to stop it.
    pub fn expired(&mut self, now_nanos: u64) -> Option<(Option<u64>, u64)> {
        let State::Recording { session_serial, last_match_nanos } = self.state else { return None };
        let ends_at = last_match_nanos.saturating_add(self.settings.post_roll_nanos);
        if now_nanos < ends_at {
            return None;
        }
        self.state = State::Idle;
        Some((session_serial, ends_at))
    }

    /// The clip's session ended some other way (a control message): the next match starts a
    /// new clip.
    pub fn session_ended(&mut self, serial: u64) {
        if matches!(self.state, State::Recording { session_serial: Some(s), .. } if s == serial) {
            self.state = State::Idle;
        }
    }
}

/// `person_000003`: the label that started the clip (sanitized later for file names) and the
/// clip's number in this run.
fn clip_id(label: &str, number: u64) -> String {
    format!("{label}_{number:06}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detections::BoxFormat;

    const SECOND: u64 = 1_000_000_000;

    fn seen(label: &str, conf: f32) -> Detections {
        Detections { labels: vec![label.into()], conf: vec![conf], bbox: vec![[0.0; 4]], format: BoxFormat::Xyxy }
    }

    fn trigger() -> Trigger {
        Trigger::new(TriggerSettings {
            labels: vec!["person".into()],
            min_confidence: 0.5,
            post_roll_nanos: 2 * SECOND,
        })
    }

    #[test]
    fn a_match_starts_a_clip_named_after_it_and_later_matches_extend_it() {
        let mut trigger = trigger();
        assert_eq!(trigger.on_detections(&seen("car", 0.9), 0), None, "not a trigger label");
        assert_eq!(trigger.on_detections(&seen("person", 0.4), 0), None, "below the confidence");
        assert_eq!(trigger.on_detections(&seen("person", 0.9), 10 * SECOND), Some("person_000001".into()));
        trigger.clip_started(7);
        assert_eq!(trigger.on_detections(&seen("person", 0.9), 11 * SECOND), None, "extends the clip");
        assert_eq!(trigger.expired(12 * SECOND), None);
        assert_eq!(trigger.expired(13 * SECOND), Some((Some(7), 13 * SECOND)), "post-roll after the last match");
        assert_eq!(trigger.on_detections(&seen("person", 0.9), 20 * SECOND), Some("person_000002".into()));
    }

    #[test]
    fn a_clip_stopped_by_control_lets_the_next_match_start_a_new_one() {
        let mut trigger = trigger();
        trigger.on_detections(&seen("person", 0.9), 0);
        trigger.clip_started(3);
        trigger.session_ended(4);
        assert_eq!(trigger.on_detections(&seen("person", 0.9), SECOND), None, "another session ended: still ours");
        trigger.session_ended(3);
        assert_eq!(trigger.on_detections(&seen("person", 0.9), SECOND), Some("person_000002".into()));
    }

    #[test]
    fn new_settings_judge_the_next_detection_and_end_a_running_clip_by_the_new_post_roll() {
        let mut trigger = trigger();
        assert_eq!(trigger.on_detections(&seen("person", 0.9), 0), Some("person_000001".into()));
        trigger.clip_started(1);
        trigger.set_settings(TriggerSettings {
            labels: vec!["car".into()],
            min_confidence: 0.5,
            post_roll_nanos: SECOND,
        });
        assert_eq!(trigger.expired(SECOND), Some((Some(1), SECOND)), "the shorter post-roll ends it");
        assert_eq!(trigger.on_detections(&seen("person", 0.9), 2 * SECOND), None, "no longer a trigger label");
        assert_eq!(trigger.on_detections(&seen("car", 0.9), 3 * SECOND), Some("car_000002".into()));
    }

    #[test]
    fn empty_labels_match_any_label() {
        let mut trigger =
            Trigger::new(TriggerSettings { labels: vec![], min_confidence: 0.0, post_roll_nanos: SECOND });
        assert_eq!(trigger.on_detections(&seen("dog", 0.1), 5), Some("dog_000001".into()));
        assert_eq!(
            trigger
                .on_detections(&Detections { labels: vec![], conf: vec![], bbox: vec![], format: BoxFormat::Xyxy }, 6),
            None
        );
    }
}
