//! Update discovery: which version each container or Swarm service may move to ([`check`]),
//! from its rules ([`crate::config`], over the tag parsing of [`crate::version`]) and the
//! registry's answers ([`crate::engine::registry`]), on one engine or on every host of a fleet
//! given their engines. Nothing here moves anything: [`crate::auto`] and [`crate::fleet`] do.

pub mod check;
