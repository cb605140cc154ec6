//! Object detections as plain data (what dora-yolo found in one image) and the rule that
//! matches them against a recording trigger. Reading them from dora-yolo's Arrow output is the
//! dora edge's job (`crate::node`); the log beside each video is [`crate::sidecars::detection_log`].

use serde::{Deserialize, Serialize};

/// How the 4 numbers of a box are laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BoxFormat {
    /// Corners: left, top, right, bottom (dora-yolo's default).
    Xyxy,
    /// Center x, center y, width, height.
    Xywh,
}

impl BoxFormat {
    /// Parses a `format` metadata value, case-insensitively.
    pub fn parse(value: &str) -> Option<Self> {
        match value.trim().to_ascii_lowercase().as_str() {
            "xyxy" => Some(Self::Xyxy),
            "xywh" => Some(Self::Xywh),
            _ => None,
        }
    }

    /// The metadata spelling.
    pub fn name(self) -> &'static str {
        match self {
            Self::Xyxy => "xyxy",
            Self::Xywh => "xywh",
        }
    }
}

/// The detections of one image: `labels`, `conf` and `bbox` have the same length.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Detections {
    /// Class name of each box.
    pub labels: Vec<String>,
    /// Confidence of each box.
    pub conf: Vec<f32>,
    /// Each box's 4 numbers, laid out as `format` says, in pixels.
    pub bbox: Vec<[f32; 4]>,
    /// Box layout.
    pub format: BoxFormat,
}

impl Detections {
    /// Number of boxes.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether nothing was detected.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }
}
/// The label of the first detection (in the order sent) with confidence at least
/// `min_confidence` and a label in `labels` (compared trimmed, ASCII case-insensitively; empty
/// `labels` accepts any), or `None`.
pub fn matches_trigger(detections: &Detections, labels: &[String], min_confidence: f32) -> Option<String> {
    detections
        .labels
        .iter()
        .zip(&detections.conf)
        .find(|(label, conf)| **conf >= min_confidence && is_wanted(label, labels))
        .map(|(label, _)| label.clone())
}

#[cfg(test)]
impl Detections {
    /// A test example: a person at 0.9 and a dog at 0.4, as dora-yolo would report them.
    pub(crate) fn person_and_dog() -> Self {
        Self {
            labels: vec!["person".into(), "dog".into()],
            conf: vec![0.9, 0.4],
            bbox: vec![[1.0, 2.0, 3.0, 4.0], [5.0, 6.0, 7.0, 8.0]],
            format: BoxFormat::Xyxy,
        }
    }
}

fn is_wanted(label: &str, wanted: &[String]) -> bool {
    wanted.is_empty() || wanted.iter().any(|w| w.trim().eq_ignore_ascii_case(label.trim()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trigger_matches_the_first_wanted_label_at_or_above_the_confidence() {
        let detections = Detections::person_and_dog();
        assert_eq!(matches_trigger(&detections, &[], 0.5).as_deref(), Some("person"));
        assert_eq!(matches_trigger(&detections, &["dog".into()], 0.4).as_deref(), Some("dog"));
        assert_eq!(matches_trigger(&detections, &["dog".into()], 0.5), None);
        assert_eq!(matches_trigger(&detections, &[" Person ".into()], 0.9).as_deref(), Some("person"));
        assert_eq!(matches_trigger(&detections, &["cat".into()], 0.0), None);
    }

    #[test]
    fn trigger_never_matches_nan_confidence_or_mismatched_lengths_past_the_shortest() {
        let mut detections = Detections::person_and_dog();
        detections.conf = vec![f32::NAN];
        assert_eq!(matches_trigger(&detections, &[], 0.0), None);
        assert_eq!(matches_trigger(&detections, &[], f32::NAN), None);
    }
}
