//! The `dora-session-script` node: replays a [`Schedule`] on the recorder's control input.
//! Time is measured from the first `tick` input, using the ticks' dora timestamps; each due
//! command goes out on the `control` output as a one-element Utf8 array (`"start"` or `"stop"`)
//! with the session id in the `session_id` metadata parameter. After the last stop the node idles
//! until its event stream ends.

use arrow::array::StringArray;
use dora_node_api::{
    DoraNode, Event, EventStream, MetadataParameters, Parameter, SESSION_ID, dora_core::config::DataId, uhlc::NTP64,
};
use eyre::WrapErr;

use crate::{
    env,
    schedule::{Command, Schedule, SessionScript},
};

/// Input that advances the script (wire a dora timer to it; its period is the time resolution).
pub const TICK_INPUT: &str = "tick";
/// Output carrying the start/stop commands.
pub const CONTROL_OUTPUT: &str = "control";
/// Environment key of the schedule.
pub const SCHEDULE_KEY: &str = "SCHEDULE";
/// Schedule when `SCHEDULE` is unset.
pub const DEFAULT_SCHEDULE: &str = "warmup:0-3,run-1:4-8";

/// Reads the schedule from the process environment.
pub fn schedule_from_env() -> eyre::Result<Schedule> {
    schedule_from_lookup(|key| std::env::var(key).ok())
}

/// Reads the schedule from an environment lookup; unset or blank means [`DEFAULT_SCHEDULE`].
pub fn schedule_from_lookup(lookup: impl Fn(&str) -> Option<String>) -> eyre::Result<Schedule> {
    let raw = env::value(&lookup, SCHEDULE_KEY).unwrap_or_else(|| DEFAULT_SCHEDULE.to_owned());
    raw.parse().wrap_err_with(|| format!("invalid value {raw:?} for {SCHEDULE_KEY}"))
}

/// Runs the script until the event stream ends, logging every command with its time to stderr.
pub fn run(mut node: DoraNode, mut events: EventStream, schedule: Schedule) -> eyre::Result<()> {
    eprintln!("dora-session-script: schedule {schedule}");
    let mut script = SessionScript::new(schedule);
    let mut first_tick: Option<NTP64> = None;
    while let Some(event) = events.recv() {
        match event {
            Event::Input { id, metadata, .. } if id.as_str() == TICK_INPUT => {
                let now = *metadata.timestamp().get_time();
                let elapsed_secs = secs_between(*first_tick.get_or_insert(now), now);
                for command in script.due(elapsed_secs) {
                    send(&mut node, &command)?;
                    let (payload, session) = (command.payload(), command.session());
                    eprintln!("dora-session-script: {elapsed_secs:.3}s {payload} {session}");
                }
            }
            Event::Error(message) => eprintln!("dora-session-script: dora error: {message}"),
            // After a stop, dora still delivers queued inputs and then ends the stream.
            Event::Stop(_) => {}
            _ => {}
        }
    }
    if let Some(session) = script.active_session() {
        eprintln!("dora-session-script: stream ended during session {session} (no stop sent)");
    }
    Ok(())
}

/// Sends one command on the control output.
fn send(node: &mut DoraNode, command: &Command) -> eyre::Result<()> {
    let parameters =
        MetadataParameters::from([(SESSION_ID.to_owned(), Parameter::String(command.session().to_owned()))]);
    node.send_output(DataId::from(CONTROL_OUTPUT.to_owned()), parameters, StringArray::from(vec![command.payload()]))
        .wrap_err_with(|| format!("cannot send {command:?}"))
}

/// Seconds from `start` to `end`, zero if `end` is earlier.
fn secs_between(start: NTP64, end: NTP64) -> f64 {
    if end <= start {
        return 0.0;
    }
    (end - start).to_duration().as_secs_f64()
}

#[cfg(test)]
mod tests {
    use dora_node_api::integration_testing::{
        IntegrationTestInput, TestingInput, TestingOptions, TestingOutput, drain_outputs,
        integration_testing_format::{IncomingEvent, TimedIncomingEvent},
        output_channel,
    };

    use super::*;

    fn event(time_offset_secs: f64, event: IncomingEvent) -> TimedIncomingEvent {
        TimedIncomingEvent { time_offset_secs, event }
    }

    fn tick(time_offset_secs: f64) -> TimedIncomingEvent {
        let input = IncomingEvent::Input { id: TICK_INPUT.into(), metadata: None, data: None };
        event(time_offset_secs, input)
    }

    #[test]
    fn unset_schedule_uses_the_default_and_bad_ones_name_the_key() -> eyre::Result<()> {
        assert_eq!(schedule_from_lookup(|_| None)?.to_string(), DEFAULT_SCHEDULE);
        let error = schedule_from_lookup(|_| Some("a:2-1".into())).expect_err("end before start");
        assert!(format!("{error:#}").starts_with(r#"invalid value "a:2-1" for SCHEDULE: "#));
        Ok(())
    }

    #[test]
    fn node_sends_commands_at_tick_times_then_idles() -> eyre::Result<()> {
        // Tick times are offsets from the test start; the script's clock starts at the first.
        let events = vec![tick(0.1), tick(0.3), tick(0.6), tick(0.9), tick(1.2), event(1.3, IncomingEvent::Stop)];
        let input = TestingInput::Input(IntegrationTestInput::new("sessions".parse()?, events));
        let (sender, mut receiver) = output_channel();
        let (node, events) =
            DoraNode::init_testing(input, TestingOutput::ToChannel(sender), TestingOptions::default())?;

        run(node, events, "a:0-0.4,b:0.5-0.8".parse()?)?;

        let outputs = drain_outputs(&mut receiver);
        let sent: Vec<(String, String)> =
            outputs.iter().map(|output| (output["id"].to_string(), output["data"].to_string())).collect();
        let expected = [r#"["start"]"#, r#"["stop"]"#, r#"["start"]"#, r#"["stop"]"#]
            .map(|data| (format!("{CONTROL_OUTPUT:?}"), data.to_owned()));
        assert_eq!(sent, expected);
        Ok(())
    }
}
