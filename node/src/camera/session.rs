//! One camera of one session on its own worker thread: a bounded queue in, files out.
//!
//! The event loop only enqueues (never blocks on FFmpeg); a full queue drops the frame and counts
//! it. The worker opens a file at the first frame, starts the next file of the same session when
//! the frame format changes (never a silent rescale), and finalizes on `Finish`.

use std::{
    collections::BTreeMap,
    path::PathBuf,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
        mpsc::Sender,
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use crate::{
    contain::contain_panic,
    detections::Detections,
    encode::{CodecRequest, Container, EncodeError, EncoderKind, EncoderSettings, Quality, VideoWriter},
    frame::{Frame, FrameFormat},
    naming,
    overlay::Overlay,
    queue::{QueueLimits, QueueReceiver, QueueSender, Queued, RecvError, queue},
    report::{FileReport, FileStatus},
    segments::SegmentLimits,
    session::SessionRef,
    sidecars::Sidecars,
    stats::CameraCounters,
    timing::{FrameRate, PtsClock, TimestampMode},
};

/// After a file fails, wait this long before opening the next (a full disk must not spin).
const REOPEN_BACKOFF: Duration = Duration::from_secs(2);

/// How a camera's files are written: where, in which container, with which encoder settings.
/// Shared by session recording ([`CameraRecorder`]) and pre-roll recording
/// ([`crate::clip::ClipRecorder`]).
#[derive(Debug, Clone)]
pub struct FileSettings {
    /// Folder for files.
    pub storage: PathBuf,
    /// Whether file names include the camera (more than one camera wired).
    pub name_camera: bool,
    /// Container.
    pub container: Container,
    /// The requested codec, reported as is.
    pub codec: CodecRequest,
    /// Encoders to open, best first (probed before the worker starts).
    pub candidates: Vec<EncoderKind>,
    /// Encoder quality.
    pub quality: Quality,
    /// Nominal frame rate.
    pub fps: FrameRate,
    /// Timestamp mode.
    pub timestamps: TimestampMode,
    /// Bounds of the queue in front of the encoder, and what a full one does.
    pub queue: QueueLimits,
    /// Whether completed fragments are synced to disk.
    pub fsync: bool,
    /// When to cut the next file of a session.
    pub segments: SegmentLimits,
    /// Whether detector boxes are drawn into the video.
    pub overlay: bool,
}

impl FileSettings {
    /// A fresh PTS clock and the encoder settings for one encoder.
    pub fn encoder_settings(&self) -> (PtsClock, EncoderSettings) {
        let clock = PtsClock::new(self.timestamps, self.fps, self.container.variable_rate());
        let settings = EncoderSettings {
            container: self.container,
            quality: self.quality.clone(),
            fps: self.fps,
            time_base: clock.time_base(),
            fsync: self.fsync,
        };
        (clock, settings)
    }
}

/// What a camera recorder of one session needs.
#[derive(Debug, Clone)]
pub struct RecorderSpec {
    /// The session (its start is time 0 of its timeline).
    pub session: SessionRef,
    /// How the files are written.
    pub files: FileSettings,
}

/// Counts shared between the event loop and the worker, taken by the file they land in.
#[derive(Debug, Default)]
struct Counters {
    skipped: AtomicU64,
    dropped: AtomicU64,
}

enum Command {
    Frame(Frame),
    Detections(Box<DetectionMessage>),
}

impl Queued for Command {
    fn frame_bytes(&self) -> Option<u64> {
        match self {
            Self::Frame(frame) => Some(frame.data.len() as u64),
            Self::Detections(_) => None,
        }
    }
}

/// A detector's output for this camera.
#[derive(Debug, Clone)]
pub struct DetectionMessage {
    /// When the detector sent it (Unix nanoseconds).
    pub time_ns: u64,
    /// Its identifying metadata (the image's, passed through by the detector).
    pub ids: BTreeMap<String, String>,
    /// The boxes.
    pub detections: Detections,
}

/// The event loop's handle on a camera's worker.
pub struct CameraRecorder {
    commands: QueueSender<Command>,
    counters: Arc<Counters>,
    stats: Arc<CameraCounters>,
    worker: JoinHandle<()>,
}

impl CameraRecorder {
    /// Starts the worker thread for `camera`. File events go to `reports`; `stats` counts what
    /// it encodes.
    pub fn spawn(
        spec: RecorderSpec,
        camera: String,
        reports: Sender<FileReport>,
        stats: Arc<CameraCounters>,
    ) -> std::io::Result<Self> {
        let (commands, queue) = queue(spec.files.queue);
        let counters = Arc::new(Counters::default());
        let worker_counters = Arc::clone(&counters);
        let worker_stats = Arc::clone(&stats);
        // Thread names cannot hold NUL bytes: never build one from a session id as sent.
        let thread_name = naming::thread_name(&camera);
        let worker = std::thread::Builder::new().name(thread_name).spawn(move || {
            let overlay = spec.files.overlay.then(Overlay::default);
            let stats = worker_stats;
            Worker { spec, camera, counters: worker_counters, stats, reports, file: None, retry_at: None, overlay }
                .run(queue);
        })?;
        Ok(Self { commands, counters, stats, worker })
    }

    /// Queues a frame (see [`crate::queue`] for what a full queue does); returns how many
    /// queued frames were dropped to make room, already counted.
    pub fn submit(&self, frame: Frame) -> u64 {
        let dropped = self.commands.push(Command::Frame(frame)).len() as u64;
        self.count_dropped(dropped);
        dropped
    }

    /// Queues a detector's output for the file being written (the queue always takes it: only
    /// frames are evicted).
    pub fn submit_detections(&self, message: DetectionMessage) {
        self.commands.push(Command::Detections(Box::new(message)));
    }

    /// Frames and bytes waiting in the queue.
    pub fn queue_depth(&self) -> (u64, u64) {
        let (frames, bytes) = self.commands.depth();
        (frames as u64, bytes)
    }

    /// Counts a frame of this camera that was skipped before reaching the queue.
    pub fn count_skipped(&self) {
        self.counters.skipped.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts frames lost before they reached the worker (its queue, dora's input queue).
    pub fn count_dropped(&self, frames: u64) {
        self.counters.dropped.fetch_add(frames, Ordering::Relaxed);
        self.stats.dropped(frames);
    }

    /// Asks the worker to encode what is queued and finalize; returns the thread to join.
    pub fn finish(self) -> JoinHandle<()> {
        drop(self.commands);
        self.worker
    }
}

/// The file being written.
struct OpenFile {
    writer: VideoWriter,
    path: PathBuf,
    format: FrameFormat,
    clock: PtsClock,
    frames: u64,
    sidecars: Sidecars,
    first_time_ns: u64,
    last_time_ns: u64,
    /// Keeps other recorders' crash recovery away until the file is final (dropped last).
    _lock: std::fs::File,
}

struct Worker {
    spec: RecorderSpec,
    camera: String,
    counters: Arc<Counters>,
    stats: Arc<CameraCounters>,
    reports: Sender<FileReport>,
    file: Option<OpenFile>,
    retry_at: Option<Instant>,
    /// The latest boxes to draw, with `OVERLAY=true`.
    overlay: Option<Overlay>,
}

impl Worker {
    fn run(mut self, queue: QueueReceiver<Command>) {
        loop {
            let outcome = match queue.recv_timeout(Duration::from_secs(3600)) {
                Ok(Command::Frame(frame)) => {
                    let frame = self.overlay.as_ref().and_then(|o| o.draw_on(&frame)).unwrap_or(frame);
                    contain_panic(|| self.record(&frame))
                }
                Ok(Command::Detections(message)) => contain_panic(|| self.detections(&message)),
                Err(RecvError::Timeout) => continue,
                Err(RecvError::Closed) => break,
            };
            if let Err(panic) = outcome {
                self.abandon_after_panic(&panic);
            }
        }
        if let Err(panic) = contain_panic(|| self.close_file(None)) {
            self.abandon_after_panic(&panic);
        }
        let skipped = self.counters.skipped.swap(0, Ordering::Relaxed);
        let dropped = self.counters.dropped.swap(0, Ordering::Relaxed);
        if skipped + dropped > 0 {
            tracing::info!(session = %self.spec.session.id, camera = %self.camera, skipped, dropped, "frames lost after the last file closed");
        }
    }

    fn record(&mut self, frame: &Frame) {
        if self.file.as_ref().is_some_and(|file| file.format != frame.format) {
            tracing::info!(session = %self.spec.session.id, camera = %self.camera, format = %frame.format, "frame format changed: starting the next file");
            self.close_file(None);
        }
        if self.file.as_ref().is_some_and(|file| {
            let secs = file.clock.secs_at(frame.sent_nanos);
            self.spec.files.segments.cut_before(file.frames, secs, || file.writer.bytes_on_disk())
        }) {
            tracing::debug!(session = %self.spec.session.id, camera = %self.camera, "segment limit reached: starting the next file");
            self.close_file(None);
        }
        if self.file.is_none() && !self.open_file(frame) {
            self.counters.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let Some(file) = self.file.as_mut() else { return };
        let pts = file.clock.next_pts(frame.sent_nanos);
        match file.writer.write(frame, pts) {
            Ok(bytes) => {
                self.stats.encoded(bytes);
                let pts_secs = file.clock.time_base().secs(pts);
                file.sidecars.frame_written(file.frames, pts_secs, frame.sent_nanos, &frame.ids);
                file.frames += 1;
                file.last_time_ns = frame.sent_nanos;
            }
            Err(error) => self.close_file(Some(error)),
        }
    }

    /// A detector's output goes beside the file being written; without one it is dropped.
    fn detections(&mut self, message: &DetectionMessage) {
        if let Some(overlay) = &mut self.overlay {
            overlay.remember(message.time_ns, &message.detections);
        }
        match self.file.as_mut() {
            Some(file) => {
                file.sidecars.detections(message.time_ns, &message.ids, &message.detections);
            }
            None => tracing::debug!(camera = %self.camera, "detections with no open file: dropped"),
        }
    }

    /// A bug panicked while this camera was recording: the file keeps what its completed fragments
    /// hold, the panic is reported as the file's failure, and the next frame opens a new file.
    fn abandon_after_panic(&mut self, panic: &str) {
        let error = EncodeError::Panic { reason: panic.to_owned() };
        let path = self.file.as_ref().map(|file| file.path.clone());
        let frames = self.file.as_ref().map_or(0, |file| file.frames);
        // Finalizing may hit the same bug: let a second panic drop the file instead.
        if contain_panic(|| self.close_file(Some(error.clone()))).is_err() {
            self.file = None;
            let mut report = self.report(FileStatus::Failed, path);
            report.frames = frames;
            report.error = Some(error.to_string());
            report.panicked = true;
            let _ = self.reports.send(report);
        }
        tracing::error!(session = %self.spec.session.id, camera = %self.camera, "{error}");
        // A bug hit one frame; nothing suggests the disk needs a rest: the next frame opens a file.
        self.retry_at = None;
    }

    /// Opens the next file for `frame`'s format; false if that failed (or is backing off).
    fn open_file(&mut self, frame: &Frame) -> bool {
        if self.retry_at.is_some_and(|at| Instant::now() < at) {
            return false;
        }
        let stem = naming::file_stem(
            &self.spec.session.id,
            self.spec.files.name_camera.then_some(self.camera.as_str()),
            frame.sent_nanos,
        );
        let (path, lock) =
            match naming::claim_file(&self.spec.files.storage, &stem, self.spec.files.container.extension()) {
                Ok(claimed) => (claimed.path, claimed.lock),
                Err(e) => {
                    let path = self.spec.files.storage.join(&stem);
                    self.report_open_failure(EncodeError::Output { path, reason: e.to_string() });
                    return false;
                }
            };
        let (clock, settings) = self.spec.files.encoder_settings();
        let tags =
            naming::file_tags(&self.spec.session.id, &self.camera, frame.sent_nanos, self.spec.session.start_nanos);
        match VideoWriter::create(
            &path,
            frame.format,
            &self.spec.files.candidates,
            &settings,
            clock.frame_duration(),
            &tags,
        ) {
            Ok((writer, passed_over)) => {
                for passed_over in passed_over {
                    let (reason, encoder) = (passed_over.reason(), writer.encoder_kind().ffmpeg_name());
                    tracing::warn!(session = %self.spec.session.id, camera = %self.camera, "{reason}; using {encoder}");
                }
                tracing::info!(
                    session = %self.spec.session.id, camera = %self.camera, path = %path.display(),
                    codec = self.spec.files.codec.name(), encoder = writer.encoder_kind().ffmpeg_name(), format = %frame.format,
                    "recording started"
                );
                let mut report = self.report(FileStatus::Started, Some(path.clone()));
                report.encoder = Some(writer.encoder_kind().ffmpeg_name());
                report.first_time_ns = Some(frame.sent_nanos);
                let _ = self.reports.send(report);
                let sidecars = Sidecars::open(&path, &frame.ids);
                self.file = Some(OpenFile {
                    writer,
                    path,
                    format: frame.format,
                    clock,
                    frames: 0,
                    sidecars,
                    first_time_ns: frame.sent_nanos,
                    last_time_ns: frame.sent_nanos,
                    _lock: lock,
                });
                self.retry_at = None;
                true
            }
            Err(error) => {
                // Nothing was recorded into the claimed name: leave no empty file behind.
                let _ = std::fs::remove_file(&path);
                self.report_open_failure(error);
                false
            }
        }
    }

    /// Finalizes the open file, if any, and reports it: `Finished`, or `Failed` when `failure`
    /// (a write error) or finalizing went wrong. A failed file still keeps what was written.
    fn close_file(&mut self, failure: Option<EncodeError>) {
        let Some(file) = self.file.take() else { return };
        let encoder = file.writer.encoder_kind().ffmpeg_name();
        let finished = file.writer.finish();
        // The side files keep their rows whatever happened to the video; their own errors are
        // logged by `Sidecars` and do not fail the video.
        let _ = file.sidecars.finish();
        let error = failure.or(finished.as_ref().err().cloned());
        let status = if error.is_some() { FileStatus::Failed } else { FileStatus::Finished };
        let mut report = self.report(status, Some(file.path));
        report.encoder = Some(encoder);
        report.frames = file.frames;
        report.duration_secs = file.clock.duration_secs();
        report.first_time_ns = (file.frames > 0).then_some(file.first_time_ns);
        report.last_time_ns = (file.frames > 0).then_some(file.last_time_ns);
        report.bytes = match &finished {
            Ok(written) => written.bytes,
            Err(_) => report.path.as_ref().and_then(|p| std::fs::metadata(p).ok()).map_or(0, |m| m.len()),
        };
        report.error = error.as_ref().map(ToString::to_string);
        report.panicked = matches!(error, Some(EncodeError::Panic { .. }));
        if let Ok(written) = &finished {
            tracing::debug!(path = %written.path.display(), encoder_delay_frames = written.encoder_delay_frames, syncs = written.sync.syncs, sync_busy_ms = written.sync.busy.as_millis() as u64, indexed = written.indexed, "file details");
        }
        if let Ok(written) = &finished
            && written.packets != file.frames
        {
            tracing::warn!(path = %written.path.display(), frames = file.frames, packets = written.packets, "encoder wrote a different number of packets than frames");
        }
        let path = report.path.as_ref().map(|p| p.display().to_string()).unwrap_or_default();
        match &error {
            None => tracing::info!(
                session = %report.session_id, camera = %report.camera, path, codec = report.codec, encoder,
                frames = report.frames, duration_secs = format_args!("{:.3}", report.duration_secs),
                bytes = report.bytes, skipped = report.skipped, dropped = report.dropped, "recording finished"
            ),
            Some(error) => {
                tracing::error!(session = %report.session_id, camera = %report.camera, path, frames = report.frames, "recording failed: {error}; retrying in {}s", REOPEN_BACKOFF.as_secs());
                self.retry_at = Some(Instant::now() + REOPEN_BACKOFF);
            }
        }
        let _ = self.reports.send(report);
    }

    /// A file could not be opened: report it and back off.
    fn report_open_failure(&mut self, error: EncodeError) {
        tracing::error!(session = %self.spec.session.id, camera = %self.camera, "{error}; retrying in {}s", REOPEN_BACKOFF.as_secs());
        let mut report = self.report(FileStatus::Failed, None);
        report.error = Some(error.to_string());
        let _ = self.reports.send(report);
        self.retry_at = Some(Instant::now() + REOPEN_BACKOFF);
    }

    /// A report for this camera that takes the skip/drop counts accumulated since the last one.
    fn report(&self, status: FileStatus, path: Option<PathBuf>) -> FileReport {
        let take =
            |counter: &AtomicU64| if status == FileStatus::Started { 0 } else { counter.swap(0, Ordering::Relaxed) };
        let mut report = FileReport::new(status, &self.spec.session, &self.camera, path, self.spec.files.codec.name());
        report.skipped = take(&self.counters.skipped);
        report.dropped = take(&self.counters.dropped);
        report
    }
}
