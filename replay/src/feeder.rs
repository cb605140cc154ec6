//! One thread per camera decodes its segments in order, converts each frame into an output
//! buffer (dora's shared-memory sample, see [`OutputBuffers`]) and hands it over a small bounded
//! channel, ahead of its send time: the sending thread only waits and sends.

use std::{
    collections::BTreeMap,
    sync::{
        Arc,
        mpsc::{Receiver, SyncSender, sync_channel},
    },
    thread::JoinHandle,
};

use dora_video_recorder::PixelEncoding;

use crate::{
    decode::{DecodedFrame, VideoDecoder},
    recording::{FrameTimes, Segment},
    schedule::Window,
};

/// Frames a camera thread keeps ready ahead of the sender: a few frames' time of decoding
/// jitter, without holding many 1080p buffers of dora's shared memory.
pub const READY_FRAMES: usize = 4;

/// Where converted frames are written: dora's output samples in the node, plain vectors in the
/// benchmark.
pub trait OutputBuffers: Send + 'static {
    /// One buffer holding one frame's payload.
    type Buffer: Send + 'static;
    /// A buffer for a payload of `len` bytes.
    fn allocate(&self, len: usize) -> eyre::Result<Self::Buffer>;
    /// The payload bytes of `buffer`.
    fn payload_mut<'a>(&self, buffer: &'a mut Self::Buffer) -> &'a mut [u8];
}

/// A frame ready to send.
pub struct ReadyFrame<B> {
    /// Its recorded dora timestamp (UTC ns), or the time it was given from the file's own
    /// timestamps when the video has no index.
    pub time_ns: u64,
    /// Whether `time_ns` was recorded (from the index), not derived from the file.
    pub recorded: bool,
    /// Identifying metadata from the index.
    pub ids: Arc<BTreeMap<String, String>>,
    /// Size in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Layout of the payload.
    pub encoding: PixelEncoding,
    /// The payload.
    pub buffer: B,
}

/// What a camera thread needs to know.
#[derive(Debug, Clone)]
pub struct FeedPlan {
    /// Camera name, for logs and the thread name.
    pub camera: String,
    /// Its videos in order.
    pub segments: Vec<Segment>,
    /// Layout of colour frames (depth goes out as mono16).
    pub encoding: PixelEncoding,
    /// Zero of the session timeline (UTC ns).
    pub start_ns: u64,
    /// What part of the timeline to send.
    pub window: Window,
}

/// A running camera thread and the receiving end of its frames.
pub struct Feeder<B> {
    /// Frames in recorded order; closed when the camera has no more.
    pub frames: Receiver<ReadyFrame<B>>,
    thread: Option<JoinHandle<()>>,
}

impl<B: Send + 'static> Feeder<B> {
    /// Starts the thread of `plan`, writing frames into `buffers`.
    pub fn spawn<O: OutputBuffers<Buffer = B>>(plan: FeedPlan, buffers: O) -> std::io::Result<Self> {
        let (sender, frames) = sync_channel(READY_FRAMES);
        let name: String = format!("replay-{}", plan.camera).chars().take(15).collect();
        let thread = std::thread::Builder::new().name(name).spawn(move || feed(&plan, &buffers, &sender))?;
        Ok(Self { frames, thread: Some(thread) })
    }
}

impl<B> Drop for Feeder<B> {
    fn drop(&mut self) {
        // Close the channel first: a thread waiting to hand over a frame then stops at once, and
        // the join waits at most for the frame it is converting.
        drop(std::mem::replace(&mut self.frames, sync_channel(0).1));
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::warn!("a camera thread panicked");
        }
    }
}

/// The camera thread: every segment in order, until the window ends or the receiver is gone.
fn feed<O: OutputBuffers>(plan: &FeedPlan, buffers: &O, sender: &SyncSender<ReadyFrame<O::Buffer>>) {
    crate::priority::ordinary_for_this_thread();
    for segment in &plan.segments {
        match feed_segment(plan, segment, buffers, sender) {
            Ok(Flow::Continue) => {}
            Ok(Flow::Stop) => return,
            Err(error) => {
                tracing::warn!(camera = %plan.camera, video = %segment.video.display(), "{error:#}: going on with the next segment");
            }
        }
    }
}

/// Whether the camera thread goes on after a segment.
enum Flow {
    Continue,
    Stop,
}

fn feed_segment<O: OutputBuffers>(
    plan: &FeedPlan,
    segment: &Segment,
    buffers: &O,
    sender: &SyncSender<ReadyFrame<O::Buffer>>,
) -> eyre::Result<Flow> {
    let mut decoder = VideoDecoder::open(&segment.video)?;
    let encoding = if decoder.is_depth() { PixelEncoding::Mono16 } else { plan.encoding };
    let mut number = 0_u64;
    let mut unindexed = 0_u64;
    while let Some(frame) = decoder.next_frame()? {
        let Some((time_ns, recorded, ids)) = frame_time(&segment.times, number, &frame) else {
            unindexed += 1;
            number += 1;
            continue;
        };
        number += 1;
        let session_ns = (i128::from(time_ns) - i128::from(plan.start_ns)) as i64;
        if plan.window.is_past(session_ns) {
            return Ok(Flow::Stop);
        }
        if !plan.window.contains(session_ns) {
            continue;
        }
        let (width, height) = frame.size();
        let mut buffer = buffers.allocate(encoding.byte_len(width, height))?;
        decoder.convert(&frame, encoding, buffers.payload_mut(&mut buffer))?;
        let ready = ReadyFrame { time_ns, recorded, ids, width, height, encoding, buffer };
        if sender.send(ready).is_err() {
            return Ok(Flow::Stop);
        }
    }
    if unindexed > 0 {
        tracing::warn!(video = %segment.video.display(), frames = unindexed, "frames without an index row: skipped");
    }
    if decoder.corrupt_packets > 0 {
        tracing::warn!(video = %segment.video.display(), packets = decoder.corrupt_packets, "corrupt packets skipped");
    }
    Ok(Flow::Continue)
}

/// A frame's dora timestamp, whether it was recorded, and its identifying metadata.
type FrameTime = (u64, bool, Arc<BTreeMap<String, String>>);

/// The time and metadata of frame `number` of a video: from its index row, or from the file's
/// timestamps. `None` for a frame the index does not list.
fn frame_time(times: &FrameTimes, number: u64, frame: &DecodedFrame) -> Option<FrameTime> {
    match times {
        FrameTimes::Indexed(rows) => {
            let at = rows.binary_search_by_key(&number, |row| row.frame).ok()?;
            Some((rows[at].time_ns, true, Arc::new(rows[at].ids.clone())))
        }
        FrameTimes::FromFile { base_ns } => {
            Some((base_ns.saturating_add(frame.pts_ns.unwrap_or(0)), false, Arc::default()))
        }
    }
}
