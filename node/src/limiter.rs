//! Rate-limited logging: one line per problem and key in each period, the rest counted, so a
//! camera sending garbage at 30 fps cannot flood the log.

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

/// At most one log line per problem and camera in this period; the rest are counted.
pub const LOG_PERIOD: Duration = Duration::from_secs(5);

/// Rate-limits log lines per key: the first in each period passes, the rest are counted.
#[derive(Debug, Default)]
pub struct LogLimiter {
    last: HashMap<String, (Instant, u64)>,
}

impl LogLimiter {
    /// `Some(suppressed since the last line)` if a line may be logged now.
    pub fn allow(&mut self, key: &str, now: Instant) -> Option<u64> {
        match self.last.get_mut(key) {
            Some((at, suppressed)) if now.duration_since(*at) < LOG_PERIOD => {
                *suppressed += 1;
                None
            }
            Some(entry) => {
                let suppressed = entry.1;
                *entry = (now, 0);
                Some(suppressed)
            }
            None => {
                self.last.insert(key.to_owned(), (now, 0));
                Some(0)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_limiter_passes_one_line_per_period_and_counts_the_rest() {
        let t0 = Instant::now();
        let mut limiter = LogLimiter::default();
        assert_eq!(limiter.allow("a", t0), Some(0));
        assert_eq!(limiter.allow("a", t0 + Duration::from_secs(1)), None);
        assert_eq!(limiter.allow("a", t0 + Duration::from_secs(2)), None);
        assert_eq!(limiter.allow("b", t0), Some(0), "keys are independent");
        assert_eq!(limiter.allow("a", t0 + LOG_PERIOD), Some(2));
    }
}
