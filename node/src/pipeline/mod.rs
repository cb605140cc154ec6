//! The recorder's state, free of dora types: frames and control messages in (with their send
//! times), camera workers and file reports out. The dora event loop in [`crate::node`] feeds it.

pub mod closing;
pub mod wiring;

use std::{
    collections::BTreeMap,
    sync::mpsc::{self, Receiver, Sender},
    thread::JoinHandle,
    time::{Duration, Instant},
};

use arrow::buffer::Buffer;
use eyre::eyre;

use crate::{
    camera::report::{FileReport, FileStatus},
    camera::{CameraWorker, FileSettings},
    config::Config,
    encode::{CodecProbe, EncoderKind, EncoderSettings, ResolvedCodec},
    frame::{FrameMetadata, FrameRejection, check_frame},
    limiter::LogLimiter,
    pipeline::closing::ClosingCameras,
    pipeline::wiring::{RunSummary, Wiring},
    session::control::{Control, ControlPayload, parse_control},
    session::trigger::Trigger,
    session::{Timeline, UnboundFrames},
    sidecars::live_manifests::LiveManifests,
    sidecars::manifest::EndReason,
    stats::{CameraStats, StatsBook},
    storage::retention::Limits,
    storage::{Retention, prepare_storage},
    timing::{PtsClock, unix_nanos_now},
};

mod clips;
mod detections;
mod sessions;

/// Unbound frames held for a `start` that may arrive late (dora delivers a control message at
/// most a frame or two behind frames sent after it).
const UNBOUND_CAPACITY: usize = 16;

/// A session's resolved encoders, or why none opens.
type SessionCodec = Result<ResolvedCodec, String>;

/// The recorder: sessions, camera workers, counters.
pub struct Pipeline {
    config: Config,
    wiring: Wiring,
    timeline: Timeline,
    unbound: UnboundFrames<(String, crate::frame::Frame)>,
    sessions: BTreeMap<u64, SessionCodec>,
    recorders: BTreeMap<(u64, String), CameraWorker>,
    finishing: Vec<JoinHandle<()>>,
    reports_tx: Sender<FileReport>,
    reports_rx: Receiver<FileReport>,
    auto_session: bool,
    /// Starts and ends clips from detections (`TRIGGER=detections`).
    trigger: Option<Trigger>,
    generated_sessions: u64,
    /// The encoders that open, probed at startup and again when a minute old.
    codec_probe: CodecProbe,
    fallback_logged: bool,
    limiter: LogLimiter,
    summary: RunSummary,
    /// Recorders of cameras that went away, taking their last frames.
    closing: ClosingCameras<(u64, String), CameraWorker>,
    manifests: LiveManifests,
    /// Per-camera recorders with a pre-roll ring (`PRE_ROLL` > 0), instead of `recorders`.
    clips: BTreeMap<String, CameraWorker>,
    retention: Retention,
    /// Per-camera counters and periodic stats.
    stats: StatsBook,
    /// Why sessions still open when the run ends end: the run ended, or every input closed.
    end_of_run: EndReason,
    /// Reports produced by the event loop itself (retention deletions).
    own_reports: Vec<FileReport>,
}

impl Pipeline {
    /// Validates what can be checked before the first frame: the storage folder and an explicit codec.
    pub fn new(config: Config, wiring: Wiring) -> eyre::Result<Self> {
        prepare_storage(&config.storage)?;
        let manifests = LiveManifests::new(&config.storage);
        let config_stats_interval = config.stats_interval;
        let limits = Limits { max_total_bytes: config.max_total_bytes, min_free_bytes: config.min_free_bytes };
        let retention = Retention::new(&config.storage, limits);
        // Probed now, not at the first frame: the first session starts without waiting on it.
        let mut codec_probe = CodecProbe::new(config.codec, probe_settings(&config));
        let probed = codec_probe.resolve(Instant::now());
        if config.codec.is_explicit() {
            probed.map_err(|e| {
                eyre!(
                    "CODEC={} cannot be used: {e}. Alternatives: CODEC=auto (NVENC when it opens, else libx264), libx264, libx265",
                    config.codec.name()
                )
            })?;
        }
        let (reports_tx, reports_rx) = mpsc::channel();
        let timeline = Timeline::new(Duration::from_millis(config.stop_grace_ms));
        Ok(Self {
            auto_session: !wiring.control_wired && config.trigger.is_none(),
            trigger: config.trigger.clone().map(Trigger::new),
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
            codec_probe,
            fallback_logged: false,
            limiter: LogLimiter::default(),
            summary: RunSummary::default(),
            closing: ClosingCameras::default(),
            manifests,
            retention,
            clips: BTreeMap::new(),
            own_reports: Vec::new(),
            end_of_run: EndReason::EndOfRun,
            stats: StatsBook::new(config_stats_interval),
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
        self.stats.counters(camera).frame_in();
        if self.auto_session {
            self.auto_session = false;
            let id = self.config.session_id.clone().unwrap_or_else(|| self.wiring.default_session_id.clone());
            self.start_session(id, sent_nanos, now);
        }
        if self.clip_mode() {
            let session = self.timeline.route(sent_nanos).cloned();
            let dropped = self.submit_clip(camera, frame, session, now);
            self.count_behind(camera, dropped, now);
            return;
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
            .map_err(crate::session::control::ControlError::BadType)
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
                    tracing::info!(session = %session.id, "session stop received; finalizing after late frames");
                    self.manifests.session_ended(session.serial, EndReason::Stop, sent_nanos);
                    self.note_session_ended(session.serial);
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

    /// A camera went away at wall-clock `closed_nanos` (its input closed, its node failed or
    /// restarted): its files are finalized once frames it sent before had time to arrive; the
    /// session and the other cameras go on, and frames it sends later start a new file of the
    /// same session.
    pub fn on_camera_gone(&mut self, camera: &str, closed_nanos: u64, now: Instant) {
        if !self.wiring.is_camera(camera) {
            return;
        }
        self.clips_camera_gone(camera);
        let keys: Vec<(u64, String)> = self.recorders.keys().filter(|(_, name)| name == camera).cloned().collect();
        tracing::info!(camera, files = keys.len(), "camera input closed: finalizing its file");
        for key in keys {
            if let Some(recorder) = self.recorders.remove(&key) {
                self.closing.close(key, recorder, closed_nanos, now + self.timeline.grace());
            }
        }
    }

    /// Per-camera stats when `STATS_INTERVAL` has passed since the last ones.
    pub fn take_stats(&mut self, now: Instant) -> Option<Vec<CameraStats>> {
        let (recorders, clips) = (&self.recorders, &self.clips);
        self.stats.due(now, |camera| {
            let sessions = recorders.iter().filter(|((_, name), _)| name == camera).map(|(_, r)| r.queue_depth());
            let clip = clips.get(camera).map(|clip| clip.queue_depth());
            sessions.chain(clip).fold((0, 0), |(frames, bytes), (f, b)| (frames + f, bytes + b))
        })
    }

    /// Frames dora's own input queue dropped before they reached the node.
    pub fn on_queue_drops(&mut self, input: &str, frames: u64, now: Instant) {
        self.summary.frames_dropped += frames;
        if self.wiring.is_camera(input) {
            self.stats.counters(input).dropped(frames);
        }
        let at = self.timeline.active().map_or(0, |session| session.start_nanos);
        if let Some(worker) = self.worker_at(input, at) {
            worker.count_dropped(frames);
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
        self.expire_clip(now);
        for session in self.timeline.take_expired(now) {
            self.end_session(&session);
        }
        for recorder in self.closing.take_due(now) {
            self.finishing.push(recorder.finish());
        }
        self.reap_workers(false);
        self.manifests.retire_final(now);
        self.enforce_retention(now, false);
    }

    /// File events since the last call.
    pub fn take_reports(&mut self) -> Vec<FileReport> {
        let mut reports: Vec<FileReport> = self.reports_rx.try_iter().collect();
        if reports.iter().any(|r| r.status == FileStatus::Finished) {
            self.enforce_retention(Instant::now(), true);
        }
        reports.append(&mut self.own_reports);
        for report in &reports {
            self.manifests.on_report(report);
            match (report.status, &report.error) {
                (FileStatus::Finished, _) => {
                    self.summary.files_finished += 1;
                    self.summary.frames_recorded += report.frames;
                }
                (FileStatus::Failed, Some(_)) => {
                    self.summary.files_failed += 1;
                    self.summary.worker_panics += u64::from(report.panicked);
                }
                _ => {}
            }
        }
        reports
    }

    /// Every input closed (the cameras are done): sessions still open end for that reason.
    pub fn inputs_closed(&mut self) {
        self.end_of_run = EndReason::InputClosed;
    }

    /// Ends every session and waits until every file is finalized; collect the last reports
    /// with [`take_reports`](Self::take_reports).
    pub fn finish(&mut self) {
        for session in self.timeline.take_all() {
            self.manifests.session_ended(session.serial, self.end_of_run, unix_nanos_now());
            self.end_session(&session);
        }
        self.finish_clips();
        self.reap_workers(true);
        self.summary.frames_unbound += self.unbound.clear() as u64;
    }

    /// The run's counters so far.
    pub fn summary(&self) -> &RunSummary {
        &self.summary
    }

    fn reject_frame(&mut self, camera: &str, sent_nanos: u64, rejection: &FrameRejection, now: Instant) {
        if let Some(worker) = self.worker_at(camera, sent_nanos) {
            worker.count_skipped();
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

    /// The worker that takes `camera`'s frames sent at `sent_nanos`, to count what it lost.
    fn worker_at(&self, camera: &str, sent_nanos: u64) -> Option<&CameraWorker> {
        if self.clip_mode() {
            return self.clips.get(camera);
        }
        let session = self.timeline.route(sent_nanos)?;
        self.recorders.get(&(session.serial, camera.to_owned()))
    }

    /// How every camera's files are written, with the encoders a probe found.
    fn file_settings(&self, candidates: Vec<EncoderKind>) -> FileSettings {
        FileSettings {
            storage: self.config.storage.clone(),
            name_camera: self.wiring.cameras.len() > 1,
            container: self.config.container,
            codec: self.config.codec,
            candidates,
            quality: self.config.quality.clone(),
            fps: self.config.fps,
            timestamps: self.config.timestamps,
            queue: self.config.queue,
            fsync: self.config.fsync,
            segments: self.config.segments,
            overlay: self.config.overlay,
        }
    }

    /// Keeps STORAGE within its limits; files of active sessions are locked or listed as active.
    fn enforce_retention(&mut self, now: Instant, file_finished: bool) {
        let active = self.manifests.active_paths();
        for deleted in self.retention.run(now, file_finished, &active) {
            self.own_reports.push(FileReport::deleted(deleted.video, deleted.bytes, deleted.reason));
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
        fsync: config.fsync,
    }
}
