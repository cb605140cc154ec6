//! The dataflow's wiring as the node sees it: which inputs are cameras, whether sessions are
//! controlled, and the counters of a whole run.

/// Input carrying session start/stop messages.
pub const CONTROL_INPUT: &str = "control";
/// Input carrying a detector's output for the only camera; with several cameras, an input
/// `NAME_detections` carries it for camera `NAME`. Neither is a camera.
pub const DETECTIONS_INPUT: &str = "detections";
/// Suffix of a per-camera detections input.
pub const DETECTIONS_SUFFIX: &str = "_detections";

/// Whether an input id names a camera: everything but `control`, `detections` and
/// `NAME_detections`.
pub fn is_camera_input(input: &str) -> bool {
    input != CONTROL_INPUT && input != DETECTIONS_INPUT && !input.ends_with(DETECTIONS_SUFFIX)
}

/// Static facts about the dataflow the node runs in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wiring {
    /// Camera input ids as wired (may be empty when unknown, e.g. in tests).
    pub cameras: Vec<String>,
    /// Whether a `control` input is wired.
    pub control_wired: bool,
    /// Session id for a run without control input.
    pub default_session_id: String,
}

impl Wiring {
    /// Whether `input` carries camera frames (neither control nor detections).
    pub fn is_camera(&self, input: &str) -> bool {
        is_camera_input(input)
    }

    /// The camera a detections input belongs to: `NAME_detections` -> `NAME`, `detections` ->
    /// the only camera. `None` when that camera is not wired (or `detections` is ambiguous).
    pub fn detections_camera<'a>(&'a self, input: &'a str) -> Option<&'a str> {
        if input == DETECTIONS_INPUT {
            return match self.cameras.as_slice() {
                [only] => Some(only.as_str()),
                _ => None,
            };
        }
        let camera = input.strip_suffix(DETECTIONS_SUFFIX)?;
        self.cameras.iter().any(|c| c == camera).then_some(camera)
    }

    /// Classifies the node's input ids: `control` binds sessions, `detections` is reserved,
    /// everything else is a camera.
    pub fn from_inputs(inputs: impl IntoIterator<Item = String>, default_session_id: String) -> Self {
        let inputs: Vec<String> = inputs.into_iter().collect();
        Self {
            cameras: inputs.iter().filter(|id| is_camera_input(id)).cloned().collect(),
            control_wired: inputs.iter().any(|id| id == CONTROL_INPUT),
            default_session_id,
        }
    }
}

/// What a whole run did, for the last log line and for tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunSummary {
    /// Files finalized.
    pub files_finished: u64,
    /// File events with an error.
    pub files_failed: u64,
    /// Frames encoded into finished files.
    pub frames_recorded: u64,
    /// Compressed payloads skipped.
    pub frames_compressed: u64,
    /// Malformed frames rejected.
    pub frames_invalid: u64,
    /// Frames sent while no session was active.
    pub frames_unbound: u64,
    /// Frames dropped because an encoder fell behind.
    pub frames_dropped: u64,
    /// Control messages that could not be understood.
    pub bad_control: u64,
    /// Runtime parameters with an unknown key or a value that is not allowed.
    pub bad_params: u64,
    /// Files ended by a panic inside the recorder (contained to that file).
    pub worker_panics: u64,
    /// Detector messages not recorded: malformed, for no camera, or with no file open.
    pub detections_dropped: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wiring_treats_every_unreserved_input_as_a_camera() {
        let inputs = ["image", "control", "detections", "depth"].map(String::from);
        let wiring = Wiring::from_inputs(inputs, "flow".into());
        assert_eq!(wiring.cameras, vec!["image".to_owned(), "depth".to_owned()]);
        assert!(wiring.control_wired);
        assert!(!Wiring::from_inputs(["image".to_owned()], "flow".into()).control_wired);
    }

    #[test]
    fn detections_inputs_name_their_camera() {
        let several = Wiring::from_inputs(["front", "wrist", "front_detections"].map(String::from), "f".into());
        assert_eq!(several.cameras, vec!["front".to_owned(), "wrist".to_owned()]);
        assert_eq!(several.detections_camera("front_detections"), Some("front"));
        assert_eq!(several.detections_camera("detections"), None, "ambiguous with several cameras");
        assert_eq!(several.detections_camera("top_detections"), None, "no such camera");
        let one = Wiring::from_inputs(["image", "detections"].map(String::from), "f".into());
        assert_eq!(one.detections_camera("detections"), Some("image"));
    }
}
