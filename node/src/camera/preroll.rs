//! Recording with pre-roll (`PRE_ROLL`): one encoder per camera runs all the time and keeps the
//! recent past as encoded packets in a [`PacketRing`]; a session's file begins with the ring's
//! packets from the keyframe at or before `start - PRE_ROLL`, then takes the live packets of
//! the same encoder, so the file shows what happened before whatever started its session.
//!
//! Every packet carries the session its frame was bound to (by send time, as in session
//! recording): packets of the file's session are written, the first packet of another session
//! (or of none) closes the file. A session that ends while frames stop arriving is closed after
//! [`ENDING_WAIT`] by flushing the encoder (the next frame opens a new one). Long sessions are
//! cut into segments at keyframes.

use std::time::{Duration, Instant};

use super::{
    copy::JobFrame,
    encoding::{EncodedFrame, Encoding},
    file::{EarlyDetections, FileOwner, RecordingFile},
    packet_ring::{PacketRing, RingEntry},
    settings::FileSettings,
    worker::{DetectionMessage, Job, WorkerLinks},
};
use crate::{
    encode::{EncodeError, EncodedPacket, Quality},
    session::SessionRef,
};

/// How long a file whose session ended waits for the packets still inside the encoder before
/// the encoder is flushed.
pub const ENDING_WAIT: Duration = Duration::from_millis(1000);
/// Most bytes one camera's ring may hold (60 s of 1080p at a generous 32 Mbit/s).
pub const MAX_RING_BYTES: usize = 256 * 1024 * 1024;

/// The file of the current session, and when its session ended.
struct SessionFile {
    file: RecordingFile,
    /// Set when the session ended: flush the encoder then if the file is still open.
    ending_at: Option<Instant>,
}

/// The pre-roll worker's job.
pub struct PreRollJob {
    camera: String,
    files: FileSettings,
    pre_roll_nanos: u64,
    links: WorkerLinks,
    encoding: Option<Encoding>,
    ring: PacketRing<EncodedFrame>,
    current: Option<SessionFile>,
    /// Detections of a session whose file is not open yet.
    early_detections: EarlyDetections,
    /// Encoder settings changed at run time, for the encoder after this one.
    pending_quality: Option<Quality>,
}

impl PreRollJob {
    /// The job of `camera`, keeping `pre_roll_nanos` of encoded past.
    pub fn new(camera: String, files: FileSettings, pre_roll_nanos: u64, links: WorkerLinks) -> Self {
        let ring = PacketRing::new(pre_roll_nanos, MAX_RING_BYTES);
        Self {
            camera,
            files,
            pre_roll_nanos,
            links,
            encoding: None,
            ring,
            current: None,
            early_detections: EarlyDetections::default(),
            pending_quality: None,
        }
    }

    fn serial(&self) -> Option<u64> {
        self.current.as_ref().map(|c| c.file.session().serial)
    }

    /// Opens an encoder for `frame`'s format, with the settings changed at run time if any.
    fn open_encoder(&mut self, frame: &JobFrame) -> bool {
        if let Some(quality) = self.pending_quality.take() {
            self.files.quality = quality;
        }
        match Encoding::open(frame.format(), &self.files) {
            Ok((encoding, _passed_over)) => {
                self.encoding = Some(encoding);
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
    fn packets_out(&mut self, packets: Vec<EncodedFrame>) {
        for encoded in packets {
            let (packet, info) = &encoded;
            let serial = info.session.as_ref().map(|s| s.serial);
            if self.current.is_some() && self.serial() != serial {
                self.close_file(None);
            }
            if packet.is_key() && self.segment_ends(packet) {
                let session = self.current.as_ref().map(|c| c.file.session().clone());
                self.close_file(None);
                if let Some(session) = session {
                    self.open_file(session, &encoded, false);
                }
            }
            if self.current.is_none()
                && let Some(session) = info.session.clone()
            {
                self.open_file(session, &encoded, true);
            }
            self.write(&encoded);
            let entry = RingEntry { time_ns: info.time_ns, key: packet.is_key(), bytes: packet.size(), item: encoded };
            self.ring.push(entry);
        }
    }

    /// Whether the segment limit is reached (checked at keyframes: segments start at one).
    fn segment_ends(&self, packet: &EncodedPacket) -> bool {
        let Some(current) = &self.current else { return false };
        let file = &current.file;
        self.files.segments.cut_before(file.frames(), file.file_secs(packet.pts()), || file.bytes_on_disk())
    }

    /// Opens the file of `session`, starting with the ring's packets from the keyframe at or
    /// before `start - PRE_ROLL` when `pre_roll` (the first packet of a session), else at
    /// `packet` (a segment cut, at a keyframe).
    fn open_file(&mut self, session: SessionRef, packet: &EncodedFrame, pre_roll: bool) {
        let from = session.start_nanos.saturating_sub(self.pre_roll_nanos);
        let past: Vec<EncodedFrame> =
            if pre_roll { self.ring.since(from).map(|e| e.item.clone()).collect() } else { Vec::new() };
        if past.is_empty() && !packet.0.is_key() {
            tracing::debug!(camera = %self.camera, "waiting for a keyframe to start the file");
            return;
        }
        let Some(encoding) = &self.encoding else { return };
        let owner = FileOwner { session: &session, camera: &self.camera, files: &self.files };
        let file = match RecordingFile::open(&owner, encoding, past.first().unwrap_or(packet)) {
            Ok(file) => file,
            Err(error) => {
                tracing::error!(session = %session.id, camera = %self.camera, "{error}");
                let _ = self.links.reports.send(owner.open_failed(&error));
                return;
            }
        };
        let pre_roll_bytes: usize = past.iter().map(|(packet, _)| packet.size()).sum();
        let started = file.started_report();
        tracing::info!(
            session = %session.id, camera = %self.camera, path = %file.path().display(),
            encoder = started.encoder.unwrap_or_default(), pre_roll_frames = past.len(),
            pre_roll_bytes, ring_bytes = self.ring.bytes(), "recording started"
        );
        let _ = self.links.reports.send(started);
        self.current = Some(SessionFile { file, ending_at: None });
        for encoded in &past {
            self.write(encoded);
        }
        if let Some(current) = self.current.as_mut() {
            self.early_detections.write_into(&mut current.file);
        }
    }

    fn write(&mut self, encoded: &EncodedFrame) {
        let Some(current) = self.current.as_mut() else { return };
        match current.file.write(encoded) {
            Ok(bytes) => self.links.stats.encoded(bytes),
            Err(error) => self.close_file(Some(error)),
        }
    }

    /// Flushes the encoder into the file, closes it, and forgets the encoder and the ring (the
    /// next frame starts a new encoder).
    fn end_stream(&mut self) {
        let mut packets = Vec::new();
        if let Some(encoding) = self.encoding.as_mut()
            && let Err(error) = encoding.flush(&mut packets)
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
        let Some(current) = self.current.take() else { return };
        let delay = self.encoding.as_ref().map_or(0, Encoding::delay_frames);
        let report = current.file.close(failure, delay, &self.links.lost);
        let _ = self.links.reports.send(report);
    }
}

impl Job for PreRollJob {
    fn frame(&mut self, frame: &JobFrame, session: Option<SessionRef>) {
        // New encoder settings need a new encoder, whose packets cannot join the ring of the old
        // one: restart only between files, at a frame no session takes.
        if self.pending_quality.is_some() && self.encoding.is_some() && session.is_none() && self.current.is_none() {
            tracing::info!(camera = %self.camera, "no session recording: restarting the encoder with the new settings (the pre-roll buffer starts over)");
            self.end_stream();
        }
        if self.encoding.as_ref().is_some_and(|e| e.format() != frame.format()) {
            tracing::info!(camera = %self.camera, format = %frame.format(), "frame format changed: restarting the encoder");
            self.end_stream();
        }
        if self.encoding.is_none() && !self.open_encoder(frame) {
            self.links.lost.dropped(1);
            return;
        }
        let Some(encoding) = self.encoding.as_mut() else { return };
        let mut packets = Vec::new();
        let encoded = encoding.encode(frame, session, &mut packets);
        self.packets_out(packets);
        if let Err(error) = encoded {
            tracing::error!(camera = %self.camera, "encoding failed: {error}; restarting the encoder");
            self.close_file(Some(error));
            self.drop_encoder();
        }
    }

    fn detections(&mut self, session: Option<SessionRef>, message: &DetectionMessage) {
        let Some(serial) = session.map(|s| s.serial) else { return };
        match self.current.as_mut() {
            Some(current) if current.file.session().serial == serial => {
                current.file.detections(message.time_ns, &message.ids, &message.detections);
            }
            // The session's file opens when its first frame leaves the encoder.
            _ => self.early_detections.keep(serial, message),
        }
    }

    fn session_ended(&mut self, serial: u64) {
        if let Some(current) = self.current.as_mut().filter(|c| c.file.session().serial == serial) {
            current.ending_at = Some(Instant::now() + ENDING_WAIT);
        }
    }

    fn camera_gone(&mut self) {
        self.end_stream();
    }

    fn quality_changed(&mut self, quality: Quality) {
        self.pending_quality = Some(quality);
    }

    fn pre_roll_changed(&mut self, pre_roll_nanos: u64) {
        self.pre_roll_nanos = pre_roll_nanos;
        self.ring.set_keep_nanos(pre_roll_nanos);
    }

    /// A file whose session ended and whose last packets did not come out: flush the encoder.
    fn idle(&mut self) {
        if self.current.as_ref().and_then(|c| c.ending_at).is_some_and(|at| Instant::now() >= at) {
            self.end_stream();
        }
    }

    /// The file ends with the panic as its failure, the encoder starts over.
    fn abandon_after_panic(&mut self, panic: &str) {
        let error = EncodeError::Panic { reason: panic.to_owned() };
        tracing::error!(camera = %self.camera, "{error}");
        if super::contain::contain_panic(|| self.close_file(Some(error.clone()))).is_err() {
            self.current = None;
        }
        self.drop_encoder();
    }

    fn finish(&mut self) {
        self.end_stream();
    }
}
