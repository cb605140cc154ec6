//! Configuration: environment variables (the dora convention) and an optional YAML file named by
//! `CONFIG`, read once at startup into one checked [`Config`]. The environment wins over the file.
//! Every bad value is an error naming the key, the value and what is allowed.

use std::{collections::BTreeMap, path::PathBuf};

use dora_video_recorder::PixelEncoding;

/// Environment variable naming the optional YAML configuration file.
pub const CONFIG_FILE_VAR: &str = "CONFIG";
/// Every key the node reads, in file (lower-case) spelling; the environment uses upper case.
pub const KEYS: [&str; 7] = ["recording", "encoding", "rate", "start", "end", "loop", "camera"];
/// Encoding of colour frames when `ENCODING` is unset.
pub const DEFAULT_ENCODING: PixelEncoding = PixelEncoding::Bgr8;
/// Output name of a single video played without a manifest, when `CAMERA` is unset.
pub const DEFAULT_CAMERA: &str = "image";
/// Fastest accepted `RATE` (besides 0, as fast as possible).
pub const MAX_RATE: f64 = 1000.0;

/// How fast to play.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Rate {
    /// Recorded time divided by this factor: 1 is the original timing, 2 twice as fast.
    Times(f64),
    /// No waiting: each message as soon as the previous one is sent (`RATE=0`).
    Unpaced,
}

/// The replay's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// A session manifest (`*.session.json`), or one video file (with its `.frames.csv` if any).
    pub recording: PathBuf,
    /// What colour frames are sent as; depth recordings always go out as `mono16`.
    pub encoding: PixelEncoding,
    /// Playback speed.
    pub rate: Rate,
    /// First second of the session timeline to play (from the session start).
    pub start_secs: Option<f64>,
    /// Second of the session timeline where playing ends.
    pub end_secs: Option<f64>,
    /// Whether to play again from the start after the end, until the dataflow stops.
    pub looped: bool,
    /// Output name of a single video played without a manifest.
    pub camera: String,
}

/// A configuration problem, reported at startup.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    /// A key has a value that is not allowed.
    #[error("{key}={value:?} is not valid: expected {expected}")]
    Invalid {
        /// The key, in environment spelling.
        key: String,
        /// The value given.
        value: String,
        /// What is allowed.
        expected: String,
    },
    /// `RECORDING` is missing.
    #[error("RECORDING is not set: give a session manifest (*.session.json) or a video file")]
    NoRecording,
    /// The YAML file cannot be used.
    #[error("configuration file {file}: {message}")]
    File {
        /// The file.
        file: String,
        /// What is wrong.
        message: String,
    },
}

impl Config {
    /// Reads the environment (and the YAML file named by `CONFIG`, if any).
    pub fn from_env() -> Result<Self, ConfigError> {
        let file = match std::env::var(CONFIG_FILE_VAR) {
            Ok(path) if !path.trim().is_empty() => read_yaml_file(&path)?,
            _ => BTreeMap::new(),
        };
        Self::from_lookup(|key| std::env::var(key.to_ascii_uppercase()).ok().or_else(|| file.get(key).cloned()))
    }

    /// Reads the settings from `lookup` (given lower-case keys); blank values count as unset.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let value = |key: &str| lookup(key).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let recording = value("recording").map(PathBuf::from).ok_or(ConfigError::NoRecording)?;
        let encoding = match value("encoding") {
            Some(raw) => parse_encoding(&raw)?,
            None => DEFAULT_ENCODING,
        };
        let rate = match value("rate") {
            Some(raw) => parse_rate(&raw)?,
            None => Rate::Times(1.0),
        };
        let start_secs = value("start").map(|raw| parse_secs("START", &raw)).transpose()?;
        let end_secs = value("end").map(|raw| parse_secs("END", &raw)).transpose()?;
        if let (Some(start), Some(end)) = (start_secs, end_secs)
            && end <= start
        {
            return Err(invalid("END", &end.to_string(), &format!("a time after START ({start} s)")));
        }
        let looped = match value("loop").map(|raw| raw.to_ascii_lowercase()).as_deref() {
            None | Some("false" | "0" | "no") => false,
            Some("true" | "1" | "yes") => true,
            Some(_) => return Err(invalid("LOOP", &value("loop").unwrap_or_default(), "true or false")),
        };
        let camera = value("camera").unwrap_or_else(|| DEFAULT_CAMERA.to_owned());
        Ok(Self { recording, encoding, rate, start_secs, end_secs, looped, camera })
    }
}

fn invalid(key: &str, value: &str, expected: &str) -> ConfigError {
    ConfigError::Invalid { key: key.to_owned(), value: value.to_owned(), expected: expected.to_owned() }
}

/// The encodings colour frames can be sent in: the recorder's raw layouts but depth.
fn parse_encoding(raw: &str) -> Result<PixelEncoding, ConfigError> {
    let wanted = raw.to_ascii_lowercase();
    PixelEncoding::ALL.into_iter().find(|encoding| encoding.name() == wanted).ok_or_else(|| {
        let names: Vec<&str> = PixelEncoding::ALL.iter().map(|encoding| encoding.name()).collect();
        invalid("ENCODING", raw, &format!("one of {} (depth recordings are sent as mono16)", names.join(", ")))
    })
}

fn parse_rate(raw: &str) -> Result<Rate, ConfigError> {
    match raw.parse::<f64>() {
        Ok(0.0) => Ok(Rate::Unpaced),
        Ok(rate) if rate.is_finite() && rate > 0.0 && rate <= MAX_RATE => Ok(Rate::Times(rate)),
        _ => Err(invalid(
            "RATE",
            raw,
            &format!("a speed factor in (0, {MAX_RATE}] (1 = original timing), or 0 = unpaced"),
        )),
    }
}

fn parse_secs(key: &str, raw: &str) -> Result<f64, ConfigError> {
    match raw.parse::<f64>() {
        Ok(secs) if secs.is_finite() && secs >= 0.0 => Ok(secs),
        _ => Err(invalid(key, raw, "seconds on the session timeline, 0 or more")),
    }
}

/// Reads a YAML mapping of known keys to scalar values.
fn read_yaml_file(path: &str) -> Result<BTreeMap<String, String>, ConfigError> {
    let file_error = |message: String| ConfigError::File { file: path.to_owned(), message };
    let text = std::fs::read_to_string(path).map_err(|e| file_error(e.to_string()))?;
    parse_yaml(&text).map_err(file_error)
}

/// Parses YAML text into lower-case key/value strings, rejecting unknown keys and non-scalars.
fn parse_yaml(text: &str) -> Result<BTreeMap<String, String>, String> {
    let mapping = match serde_yaml::from_str::<serde_yaml::Value>(text).map_err(|e| e.to_string())? {
        serde_yaml::Value::Mapping(mapping) => mapping,
        serde_yaml::Value::Null => return Ok(BTreeMap::new()),
        _ => return Err("expected a mapping of settings".to_owned()),
    };
    let mut settings = BTreeMap::new();
    for (key, value) in mapping {
        let key = key.as_str().ok_or("keys must be strings")?.to_ascii_lowercase();
        if !KEYS.contains(&key.as_str()) {
            return Err(format!("unknown key {key:?}: expected one of {}", KEYS.join(", ")));
        }
        let value = match value {
            serde_yaml::Value::String(s) => s,
            serde_yaml::Value::Number(n) => n.to_string(),
            serde_yaml::Value::Bool(b) => b.to_string(),
            _ => return Err(format!("{key} must be a string, number or boolean")),
        };
        settings.insert(key, value);
    }
    Ok(settings)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: BTreeMap<String, String> = pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        Config::from_lookup(|key| map.get(key).cloned())
    }

    #[test]
    fn defaults_play_bgr8_at_the_original_timing_once() {
        let config = config(&[("recording", "a.session.json")]).unwrap();
        assert_eq!(config.encoding, PixelEncoding::Bgr8);
        assert_eq!(config.rate, Rate::Times(1.0));
        assert_eq!((config.start_secs, config.end_secs, config.looped), (None, None, false));
        assert_eq!(config.camera, "image");
    }

    #[test]
    fn every_setting_is_read() {
        let config = config(&[
            ("recording", "x.mp4"),
            ("encoding", "YUV420"),
            ("rate", "2"),
            ("start", "1.5"),
            ("end", "4"),
            ("loop", "true"),
            ("camera", "front"),
        ])
        .unwrap();
        assert_eq!(config.encoding, PixelEncoding::Yuv420);
        assert_eq!(config.rate, Rate::Times(2.0));
        assert_eq!((config.start_secs, config.end_secs, config.looped), (Some(1.5), Some(4.0), true));
        assert_eq!(config.camera, "front");
        assert_eq!(self::config(&[("recording", "x"), ("rate", "0")]).unwrap().rate, Rate::Unpaced);
    }

    #[test]
    fn bad_values_name_the_key_and_what_is_allowed() {
        assert_eq!(config(&[]), Err(ConfigError::NoRecording));
        for (key, value, needle) in [
            ("encoding", "h264", "ENCODING=\"h264\""),
            ("encoding", "mono16", "depth recordings"),
            ("rate", "-1", "RATE"),
            ("rate", "fast", "RATE"),
            ("rate", "inf", "RATE"),
            ("start", "-2", "START"),
            ("end", "soon", "END"),
            ("loop", "maybe", "LOOP"),
        ] {
            let error = config(&[("recording", "x"), (key, value)]).unwrap_err().to_string();
            assert!(error.contains(needle), "{key}={value}: {error}");
        }
        let error = config(&[("recording", "x"), ("start", "3"), ("end", "2")]).unwrap_err().to_string();
        assert!(error.contains("after START"), "{error}");
    }

    #[test]
    fn yaml_files_hold_known_scalar_keys_only() {
        let settings = parse_yaml("RECORDING: a.mp4\nrate: 2\nloop: true\n").unwrap();
        assert_eq!(settings["recording"], "a.mp4");
        assert_eq!((settings["rate"].as_str(), settings["loop"].as_str()), ("2", "true"));
        assert!(parse_yaml("speed: 2").unwrap_err().contains("unknown key"));
        assert!(parse_yaml("rate: [1, 2]").unwrap_err().contains("rate"));
        assert!(parse_yaml("- a").is_err());
        assert!(parse_yaml("").unwrap().is_empty());
    }
}
