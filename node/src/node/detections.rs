//! Detections in dora-yolo's Arrow layout: read into [`Detections`], and written back (replay).
//!
//! dora-yolo sends one struct row `{bbox: list<float>, conf: list<float>, labels: list<string>}`
//! where `bbox` is flat, 4 numbers per box, with metadata `primitive: boxes2d` and
//! `format: xyxy|xywh`, plus the image's metadata passed through. Any float or integer list
//! type and large or fixed-size lists are accepted too; whatever else arrives is an error that
//! says what is wrong, never a panic.

use std::sync::Arc;

use arrow::{
    array::{Array, ArrayRef, AsArray, Float32Builder, ListBuilder, StringBuilder, StructArray},
    compute::kernels::cast::cast,
    datatypes::{DataType, Field, Float32Type},
};

use crate::detections::{BoxFormat, Detections};

/// Metadata key of the box format.
pub(super) const FORMAT_KEY: &str = "format";
/// Field with the flat box coordinates.
const BBOX_FIELD: &str = "bbox";
/// Field with one confidence per box.
const CONF_FIELD: &str = "conf";
/// Field with one class name per box.
const LABELS_FIELD: &str = "labels";
/// Numbers per box.
const BOX_VALUES: usize = 4;
/// What dora-yolo sends, for error messages.
const EXPECTED: &str =
    "dora-yolo sends one struct row {bbox: list<float> (4 numbers per box), conf: list<float>, labels: list<string>}";
/// Why a detections message could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(super) enum DetectionsError {
    /// The payload is not a struct array.
    #[error("detections of type {found} are not a struct array; {EXPECTED}")]
    NotAStruct {
        /// The payload's Arrow type.
        found: String,
    },
    /// Not exactly one row.
    #[error("detections have {rows} rows instead of 1; {EXPECTED}")]
    RowCount {
        /// Rows received.
        rows: usize,
    },
    /// The row, or one of its lists, is null.
    #[error("detections field {field} is null; {EXPECTED}")]
    Null {
        /// The null field (`row` for the whole row).
        field: &'static str,
    },
    /// A field is missing.
    #[error("detections have no {field} field; {EXPECTED}")]
    MissingField {
        /// The missing field.
        field: &'static str,
    },
    /// A field is not a list.
    #[error("detections field {field} has type {found}, not a list; {EXPECTED}")]
    NotAList {
        /// The field.
        field: &'static str,
        /// Its Arrow type.
        found: String,
    },
    /// A list holds values of the wrong type.
    #[error("detections field {field} holds {found} values; {EXPECTED}")]
    WrongValues {
        /// The field.
        field: &'static str,
        /// The values' Arrow type.
        found: String,
    },
    /// A list holds null values.
    #[error("detections field {field} holds null values; {EXPECTED}")]
    NullValues {
        /// The field.
        field: &'static str,
    },
    /// `bbox` does not hold 4 numbers per label.
    #[error("detections have {bbox_values} bbox numbers for {labels} labels, not 4 per label; {EXPECTED}")]
    BoxCount {
        /// Numbers in `bbox`.
        bbox_values: usize,
        /// Entries in `labels`.
        labels: usize,
    },
    /// `conf` does not hold one number per label.
    #[error("detections have {conf} confidences for {labels} labels, not 1 per label; {EXPECTED}")]
    ConfCount {
        /// Entries in `conf`.
        conf: usize,
        /// Entries in `labels`.
        labels: usize,
    },
    /// The `format` metadata is neither `xyxy` nor `xywh`.
    #[error("detections format {0:?} is unknown: dora-yolo sends format xyxy or xywh")]
    UnknownFormat(String),
}

/// Reads one dora-yolo message: `array` is its payload, `format` its `format` metadata (`xyxy`
/// when absent).
pub(super) fn parse_detections(array: &ArrayRef, format: Option<&str>) -> Result<Detections, DetectionsError> {
    let format = match format {
        None => BoxFormat::Xyxy,
        Some(value) => BoxFormat::parse(value).ok_or_else(|| DetectionsError::UnknownFormat(value.to_owned()))?,
    };
    let row = single_row(array)?;
    let labels = strings(&list_values(row, LABELS_FIELD)?, LABELS_FIELD)?;
    let conf = numbers(&list_values(row, CONF_FIELD)?, CONF_FIELD)?;
    let flat = numbers(&list_values(row, BBOX_FIELD)?, BBOX_FIELD)?;
    if flat.len() != labels.len().saturating_mul(BOX_VALUES) {
        return Err(DetectionsError::BoxCount { bbox_values: flat.len(), labels: labels.len() });
    }
    if conf.len() != labels.len() {
        return Err(DetectionsError::ConfCount { conf: conf.len(), labels: labels.len() });
    }
    let bbox = flat.chunks_exact(BOX_VALUES).filter_map(|b| <[f32; BOX_VALUES]>::try_from(b).ok()).collect();
    Ok(Detections { labels, conf, bbox, format })
}

/// The payload as a struct array of exactly one non-null row.
fn single_row(array: &ArrayRef) -> Result<&StructArray, DetectionsError> {
    let row = array.as_struct_opt().ok_or_else(|| DetectionsError::NotAStruct { found: type_name(array) })?;
    if row.len() != 1 {
        return Err(DetectionsError::RowCount { rows: row.len() });
    }
    if row.is_null(0) {
        return Err(DetectionsError::Null { field: "row" });
    }
    Ok(row)
}

/// The values of `field`'s list in the row: list, large list or fixed-size list.
fn list_values(row: &StructArray, field: &'static str) -> Result<ArrayRef, DetectionsError> {
    let column = row.column_by_name(field).ok_or(DetectionsError::MissingField { field })?;
    if column.is_empty() {
        return Err(DetectionsError::RowCount { rows: 0 });
    }
    if column.is_null(0) {
        return Err(DetectionsError::Null { field });
    }
    if let Some(list) = column.as_list_opt::<i32>() {
        Ok(list.value(0))
    } else if let Some(list) = column.as_list_opt::<i64>() {
        Ok(list.value(0))
    } else if let Some(list) = column.as_fixed_size_list_opt() {
        Ok(list.value(0))
    } else {
        Err(DetectionsError::NotAList { field, found: type_name(column) })
    }
}

/// Any numeric values as `f32` (an empty list of untyped nulls is empty).
fn numbers(values: &ArrayRef, field: &'static str) -> Result<Vec<f32>, DetectionsError> {
    let wrong = || DetectionsError::WrongValues { field, found: type_name(values) };
    if let Some(empty) = empty_untyped(values, field)? {
        return Ok(empty);
    }
    if !values.data_type().is_numeric() {
        return Err(wrong());
    }
    let floats = cast(values, &DataType::Float32).map_err(|_| wrong())?;
    let floats = floats.as_primitive_opt::<Float32Type>().ok_or_else(wrong)?;
    if floats.null_count() > 0 {
        return Err(DetectionsError::NullValues { field });
    }
    Ok(floats.values().to_vec())
}

/// Any string values (dora-yolo sends an untyped empty list when nothing was detected).
fn strings(values: &ArrayRef, field: &'static str) -> Result<Vec<String>, DetectionsError> {
    let wrong = || DetectionsError::WrongValues { field, found: type_name(values) };
    if let Some(empty) = empty_untyped(values, field)? {
        return Ok(empty);
    }
    if !is_string_type(values.data_type()) {
        return Err(wrong());
    }
    let text = cast(values, &DataType::Utf8).map_err(|_| wrong())?;
    let text = text.as_string_opt::<i32>().ok_or_else(wrong)?;
    if text.null_count() > 0 {
        return Err(DetectionsError::NullValues { field });
    }
    Ok(text.iter().flatten().map(str::to_owned).collect())
}

/// `Some(empty)` for a list of Arrow's `Null` type without values (pyarrow's type for `[]`),
/// an error if such a list has values, `None` for any other type.
fn empty_untyped<T>(values: &ArrayRef, field: &'static str) -> Result<Option<Vec<T>>, DetectionsError> {
    match values.data_type() {
        DataType::Null if values.is_empty() => Ok(Some(Vec::new())),
        DataType::Null => Err(DetectionsError::NullValues { field }),
        _ => Ok(None),
    }
}

fn is_string_type(data_type: &DataType) -> bool {
    match data_type {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => true,
        DataType::Dictionary(_, values) => is_string_type(values),
        _ => false,
    }
}

fn type_name(array: &dyn Array) -> String {
    array.data_type().to_string()
}

/// `detections` in dora-yolo's layout, what [`parse_detections`] reads: one row of
/// `{bbox, conf, labels}` lists, `bbox` flat, boxes as they are (send their `format` as metadata).
pub fn detections_array(detections: &Detections) -> StructArray {
    let mut boxes = ListBuilder::new(Float32Builder::new());
    let mut confidences = ListBuilder::new(Float32Builder::new());
    let mut labels = ListBuilder::new(StringBuilder::new());
    for bbox in &detections.bbox {
        boxes.values().append_slice(bbox);
    }
    confidences.values().append_slice(&detections.conf);
    for label in &detections.labels {
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

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::{
        array::{
            FixedSizeListArray, Float32Array, Float64Array, Int32Array, LargeListArray, LargeStringArray, ListArray,
            NullArray, StringArray, UInt8Array,
        },
        buffer::OffsetBuffer,
        datatypes::{Field, Float64Type},
    };

    #[test]
    fn written_detections_read_back_the_same() {
        let sent = Detections::person_and_dog();
        let array: ArrayRef = Arc::new(detections_array(&sent));
        let read = parse_detections(&array, Some(sent.format.name())).unwrap();
        assert_eq!((read.labels, read.conf, read.bbox), (sent.labels, sent.conf, sent.bbox));
    }

    /// A one-row list column holding `values`.
    fn list(values: ArrayRef) -> ArrayRef {
        let field = Arc::new(Field::new("item", values.data_type().clone(), true));
        Arc::new(ListArray::new(field, OffsetBuffer::from_lengths([values.len()]), values, None))
    }

    fn large_list(values: ArrayRef) -> ArrayRef {
        let field = Arc::new(Field::new("item", values.data_type().clone(), true));
        Arc::new(LargeListArray::new(field, OffsetBuffer::from_lengths([values.len()]), values, None))
    }

    fn row(columns: Vec<(&str, ArrayRef)>) -> ArrayRef {
        let pairs = columns
            .into_iter()
            .map(|(name, array)| (Arc::new(Field::new(name, array.data_type().clone(), true)), array))
            .collect::<Vec<_>>();
        Arc::new(StructArray::from(pairs))
    }

    fn floats(values: &[f32]) -> ArrayRef {
        Arc::new(Float32Array::from(values.to_vec()))
    }

    fn texts(values: &[&str]) -> ArrayRef {
        Arc::new(StringArray::from(values.to_vec()))
    }

    /// What dora-yolo sends: `pa.array([{"bbox": boxes.ravel(), "conf": conf, "labels": names}])`.
    fn yolo(bbox: &[f32], conf: &[f32], labels: &[&str]) -> ArrayRef {
        row(vec![("bbox", list(floats(bbox))), ("conf", list(floats(conf))), ("labels", list(texts(labels)))])
    }

    fn two_people() -> Detections {
        parse_detections(&yolo(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0], &[0.9, 0.4], &["person", "dog"]), None)
            .unwrap()
    }

    #[test]
    fn dora_yolo_output_parses_into_boxes_of_four() {
        let detections = two_people();
        assert_eq!(detections.labels, ["person", "dog"]);
        assert_eq!(detections.conf, [0.9, 0.4]);
        assert_eq!(detections.bbox, [[1.0, 2.0, 3.0, 4.0], [5.0, 6.0, 7.0, 8.0]]);
        assert_eq!(detections.format, BoxFormat::Xyxy);
        assert_eq!(detections.len(), 2);
    }

    #[test]
    fn format_metadata_picks_the_box_layout_case_insensitively() {
        let array = yolo(&[1.0, 2.0, 3.0, 4.0], &[0.5], &["cat"]);
        assert_eq!(parse_detections(&array, Some("xywh")).unwrap().format, BoxFormat::Xywh);
        assert_eq!(parse_detections(&array, Some(" XYXY ")).unwrap().format, BoxFormat::Xyxy);
        assert_eq!(parse_detections(&array, Some("cxcywh")), Err(DetectionsError::UnknownFormat("cxcywh".into())));
    }

    #[test]
    fn nothing_detected_parses_even_with_pyarrows_untyped_empty_labels() {
        let array = row(vec![
            ("bbox", list(floats(&[]))),
            ("conf", list(floats(&[]))),
            ("labels", list(Arc::new(NullArray::new(0)))),
        ]);
        let detections = parse_detections(&array, Some("xyxy")).unwrap();
        assert!(detections.is_empty() && detections.bbox.is_empty() && detections.conf.is_empty());
    }

    #[test]
    fn float64_and_integer_values_and_large_lists_are_accepted() {
        let array = row(vec![
            ("bbox", large_list(Arc::new(Int32Array::from(vec![10, 20, 30, 40])))),
            ("conf", list(Arc::new(Float64Array::from(vec![0.75])))),
            ("labels", large_list(Arc::new(LargeStringArray::from(vec!["car"])))),
        ]);
        let detections = parse_detections(&array, None).unwrap();
        assert_eq!(
            (detections.bbox, detections.conf, detections.labels),
            (vec![[10.0, 20.0, 30.0, 40.0]], vec![0.75], vec!["car".to_owned()])
        );
    }

    #[test]
    fn fixed_size_lists_are_accepted() {
        let field = Arc::new(Field::new("item", DataType::Float64, true));
        let values = Arc::new(Float64Array::from(vec![1.0, 2.0, 3.0, 4.0])) as ArrayRef;
        let bbox = Arc::new(FixedSizeListArray::new(field, 4, values, None)) as ArrayRef;
        let array = row(vec![("bbox", bbox), ("conf", list(floats(&[0.5]))), ("labels", list(texts(&["cup"])))]);
        assert_eq!(parse_detections(&array, None).unwrap().bbox, [[1.0, 2.0, 3.0, 4.0]]);
    }

    #[test]
    fn bbox_not_four_numbers_per_label_is_an_error() {
        let error = parse_detections(&yolo(&[1.0, 2.0, 3.0], &[0.5], &["cat"]), None).unwrap_err();
        assert_eq!(error, DetectionsError::BoxCount { bbox_values: 3, labels: 1 });
        assert!(error.to_string().contains("dora-yolo sends"), "{error}");
        let error = parse_detections(&yolo(&[1.0, 2.0, 3.0, 4.0], &[0.5, 0.6], &["a", "b"]), None).unwrap_err();
        assert_eq!(error, DetectionsError::BoxCount { bbox_values: 4, labels: 2 });
    }

    #[test]
    fn conf_not_one_per_label_is_an_error() {
        let error = parse_detections(&yolo(&[1.0, 2.0, 3.0, 4.0], &[0.5, 0.6], &["cat"]), None).unwrap_err();
        assert_eq!(error, DetectionsError::ConfCount { conf: 2, labels: 1 });
    }

    #[test]
    fn a_payload_that_is_not_a_struct_is_an_error() {
        let array: ArrayRef = Arc::new(UInt8Array::from(vec![1, 2, 3]));
        assert!(matches!(parse_detections(&array, None), Err(DetectionsError::NotAStruct { .. })));
    }

    #[test]
    fn zero_or_several_rows_are_an_error() {
        let empty = yolo(&[], &[], &[]).slice(0, 0);
        assert_eq!(parse_detections(&empty, None), Err(DetectionsError::RowCount { rows: 0 }));
        let one = yolo(&[1.0, 2.0, 3.0, 4.0], &[0.5], &["cat"]);
        let two = arrow::compute::concat(&[one.as_ref(), one.as_ref()]).unwrap();
        assert_eq!(parse_detections(&two, None), Err(DetectionsError::RowCount { rows: 2 }));
    }

    #[test]
    fn a_sliced_second_row_parses_on_its_own() {
        let first = yolo(&[1.0, 2.0, 3.0, 4.0], &[0.5], &["cat"]);
        let second = yolo(&[5.0, 6.0, 7.0, 8.0], &[0.7], &["dog"]);
        let both = arrow::compute::concat(&[first.as_ref(), second.as_ref()]).unwrap();
        let detections = parse_detections(&both.slice(1, 1), None).unwrap();
        assert_eq!((detections.labels, detections.bbox), (vec!["dog".to_owned()], vec![[5.0, 6.0, 7.0, 8.0]]));
    }

    #[test]
    fn missing_fields_and_wrong_types_are_errors_naming_the_field() {
        let no_conf = row(vec![("bbox", list(floats(&[]))), ("labels", list(texts(&[])))]);
        assert_eq!(parse_detections(&no_conf, None), Err(DetectionsError::MissingField { field: "conf" }));
        let scalar_conf =
            row(vec![("bbox", list(floats(&[]))), ("conf", floats(&[0.5])), ("labels", list(texts(&[])))]);
        assert!(matches!(parse_detections(&scalar_conf, None), Err(DetectionsError::NotAList { field: "conf", .. })));
        let text_bbox = row(vec![
            ("bbox", list(texts(&["1", "2", "3", "4"]))),
            ("conf", list(floats(&[0.5]))),
            ("labels", list(texts(&["a"]))),
        ]);
        assert!(matches!(parse_detections(&text_bbox, None), Err(DetectionsError::WrongValues { field: "bbox", .. })));
        let numeric_labels = row(vec![
            ("bbox", list(floats(&[1.0, 2.0, 3.0, 4.0]))),
            ("conf", list(floats(&[0.5]))),
            ("labels", list(floats(&[0.0]))),
        ]);
        assert!(matches!(
            parse_detections(&numeric_labels, None),
            Err(DetectionsError::WrongValues { field: "labels", .. })
        ));
    }

    #[test]
    fn null_lists_and_null_values_are_errors() {
        let null_values: ArrayRef = Arc::new(Float32Array::from(vec![Some(0.5), None]));
        let array = row(vec![
            ("bbox", list(floats(&[0.0; 8]))),
            ("conf", list(null_values)),
            ("labels", list(texts(&["a", "b"]))),
        ]);
        assert_eq!(parse_detections(&array, None), Err(DetectionsError::NullValues { field: "conf" }));
        let null_labels: ArrayRef = Arc::new(StringArray::from(vec![None::<&str>]));
        let array =
            row(vec![("bbox", list(floats(&[0.0; 4]))), ("conf", list(floats(&[0.5]))), ("labels", list(null_labels))]);
        assert_eq!(parse_detections(&array, None), Err(DetectionsError::NullValues { field: "labels" }));
        let untyped_nulls = row(vec![
            ("bbox", list(floats(&[0.0; 4]))),
            ("conf", list(floats(&[0.5]))),
            ("labels", list(Arc::new(NullArray::new(1)))),
        ]);
        assert_eq!(parse_detections(&untyped_nulls, None), Err(DetectionsError::NullValues { field: "labels" }));
        let field = Arc::new(Field::new("item", DataType::Float32, true));
        let null_list: ArrayRef =
            Arc::new(ListArray::new(field, OffsetBuffer::from_lengths([0]), floats(&[]), Some(vec![false].into())));
        let array = row(vec![("bbox", null_list), ("conf", list(floats(&[]))), ("labels", list(texts(&[])))]);
        assert_eq!(parse_detections(&array, None), Err(DetectionsError::Null { field: "bbox" }));
    }

    #[test]
    fn float64_values_keep_their_f32_value() {
        let values: ArrayRef = Arc::new(arrow::array::PrimitiveArray::<Float64Type>::from(vec![0.1]));
        assert_eq!(numbers(&values, "conf").unwrap(), [0.1_f32]);
    }
}
