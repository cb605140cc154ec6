//! The dora edge: the event loop turns events into plain values for the [`Pipeline`]
//! ([`inputs`]) and sends file events and stats on the optional outputs ([`outputs`]). The only
//! module that names dora types.

mod detections;
mod inputs;
mod outputs;

pub use detections::detections_array;

use std::time::Duration;

use dora_node_api::{
    DoraArray, DoraNode, Event, EventStream, Metadata, MetadataParameters, SESSION_ID, StopCause,
    dora_core::config::DataId, get_string_param,
};
use eyre::WrapErr;

use self::{
    detections::{FORMAT_KEY as DETECTIONS_FORMAT_KEY, parse_detections},
    inputs::{control_payload, frame_metadata, frame_payload, identifying_values},
};
use crate::{
    config::Config,
    params::parse_param,
    pipeline::{
        Pipeline,
        wiring::{CONTROL_INPUT, RunSummary, Wiring, is_camera_input},
    },
    stats::CameraStats,
    timing::Now,
};

/// Optional output with one event per file started, finished, failed or deleted.
pub const RECORDING_OUTPUT: &str = "recording";
/// Optional output with one row per camera every `STATS_INTERVAL`.
pub const STATS_OUTPUT: &str = "stats";
/// How often the loop wakes without events to finalize stopped sessions.
const TICK: Duration = Duration::from_millis(100);
/// What dora's `recv_timeout` says when nothing arrived within the tick.
const IDLE_TIMEOUT_MESSAGE: &str = "timed out";

/// Reads the configuration, connects to dora and records until the event stream ends.
pub fn run_from_env() -> eyre::Result<RunSummary> {
    let config = Config::from_env().wrap_err("invalid recorder configuration")?;
    let (node, events) = DoraNode::init_from_env().wrap_err("cannot connect to the dora daemon")?;
    run(node, events, config)
}

/// Records until the event stream ends, then finalizes every file. The wiring (camera inputs,
/// control input) comes from the dataflow descriptor.
pub fn run(node: DoraNode, events: EventStream, config: Config) -> eyre::Result<RunSummary> {
    let inputs = node.node_config().inputs.keys().map(|id| id.as_str().to_owned());
    let wiring = Wiring::from_inputs(inputs, node.dataflow_id().to_string());
    run_with_wiring(node, events, config, wiring)
}

/// [`run`] with the wiring given explicitly, for nodes whose descriptor lists no inputs
/// (`DoraNode::init_testing` has none).
pub fn run_with_wiring(
    mut node: DoraNode,
    mut events: EventStream,
    config: Config,
    wiring: Wiring,
) -> eyre::Result<RunSummary> {
    crate::encode::init_ffmpeg().wrap_err("cannot initialize FFmpeg")?;
    tracing::info!(
        cameras = ?wiring.cameras, control = wiring.control_wired, auto_session = config.auto_session, storage = %config.storage.display(),
        codec = config.codec.name(), format = config.container.extension(), fps = config.fps.as_f64(),
        "recorder ready"
    );
    let upstream = upstream_nodes(&node);
    let mut pipeline = Pipeline::new(config, wiring, Now::read())?;
    while let Some(event) = events.recv_timeout(TICK) {
        let now = Now::read();
        match event {
            Event::Input { id, metadata, data } => on_input(&mut pipeline, id.as_str(), &metadata, data, now),
            Event::InputClosed { id } => pipeline.on_camera_gone(id.as_str(), now),
            Event::NodeFailed { affected_input_ids, error, source_node_id } => {
                tracing::warn!(node = %source_node_id, "upstream node failed: {error}");
                for input in affected_input_ids {
                    pipeline.on_camera_gone(input.as_str(), now);
                }
            }
            Event::NodeRestarted { id } => {
                for input in inputs_from(&upstream, id.as_ref()) {
                    pipeline.on_camera_gone(input, now);
                }
            }
            // `dora param set` / `delete`: they act when they arrive (they carry no send time).
            Event::ParamUpdate { key, value } => pipeline.on_param(parse_param(&key, Some(&value)), now),
            Event::ParamDeleted { key } => pipeline.on_param(parse_param(&key, None), now),
            // Inputs queued before the stop still arrive: keep going until the stream ends.
            Event::Stop(StopCause::Manual) => tracing::info!("stop requested: encoding queued frames, then finalizing"),
            Event::Stop(_) => {
                tracing::info!("all inputs closed: finalizing");
                pipeline.inputs_closed();
            }
            // `recv_timeout` reports an idle period as an error event ("Receiver timed out"):
            // that is our tick. Anything else dora reports is worth a line.
            Event::Error(message) if message.contains(IDLE_TIMEOUT_MESSAGE) => {}
            Event::Error(message) => tracing::warn!("dora reported an error: {message}"),
            _ => {}
        }
        for (input, frames) in events.drain_drop_counts() {
            pipeline.on_queue_drops(input.as_str(), frames, now);
        }
        pipeline.tick(now);
        send_reports(&mut node, &mut pipeline, now);
        if let Some(stats) = pipeline.take_stats(now) {
            send_stats(&mut node, &stats);
        }
    }
    let now = Now::read();
    pipeline.finish(now);
    send_reports(&mut node, &mut pipeline, now);
    let summary = pipeline.summary().clone();
    tracing::info!(?summary, "recorder done");
    Ok(summary)
}

/// `(source node, input id)` for every input, to know which cameras a restarted node feeds.
/// A mapping prints as `node/output` (`dora/timer/...` for dora's own sources).
fn upstream_nodes(node: &DoraNode) -> Vec<(String, String)> {
    node.node_config()
        .inputs
        .iter()
        .filter_map(|(input, config)| {
            let mapping = config.mapping.to_string();
            let (source, _) = mapping.split_once('/')?;
            Some((source.to_owned(), input.to_string()))
        })
        .collect()
}

fn inputs_from<'a>(upstream: &'a [(String, String)], node: &'a str) -> impl Iterator<Item = &'a str> {
    upstream.iter().filter(move |(source, _)| source == node).map(|(_, input)| input.as_str())
}

fn on_input(pipeline: &mut Pipeline, id: &str, metadata: &Metadata, data: DoraArray, now: Now) {
    let sent_nanos = metadata.timestamp().get_time().as_nanos();
    let parameters = &metadata.parameters;
    match id {
        CONTROL_INPUT => {
            pipeline.on_control(control_payload(&data), get_string_param(parameters, SESSION_ID), sent_nanos, now)
        }
        input if !is_camera_input(input) => {
            let format = get_string_param(parameters, DETECTIONS_FORMAT_KEY);
            let parsed = parse_detections(&data.into_inner(), format).map_err(|e| e.to_string());
            pipeline.on_detections(input, parsed, identifying_values(parameters), sent_nanos, now)
        }
        camera => pipeline.on_frame(camera, &frame_metadata(parameters), sent_nanos, frame_payload(data), now),
    }
}

/// One log line per camera, and the rows on the optional `stats` output.
fn send_stats(node: &mut DoraNode, stats: &[CameraStats]) {
    for row in stats {
        tracing::info!(
            camera = %row.camera, frames_in = row.frames_in, encoded = row.encoded, dropped = row.dropped,
            encode_fps = format_args!("{:.1}", row.encode_fps), bitrate_kbps = format_args!("{:.0}", row.bitrate_bps / 1000.0),
            queue_frames = row.queue_frames, queue_bytes = row.queue_bytes, "stats"
        );
    }
    if !stats.is_empty()
        && let Err(error) = node.send_output(
            DataId::from(STATS_OUTPUT.to_owned()),
            MetadataParameters::default(),
            outputs::stats_to_arrow(stats),
        )
    {
        tracing::warn!("cannot send the {STATS_OUTPUT} output: {error}");
    }
}

fn send_reports(node: &mut DoraNode, pipeline: &mut Pipeline, now: Now) {
    for report in pipeline.take_reports(now) {
        let output = DataId::from(RECORDING_OUTPUT.to_owned());
        if let Err(error) = node.send_output(output, MetadataParameters::default(), outputs::report_to_arrow(&report)) {
            tracing::warn!("cannot send the {RECORDING_OUTPUT} event: {error}");
        }
    }
}
