//! Running plans: the journal in the state directory, the runner that executes and undoes
//! stages, and recovery of runs that were killed; and what else the state directory keeps
//! between runs (when each image was first seen).

pub mod first_seen;
pub mod interrupt;
pub mod journal;
pub mod recover;
pub mod runner;

pub use first_seen::FirstSeen;
pub use interrupt::Interrupt;
pub use journal::{Outcome, StateDir};
pub use runner::{Fault, RunReport, Runner};
