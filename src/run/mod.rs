//! Running plans: the journal in the state directory, the runner that executes and undoes
//! stages, and recovery of runs that were killed.

pub mod interrupt;
pub mod journal;
pub mod recover;
pub mod runner;

pub use interrupt::Interrupt;
pub use journal::{Outcome, StateDir};
pub use runner::{Fault, RunReport, Runner};
