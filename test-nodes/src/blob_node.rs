//! The `dora-blob-detector` node: a model-free stand-in for dora-yolo. It finds saturated-red
//! blobs in camera frames by thresholding colour ([`crate::blob`]), such as the moving object of
//! the test pattern, and reports them in dora-yolo's detection format, so a recorder triggered by
//! `TRIGGER_LABELS=person` behaves as it would behind YOLO.
//!
//! - Input `image`: a flat UInt8 frame with metadata `encoding` (bgr8, rgb8, rgba8, bgra8, mono8,
//!   yuv420, nv12; mono8 never has red), `width` and `height` (Integer).
//! - Output `bbox`, one message per input frame: a one-row Arrow struct array
//!   `{bbox: list<float32>, conf: list<float32>, labels: list<utf8>}` (all fields nullable, list
//!   items named `item`, as pyarrow builds them). `bbox` is flat, four values per box,
//!   `x1, y1, x2, y2` in full-resolution pixels (`x2`/`y2` one past the last red column/row);
//!   `conf` is the blob's fill ratio of its box (0..=1, about 0.79 for a disc); `labels` repeats
//!   `LABEL`. The lists are empty when nothing is found, and also when the frame cannot be read
//!   (missing metadata, an unsupported encoding, a short payload: logged to stderr).
//!   Metadata: every parameter of the image (e.g. `frame_index`, `encoding`, `width`, `height`),
//!   with `primitive` = `"boxes2d"` and `format` = `"xyxy"`.
//! - Environment: `LABEL` (default `person`), `MIN_AREA` (smallest blob in pixels, default 64),
//!   `MIN_REDNESS` (how much red must exceed green and blue, 1..=255, default 160).
//!
//! Frames up to 640 pixels a side are examined pixel by pixel (about a millisecond for 640x480);
//! larger ones on a coarser grid.

use std::sync::Arc;

use arrow::{
    array::{ArrayRef, Float32Builder, ListBuilder, StringBuilder, StructArray},
    datatypes::{DataType, Field},
};
use dora_node_api::{
    DoraArray, DoraNode, Event, EventStream, MetadataParameters, Parameter, dora_core::config::DataId,
    get_integer_param, get_string_param,
};
use eyre::{WrapErr, eyre};

use crate::{
    blob::{Blob, BlobParams, DEFAULT_MIN_AREA, DEFAULT_MIN_REDNESS, Image, find_red_blobs},
    encoding::Encoding,
    env,
    pattern_node::{ENCODING_PARAM, HEIGHT_PARAM, PRIMITIVE_PARAM, WIDTH_PARAM},
};

/// Input carrying the frames.
pub const IMAGE_INPUT: &str = "image";
/// Output carrying the detections.
pub const BBOX_OUTPUT: &str = "bbox";

/// Environment key of the label given to every blob.
pub const LABEL_KEY: &str = "LABEL";
/// Environment key of the smallest blob area in pixels.
pub const MIN_AREA_KEY: &str = "MIN_AREA";
/// Environment key of the redness threshold.
pub const MIN_REDNESS_KEY: &str = "MIN_REDNESS";
/// Label when `LABEL` is unset.
pub const DEFAULT_LABEL: &str = "person";

/// Struct field of the flat box coordinates.
pub const BBOX_FIELD: &str = "bbox";
/// Struct field of the confidences.
pub const CONF_FIELD: &str = "conf";
/// Struct field of the labels.
pub const LABELS_FIELD: &str = "labels";
/// Value of the `primitive` metadata parameter on detections.
pub const PRIMITIVE_BOXES2D: &str = "boxes2d";
/// Metadata parameter: the box layout (String), always [`FORMAT_XYXY`].
pub const FORMAT_PARAM: &str = "format";
/// Value of [`FORMAT_PARAM`]: corners, `x1, y1, x2, y2`.
pub const FORMAT_XYXY: &str = "xyxy";

/// The detector's settings, read once at startup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DetectorSettings {
    /// What counts as a blob.
    pub params: BlobParams,
    /// Label of every detection.
    pub label: String,
}

impl DetectorSettings {
    /// Reads the settings from the process environment.
    pub fn from_env() -> eyre::Result<Self> {
        Self::from_lookup(|key| std::env::var(key).ok())
    }

    /// Reads the settings from an environment lookup; unset or blank keys take the defaults.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> eyre::Result<Self> {
        let min_area = env::number_in(&lookup, MIN_AREA_KEY, 1..=u64::from(u32::MAX), DEFAULT_MIN_AREA)?;
        let min_redness = env::number_in(&lookup, MIN_REDNESS_KEY, 1..=255, DEFAULT_MIN_REDNESS)?;
        let label = env::value(&lookup, LABEL_KEY).unwrap_or_else(|| DEFAULT_LABEL.to_owned());
        Ok(Self { params: BlobParams { min_area, min_redness }, label })
    }
}

/// Runs the detector until the event stream ends; returns the number of frames answered.
/// Logs the settings at start, unreadable frames (when the reason changes) and a summary at the
/// end to stderr.
pub fn run(mut node: DoraNode, mut events: EventStream, settings: &DetectorSettings) -> eyre::Result<u64> {
    eprintln!(
        "dora-blob-detector: label {:?}, min area {} px, min redness {}",
        settings.label, settings.params.min_area, settings.params.min_redness
    );
    let (mut frames, mut unreadable, mut last_problem) = (0_u64, 0_u64, String::new());
    while let Some(event) = events.recv() {
        match event {
            Event::Input { id, metadata, data } if id.as_str() == IMAGE_INPUT => {
                let blobs = detect(settings, &metadata.parameters, &data).unwrap_or_else(|problem| {
                    let problem = format!("{problem:#}");
                    if problem != last_problem {
                        eprintln!("dora-blob-detector: cannot read frame, sending no boxes: {problem}");
                        last_problem = problem;
                    }
                    unreadable += 1;
                    Vec::new()
                });
                let (parameters, array) = detections_message(&blobs, &settings.label, &metadata.parameters);
                node.send_output(DataId::from(BBOX_OUTPUT.to_owned()), parameters, array)
                    .wrap_err_with(|| format!("cannot send the detections of frame {frames}"))?;
                frames += 1;
            }
            Event::Error(message) => eprintln!("dora-blob-detector: dora error: {message}"),
            // After a stop, dora still delivers queued inputs and then ends the stream.
            Event::Stop(_) => {}
            _ => {}
        }
    }
    eprintln!("dora-blob-detector: answered {frames} frames, {unreadable} unreadable");
    Ok(frames)
}

/// The red blobs of one `image` message, or why its frame cannot be read.
pub fn detect(
    settings: &DetectorSettings,
    parameters: &MetadataParameters,
    data: &DoraArray,
) -> eyre::Result<Vec<Blob>> {
    let bytes: &[u8] = data.try_into().wrap_err("the payload is not a UInt8 array without nulls")?;
    let image = image_from(bytes, parameters)?;
    Ok(find_red_blobs(&image, &settings.params))
}

/// A frame view from a payload and its `encoding`/`width`/`height` metadata.
pub fn image_from<'a>(bytes: &'a [u8], parameters: &MetadataParameters) -> eyre::Result<Image<'a>> {
    let name =
        get_string_param(parameters, ENCODING_PARAM).ok_or_else(|| eyre!("no String `{ENCODING_PARAM}` metadata"))?;
    let encoding = Encoding::parse(name)
        .ok_or_else(|| eyre!("unsupported encoding {name:?}: expected one of {}", Encoding::allowed_names()))?;
    let side = |key: &str| {
        let value = get_integer_param(parameters, key).ok_or_else(|| eyre!("no Integer `{key}` metadata"))?;
        usize::try_from(value).map_err(|_| eyre!("negative `{key}` {value}"))
    };
    Image::new(bytes, side(WIDTH_PARAM)?, side(HEIGHT_PARAM)?, encoding)
}

/// The `bbox` message for `blobs`: the image's metadata with `primitive` and `format` set, and
/// the one-row detections array.
pub fn detections_message(
    blobs: &[Blob],
    label: &str,
    image_parameters: &MetadataParameters,
) -> (MetadataParameters, StructArray) {
    let mut parameters = image_parameters.clone();
    parameters.insert(PRIMITIVE_PARAM.to_owned(), Parameter::String(PRIMITIVE_BOXES2D.to_owned()));
    parameters.insert(FORMAT_PARAM.to_owned(), Parameter::String(FORMAT_XYXY.to_owned()));
    (parameters, detections_array(blobs, label))
}

/// dora-yolo's detections layout for `blobs`: one row of `{bbox, conf, labels}` lists.
pub fn detections_array(blobs: &[Blob], label: &str) -> StructArray {
    let mut boxes = ListBuilder::new(Float32Builder::new());
    let mut confidences = ListBuilder::new(Float32Builder::new());
    let mut labels = ListBuilder::new(StringBuilder::new());
    for blob in blobs {
        // Pixel coordinates are exact in f32 up to 2^24.
        boxes.values().append_slice(&[blob.x1, blob.y1, blob.x2, blob.y2].map(|value| value as f32));
        confidences.values().append_value(blob.fill.clamp(0.0, 1.0));
        labels.values().append_value(label);
    }
    boxes.append(true);
    confidences.append(true);
    labels.append(true);
    let column = |name: &str, array: ArrayRef| (Arc::new(Field::new(name, array.data_type().clone(), true)), array);
    StructArray::from(vec![
        column(BBOX_FIELD, Arc::new(boxes.finish())),
        column(CONF_FIELD, Arc::new(confidences.finish())),
        column(LABELS_FIELD, Arc::new(labels.finish())),
    ])
}

/// The Arrow type of the `bbox` output, as pyarrow infers it for dora-yolo's dict of numpy arrays.
pub fn detections_type() -> DataType {
    let list = |item: DataType| DataType::List(Arc::new(Field::new("item", item, true)));
    DataType::Struct(
        vec![
            Field::new(BBOX_FIELD, list(DataType::Float32), true),
            Field::new(CONF_FIELD, list(DataType::Float32), true),
            Field::new(LABELS_FIELD, list(DataType::Utf8), true),
        ]
        .into(),
    )
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use arrow::{
        array::{Array, AsArray},
        datatypes::Float32Type,
    };
    use dora_node_api::{
        integration_testing::{
            IntegrationTestInput, TestingInput, TestingOptions, TestingOutput, drain_outputs,
            integration_testing_format::{IncomingEvent, InputData, TimedIncomingEvent},
            output_channel,
        },
        serde_json::{self, Value, json},
    };

    use super::*;
    use crate::{
        object::{ObjectBox, object_at},
        pattern::{FrameFormat, draw_frame_with_object},
        pattern_node::FRAME_INDEX_PARAM,
    };

    const PERIOD: u64 = 30;
    const VISIBLE: u64 = 40;
    const HIDDEN: u64 = 5;

    fn settings(vars: &[(&str, &str)]) -> eyre::Result<DetectorSettings> {
        let vars: BTreeMap<String, String> =
            vars.iter().map(|(key, value)| ((*key).to_owned(), (*value).to_owned())).collect();
        DetectorSettings::from_lookup(|key| vars.get(key).cloned())
    }

    /// Pattern frame `index` and the metadata the camera node sends with it (plus a custom key).
    fn pattern_frame(encoding: Encoding, index: u64) -> (Vec<u8>, MetadataParameters) {
        let format = FrameFormat::new(160, 120, encoding).expect("valid test size");
        let parameters = MetadataParameters::from([
            (ENCODING_PARAM.to_owned(), Parameter::String(encoding.name().to_owned())),
            (WIDTH_PARAM.to_owned(), Parameter::Integer(160)),
            (HEIGHT_PARAM.to_owned(), Parameter::Integer(120)),
            (PRIMITIVE_PARAM.to_owned(), Parameter::String("image".to_owned())),
            (FRAME_INDEX_PARAM.to_owned(), Parameter::Integer(i64::try_from(index).expect("small index"))),
            ("camera_serial".to_owned(), Parameter::String("test-1".to_owned())),
        ]);
        (draw_frame_with_object(&format, index, 0, PERIOD), parameters)
    }

    fn expected_object(index: u64) -> ObjectBox {
        object_at(index, 160, 120, PERIOD).expect("the object is visible")
    }

    #[test]
    fn unset_environment_gives_person_64_pixels_and_redness_160() -> eyre::Result<()> {
        let settings = settings(&[])?;
        assert_eq!(settings.label, "person");
        assert_eq!(settings.params, BlobParams { min_area: 64, min_redness: 160 });
        let custom = self::settings(&[("LABEL", " ball "), ("MIN_AREA", "10"), ("MIN_REDNESS", "90")])?;
        assert_eq!((custom.label.as_str(), custom.params.min_area, custom.params.min_redness), ("ball", 10, 90));
        Ok(())
    }

    #[test]
    fn bad_values_name_the_key_and_the_value() {
        for (key, value) in [("MIN_AREA", "0"), ("MIN_AREA", "big"), ("MIN_REDNESS", "256"), ("MIN_REDNESS", "0")] {
            let error = settings(&[(key, value)]).expect_err("rejected");
            assert!(error.to_string().contains(&format!("{value:?} for {key}")), "{error}");
        }
    }

    #[test]
    fn detections_keep_the_image_metadata_and_mark_boxes2d_xyxy() -> eyre::Result<()> {
        let (payload, parameters) = pattern_frame(Encoding::Bgr8, VISIBLE);
        let blobs = find_red_blobs(&image_from(&payload, &parameters)?, &BlobParams::default());
        let (sent, array) = detections_message(&blobs, "person", &parameters);
        for (key, value) in &parameters {
            if key != PRIMITIVE_PARAM {
                assert_eq!(sent.get(key), Some(value), "{key} is passed through");
            }
        }
        assert_eq!(sent[PRIMITIVE_PARAM], Parameter::String("boxes2d".to_owned()));
        assert_eq!(sent[FORMAT_PARAM], Parameter::String("xyxy".to_owned()));
        assert_eq!(sent.len(), parameters.len() + 1);
        assert_eq!(array.data_type(), &detections_type());
        assert_eq!(array.len(), 1);
        Ok(())
    }

    #[test]
    fn every_encoding_is_read_from_its_metadata() -> eyre::Result<()> {
        for encoding in Encoding::ALL {
            let (payload, parameters) = pattern_frame(encoding, VISIBLE);
            let blobs = find_red_blobs(&image_from(&payload, &parameters)?, &BlobParams::default());
            assert_eq!(blobs.len(), usize::from(encoding != Encoding::Mono8), "{encoding}");
        }
        Ok(())
    }

    #[test]
    fn unreadable_metadata_is_explained() {
        let (payload, mut parameters) = pattern_frame(Encoding::Bgr8, VISIBLE);
        parameters.insert(WIDTH_PARAM.to_owned(), Parameter::Integer(161));
        let message = |parameters: &MetadataParameters| match image_from(&payload, parameters) {
            Ok(_) => String::from("accepted"),
            Err(error) => error.to_string(),
        };
        assert!(message(&parameters).contains("needs 57960 bytes, got 57600"), "{}", message(&parameters));
        parameters.insert(ENCODING_PARAM.to_owned(), Parameter::String("jpeg".to_owned()));
        assert!(message(&parameters).starts_with(r#"unsupported encoding "jpeg""#));
        parameters.remove(HEIGHT_PARAM);
        parameters.insert(ENCODING_PARAM.to_owned(), Parameter::String("rgb8".to_owned()));
        assert_eq!(message(&parameters), "no Integer `height` metadata");
    }

    /// An `image` input event carrying a pattern frame.
    fn image_event(time_offset_secs: f64, payload: &[u8], parameters: MetadataParameters) -> TimedIncomingEvent {
        let data = InputData::JsonObject { data: json!(payload), data_type: Some(json!("UInt8")) };
        let event = IncomingEvent::Input {
            id: IMAGE_INPUT.to_owned().into(),
            metadata: Some(parameters),
            data: Some(Box::new(data)),
        };
        TimedIncomingEvent { time_offset_secs, event }
    }

    #[test]
    fn node_answers_every_frame_in_dora_yolo_format() -> eyre::Result<()> {
        let (visible, visible_parameters) = pattern_frame(Encoding::Bgr8, VISIBLE);
        let (hidden, hidden_parameters) = pattern_frame(Encoding::Nv12, HIDDEN);
        let mut unreadable_parameters = visible_parameters.clone();
        unreadable_parameters.insert(ENCODING_PARAM.to_owned(), Parameter::String("jpeg".to_owned()));
        let events = vec![
            image_event(0.0, &visible, visible_parameters),
            image_event(0.01, &hidden, hidden_parameters),
            image_event(0.02, &visible, unreadable_parameters),
        ];
        let input = TestingInput::Input(IntegrationTestInput::new("detector".parse()?, events));
        let (sender, mut receiver) = output_channel();
        let options = TestingOptions { skip_output_time_offsets: true };
        let (node, events) = DoraNode::init_testing(input, TestingOutput::ToChannel(sender), options)?;

        assert_eq!(run(node, events, &settings(&[("LABEL", "person")])?)?, 3);

        let outputs = drain_outputs(&mut receiver);
        assert_eq!(outputs.len(), 3);
        let yolo_type = serde_json::to_value(detections_type())?;
        for output in &outputs {
            assert_eq!(output["id"], BBOX_OUTPUT);
            assert_eq!(output["data_type"], yolo_type, "dora-yolo's struct<bbox, conf, labels> type");
        }
        let object = expected_object(VISIBLE);
        let corners = [object.x, object.y, object.x + object.w, object.y + object.h];
        let found = &outputs[0]["data"][0];
        assert_eq!(found[BBOX_FIELD], json!(corners.map(|value| value as f32)));
        assert_eq!(found[LABELS_FIELD], json!(["person"]));
        let conf = found[CONF_FIELD][0].as_f64().expect("one confidence");
        assert!((0.7..=0.85).contains(&conf), "a disc fills about pi/4 of its box: {conf}");
        let empty = json!([{ BBOX_FIELD: [], CONF_FIELD: [], LABELS_FIELD: [] }]);
        assert_eq!(outputs[1]["data"], empty, "no object: empty lists");
        assert_eq!(outputs[2]["data"], empty, "unreadable frame: empty lists");
        Ok(())
    }

    #[test]
    fn several_blobs_share_one_row() {
        let blob = |x1, fill| Blob { x1, y1: 2, x2: x1 + 10, y2: 12, area: 100, fill };
        let array = detections_array(&[blob(0, 0.5), blob(20, 1.0)], "person");
        let json = arrow_row_json(&array);
        assert_eq!(
            json,
            json!({ "bbox": [0.0, 2.0, 10.0, 12.0, 20.0, 2.0, 30.0, 12.0], "conf": [0.5, 1.0], "labels": ["person", "person"] })
        );
    }

    /// The single row of a detections array as JSON, field by field.
    fn arrow_row_json(array: &StructArray) -> Value {
        let floats = |name: &str| -> Vec<f32> {
            let list = array.column_by_name(name).expect("field exists").as_list::<i32>().value(0);
            list.as_primitive::<Float32Type>().values().to_vec()
        };
        let labels = array.column_by_name(LABELS_FIELD).expect("field exists").as_list::<i32>().value(0);
        let labels: Vec<String> = labels.as_string::<i32>().iter().flatten().map(str::to_owned).collect();
        assert_eq!(array.len(), 1);
        json!({ "bbox": floats(BBOX_FIELD), "conf": floats(CONF_FIELD), "labels": labels })
    }
}
