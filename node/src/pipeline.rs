//! The recorder's state, free of dora types: frames and control messages in (with their send
//! times), camera workers and file reports out. The dora event loop in [`crate::node`] feeds it.

use std::{
    collections::{BTreeMap, HashMap},
    sync::mpsc::{self, Receiver, Sender},
    thread::JoinHandle,
    time::{Duration, Instant},
};

use arrow::buffer::Buffer;
use eyre::{WrapErr, eyre};

use crate::{
    config::Config,
    control::{Control, ControlPayload, parse_control},
    encode::{EncoderSettings, ResolvedCodec, resolve_codec},
    frame::{FrameMetadata, FrameRejection, check_frame},
    recorder::{CameraRecorder, RecorderSpec, Submitted},
    report::{FileReport, FileStatus},
    session::{SessionRef, Timeline, UnboundFrames},
    timing::PtsClock,
};

/// Input carrying session start/stop messages.
pub const CONTROL_INPUT: &str = "control";
/// Input reserved for detector output (clips with pre-roll); not a camera.
pub const DETECTIONS_INPUT: &str = "detections";

/// Unbound frames held for a `start` that may arrive late (dora delivers a control message at
/// most a frame or two behind frames sent after it).
const UNBOUND_CAPACITY: usize = 16;
/// At most one log line per problem and camera in this period; the rest are counted.
const LOG_PERIOD: Duration = Duration::from_secs(5);

/// What a whole run did, for the last log line and for tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunSummary {
    /// Files finalized.
    pub files_finished: u64,
    /// File events with an error.
    pub files_failed: u64,
    /// Frames encoded into finished files.
    pub frames_recorded: u64,
    /// Compressed payloads skipped.
    pub frames_compressed: u64,
    /// Malformed frames rejected.
    pub frames_invalid: u64,
    /// Frames sent while no session was active.
    pub frames_unbound: u64,
    /// Frames dropped because an encoder fell behind.
    pub frames_dropped: u64,
    /// Control messages that could not be understood.
    pub bad_control: u64,
}

/// A session's resolved encoders, or why none opens.
type SessionCodec = Result<ResolvedCodec, String>;

/// Static facts about the dataflow the node runs in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wiring {
    /// Camera input ids as wired (may be empty when unknown, e.g. in tests).
    pub cameras: Vec<String>,
    /// Whether a `control` input is wired.
    pub control_wired: bool,
    /// Session id for a run without control input.
    pub default_session_id: String,
}

impl Wiring {
    /// Classifies the node's input ids: `control` binds sessions, `detections` is reserved,
    /// everything else is a camera.
    pub fn from_inputs(inputs: impl IntoIterator<Item = String>, default_session_id: String) -> Self {
        let inputs: Vec<String> = inputs.into_iter().collect();
        Self {
            cameras: inputs
                .iter()
                .filter(|id| ![CONTROL_INPUT, DETECTIONS_INPUT].contains(&id.as_str()))
                .cloned()
                .collect(),
            control_wired: inputs.iter().any(|id| id == CONTROL_INPUT),
            default_session_id,
        }
    }
}

/// Rate-limits log lines per key: the first in each period passes, the rest are counted.
#[derive(Debug, Default)]
pub struct LogLimiter {
    last: HashMap<String, (Instant, u64)>,
}

impl LogLimiter {
    /// `Some(suppressed since the last line)` if a line may be logged now.
    pub fn allow(&mut self, key: &str, now: Instant) -> Option<u64> {
        match self.last.get_mut(key) {
            Some((at, suppressed)) if now.duration_since(*at) < LOG_PERIOD => {
                *suppressed += 1;
                None
            }
            Some(entry) => {
                let suppressed = entry.1;
                *entry = (now, 0);
                Some(suppressed)
            }
            None => {
                self.last.insert(key.to_owned(), (now, 0));
                Some(0)
            }
        }
    }
}

/// The recorder: sessions, camera workers, counters.
pub struct Pipeline {
    config: Config,
    wiring: Wiring,
    timeline: Timeline,
    unbound: UnboundFrames<(String, crate::frame::Frame)>,
    sessions: BTreeMap<u64, SessionCodec>,
    recorders: BTreeMap<(u64, String), CameraRecorder>,
    finishing: Vec<JoinHandle<()>>,
    reports_tx: Sender<FileReport>,
    reports_rx: Receiver<FileReport>,
    auto_session: bool,
    generated_sessions: u64,
    fallback_logged: bool,
    limiter: LogLimiter,
    summary: RunSummary,
}

impl Pipeline {
    /// Validates what can be checked before the first frame: the storage folder and an explicit codec.
    pub fn new(config: Config, wiring: Wiring) -> eyre::Result<Self> {
        std::fs::create_dir_all(&config.storage).wrap_err_with(|| {
            format!("cannot create STORAGE folder {}: check the path and permissions", config.storage.display())
        })?;
        if config.codec.is_explicit() {
            resolve_codec(config.codec, &probe_settings(&config)).map_err(|e| {
                eyre!(
                    "CODEC={} cannot be used: {e}. Alternatives: CODEC=auto (NVENC when it opens, else libx264), libx264, libx265",
                    config.codec.name()
                )
            })?;
        }
        let (reports_tx, reports_rx) = mpsc::channel();
        let timeline = Timeline::new(Duration::from_millis(config.stop_grace_ms));
        Ok(Self {
            auto_session: !wiring.control_wired,
            config,
            wiring,
            timeline,
            unbound: UnboundFrames::new(UNBOUND_CAPACITY),
            sessions: BTreeMap::new(),
            recorders: BTreeMap::new(),
            finishing: Vec::new(),
            reports_tx,
            reports_rx,
            generated_sessions: 0,
            fallback_logged: false,
            limiter: LogLimiter::default(),
            summary: RunSummary::default(),
        })
    }

    /// A camera frame sent at `sent_nanos`.
    pub fn on_frame(
        &mut self,
        camera: &str,
        metadata: &FrameMetadata,
        sent_nanos: u64,
        data: Result<Buffer, String>,
        now: Instant,
    ) {
        let fallback_size = (self.config.image_width, self.config.image_height);
        let checked = data
            .map_err(FrameRejection::BadPayload)
            .and_then(|data| check_frame(metadata, fallback_size, sent_nanos, data));
        let frame = match checked {
            Ok(frame) => frame,
            Err(rejection) => return self.reject_frame(camera, sent_nanos, &rejection, now),
        };
        if self.auto_session {
            self.auto_session = false;
            let id = self.config.session_id.clone().unwrap_or_else(|| self.wiring.default_session_id.clone());
            self.start_session(id, sent_nanos, now);
        }
        match self.timeline.route(sent_nanos).cloned() {
            Some(session) => self.submit(&session, camera, frame, now),
            None => {
                if self.unbound.hold(sent_nanos, (camera.to_owned(), frame)).is_some() {
                    self.summary.frames_unbound += 1;
                }
            }
        }
    }

    /// A control message sent at `sent_nanos`; `session_id` is its metadata parameter.
    pub fn on_control(
        &mut self,
        payload: Result<ControlPayload, String>,
        session_id: Option<&str>,
        sent_nanos: u64,
        now: Instant,
    ) {
        let control = payload
            .map_err(crate::control::ControlError::BadType)
            .and_then(|payload| parse_control(&payload, session_id));
        self.auto_session = false;
        match control {
            Ok(Control::Start { session_id }) => {
                let id = session_id.unwrap_or_else(|| {
                    self.generated_sessions += 1;
                    format!("session_{}", self.generated_sessions)
                });
                self.start_session(id, sent_nanos, now);
                let (claimed, lost) = self.unbound.claim_from(sent_nanos);
                self.summary.frames_unbound += lost as u64;
                for (camera, frame) in claimed {
                    if let Some(session) = self.timeline.route(frame.sent_nanos).cloned() {
                        self.submit(&session, &camera, frame, now);
                    }
                }
            }
            Ok(Control::Stop) => match self.timeline.stop(sent_nanos, now) {
                Some(session) => {
                    tracing::info!(session = %session.id, "session stop received; finalizing after late frames")
                }
                None => tracing::info!("stop received with no active session: ignored"),
            },
            Err(error) => {
                self.summary.bad_control += 1;
                if let Some(suppressed) = self.limiter.allow("control", now) {
                    tracing::warn!(suppressed, "ignored control message: {error}");
                }
            }
        }
    }

    /// Frames dora's own input queue dropped before they reached the node.
    pub fn on_queue_drops(&mut self, input: &str, frames: u64, now: Instant) {
        self.summary.frames_dropped += frames;
        if let Some(session) = self.timeline.active()
            && let Some(recorder) = self.recorders.get(&(session.serial, input.to_owned()))
        {
            recorder.count_dropped(frames);
        }
        if let Some(suppressed) = self.limiter.allow(&format!("queue-drop/{input}"), now) {
            tracing::warn!(
                camera = input,
                frames,
                suppressed,
                "dora's input queue dropped frames: the recorder is behind; raise queue_size or lower the camera rate"
            );
        }
    }

    /// Periodic work: finalize sessions whose grace has passed, reap finished workers.
    pub fn tick(&mut self, now: Instant) {
        for session in self.timeline.take_expired(now) {
            self.end_session(&session);
        }
        self.reap_workers(false);
    }

    /// File events since the last call.
    pub fn take_reports(&mut self) -> Vec<FileReport> {
        let reports: Vec<FileReport> = self.reports_rx.try_iter().collect();
        for report in &reports {
            match (report.status, &report.error) {
                (FileStatus::Finished, _) => {
                    self.summary.files_finished += 1;
                    self.summary.frames_recorded += report.frames;
                }
                (_, Some(_)) => self.summary.files_failed += 1,
                _ => {}
            }
        }
        reports
    }

    /// Ends every session and waits until every file is finalized; collect the last reports
    /// with [`take_reports`](Self::take_reports).
    pub fn finish(&mut self) {
        for session in self.timeline.take_all() {
            self.end_session(&session);
        }
        self.reap_workers(true);
        self.summary.frames_unbound += self.unbound.clear() as u64;
    }

    /// The run's counters so far.
    pub fn summary(&self) -> &RunSummary {
        &self.summary
    }

    fn start_session(&mut self, id: String, sent_nanos: u64, now: Instant) {
        let (session, ended) = self.timeline.start(id, sent_nanos, now);
        if let Some(ended) = ended {
            tracing::info!(session = %ended.id, next = %session.id, "session ended by the next start");
        }
        let codec = resolve_codec(self.config.codec, &probe_settings(&self.config));
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
        self.sessions.insert(session.serial, codec.map_err(|e| e.to_string()));
    }

    fn end_session(&mut self, session: &SessionRef) {
        let cameras: Vec<(u64, String)> =
            self.recorders.keys().filter(|(serial, _)| *serial == session.serial).cloned().collect();
        for key in cameras {
            if let Some(recorder) = self.recorders.remove(&key) {
                self.finishing.push(recorder.finish());
            }
        }
        self.sessions.remove(&session.serial);
        tracing::debug!(session = %session.id, "session ended");
    }

    fn submit(&mut self, session: &SessionRef, camera: &str, frame: crate::frame::Frame, now: Instant) {
        let Some(recorder) = self.recorder_for(session, camera, now) else {
            self.summary.frames_dropped += 1;
            return;
        };
        if recorder.submit(frame) == Submitted::Dropped {
            self.summary.frames_dropped += 1;
            if let Some(suppressed) = self.limiter.allow(&format!("behind/{camera}"), now) {
                tracing::warn!(session = %session.id, camera, suppressed, queue_frames = self.config.queue_frames, "encoder is behind: queue full, frame dropped; use a faster PRESET or lower FPS/size");
            }
        }
    }

    /// The session's worker for `camera`, started on first use.
    fn recorder_for(&mut self, session: &SessionRef, camera: &str, now: Instant) -> Option<&CameraRecorder> {
        let key = (session.serial, camera.to_owned());
        if !self.recorders.contains_key(&key) {
            let candidates = match self.sessions.get(&session.serial)? {
                Ok(resolved) => resolved.candidates.clone(),
                Err(_) => return None,
            };
            let spec = RecorderSpec {
                session: session.clone(),
                storage: self.config.storage.clone(),
                name_camera: self.wiring.cameras.len() > 1,
                container: self.config.container,
                codec: self.config.codec,
                candidates,
                quality: self.config.quality.clone(),
                fps: self.config.fps,
                timestamps: self.config.timestamps,
                queue_frames: self.config.queue_frames,
            };
            match CameraRecorder::spawn(spec, camera.to_owned(), self.reports_tx.clone()) {
                Ok(recorder) => {
                    self.recorders.insert(key.clone(), recorder);
                }
                Err(error) => {
                    if let Some(suppressed) = self.limiter.allow("spawn", now) {
                        tracing::error!(suppressed, "cannot start an encoder thread: {error}");
                    }
                    return None;
                }
            }
        }
        self.recorders.get(&key)
    }

    fn reject_frame(&mut self, camera: &str, sent_nanos: u64, rejection: &FrameRejection, now: Instant) {
        if let Some(session) = self.timeline.route(sent_nanos)
            && let Some(recorder) = self.recorders.get(&(session.serial, camera.to_owned()))
        {
            recorder.count_skipped();
        }
        let (counter, kind) = if rejection.is_compressed() {
            (&mut self.summary.frames_compressed, "compressed")
        } else {
            (&mut self.summary.frames_invalid, "invalid")
        };
        *counter += 1;
        if let Some(suppressed) = self.limiter.allow(&format!("{kind}/{camera}"), now) {
            if rejection.is_compressed() {
                tracing::debug!(camera, suppressed, "skipped frame: {rejection}");
            } else {
                tracing::warn!(camera, suppressed, "skipped frame: {rejection}");
            }
        }
    }

    /// Joins workers that are done; with `wait`, all of them.
    fn reap_workers(&mut self, wait: bool) {
        let (done, running): (Vec<_>, Vec<_>) =
            self.finishing.drain(..).partition(|worker| wait || worker.is_finished());
        self.finishing = running;
        for worker in done {
            if worker.join().is_err() {
                tracing::error!("an encoder thread panicked; its file keeps the fragments written so far");
            }
        }
    }
}

/// Settings for the codec probe: real quality options, a time base like the files'.
fn probe_settings(config: &Config) -> EncoderSettings {
    let clock = PtsClock::new(config.timestamps, config.fps, config.container.variable_rate());
    EncoderSettings {
        container: config.container,
        quality: config.quality.clone(),
        fps: config.fps,
        time_base: clock.time_base(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wiring_treats_every_unreserved_input_as_a_camera() {
        let inputs = ["image", "control", "detections", "depth"].map(String::from);
        let wiring = Wiring::from_inputs(inputs, "flow".into());
        assert_eq!(wiring.cameras, vec!["image".to_owned(), "depth".to_owned()]);
        assert!(wiring.control_wired);
        assert!(!Wiring::from_inputs(["image".to_owned()], "flow".into()).control_wired);
    }

    #[test]
    fn log_limiter_passes_one_line_per_period_and_counts_the_rest() {
        let t0 = Instant::now();
        let mut limiter = LogLimiter::default();
        assert_eq!(limiter.allow("a", t0), Some(0));
        assert_eq!(limiter.allow("a", t0 + Duration::from_secs(1)), None);
        assert_eq!(limiter.allow("a", t0 + Duration::from_secs(2)), None);
        assert_eq!(limiter.allow("b", t0), Some(0), "keys are independent");
        assert_eq!(limiter.allow("a", t0 + LOG_PERIOD), Some(2));
    }
}
