//! Errors that stop cutover before it changes anything, by what the operator does about them,
//! and the one place where an error or a run's outcome becomes the command's exit code (the
//! README's "Exit codes" and `auto`'s table). Failures *during* a run are not errors: they end
//! in a rollback and are told by the run's report, whose [`Outcome`] gives the code.
//!
//! Each layer has its own error type saying what went wrong in its terms; it converts into
//! [`Error`] with `From` (here for the layers below this one, in the layer itself for those
//! above), choosing the category, so `?` carries it up with its message unchanged.

use crate::engine::EngineError;
use crate::plan::{Kind, Plan};
use crate::run::journal::{JournalError, Outcome};
use crate::run::runner::{RunError, RunReport};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The engine cannot be reached, or refused what was asked of it.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The state directory: a journal or a lock.
    #[error(transparent)]
    State(#[from] JournalError),
    /// What the operator wrote cannot be read: an argument, the config file, a profile, a
    /// label; the message says what was written and how to write it. The layer's error is
    /// kept whole (its message is the whole story: no cause is told twice after it).
    #[error("{0}")]
    BadInput(Box<dyn std::error::Error + Send + Sync>),
    /// A precondition does not hold, before any downtime; the message says what to do.
    #[error("{0}")]
    Refused(String),
}

impl Error {
    /// Bad input told by a layer's typed error, kept as its source.
    pub fn bad_input(e: impl std::error::Error + Send + Sync + 'static) -> Error {
        Error::BadInput(Box::new(e))
    }

    /// A precondition that does not hold, told by a layer's typed error in its own words.
    pub fn refused(e: impl std::fmt::Display) -> Error {
        Error::Refused(e.to_string())
    }

    /// The exit code of a command this error stopped. Every category stops before any
    /// downtime, so each is "nothing changed"; each is named so a new one chooses its code.
    pub fn exit(&self) -> Exit {
        match self {
            Error::Engine(_) | Error::State(_) | Error::BadInput(_) | Error::Refused(_) => {
                Exit::NothingChanged
            }
        }
    }
}

impl From<RunError> for Error {
    fn from(e: RunError) -> Error {
        match e {
            RunError::Journal(e) => Error::State(e),
            #[cfg(test)]
            RunError::Interrupted => Error::Refused(e.to_string()),
        }
    }
}

/// Makes each layer's error an [`Error`] of the category that says what the operator does
/// about it (`bad_input` or `refused`), its message kept: one line per error type, here for the
/// layers below this one, in the layer itself for those above.
macro_rules! category {
    ($($kind:ty => $category:ident),* $(,)?) => {$(
        impl From<$kind> for $crate::error::Error {
            fn from(e: $kind) -> $crate::error::Error {
                $crate::error::Error::$category(e)
            }
        }
    )*};
}
pub(crate) use category;

category! {
    crate::duration::DurationError => bad_input,
    crate::schedule::ScheduleError => bad_input,
    crate::profile::ProfileError => bad_input,
    crate::health::JsonConditionError => bad_input,
    crate::plan::PlanError => refused,
    crate::profile::ApplyError => refused,
    crate::compose::ComposeError => refused,
}

pub type Result<T> = std::result::Result<T, Error>;

/// The documented exit codes (README "Exit codes", `auto`'s table, `cutover --help`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Done = 0,
    RolledBack = 1,
    NothingChanged = 2,
    NeedsAttention = 3,
    /// A campaign of hops stopped at a later hop and rolled that one back.
    Partial = 4,
    /// `rehearse` only: the migration failed on the copy; production was never touched.
    RehearsalFailed = 5,
    /// `auto` only: upgraded at least one container, with no failure.
    Upgraded = 10,
}

impl Exit {
    pub fn code(self) -> u8 {
        self as u8
    }

    /// The exit code of a command stopped by `error` before it changed anything: that of the
    /// first [`Error`] in its chain of causes; anything else the command could not do before
    /// it began (start its runtime, read its arguments) changed nothing either.
    pub fn of_error(error: &(dyn std::error::Error + 'static)) -> Exit {
        std::iter::successors(Some(error), |e| e.source())
            .find_map(|e| e.downcast_ref::<Error>())
            .map_or(Exit::NothingChanged, Error::exit)
    }

    /// The exit code of a run of `plan`: its outcome's, except a rehearsal whose step failed
    /// on the copy, which says so apart from a refusal.
    pub fn of_run(plan: &Plan, report: &RunReport) -> Exit {
        match report.outcome {
            Outcome::NothingChanged if plan.kind == Kind::Rehearsal && report.failure.is_some() => {
                Exit::RehearsalFailed
            }
            outcome => Exit::from(outcome),
        }
    }
}

impl From<Outcome> for Exit {
    fn from(o: Outcome) -> Exit {
        match o {
            Outcome::Succeeded => Exit::Done,
            Outcome::RolledBack => Exit::RolledBack,
            Outcome::NothingChanged => Exit::NothingChanged,
            Outcome::NeedsAttention | Outcome::KeptNew => Exit::NeedsAttention,
            Outcome::Partial => Exit::Partial,
        }
    }
}

impl From<Exit> for std::process::ExitCode {
    fn from(e: Exit) -> std::process::ExitCode {
        std::process::ExitCode::from(e.code())
    }
}

impl From<&Error> for Exit {
    fn from(e: &Error) -> Exit {
        e.exit()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// README "Exit codes": 0 done, 1 rolled back, 2 nothing changed, 3 needs attention, 4 a
    /// later hop rolled back; `rehearse` 5, `auto` 10.
    #[test]
    fn outcomes_exit_with_their_documented_codes() {
        let codes = [
            (Outcome::Succeeded, 0),
            (Outcome::RolledBack, 1),
            (Outcome::NothingChanged, 2),
            (Outcome::NeedsAttention, 3),
            (Outcome::KeptNew, 3),
            (Outcome::Partial, 4),
        ];
        for (outcome, code) in codes {
            assert_eq!(Exit::from(outcome).code(), code, "{outcome:?}");
        }
        assert_eq!(Exit::RehearsalFailed.code(), 5);
        assert_eq!(Exit::Upgraded.code(), 10);
    }

    /// Every category of error stops before any downtime: exit 2, whatever layer told it and
    /// however deep in a chain of causes it is.
    #[test]
    fn every_category_of_error_exits_2_with_its_message() {
        let errors = [
            Error::Engine(EngineError::Unreachable {
                host: "unix:///run/docker.sock".into(),
                message: "no such file".into(),
                check: "is dockerd running?",
            }),
            Error::State(JournalError::Busy {
                what: "web".into(),
                holder: "pid 7".into(),
                path: "/state/locks/web".into(),
            }),
            Error::from(crate::duration::parse("soon").unwrap_err()),
            Error::refused("stop the other run first"),
        ];
        for error in &errors {
            assert_eq!(error.exit().code(), 2, "{error}");
            assert_eq!(Exit::of_error(error).code(), 2, "{error}");
        }
        assert!(errors[2].to_string().contains("\"soon\" is not a duration"));
        assert_eq!(errors[3].to_string(), "stop the other run first");
        let io = std::io::Error::other("no runtime");
        assert_eq!(Exit::of_error(&io), Exit::NothingChanged);
    }

    /// A layer's error becomes the category its `category!` line names, saying the same; a bad
    /// input tells no cause after its message (`{:#}` would repeat it).
    #[test]
    fn a_layers_error_keeps_its_message_in_its_category() {
        let duration = crate::duration::parse("soon").unwrap_err();
        let said = duration.to_string();
        let e = Error::from(duration);
        assert!(matches!(e, Error::BadInput(_)), "{e:?}");
        assert_eq!(e.to_string(), said);
        assert!(std::error::Error::source(&e).is_none());
        let hop = crate::plan::PlanError::RepeatedHop("2.1".into());
        let said = hop.to_string();
        let e = Error::from(hop);
        assert!(matches!(&e, Error::Refused(m) if *m == said), "{e:?}");
        assert!(said.starts_with("--via 2.1 repeats a hop"), "{said}");
        let unset = crate::profile::ApplyError::from(crate::template::TemplateError::Unset(
            "DB_URL".into(),
        ));
        assert_eq!(
            Error::from(unset).to_string(),
            "the container has no DB_URL, which the profile's command needs"
        );
    }
}
