//! The commands that change containers, as the binary calls them: each checks everything it can
//! without changing the host (preflight), computes its plan, and hands it to the runner.

pub mod backup;
pub mod compose;
pub mod group;
pub mod history;
pub mod live;
pub mod plan_file;
pub mod preflight;
pub mod recover;
pub mod rehearse;
mod request;
pub mod rollback;
pub mod service;
pub mod settings;
pub mod task;
pub mod upgrade;

#[cfg(test)]
mod rehearse_tests;
#[cfg(test)]
mod related_tests;
#[cfg(test)]
pub(crate) mod upgrade_tests;
