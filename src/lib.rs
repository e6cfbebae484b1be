//! cutover: upgrade a container to a new image without losing its configuration or its data,
//! and go back by itself when the new version does not come up.
//!
//! The binary is a thin layer over this library. An upgrade is a [`plan::Plan`] of steps, each
//! with its undo, computed by pure functions ([`plan::plan_upgrade`], [`recreate`]) from what
//! the engine reports, and run by the [`executor`], which journals every step in the state
//! directory ([`journal`]) so that [`recover`] can finish or undo a run that was killed.

pub mod auto;
pub mod check;
pub mod config;
pub mod credentials;
pub mod docker;
pub mod error;
pub mod executor;
pub mod health;
pub mod history;
pub mod journal;
pub mod plan;
pub mod preflight;
pub mod recover;
pub mod recreate;
pub mod reference;
pub mod registry;
pub mod rollback;
pub mod schedule;
pub mod secrets;
pub mod upgrade;
pub mod version;

pub use error::{Error, Result};
