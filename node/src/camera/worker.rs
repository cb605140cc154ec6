//! The one camera worker protocol: a named thread per camera (and per session, in session
//! mode), fed through a bounded queue, stopped by closing the queue, joined by the event loop.
//! What the thread does with frames is a [`Job`]: [`super::session::SessionJob`] (an encoder
//! per file) or [`super::preroll::PreRollJob`] (one encoder and a ring of the recent past).

use std::{
    collections::BTreeMap,
    sync::{Arc, mpsc::Sender},
    thread::JoinHandle,
    time::Duration,
};

use super::{
    contain::contain_panic,
    copy::{JobFrame, JpegCopier},
    decode::FrameDecoder,
    file::LostFrames,
    overlay::Overlay,
    queue::{QueueLimits, QueueReceiver, QueueSender, Queued, RecvError, queue},
    report::FileReport,
};
use crate::{
    detections::Detections, encode::Quality, frame::CameraFrame, session::SessionRef, stats::CameraCounters,
    storage::naming,
};

/// How often an idle worker wakes (a pre-roll file whose session ended closes on a wake).
const WAKE: Duration = Duration::from_millis(100);

/// A detector's output for a camera.
#[derive(Debug, Clone)]
pub struct DetectionMessage {
    /// When the detector sent it (Unix nanoseconds).
    pub time_ns: u64,
    /// Its identifying metadata (the image's, passed through by the detector).
    pub ids: BTreeMap<String, String>,
    /// The boxes.
    pub detections: Detections,
}

/// What the event loop sends a worker.
pub enum Command {
    /// A frame, bound to a session (or to none: it only feeds a pre-roll ring). Images are
    /// decoded on the worker.
    Frame(CameraFrame, Option<SessionRef>),
    /// A detector's output, for the file of its session.
    Detections(Option<SessionRef>, Box<DetectionMessage>),
    /// Session `serial` ended.
    SessionEnded(u64),
    /// The camera went away: finish its file and encoder.
    CameraGone,
    /// Encoder settings changed at run time: for the next file.
    Quality(Quality),
    /// `PRE_ROLL` changed at run time (pre-roll workers), in nanoseconds.
    PreRoll(u64),
}

impl Queued for Command {
    fn frame_bytes(&self) -> Option<u64> {
        match self {
            Self::Frame(frame, _) => Some(frame.byte_len() as u64),
            _ => None,
        }
    }
}

/// What a worker thread does with its commands. Every call runs with panics contained: a panic
/// ends the file being written ([`Job::abandon_after_panic`]), not the thread.
pub trait Job {
    /// A frame bound to `session`.
    fn frame(&mut self, frame: &JobFrame, session: Option<SessionRef>);
    /// A detector's output for the file of `session`.
    fn detections(&mut self, session: Option<SessionRef>, message: &DetectionMessage);
    /// Session `serial` ended.
    fn session_ended(&mut self, _serial: u64) {}
    /// The camera went away.
    fn camera_gone(&mut self) {}
    /// Encoder settings changed: the next file's encoder uses them.
    fn quality_changed(&mut self, _quality: Quality) {}
    /// `PRE_ROLL` changed (only pre-roll jobs keep a past).
    fn pre_roll_changed(&mut self, _pre_roll_nanos: u64) {}
    /// Nothing arrived for a while.
    fn idle(&mut self) {}
    /// A bug panicked inside one of the calls: end the file with `panic` as its failure.
    fn abandon_after_panic(&mut self, panic: &str);
    /// The queue closed: finish everything.
    fn finish(&mut self);
}

/// Where a worker's file events go and what it counts.
#[derive(Clone)]
pub struct WorkerLinks {
    /// File events.
    pub reports: Sender<FileReport>,
    /// The camera's stats counters.
    pub stats: Arc<CameraCounters>,
    /// Frames lost before they reached a file.
    pub lost: Arc<LostFrames>,
}

/// The event loop's handle on a camera's worker thread.
pub struct CameraWorker {
    commands: QueueSender<Command>,
    links: WorkerLinks,
    thread: JoinHandle<()>,
}

impl CameraWorker {
    /// Starts a thread for `camera` running the job `make_job` builds on it (encoders are not
    /// `Send`: they are made on the thread that uses them). Draws detector boxes into frames
    /// with `overlay`; hands JPEGs to the job undecoded with `copy_jpeg`.
    pub fn spawn<J: Job>(
        camera: &str,
        limits: QueueLimits,
        overlay: bool,
        copy_jpeg: bool,
        reports: Sender<FileReport>,
        stats: Arc<CameraCounters>,
        make_job: impl FnOnce(WorkerLinks) -> J + Send + 'static,
    ) -> std::io::Result<Self> {
        let (commands, receiver) = queue(limits);
        let links = WorkerLinks { reports, stats, lost: Arc::default() };
        let job_links = links.clone();
        let (name, lost) = (camera.to_owned(), Arc::clone(&links.lost));
        // Thread names cannot hold NUL bytes: never build one from an id as sent.
        let thread = std::thread::Builder::new().name(naming::thread_name(camera)).spawn(move || {
            let overlay = overlay.then(Overlay::default);
            // Decoders are not `Send` either: made here, on the thread that uses them.
            let copier = copy_jpeg.then(JpegCopier::default);
            let decoding = Decoding { camera: name, decoder: FrameDecoder::default(), copier, lost };
            run(make_job(job_links), receiver, overlay, decoding);
        })?;
        Ok(Self { commands, links, thread })
    }

    /// Queues a frame bound to `session` (see [`super::queue`] for what a full queue does);
    /// returns how many queued frames were dropped to make room, already counted.
    pub fn submit(&self, frame: impl Into<CameraFrame>, session: Option<SessionRef>) -> u64 {
        let dropped = self.commands.push(Command::Frame(frame.into(), session)).len() as u64;
        self.count_dropped(dropped);
        dropped
    }

    /// Queues a detector's output (the queue always takes it: only frames are evicted).
    pub fn submit_detections(&self, session: Option<SessionRef>, message: DetectionMessage) {
        self.commands.push(Command::Detections(session, Box::new(message)));
    }

    /// Session `serial` ended.
    pub fn session_ended(&self, serial: u64) {
        self.commands.push(Command::SessionEnded(serial));
    }

    /// The camera went away.
    pub fn camera_gone(&self) {
        self.commands.push(Command::CameraGone);
    }

    /// Encoder settings changed at run time.
    pub fn quality_changed(&self, quality: Quality) {
        self.commands.push(Command::Quality(quality));
    }

    /// `PRE_ROLL` changed at run time.
    pub fn pre_roll_changed(&self, pre_roll_nanos: u64) {
        self.commands.push(Command::PreRoll(pre_roll_nanos));
    }

    /// Frames and bytes waiting in the queue.
    pub fn queue_depth(&self) -> (u64, u64) {
        let (frames, bytes) = self.commands.depth();
        (frames as u64, bytes)
    }

    /// Counts a frame of this camera skipped before reaching the queue.
    pub fn count_skipped(&self) {
        self.links.lost.skipped();
    }

    /// Counts frames lost before they reached the worker (its queue, dora's input queue).
    pub fn count_dropped(&self, frames: u64) {
        if frames > 0 {
            self.links.lost.dropped(frames);
            self.links.stats.dropped(frames);
        }
    }

    /// Closes the queue: the worker encodes what is queued and finishes; returns the thread to
    /// join.
    pub fn finish(self) -> JoinHandle<()> {
        drop(self.commands);
        self.thread
    }
}

/// Turns images into raw frames on the worker thread (or checks JPEGs to copy); what does not
/// decode is skipped.
struct Decoding {
    camera: String,
    decoder: FrameDecoder,
    /// Set with `COMPRESSED=copy`.
    copier: Option<JpegCopier>,
    lost: Arc<LostFrames>,
}

impl Decoding {
    /// What the job records of `frame`, or `None` when it is skipped (already logged).
    fn prepare(&mut self, frame: CameraFrame, overlay: Option<&Overlay>) -> Option<JobFrame> {
        let frame = match (frame, &mut self.copier) {
            (CameraFrame::Image(image), Some(copier)) => match copier.check(&self.camera, image) {
                Ok(jpeg) => return jpeg.map(JobFrame::Jpeg),
                Err(other) => CameraFrame::Image(other),
            },
            (frame, _) => frame,
        };
        let frame = self.decoder.raw(&self.camera, frame)?;
        Some(JobFrame::Raw(overlay.and_then(|o| o.draw_on(&frame)).unwrap_or(frame)))
    }
}

fn run<J: Job>(mut job: J, queue: QueueReceiver<Command>, mut overlay: Option<Overlay>, mut decoding: Decoding) {
    loop {
        let outcome = match queue.recv_timeout(WAKE) {
            Ok(Command::Frame(frame, session)) => {
                // A decoder bug must not end the thread either: a panic is a skipped frame.
                let Some(frame) = contain_panic(|| decoding.prepare(frame, overlay.as_ref())).ok().flatten() else {
                    decoding.lost.skipped();
                    continue;
                };
                contain_panic(|| job.frame(&frame, session))
            }
            Ok(Command::Detections(session, message)) => {
                if let Some(overlay) = &mut overlay {
                    overlay.remember(message.time_ns, &message.detections);
                }
                contain_panic(|| job.detections(session, &message))
            }
            Ok(Command::SessionEnded(serial)) => contain_panic(|| job.session_ended(serial)),
            Ok(Command::CameraGone) => contain_panic(|| job.camera_gone()),
            Ok(Command::Quality(quality)) => contain_panic(|| job.quality_changed(quality)),
            Ok(Command::PreRoll(nanos)) => contain_panic(|| job.pre_roll_changed(nanos)),
            Err(RecvError::Timeout) => contain_panic(|| job.idle()),
            Err(RecvError::Closed) => break,
        };
        if let Err(panic) = outcome {
            job.abandon_after_panic(&panic);
        }
    }
    if let Err(panic) = contain_panic(|| job.finish()) {
        job.abandon_after_panic(&panic);
    }
}
