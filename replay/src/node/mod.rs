//! The dora edge: the only module that names dora types. It merges the cameras' frames, the
//! recorded detections and the session's control messages in session-time order, waits for each
//! one's deadline ([`crate::schedule`]) while watching dora's events for a stop, and sends it
//! ([`messages`]: what goes out).

mod messages;

use std::{
    sync::mpsc::RecvTimeoutError,
    time::{Duration, Instant},
};

use dora_node_api::{
    DoraNode, Event, EventStream, MetadataParameters, Parameter, TryRecvError,
    dora_core::config::DataId,
    metadata::{FRAMING, FRAMING_ARROW_IPC},
};
use dora_video_recorder::{
    PixelEncoding,
    recording::{Control, control_text, detections_array},
};
use eyre::WrapErr;

use self::messages::{DoraBuffers, DoraFrame, id_parameters, nanos_parameter};
use crate::{
    config::{Config, Rate},
    decode,
    feeder::{FeedPlan, Feeder, ReadyFrame},
    recording::{PlannedDetections, Recording},
    schedule::{Pass, SendCost, Window, wait_for},
};

/// Optional output with the session's start and stop, in the recorder's control format.
pub const CONTROL_OUTPUT: &str = "control";
/// Suffix of the output carrying camera `NAME`'s recorded detections: `NAME_detections`.
pub const DETECTIONS_SUFFIX: &str = "_detections";
/// Metadata key (Integer) of a frame's original dora timestamp, UTC ns, as recorded in the index.
pub const RECORDED_TIME_KEY: &str = "recorded_time_ns";
/// Longest wait between two looks at dora's events (how soon a stop is seen).
const EVENT_SLICE: Duration = Duration::from_millis(20);
/// How far ahead of now the first pass starts: time to have the first frames decoded, and for
/// dora to finish its startup handshake with the receivers (until then it sends through the
/// daemon, slower and with a copy).
const START_LEAD: Duration = Duration::from_millis(300);
/// The last stretch before a deadline is waited out by spinning: a sleep can overshoot by more
/// than the timing the recording is replayed with.
const SPIN: Duration = Duration::from_micros(500);
/// How long the node stays after its last message (see [`linger`]).
const LINGER: Duration = Duration::from_secs(1);
/// Recorded time between the last message of a pass and the first of the next one when looping.
const LOOP_GAP_NS: i64 = 33_000_000;
/// The stop goes out at least this long (recorded time) after the last message, so that a
/// recorder downstream binds every frame to the session.
const STOP_AFTER_LAST_NS: i64 = 1_000_000;

/// What a run sent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplaySummary {
    /// Frames sent, all cameras.
    pub frames: u64,
    /// Detection messages sent.
    pub detections: u64,
    /// Passes over the recording played to their end.
    pub passes: u64,
    /// Whether dora stopped the replay before it ended.
    pub stopped: bool,
    /// Latest a message went out after its deadline, in microseconds (a previous send or the
    /// decoding took too long).
    pub worst_late_micros: u64,
    /// Longest time dora took to send one message, in microseconds: a message due sooner than
    /// that after the previous one goes out late by the difference.
    pub worst_send_micros: u64,
}

/// Reads the configuration and the recording, connects to dora and plays.
pub fn run_from_env() -> eyre::Result<ReplaySummary> {
    let config = Config::from_env().wrap_err("invalid replay configuration")?;
    let recording = Recording::load(&config.recording, &config.camera)
        .wrap_err_with(|| format!("cannot play RECORDING={}", config.recording.display()))?;
    let (node, events) = DoraNode::init_from_env().wrap_err("cannot connect to the dora daemon")?;
    run(node, events, &config, &recording)
}

/// Plays `recording` as `config` says until it ends (or, looping, until dora stops the node).
pub fn run(
    mut node: DoraNode,
    mut events: EventStream,
    config: &Config,
    recording: &Recording,
) -> eyre::Result<ReplaySummary> {
    decode::init().wrap_err("cannot initialize FFmpeg")?;
    let window = Window::from_secs(config.start_secs, config.end_secs);
    let cameras: Vec<&str> = recording.cameras.iter().map(|c| c.name.as_str()).collect();
    tracing::info!(recording = %config.recording.display(), ?cameras, rate = ?config.rate, looped = config.looped, "replay ready");
    crate::priority::raise_this_thread();
    let messages = detection_messages(recording, window);
    let mut summary = ReplaySummary::default();
    let mut pass = None;
    loop {
        let feeders = spawn_feeders(&node, config, recording, window)?;
        let mut player = Player {
            node: &mut node,
            events: &mut events,
            pass,
            rate: config.rate,
            send_cost: SendCost::default(),
            summary: &mut summary,
            recording,
        };
        let last_ns = player.play(feeders, &messages, window)?;
        pass = player.pass;
        if summary.stopped {
            break;
        }
        summary.passes += 1;
        let (Some(last_ns), Some(current), true) = (last_ns, pass, config.looped) else { break };
        pass = Some(current.next(last_ns, LOOP_GAP_NS, Instant::now()));
    }
    if !summary.stopped {
        linger(&mut events);
    }
    tracing::info!(?summary, "replay done");
    Ok(summary)
}

/// Waits a moment before the node ends (and dora closes its outputs), or until dora stops it:
/// frames travel node to node, the closing of the outputs through the daemon, and a close sent
/// right after the last frame can reach a receiver first and cost it that frame.
fn linger(events: &mut EventStream) {
    let until = Instant::now() + LINGER;
    while Instant::now() < until {
        match events.try_recv() {
            Ok(Event::Stop(_)) | Err(TryRecvError::Closed) => return,
            _ => std::thread::sleep(EVENT_SLICE),
        }
    }
}

/// One camera thread per camera, writing into dora's output samples.
fn spawn_feeders(
    node: &DoraNode,
    config: &Config,
    recording: &Recording,
    window: Window,
) -> eyre::Result<Vec<(DataId, Feeder<DoraFrame>)>> {
    recording
        .cameras
        .iter()
        .map(|camera| {
            let plan = FeedPlan {
                camera: camera.name.clone(),
                segments: camera.segments.clone(),
                encoding: config.encoding,
                start_ns: recording.start_ns,
                window,
            };
            let buffers = DoraBuffers(node.sample_allocator());
            let feeder = Feeder::spawn(plan, buffers).wrap_err("cannot start a camera thread")?;
            Ok((DataId::from(camera.name.clone()), feeder))
        })
        .collect()
}

/// A recorded detections message on the session timeline.
struct TimedDetections<'a> {
    session_ns: i64,
    output: DataId,
    planned: &'a PlannedDetections,
}

/// Every camera's recorded detections inside `window`, in session-time order.
fn detection_messages(recording: &Recording, window: Window) -> Vec<TimedDetections<'_>> {
    let mut messages: Vec<TimedDetections<'_>> = recording
        .cameras
        .iter()
        .flat_map(|camera| {
            let output = DataId::from(format!("{}{DETECTIONS_SUFFIX}", camera.name));
            camera.detections.iter().map(move |planned| TimedDetections {
                session_ns: recording.session_ns(planned.time_ns),
                output: output.clone(),
                planned,
            })
        })
        .filter(|message| window.contains(message.session_ns))
        .collect();
    messages.sort_by_key(|message| message.session_ns);
    messages
}

/// What goes out next.
enum Next<'a> {
    Frame(usize),
    Detections(&'a TimedDetections<'a>),
}

/// One pass over the recording.
struct Player<'n> {
    node: &'n mut DoraNode,
    events: &'n mut EventStream,
    /// The pass's clock, set by its first message (or carried over from the previous pass).
    pass: Option<Pass>,
    /// Playback speed.
    rate: Rate,
    /// What a send is expected to cost.
    send_cost: SendCost,
    summary: &'n mut ReplaySummary,
    recording: &'n Recording,
}

impl Player<'_> {
    /// Sends everything in session-time order; returns the session time of the last message.
    fn play(
        &mut self,
        feeders: Vec<(DataId, Feeder<DoraFrame>)>,
        messages: &[TimedDetections<'_>],
        window: Window,
    ) -> eyre::Result<Option<i64>> {
        let mut heads: Vec<Option<ReadyFrame<DoraFrame>>> = feeders.iter().map(|_| None).collect();
        let mut live = vec![true; feeders.len()];
        let (mut next_message, mut last_ns, mut started) = (0, None, false);
        loop {
            self.fill_heads(&feeders, &mut heads, &mut live);
            let Some((session_ns, next)) = self.choose_next(&heads, messages.get(next_message)) else { break };
            if !started {
                started = true;
                self.start_session(session_ns, window)?;
            }
            let lead = match next {
                Next::Frame(index) => self.lead_before_next_frame(&heads, index, session_ns),
                Next::Detections(_) => Duration::ZERO,
            };
            if !self.wait_until(session_ns, lead) {
                break;
            }
            let sending = Instant::now();
            self.note_lateness(session_ns, sending, last_ns);
            match next {
                Next::Frame(index) => {
                    if let Some(frame) = heads[index].take() {
                        self.send_frame(&feeders[index].0, frame)?;
                    }
                }
                Next::Detections(message) => {
                    next_message += 1;
                    self.send_detections(message)?;
                }
            }
            let took = sending.elapsed();
            self.send_cost.observe(took);
            self.summary.worst_send_micros = self.summary.worst_send_micros.max(took.as_micros() as u64);
            last_ns = Some(session_ns);
        }
        drop(heads);
        drop(feeders);
        if let (Some(last), false) = (last_ns, self.summary.stopped) {
            self.stop_session(last, window)?;
        }
        Ok(last_ns)
    }

    /// Takes the next frame of every camera that has none waiting (the camera threads decode
    /// ahead, so this rarely waits), watching dora's events meanwhile.
    fn fill_heads(
        &mut self,
        feeders: &[(DataId, Feeder<DoraFrame>)],
        heads: &mut [Option<ReadyFrame<DoraFrame>>],
        live: &mut [bool],
    ) {
        for (index, (_, feeder)) in feeders.iter().enumerate() {
            while heads[index].is_none() && live[index] && !self.summary.stopped {
                match feeder.frames.recv_timeout(EVENT_SLICE) {
                    Ok(frame) => heads[index] = Some(frame),
                    Err(RecvTimeoutError::Timeout) => self.poll_events(),
                    Err(RecvTimeoutError::Disconnected) => live[index] = false,
                }
            }
        }
    }

    /// The next message in session-time order: the earliest camera frame or recorded detection.
    /// A detection due less than one send before a frame waits for that frame: detections are
    /// matched to frames by their metadata, frames are the ones whose timing is kept.
    fn choose_next<'m>(
        &self,
        heads: &[Option<ReadyFrame<DoraFrame>>],
        message: Option<&'m TimedDetections<'m>>,
    ) -> Option<(i64, Next<'m>)> {
        let earliest = heads
            .iter()
            .enumerate()
            .filter_map(|(index, head)| head.as_ref().map(|frame| (self.recording.session_ns(frame.time_ns), index)))
            .min();
        let allowance = match self.rate {
            Rate::Times(rate) => (self.send_cost.estimate().as_nanos() as f64 * rate) as i64,
            Rate::Unpaced => 0,
        };
        match (earliest, message) {
            (Some((frame_ns, index)), Some(m)) if frame_ns <= m.session_ns.saturating_add(allowance) => {
                Some((frame_ns, Next::Frame(index)))
            }
            (_, Some(m)) => Some((m.session_ns, Next::Detections(m))),
            (Some((frame_ns, index)), None) => Some((frame_ns, Next::Frame(index))),
            (None, None) => None,
        }
    }

    /// How much before its deadline to send the frame of camera `index` (at `session_ns`), when
    /// another camera's frame is due less than one send after it (see [`SendCost::lead_before`]).
    fn lead_before_next_frame(
        &self,
        heads: &[Option<ReadyFrame<DoraFrame>>],
        index: usize,
        session_ns: i64,
    ) -> Duration {
        let following = heads
            .iter()
            .enumerate()
            .filter(|(other, _)| *other != index)
            .filter_map(|(_, head)| head.as_ref().map(|frame| self.recording.session_ns(frame.time_ns)))
            .min();
        let deadline = |at: i64| self.pass.and_then(|pass| pass.deadline(at));
        match (following.and_then(deadline), deadline(session_ns)) {
            (Some(next), Some(this)) => self.send_cost.lead_before(next.saturating_duration_since(this)),
            _ => Duration::ZERO,
        }
    }

    /// Keeps the worst lateness (a message sent early on purpose counts as on time).
    fn note_lateness(&mut self, session_ns: i64, sending: Instant, last_ns: Option<i64>) {
        let Some(deadline) = self.pass.and_then(|pass| pass.deadline(session_ns)) else { return };
        let late = sending.saturating_duration_since(deadline).as_micros() as u64;
        self.summary.worst_late_micros = self.summary.worst_late_micros.max(late);
        if late > 1000 {
            let since_previous = last_ns.map(|last| session_ns - last);
            tracing::debug!(late_micros = late, session_ns, ?since_previous, "a message left late");
        }
    }

    /// Sends the session's start, at the session start when the window and the pass allow,
    /// else just before the first message.
    fn start_session(&mut self, first_ns: i64, window: Window) -> eyre::Result<()> {
        let start_ns = first_ns.min(0_i64.max(window.start_ns));
        let rate = self.rate;
        self.pass.get_or_insert_with(|| Pass::new(Instant::now() + START_LEAD, start_ns, rate));
        if !self.wait_until(start_ns, Duration::ZERO) {
            return Ok(());
        }
        let control = Control::Start { session_id: self.recording.session_id.clone() };
        self.send_control(&control)
    }

    /// Sends the session's stop: at its recorded end, or at `END` when that comes first, and
    /// after the last message `last_ns` in any case. A session without a recorded end (its
    /// recorder was killed) gets no stop: it ends when the replay's outputs close, after the
    /// answers of the nodes downstream to the last frames.
    fn stop_session(&mut self, last_ns: i64, window: Window) -> eyre::Result<()> {
        let ended = self.recording.end_ns.map(|end| self.recording.session_ns(end));
        let cut = match (ended, window.end_ns) {
            (Some(ended), Some(end)) => ended.min(end),
            (ended, end) => match ended.or(end) {
                Some(at) => at,
                None => return Ok(()),
            },
        };
        if self.wait_until(cut.max(last_ns + STOP_AFTER_LAST_NS), Duration::ZERO) {
            self.send_control(&Control::Stop)?;
        }
        Ok(())
    }

    /// Waits until the message at `session_ns` is due, watching dora's events; `false` when dora
    /// stopped the node meanwhile.
    fn wait_until(&mut self, session_ns: i64, lead: Duration) -> bool {
        let deadline =
            self.pass.and_then(|pass| pass.deadline(session_ns)).map(|at| at.checked_sub(lead).unwrap_or(at));
        // dora's events are looked at before each sleep, never in the last stretch before the
        // deadline: taking an event is not free, and the send must not wait for it.
        self.poll_events();
        while !self.summary.stopped {
            match wait_for(deadline, Instant::now(), EVENT_SLICE) {
                Some(wait) if wait > SPIN => {
                    std::thread::sleep(wait - SPIN);
                    if wait > 2 * SPIN {
                        self.poll_events();
                    }
                }
                Some(_) => std::hint::spin_loop(),
                None => break,
            }
        }
        !self.summary.stopped
    }

    /// Takes the events dora has queued; a stop or the end of the stream stops the replay.
    fn poll_events(&mut self) {
        loop {
            match self.events.try_recv() {
                Ok(Event::Stop(_)) | Err(TryRecvError::Closed) => {
                    if !self.summary.stopped {
                        tracing::info!("stop requested: replay ends");
                    }
                    self.summary.stopped = true;
                    return;
                }
                Ok(Event::Error(message)) => tracing::warn!("dora reported an error: {message}"),
                Ok(_) => {}
                Err(TryRecvError::Empty) => return,
            }
        }
    }

    fn send_frame(&mut self, output: &DataId, frame: ReadyFrame<DoraFrame>) -> eyre::Result<()> {
        let mut parameters = id_parameters(&frame.ids);
        let text = |value: &str| Parameter::String(value.to_owned());
        parameters.insert("encoding".to_owned(), text(frame.encoding.name()));
        parameters.insert("width".to_owned(), Parameter::Integer(frame.width.into()));
        parameters.insert("height".to_owned(), Parameter::Integer(frame.height.into()));
        let primitive = if frame.encoding == PixelEncoding::Mono16 { "depth" } else { "image" };
        parameters.insert("primitive".to_owned(), text(primitive));
        if frame.recorded {
            parameters.insert(RECORDED_TIME_KEY.to_owned(), Parameter::Integer(nanos_parameter(frame.time_ns)));
        }
        parameters.insert(FRAMING.to_owned(), text(FRAMING_ARROW_IPC));
        self.node
            .send_output_sample(output.clone(), parameters, Some(frame.buffer.sample))
            .map_err(|e| eyre::eyre!("cannot send a frame on `{output}`: {e}"))?;
        self.summary.frames += 1;
        Ok(())
    }

    fn send_detections(&mut self, message: &TimedDetections<'_>) -> eyre::Result<()> {
        let planned = message.planned;
        let mut parameters = match &planned.frame {
            Some((time_ns, ids)) => {
                let mut parameters = id_parameters(ids);
                parameters.insert(RECORDED_TIME_KEY.to_owned(), Parameter::Integer(nanos_parameter(*time_ns)));
                parameters
            }
            None => MetadataParameters::new(),
        };
        parameters.insert("primitive".to_owned(), Parameter::String("boxes2d".to_owned()));
        parameters.insert("format".to_owned(), Parameter::String(planned.detections.format.name().to_owned()));
        self.node
            .send_output(message.output.clone(), parameters, detections_array(&planned.detections))
            .map_err(|e| eyre::eyre!("cannot send detections on `{}`: {e}", message.output))?;
        self.summary.detections += 1;
        Ok(())
    }

    fn send_control(&mut self, control: &Control) -> eyre::Result<()> {
        self.node
            .send_output(DataId::from(CONTROL_OUTPUT.to_owned()), MetadataParameters::new(), control_text(control))
            .map_err(|e| eyre::eyre!("cannot send on `{CONTROL_OUTPUT}`: {e}"))
    }
}
