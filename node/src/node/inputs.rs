//! What the node receives, as plain values: frame bytes without a copy, frame metadata, control
//! payloads, the identifying metadata of frames and detections.

use std::collections::BTreeMap;

use arrow::{
    array::{Array, UInt8Array},
    buffer::Buffer,
};
use dora_node_api::{DoraArray, MetadataParameters, Parameter, get_integer_param, get_string_param};

use crate::{
    frame::{ENCODING_KEY, FrameMetadata, HEIGHT_KEY, WIDTH_KEY},
    session::control::ControlPayload,
    sidecars::index::identifying_keys,
};

pub(super) fn frame_metadata(parameters: &MetadataParameters) -> FrameMetadata {
    FrameMetadata {
        ids: identifying_values(parameters),
        encoding: get_string_param(parameters, ENCODING_KEY).map(str::to_owned),
        width: get_integer_param(parameters, WIDTH_KEY),
        height: get_integer_param(parameters, HEIGHT_KEY),
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

/// The frame's bytes without copying: dora's buffer is shared with the encoder thread.
pub(super) fn frame_bytes(data: DoraArray) -> Result<Buffer, String> {
    let array = data.into_inner();
    match array.as_any().downcast_ref::<UInt8Array>() {
        Some(bytes) if bytes.null_count() == 0 => Ok(bytes.values().inner().clone()),
        Some(_) => Err("a UInt8 array with nulls".to_owned()),
        None => Err(format!("{:?}", array.data_type())),
    }
}

pub(super) fn control_payload(data: &DoraArray) -> Result<ControlPayload, String> {
    if let Ok(text) = String::try_from(data) {
        return Ok(ControlPayload::Text(text));
    }
    i64::try_from(data).map(ControlPayload::Integer).map_err(|_| data.type_name())
}
