//! What the node sends, as dora messages: frame payloads written into dora's output samples,
//! metadata typed back from the index, detections in dora-yolo's layout.

use std::collections::BTreeMap;

use dora_node_api::{
    DataSample, MetadataParameters, Parameter, SampleAllocator, arrow_utils::ipc_encode::PreparedUint8Ipc,
};

use crate::feeder::OutputBuffers;

/// A frame's payload in a dora output sample: an Arrow IPC UInt8 message whose data region the
/// camera thread fills.
pub struct DoraFrame {
    pub(super) sample: DataSample,
    offset: usize,
    len: usize,
}

/// Output samples from the node's allocator (shared memory for large frames).
pub(super) struct DoraBuffers(pub(super) SampleAllocator);

impl OutputBuffers for DoraBuffers {
    type Buffer = DoraFrame;

    fn allocate(&self, len: usize) -> eyre::Result<DoraFrame> {
        let prepared = PreparedUint8Ipc::new(len)?;
        let mut sample =
            self.0.allocate(prepared.byte_len()).map_err(|e| eyre::eyre!("cannot allocate a sample: {e}"))?;
        let offset = prepared.encode_header_into(&mut sample)?;
        Ok(DoraFrame { sample, offset, len })
    }

    fn payload_mut<'a>(&self, buffer: &'a mut DoraFrame) -> &'a mut [u8] {
        &mut buffer.sample[buffer.offset..buffer.offset + buffer.len]
    }
}

/// Identifying metadata from the index, typed back: a canonical integer becomes an Integer,
/// `true`/`false` a Bool, anything else stays a String (the index keeps text only).
pub(super) fn id_parameters(ids: &BTreeMap<String, String>) -> MetadataParameters {
    ids.iter().map(|(key, value)| (key.clone(), id_parameter(value))).collect()
}

fn id_parameter(value: &str) -> Parameter {
    match value {
        "true" => Parameter::Bool(true),
        "false" => Parameter::Bool(false),
        _ => match value.parse::<i64>() {
            Ok(number) if number.to_string() == value => Parameter::Integer(number),
            _ => Parameter::String(value.to_owned()),
        },
    }
}

pub(super) fn nanos_parameter(time_ns: u64) -> i64 {
    i64::try_from(time_ns).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_values_are_typed_back_when_unambiguous() {
        assert_eq!(id_parameter("42"), Parameter::Integer(42));
        assert_eq!(id_parameter("-7"), Parameter::Integer(-7));
        assert_eq!(id_parameter("007"), Parameter::String("007".into()), "a padded id stays text");
        assert_eq!(id_parameter("true"), Parameter::Bool(true));
        assert_eq!(id_parameter("1.5"), Parameter::String("1.5".into()));
        assert_eq!(id_parameter("episode_1"), Parameter::String("episode_1".into()));
    }
}
