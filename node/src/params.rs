//! Runtime parameters (`dora param set NODE KEY VALUE`, `dora param delete NODE KEY`): the
//! `session` key starts and stops sessions, the other keys change settings while the node runs.
//! Values are JSON; each is checked with the rule of its configuration key ([`crate::config`]),
//! so a value means the same at startup and at run time. No dora types: the event loop hands
//! over the key and the JSON value (`None` for a deleted key).

use serde_json::Value;

use crate::{
    config::{self, Rule},
    encode::{Quality, RateControl},
    session::trigger::TriggerSettings,
};

/// The parameter that starts a session (a JSON string, the session id) and stops it (`null`,
/// or deleting the parameter).
pub const SESSION_KEY: &str = "session";

/// The settings an operator can change at run time, as `dora param set` spells them.
pub const SETTING_KEYS: [&str; 7] =
    ["trigger_labels", "trigger_min_confidence", "post_roll", "pre_roll", "crf", "bitrate", "preset"];

/// What `session` accepts.
const SESSION_ALLOWED: &str = "a session id as a JSON string, e.g. '\"run-42\"', or null to stop";

/// At most this much of a rejected value goes into the log line (values can be 64 KB).
const MAX_LOGGED_VALUE_CHARS: usize = 120;

/// A parameter change, decoded and checked.
#[derive(Debug, Clone, PartialEq)]
pub enum ParamChange {
    /// `session` set to an id: start that session, ending the active one (as a `start` control
    /// message does).
    StartSession(String),
    /// `session` set to `null` or deleted: stop the active session.
    StopSession,
    /// A setting changed.
    Setting(Setting),
}

/// A runtime setting and its new value; `None` returns it to the configured value (the
/// parameter was deleted or set to `null`).
#[derive(Debug, Clone, PartialEq)]
pub enum Setting {
    /// `trigger_labels`: labels that start a clip (empty: any).
    TriggerLabels(Option<Vec<String>>),
    /// `trigger_min_confidence`.
    TriggerMinConfidence(Option<f32>),
    /// `post_roll`, seconds.
    PostRollSecs(Option<f64>),
    /// `pre_roll`, seconds.
    PreRollSecs(Option<f64>),
    /// `crf`: constant quality (replaces a bitrate in effect).
    Crf(Option<u8>),
    /// `bitrate`: constant bitrate in bits per second (replaces a CRF in effect).
    Bitrate(Option<u64>),
    /// `preset`.
    Preset(Option<String>),
}

/// When a changed setting takes effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// At once: the trigger's next decision uses it (a clip in progress too).
    Trigger,
    /// For files opened from now on: a file being written keeps its encoder.
    NextFile,
    /// How far back the next session's files begin.
    PreRoll,
}

impl Setting {
    /// The parameter key.
    pub fn key(&self) -> &'static str {
        match self {
            Self::TriggerLabels(_) => "trigger_labels",
            Self::TriggerMinConfidence(_) => "trigger_min_confidence",
            Self::PostRollSecs(_) => "post_roll",
            Self::PreRollSecs(_) => "pre_roll",
            Self::Crf(_) => "crf",
            Self::Bitrate(_) => "bitrate",
            Self::Preset(_) => "preset",
        }
    }

    /// When it takes effect.
    pub fn effect(&self) -> Effect {
        match self {
            Self::TriggerLabels(_) | Self::TriggerMinConfidence(_) | Self::PostRollSecs(_) => Effect::Trigger,
            Self::PreRollSecs(_) => Effect::PreRoll,
            Self::Crf(_) | Self::Bitrate(_) | Self::Preset(_) => Effect::NextFile,
        }
    }

    /// Whether it returns the setting to its configured value.
    pub fn is_reset(&self) -> bool {
        match self {
            Self::TriggerLabels(v) => v.is_none(),
            Self::TriggerMinConfidence(v) => v.is_none(),
            Self::PostRollSecs(v) | Self::PreRollSecs(v) => v.is_none(),
            Self::Crf(v) => v.is_none(),
            Self::Bitrate(v) => v.is_none(),
            Self::Preset(v) => v.is_none(),
        }
    }
}

/// Why a parameter changed nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParamError {
    /// A key the recorder does not know.
    #[error("unknown parameter {key:?}: known keys are {SESSION_KEY}, {}", SETTING_KEYS.join(", "))]
    UnknownKey {
        /// The key as set.
        key: String,
    },
    /// A value its key's rule rejects.
    #[error("invalid value {value} for parameter {key}: expected {allowed}; nothing changed")]
    InvalidValue {
        /// The key.
        key: String,
        /// The value as JSON text (shortened when long).
        value: String,
        /// What is allowed.
        allowed: String,
    },
}

impl ParamError {
    /// What its log line is rate-limited by: the key for a bad value (one of a few known keys),
    /// one bucket for every unknown key (their number is unbounded).
    pub fn limiter_key(&self) -> String {
        match self {
            Self::UnknownKey { .. } => "param/unknown".to_owned(),
            Self::InvalidValue { key, .. } => format!("param/{key}"),
        }
    }
}

/// Decodes parameter `key` set to `value` (`None`: the parameter was deleted).
pub fn parse_param(key: &str, value: Option<&Value>) -> Result<ParamChange, ParamError> {
    let value = value.filter(|v| !v.is_null());
    if key == SESSION_KEY {
        return parse_session(value);
    }
    let setting = match key {
        "trigger_labels" => Setting::TriggerLabels(checked(key, value, config::TRIGGER_LABELS)?),
        "trigger_min_confidence" => Setting::TriggerMinConfidence(checked(key, value, config::TRIGGER_MIN_CONFIDENCE)?),
        "post_roll" => Setting::PostRollSecs(checked(key, value, config::ROLL_SECONDS)?),
        "pre_roll" => Setting::PreRollSecs(checked(key, value, config::ROLL_SECONDS)?),
        "crf" => Setting::Crf(checked(key, value, config::CRF)?),
        "bitrate" => Setting::Bitrate(checked(key, value, config::BITRATE)?),
        "preset" => Setting::Preset(checked(key, value, config::PRESET)?),
        _ => return Err(ParamError::UnknownKey { key: shortened(key) }),
    };
    Ok(ParamChange::Setting(setting))
}

fn parse_session(value: Option<&Value>) -> Result<ParamChange, ParamError> {
    match value {
        None => Ok(ParamChange::StopSession),
        Some(Value::String(id)) if !id.trim().is_empty() => Ok(ParamChange::StartSession(id.trim().to_owned())),
        Some(other) => Err(invalid(SESSION_KEY, other, SESSION_ALLOWED)),
    }
}

/// The value under `rule`, `None` for a reset. Strings, numbers and booleans are read as the
/// text a configuration would hold; a list of strings (labels) as its items joined by commas.
fn checked<T>(key: &str, value: Option<&Value>, rule: Rule<T>) -> Result<Option<T>, ParamError> {
    let Some(value) = value else { return Ok(None) };
    let text = match value {
        Value::String(text) => Some(text.trim().to_owned()),
        Value::Number(number) => Some(number.to_string()),
        Value::Bool(flag) => Some(flag.to_string()),
        Value::Array(items) => {
            items.iter().map(Value::as_str).collect::<Option<Vec<&str>>>().map(|items| items.join(","))
        }
        Value::Null | Value::Object(_) => None,
    };
    text.and_then(|text| (rule.parse)(&text)).map(Some).ok_or_else(|| invalid(key, value, rule.allowed))
}

fn invalid(key: &str, value: &Value, allowed: &str) -> ParamError {
    ParamError::InvalidValue { key: key.to_owned(), value: shortened(&value.to_string()), allowed: allowed.to_owned() }
}

/// `text`, cut to [`MAX_LOGGED_VALUE_CHARS`] characters with the full length said.
fn shortened(text: &str) -> String {
    match text.char_indices().nth(MAX_LOGGED_VALUE_CHARS) {
        Some((cut, _)) => format!("{}… ({} bytes)", &text[..cut], text.len()),
        None => text.to_owned(),
    }
}

/// The settings changed at run time, over the startup configuration. Each `None` means "as
/// configured".
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Overrides {
    labels: Option<Vec<String>>,
    min_confidence: Option<f32>,
    post_roll_secs: Option<f64>,
    pre_roll_secs: Option<f64>,
    /// `crf` and `bitrate` are one setting, the rate control: the one set last wins.
    rate: Option<RateControl>,
    preset: Option<String>,
}

impl Overrides {
    /// Applies a change. Resetting `crf` or `bitrate` returns the rate control to the
    /// configuration only when that key is the one in effect.
    pub fn set(&mut self, setting: Setting) {
        match setting {
            Setting::TriggerLabels(labels) => self.labels = labels,
            Setting::TriggerMinConfidence(confidence) => self.min_confidence = confidence,
            Setting::PostRollSecs(secs) => self.post_roll_secs = secs,
            Setting::PreRollSecs(secs) => self.pre_roll_secs = secs,
            Setting::Crf(Some(crf)) => self.rate = Some(RateControl::Crf(crf)),
            Setting::Bitrate(Some(bps)) => self.rate = Some(RateControl::Bitrate(bps)),
            Setting::Crf(None) if matches!(self.rate, Some(RateControl::Crf(_))) => self.rate = None,
            Setting::Bitrate(None) if matches!(self.rate, Some(RateControl::Bitrate(_))) => self.rate = None,
            Setting::Crf(None) | Setting::Bitrate(None) => {}
            Setting::Preset(preset) => self.preset = preset,
        }
    }

    /// The trigger's settings in effect, over the configured `base`.
    pub fn trigger(&self, base: &TriggerSettings) -> TriggerSettings {
        TriggerSettings {
            labels: self.labels.clone().unwrap_or_else(|| base.labels.clone()),
            min_confidence: self.min_confidence.unwrap_or(base.min_confidence),
            post_roll_nanos: self.post_roll_secs.map_or(base.post_roll_nanos, config::secs_to_nanos),
        }
    }

    /// The encoder quality in effect, over the configured `base`.
    pub fn quality(&self, base: &Quality) -> Quality {
        Quality {
            preset: self.preset.clone().unwrap_or_else(|| base.preset.clone()),
            rate: self.rate.unwrap_or(base.rate),
            ..base.clone()
        }
    }

    /// `PRE_ROLL` in effect, over the configured `base` seconds.
    pub fn pre_roll_secs(&self, base: f64) -> f64 {
        self.pre_roll_secs.unwrap_or(base)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::encode::Latency;

    fn set(key: &str, value: Value) -> Result<ParamChange, ParamError> {
        parse_param(key, Some(&value))
    }

    fn setting(key: &str, value: Value) -> Setting {
        match set(key, value) {
            Ok(ParamChange::Setting(setting)) => setting,
            other => panic!("{key}: {other:?}"),
        }
    }

    #[test]
    fn session_starts_with_a_string_and_stops_with_null_or_delete() {
        assert_eq!(set("session", json!(" run-1 ")), Ok(ParamChange::StartSession("run-1".into())));
        assert_eq!(set("session", Value::Null), Ok(ParamChange::StopSession));
        assert_eq!(parse_param("session", None), Ok(ParamChange::StopSession));
        for bad in [json!(""), json!(7), json!(true), json!({"id": "x"}), json!(["run"])] {
            let error = set("session", bad.clone()).unwrap_err();
            assert!(matches!(&error, ParamError::InvalidValue { key, .. } if key == "session"), "{bad}: {error}");
            assert!(error.to_string().contains("null to stop"), "{error}");
        }
    }

    #[test]
    fn settings_take_json_numbers_or_strings_like_the_configuration() {
        assert_eq!(setting("crf", json!(30)), Setting::Crf(Some(30)));
        assert_eq!(setting("crf", json!("30")), Setting::Crf(Some(30)));
        assert_eq!(setting("bitrate", json!("4M")), Setting::Bitrate(Some(4_000_000)));
        assert_eq!(setting("bitrate", json!(2500000)), Setting::Bitrate(Some(2_500_000)));
        assert_eq!(setting("preset", json!("Medium")), Setting::Preset(Some("medium".into())));
        assert_eq!(setting("post_roll", json!(0.5)), Setting::PostRollSecs(Some(0.5)));
        assert_eq!(setting("pre_roll", json!("3")), Setting::PreRollSecs(Some(3.0)));
        assert_eq!(setting("trigger_min_confidence", json!(0.8)), Setting::TriggerMinConfidence(Some(0.8)));
        let labels = Setting::TriggerLabels(Some(vec!["person".into(), "car".into()]));
        assert_eq!(setting("trigger_labels", json!("person, car")), labels);
        assert_eq!(setting("trigger_labels", json!(["person", "car"])), labels);
        assert_eq!(setting("trigger_labels", json!("")), Setting::TriggerLabels(Some(vec![])), "any label");
    }

    #[test]
    fn null_or_delete_returns_a_setting_to_its_configured_value() {
        for key in SETTING_KEYS {
            let from_null = setting(key, Value::Null);
            assert!(from_null.is_reset() && from_null.key() == key, "{key}");
            assert_eq!(parse_param(key, None), Ok(ParamChange::Setting(from_null)), "{key}");
        }
    }

    #[test]
    fn a_bad_value_names_the_key_the_value_and_what_is_allowed() {
        let cases = [
            ("crf", json!(52), "0..=51"),
            ("crf", json!("high"), "0..=51"),
            ("bitrate", json!(0), "bits per second"),
            ("preset", json!("quick"), "veryfast"),
            ("post_roll", json!(61), "0..=60"),
            ("pre_roll", json!(-1), "0..=60"),
            ("trigger_min_confidence", json!(1.5), "0..=1"),
            ("trigger_labels", json!([1, 2]), "comma-separated"),
            ("crf", json!({"value": 20}), "0..=51"),
        ];
        for (key, value, allowed) in cases {
            let error = set(key, value.clone()).unwrap_err().to_string();
            assert!(
                error.contains(key) && error.contains(&value.to_string()) && error.contains(allowed),
                "{key} {value}: {error}"
            );
        }
    }

    #[test]
    fn an_unknown_key_is_named_with_the_known_ones() {
        let error = set("fps", json!(30)).unwrap_err();
        assert_eq!(error, ParamError::UnknownKey { key: "fps".into() });
        assert!(error.to_string().contains("session, trigger_labels") && error.to_string().contains("preset"));
    }

    #[test]
    fn huge_values_are_shortened_in_messages() {
        let error = set("crf", json!("9".repeat(60_000))).unwrap_err().to_string();
        assert!(error.len() < 400 && error.contains("60002 bytes"), "{}", error.len());
    }

    fn quality() -> Quality {
        Quality {
            preset: "veryfast".into(),
            rate: RateControl::Crf(23),
            gop_frames: 30,
            latency: Latency::Zero,
            threads: 2,
        }
    }

    #[test]
    fn crf_and_bitrate_are_one_rate_setting_the_last_one_set_wins() {
        let mut overrides = Overrides::default();
        overrides.set(Setting::Bitrate(Some(4_000_000)));
        assert_eq!(overrides.quality(&quality()).rate, RateControl::Bitrate(4_000_000));
        overrides.set(Setting::Crf(Some(30)));
        assert_eq!(overrides.quality(&quality()).rate, RateControl::Crf(30));
        overrides.set(Setting::Bitrate(None));
        assert_eq!(overrides.quality(&quality()).rate, RateControl::Crf(30), "bitrate was not in effect");
        overrides.set(Setting::Crf(None));
        assert_eq!(overrides.quality(&quality()), quality(), "back to the configuration");
    }

    #[test]
    fn overrides_change_only_their_own_fields() {
        let mut overrides = Overrides::default();
        overrides.set(Setting::Preset(Some("medium".into())));
        let changed = overrides.quality(&quality());
        assert_eq!((changed.preset.as_str(), changed.gop_frames, changed.threads), ("medium", 30, 2));
        let base =
            TriggerSettings { labels: vec!["person".into()], min_confidence: 0.5, post_roll_nanos: 2_000_000_000 };
        overrides.set(Setting::PostRollSecs(Some(0.25)));
        overrides.set(Setting::TriggerLabels(Some(vec![])));
        let trigger = overrides.trigger(&base);
        assert_eq!((trigger.labels.len(), trigger.min_confidence, trigger.post_roll_nanos), (0, 0.5, 250_000_000));
        assert_eq!(overrides.pre_roll_secs(1.5), 1.5);
        overrides.set(Setting::PreRollSecs(Some(0.0)));
        assert_eq!(overrides.pre_roll_secs(1.5), 0.0);
        overrides.set(Setting::TriggerLabels(None));
        assert_eq!(overrides.trigger(&base).labels, base.labels);
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn any_key_and_json_value_parses_or_is_rejected_without_panic(
            key in prop_oneof![Just("session".to_owned()), Just("crf".to_owned()), Just("trigger_labels".to_owned()), any::<String>()],
            text in any::<String>(),
            number in any::<f64>(),
        ) {
            for value in [Value::String(text.clone()), serde_json::json!(number), serde_json::json!([text.clone()])] {
                let _ = parse_param(&key, Some(&value));
            }
        }
    }
}
