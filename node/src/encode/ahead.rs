//! Conversion overlapped with encoding: a thread of its own converts frame N while the encoder
//! takes picture N-1, so the colour conversion leaves the thread that feeds x264 (whose
//! look-ahead runs on that thread with `sync-lookahead=0`).
//!
//! Each call still waits for its own frame's conversion, so a conversion error, or a panic, comes
//! back from the call that submitted the frame, exactly as when conversion ran inline; the cost is
//! one picture of extra delay, handed to the encoder with the next frame or at the flush.

use std::{
    sync::mpsc::{self, Receiver, Sender},
    thread::JoinHandle,
};

use ffmpeg_next::{self as ff, frame};

use super::convert::Converter;
use crate::{
    camera::contain::contain_panic,
    frame::{Frame, FrameFormat},
};

/// One frame to convert, and a picture to convert it into (a new one when `None`).
struct Job {
    frame: Frame,
    pts: i64,
    picture: Option<frame::Video>,
}

/// Why a conversion failed.
enum Failure {
    Ffmpeg(ff::Error),
    /// A bug panicked inside the converter; the message is re-raised on the caller's thread.
    Panic(String),
}

type Converted = Result<frame::Video, Failure>;

/// The conversion thread of one encoder and the pictures travelling between it and the encoder.
pub(super) struct ConvertAhead {
    jobs: Option<Sender<Job>>,
    converted: Receiver<Converted>,
    /// The latest converted picture, not yet given to the encoder.
    ready: Option<frame::Video>,
    /// A picture the encoder is done with, to convert the next frame into.
    spare: Option<frame::Video>,
    encoded_size: (u32, u32),
    thread: Option<JoinHandle<()>>,
}

impl ConvertAhead {
    /// Starts the thread and its converter for `format` (swscale contexts stay on the thread
    /// that creates them).
    pub fn start(format: FrameFormat) -> Result<Self, ff::Error> {
        let (jobs, job_rx) = mpsc::channel::<Job>();
        let (converted_tx, converted) = mpsc::channel::<Converted>();
        let (opened_tx, opened) = mpsc::channel::<Result<(u32, u32), ff::Error>>();
        let thread = std::thread::Builder::new()
            .name("convert".into())
            .spawn(move || convert_loop(format, &opened_tx, &job_rx, &converted_tx))
            .map_err(|_| ff::Error::Other { errno: libc::EAGAIN })?;
        let encoded_size = opened.recv().unwrap_or(Err(ff::Error::Bug))?;
        Ok(Self { jobs: Some(jobs), converted, ready: None, spare: None, encoded_size, thread: Some(thread) })
    }

    /// The picture size the encoder must be opened with.
    pub fn encoded_size(&self) -> (u32, u32) {
        self.encoded_size
    }

    /// Starts converting `frame` at `pts`; [`finish`](Self::finish) waits for it.
    pub fn submit(&mut self, frame: &Frame, pts: i64) -> Result<(), ff::Error> {
        let job = Job { frame: frame.clone(), pts, picture: self.spare.take() };
        self.jobs.as_ref().and_then(|jobs| jobs.send(job).ok()).ok_or(ff::Error::Bug)
    }

    /// The previous frame's picture, for the encoder while the current frame converts; give it
    /// back with [`recycle`](Self::recycle).
    pub fn take_ready(&mut self) -> Option<frame::Video> {
        self.ready.take()
    }

    /// Hands a picture the encoder is done with back for the next conversion.
    pub fn recycle(&mut self, picture: frame::Video) {
        self.spare = Some(picture);
    }

    /// Waits for the submitted frame's picture, which becomes the ready one. A panic in the
    /// converter is raised again here, on the caller's thread.
    pub fn finish(&mut self) -> Result<(), ff::Error> {
        match self.converted.recv() {
            Ok(Ok(picture)) => {
                self.ready = Some(picture);
                Ok(())
            }
            Ok(Err(Failure::Ffmpeg(error))) => Err(error),
            Ok(Err(Failure::Panic(message))) => std::panic::resume_unwind(Box::new(message)),
            Err(mpsc::RecvError) => Err(ff::Error::Bug),
        }
    }
}

impl Drop for ConvertAhead {
    fn drop(&mut self) {
        // Closing the job channel ends the thread's loop.
        self.jobs = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The conversion thread: reports whether its converter opened, then converts jobs until the
/// encoder goes away.
fn convert_loop(
    format: FrameFormat,
    opened: &Sender<Result<(u32, u32), ff::Error>>,
    jobs: &Receiver<Job>,
    converted: &Sender<Converted>,
) {
    let mut converter = match Converter::new(format) {
        Ok(converter) => converter,
        Err(error) => {
            let _ = opened.send(Err(error));
            return;
        }
    };
    let _ = opened.send(Ok(converter.encoded_size()));
    for Job { frame, pts, picture } in jobs {
        let mut picture = picture.unwrap_or_else(|| converter.new_picture());
        let outcome = contain_panic(|| converter.convert_into(&frame, pts, &mut picture));
        // dora's buffer goes back before the encoder even sees the picture.
        drop(frame);
        let result = match outcome {
            Ok(Ok(())) => Ok(picture),
            Ok(Err(error)) => Err(Failure::Ffmpeg(error)),
            Err(message) => Err(Failure::Panic(message)),
        };
        if converted.send(result).is_err() {
            return;
        }
    }
}
