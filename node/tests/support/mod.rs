//! Test harness: scripted dora events for `DoraNode::init_testing`, and `ffprobe` checks.

#![allow(dead_code, clippy::unwrap_used)]

use std::{collections::BTreeMap, path::Path};

pub use e2e::{decode_frames, probe, temp_dir as temp_storage, videos_in};

use dora_node_api::{
    DoraNode,
    integration_testing::{self, IntegrationTestInput, TestingInput, TestingOutput},
};
use dora_video_recorder::{Config, RunSummary, Wiring};
use serde_json::{Value, json};

/// A scripted run: events in delivery order, each with its send time offset.
pub struct Script {
    /// Wired inputs, `id -> source`, as the dataflow descriptor would list them.
    inputs: BTreeMap<String, String>,
    events: Vec<Value>,
}

impl Script {
    /// A script whose node has these inputs wired (`id -> source`).
    pub fn new(inputs: &[(&str, &str)]) -> Self {
        Self { inputs: inputs.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect(), events: Vec::new() }
    }

    /// A raw frame on `camera` sent at `at` seconds.
    pub fn frame(mut self, camera: &str, at: f64, encoding: &str, width: i64, height: i64, bytes: Vec<u8>) -> Self {
        self.events.push(json!({
            "time_offset_secs": at, "type": "Input", "id": camera,
            "metadata": {"encoding": {"String": encoding}, "width": {"Integer": width}, "height": {"Integer": height}},
            "data": bytes, "data_type": "UInt8",
        }));
        self
    }

    /// `count` bgr8 frames like [`frames`](Self::frames), each with a `frame_index` metadata
    /// value (`first_index` + n) as cameras send it; `times` gives each frame's send time.
    pub fn indexed_frames(mut self, camera: &str, times: &[f64], first_index: i64, width: i64, height: i64) -> Self {
        for (n, at) in times.iter().enumerate() {
            let index = first_index + n as i64;
            self.events.push(json!({
                "time_offset_secs": at, "type": "Input", "id": camera,
                "metadata": {
                    "encoding": {"String": "bgr8"}, "width": {"Integer": width}, "height": {"Integer": height},
                    "frame_index": {"Integer": index},
                },
                "data": vec![(index * 7 % 256) as u8; (width * height * 3) as usize], "data_type": "UInt8",
            }));
        }
        self
    }

    /// A detector message in dora-yolo's layout (one struct row of lists) on `input`, with
    /// `frame_index` passed through like dora-yolo passes the image's metadata.
    pub fn detections(
        mut self,
        input: &str,
        at: f64,
        frame_index: Option<i64>,
        labels: &[&str],
        boxes: &[[f64; 4]],
    ) -> Self {
        let mut metadata = json!({"primitive": {"String": "boxes2d"}, "format": {"String": "xyxy"}});
        if let Some(index) = frame_index {
            metadata["frame_index"] = json!({"Integer": index});
        }
        let row = json!({
            "bbox": boxes.iter().flatten().copied().collect::<Vec<f64>>(),
            "conf": vec![0.9; labels.len()],
            "labels": labels,
        });
        self.events.push(json!({
            "time_offset_secs": at, "type": "Input", "id": input, "metadata": metadata, "data": [row],
        }));
        self
    }

    /// An input with arbitrary metadata and data (for hostile-input tests).
    pub fn raw_input(mut self, id: &str, at: f64, metadata: Value, data: Value, data_type: &str) -> Self {
        self.events.push(json!({
            "time_offset_secs": at, "type": "Input", "id": id, "metadata": metadata, "data": data, "data_type": data_type,
        }));
        self
    }

    /// `count` bgr8 frames of `width` x `height` every `interval` seconds from `start`.
    pub fn frames(mut self, camera: &str, start: f64, interval: f64, count: usize, width: i64, height: i64) -> Self {
        for i in 0..count {
            let shade = (i * 7 % 256) as u8;
            self = self.frame(
                camera,
                start + i as f64 * interval,
                "bgr8",
                width,
                height,
                vec![shade; (width * height * 3) as usize],
            );
        }
        self
    }

    /// A string control message, with an optional `session_id` metadata parameter.
    pub fn control_text(mut self, at: f64, text: &str, session_id: Option<&str>) -> Self {
        let metadata = match session_id {
            Some(id) => json!({"session_id": {"String": id}}),
            None => json!({}),
        };
        self.events.push(json!({
            "time_offset_secs": at, "type": "Input", "id": "control", "metadata": metadata,
            "data": text, "data_type": "Utf8",
        }));
        self
    }

    /// An Int64 episode-index control message.
    pub fn control_episode(mut self, at: f64, index: i64) -> Self {
        self.events.push(json!({
            "time_offset_secs": at, "type": "Input", "id": "control", "metadata": {}, "data": [index], "data_type": "Int64",
        }));
        self
    }

    /// dora's notice that `input` closed (its sender exited or crashed).
    pub fn input_closed(mut self, at: f64, input: &str) -> Self {
        self.events.push(json!({"time_offset_secs": at, "type": "InputClosed", "id": input}));
        self
    }

    /// A JSON control command.
    pub fn control_json(self, at: f64, command: &Value) -> Self {
        self.control_text(at, &command.to_string(), None)
    }

    /// `count` frames of random bytes (incompressible, so files grow fast).
    pub fn noise_frames(
        mut self,
        camera: &str,
        start: f64,
        interval: f64,
        count: usize,
        width: i64,
        height: i64,
    ) -> Self {
        for i in 0..count {
            let bytes = noise((width * height * 3) as usize, i as u64);
            self = self.frame(camera, start + i as f64 * interval, "bgr8", width, height, bytes);
        }
        self
    }

    /// dora's stop event.
    pub fn stop(mut self, at: f64) -> Self {
        self.events.push(json!({"time_offset_secs": at, "type": "Stop"}));
        self
    }

    /// Runs the recorder over the script with `env` as its environment. Returns the run result
    /// and the `recording` output events as JSON objects.
    pub fn run(self, env: &[(&str, &str)]) -> (eyre::Result<RunSummary>, Vec<Value>) {
        let (result, mut outputs) = self.run_with_outputs(env);
        (result, outputs.remove("recording").unwrap_or_default())
    }

    /// [`run`](Self::run), returning the rows of every output (`recording`, `stats`) by id.
    pub fn run_with_outputs(self, env: &[(&str, &str)]) -> (eyre::Result<RunSummary>, BTreeMap<String, Vec<Value>>) {
        let wiring = Wiring::from_inputs(self.inputs.keys().cloned(), "test-dataflow".into());
        let input: IntegrationTestInput = serde_json::from_value(json!({
            "id": "recorder", "outputs": ["recording", "stats"], "events": self.events,
        }))
        .unwrap();
        let env: BTreeMap<String, String> = env.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect();
        let config = match Config::from_lookup(|key| env.get(key).cloned(), &BTreeMap::new()) {
            Ok(config) => config,
            Err(e) => return (Err(e.into()), BTreeMap::new()),
        };
        let (tx, mut rx) = integration_testing::output_channel();
        let (node, events) =
            DoraNode::init_testing(TestingInput::Input(input), TestingOutput::ToChannel(tx), Default::default())
                .unwrap();
        let result = dora_video_recorder::run_with_wiring(node, events, config, wiring);
        let mut outputs: BTreeMap<String, Vec<Value>> = BTreeMap::new();
        for output in integration_testing::drain_outputs(&mut rx).into_iter().map(Value::Object) {
            let id = output.get("id").and_then(Value::as_str).unwrap_or_default().to_owned();
            outputs.entry(id).or_default().extend(output_rows(output));
        }
        (result, outputs)
    }
}

/// `len` bytes of deterministic noise (xorshift, no crate): incompressible, slow to encode.
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut state = 0x2545_f491_4f6c_dd1d_u64 ^ seed.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

/// The struct rows inside one output object.
fn output_rows(output: Value) -> Vec<Value> {
    match output.get("data") {
        Some(Value::Array(rows)) => rows.iter().map(|row| row.get("inner").cloned().unwrap_or(row.clone())).collect(),
        _ => Vec::new(),
    }
}

/// The first decoded frame of `path` as packed RGB.
pub fn first_frame_rgb(path: &Path) -> Vec<u8> {
    let probe = probe(path);
    decode_frames(path, "rgb24", (probe.width * probe.height * 3) as usize).swap_remove(0)
}

/// Rows of `recording` events with the given status.
pub fn events_with_status<'a>(events: &'a [Value], status: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["status"] == status).collect()
}
