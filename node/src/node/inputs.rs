//! What the node receives, as plain values: frame bytes without a copy, frame metadata, control
//! payloads, the identifying metadata of frames and detections.

use std::collections::BTreeMap;

use arrow::{
    array::{Array, Float32Array, Float64Array, UInt8Array, UInt16Array},
    buffer::Buffer,
};
use dora_node_api::{DoraArray, MetadataParameters, Parameter, get_integer_param, get_string_param};

use crate::{
    frame::{ENCODING_KEY, FrameMetadata, HEIGHT_KEY, PRIMITIVE_KEY, Payload, WIDTH_KEY, depth},
    session::control::ControlPayload,
    sidecars::index::identifying_keys,
};

pub(super) fn frame_metadata(parameters: &MetadataParameters) -> FrameMetadata {
    FrameMetadata {
        ids: identifying_values(parameters),
        encoding: get_string_param(parameters, ENCODING_KEY).map(str::to_owned),
        width: get_integer_param(parameters, WIDTH_KEY),
        height: get_integer_param(parameters, HEIGHT_KEY),
        primitive: get_string_param(parameters, PRIMITIVE_KEY).map(str::to_owned),
    }
}

/// The metadata values that identify a frame or detection (see [`identifying_keys`]), as text.
pub(super) fn identifying_values(parameters: &MetadataParameters) -> BTreeMap<String, String> {
    identifying_keys(parameters.keys().map(String::as_str))
        .into_iter()
        .filter_map(|key| parameters.get(&key).map(|value| (key, parameter_text(value))))
        .collect()
}

/// A metadata value as one CSV cell: lists joined with `;`, timestamps in RFC 3339.
fn parameter_text(value: &Parameter) -> String {
    fn join<T: ToString>(items: &[T]) -> String {
        items.iter().map(ToString::to_string).collect::<Vec<_>>().join(";")
    }
    match value {
        Parameter::Bool(b) => b.to_string(),
        Parameter::Integer(n) => n.to_string(),
        Parameter::String(s) => s.clone(),
        Parameter::Float(x) => x.to_string(),
        Parameter::ListInt(list) => join(list),
        Parameter::ListFloat(list) => join(list),
        Parameter::ListString(list) => list.join(";"),
        Parameter::Timestamp(at) => at.to_rfc3339(),
    }
}

/// The frame's payload: bytes and uint16 depth without copying (dora's buffer is shared with
/// the encoder thread), float metres converted to uint16 millimetres (see [`depth`]).
pub(super) fn frame_payload(data: DoraArray) -> Result<Payload, String> {
    let array = data.into_inner();
    if array.null_count() > 0 {
        return Err(format!("a {:?} array with nulls", array.data_type()));
    }
    let any = array.as_any();
    if let Some(bytes) = any.downcast_ref::<UInt8Array>() {
        return Ok(Payload::Bytes(bytes.values().inner().clone()));
    }
    // Arrow buffers are little-endian on every platform dora runs on: the samples are mono16 as is.
    if let Some(samples) = any.downcast_ref::<UInt16Array>() {
        return Ok(Payload::Mono16(samples.values().inner().clone()));
    }
    if let Some(metres) = any.downcast_ref::<Float32Array>() {
        return Ok(Payload::DepthMetres(Buffer::from_vec(depth::f32_metres_to_mono16(metres.values()))));
    }
    if let Some(metres) = any.downcast_ref::<Float64Array>() {
        return Ok(Payload::DepthMetres(Buffer::from_vec(depth::f64_metres_to_mono16(metres.values()))));
    }
    Err(format!("{:?}", array.data_type()))
}

pub(super) fn control_payload(data: &DoraArray) -> Result<ControlPayload, String> {
    if let Ok(text) = String::try_from(data) {
        return Ok(ControlPayload::Text(text));
    }
    i64::try_from(data).map(ControlPayload::Integer).map_err(|_| data.type_name())
}
