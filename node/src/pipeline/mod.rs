//! The recorder's state, free of dora types: frames and control messages in (with their send
//! times), camera workers and file reports out. The dora event loop in [`crate::node`] feeds it,
//! with one [`Now`] per event.
//!
//! Its parts: the session [`Timeline`] (which session a frame belongs to), the camera
//! [`Workers`] (in the recording mode chosen at startup), and the [`Books`] (manifests,
//! retention, counters).

pub mod books;
pub mod closing;
mod detections;
mod params;
mod sessions;
pub mod wiring;
pub mod workers;

use std::{
    sync::{
        Arc,
        mpsc::{self, Receiver},
    },
    thread::JoinHandle,
    time::Duration,
};

use eyre::eyre;

use self::{
    books::Books,
    wiring::{RunSummary, Wiring},
    workers::{NoWorker, Spawner, Workers},
};
use crate::{
    camera::{FileSettings, copy::Compressed, report::FileReport},
    config::Config,
    encode::{CodecProbe, EncoderSettings},
    frame::{CameraFrame, FrameMetadata, FrameRejection, Payload, check_input},
    limiter::LogLimiter,
    params::Overrides,
    session::{
        Timeline, UnboundFrames,
        control::{Control, ControlError, ControlPayload, parse_control},
        trigger::Trigger,
    },
    sidecars::manifest::{EndReason, SessionCause},
    stats::{CameraStats, StatsBook},
    storage::prepare_storage,
    timing::{Now, PtsClock},
};

/// Unbound frames held for a `start` that may arrive late (dora delivers a control message at
/// most a frame or two behind frames sent after it).
const UNBOUND_CAPACITY: usize = 16;

/// The recorder: sessions, camera workers, bookkeeping.
pub struct Pipeline {
    config: Config,
    wiring: Wiring,
    timeline: Timeline,
    unbound: UnboundFrames<(String, CameraFrame)>,
    workers: Workers,
    spawner: Spawner,
    /// Workers told to finish, joined once done.
    finishing: Vec<JoinHandle<()>>,
    reports: Receiver<FileReport>,
    /// Whether the first frame starts the run's one session (no `control` input, no trigger,
    /// `AUTO_SESSION` on, and no session parameter or control message came first).
    auto_session: bool,
    /// Settings changed at run time (`config` keeps the startup values).
    overrides: Overrides,
    /// A `PRE_ROLL` that changes the recording mode, applied once no session is recording.
    pending_pre_roll: Option<f64>,
    /// Starts and ends clips from detections (`TRIGGER=detections`).
    trigger: Option<Trigger>,
    generated_sessions: u64,
    /// The encoders that open, probed at startup and again when a minute old.
    codec_probe: CodecProbe,
    fallback_logged: bool,
    limiter: LogLimiter,
    /// Per-camera counters and periodic stats.
    stats: StatsBook,
    books: Books,
    /// Why sessions still open when the run ends end: the run ended, or every input closed.
    end_of_run: EndReason,
}

impl Pipeline {
    /// Validates what can be checked before the first frame: the storage folder and an explicit
    /// codec.
    pub fn new(config: Config, wiring: Wiring, now: Now) -> eyre::Result<Self> {
        prepare_storage(&config.storage)?;
        // Probed now, not at the first frame: the first session starts without waiting on it.
        let mut codec_probe = CodecProbe::new(config.codec, probe_settings(&config));
        let probed = codec_probe.resolve(now.instant);
        if config.codec.is_explicit() {
            probed.map_err(|e| {
                eyre!(
                    "CODEC={} cannot be used: {e}. Alternatives: CODEC=auto (NVENC when it opens, else libx264), libx264, libx265",
                    config.codec.name()
                )
            })?;
        }
        let (reports_tx, reports) = mpsc::channel();
        let spawner = Spawner { files: file_settings(&config, &wiring), reports: reports_tx };
        Ok(Self {
            auto_session: config.auto_session && !wiring.control_wired && config.trigger.is_none(),
            overrides: Overrides::default(),
            pending_pre_roll: None,
            trigger: config.trigger.clone().map(Trigger::new),
            timeline: Timeline::new(Duration::from_millis(config.stop_grace_ms)),
            unbound: UnboundFrames::new(UNBOUND_CAPACITY),
            workers: Workers::new(config.pre_roll_secs),
            spawner,
            finishing: Vec::new(),
            reports,
            generated_sessions: 0,
            codec_probe,
            fallback_logged: false,
            limiter: LogLimiter::default(),
            stats: StatsBook::new(config.stats_interval),
            books: Books::new(&config),
            end_of_run: EndReason::EndOfRun,
            config,
            wiring,
        })
    }

    /// A camera frame sent at `sent_nanos`.
    pub fn on_frame(
        &mut self,
        camera: &str,
        metadata: &FrameMetadata,
        sent_nanos: u64,
        data: Result<Payload, String>,
        now: Now,
    ) {
        let fallback_size = (self.config.image_width, self.config.image_height);
        let checked = data
            .map_err(FrameRejection::BadPayload)
            .and_then(|data| check_input(metadata, fallback_size, sent_nanos, data));
        let frame = match checked {
            Ok(frame) => frame,
            Err(rejection) => return self.reject_frame(camera, sent_nanos, &rejection, now),
        };
        self.stats.counters(camera).frame_in();
        if self.auto_session {
            self.auto_session = false;
            let id = self.config.session_id.clone().unwrap_or_else(|| self.wiring.default_session_id.clone());
            self.start_session(id, sent_nanos, SessionCause::RunStart, now);
        }
        let session = self.timeline.route(sent_nanos).cloned();
        if session.is_none() && !self.workers.is_pre_roll() {
            if self.unbound.hold(sent_nanos, (camera.to_owned(), frame)).is_some() {
                self.books.summary.frames_unbound += 1;
            }
            return;
        }
        self.submit(camera, frame, session, now);
    }

    /// A control message sent at `sent_nanos`; `session_id` is its metadata parameter.
    pub fn on_control(
        &mut self,
        payload: Result<ControlPayload, String>,
        session_id: Option<&str>,
        sent_nanos: u64,
        now: Now,
    ) {
        let control = payload.map_err(ControlError::BadType).and_then(|payload| parse_control(&payload, session_id));
        self.auto_session = false;
        match control {
            Ok(Control::Start { session_id }) => {
                let id = session_id.unwrap_or_else(|| {
                    self.generated_sessions += 1;
                    format!("session_{}", self.generated_sessions)
                });
                self.start_and_claim(id, sent_nanos, SessionCause::ControlMessage, now);
            }
            Ok(Control::Stop) => self.stop_session(sent_nanos, EndReason::Stop, SessionCause::ControlMessage, now),
            Err(error) => {
                self.books.summary.bad_control += 1;
                if let Some(suppressed) = self.limiter.allow("control", now.instant) {
                    tracing::warn!(suppressed, "ignored control message: {error}");
                }
            }
        }
    }

    /// A camera went away (its input closed, its node failed or restarted): its files are
    /// finalized once frames it sent before had time to arrive; the session and the other
    /// cameras go on, and frames it sends later start a new file of the same session.
    pub fn on_camera_gone(&mut self, camera: &str, now: Now) {
        if self.wiring.is_camera(camera) {
            self.workers.camera_gone(camera, now.unix_nanos, now.instant + self.timeline.grace());
        }
    }

    /// Per-camera stats when `STATS_INTERVAL` has passed since the last ones.
    pub fn take_stats(&mut self, now: Now) -> Option<Vec<CameraStats>> {
        let workers = &self.workers;
        self.stats.due(now.instant, |camera| workers.queue_depth(camera))
    }

    /// Frames dora's own input queue dropped before they reached the node.
    pub fn on_queue_drops(&mut self, input: &str, frames: u64, now: Now) {
        self.books.summary.frames_dropped += frames;
        if self.wiring.is_camera(input) {
            self.stats.counters(input).dropped(frames);
        }
        if let Some(worker) = self.workers.counting(input, self.timeline.active()) {
            worker.count_dropped(frames);
        }
        if let Some(suppressed) = self.limiter.allow(&format!("queue-drop/{input}"), now.instant) {
            tracing::warn!(
                camera = input,
                frames,
                suppressed,
                "dora's input queue dropped frames: the recorder is behind; raise queue_size or lower the camera rate"
            );
        }
    }

    /// Periodic work: finalize sessions whose grace has passed, reap finished workers, keep
    /// the books.
    pub fn tick(&mut self, now: Now) {
        self.expire_clip(now);
        for session in self.timeline.take_expired(now.instant) {
            self.end_session(&session);
        }
        let due = self.workers.take_due(now.instant);
        self.finishing.extend(due);
        self.switch_mode_when_idle();
        self.reap_workers(false);
        self.books.tick(now);
    }

    /// File events since the last call (retention deletions included).
    pub fn take_reports(&mut self, now: Now) -> Vec<FileReport> {
        let mut reports: Vec<FileReport> = self.reports.try_iter().collect();
        self.books.book(&mut reports, now);
        reports
    }

    /// Every input closed (the cameras are done): sessions still open end for that reason.
    pub fn inputs_closed(&mut self) {
        self.end_of_run = EndReason::InputClosed;
    }

    /// Ends every session and waits until every file is finalized; collect the last reports
    /// with [`take_reports`](Self::take_reports).
    pub fn finish(&mut self, now: Now) {
        for session in self.timeline.take_all() {
            self.books.session_ended(session.serial, self.end_of_run, SessionCause::EndOfRun, now.unix_nanos);
            self.end_session(&session);
        }
        let all = self.workers.finish_all();
        self.finishing.extend(all);
        self.reap_workers(true);
        self.books.summary.frames_unbound += self.unbound.clear() as u64;
    }

    /// The run's counters so far.
    pub fn summary(&self) -> &RunSummary {
        &self.books.summary
    }

    /// Hands `frame` to its worker (started on first use) and counts what a full queue dropped.
    fn submit(&mut self, camera: &str, frame: CameraFrame, session: Option<crate::session::SessionRef>, now: Now) {
        let stats = self.stats.counters(camera);
        let (probe, limiter) = (&mut self.codec_probe, &mut self.limiter);
        let pre_roll_candidates = || match probe.resolve(now.instant) {
            Ok(resolved) => Some(resolved.candidates),
            Err(error) => {
                if let Some(suppressed) = limiter.allow("pre-roll-codec", now.instant) {
                    tracing::error!(suppressed, "no encoder opens, nothing will be recorded: {error}");
                }
                None
            }
        };
        let submitted =
            self.workers.submit(&self.spawner, camera, frame, session, pre_roll_candidates, Arc::clone(&stats));
        let dropped = match submitted {
            Ok(dropped) => dropped,
            Err(no_worker) => {
                if let NoWorker::Spawn(error) = no_worker
                    && let Some(suppressed) = self.limiter.allow("spawn", now.instant)
                {
                    tracing::error!(camera, suppressed, "cannot start an encoder thread: {error}");
                }
                stats.dropped(1);
                1
            }
        };
        self.count_behind(camera, dropped, now);
    }

    /// `dropped` frames of `camera` were lost because its encoder is behind (already counted
    /// per camera): one rate-limited line, and the run's counter.
    fn count_behind(&mut self, camera: &str, dropped: u64, now: Now) {
        if dropped == 0 {
            return;
        }
        self.books.summary.frames_dropped += dropped;
        if let Some(suppressed) = self.limiter.allow(&format!("behind/{camera}"), now.instant) {
            let queue = self.config.queue;
            tracing::warn!(
                camera,
                dropped,
                suppressed,
                queue_frames = queue.frames,
                queue_bytes = queue.bytes,
                "encoder is behind: queue full, oldest frames dropped; use a faster PRESET, lower FPS/size, or OVERFLOW=block"
            );
        }
    }

    fn reject_frame(&mut self, camera: &str, sent_nanos: u64, rejection: &FrameRejection, now: Now) {
        if let Some(worker) = self.workers.counting(camera, self.timeline.route(sent_nanos)) {
            worker.count_skipped();
        }
        let (counter, kind) = if rejection.is_compressed() {
            (&mut self.books.summary.frames_compressed, "compressed")
        } else {
            (&mut self.books.summary.frames_invalid, "invalid")
        };
        *counter += 1;
        if let Some(suppressed) = self.limiter.allow(&format!("{kind}/{camera}"), now.instant) {
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

/// How every camera's files are written (encoders are resolved per session or camera).
fn file_settings(config: &Config, wiring: &Wiring) -> FileSettings {
    if config.compressed == Compressed::Copy && config.overlay {
        tracing::warn!(
            "OVERLAY=true draws boxes into decoded pictures: JPEG cameras are decoded and encoded, COMPRESSED=copy does not apply"
        );
    }
    FileSettings {
        storage: config.storage.clone(),
        name_camera: wiring.cameras.len() > 1,
        container: config.container,
        codec: config.codec,
        candidates: Vec::new(),
        quality: config.quality.clone(),
        fps: config.fps,
        timestamps: config.timestamps,
        queue: config.queue,
        fsync: config.fsync,
        segments: config.segments,
        overlay: config.overlay,
        depth_encoder: config.depth_encoder,
        compressed: config.compressed,
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
