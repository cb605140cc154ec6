//! Reading settings from environment variables: unset and blank values mean "use the default",
//! and a bad value becomes an error naming the key, the value and what is allowed.

use std::str::FromStr;

/// A source of environment values by key (the process environment, or a map in tests).
pub trait Lookup: Fn(&str) -> Option<String> {}

impl<F: Fn(&str) -> Option<String>> Lookup for F {}

/// The trimmed value of `key`, or `None` when it is unset or blank.
pub fn value(lookup: &impl Lookup, key: &str) -> Option<String> {
    lookup(key).map(|value| value.trim().to_owned()).filter(|value| !value.is_empty())
}

/// The error for an unusable value.
pub fn invalid(key: &str, value: &str, allowed: &str) -> eyre::Report {
    eyre::eyre!("invalid value {value:?} for {key}: expected {allowed}")
}

/// Parses `key` as a number in `range`, or returns `default` when it is unset.
pub fn number_in<T>(lookup: &impl Lookup, key: &str, range: std::ops::RangeInclusive<T>, default: T) -> eyre::Result<T>
where
    T: FromStr + PartialOrd + std::fmt::Display + Copy,
{
    let Some(raw) = value(lookup, key) else {
        return Ok(default);
    };
    let allowed = || format!("an integer from {} to {}", range.start(), range.end());
    match raw.parse::<T>() {
        Ok(number) if range.contains(&number) => Ok(number),
        _ => Err(invalid(key, &raw, &allowed())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn only(key: &'static str, value: &'static str) -> impl Lookup {
        move |asked: &str| (asked == key).then(|| value.to_owned())
    }

    #[test]
    fn blank_values_fall_back_to_the_default() {
        assert_eq!(number_in(&only("N", "  "), "N", 1..=9, 5).ok(), Some(5));
        assert_eq!(number_in(&only("M", "3"), "N", 1..=9, 5).ok(), Some(5));
    }

    #[test]
    fn out_of_range_values_name_key_value_and_range() {
        let message = number_in(&only("N", "12"), "N", 1_u32..=9, 5).expect_err("12 is out of range").to_string();
        assert_eq!(message, r#"invalid value "12" for N: expected an integer from 1 to 9"#);
    }
}
