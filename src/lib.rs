//! cutover: upgrade a container to a new image without losing its configuration or its data,
//! and go back by itself when the new version does not come up.
//!
//! The binary is a thin layer over this library, whose modules are its layers, lowest first;
//! each uses only those listed before it (`tests/layers.rs` holds the code to this list):
//! - [`engine`]: the container engine as a trait, with the Docker implementation (and an
//!   in-memory one for unit tests), and the library's own words for what it reports and makes
//!   (`Container`, `Service`, `Task`, `Image`, `Network`, `Helper`, a successor's create
//!   request, a service's spec): Docker's wire types stay in it;
//! - [`compose`]: docker-compose's projects: membership, the image's place in their files,
//!   the config hash; and the systemd units that run Podman's containers, which name an image
//!   too;
//! - `template`: the `${VAR}` templates of profiles' command words;
//! - [`health`]: deciding that a started container serves;
//! - [`backup`]: backups of a product's database and volumes, and their restore;
//! - [`plan`]: plans of steps over container slots, computed by pure functions from what the
//!   engine reports, each step kind owning its description, action, undo and traits;
//! - [`profile`]: product profiles, the vendors' procedures as data, whose step kinds each plan
//!   themselves into a hop's options (the plan knows no profile);
//! - [`run`]: the journaling runner, which executes and undoes plans, and recovery;
//! - [`error`]: the errors that stop a command before it changes anything, by category (bad
//!   input, refused, the engine, the state directory), each layer's error converting into one;
//!   and the one place where an error or a run's outcome becomes the exit code;
//! - [`notify`]: messages about what passes and commands did, sent to operators' services;
//! - [`config`]: the config file (`--config`): the update rules' layers, the fleet's hosts,
//!   the notification URLs;
//! - [`ops`]: the commands that change containers (`upgrade`, `rollback`, `backup`, `task`), their
//!   preflight checks, the resolver of a container's settings, the plan of a profile's task
//!   (from the profile's words to the plan's steps), and `history`;
//! - [`discover`]: update discovery (`check`): which version each container may move to, on
//!   one engine or on each host of a fleet;
//! - [`auto`]: the unattended pass that upgrades what discovery found eligible, its message
//!   for [`notify`] to send and its metrics;
//! - [`fleet`]: the config file's hosts reached at once, the rolling passes and upgrades over
//!   them, and the clusters of a product spread over hosts, which move only as a whole.
//!
//! Beneath them all, leaves that use none of them: [`causes`], [`clock`], [`duration`],
//! [`private`], [`schedule`], [`secrets`], [`size`], [`version`].

pub mod auto;
pub mod backup;
pub mod causes;
pub mod clock;
pub mod compose;
pub mod config;
pub mod discover;
pub mod duration;
pub mod engine;
pub mod error;
pub mod fleet;
pub mod health;
pub mod notify;
pub mod ops;
pub mod plan;
pub mod private;
pub mod profile;
pub mod run;
pub mod schedule;
pub mod secrets;
pub mod size;
pub(crate) mod template;
#[cfg(test)]
mod testing;
pub mod version;

pub use error::{Error, Result};
