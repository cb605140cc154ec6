//! Control messages that bind and unbind recording sessions, in the three spellings robotics
//! dataflows use: plain `start`/`stop` strings, JSON objects, and LeRobot-style episode indices.

/// A decoded control command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Control {
    /// Start a session (ending the active one, if any). `None` asks for a generated id.
    Start {
        /// The session id, if the sender named one.
        session_id: Option<String>,
    },
    /// End the active session.
    Stop,
}

/// A control payload as it arrived, before interpretation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ControlPayload {
    /// A string payload: `start`, `stop` or a JSON object.
    Text(String),
    /// An integer payload: an episode index (n >= 0 starts, -1 stops).
    Integer(i64),
}

/// Why a control message was ignored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ControlError {
    /// Text that is neither `start`, `stop` nor a JSON command.
    #[error(
        "unknown control message {0:?}: send \"start\", \"stop\", {{\"action\": \"start\", \"session_id\": \"...\"}} or an episode index"
    )]
    UnknownText(String),
    /// JSON with a missing or unknown `action`.
    #[error("control JSON {0:?} needs \"action\": \"start\" or \"stop\"")]
    BadJson(String),
    /// A negative episode index other than -1.
    #[error("episode index {0} is invalid: n >= 0 starts episode n, -1 stops")]
    BadEpisode(i64),
    /// A payload that is neither a string nor an integer.
    #[error("control payload of type {0} is not supported: send a string or an Int64")]
    BadType(String),
}

/// Interprets a control payload. `session_id_param` is the message's `session_id` metadata.
pub fn parse_control(payload: &ControlPayload, session_id_param: Option<&str>) -> Result<Control, ControlError> {
    let named = |id: Option<&str>| id.map(str::trim).filter(|id| !id.is_empty()).map(str::to_owned);
    match payload {
        ControlPayload::Integer(n) if *n >= 0 => Ok(Control::Start { session_id: Some(episode_session_id(*n)) }),
        ControlPayload::Integer(-1) => Ok(Control::Stop),
        ControlPayload::Integer(n) => Err(ControlError::BadEpisode(*n)),
        ControlPayload::Text(text) => {
            let trimmed = text.trim();
            if trimmed.starts_with('{') {
                return parse_json(trimmed, session_id_param);
            }
            match trimmed.to_ascii_lowercase().as_str() {
                "start" => Ok(Control::Start { session_id: named(session_id_param) }),
                "stop" => Ok(Control::Stop),
                _ => Err(ControlError::UnknownText(text.clone())),
            }
        }
    }
}

fn parse_json(text: &str, session_id_param: Option<&str>) -> Result<Control, ControlError> {
    let bad = || ControlError::BadJson(text.to_owned());
    let value: serde_json::Value = serde_json::from_str(text).map_err(|_| bad())?;
    let action = value.get("action").and_then(|a| a.as_str()).ok_or_else(bad)?;
    match action.to_ascii_lowercase().as_str() {
        "start" => {
            let from_json = value.get("session_id").and_then(|id| id.as_str());
            let id = from_json.or(session_id_param).map(str::trim).filter(|id| !id.is_empty());
            Ok(Control::Start { session_id: id.map(str::to_owned) })
        }
        "stop" => Ok(Control::Stop),
        _ => Err(bad()),
    }
}

/// The JSON text of a control command, as the `control` input reads it:
/// `{"action":"start","session_id":"..."}` (no `session_id` for a generated id) or
/// `{"action":"stop"}`.
pub fn control_text(control: &Control) -> String {
    let value = match control {
        Control::Start { session_id: Some(id) } => serde_json::json!({"action": "start", "session_id": id}),
        Control::Start { session_id: None } => serde_json::json!({"action": "start"}),
        Control::Stop => serde_json::json!({"action": "stop"}),
    };
    value.to_string()
}

/// The session id of a LeRobot-style episode: `episode_000042`.
pub fn episode_session_id(index: i64) -> String {
    format!("episode_{index:06}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> ControlPayload {
        ControlPayload::Text(s.into())
    }

    #[test]
    fn plain_strings_take_the_id_from_metadata() {
        assert_eq!(
            parse_control(&text("start"), Some("run-42")),
            Ok(Control::Start { session_id: Some("run-42".into()) })
        );
        assert_eq!(parse_control(&text(" START\n"), None), Ok(Control::Start { session_id: None }));
        assert_eq!(parse_control(&text("stop"), Some("x")), Ok(Control::Stop));
    }

    #[test]
    fn json_commands_carry_their_own_id() {
        let start = parse_control(&text(r#"{"action": "start", "session_id": "run-42"}"#), Some("other"));
        assert_eq!(start, Ok(Control::Start { session_id: Some("run-42".into()) }));
        assert_eq!(parse_control(&text(r#"{"action":"stop"}"#), None), Ok(Control::Stop));
        assert!(matches!(parse_control(&text(r#"{"action":"pause"}"#), None), Err(ControlError::BadJson(_))));
        assert!(matches!(parse_control(&text(r#"{"act"#), None), Err(ControlError::BadJson(_))));
    }

    #[test]
    fn episode_indices_start_and_stop() {
        assert_eq!(
            parse_control(&ControlPayload::Integer(7), None),
            Ok(Control::Start { session_id: Some("episode_000007".into()) })
        );
        assert_eq!(parse_control(&ControlPayload::Integer(-1), None), Ok(Control::Stop));
        assert_eq!(parse_control(&ControlPayload::Integer(-2), None), Err(ControlError::BadEpisode(-2)));
    }

    #[test]
    fn control_text_parses_back_to_the_same_command() {
        for control in [
            Control::Start { session_id: Some("run \"42\"".into()) },
            Control::Start { session_id: None },
            Control::Stop,
        ] {
            assert_eq!(parse_control(&text(&control_text(&control)), None), Ok(control));
        }
    }

    #[test]
    fn unknown_text_is_an_error_not_a_stop() {
        assert!(matches!(parse_control(&text("halt"), None), Err(ControlError::UnknownText(_))));
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn any_text_or_integer_parses_or_is_rejected_without_panic(
            text in any::<String>(),
            number in any::<i64>(),
            session_id in prop::option::of(any::<String>()),
        ) {
            let _ = parse_control(&ControlPayload::Text(text), session_id.as_deref());
            let _ = parse_control(&ControlPayload::Integer(number), session_id.as_deref());
        }

        #[test]
        fn json_starts_keep_any_session_id_whole(id in any::<String>()) {
            let command = serde_json::json!({"action": "start", "session_id": id}).to_string();
            let parsed = parse_control(&ControlPayload::Text(command), None);
            let expected = Some(id.trim()).filter(|id| !id.is_empty()).map(str::to_owned);
            prop_assert_eq!(parsed, Ok(Control::Start { session_id: expected }));
        }
    }
}
