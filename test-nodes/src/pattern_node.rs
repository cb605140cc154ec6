//! The `dora-test-pattern` node: a hardware-free camera. Each `tick` input sends one
//! [`draw_frame_with_object`] image on the `image` output with the usual dora image metadata;
//! after `MAX_FRAMES` frames it returns, which closes the output for downstream nodes.
//!
//! - Input `tick`: any payload (wire a dora timer); one frame per tick.
//! - Output `image`: flat UInt8 payload; metadata `encoding` (String), `width`, `height`,
//!   `frame_index` (Integer), `primitive` = `"image"`, `object_visible` (Bool: the red object of
//!   [`crate::object`] is in the frame).
//! - Environment: `WIDTH` (default 640), `HEIGHT` (480), `ENCODING` (bgr8, rgb8, rgba8, bgra8,
//!   mono8, yuv420, nv12, or the compressed `jpeg` and `png` of [`crate::compress`]; default
//!   bgr8; or a depth camera, see [`crate::depth`]: `mono16` sends a UInt16 array of
//!   millimetres, `32FC1` a Float32 array of metres, both with `primitive` = `"depth"`),
//!   `SIZE_METADATA` (`false`: no `width`/`height` in the metadata, as Orbbec's JPEG
//!   camera sends), `CORRUPT_EVERY` (N: every Nth frame, indices N-1, 2N-1, ..., is sent cut to
//!   half its bytes, a truncated image or a short raw frame), `MAX_FRAMES` (unset: no limit), `SEND_LOG` (a file that
//!   gets `INDEX UNIX_NANOS` per frame sent), `OBJECT_PERIOD` (frames per step of the object's
//!   schedule, default 30; 0 never draws it), `LOOP_FRAMES` (draw only the first N frames, at
//!   startup, and send them over and over: a camera cheap enough to feed 1080p30 on a small
//!   machine; `frame_index` keeps counting while the picture, barcode included, repeats),
//!   `IMAGE_DIR` (with `ENCODING=jpeg` or `png`: a folder that gets every image sent, byte for
//!   byte, as `INDEX.jpeg` or `INDEX.png` with a 5-digit index, damaged ones included),
//!   `TICK_STEPS` (a cycle of tick counts between frames, e.g. `1,3,2`: a frame on the first
//!   tick, the next 3 ticks later, then 2 later, ...; uneven frame intervals from a regular
//!   timer; default 1, a frame per tick).

use std::{
    fmt,
    io::Write,
    time::{Duration, Instant},
};

use arrow::array::{Float32Array, UInt8Array, UInt16Array};
use dora_node_api::{
    DoraNode, Event, EventStream, MetadataParameters, Parameter, dora_core::config::DataId, uhlc::NTP64,
};
use eyre::WrapErr;

use crate::{
    compress::ImageFormat,
    depth::{DepthEncoding, draw_metres, draw_millimetres},
    encoding::Encoding,
    env,
    object::{DEFAULT_OBJECT_PERIOD, object_visible},
    pattern::{FrameFormat, MAX_DIMENSION, MIN_HEIGHT, MIN_WIDTH, draw_frame_with_object},
};

/// Input that triggers one frame (wire a dora timer to it).
pub const TICK_INPUT: &str = "tick";
/// How long the camera stays after its last frame (see [`linger`]).
const LINGER: Duration = Duration::from_secs(1);
/// Output carrying the frames.
pub const IMAGE_OUTPUT: &str = "image";

/// Environment key of the frame width.
pub const WIDTH_KEY: &str = "WIDTH";
/// Environment key of the frame height.
pub const HEIGHT_KEY: &str = "HEIGHT";
/// Environment key of the pixel encoding.
pub const ENCODING_KEY: &str = "ENCODING";
/// Environment key of the frame limit.
pub const MAX_FRAMES_KEY: &str = "MAX_FRAMES";
/// Environment key of an optional file that gets one line per frame sent: `INDEX UNIX_NANOS`
/// (appended and written through at once, so tests can tell what was sent before a crash).
pub const SEND_LOG_KEY: &str = "SEND_LOG";
/// Environment key of the moving object's schedule period in frames (0 disables the object).
pub const OBJECT_PERIOD_KEY: &str = "OBJECT_PERIOD";
/// Largest accepted `OBJECT_PERIOD`.
pub const MAX_OBJECT_PERIOD: u64 = 1 << 32;
/// Environment key of the number of pre-drawn frames sent in a loop (unset: draw every frame).
pub const LOOP_FRAMES_KEY: &str = "LOOP_FRAMES";
/// Environment key: `false` leaves `width`/`height` out of the frame metadata.
pub const SIZE_METADATA_KEY: &str = "SIZE_METADATA";
/// Environment key: every Nth frame is sent cut to half its bytes.
pub const CORRUPT_EVERY_KEY: &str = "CORRUPT_EVERY";
/// Environment key of a folder that gets every compressed image as sent.
pub const IMAGE_DIR_KEY: &str = "IMAGE_DIR";
/// Environment key of the cycle of tick counts between frames.
pub const TICK_STEPS_KEY: &str = "TICK_STEPS";
/// Largest accepted step of `TICK_STEPS`.
pub const MAX_TICK_STEP: u64 = 1000;
/// Largest accepted `LOOP_FRAMES`: 300 frames of 1080p bgr8 already hold 1.9 GB.
pub const MAX_LOOP_FRAMES: u64 = 300;

/// Frame width when `WIDTH` is unset.
pub const DEFAULT_WIDTH: u32 = 640;
/// Frame height when `HEIGHT` is unset.
pub const DEFAULT_HEIGHT: u32 = 480;
/// Encoding when `ENCODING` is unset.
pub const DEFAULT_ENCODING: Encoding = Encoding::Bgr8;

/// Metadata parameter: the payload's pixel encoding (String).
pub const ENCODING_PARAM: &str = "encoding";
/// Metadata parameter: the image width in pixels (Integer).
pub const WIDTH_PARAM: &str = "width";
/// Metadata parameter: the image height in pixels (Integer).
pub const HEIGHT_PARAM: &str = "height";
/// Metadata parameter: the payload kind, always [`PRIMITIVE_IMAGE`] (String).
pub const PRIMITIVE_PARAM: &str = "primitive";
/// Value of [`PRIMITIVE_PARAM`].
pub const PRIMITIVE_IMAGE: &str = "image";
/// Value of [`PRIMITIVE_PARAM`] for depth frames.
pub const PRIMITIVE_DEPTH: &str = "depth";
/// Metadata parameter: the 0-based index of the frame (Integer), also in the barcode.
pub const FRAME_INDEX_PARAM: &str = "frame_index";
/// Metadata parameter: whether the moving object is drawn in the frame (Bool).
pub const OBJECT_VISIBLE_PARAM: &str = "object_visible";

/// The camera's settings, read once at startup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatternSettings {
    /// Size and encoding of every frame (as drawn: rgb8 when it is then compressed; the size
    /// only, for a depth camera).
    pub format: FrameFormat,
    /// Set for a depth camera: it sends [`crate::depth`] frames in this encoding.
    pub depth: Option<DepthEncoding>,
    /// `ENCODING=jpeg` or `png`: each drawn frame is compressed into this format.
    pub compress: Option<ImageFormat>,
    /// Whether the metadata carries `width` and `height`.
    pub size_metadata: bool,
    /// Every this many frames, one is sent cut to half its bytes (0: never).
    pub corrupt_every: u64,
    /// Frames to send before exiting; `None` sends until the dataflow stops.
    pub max_frames: Option<u64>,
    /// Where to log each frame sent, if anywhere.
    pub send_log: Option<std::path::PathBuf>,
    /// Schedule period of the moving object in frames; 0 never draws it.
    pub object_period: u64,
    /// Frames drawn once at startup and then sent in a loop; `None` draws every frame.
    pub loop_frames: Option<u64>,
    /// Where every compressed image is saved as sent, if anywhere.
    pub image_dir: Option<std::path::PathBuf>,
    /// Ticks between one frame and the next, in a cycle (`[1]`: every tick).
    pub tick_steps: Vec<u64>,
}

impl PatternSettings {
    /// Reads the settings from the process environment.
    pub fn from_env() -> eyre::Result<Self> {
        Self::from_lookup(|key| std::env::var(key).ok())
    }

    /// Reads the settings from an environment lookup; unset or blank keys take the defaults.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> eyre::Result<Self> {
        let width = env::number_in(&lookup, WIDTH_KEY, MIN_WIDTH..=MAX_DIMENSION, DEFAULT_WIDTH)?;
        let height = env::number_in(&lookup, HEIGHT_KEY, MIN_HEIGHT..=MAX_DIMENSION, DEFAULT_HEIGHT)?;
        let depth = env::value(&lookup, ENCODING_KEY).and_then(|raw| DepthEncoding::parse(&raw));
        let (encoding, compress) = if depth.is_some() { (DEFAULT_ENCODING, None) } else { read_encoding(&lookup)? };
        let size_metadata = match env::value(&lookup, SIZE_METADATA_KEY).as_deref() {
            None | Some("true" | "1") => true,
            Some("false" | "0") => false,
            Some(raw) => return Err(env::invalid(SIZE_METADATA_KEY, raw, "true or false")),
        };
        let corrupt_every = env::number_in(&lookup, CORRUPT_EVERY_KEY, 0..=u64::MAX, 0)?;
        let max_frames = read_max_frames(&lookup)?;
        let send_log = env::value(&lookup, SEND_LOG_KEY).map(std::path::PathBuf::from);
        let object_period = env::number_in(&lookup, OBJECT_PERIOD_KEY, 0..=MAX_OBJECT_PERIOD, DEFAULT_OBJECT_PERIOD)?;
        let loop_frames = match env::number_in(&lookup, LOOP_FRAMES_KEY, 0..=MAX_LOOP_FRAMES, 0)? {
            0 => None,
            frames => Some(frames),
        };
        let format = FrameFormat::new(width, height, encoding)?;
        let tick_steps = read_tick_steps(&lookup)?;
        Ok(Self {
            format,
            depth,
            compress,
            size_metadata,
            corrupt_every,
            max_frames,
            send_log,
            object_period,
            loop_frames,
            image_dir: env::value(&lookup, IMAGE_DIR_KEY).map(std::path::PathBuf::from),
            tick_steps,
        })
    }
}

impl fmt::Display for PatternSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let format = &self.format;
        let encoding = match (self.depth, self.compress) {
            (Some(depth), _) => depth.name(),
            (None, Some(compress)) => compress.name(),
            (None, None) => format.encoding().name(),
        };
        write!(f, "{}x{} {encoding}, ", format.width(), format.height())?;
        match self.max_frames {
            Some(max_frames) => write!(f, "max {max_frames} frames, ")?,
            None => f.write_str("unlimited frames, ")?,
        }
        match self.object_period {
            0 => f.write_str("no object")?,
            period => write!(f, "object period {period} frames")?,
        }
        match self.loop_frames {
            Some(frames) => write!(f, ", a loop of {frames} pre-drawn frames"),
            None => Ok(()),
        }
    }
}

/// `ENCODING`, or the default: the raw encoding drawn, and the compression applied after.
fn read_encoding(lookup: &impl Fn(&str) -> Option<String>) -> eyre::Result<(Encoding, Option<ImageFormat>)> {
    let Some(raw) = env::value(lookup, ENCODING_KEY) else {
        return Ok((DEFAULT_ENCODING, None));
    };
    if let Some(compress) = ImageFormat::parse(&raw) {
        return Ok((Encoding::Rgb8, Some(compress)));
    }
    let allowed = format!("one of {}, jpeg, png, mono16, 32FC1", Encoding::allowed_names());
    Ok((Encoding::parse(&raw).ok_or_else(|| env::invalid(ENCODING_KEY, &raw, &allowed))?, None))
}

/// `TICK_STEPS`: comma-separated tick counts in `1..=MAX_TICK_STEP`, or unset for `[1]`.
fn read_tick_steps(lookup: &impl Fn(&str) -> Option<String>) -> eyre::Result<Vec<u64>> {
    let Some(raw) = env::value(lookup, TICK_STEPS_KEY) else {
        return Ok(vec![1]);
    };
    let steps: Option<Vec<u64>> = raw
        .split(',')
        .map(|step| step.trim().parse::<u64>().ok().filter(|step| (1..=MAX_TICK_STEP).contains(step)))
        .collect();
    steps.ok_or_else(|| {
        env::invalid(TICK_STEPS_KEY, &raw, &format!("tick counts 1..={MAX_TICK_STEP} separated by commas"))
    })
}

/// `MAX_FRAMES`: a positive integer, or unset for no limit.
fn read_max_frames(lookup: &impl Fn(&str) -> Option<String>) -> eyre::Result<Option<u64>> {
    let Some(raw) = env::value(lookup, MAX_FRAMES_KEY) else {
        return Ok(None);
    };
    match raw.parse::<u64>() {
        Ok(max_frames) if max_frames > 0 => Ok(Some(max_frames)),
        _ => Err(env::invalid(MAX_FRAMES_KEY, &raw, "a positive integer (leave it unset for no limit)")),
    }
}

/// Runs the camera until the event stream ends or `max_frames` frames are sent; returns the
/// number of frames sent. Logs the settings at start and the count at the end to stderr.
pub fn run(mut node: DoraNode, mut events: EventStream, settings: &PatternSettings) -> eyre::Result<u64> {
    eprintln!("dora-test-pattern: {settings}");
    let mut camera = Camera::new(settings)?;
    while let Some(event) = events.recv() {
        match event {
            Event::Input { id, metadata, .. } if id.as_str() == TICK_INPUT => {
                camera.tick(&mut node, *metadata.timestamp().get_time())?;
                if camera.reached_limit() {
                    eprintln!("dora-test-pattern: reached {MAX_FRAMES_KEY}, exiting");
                    linger(&mut events);
                    break;
                }
            }
            Event::Error(message) => eprintln!("dora-test-pattern: dora error: {message}"),
            // A camera told to stop stops capturing, as node-hub's cameras do. Sending the ticks
            // dora still delivers after a stop would race the daemon closing the recorder's
            // input: such a frame counts as sent but may never reach anyone.
            Event::Stop(_) => break,
            _ => {}
        }
    }
    eprintln!("dora-test-pattern: sent {} frames", camera.frames_sent);
    Ok(camera.frames_sent)
}

/// Stays a moment after the last frame, or until dora stops the node. dora 1.1 sends frames
/// node to node over zenoh but tells receivers that an input closed through the daemon: a node
/// that exits right after its last send can have that close overtake the frame, and a receiver
/// stops reading at the close. Seen under load: a recording one frame short, nothing counted.
fn linger(events: &mut EventStream) {
    let until = Instant::now() + LINGER;
    while let Some(left) = until.checked_duration_since(Instant::now()) {
        match events.recv_timeout(left) {
            None | Some(Event::Stop(_)) => return,
            Some(_) => {}
        }
    }
}

/// The camera's running state: what it sends and how far it got.
struct Camera {
    format: FrameFormat,
    depth: Option<DepthEncoding>,
    compress: Option<ImageFormat>,
    size_metadata: bool,
    corrupt_every: u64,
    max_frames: Option<u64>,
    object_period: u64,
    frames_sent: u64,
    /// Timestamp of the first tick: frame times are measured from it.
    first_tick: Option<NTP64>,
    send_log: Option<std::fs::File>,
    /// With `LOOP_FRAMES`, the frames drawn at startup, sent in turn.
    loop_frames: Vec<Vec<u8>>,
    /// When the loop was drawn: ticks from before then are skipped.
    ready_at: std::time::SystemTime,
    /// Where compressed images are saved as sent.
    image_dir: Option<std::path::PathBuf>,
    /// `TICK_STEPS`, and the ticks still to wait before the next frame.
    tick_steps: Vec<u64>,
    ticks_to_wait: u64,
}

impl Camera {
    /// A camera that has sent nothing yet.
    fn new(settings: &PatternSettings) -> eyre::Result<Self> {
        let send_log = match &settings.send_log {
            Some(path) => Some(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .wrap_err_with(|| format!("cannot open {SEND_LOG_KEY} file {}", path.display()))?,
            ),
            None => None,
        };
        Ok(Self {
            format: settings.format,
            depth: settings.depth,
            compress: settings.compress,
            size_metadata: settings.size_metadata,
            corrupt_every: settings.corrupt_every,
            max_frames: settings.max_frames,
            object_period: settings.object_period,
            frames_sent: 0,
            first_tick: None,
            send_log,
            loop_frames: draw_loop(settings)?,
            ready_at: std::time::SystemTime::now(),
            image_dir: settings.image_dir.clone(),
            tick_steps: settings.tick_steps.clone(),
            ticks_to_wait: 0,
        })
    }

    /// Draws and sends the next frame for a tick sent at `tick_time`.
    fn tick(&mut self, node: &mut DoraNode, tick_time: NTP64) -> eyre::Result<()> {
        // Ticks queued while the loop was drawn would leave as one burst of frames, which dora
        // 1.1's zero-copy path may drop at the sender, unseen by any receiver (dora-rs/dora#3397):
        // a camera delivers frames at its rate, so these are skipped, not sent late.
        if !self.loop_frames.is_empty() && tick_time.to_system_time() < self.ready_at {
            return Ok(());
        }
        if self.ticks_to_wait > 1 {
            self.ticks_to_wait -= 1;
            return Ok(());
        }
        let step = self.tick_steps.len().max(1);
        self.ticks_to_wait = self.tick_steps.get(self.frames_sent as usize % step).copied().unwrap_or(1);
        let first_tick = *self.first_tick.get_or_insert(tick_time);
        let output = DataId::from(IMAGE_OUTPUT.to_owned());
        let sent = if let Some(depth) = self.depth {
            self.send_depth(node, output, depth)
        } else if self.loop_frames.is_empty() {
            let elapsed_millis = millis_between(first_tick, tick_time);
            let drawn = draw_frame_with_object(&self.format, self.frames_sent, elapsed_millis, self.object_period);
            let mut payload = compressed(&self.format, self.compress, drawn)?;
            if self.corrupt_every > 0 && self.frames_sent % self.corrupt_every == self.corrupt_every - 1 {
                payload.truncate(payload.len() / 2);
            }
            self.save_image(&payload)?;
            let parameters = self.parameters(frame_parameters(&self.format, self.frames_sent, self.object_period));
            node.send_output(output, parameters, UInt8Array::from(payload))
        } else {
            let drawn = self.frames_sent % self.loop_frames.len() as u64;
            let payload = &self.loop_frames[drawn as usize];
            self.save_image(payload)?;
            let parameters =
                self.parameters(looped_frame_parameters(&self.format, self.frames_sent, drawn, self.object_period));
            // One copy, straight into dora's shared memory.
            node.send_output_raw(output, parameters, payload.len(), |sample| sample.copy_from_slice(payload))
        };
        sent.wrap_err_with(|| format!("cannot send frame {}", self.frames_sent))?;
        if let Some(log) = &mut self.send_log {
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
            writeln!(log, "{} {}", self.frames_sent, now.as_nanos()).wrap_err("cannot write the send log")?;
        }
        self.frames_sent += 1;
        Ok(())
    }

    /// With `IMAGE_DIR`, saves the compressed image `payload` of the frame being sent.
    fn save_image(&self, payload: &[u8]) -> eyre::Result<()> {
        let (Some(dir), Some(compress)) = (&self.image_dir, self.compress) else { return Ok(()) };
        let path = dir.join(format!("{:05}.{}", self.frames_sent, compress.name()));
        std::fs::write(&path, payload).wrap_err_with(|| format!("cannot save {}", path.display()))
    }

    /// Sends depth frame `frames_sent` in `encoding`.
    fn send_depth(
        &self,
        node: &mut DoraNode,
        output: DataId,
        encoding: DepthEncoding,
    ) -> dora_node_api::NodeResult<()> {
        let (width, height, index) = (self.format.width(), self.format.height(), self.frames_sent);
        let parameters = depth_parameters(&self.format, encoding, index);
        match encoding {
            DepthEncoding::Mono16 => {
                node.send_output(output, parameters, UInt16Array::from(draw_millimetres(width, height, index)))
            }
            DepthEncoding::Float32 => {
                node.send_output(output, parameters, Float32Array::from(draw_metres(width, height, index)))
            }
        }
    }

    /// `parameters` as this camera sends them: its encoding name, its size or none.
    fn parameters(&self, mut parameters: MetadataParameters) -> MetadataParameters {
        if let Some(compress) = self.compress {
            parameters.insert(ENCODING_PARAM.to_owned(), Parameter::String(compress.name().to_owned()));
        }
        if !self.size_metadata {
            parameters.remove(WIDTH_PARAM);
            parameters.remove(HEIGHT_PARAM);
        }
        parameters
    }

    /// Whether `max_frames` frames have been sent.
    fn reached_limit(&self) -> bool {
        self.max_frames.is_some_and(|max_frames| self.frames_sent >= max_frames)
    }
}

/// With `LOOP_FRAMES`, its frames as the first ticks would draw them at 30 fps; else none.
fn draw_loop(settings: &PatternSettings) -> eyre::Result<Vec<Vec<u8>>> {
    let frames = settings.loop_frames.unwrap_or(0);
    (0..frames)
        .map(|index| {
            let drawn = draw_frame_with_object(&settings.format, index, index * 1000 / 30, settings.object_period);
            compressed(&settings.format, settings.compress, drawn)
        })
        .collect()
}

/// `drawn` (rgb8 when `compress` is set) compressed as `compress` says.
fn compressed(format: &FrameFormat, compress: Option<ImageFormat>, drawn: Vec<u8>) -> eyre::Result<Vec<u8>> {
    match compress {
        Some(compress) => compress
            .compress(&drawn, format.width(), format.height())
            .wrap_err_with(|| format!("cannot compress a frame as {}", compress.name())),
        None => Ok(drawn),
    }
}

/// The `frame_index` metadata value of frame `frame_index`.
fn frame_index_parameter(frame_index: u64) -> Parameter {
    Parameter::Integer(i64::try_from(frame_index).unwrap_or(i64::MAX))
}

/// The metadata of frame `frame_index` sent as pre-drawn frame `drawn`: it describes the picture
/// (its object), except the index, which counts on.
fn looped_frame_parameters(
    format: &FrameFormat,
    frame_index: u64,
    drawn: u64,
    object_period: u64,
) -> MetadataParameters {
    let mut parameters = frame_parameters(format, drawn, object_period);
    parameters.insert(FRAME_INDEX_PARAM.to_owned(), frame_index_parameter(frame_index));
    parameters
}

/// The metadata of one frame.
fn frame_parameters(format: &FrameFormat, frame_index: u64, object_period: u64) -> MetadataParameters {
    let string = |value: &str| Parameter::String(value.to_owned());
    MetadataParameters::from([
        (ENCODING_PARAM.to_owned(), string(format.encoding().name())),
        (WIDTH_PARAM.to_owned(), Parameter::Integer(format.width().into())),
        (HEIGHT_PARAM.to_owned(), Parameter::Integer(format.height().into())),
        (PRIMITIVE_PARAM.to_owned(), string(PRIMITIVE_IMAGE)),
        (FRAME_INDEX_PARAM.to_owned(), frame_index_parameter(frame_index)),
        (OBJECT_VISIBLE_PARAM.to_owned(), Parameter::Bool(object_visible(frame_index, object_period))),
    ])
}

/// The metadata of depth frame `frame_index`.
fn depth_parameters(format: &FrameFormat, encoding: DepthEncoding, frame_index: u64) -> MetadataParameters {
    let string = |value: &str| Parameter::String(value.to_owned());
    MetadataParameters::from([
        (ENCODING_PARAM.to_owned(), string(encoding.name())),
        (WIDTH_PARAM.to_owned(), Parameter::Integer(format.width().into())),
        (HEIGHT_PARAM.to_owned(), Parameter::Integer(format.height().into())),
        (PRIMITIVE_PARAM.to_owned(), string(PRIMITIVE_DEPTH)),
        (FRAME_INDEX_PARAM.to_owned(), frame_index_parameter(frame_index)),
    ])
}

/// Whole milliseconds from `start` to `end`, zero if `end` is earlier.
fn millis_between(start: NTP64, end: NTP64) -> u64 {
    if end <= start {
        return 0;
    }
    u64::try_from((end - start).to_duration().as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use dora_node_api::integration_testing::{
        IntegrationTestInput, TestingInput, TestingOptions, TestingOutput, drain_outputs,
        integration_testing_format::{IncomingEvent, TimedIncomingEvent},
        output_channel,
    };

    use super::*;

    fn settings(vars: &[(&str, &str)]) -> eyre::Result<PatternSettings> {
        let vars: BTreeMap<String, String> =
            vars.iter().map(|(key, value)| ((*key).to_owned(), (*value).to_owned())).collect();
        PatternSettings::from_lookup(|key| vars.get(key).cloned())
    }

    #[test]
    fn unset_environment_gives_640x480_bgr8_unlimited() -> eyre::Result<()> {
        let settings = settings(&[])?;
        assert_eq!(settings.format, FrameFormat::new(640, 480, Encoding::Bgr8)?);
        assert_eq!(settings.max_frames, None);
        assert_eq!(settings.object_period, 30);
        assert_eq!(settings.loop_frames, None);
        Ok(())
    }

    #[test]
    fn loop_frames_is_bounded_and_zero_means_off() -> eyre::Result<()> {
        assert_eq!(settings(&[("LOOP_FRAMES", "30")])?.loop_frames, Some(30));
        assert_eq!(settings(&[("LOOP_FRAMES", "0")])?.loop_frames, None);
        let error = settings(&[("LOOP_FRAMES", "301")]).expect_err("beyond the cap").to_string();
        assert!(error.contains("LOOP_FRAMES"), "{error}");
        Ok(())
    }

    #[test]
    fn tick_steps_are_a_cycle_of_positive_counts() -> eyre::Result<()> {
        assert_eq!(settings(&[])?.tick_steps, [1]);
        assert_eq!(settings(&[("TICK_STEPS", "1, 3,2")])?.tick_steps, [1, 3, 2]);
        for bad in ["0", "1,x", "1,,2", "1001"] {
            let error = settings(&[("TICK_STEPS", bad)]).expect_err(bad).to_string();
            assert!(error.contains("TICK_STEPS"), "{error}");
        }
        Ok(())
    }

    #[test]
    fn odd_sizes_and_every_encoding_are_accepted() -> eyre::Result<()> {
        let settings = settings(&[("WIDTH", "641"), ("HEIGHT", "481"), ("ENCODING", "NV12"), ("OBJECT_PERIOD", "0")])?;
        assert_eq!(settings.format, FrameFormat::new(641, 481, Encoding::Nv12)?);
        assert_eq!(settings.object_period, 0);
        Ok(())
    }

    #[test]
    fn bad_values_name_the_key_the_value_and_what_is_allowed() {
        let message = |vars: &[(&str, &str)]| match settings(vars) {
            Ok(settings) => panic!("accepted {settings}"),
            Err(error) => error.to_string(),
        };
        assert_eq!(
            message(&[("ENCODING", "yuyv")]),
            r#"invalid value "yuyv" for ENCODING: expected one of bgr8, rgb8, rgba8, bgra8, mono8, yuv420, nv12, jpeg, png, mono16, 32FC1"#
        );
        assert!(message(&[("WIDTH", "20")]).contains(r#""20" for WIDTH: expected an integer from 48"#));
        assert!(message(&[("HEIGHT", "x")]).contains(r#""x" for HEIGHT"#));
        assert!(message(&[("MAX_FRAMES", "0")]).contains(r#""0" for MAX_FRAMES: expected a positive"#));
        assert!(message(&[("OBJECT_PERIOD", "-1")]).contains(r#""-1" for OBJECT_PERIOD: expected an integer from 0"#));
    }

    fn tick(time_offset_secs: f64) -> TimedIncomingEvent {
        TimedIncomingEvent {
            time_offset_secs,
            event: IncomingEvent::Input { id: TICK_INPUT.into(), metadata: None, data: None },
        }
    }

    #[test]
    fn node_sends_max_frames_images_then_returns() -> eyre::Result<()> {
        let events = vec![tick(0.0), tick(0.01), tick(0.02), tick(0.03)];
        let input = TestingInput::Input(IntegrationTestInput::new("camera".parse()?, events));
        let (sender, mut receiver) = output_channel();
        let (node, events) =
            DoraNode::init_testing(input, TestingOutput::ToChannel(sender), TestingOptions::default())?;
        let settings = settings(&[("WIDTH", "48"), ("HEIGHT", "16"), ("MAX_FRAMES", "2")])?;

        let sent = run(node, events, &settings)?;

        assert_eq!(sent, 2);
        let outputs = drain_outputs(&mut receiver);
        assert_eq!(outputs.len(), 2);
        for output in outputs {
            assert_eq!(output["id"], IMAGE_OUTPUT);
            let data = output["data"].as_array().expect("image data is a JSON array");
            assert_eq!(data.len(), 48 * 16 * 3);
        }
        Ok(())
    }

    #[test]
    fn a_depth_camera_sends_uint16_millimetres_with_depth_metadata() -> eyre::Result<()> {
        let input = TestingInput::Input(IntegrationTestInput::new("camera".parse()?, vec![tick(0.0), tick(0.01)]));
        let (sender, mut receiver) = output_channel();
        let (node, events) =
            DoraNode::init_testing(input, TestingOutput::ToChannel(sender), TestingOptions::default())?;
        let settings = settings(&[("WIDTH", "48"), ("HEIGHT", "16"), ("MAX_FRAMES", "2"), ("ENCODING", "MONO16")])?;
        assert_eq!(settings.depth, Some(DepthEncoding::Mono16));

        assert_eq!(run(node, events, &settings)?, 2);

        let outputs = drain_outputs(&mut receiver);
        let sent: Vec<u64> = outputs[1]["data"]
            .as_array()
            .expect("depth data is a JSON array")
            .iter()
            .filter_map(dora_node_api::serde_json::Value::as_u64)
            .collect();
        let expected: Vec<u64> = draw_millimetres(48, 16, 1).into_iter().map(u64::from).collect();
        assert_eq!(sent, expected);
        let parameters = depth_parameters(&settings.format, DepthEncoding::Mono16, 1);
        assert_eq!(parameters[PRIMITIVE_PARAM], Parameter::String("depth".into()));
        assert_eq!(parameters[ENCODING_PARAM], Parameter::String("mono16".into()));
        Ok(())
    }

    #[test]
    fn loop_mode_repeats_the_pictures_while_the_index_counts_on() -> eyre::Result<()> {
        // Ticks from before the loop was drawn are skipped. Drawing three tiny pictures takes
        // milliseconds, but a loaded machine (the whole suite on two cores) may start the node
        // seconds late: eight ticks over three seconds leave four after it however late it is
        // ready, within reason, and the camera exits at the fourth frame.
        let events = (0..8).map(|i| tick(1.0 + f64::from(i) * 0.4)).collect();
        let input = TestingInput::Input(IntegrationTestInput::new("camera".parse()?, events));
        let (sender, mut receiver) = output_channel();
        let (node, events) =
            DoraNode::init_testing(input, TestingOutput::ToChannel(sender), TestingOptions::default())?;
        let settings = settings(&[("WIDTH", "48"), ("HEIGHT", "16"), ("MAX_FRAMES", "4"), ("LOOP_FRAMES", "3")])?;

        assert_eq!(run(node, events, &settings)?, 4);

        let outputs = drain_outputs(&mut receiver);
        assert_eq!(outputs.len(), 4);
        assert_eq!(outputs[3]["data"], outputs[0]["data"], "the fourth frame repeats the first picture");
        assert_ne!(outputs[1]["data"], outputs[0]["data"], "the loop holds distinct pictures");
        Ok(())
    }

    #[test]
    fn frame_metadata_carries_size_encoding_and_index() {
        let format = FrameFormat::new(64, 48, Encoding::Yuv420).expect("valid test size");
        let parameters = frame_parameters(&format, 7, 5);
        assert_eq!(parameters[ENCODING_PARAM], Parameter::String("yuv420".into()));
        assert_eq!(parameters[WIDTH_PARAM], Parameter::Integer(64));
        assert_eq!(parameters[HEIGHT_PARAM], Parameter::Integer(48));
        assert_eq!(parameters[PRIMITIVE_PARAM], Parameter::String("image".into()));
        assert_eq!(parameters[FRAME_INDEX_PARAM], Parameter::Integer(7));
        assert_eq!(parameters[OBJECT_VISIBLE_PARAM], Parameter::Bool(true));
        assert_eq!(frame_parameters(&format, 7, 0)[OBJECT_VISIBLE_PARAM], Parameter::Bool(false));
    }

    #[test]
    fn looped_frames_count_on_and_describe_the_picture_sent() {
        let format = FrameFormat::new(64, 48, Encoding::Bgr8).expect("valid test size");
        // Period 5: the object shows in frames 5..10, so pre-drawn frame 7 has it and 2 does not.
        let looped = looped_frame_parameters(&format, 37, 7, 5);
        assert_eq!(looped[FRAME_INDEX_PARAM], Parameter::Integer(37));
        assert_eq!(looped[OBJECT_VISIBLE_PARAM], frame_parameters(&format, 7, 5)[OBJECT_VISIBLE_PARAM]);
        assert_ne!(looped_frame_parameters(&format, 32, 2, 5)[OBJECT_VISIBLE_PARAM], looped[OBJECT_VISIBLE_PARAM],);
    }
}
