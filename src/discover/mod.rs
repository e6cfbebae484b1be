//! Update discovery and unattended upgrades: which version each container may move to
//! ([`check`]), from its rules ([`crate::config`], over the tag parsing of [`crate::version`]) and the
//! registry's answers ([`crate::engine::registry`]); and the `auto` pass that upgrades the eligible ones on a
//! schedule ([`auto`], [`crate::schedule`]), or over a fleet's hosts as a rolling pass ([`rollout`]),
//! holding back the nodes of a cluster spread over hosts ([`clusters`]).

pub mod auto;
pub mod check;
#[cfg(test)]
mod cluster_tests;
pub mod clusters;
pub mod metrics;
pub mod notice;
pub mod rollout;
