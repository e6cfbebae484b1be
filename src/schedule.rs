//! When `auto` runs on its own: a cron expression and an optional daily maintenance window.

use chrono::{DateTime, Local, NaiveTime, Timelike};
use croner::parser::{CronParser, Seconds};
use croner::Cron;

/// A daily stretch of local time, possibly across midnight (`22:00-02:00`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    start: NaiveTime,
    end: NaiveTime,
}

/// A window or a schedule that cannot be read: bad input, quoted, with how to write it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error("window {0:?}: write it as HH:MM-HH:MM in local time, e.g. 02:00-05:00")]
    Window(String),
    #[error("schedule {expr:?}: {why} (write it as cron does, e.g. \"0 3 * * *\")")]
    Cron { expr: String, why: String },
}

impl Window {
    pub fn parse(text: &str) -> Result<Window, ScheduleError> {
        let bad = || ScheduleError::Window(text.to_string());
        let (start, end) = text.split_once('-').ok_or_else(bad)?;
        let time = |t: &str| NaiveTime::parse_from_str(t.trim(), "%H:%M").map_err(|_| bad());
        let window = Window {
            start: time(start)?,
            end: time(end)?,
        };
        if window.start == window.end {
            return Err(bad());
        }
        Ok(window)
    }

    pub fn contains(&self, at: NaiveTime) -> bool {
        let at = at.with_second(0).unwrap_or(at);
        if self.start < self.end {
            self.start <= at && at < self.end
        } else {
            at >= self.start || at < self.end
        }
    }

    pub fn contains_now(&self) -> bool {
        self.contains(Local::now().time())
    }
}

/// A 5-field (minute first) or 6-field (seconds first) cron expression.
#[derive(Debug)]
pub struct Schedule {
    cron: Cron,
}

impl Schedule {
    pub fn parse(expr: &str) -> Result<Schedule, ScheduleError> {
        let cron = CronParser::builder()
            .seconds(Seconds::Optional)
            .build()
            .parse(expr)
            .map_err(|e| ScheduleError::Cron {
                expr: expr.to_string(),
                why: e.to_string(),
            })?;
        Ok(Schedule { cron })
    }

    pub fn next_after(&self, after: DateTime<Local>) -> Option<DateTime<Local>> {
        self.cron.find_next_occurrence(&after, false).ok()
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use proptest::prelude::*;

    use super::*;
    use crate::testing::{cases, mutated_text, said, seeds, text, ARBITRARY, MUTATED};

    /// A window or a schedule from the config file or a flag: read, or refused with what was
    /// written and how to write it; a schedule read finds its next time without hanging.
    fn read_as_window_and_schedule(text: &str) -> Result<(), TestCaseError> {
        match Window::parse(text).map_err(|e| e.to_string()) {
            Ok(window) => {
                let _ = window.contains(t(12, 0));
            }
            Err(e) => {
                said(&e)?;
                prop_assert!(
                    e.contains(&format!("{text:?}")) && e.contains("HH:MM-HH:MM"),
                    "{}",
                    e
                );
            }
        }
        match Schedule::parse(text).map_err(|e| e.to_string()) {
            Ok(schedule) => {
                let _ =
                    schedule.next_after(Local.with_ymd_and_hms(2026, 11, 21, 12, 0, 0).unwrap());
            }
            Err(e) => {
                prop_assert!(
                    e.contains(&format!("{text:?}")) && e.contains("0 3 * * *"),
                    "{}",
                    e
                );
            }
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(cases(ARBITRARY))]
        #[test]
        fn any_text_is_a_window_and_a_schedule_or_refused(text in text()) {
            read_as_window_and_schedule(&text)?;
        }
    }

    proptest! {
        #![proptest_config(cases(MUTATED))]
        #[test]
        fn mistyped_windows_and_schedules_are_read_or_refused(
            text in mutated_text(seeds(&["02:00-05:00", "22:30-01:00", "0 3 * * *", "*/30 * * * * *", "0 0 29 2 1"]))
        ) {
            read_as_window_and_schedule(&text)?;
        }
    }

    fn t(h: u32, m: u32) -> NaiveTime {
        NaiveTime::from_hms_opt(h, m, 0).unwrap()
    }

    #[test]
    fn windows_within_a_day_and_across_midnight() {
        let night = Window::parse("02:00-05:00").unwrap();
        assert!(
            night.contains(t(2, 0))
                && night.contains(t(4, 59))
                && !night.contains(t(5, 0))
                && !night.contains(t(13, 0))
        );
        let late = Window::parse("22:30-01:00").unwrap();
        assert!(
            late.contains(t(23, 0))
                && late.contains(t(0, 30))
                && !late.contains(t(1, 0))
                && !late.contains(t(12, 0))
        );
        assert!(Window::parse("2am-5am")
            .unwrap_err()
            .to_string()
            .contains("HH:MM-HH:MM"));
    }

    #[test]
    fn five_and_six_field_expressions() {
        let start = Local.with_ymd_and_hms(2026, 11, 21, 12, 0, 0).unwrap();
        let nightly = Schedule::parse("0 3 * * *").unwrap();
        assert_eq!(
            nightly.next_after(start).unwrap(),
            Local.with_ymd_and_hms(2026, 11, 22, 3, 0, 0).unwrap()
        );
        let every_30s = Schedule::parse("*/30 * * * * *").unwrap();
        assert_eq!(
            every_30s.next_after(start).unwrap(),
            Local.with_ymd_and_hms(2026, 11, 21, 12, 0, 30).unwrap()
        );
        assert!(Schedule::parse("nightly")
            .unwrap_err()
            .to_string()
            .contains("0 3 * * *"));
    }
}
