//! The dataflow's wiring as the node sees it: which inputs are cameras, whether sessions are
//! controlled, and the counters of a whole run.

/// Input carrying session start/stop messages.
pub const CONTROL_INPUT: &str = "control";
/// Input reserved for detector output (clips with pre-roll); not a camera.
pub const DETECTIONS_INPUT: &str = "detections";

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
        ![CONTROL_INPUT, DETECTIONS_INPUT].contains(&input)
    }

    /// Classifies the node's input ids: `control` binds sessions, `detections` is reserved,
    /// everything else is a camera.
    pub fn from_inputs(inputs: impl IntoIterator<Item = String>, default_session_id: String) -> Self {
        let inputs: Vec<String> = inputs.into_iter().collect();
        Self {
            cameras: inputs
                .iter()
                .filter(|id| ![CONTROL_INPUT, DETECTIONS_INPUT].contains(&id.as_str()))
                .cloned()
                .collect(),
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
    /// Files ended by a panic inside the recorder (contained to that file).
    pub worker_panics: u64,
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
}
