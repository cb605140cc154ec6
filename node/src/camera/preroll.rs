//! Recording with pre-roll (`PRE_ROLL`): one encoder per camera runs all the time and keeps the
//! recent past as encoded packets in a [`PacketRing`]; a session's file begins with the ring's
//! packets from the keyframe at or before `start - PRE_ROLL`, then takes the live packets of
//! the same encoder, so the clip shows what happened before whatever started it.
//!
//! Every packet carries the session its frame was bound to (by send time, as in session
//! recording): packets of the file's session are written, the first packet of another session
//! (or of none) closes the file. A session that ends while frames stop arriving is closed after
//! [`ENDING_WAIT`] by flushing the encoder (the next frame opens a new one). Long sessions are
//! cut into segments at keyframes.

use std::{
    collections::{BTreeMap, VecDeque},
    fs::File,
    sync::{Arc, mpsc::Sender},
    thread::JoinHandle,
    time::{Duration, Instant},
};

use crate::{
    contain::contain_panic,
    encode::{EncodeError, EncodedPacket, EncoderKind, EncoderSettings, PacketMuxer, StreamEncoder},
    frame::{Frame, FrameFormat},
    naming,
    overlay::Overlay,
    packet_ring::{PacketRing, RingEntry},
    queue::{QueueReceiver, QueueSender, Queued, RecvError, queue},
    recorder::{DetectionMessage, FileSettings},
    report::{FileReport, FileStatus},
    session::SessionRef,
    sidecars::Sidecars,
    stats::CameraCounters,
    timing::PtsClock,
};

/// How long a file whose session ended waits for the packets still inside the encoder before
/// the encoder is flushed.
pub const ENDING_WAIT: Duration = Duration::from_millis(1000);
/// Most bytes one camera's ring may hold (60 s of 1080p at a generous 32 Mbit/s).
pub const MAX_RING_BYTES: usize = 256 * 1024 * 1024;
/// How often the worker wakes without commands to close files whose session ended.
const WAKE: Duration = Duration::from_millis(100);

/// What a camera's clip recorder needs.
#[derive(Debug, Clone)]
pub struct ClipSpec {
    /// How the files are written.
    pub files: FileSettings,
    /// How far before a session's start its file begins.
    pub pre_roll_nanos: u64,
}

enum Command {
    Frame(Frame, Option<SessionRef>),
    Detections(Option<SessionRef>, Box<DetectionMessage>),
    SessionEnded(u64),
    CameraGone,
}

impl Queued for Command {
    fn frame_bytes(&self) -> Option<u64> {
        match self {
            Self::Frame(frame, _) => Some(frame.data.len() as u64),
            _ => None,
        }
    }
}

/// The event loop's handle on a camera's clip recorder.
pub struct ClipRecorder {
    commands: QueueSender<Command>,
    stats: Arc<CameraCounters>,
    worker: JoinHandle<()>,
}

impl ClipRecorder {
    /// Starts the recorder of `camera`; file events go to `reports`.
    pub fn spawn(
        spec: ClipSpec,
        camera: String,
        reports: Sender<FileReport>,
        stats: Arc<CameraCounters>,
    ) -> std::io::Result<Self> {
        let (commands, queue) = queue(spec.files.queue);
        let worker_stats = Arc::clone(&stats);
        let ring = PacketRing::new(spec.pre_roll_nanos, MAX_RING_BYTES);
        let name = naming::thread_name(&camera);
        // The encoder (swscale inside) is not `Send`: the worker is built on its own thread.
        let worker = std::thread::Builder::new().name(name).spawn(move || {
            let overlay = spec.files.overlay.then(Overlay::default);
            let stats = worker_stats;
            let early_detections = VecDeque::new();
            Worker { spec, camera, reports, stats, encoding: None, ring, file: None, overlay, early_detections }
                .run(queue)
        })?;
        Ok(Self { commands, stats, worker })
    }

    /// Queues a frame bound to `session` (or to none: it only feeds the pre-roll); returns how
    /// many queued frames were dropped to make room, already counted.
    pub fn submit(&self, frame: Frame, session: Option<SessionRef>) -> u64 {
        let dropped = self.commands.push(Command::Frame(frame, session)).len() as u64;
        self.stats.dropped(dropped);
        dropped
    }

    /// Queues a detector's output for the file of `session` (the queue always takes it: only
    /// frames are evicted).
    pub fn submit_detections(&self, session: Option<SessionRef>, message: DetectionMessage) {
        self.commands.push(Command::Detections(session, Box::new(message)));
    }

    /// Frames and bytes waiting in the queue.
    pub fn queue_depth(&self) -> (u64, u64) {
        let (frames, bytes) = self.commands.depth();
        (frames as u64, bytes)
    }

    /// Session `serial` ended: its file closes once its last packets are out.
    pub fn session_ended(&self, serial: u64) {
        self.commands.push(Command::SessionEnded(serial));
    }

    /// The camera went away: finish its file and its encoder.
    pub fn camera_gone(&self) {
        self.commands.push(Command::CameraGone);
    }

    /// Finishes everything and returns the thread to join.
    pub fn finish(self) -> JoinHandle<()> {
        drop(self.commands);
        self.worker
    }
}

/// What each frame in the encoder is, until its packet comes out.
#[derive(Debug, Clone)]
struct FrameInfo {
    time_ns: u64,
    ids: Arc<BTreeMap<String, String>>,
    session: Option<SessionRef>,
}

/// The running encoder of one frame format.
struct Encoding {
    stream: StreamEncoder,
    format: FrameFormat,
    clock: PtsClock,
    settings: EncoderSettings,
    /// Frames sent to the encoder whose packets have not come out yet, oldest first (no
    /// B-frames: packets come out in frame order).
    pending: VecDeque<FrameInfo>,
}

/// The file of the current session.
struct ClipFile {
    session: SessionRef,
    muxer: PacketMuxer,
    sidecars: Sidecars,
    frames: u64,
    first_time_ns: u64,
    last_time_ns: u64,
    /// Set when the session ended: flush the encoder then if the file is still open.
    ending_at: Option<Instant>,
    /// Keeps crash recovery away until the file is final (dropped last).
    _lock: File,
}

type Ring = PacketRing<(EncodedPacket, FrameInfo)>;

fn serial_of(file: &Option<ClipFile>) -> Option<u64> {
    file.as_ref().map(|f| f.session.serial)
}

struct Worker {
    spec: ClipSpec,
    camera: String,
    reports: Sender<FileReport>,
    stats: Arc<CameraCounters>,
    encoding: Option<Encoding>,
    ring: Ring,
    file: Option<ClipFile>,
    /// The latest boxes to draw, with `OVERLAY=true`.
    overlay: Option<Overlay>,
    /// Detections of a session whose file is not open yet (its first frames are still in the
    /// encoder), oldest first.
    early_detections: VecDeque<(u64, DetectionMessage)>,
}

/// Most detections kept for a file that has not opened yet.
const MAX_EARLY_DETECTIONS: usize = 300;

impl Worker {
    fn run(mut self, queue: QueueReceiver<Command>) {
        loop {
            let outcome = match queue.recv_timeout(WAKE) {
                Ok(Command::Frame(frame, session)) => {
                    let frame = self.overlay.as_ref().and_then(|o| o.draw_on(&frame)).unwrap_or(frame);
                    contain_panic(|| self.frame(&frame, session))
                }
                Ok(Command::Detections(session, message)) => contain_panic(|| self.detections(session, &message)),
                Ok(Command::SessionEnded(serial)) => contain_panic(|| self.session_ended(serial)),
                Ok(Command::CameraGone) => contain_panic(|| self.end_stream()),
                Err(RecvError::Timeout) => contain_panic(|| self.close_if_ended()),
                Err(RecvError::Closed) => break,
            };
            if let Err(panic) = outcome {
                self.abandon_after_panic(&panic);
            }
        }
        if let Err(panic) = contain_panic(|| self.end_stream()) {
            self.abandon_after_panic(&panic);
        }
    }

    fn frame(&mut self, frame: &Frame, session: Option<SessionRef>) {
        if self.encoding.as_ref().is_some_and(|e| e.format != frame.format) {
            tracing::info!(camera = %self.camera, format = %frame.format, "frame format changed: restarting the encoder");
            self.end_stream();
        }
        if self.encoding.is_none() && !self.open_encoder(frame.format) {
            return;
        }
        let Some(encoding) = self.encoding.as_mut() else { return };
        let pts = encoding.clock.next_pts(frame.sent_nanos);
        encoding.pending.push_back(FrameInfo { time_ns: frame.sent_nanos, ids: Arc::clone(&frame.ids), session });
        let mut packets = Vec::new();
        if let Err(error) = encoding.stream.encode(frame, pts, &mut packets) {
            tracing::error!(camera = %self.camera, "encoding failed: {error}; restarting the encoder");
            self.close_file(Some(error));
            self.drop_encoder();
            return;
        }
        self.packets_out(packets);
    }

    fn open_encoder(&mut self, format: FrameFormat) -> bool {
        let (clock, settings) = self.spec.files.encoder_settings();
        match StreamEncoder::open(format, &self.spec.files.candidates, &settings, clock.frame_duration()) {
            Ok((stream, _passed_over)) => {
                self.encoding = Some(Encoding { stream, format, clock, settings, pending: VecDeque::new() });
                true
            }
            Err(error) => {
                tracing::error!(camera = %self.camera, "no encoder opens, frames are not recorded: {error}");
                false
            }
        }
    }

    /// Each packet goes to the file of its frame's session (opening it, with pre-roll, or
    /// closing the previous one), then into the ring.
    fn packets_out(&mut self, packets: Vec<EncodedPacket>) {
        for packet in packets {
            let Some(info) = self.encoding.as_mut().and_then(|e| e.pending.pop_front()) else { continue };
            let serial = info.session.as_ref().map(|s| s.serial);
            if self.file.as_ref().is_some_and(|f| Some(f.session.serial) != serial) {
                self.close_file(None);
            }
            if self.segment_ends_before(&packet) {
                let session = self.file.as_ref().map(|f| f.session.clone());
                self.close_file(None);
                if let Some(session) = session {
                    self.open_file(session, &packet, &info, false);
                }
            }
            if self.file.is_none()
                && let Some(session) = info.session.clone()
            {
                self.open_file(session, &packet, &info, true);
            }
            if self.file.is_some() {
                self.write(&packet, &info);
            }
            let entry =
                RingEntry { time_ns: info.time_ns, key: packet.is_key(), bytes: packet.size(), item: (packet, info) };
            self.ring.push(entry);
        }
    }

    /// Whether the segment limit is reached at this keyframe (segments start at keyframes).
    fn segment_ends_before(&self, packet: &EncodedPacket) -> bool {
        let Some(file) = &self.file else { return false };
        packet.is_key()
            && self
                .spec
                .files
                .segments
                .cut_before(file.frames, file.muxer.file_secs(packet.pts()), || file.muxer.bytes_on_disk())
    }

    /// Opens the file of `session`, starting with the ring's packets from the keyframe at or
    /// before `start - PRE_ROLL` when `pre_roll` (the first packet of a session), else at
    /// `packet` (a segment cut, at a keyframe).
    fn open_file(&mut self, session: SessionRef, packet: &EncodedPacket, info: &FrameInfo, pre_roll: bool) {
        let from = session.start_nanos.saturating_sub(self.spec.pre_roll_nanos);
        let past: Vec<(EncodedPacket, FrameInfo)> =
            if pre_roll { self.ring.since(from).map(|e| e.item.clone()).collect() } else { Vec::new() };
        if past.is_empty() && !packet.is_key() {
            tracing::debug!(camera = %self.camera, "waiting for a keyframe to start the file");
            return;
        }
        let Some(encoding) = &self.encoding else { return };
        let first = past.first().map_or(info, |(_, first)| first);
        let stem = naming::file_stem(&session.id, self.spec.files.name_camera.then_some(&self.camera), first.time_ns);
        let claimed = naming::claim_file(&self.spec.files.storage, &stem, self.spec.files.container.extension());
        let tags = naming::file_tags(&session.id, &self.camera, first.time_ns, session.start_nanos);
        let opened = claimed
            .map_err(|e| EncodeError::Output { path: self.spec.files.storage.join(&stem), reason: e.to_string() })
            .and_then(|claimed| {
                PacketMuxer::create(&claimed.path, &encoding.stream, &encoding.settings, &tags)
                    .map(|muxer| (muxer, claimed.lock))
                    .inspect_err(|_| {
                        let _ = std::fs::remove_file(&claimed.path);
                    })
            });
        let (muxer, lock) = match opened {
            Ok(opened) => opened,
            Err(error) => {
                tracing::error!(session = %session.id, camera = %self.camera, "{error}");
                let mut report =
                    FileReport::new(FileStatus::Failed, &session, &self.camera, None, self.spec.files.codec.name());
                report.error = Some(error.to_string());
                let _ = self.reports.send(report);
                return;
            }
        };
        let path = muxer.path().to_owned();
        let encoder = encoding.stream.kind().ffmpeg_name();
        let pre_roll_bytes: usize = past.iter().map(|(packet, _)| packet.size()).sum();
        tracing::info!(
            session = %session.id, camera = %self.camera, path = %path.display(), encoder,
            pre_roll_frames = past.len(), pre_roll_bytes, ring_bytes = self.ring.bytes(), "recording started"
        );
        let mut report = FileReport::new(
            FileStatus::Started,
            &session,
            &self.camera,
            Some(path.clone()),
            self.spec.files.codec.name(),
        );
        report.encoder = Some(encoder);
        report.first_time_ns = Some(first.time_ns);
        let _ = self.reports.send(report);
        let sidecars = Sidecars::open(&path, &first.ids);
        let first_time_ns = first.time_ns;
        self.file = Some(ClipFile {
            session,
            muxer,
            sidecars,
            frames: 0,
            first_time_ns,
            last_time_ns: first_time_ns,
            ending_at: None,
            _lock: lock,
        });
        for (past_packet, past_info) in &past {
            self.write(past_packet, past_info);
        }
        let early = std::mem::take(&mut self.early_detections);
        let (ours, others): (VecDeque<_>, VecDeque<_>) =
            early.into_iter().partition(|(s, _)| Some(*s) == serial_of(&self.file));
        self.early_detections = others;
        if let Some(file) = self.file.as_mut() {
            for (_, message) in ours {
                file.sidecars.detections(message.time_ns, &message.ids, &message.detections);
            }
        }
    }

    fn write(&mut self, packet: &EncodedPacket, info: &FrameInfo) {
        let Some(file) = self.file.as_mut() else { return };
        match file.muxer.write(packet) {
            Ok(()) => {
                self.stats.encoded(packet.size() as u64);
                let pts_secs = file.muxer.file_secs(packet.pts());
                file.sidecars.frame_written(file.frames, pts_secs, info.time_ns, &info.ids);
                file.frames += 1;
                file.last_time_ns = info.time_ns;
            }
            Err(error) => self.close_file(Some(error)),
        }
    }

    fn detections(&mut self, session: Option<SessionRef>, message: &DetectionMessage) {
        if let Some(overlay) = &mut self.overlay {
            overlay.remember(message.time_ns, &message.detections);
        }
        let Some(serial) = session.map(|s| s.serial) else { return };
        match self.file.as_mut() {
            Some(file) if file.session.serial == serial => {
                file.sidecars.detections(message.time_ns, &message.ids, &message.detections);
            }
            _ => {
                // The session's file opens when its first frame leaves the encoder.
                if self.early_detections.len() == MAX_EARLY_DETECTIONS {
                    self.early_detections.pop_front();
                }
                self.early_detections.push_back((serial, message.clone()));
            }
        }
    }

    fn session_ended(&mut self, serial: u64) {
        if let Some(file) = self.file.as_mut().filter(|f| f.session.serial == serial) {
            file.ending_at = Some(Instant::now() + ENDING_WAIT);
        }
    }

    /// A file whose session ended and whose last packets did not come out: flush the encoder.
    fn close_if_ended(&mut self) {
        if self.file.as_ref().and_then(|f| f.ending_at).is_some_and(|at| Instant::now() >= at) {
            self.end_stream();
        }
    }

    /// Flushes the encoder into the file, closes it, and forgets the encoder and the ring (the
    /// next frame starts a new encoder).
    fn end_stream(&mut self) {
        let mut packets = Vec::new();
        if let Some(encoding) = self.encoding.as_mut()
            && let Err(error) = encoding.stream.flush(&mut packets)
        {
            tracing::warn!(camera = %self.camera, "flushing the encoder failed: {error}");
        }
        self.packets_out(packets);
        self.close_file(None);
        self.drop_encoder();
    }

    fn drop_encoder(&mut self) {
        self.encoding = None;
        self.ring.clear();
    }

    fn close_file(&mut self, failure: Option<EncodeError>) {
        let Some(file) = self.file.take() else { return };
        let (kind, delay) =
            self.encoding.as_ref().map_or((EncoderKind::Libx264, 0), |e| (e.stream.kind(), e.stream.delay_frames()));
        let path = file.muxer.path().to_owned();
        let finished = file.muxer.finish(failure, kind, delay);
        let _ = file.sidecars.finish();
        let status = if finished.is_ok() { FileStatus::Finished } else { FileStatus::Failed };
        let mut report =
            FileReport::new(status, &file.session, &self.camera, Some(path.clone()), self.spec.files.codec.name());
        report.encoder = Some(kind.ffmpeg_name());
        report.frames = file.frames;
        report.duration_secs = (file.last_time_ns.saturating_sub(file.first_time_ns)) as f64 / 1e9;
        report.first_time_ns = (file.frames > 0).then_some(file.first_time_ns);
        report.last_time_ns = (file.frames > 0).then_some(file.last_time_ns);
        match finished {
            Ok(written) => {
                report.bytes = written.bytes;
                tracing::info!(session = %file.session.id, camera = %self.camera, path = %path.display(), frames = file.frames, bytes = written.bytes, "recording finished");
            }
            Err(error) => {
                report.bytes = std::fs::metadata(&path).map_or(0, |m| m.len());
                report.panicked = matches!(error, EncodeError::Panic { .. });
                tracing::error!(session = %file.session.id, camera = %self.camera, path = %path.display(), "recording failed: {error}");
                report.error = Some(error.to_string());
            }
        }
        let _ = self.reports.send(report);
    }

    /// A bug panicked: the file ends with the panic as its failure, the encoder starts over.
    fn abandon_after_panic(&mut self, panic: &str) {
        let error = EncodeError::Panic { reason: panic.to_owned() };
        tracing::error!(camera = %self.camera, "{error}");
        if contain_panic(|| self.close_file(Some(error.clone()))).is_err() {
            self.file = None;
        }
        self.drop_encoder();
    }
}
