//! Durations as people write them (`90s`, `2m`, `1h30m`, `3d`), read by one parser wherever
//! they are written: a flag, a profile, the config file, a label.

use std::time::Duration;

/// The duration `text` says, or why it says none, with how to write one.
pub fn parse(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text.trim()).map_err(|e| {
        format!("{text:?} is not a duration: {e} (write durations like 90s, 2m, 1h30m or 3d)")
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn people_write_durations_with_units_and_hear_how_when_they_do_not() {
        assert_eq!(super::parse("1h30m").unwrap().as_secs(), 5400);
        assert_eq!(super::parse(" 90s ").unwrap().as_secs(), 90);
        let error = super::parse("10").unwrap_err();
        assert!(
            error.contains("\"10\" is not a duration") && error.contains("90s"),
            "{error}"
        );
    }
}
