//! Configuration: environment variables (the dora convention) and an optional YAML file, read once
//! at startup into one validated [`Config`]. The environment wins over the file.

use std::{collections::BTreeMap, path::PathBuf, time::Duration};

use crate::{
    camera::copy::Compressed,
    camera::queue::{Overflow, QueueLimits},
    camera::segments::SegmentLimits,
    encode::{
        CodecRequest, Container, EncoderKind, Latency, MAX_THREADS, PRESETS, Quality, RateControl, default_threads,
    },
    session::trigger::{DEFAULT_MIN_CONFIDENCE, DEFAULT_POST_ROLL_SECS, TriggerSettings},
    stats::DEFAULT_STATS_INTERVAL_SECS,
    timing::{FrameRate, TimestampMode},
};

/// Default output folder, relative to the node's working directory (the dataflow's folder).
pub const DEFAULT_STORAGE: &str = "./recordings";
/// Default nominal frame rate: stream rate, AVI grid and GOP length derive from it.
pub const DEFAULT_FPS: f64 = 15.0;
/// Default x264/x265 preset: real-time 1080p on two cores with headroom.
pub const DEFAULT_PRESET: &str = "veryfast";
/// Default constant-rate factor: visually good, about 1/100 of raw size for camera footage.
pub const DEFAULT_CRF: u8 = 23;
/// Default keyframe interval in seconds of nominal video (the GOP, and so one MP4 fragment at most).
pub const DEFAULT_GOP_SECS: f64 = 2.0;
/// Default bound of each camera's encoder queue, in frames.
pub const DEFAULT_QUEUE_FRAMES: usize = 30;
/// Default bound of each camera's encoder queue, in bytes: about ten 1080p bgr8 frames, so
/// 1080p recording stays within its memory budget while 640x480 still queues 30 frames.
pub const DEFAULT_QUEUE_BYTES: u64 = 64 * 1024 * 1024;
/// Default time a stopped session still accepts frames that were sent before its stop.
pub const DEFAULT_STOP_GRACE_MS: u64 = 500;

/// Every key the node reads, in file (lower-case) spelling; the environment uses upper case.
pub const KEYS: [&str; 33] = [
    "storage",
    "format",
    "codec",
    "fps",
    "preset",
    "crf",
    "bitrate",
    "gop",
    "timestamps",
    "image_width",
    "image_height",
    "session_id",
    "queue_frames",
    "stop_grace_ms",
    "low_latency",
    "fsync",
    "segment_seconds",
    "segment_bytes",
    "max_total_bytes",
    "min_free_bytes",
    "trigger",
    "trigger_labels",
    "trigger_min_confidence",
    "post_roll",
    "pre_roll",
    "overlay",
    "queue_bytes",
    "overflow",
    "stats_interval",
    "encoder_threads",
    "depth_codec",
    "auto_session",
    "compressed",
];

/// Environment variable naming the optional YAML configuration file.
pub const CONFIG_FILE_VAR: &str = "CONFIG";

/// The node's whole configuration, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Folder the files go to (created with its parents).
    pub storage: PathBuf,
    /// Container format.
    pub container: Container,
    /// Requested codec; resolved to a concrete encoder at each recording start.
    pub codec: CodecRequest,
    /// Nominal frame rate.
    pub fps: FrameRate,
    /// Encoder quality.
    pub quality: Quality,
    /// How presentation times are derived.
    pub timestamps: TimestampMode,
    /// Frame width used when a frame's metadata has none.
    pub image_width: Option<u32>,
    /// Frame height used when a frame's metadata has none.
    pub image_height: Option<u32>,
    /// Session id for runs without a control input.
    pub session_id: Option<String>,
    /// Whether a recorder without a `control` input (and without a trigger) records the whole
    /// run as one session (`AUTO_SESSION`); when false it records nothing until a session is
    /// started (a `session` parameter).
    pub auto_session: bool,
    /// Bounds of each camera's encoder queue (frames and bytes) and what a full one does.
    pub queue: QueueLimits,
    /// How often stats are logged and sent on the `stats` output.
    pub stats_interval: Duration,
    /// How long a stopped session still accepts frames sent before the stop.
    pub stop_grace_ms: u64,
    /// Whether each completed fragment is `fdatasync`ed (survives a power cut); `FSYNC=false`
    /// only for benchmarks and throwaway recordings.
    pub fsync: bool,
    /// When a session's file is cut into the next segment.
    pub segments: SegmentLimits,
    /// Keep the recordings in `storage` at most this large (oldest finished ones deleted first).
    pub max_total_bytes: Option<u64>,
    /// Keep at least this much free space on the storage's filesystem.
    pub min_free_bytes: Option<u64>,
    /// Detector-triggered clips (`TRIGGER=detections`); `None` when off.
    pub trigger: Option<TriggerSettings>,
    /// Seconds of video before a session's start that its files begin with (`PRE_ROLL`).
    pub pre_roll_secs: f64,
    /// Whether detector boxes are drawn into the recorded video (`OVERLAY`).
    pub overlay: bool,
    /// The lossless encoder of depth cameras (`DEPTH_CODEC`: ffv1, the default, or ffvhuff).
    pub depth_encoder: EncoderKind,
    /// What happens to JPEG camera frames (`COMPRESSED`): decoded and encoded with `CODEC`
    /// (`decode`, the default), or stored as they came as Motion JPEG (`copy`).
    pub compressed: Compressed,
}

/// How one key's text is checked: its parser and what it accepts. The startup configuration and
/// the runtime parameters ([`crate::params`]) share these, so a value means the same in both.
#[derive(Debug, Clone, Copy)]
pub struct Rule<T> {
    /// Parses a trimmed value; `None` when it is not allowed.
    pub parse: fn(&str) -> Option<T>,
    /// What is allowed, for messages.
    pub allowed: &'static str,
}

/// `CRF`: constant quality.
pub const CRF: Rule<u8> = Rule { parse: |v| v.parse::<u8>().ok().filter(|c| *c <= 51), allowed: "an integer 0..=51" };
/// `BITRATE`: constant bitrate in bits per second.
pub const BITRATE: Rule<u64> = Rule { parse: parse_bitrate, allowed: "bits per second > 0, e.g. 4000000, 4000k or 4M" };
/// `PRESET`: an x264 preset name (the test below keeps the list equal to [`PRESETS`]).
pub const PRESET: Rule<String> = Rule {
    parse: parse_preset,
    allowed: "one of ultrafast, superfast, veryfast, faster, fast, medium, slow, slower, veryslow",
};
/// `TRIGGER_LABELS`: comma-separated labels; empty means any label.
pub const TRIGGER_LABELS: Rule<Vec<String>> =
    Rule { parse: |v| Some(parse_labels(v)), allowed: "comma-separated labels, e.g. person,car (empty: any label)" };
/// `TRIGGER_MIN_CONFIDENCE`.
pub const TRIGGER_MIN_CONFIDENCE: Rule<f32> =
    Rule { parse: |v| v.parse::<f32>().ok().filter(|c| (0.0..=1.0).contains(c)), allowed: "0..=1" };
/// `PRE_ROLL` and `POST_ROLL`, seconds.
pub const ROLL_SECONDS: Rule<f64> = Rule { parse: seconds_up_to_a_minute, allowed: "seconds 0..=60, e.g. 2 or 0.5" };

/// A configuration value that cannot be used, with what would be accepted instead.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ConfigError {
    /// The value does not parse or is out of range.
    #[error("invalid value {value:?} for {key}: expected {allowed}")]
    InvalidValue {
        /// Key as the user spelled it (env or file form).
        key: String,
        /// The offending value.
        value: String,
        /// What is allowed.
        allowed: String,
    },
    /// The YAML file has a key this node does not know.
    #[error("unknown key {key:?} in {file}: known keys are {}", KEYS.join(", "))]
    UnknownKey {
        /// The unknown key.
        key: String,
        /// The file it came from.
        file: String,
    },
    /// The YAML file cannot be read or is not a mapping of scalars.
    #[error("cannot use config file {file}: {reason}")]
    File {
        /// The file path.
        file: String,
        /// Why.
        reason: String,
    },
}

impl Config {
    /// Reads the configuration from the process environment and the file named by `CONFIG`.
    pub fn from_env() -> Result<Self, ConfigError> {
        let file = match std::env::var(CONFIG_FILE_VAR) {
            Ok(path) if !path.trim().is_empty() => read_yaml_file(&path)?,
            _ => BTreeMap::new(),
        };
        Self::from_lookup(|key| std::env::var(key).ok(), &file)
    }

    /// Builds the configuration from an environment lookup (upper-case keys) and file values
    /// (lower-case keys). Pure: tests pass closures and maps.
    pub fn from_lookup(
        env: impl Fn(&str) -> Option<String>,
        file: &BTreeMap<String, String>,
    ) -> Result<Self, ConfigError> {
        let raw = RawValues { env: &env, file };
        let fps = raw.parse("fps", FrameRate::parse, "a frame rate > 0 and <= 1000, e.g. 15 or 29.97")?;
        let fps = fps.unwrap_or_else(|| FrameRate::from_f64(DEFAULT_FPS).expect("default fps is valid"));
        let preset = raw.rule("preset", PRESET)?.unwrap_or_else(|| DEFAULT_PRESET.to_owned());
        let crf = raw.rule("crf", CRF)?;
        let bitrate = raw.rule("bitrate", BITRATE)?;
        let rate = match bitrate {
            Some(bps) => RateControl::Bitrate(bps),
            None => RateControl::Crf(crf.unwrap_or(DEFAULT_CRF)),
        };
        let gop_frames = raw
            .parse("gop", |v| v.parse::<u32>().ok().filter(|g| (1..=10_000).contains(g)), "frames 1..=10000")?
            .unwrap_or_else(|| default_gop_frames(fps));
        let positive_u32 = |v: &str| v.parse::<u32>().ok().filter(|n| (1..=16_384).contains(n));
        Ok(Self {
            storage: raw.get("storage").map_or_else(|| PathBuf::from(DEFAULT_STORAGE), |(_, v)| PathBuf::from(v)),
            container: raw.parse("format", Container::parse, "mp4, mkv or avi")?.unwrap_or(Container::Mp4),
            codec: raw.parse("codec", CodecRequest::parse, CodecRequest::ALLOWED)?.unwrap_or(CodecRequest::Auto),
            depth_encoder: raw
                .parse("depth_codec", EncoderKind::parse_lossless, "ffv1 or ffvhuff")?
                .unwrap_or(EncoderKind::Ffv1),
            compressed: raw.parse("compressed", Compressed::parse, Compressed::ALLOWED)?.unwrap_or_default(),
            fps,
            quality: Quality {
                preset,
                rate,
                gop_frames,
                latency: match raw.parse("low_latency", parse_bool, "true or false")? {
                    Some(true) => Latency::Zero,
                    _ => Latency::for_fps(fps.as_f64()),
                },
                threads: raw
                    .parse(
                        "encoder_threads",
                        |v| v.parse::<u32>().ok().filter(|n| (1..=MAX_THREADS).contains(n)),
                        "threads 1..=64",
                    )?
                    .unwrap_or_else(default_threads),
            },
            fsync: raw.parse("fsync", parse_bool, "true or false")?.unwrap_or(true),
            segments: SegmentLimits {
                max_secs: raw.parse(
                    "segment_seconds",
                    |v| v.parse::<f64>().ok().filter(|s| s.is_finite() && *s >= 1.0),
                    "seconds >= 1, e.g. 60 or 300",
                )?,
                max_bytes: raw.parse("segment_bytes", parse_bytes, BYTES_ALLOWED)?,
                last_frame_secs: 1.0 / fps.as_f64(),
            },
            max_total_bytes: raw.parse("max_total_bytes", parse_bytes, BYTES_ALLOWED)?,
            min_free_bytes: raw.parse("min_free_bytes", parse_bytes, BYTES_ALLOWED)?,
            trigger: trigger_settings(&raw)?,
            pre_roll_secs: raw.rule("pre_roll", ROLL_SECONDS)?.unwrap_or(0.0),
            overlay: raw.parse("overlay", parse_bool, "true or false")?.unwrap_or(false),
            timestamps: raw
                .parse("timestamps", TimestampMode::parse, "source or frame")?
                .unwrap_or(TimestampMode::Source),
            image_width: raw.parse("image_width", positive_u32, "pixels 1..=16384")?,
            image_height: raw.parse("image_height", positive_u32, "pixels 1..=16384")?,
            session_id: raw.get("session_id").map(|(_, v)| v).filter(|v| !v.is_empty()),
            auto_session: raw.parse("auto_session", parse_bool, "true or false")?.unwrap_or(true),
            queue: QueueLimits {
                frames: raw
                    .parse(
                        "queue_frames",
                        |v| v.parse::<usize>().ok().filter(|n| (1..=10_000).contains(n)),
                        "frames 1..=10000",
                    )?
                    .unwrap_or(DEFAULT_QUEUE_FRAMES),
                bytes: raw.parse("queue_bytes", parse_bytes, BYTES_ALLOWED)?.unwrap_or(DEFAULT_QUEUE_BYTES),
                overflow: raw.parse("overflow", Overflow::parse, "drop or block")?.unwrap_or(Overflow::DropOldest),
            },
            stats_interval: Duration::from_secs(
                raw.parse(
                    "stats_interval",
                    |v| v.parse::<u64>().ok().filter(|n| (1..=3600).contains(n)),
                    "seconds 1..=3600",
                )?
                .unwrap_or(DEFAULT_STATS_INTERVAL_SECS),
            ),
            stop_grace_ms: raw
                .parse("stop_grace_ms", |v| v.parse::<u64>().ok().filter(|n| *n <= 60_000), "milliseconds 0..=60000")?
                .unwrap_or(DEFAULT_STOP_GRACE_MS),
        })
    }
}

/// Two seconds of nominal video, at least one frame.
fn default_gop_frames(fps: FrameRate) -> u32 {
    ((fps.as_f64() * DEFAULT_GOP_SECS).round() as u32).max(1)
}

fn seconds_up_to_a_minute(value: &str) -> Option<f64> {
    value.parse::<f64>().ok().filter(|s| (0.0..=60.0).contains(s))
}

/// `TRIGGER`, `TRIGGER_LABELS`, `TRIGGER_MIN_CONFIDENCE`, `POST_ROLL`.
fn trigger_settings<E: Fn(&str) -> Option<String>>(
    raw: &RawValues<'_, E>,
) -> Result<Option<TriggerSettings>, ConfigError> {
    let on = raw.parse(
        "trigger",
        |v| match v.to_ascii_lowercase().as_str() {
            "detections" => Some(true),
            "off" | "none" | "false" => Some(false),
            _ => None,
        },
        "detections or off",
    )?;
    if on != Some(true) {
        return Ok(None);
    }
    let labels = raw.rule("trigger_labels", TRIGGER_LABELS)?.unwrap_or_default();
    let min_confidence = raw.rule("trigger_min_confidence", TRIGGER_MIN_CONFIDENCE)?.unwrap_or(DEFAULT_MIN_CONFIDENCE);
    let post_roll = raw.rule("post_roll", ROLL_SECONDS)?.unwrap_or(DEFAULT_POST_ROLL_SECS);
    Ok(Some(TriggerSettings { labels, min_confidence, post_roll_nanos: secs_to_nanos(post_roll) }))
}

/// Seconds of a checked setting (0..=60) in nanoseconds.
pub fn secs_to_nanos(secs: f64) -> u64 {
    (secs * 1e9) as u64
}

/// `person, car ,` -> `["person", "car"]`.
fn parse_labels(value: &str) -> Vec<String> {
    value.split(',').map(str::trim).filter(|l| !l.is_empty()).map(str::to_owned).collect()
}

/// What byte-size keys accept, for error messages.
const BYTES_ALLOWED: &str = "bytes > 0: 500000000, 500M, 2G (decimal) or 2GiB (binary)";

/// Parses a size in bytes: a number with an optional `k`/`M`/`G`/`T` (powers of 1000) or
/// `KiB`/`MiB`/`GiB`/`TiB` (powers of 1024) suffix.
fn parse_bytes(value: &str) -> Option<u64> {
    let value = value.trim();
    let split = value.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(value.len());
    let (digits, unit) = value.split_at(split);
    let multiplier: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" => 1e3,
        "m" | "mb" => 1e6,
        "g" | "gb" => 1e9,
        "t" | "tb" => 1e12,
        "kib" => 1024.0,
        "mib" => 1024.0 * 1024.0,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        "tib" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    };
    let bytes = (digits.trim().parse::<f64>().ok()? * multiplier).round();
    (1.0..1.8e19).contains(&bytes).then_some(bytes as u64)
}

fn parse_bool(value: &str) -> Option<bool> {
    match value.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Some(true),
        "false" | "0" | "no" | "off" => Some(false),
        _ => None,
    }
}

fn parse_preset(value: &str) -> Option<String> {
    let lower = value.to_ascii_lowercase();
    PRESETS.contains(&lower.as_str()).then_some(lower)
}

/// Parses `4000000`, `4000k` or `4M` (decimal multipliers, as FFmpeg does).
fn parse_bitrate(value: &str) -> Option<u64> {
    let value = value.trim();
    let (digits, multiplier) = match value.char_indices().last()? {
        (i, 'k' | 'K') => (&value[..i], 1_000),
        (i, 'm' | 'M') => (&value[..i], 1_000_000),
        _ => (value, 1),
    };
    let number: f64 = digits.trim().parse().ok()?;
    let bps = (number * multiplier as f64).round();
    (1.0..=1e12).contains(&bps).then_some(bps as u64)
}

/// Where each key's raw text comes from: environment first, then the file.
struct RawValues<'a, E: Fn(&str) -> Option<String>> {
    env: &'a E,
    file: &'a BTreeMap<String, String>,
}

impl<E: Fn(&str) -> Option<String>> RawValues<'_, E> {
    /// The raw value and the spelling of the key it came from.
    fn get(&self, key: &str) -> Option<(String, String)> {
        let env_key = key.to_ascii_uppercase();
        match (self.env)(&env_key) {
            Some(value) if !value.trim().is_empty() => Some((env_key, value.trim().to_owned())),
            _ => self.file.get(key).map(|value| (key.to_owned(), value.trim().to_owned())),
        }
    }

    fn parse<T>(&self, key: &str, parse: impl Fn(&str) -> Option<T>, allowed: &str) -> Result<Option<T>, ConfigError> {
        let Some((key, value)) = self.get(key) else { return Ok(None) };
        parse(&value).map(Some).ok_or(ConfigError::InvalidValue { key, value, allowed: allowed.to_owned() })
    }

    fn rule<T>(&self, key: &str, rule: Rule<T>) -> Result<Option<T>, ConfigError> {
        self.parse(key, rule.parse, rule.allowed)
    }
}

/// Reads a YAML mapping of known keys to scalar values.
pub fn read_yaml_file(path: &str) -> Result<BTreeMap<String, String>, ConfigError> {
    let file_error = |reason: String| ConfigError::File { file: path.to_owned(), reason };
    let text = std::fs::read_to_string(path).map_err(|e| file_error(e.to_string()))?;
    parse_yaml(&text, path)
}

/// Parses YAML text into lower-case key/value strings, rejecting unknown keys and non-scalars.
pub fn parse_yaml(text: &str, file: &str) -> Result<BTreeMap<String, String>, ConfigError> {
    let file_error = |reason: String| ConfigError::File { file: file.to_owned(), reason };
    let value: serde_yaml::Value = serde_yaml::from_str(text).map_err(|e| file_error(e.to_string()))?;
    let mapping = match value {
        serde_yaml::Value::Mapping(mapping) => mapping,
        serde_yaml::Value::Null => return Ok(BTreeMap::new()),
        _ => return Err(file_error("expected a mapping of keys to values".into())),
    };
    let mut values = BTreeMap::new();
    for (key, value) in mapping {
        let key = key.as_str().ok_or_else(|| file_error("keys must be strings".into()))?.to_ascii_lowercase();
        if !KEYS.contains(&key.as_str()) {
            return Err(ConfigError::UnknownKey { key, file: file.to_owned() });
        }
        let text = match value {
            serde_yaml::Value::String(s) => s,
            serde_yaml::Value::Number(n) => n.to_string(),
            serde_yaml::Value::Bool(b) => b.to_string(),
            serde_yaml::Value::Null => continue,
            _ => return Err(file_error(format!("value of {key} must be a scalar"))),
        };
        values.insert(key, text);
    }
    Ok(values)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(env: &[(&str, &str)], file: &str) -> Result<Config, ConfigError> {
        let env: BTreeMap<String, String> = env.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect();
        let file = parse_yaml(file, "test.yml")?;
        Config::from_lookup(|k| env.get(k).cloned(), &file)
    }

    #[test]
    fn defaults_suit_real_time_recording() {
        let c = config(&[], "").unwrap();
        assert_eq!(c.storage, PathBuf::from("./recordings"));
        assert_eq!(c.container, Container::Mp4);
        assert_eq!(c.codec, CodecRequest::Auto);
        assert_eq!(c.fps.as_f64(), 15.0);
        assert_eq!(c.quality.preset, "veryfast");
        assert_eq!(c.quality.rate, RateControl::Crf(23));
        assert_eq!(c.quality.gop_frames, 30, "GOP defaults to 2 s of nominal video");
        assert_eq!(c.timestamps, TimestampMode::Source);
        assert_eq!(c.queue, QueueLimits { frames: 30, bytes: 64 << 20, overflow: Overflow::DropOldest });
        assert_eq!(c.stats_interval, Duration::from_secs(10));
        assert_eq!(c.quality.latency, Latency::Lookahead(3), "0.2 s of look-ahead at 15 fps");
        assert!(c.fsync, "fragments reach the disk by default");
        assert_eq!(c.quality.threads, default_threads(), "one encoder thread per core");
        assert_eq!(c.depth_encoder, EncoderKind::Ffv1, "depth is FFV1 unless asked otherwise");
    }

    #[test]
    fn compressed_images_are_decoded_unless_copy_is_asked_for() {
        assert_eq!(config(&[], "").unwrap().compressed, Compressed::Decode);
        assert_eq!(config(&[("COMPRESSED", "copy")], "").unwrap().compressed, Compressed::Copy);
        assert_eq!(config(&[], "compressed: copy").unwrap().compressed, Compressed::Copy);
        let err = config(&[("COMPRESSED", "remux")], "").unwrap_err().to_string();
        assert!(err.contains("COMPRESSED") && err.contains("decode or copy"), "{err}");
    }

    #[test]
    fn depth_codec_takes_only_lossless_encoders() {
        assert_eq!(config(&[("DEPTH_CODEC", "FFVHUFF")], "").unwrap().depth_encoder, EncoderKind::Ffvhuff);
        let err = config(&[("DEPTH_CODEC", "libx264")], "").unwrap_err().to_string();
        assert!(err.contains("DEPTH_CODEC") && err.contains("ffv1 or ffvhuff"), "{err}");
    }

    #[test]
    fn encoder_threads_are_bounded() {
        assert_eq!(config(&[("ENCODER_THREADS", "3")], "").unwrap().quality.threads, 3);
        assert_eq!(config(&[], "encoder_threads: 64").unwrap().quality.threads, 64);
        for bad in ["0", "65", "-1", "many"] {
            assert!(config(&[("ENCODER_THREADS", bad)], "").is_err(), "{bad}");
        }
    }

    #[test]
    fn segment_and_retention_limits_take_sizes_with_units() {
        let c =
            config(&[("SEGMENT_SECONDS", "60"), ("SEGMENT_BYTES", "500M"), ("MAX_TOTAL_BYTES", "2GiB")], "").unwrap();
        assert_eq!((c.segments.max_secs, c.segments.max_bytes), (Some(60.0), Some(500_000_000)));
        assert!((c.segments.last_frame_secs - 1.0 / 15.0).abs() < 1e-12, "a segment's last frame shows for 1 / FPS");
        assert_eq!(c.max_total_bytes, Some(2 * 1024 * 1024 * 1024));
        assert_eq!(config(&[], "min_free_bytes: 1000").unwrap().min_free_bytes, Some(1000));
        assert!(config(&[], "").unwrap().max_total_bytes.is_none(), "no retention by default");
        for bad in ["0", "-5", "lots", "5X"] {
            assert!(config(&[("SEGMENT_BYTES", bad)], "").is_err(), "{bad}");
        }
        assert!(config(&[("SEGMENT_SECONDS", "0.2")], "").is_err(), "segments of at least a second");
    }

    #[test]
    fn trigger_settings_are_read_only_when_the_trigger_is_on() {
        let c = config(&[("TRIGGER_LABELS", "person")], "").unwrap();
        assert!(c.trigger.is_none(), "off unless TRIGGER=detections");
        let c =
            config(&[("TRIGGER", "detections"), ("TRIGGER_LABELS", " person, car ,"), ("POST_ROLL", "3")], "").unwrap();
        let trigger = c.trigger.unwrap();
        assert_eq!(trigger.labels, vec!["person".to_owned(), "car".to_owned()]);
        assert_eq!((trigger.min_confidence, trigger.post_roll_nanos), (0.5, 3_000_000_000));
        assert!(config(&[("TRIGGER", "motion")], "").is_err());
        assert!(config(&[("TRIGGER", "detections"), ("TRIGGER_MIN_CONFIDENCE", "2")], "").is_err());
        assert_eq!(config(&[("PRE_ROLL", "5")], "").unwrap().pre_roll_secs, 5.0);
        assert!(config(&[("PRE_ROLL", "-1")], "").is_err());
    }

    #[test]
    fn queue_bounds_and_overflow_are_configurable() {
        let c = config(&[("QUEUE_BYTES", "200M"), ("OVERFLOW", "block"), ("STATS_INTERVAL", "2")], "").unwrap();
        assert_eq!((c.queue.bytes, c.queue.overflow), (200_000_000, Overflow::Block));
        assert_eq!(c.stats_interval, Duration::from_secs(2));
        assert!(config(&[("OVERFLOW", "wait")], "").is_err());
    }

    #[test]
    fn low_latency_and_fsync_are_switches() {
        let c = config(&[("LOW_LATENCY", "true"), ("FSYNC", "false")], "").unwrap();
        assert_eq!((c.quality.latency, c.fsync), (Latency::Zero, false));
        assert!(config(&[("LOW_LATENCY", "maybe")], "").is_err());
    }

    #[test]
    fn environment_wins_over_file() {
        let c = config(&[("FPS", "30"), ("FORMAT", "mkv")], "fps: 10\ncodec: libx265\ngop: 7").unwrap();
        assert_eq!(c.fps.as_f64(), 30.0);
        assert_eq!(c.container, Container::Mkv);
        assert_eq!(c.codec, CodecRequest::Libx265);
        assert_eq!(c.quality.gop_frames, 7);
    }

    #[test]
    fn bad_value_names_key_value_and_what_is_allowed() {
        let err = config(&[("CODEC", "vp9")], "").unwrap_err();
        let text = err.to_string();
        assert!(text.contains("CODEC") && text.contains("vp9") && text.contains("libx264"), "{text}");
        let err = config(&[], "crf: 99").unwrap_err();
        assert!(err.to_string().contains("crf") && err.to_string().contains("0..=51"), "{err}");
    }

    #[test]
    fn unknown_file_key_is_rejected() {
        let err = config(&[], "fsp: 30").unwrap_err();
        assert_eq!(err, ConfigError::UnknownKey { key: "fsp".into(), file: "test.yml".into() });
    }

    #[test]
    fn the_preset_rule_lists_every_preset() {
        assert_eq!(PRESET.allowed, format!("one of {}", PRESETS.join(", ")));
        for preset in PRESETS {
            assert_eq!((PRESET.parse)(&preset.to_ascii_uppercase()).as_deref(), Some(preset));
        }
        assert_eq!((PRESET.parse)("quick"), None);
    }

    #[test]
    fn auto_session_is_on_unless_turned_off() {
        assert!(config(&[], "").unwrap().auto_session, "the run is one session by default");
        assert!(!config(&[("AUTO_SESSION", "false")], "").unwrap().auto_session);
        assert!(!config(&[], "auto_session: false").unwrap().auto_session);
        let err = config(&[("AUTO_SESSION", "later")], "").unwrap_err().to_string();
        assert!(err.contains("AUTO_SESSION") && err.contains("later") && err.contains("true or false"), "{err}");
    }

    #[test]
    fn bitrate_switches_to_constant_bitrate() {
        assert_eq!(config(&[("BITRATE", "4M")], "").unwrap().quality.rate, RateControl::Bitrate(4_000_000));
        assert_eq!(config(&[], "bitrate: 2500k").unwrap().quality.rate, RateControl::Bitrate(2_500_000));
        assert!(config(&[("BITRATE", "fast")], "").is_err());
        assert!(config(&[("BITRATE", "0")], "").is_err());
    }

    #[test]
    fn gop_default_follows_fps() {
        assert_eq!(config(&[("FPS", "30")], "").unwrap().quality.gop_frames, 60);
        assert_eq!(config(&[("FPS", "0.2")], "").unwrap().quality.gop_frames, 1);
    }

    #[test]
    fn config_file_is_read_from_disk_and_missing_files_are_named() {
        let path = std::env::temp_dir().join(format!("recorder-config-{}.yml", std::process::id()));
        std::fs::write(&path, "format: avi\nfps: 29.97\ntimestamps: frame\n").unwrap();
        let values = read_yaml_file(path.to_str().unwrap()).unwrap();
        let c = Config::from_lookup(|_| None, &values).unwrap();
        assert_eq!(
            (c.container, c.fps.num, c.fps.den, c.timestamps),
            (Container::Avi, 30000, 1001, TimestampMode::Frame)
        );
        std::fs::remove_file(&path).unwrap();
        let err = read_yaml_file("/nonexistent/recorder.yml").unwrap_err();
        assert!(err.to_string().contains("/nonexistent/recorder.yml"), "{err}");
    }

    #[test]
    fn non_scalar_file_values_are_rejected() {
        assert!(matches!(config(&[], "fps: [1, 2]"), Err(ConfigError::File { .. })));
        assert!(matches!(config(&[], "- fps"), Err(ConfigError::File { .. })));
    }
}
