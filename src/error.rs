//! Errors that stop cutover before it changes anything. Failures *during* a run are not errors:
//! they end in a rollback and are told by the run's report.

use crate::engine::EngineError;
use crate::run::journal::JournalError;
use crate::run::runner::RunError;

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

impl From<RunError> for Error {
    fn from(e: RunError) -> Error {
        match e {
            RunError::Journal(e) => Error::State(e),
            #[cfg(test)]
            RunError::Interrupted => Error::Refused(e.to_string()),
        }
    }
}

pub type Result<T> = std::result::Result<T, Error>;
