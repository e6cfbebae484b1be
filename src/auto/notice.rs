//! The message of an unattended pass (`auto`, or the rolling `upgrade` of several containers),
//! for [`crate::notify`] to send: what moved, from and to, the downtime, what failed and the
//! state each container is left in, the backups taken, and where to read what each version
//! changes.

use serde_json::json;

use super::{PassOutcome, PassReport, PassResult};
use crate::notify::{seconds, Message, Severity};

impl PassReport {
    /// Its message: a pass of `command` (`auto`, or the rolling `upgrade` of several
    /// containers) on `host`.
    pub fn message(&self, command: &str, host: &str) -> Message {
        let counts: Vec<(PassOutcome, usize)> = PassOutcome::ALL
            .into_iter()
            .map(|o| (o, self.results.iter().filter(|r| r.result == o).count()))
            .filter(|(_, n)| *n > 0)
            .collect();
        let summary = match counts.is_empty() {
            true => format!("nothing to upgrade, {} checked", self.checked.len()),
            false => counts
                .iter()
                .map(|(o, n)| format!("{n} {}", said(*o)))
                .collect::<Vec<_>>()
                .join(", "),
        };
        let mut lines: Vec<String> = self.results.iter().map(line).collect();
        lines.extend(
            self.unreached
                .iter()
                .map(|u| format!("host {} was not read: {}", u.host, u.error)),
        );
        let severity = match (self.failed(), self.upgraded()) {
            (true, _) => Severity::Failure,
            (false, 0) => Severity::Quiet,
            (false, _) => Severity::Success,
        };
        Message::new(
            format!("cutover {command} on {host}: {summary}"),
            lines,
            severity,
            json!(self.results),
            self.started_at,
        )
    }
}

fn said(outcome: PassOutcome) -> &'static str {
    match outcome {
        PassOutcome::Upgraded => "upgraded",
        PassOutcome::RolledBack => "rolled back",
        PassOutcome::Partial => "part of the way",
        PassOutcome::NothingChanged => "failed before any downtime",
        PassOutcome::NeedsAttention => "NEED ATTENTION",
        PassOutcome::Refused => "refused",
        PassOutcome::HeldBack => "held back by a failed rehearsal",
        PassOutcome::NotAttempted => "not attempted",
    }
}

/// A container's line: from and to, what happened, the state it is left in.
fn line(r: &PassResult) -> String {
    let moved = format!("{} -> {}", r.from, r.to);
    let down = r
        .downtime_ms
        .map(|ms| format!(", down {}", seconds(ms)))
        .unwrap_or_default();
    let mut text = match r.result {
        PassOutcome::Upgraded => format!("{moved}: upgraded{down}; runs {}", r.to),
        PassOutcome::RolledBack => format!(
            "{moved}: failed and was rolled back{down}: {}; runs {} again",
            r.message, r.from
        ),
        PassOutcome::NothingChanged => format!(
            "{moved}: failed before any downtime: {}; runs {}, untouched",
            r.message, r.from
        ),
        PassOutcome::Partial => format!("{moved}: went part of the way{down}: {}", r.message),
        PassOutcome::NeedsAttention => format!("{moved}: NEEDS ATTENTION{down}: {}", r.message),
        PassOutcome::Refused => format!("{moved}: refused: {}; untouched", r.message),
        PassOutcome::HeldBack => format!(
            "{moved}: held back, not stopped: {}; runs {}, untouched",
            r.message, r.from
        ),
        PassOutcome::NotAttempted => {
            format!("{moved}: not attempted: {}; runs {}", r.message, r.from)
        }
    };
    for b in &r.backups {
        text.push_str(&format!("; backup {b}"));
    }
    for link in &r.release_notes {
        text.push_str(&format!("; {}", link.line()));
    }
    format!("{}: {text}", r.container)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discover::check::Status;
    use crate::notify::Severity;
    use crate::secrets;
    use std::time::SystemTime;

    fn result(name: &str, result: PassOutcome, message: &str) -> PassResult {
        PassResult {
            message: message.into(),
            ..PassResult::told(name, result, Some(1250))
        }
    }

    fn report(results: Vec<PassResult>) -> PassReport {
        PassReport {
            started_at: SystemTime::UNIX_EPOCH,
            checked: vec![Status::eligible("a"), Status::eligible("b")],
            results,
            unreached: vec![],
            backups: vec![],
        }
    }

    #[test]
    fn a_pass_says_what_moved_what_failed_and_where_each_is_left() {
        let mut good = result("web", PassOutcome::Upgraded, "done");
        good.backups = vec!["20261201T0300Z (12 MiB, verified) in 2s".into()];
        let bad = result("quay", PassOutcome::RolledBack, "health: 503");
        let message = report(vec![good, bad]).message("auto", "h1");
        assert_eq!(
            message.title,
            "cutover auto on h1: 1 upgraded, 1 rolled back"
        );
        assert_eq!(message.severity, Severity::Failure);
        assert_eq!(
            message.lines,
            [
                "web: app:1 -> app:2: upgraded, down 1s 250ms; runs app:2; backup 20261201T0300Z (12 MiB, verified) in 2s",
                "quay: app:1 -> app:2: failed and was rolled back, down 1s 250ms: health: 503; runs app:1 again",
            ]
        );
        assert_eq!(message.results[1]["result"], "rolled_back");
    }

    #[test]
    fn each_hop_s_release_notes_are_linked_in_the_message() {
        let link = |version: &str| crate::profile::NotesLink {
            version: version.into(),
            url: format!("https://docs.example.com/{version}"),
            from: "profile demo (the vendor's docs)".into(),
        };
        let mut moved = result("quay", PassOutcome::Upgraded, "done");
        moved.release_notes = vec![link("v3.9.0"), link("v3.10.0")];
        let message = report(vec![moved]).message("auto", "h1");
        assert_eq!(
            message.lines,
            ["quay: app:1 -> app:2: upgraded, down 1s 250ms; runs app:2; release notes of v3.9.0: https://docs.example.com/v3.9.0 (profile demo (the vendor's docs)); release notes of v3.10.0: https://docs.example.com/v3.10.0 (profile demo (the vendor's docs))"]
        );
        assert_eq!(
            message.results[0]["release_notes"][1]["url"],
            "https://docs.example.com/v3.10.0"
        );
    }

    #[test]
    fn a_quiet_pass_is_quiet_and_a_pass_that_only_upgraded_is_a_success() {
        let quiet = report(vec![]).message("auto", "h1");
        assert_eq!(quiet.severity, Severity::Quiet);
        assert_eq!(
            quiet.title,
            "cutover auto on h1: nothing to upgrade, 2 checked"
        );
        let good = report(vec![result("web", PassOutcome::Upgraded, "done")]);
        assert_eq!(good.message("auto", "h1").severity, Severity::Success);
    }

    #[test]
    fn no_secret_reaches_a_message() {
        secrets::register("hunter2-notify-secret");
        let bad = result(
            "db",
            PassOutcome::NeedsAttention,
            "psql: password hunter2-notify-secret refused",
        );
        let message = report(vec![bad]).message("auto", "h1");
        let all = format!("{} {} {}", message.title, message.text(), message.results);
        assert!(!all.contains("hunter2-notify-secret"), "{all}");
        assert!(all.contains("NEEDS ATTENTION"));
    }
}
