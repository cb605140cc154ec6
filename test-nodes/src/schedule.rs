//! Session schedules: parsing `name:start-end,...` and the state machine that turns elapsed time
//! into the start/stop commands due.
//!
//! When one window ends exactly where the next begins, [`SessionScript::due`] emits the stop of
//! the first and then the start of the second, so every session gets an explicit stop.

use std::{fmt, str::FromStr};

use eyre::{bail, eyre};

/// One session: recorded from `start_secs` (inclusive) to `end_secs` after the first tick.
#[derive(Debug, Clone, PartialEq)]
pub struct Window {
    /// Session id sent with the commands.
    pub name: String,
    /// When the start is due, in seconds.
    pub start_secs: f64,
    /// When the stop is due, in seconds; greater than `start_secs`.
    pub end_secs: f64,
}

impl fmt::Display for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}-{}", self.name, self.start_secs, self.end_secs)
    }
}

/// Ordered, non-overlapping session windows (adjacent windows may touch).
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    windows: Vec<Window>,
}

impl Schedule {
    /// The windows in time order.
    pub fn windows(&self) -> &[Window] {
        &self.windows
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let windows: Vec<String> = self.windows.iter().map(Window::to_string).collect();
        f.write_str(&windows.join(","))
    }
}

impl FromStr for Schedule {
    type Err = eyre::Report;

    /// Parses `name:start-end` windows separated by commas, e.g. `warmup:0-3,run-1:4.5-8`.
    /// Names are ASCII letters, digits, `-`, `_` and `.`; times are non-negative seconds.
    fn from_str(text: &str) -> eyre::Result<Self> {
        let windows = text
            .split(',')
            .map(str::trim)
            .filter(|window| !window.is_empty())
            .map(parse_window)
            .collect::<eyre::Result<Vec<_>>>()?;
        if windows.is_empty() {
            bail!("the schedule has no windows: expected name:start-end[,name:start-end...]");
        }
        check_order(&windows)?;
        Ok(Self { windows })
    }
}

/// Parses one `name:start-end` window.
fn parse_window(text: &str) -> eyre::Result<Window> {
    let malformed = || eyre!("window {text:?} is not of the form name:start-end (seconds)");
    let (name, times) = text.split_once(':').ok_or_else(malformed)?;
    let (start, end) = times.split_once('-').ok_or_else(malformed)?;
    let name = name.trim();
    check_name(name, text)?;
    let start_secs = parse_secs(start, text)?;
    let end_secs = parse_secs(end, text)?;
    if end_secs <= start_secs {
        bail!("window {text:?} ends at {end_secs} s, not after its start at {start_secs} s");
    }
    Ok(Window { name: name.to_owned(), start_secs, end_secs })
}

/// Session names end up in file names: keep them to a safe character set.
fn check_name(name: &str, window: &str) -> eyre::Result<()> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    if name.is_empty() || !name.chars().all(allowed) {
        bail!(
            "window {window:?} has session name {name:?}: expected one or more ASCII letters, \
             digits, '-', '_' or '.'"
        );
    }
    Ok(())
}

/// Parses a finite, non-negative number of seconds.
fn parse_secs(text: &str, window: &str) -> eyre::Result<f64> {
    match text.trim().parse::<f64>() {
        Ok(secs) if secs.is_finite() && secs >= 0.0 => Ok(secs),
        _ => bail!("window {window:?} has time {text:?}: expected non-negative seconds like 2.5"),
    }
}

/// Each window must start no earlier than the previous one ends.
fn check_order(windows: &[Window]) -> eyre::Result<()> {
    for pair in windows.windows(2) {
        let (previous, next) = (&pair[0], &pair[1]);
        if next.start_secs < previous.end_secs {
            bail!(
                "window {next} starts before window {previous} ends: windows must be in time \
                 order and must not overlap"
            );
        }
    }
    Ok(())
}

/// A command for the recorder's control input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Begin recording the named session.
    Start(String),
    /// End the named session.
    Stop(String),
}

impl Command {
    /// The control payload: `"start"` or `"stop"`.
    pub fn payload(&self) -> &'static str {
        match self {
            Command::Start(_) => "start",
            Command::Stop(_) => "stop",
        }
    }

    /// The session the command is about.
    pub fn session(&self) -> &str {
        match self {
            Command::Start(session) | Command::Stop(session) => session,
        }
    }
}

/// Walks through a [`Schedule`] as time passes.
#[derive(Debug, Clone)]
pub struct SessionScript {
    windows: Vec<Window>,
    /// Index of the window whose next edge (start, or stop if active) is pending.
    next: usize,
    /// Whether `windows[next]` has been started and not yet stopped.
    active: bool,
}

impl SessionScript {
    /// A script at time zero, nothing sent yet.
    pub fn new(schedule: Schedule) -> Self {
        Self { windows: schedule.windows, next: 0, active: false }
    }

    /// The commands that became due up to `elapsed_secs`, in order. A start is due at its
    /// window's start time, a stop at its end time (both inclusive); a window that passed
    /// entirely between two calls yields its start and its stop together.
    pub fn due(&mut self, elapsed_secs: f64) -> Vec<Command> {
        let mut commands = Vec::new();
        while let Some(window) = self.windows.get(self.next) {
            if self.active && window.end_secs <= elapsed_secs {
                commands.push(Command::Stop(window.name.clone()));
                self.active = false;
                self.next += 1;
            } else if !self.active && window.start_secs <= elapsed_secs {
                commands.push(Command::Start(window.name.clone()));
                self.active = true;
            } else {
                break;
            }
        }
        commands
    }

    /// The session started and not yet stopped, if any.
    pub fn active_session(&self) -> Option<&str> {
        self.windows.get(self.next).filter(|_| self.active).map(|window| window.name.as_str())
    }

    /// Whether every window has been started and stopped.
    pub fn is_finished(&self) -> bool {
        self.next >= self.windows.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn script(text: &str) -> SessionScript {
        SessionScript::new(text.parse().expect("valid test schedule"))
    }

    fn start(name: &str) -> Command {
        Command::Start(name.to_owned())
    }

    fn stop(name: &str) -> Command {
        Command::Stop(name.to_owned())
    }

    fn error(text: &str) -> String {
        match text.parse::<Schedule>() {
            Ok(schedule) => panic!("accepted {schedule}"),
            Err(error) => error.to_string(),
        }
    }

    #[test]
    fn parses_names_integer_and_decimal_times() -> eyre::Result<()> {
        let schedule: Schedule = " warmup:0-3, run-1:4.5-8.25 ".parse()?;
        assert_eq!(
            schedule.windows(),
            [
                Window { name: "warmup".into(), start_secs: 0.0, end_secs: 3.0 },
                Window { name: "run-1".into(), start_secs: 4.5, end_secs: 8.25 },
            ]
        );
        Ok(())
    }

    #[test]
    fn rejects_malformed_windows_naming_the_problem() {
        assert!(error("").contains("no windows"));
        assert!(error("warmup").contains(r#""warmup" is not of the form name:start-end"#));
        assert!(error("a:1").contains("not of the form"));
        assert!(error("a:x-2").contains(r#"time "x""#));
        assert!(error("a:-1-2").contains("time"));
        assert!(error("a:nan-2").contains("time"));
        assert!(error("a:3-2").contains("not after its start"));
        assert!(error("a:2-2").contains("not after its start"));
        assert!(error("a b:0-1").contains("session name"));
        assert!(error(":0-1").contains("session name"));
    }

    #[test]
    fn rejects_overlapping_or_unordered_windows() {
        assert!(error("a:0-3,b:2-5").contains("starts before window a:0-3 ends"));
        assert!(error("a:4-5,b:0-1").contains("must be in time order"));
        assert!("a:0-3,b:3-5".parse::<Schedule>().is_ok());
    }

    #[test]
    fn starts_and_stops_fall_due_at_their_times() {
        let mut script = script("warmup:0-3,run-1:4-8");
        assert_eq!(script.due(0.0), [start("warmup")]);
        assert_eq!(script.active_session(), Some("warmup"));
        assert_eq!(script.due(2.9), []);
        assert_eq!(script.due(3.0), [stop("warmup")]);
        assert_eq!(script.active_session(), None);
        assert_eq!(script.due(3.5), []);
        assert_eq!(script.due(4.1), [start("run-1")]);
        assert!(!script.is_finished());
        assert_eq!(script.due(8.0), [stop("run-1")]);
        assert!(script.is_finished());
        assert_eq!(script.due(100.0), []);
    }

    #[test]
    fn touching_windows_stop_then_start_in_one_step() {
        let mut script = script("a:0-2,b:2-4");
        assert_eq!(script.due(0.0), [start("a")]);
        assert_eq!(script.due(2.0), [stop("a"), start("b")]);
    }

    #[test]
    fn a_window_skipped_between_ticks_still_starts_and_stops() {
        let mut script = script("a:0.5-0.6,b:0.7-2");
        assert_eq!(script.due(0.0), []);
        assert_eq!(script.due(1.0), [start("a"), stop("a"), start("b")]);
        assert_eq!(script.active_session(), Some("b"));
    }

    #[test]
    fn commands_carry_payload_and_session() {
        assert_eq!(start("a").payload(), "start");
        assert_eq!(stop("a").payload(), "stop");
        assert_eq!(stop("run-1").session(), "run-1");
    }
}
