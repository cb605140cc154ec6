//! The run's camera workers, in the recording mode chosen once at startup: a worker per camera
//! and session, or (with `PRE_ROLL`) one pre-roll worker per camera fed every frame.

use std::{
    collections::BTreeMap,
    sync::{Arc, mpsc::Sender},
    thread::JoinHandle,
    time::Instant,
};

use super::closing::ClosingCameras;
use crate::{
    camera::{
        CameraWorker, DetectionMessage, FileSettings, preroll::PreRollJob, report::FileReport, session::SessionJob,
    },
    encode::{EncoderKind, Quality, ResolvedCodec},
    frame::CameraFrame,
    session::SessionRef,
    stats::CameraCounters,
};

/// A session's resolved encoders, or why none opens.
pub type SessionCodec = Result<ResolvedCodec, String>;

/// How workers are started: the file settings of every camera (without encoders, which each
/// session or camera resolves) and where their reports go.
pub struct Spawner {
    /// File settings; `candidates` is filled per worker.
    pub files: FileSettings,
    /// File events of every worker.
    pub reports: Sender<FileReport>,
}

impl Spawner {
    fn spawn_session(
        &self,
        session: &SessionRef,
        camera: &str,
        candidates: Vec<EncoderKind>,
        stats: Arc<CameraCounters>,
    ) -> std::io::Result<CameraWorker> {
        let files = FileSettings { candidates, ..self.files.clone() };
        let (queue, overlay, copy_jpeg) = (files.queue, files.overlay, files.copies_jpeg());
        let (session, job_camera) = (session.clone(), camera.to_owned());
        let make_job = move |links| SessionJob::new(session, job_camera, files, links);
        CameraWorker::spawn(camera, queue, overlay, copy_jpeg, self.reports.clone(), stats, make_job)
    }

    fn spawn_pre_roll(
        &self,
        camera: &str,
        candidates: Vec<EncoderKind>,
        pre_roll_nanos: u64,
        stats: Arc<CameraCounters>,
    ) -> std::io::Result<CameraWorker> {
        let files = FileSettings { candidates, ..self.files.clone() };
        let (queue, overlay, copy_jpeg) = (files.queue, files.overlay, files.copies_jpeg());
        let job_camera = camera.to_owned();
        let make_job = move |links| PreRollJob::new(job_camera, files, pre_roll_nanos, links);
        CameraWorker::spawn(camera, queue, overlay, copy_jpeg, self.reports.clone(), stats, make_job)
    }
}

/// Why a frame found no worker.
#[derive(Debug)]
pub enum NoWorker {
    /// The session has no encoder that opens (already logged at its start).
    NoEncoder,
    /// The thread could not be started.
    Spawn(std::io::Error),
}

/// The workers of one recording mode.
pub enum Workers {
    /// A worker per camera and session.
    PerSession {
        /// Workers of active (or stopping) sessions.
        live: BTreeMap<(u64, String), CameraWorker>,
        /// Workers of cameras that went away, taking their last frames.
        closing: ClosingCameras<(u64, String), CameraWorker>,
        /// Each session's encoders, resolved at its start.
        codecs: BTreeMap<u64, SessionCodec>,
    },
    /// A pre-roll worker per camera, fed every frame with its session (or none).
    PreRoll {
        /// The workers, started at each camera's first frame.
        cameras: BTreeMap<String, CameraWorker>,
        /// How far before a session's start its file begins.
        pre_roll_nanos: u64,
    },
}

impl Workers {
    /// Pre-roll workers when `pre_roll_secs` > 0, else a worker per session.
    pub fn new(pre_roll_secs: f64) -> Self {
        if pre_roll_secs > 0.0 {
            Self::PreRoll { cameras: BTreeMap::new(), pre_roll_nanos: crate::config::secs_to_nanos(pre_roll_secs) }
        } else {
            Self::PerSession { live: BTreeMap::new(), closing: ClosingCameras::default(), codecs: BTreeMap::new() }
        }
    }

    /// Whether every frame goes to a pre-roll worker, bound to a session or not.
    pub fn is_pre_roll(&self) -> bool {
        matches!(self, Self::PreRoll { .. })
    }

    /// Whether no worker records or finishes a session's file (pre-roll workers only ever feed
    /// their rings between sessions): the moment a recording mode can be swapped.
    pub fn is_idle(&self) -> bool {
        match self {
            Self::PerSession { live, closing, .. } => live.is_empty() && closing.is_empty(),
            Self::PreRoll { .. } => true,
        }
    }

    /// `PRE_ROLL` changed to `secs`: pre-roll workers keep that much from now on. False when
    /// the recording mode has to change for it (from or to 0), which waits until
    /// [`is_idle`](Self::is_idle).
    pub fn set_pre_roll(&mut self, secs: f64) -> bool {
        match self {
            Self::PreRoll { cameras, pre_roll_nanos } if secs > 0.0 => {
                *pre_roll_nanos = crate::config::secs_to_nanos(secs);
                cameras.values().for_each(|worker| worker.pre_roll_changed(*pre_roll_nanos));
                true
            }
            Self::PerSession { .. } => secs <= 0.0,
            Self::PreRoll { .. } => false,
        }
    }

    /// Encoder settings changed at run time: every worker opens its next encoder with them.
    pub fn quality_changed(&self, quality: &Quality) {
        match self {
            Self::PerSession { live, .. } => live.values().for_each(|worker| worker.quality_changed(quality.clone())),
            Self::PreRoll { cameras, .. } => {
                cameras.values().for_each(|worker| worker.quality_changed(quality.clone()))
            }
        }
    }

    /// Session `serial` started with `codec`.
    pub fn session_started(&mut self, serial: u64, codec: SessionCodec) {
        if let Self::PerSession { codecs, .. } = self {
            codecs.insert(serial, codec);
        }
    }

    /// Session `serial` ended: its workers finish (returned, to be joined), or each pre-roll
    /// worker closes its file once the session's last packets are out.
    pub fn session_ended(&mut self, serial: u64) -> Vec<JoinHandle<()>> {
        match self {
            Self::PerSession { live, closing, codecs } => {
                codecs.remove(&serial);
                let keys: Vec<_> = live.keys().filter(|(s, _)| *s == serial).cloned().collect();
                let ended = keys.into_iter().filter_map(|key| live.remove(&key));
                let late = closing.take_matching(|(s, _)| *s == serial);
                ended.chain(late).map(CameraWorker::finish).collect()
            }
            Self::PreRoll { cameras, .. } => {
                cameras.values().for_each(|worker| worker.session_ended(serial));
                Vec::new()
            }
        }
    }

    /// `camera` went away at `closed_nanos`: its files finish once frames sent before had
    /// time to arrive (at `finish_at`); frames it sends later start new files.
    pub fn camera_gone(&mut self, camera: &str, closed_nanos: u64, finish_at: Instant) {
        match self {
            Self::PerSession { live, closing, .. } => {
                let keys: Vec<_> = live.keys().filter(|(_, name)| name == camera).cloned().collect();
                tracing::info!(camera, files = keys.len(), "camera input closed: finalizing its file");
                for key in keys {
                    if let Some(worker) = live.remove(&key) {
                        closing.close(key, worker, closed_nanos, finish_at);
                    }
                }
            }
            Self::PreRoll { cameras, .. } => {
                if let Some(worker) = cameras.get(camera) {
                    worker.camera_gone();
                }
            }
        }
    }

    /// Workers of cameras that went away whose grace has passed.
    pub fn take_due(&mut self, now: Instant) -> Vec<JoinHandle<()>> {
        match self {
            Self::PerSession { closing, .. } => closing.take_due(now).into_iter().map(CameraWorker::finish).collect(),
            Self::PreRoll { .. } => Vec::new(),
        }
    }

    /// Every worker finishes (end of the run).
    pub fn finish_all(&mut self) -> Vec<JoinHandle<()>> {
        match self {
            Self::PerSession { live, closing, .. } => {
                let late = closing.take_matching(|_| true);
                std::mem::take(live).into_values().chain(late).map(CameraWorker::finish).collect()
            }
            Self::PreRoll { cameras, .. } => std::mem::take(cameras).into_values().map(CameraWorker::finish).collect(),
        }
    }

    /// The worker that counts what `camera` loses while `session` records (any session, with
    /// pre-roll).
    pub fn counting(&self, camera: &str, session: Option<&SessionRef>) -> Option<&CameraWorker> {
        match self {
            Self::PerSession { live, .. } => live.get(&(session?.serial, camera.to_owned())),
            Self::PreRoll { cameras, .. } => cameras.get(camera),
        }
    }

    /// Frames and bytes queued for `camera`, over all its workers.
    pub fn queue_depth(&self, camera: &str) -> (u64, u64) {
        let depths: Vec<(u64, u64)> = match self {
            Self::PerSession { live, .. } => {
                live.iter().filter(|((_, name), _)| name == camera).map(|(_, w)| w.queue_depth()).collect()
            }
            Self::PreRoll { cameras, .. } => cameras.get(camera).map(CameraWorker::queue_depth).into_iter().collect(),
        };
        depths.into_iter().fold((0, 0), |(frames, bytes), (f, b)| (frames + f, bytes + b))
    }

    /// Queues `frame` of `camera` for `session` (pre-roll: for the ring too); starts the worker
    /// on first use with `candidates` (pre-roll) or the session's encoders. Returns the frames
    /// dropped to make room.
    pub fn submit(
        &mut self,
        spawner: &Spawner,
        camera: &str,
        frame: CameraFrame,
        session: Option<SessionRef>,
        pre_roll_candidates: impl FnOnce() -> Option<Vec<EncoderKind>>,
        stats: Arc<CameraCounters>,
    ) -> Result<u64, NoWorker> {
        let sent_nanos = frame.sent_nanos();
        match self {
            Self::PerSession { live, closing, codecs } => {
                let Some(session) = session else { return Ok(0) };
                let key = (session.serial, camera.to_owned());
                if let Some(late) = closing.route(&key, sent_nanos) {
                    return Ok(late.submit(frame, Some(session)));
                }
                if !live.contains_key(&key) {
                    let candidates = match codecs.get(&session.serial) {
                        Some(Ok(resolved)) => resolved.candidates.clone(),
                        _ => return Err(NoWorker::NoEncoder),
                    };
                    let worker = spawner.spawn_session(&session, camera, candidates, stats).map_err(NoWorker::Spawn)?;
                    live.insert(key.clone(), worker);
                }
                Ok(live.get(&key).map_or(0, |worker| worker.submit(frame, Some(session))))
            }
            Self::PreRoll { cameras, pre_roll_nanos } => {
                if !cameras.contains_key(camera) {
                    let candidates = pre_roll_candidates().ok_or(NoWorker::NoEncoder)?;
                    let worker =
                        spawner.spawn_pre_roll(camera, candidates, *pre_roll_nanos, stats).map_err(NoWorker::Spawn)?;
                    cameras.insert(camera.to_owned(), worker);
                }
                Ok(cameras.get(camera).map_or(0, |worker| worker.submit(frame, session)))
            }
        }
    }

    /// Queues a detector's output for `camera`'s file of `session`, sent at `sent_nanos`.
    pub fn submit_detections(
        &self,
        camera: &str,
        session: Option<SessionRef>,
        message: DetectionMessage,
    ) -> Result<(), String> {
        match self {
            Self::PerSession { live, closing, .. } => {
                let Some(session) = session else {
                    // Between sessions detections have no video to go beside; that is not an error.
                    tracing::trace!(camera, "detections while no session is recording");
                    return Ok(());
                };
                let key = (session.serial, camera.to_owned());
                let worker = live.get(&key).or_else(|| closing.route(&key, message.time_ns));
                let worker = worker.ok_or_else(|| format!("camera {camera} has no file open"))?;
                worker.submit_detections(Some(session), message);
            }
            Self::PreRoll { cameras, .. } => {
                let worker = cameras.get(camera).ok_or_else(|| format!("camera {camera} has not sent a frame yet"))?;
                worker.submit_detections(session, message);
            }
        }
        Ok(())
    }
}
