//! Durations as people write them (`90s`, `2m`, `1h30m`, `3d`), read by one parser wherever
//! they are written: a flag, a profile, the config file, a label.

use std::time::Duration;

/// Text where a duration goes that says none: bad input, quoted, with how to write one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{text:?} is not a duration: {why} (write durations like 90s, 2m, 1h30m or 3d)")]
pub struct DurationError {
    text: String,
    /// humantime's reason.
    why: String,
}

/// The duration `text` says, or why it says none, with how to write one.
pub fn parse(text: &str) -> Result<Duration, DurationError> {
    humantime::parse_duration(text.trim()).map_err(|why| DurationError {
        text: text.to_string(),
        why: why.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use proptest::prelude::*;

    use crate::testing::{cases, mutated_text, said, seeds, text, ARBITRARY, MUTATED, ROUND_TRIP};

    proptest! {
        #![proptest_config(cases(ARBITRARY))]
        /// Whatever is written where a duration goes, the answer is a duration or an error that
        /// quotes what was written.
        #[test]
        fn any_text_is_a_duration_or_an_error_quoting_it(text in text()) {
            if let Err(e) = super::parse(&text).map_err(|e| e.to_string()) {
                said(&e)?;
                prop_assert!(e.contains(&format!("{text:?}")), "{e}");
            }
        }
    }

    proptest! {
        #![proptest_config(cases(MUTATED))]
        #[test]
        fn mistyped_durations_are_a_duration_or_an_error_quoting_them(
            text in mutated_text(seeds(&["90s", "2m", "1h30m", "3d", "1day 2h", "500ms", "10min"]))
        ) {
            if let Err(e) = super::parse(&text).map_err(|e| e.to_string()) {
                prop_assert!(e.contains(&format!("{text:?}")), "{e}");
            }
        }
    }

    proptest! {
        #![proptest_config(cases(ROUND_TRIP))]
        /// cutover writes durations (`check --json`'s min_age, plans' timeouts) as humantime
        /// formats them; they read back to the same duration, to the nanosecond.
        #[test]
        fn a_written_duration_reads_back_equal(secs in 0..10_000_000_000u64, nanos in 0..1_000_000_000u32) {
            let d = Duration::new(secs, nanos);
            let written = humantime::format_duration(d).to_string();
            prop_assert_eq!(super::parse(&written), Ok(d), "{}", written);
        }
    }

    #[test]
    fn people_write_durations_with_units_and_hear_how_when_they_do_not() {
        assert_eq!(super::parse("1h30m").unwrap().as_secs(), 5400);
        assert_eq!(super::parse(" 90s ").unwrap().as_secs(), 90);
        let error = super::parse("10").unwrap_err().to_string();
        assert!(
            error.contains("\"10\" is not a duration") && error.contains("90s"),
            "{error}"
        );
    }
}
