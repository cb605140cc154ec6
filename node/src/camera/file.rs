//! One recording file, whichever worker feeds it: claims its name in STORAGE, muxes encoded
//! packets, writes the side files, counts frames and times, and closes into a [`FileReport`].
//! The session worker and the pre-roll worker differ in where packets come from, never in how a
//! file is written or reported.

use std::{
    collections::{BTreeMap, VecDeque},
    fs::File,
    path::{Path, PathBuf},
    sync::atomic::{AtomicU64, Ordering},
};

use super::{
    encoding::{EncodedFrame, Encoding},
    report::{FileReport, FileStatus},
    settings::FileSettings,
    worker::DetectionMessage,
};
use crate::{
    detections::Detections,
    encode::{CopyStream, EncodeError, EncoderKind, PacketMuxer},
    session::SessionRef,
    sidecars::Sidecars,
    storage::{claim, naming},
};

/// Frames of a camera lost before they reached a file, counted by the event loop and the worker
/// and reported with the file that was open (or opens next).
#[derive(Debug, Default)]
pub struct LostFrames {
    skipped: AtomicU64,
    dropped: AtomicU64,
}

impl LostFrames {
    /// A frame was skipped as compressed or invalid.
    pub fn skipped(&self) {
        self.skipped.fetch_add(1, Ordering::Relaxed);
    }

    /// `frames` were dropped (queue full, dora's input queue, no file).
    pub fn dropped(&self, frames: u64) {
        self.dropped.fetch_add(frames, Ordering::Relaxed);
    }

    /// Moves the counts so far into `report`.
    fn take_into(&self, report: &mut FileReport) {
        report.skipped = self.skipped.swap(0, Ordering::Relaxed);
        report.dropped = self.dropped.swap(0, Ordering::Relaxed);
    }

    /// Counts that no file took (the worker ended with no file open).
    pub fn take_leftover(&self) -> (u64, u64) {
        (self.skipped.swap(0, Ordering::Relaxed), self.dropped.swap(0, Ordering::Relaxed))
    }
}

/// Most detections kept for a file that has not opened yet.
const MAX_EARLY_DETECTIONS: usize = 300;

/// Detections of sessions whose file has not opened yet: a file opens when its first frame
/// leaves the encoder, a few frames after the detector may already have answered.
#[derive(Debug, Default)]
pub struct EarlyDetections {
    waiting: VecDeque<(u64, DetectionMessage)>,
}

impl EarlyDetections {
    /// Keeps `message` for the file of session `serial` (the oldest go when too many wait).
    pub fn keep(&mut self, serial: u64, message: &DetectionMessage) {
        if self.waiting.len() == MAX_EARLY_DETECTIONS {
            self.waiting.pop_front();
        }
        self.waiting.push_back((serial, message.clone()));
    }

    /// Writes the detections waiting for `file`'s session into it, oldest first.
    pub fn write_into(&mut self, file: &mut RecordingFile) {
        let serial = file.session().serial;
        let (ours, others): (VecDeque<_>, VecDeque<_>) =
            std::mem::take(&mut self.waiting).into_iter().partition(|(s, _)| *s == serial);
        self.waiting = others;
        for (_, message) in ours {
            file.detections(message.time_ns, &message.ids, &message.detections);
        }
    }
}

/// Who writes a file: the session, the camera, and how files are named and muxed.
pub struct FileOwner<'a> {
    /// The session the file belongs to.
    pub session: &'a SessionRef,
    /// The camera input id.
    pub camera: &'a str,
    /// How files are written.
    pub files: &'a FileSettings,
}

impl FileOwner<'_> {
    /// An event about a file of this camera and session.
    pub fn report(&self, status: FileStatus, path: Option<PathBuf>) -> FileReport {
        FileReport::new(status, self.session, self.camera, path, self.files.codec.name())
    }

    /// The event for a file that could not be opened (its error already logged).
    pub fn open_failed(&self, error: &EncodeError) -> FileReport {
        let mut report = self.report(FileStatus::Failed, None);
        report.error = Some(error.to_string());
        report
    }
}

/// A file being written.
pub struct RecordingFile {
    session: SessionRef,
    camera: String,
    codec: &'static str,
    /// `None` for JPEGs copied as they came.
    encoder: Option<EncoderKind>,
    muxer: PacketMuxer,
    sidecars: Sidecars,
    frames: u64,
    first_time_ns: u64,
    last_time_ns: u64,
    last_pts: Option<i64>,
    frame_secs: f64,
    /// Keeps crash recovery (of this or another recorder) away until the file is final; dropped
    /// last.
    _lock: File,
}

impl RecordingFile {
    /// Claims a name for `owner`'s next file, starting with the frame `first` and opens it for
    /// `encoding`'s packets. Nothing is left on disk when it fails.
    pub fn open(owner: &FileOwner<'_>, encoding: &Encoding, first: &EncodedFrame) -> Result<Self, EncodeError> {
        let (_, info) = first;
        let files = owner.files;
        let stem = naming::file_stem(&owner.session.id, files.name_camera.then_some(owner.camera), info.time_ns);
        let (stream, settings) = encoding.stream();
        // The encoding's container, not FORMAT's: depth cameras have their own.
        let claimed = claim::claim_file(&files.storage, &stem, settings.container.extension())
            .map_err(|e| EncodeError::Output { path: files.storage.join(&stem), reason: e.to_string() })?;
        let tags = naming::file_tags(&owner.session.id, owner.camera, info.time_ns, owner.session.start_nanos);
        let muxer = PacketMuxer::create(&claimed.path, stream, settings, &tags).inspect_err(|_| {
            // Nothing was recorded into the claimed name: leave no empty file behind.
            let _ = std::fs::remove_file(&claimed.path);
        })?;
        let sidecars = Sidecars::open(&claimed.path, &info.ids, muxer.side_files());
        Ok(Self {
            session: owner.session.clone(),
            camera: owner.camera.to_owned(),
            codec: match encoding.encoder() {
                None => CopyStream::CODEC,
                Some(kind) if kind.is_lossless() => kind.ffmpeg_name(),
                Some(_) => files.codec.name(),
            },
            encoder: encoding.encoder(),
            muxer,
            sidecars,
            frames: 0,
            first_time_ns: info.time_ns,
            last_time_ns: info.time_ns,
            last_pts: None,
            frame_secs: encoding.frame_secs(),
            _lock: claimed.lock,
        })
    }

    /// The event saying this file started.
    pub fn started_report(&self) -> FileReport {
        let mut report = self.new_report(FileStatus::Started);
        report.encoder = self.encoder.map(EncoderKind::ffmpeg_name);
        report.first_time_ns = Some(self.first_time_ns);
        report
    }

    /// The file.
    pub fn path(&self) -> &Path {
        self.muxer.path()
    }

    /// The session it belongs to.
    pub fn session(&self) -> &SessionRef {
        &self.session
    }

    /// Frames written so far.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// The file's size on disk now.
    pub fn bytes_on_disk(&self) -> u64 {
        self.muxer.bytes_on_disk()
    }

    /// The file time of a packet with encoder `pts`, in seconds.
    pub fn file_secs(&self, pts: i64) -> f64 {
        self.muxer.file_secs(pts)
    }

    /// Writes one encoded frame and its index row; returns its size in bytes.
    pub fn write(&mut self, (packet, info): &EncodedFrame) -> Result<u64, EncodeError> {
        // The row goes first: no sync can then make the frame durable before its row (an MKV
        // holds the packet as soon as it is written).
        let pts_secs = self.muxer.file_secs(packet.pts());
        self.sidecars.frame_written(self.frames, pts_secs, info.time_ns, &info.ids);
        self.muxer.write(packet)?;
        self.frames += 1;
        self.last_time_ns = info.time_ns;
        self.last_pts = Some(packet.pts());
        Ok(packet.size() as u64)
    }

    /// A detector's boxes, written beside the frame they belong to.
    pub fn detections(&mut self, time_ns: u64, ids: &BTreeMap<String, String>, detections: &Detections) {
        self.sidecars.detections(time_ns, ids, detections);
    }

    /// Finalizes the file and its side files and reports it: `Finished`, or `Failed` when
    /// `failure` (an earlier error) or finalizing went wrong; a failed file keeps what was
    /// written. `lost` gives the frames of this camera lost while it was open. Logs the line
    /// that ends the file.
    pub fn close(self, failure: Option<EncodeError>, encoder_delay_frames: u64, lost: &LostFrames) -> FileReport {
        let duration_secs = self.duration_secs();
        let mut report = self.new_report(FileStatus::Finished);
        report.encoder = self.encoder.map(EncoderKind::ffmpeg_name);
        report.frames = self.frames;
        report.duration_secs = duration_secs;
        report.first_time_ns = (self.frames > 0).then_some(self.first_time_ns);
        report.last_time_ns = (self.frames > 0).then_some(self.last_time_ns);
        lost.take_into(&mut report);
        let path = self.muxer.path().to_owned();
        // The side files keep their rows whatever happens to the video, and are on disk before
        // its last fragment is; their own errors are logged by `Sidecars` and do not fail it.
        let _ = self.sidecars.finish();
        let finished = self.muxer.finish(failure, self.encoder, encoder_delay_frames);
        match finished {
            Ok(written) => {
                report.bytes = written.bytes;
                tracing::debug!(path = %path.display(), encoder_delay_frames, syncs = written.sync.syncs, sync_busy_ms = written.sync.busy.as_millis() as u64, side_syncs = written.sync.side_syncs, side_sync_busy_ms = written.sync.side_busy.as_millis() as u64, indexed = written.indexed, "file details");
            }
            Err(error) => {
                report.status = FileStatus::Failed;
                report.bytes = std::fs::metadata(&path).map_or(0, |m| m.len());
                report.panicked = matches!(error, EncodeError::Panic { .. });
                report.error = Some(error.to_string());
            }
        }
        log_closed(&report);
        report
    }

    /// Media duration: up to the end of the last frame.
    fn duration_secs(&self) -> f64 {
        self.last_pts.map_or(0.0, |pts| self.muxer.file_secs(pts) + self.frame_secs)
    }

    fn new_report(&self, status: FileStatus) -> FileReport {
        FileReport::new(status, &self.session, &self.camera, Some(self.muxer.path().to_owned()), self.codec)
    }
}

/// The one line that ends a file: what it holds, or why it failed.
fn log_closed(report: &FileReport) {
    let path = report.path.as_ref().map(|p| p.display().to_string()).unwrap_or_default();
    match &report.error {
        None => tracing::info!(
            session = %report.session_id, camera = %report.camera, path, codec = report.codec,
            encoder = report.encoder.unwrap_or_default(), frames = report.frames,
            duration_secs = format_args!("{:.3}", report.duration_secs), bytes = report.bytes,
            skipped = report.skipped, dropped = report.dropped, "recording finished"
        ),
        Some(error) => tracing::error!(
            session = %report.session_id, camera = %report.camera, path, frames = report.frames,
            skipped = report.skipped, dropped = report.dropped, "recording failed: {error}"
        ),
    }
}
