//! One camera of one session: an encoder per file. A file opens at the first frame, the next
//! file of the same session starts when the frame format changes (never a silent rescale) or a
//! segment limit is reached, and everything is finalized when the session's queue closes.

use std::{
    sync::mpsc::Sender,
    time::{Duration, Instant},
};

use super::{
    copy::JobFrame,
    encoding::{EncodedFrame, Encoding},
    file::{EarlyDetections, FileOwner, RecordingFile},
    report::FileReport,
    settings::FileSettings,
    worker::{DetectionMessage, Job, WorkerLinks},
};
use crate::{encode::EncodeError, session::SessionRef};

/// After a file fails, wait this long before opening the next (a full disk must not spin).
const REOPEN_BACKOFF: Duration = Duration::from_secs(2);

/// The session worker's job.
pub struct SessionJob {
    session: SessionRef,
    camera: String,
    files: FileSettings,
    links: WorkerLinks,
    /// The encoder of the open file and the file (both or neither).
    open: Option<(Encoding, Option<RecordingFile>)>,
    /// Packets out of the encoder not yet written (the file opens at the first one).
    packets: Vec<EncodedFrame>,
    retry_at: Option<Instant>,
    /// Detections that came while the first frames were still inside the encoder.
    early_detections: EarlyDetections,
}

impl SessionJob {
    /// The job of `camera` in `session`.
    pub fn new(session: SessionRef, camera: String, files: FileSettings, links: WorkerLinks) -> Self {
        Self {
            session,
            camera,
            files,
            links,
            open: None,
            packets: Vec::new(),
            retry_at: None,
            early_detections: EarlyDetections::default(),
        }
    }

    fn owner(&self) -> FileOwner<'_> {
        FileOwner { session: &self.session, camera: &self.camera, files: &self.files }
    }

    fn reports(&self) -> &Sender<FileReport> {
        &self.links.reports
    }

    /// Whether the open file ends before `frame`: another format, or a segment limit.
    fn ends_before(&self, frame: &JobFrame) -> bool {
        let Some((encoding, file)) = &self.open else { return false };
        if encoding.format() != frame.format() {
            tracing::info!(session = %self.session.id, camera = %self.camera, format = %frame.format(), "frame format changed: starting the next file");
            return true;
        }
        let frames = file.as_ref().map_or(0, RecordingFile::frames);
        let bytes = || file.as_ref().map_or(0, RecordingFile::bytes_on_disk);
        let cut = self.files.segments.cut_before(frames, encoding.secs_at(frame.sent_nanos()), bytes);
        if cut {
            tracing::debug!(session = %self.session.id, camera = %self.camera, "segment limit reached: starting the next file");
        }
        cut
    }

    /// Opens an encoder for `frame`'s format; false if none opens (or after a failure, while
    /// backing off).
    fn open_encoder(&mut self, frame: &JobFrame) -> bool {
        if self.retry_at.is_some_and(|at| Instant::now() < at) {
            return false;
        }
        match Encoding::open(frame.format(), &self.files) {
            Ok((encoding, passed_over)) => {
                for passed_over in passed_over {
                    tracing::warn!(session = %self.session.id, camera = %self.camera, "{}; using the next encoder", passed_over.reason());
                }
                self.open = Some((encoding, None));
                true
            }
            Err(error) => {
                self.open_failed(&error);
                false
            }
        }
    }

    /// Writes the packets that came out of the encoder, opening the file at the first one.
    fn write_packets(&mut self) {
        let packets = std::mem::take(&mut self.packets);
        for packet in &packets {
            if self.open.as_ref().is_some_and(|(_, file)| file.is_none()) && !self.open_file(packet) {
                self.links.lost.dropped(1);
                continue;
            }
            let Some((_, Some(file))) = self.open.as_mut() else { continue };
            match file.write(packet) {
                Ok(bytes) => self.links.stats.encoded(bytes),
                Err(error) => return self.close_file(Some(error)),
            }
        }
    }

    fn open_file(&mut self, first: &EncodedFrame) -> bool {
        let Some((encoding, _)) = &self.open else { return false };
        match RecordingFile::open(&self.owner(), encoding, first) {
            Ok(file) => {
                let started = file.started_report();
                tracing::info!(
                    session = %self.session.id, camera = %self.camera, path = %file.path().display(),
                    codec = started.codec, encoder = started.encoder.unwrap_or_default(),
                    format = %encoding.format(), "recording started"
                );
                let _ = self.reports().send(started);
                let mut file = file;
                self.early_detections.write_into(&mut file);
                if let Some((_, slot)) = self.open.as_mut() {
                    *slot = Some(file);
                }
                self.retry_at = None;
                true
            }
            Err(error) => {
                self.open = None;
                self.open_failed(&error);
                false
            }
        }
    }

    /// Flushes the encoder into the file and finalizes it; `failure` (a write error) fails it.
    fn close_file(&mut self, failure: Option<EncodeError>) {
        let mut failure = failure;
        if failure.is_none()
            && let Some((encoding, _)) = self.open.as_mut()
        {
            failure = encoding.flush(&mut self.packets).err();
            // A write error here closes the file itself.
            self.write_packets();
        }
        let Some((encoding, file)) = self.open.take() else { return };
        self.finalize(&encoding, file, failure);
    }

    fn finalize(&mut self, encoding: &Encoding, file: Option<RecordingFile>, failure: Option<EncodeError>) {
        let Some(file) = file else { return };
        let path = file.path().display().to_string();
        let report = file.close(failure, encoding.delay_frames(), &self.links.lost);
        if report.error.is_some() {
            tracing::warn!(session = %self.session.id, camera = %self.camera, path, "retrying in {}s", REOPEN_BACKOFF.as_secs());
            self.retry_at = Some(Instant::now() + REOPEN_BACKOFF);
        }
        let _ = self.reports().send(report);
    }

    /// No encoder or file opens: report it and back off.
    fn open_failed(&mut self, error: &EncodeError) {
        tracing::error!(session = %self.session.id, camera = %self.camera, "{error}; retrying in {}s", REOPEN_BACKOFF.as_secs());
        let _ = self.reports().send(self.owner().open_failed(error));
        self.retry_at = Some(Instant::now() + REOPEN_BACKOFF);
    }
}

impl Job for SessionJob {
    fn frame(&mut self, frame: &JobFrame, _session: Option<SessionRef>) {
        if self.ends_before(frame) {
            self.close_file(None);
        }
        if self.open.is_none() && !self.open_encoder(frame) {
            self.links.lost.dropped(1);
            return;
        }
        let Some((encoding, _)) = self.open.as_mut() else { return };
        let session = Some(self.session.clone());
        match encoding.encode(frame, session, &mut self.packets) {
            Ok(()) => self.write_packets(),
            Err(error) => {
                self.write_packets();
                let path = self.open.as_ref().and_then(|(_, f)| f.as_ref()).map(|f| f.path().to_owned());
                let error = match path {
                    Some(path) => error.in_file(&path),
                    None => error,
                };
                self.close_file(Some(error));
            }
        }
    }

    /// The next file's encoder (a segment cut, a format change) opens with `quality`.
    fn quality_changed(&mut self, quality: crate::encode::Quality) {
        self.files.quality = quality;
    }

    /// A detector's output goes beside the file being written; without one it is dropped.
    fn detections(&mut self, _session: Option<SessionRef>, message: &DetectionMessage) {
        match &mut self.open {
            Some((_, Some(file))) => file.detections(message.time_ns, &message.ids, &message.detections),
            // The file opens when the first frame leaves the encoder.
            Some((_, None)) => self.early_detections.keep(self.session.serial, message),
            None => tracing::debug!(camera = %self.camera, "detections with no open file: dropped"),
        }
    }

    /// The file keeps what its completed fragments hold, the panic is its failure, and the next
    /// frame opens a new file (a bug hit one frame; nothing suggests the disk needs a rest).
    fn abandon_after_panic(&mut self, panic: &str) {
        let error = EncodeError::Panic { reason: panic.to_owned() };
        tracing::error!(session = %self.session.id, camera = %self.camera, "{error}");
        let Some((encoding, file)) = self.open.take() else { return };
        let path = file.as_ref().map(|f| f.path().to_owned());
        let frames = file.as_ref().map_or(0, RecordingFile::frames);
        // Finalizing may hit the same bug: then the file is dropped and reported from here, as
        // are frames that never reached a file (still in the encoder).
        let had_file = file.is_some();
        let closed = super::contain::contain_panic(|| self.finalize(&encoding, file, Some(error.clone())));
        if closed.is_err() || !had_file {
            let mut report = self.owner().report(super::report::FileStatus::Failed, path);
            report.frames = frames;
            report.error = Some(error.to_string());
            report.panicked = true;
            let _ = self.reports().send(report);
        }
        self.retry_at = None;
        self.packets.clear();
    }

    fn finish(&mut self) {
        self.close_file(None);
        let (skipped, dropped) = self.links.lost.take_leftover();
        if skipped + dropped > 0 {
            tracing::info!(session = %self.session.id, camera = %self.camera, skipped, dropped, "frames lost after the last file closed");
        }
    }
}
