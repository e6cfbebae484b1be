//! Errors that stop cutover before it changes anything. Failures *during* a run are not errors:
//! they end in a rollback and are told by the run's report.

use crate::docker::EngineError;
use crate::journal::JournalError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    State(#[from] JournalError),
    /// A precondition does not hold; the message says what to do.
    #[error("{0}")]
    Refused(String),
}

pub type Result<T> = std::result::Result<T, Error>;

/// An error with its causes: reqwest's top-level message ("error sending request") hides the
/// cause worth reading.
pub fn error_text(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
