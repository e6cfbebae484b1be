//! Steps that place themselves in a hop. A product profile's step kinds add to a hop through
//! [`Part`] rather than through a field of the hop's options each, so that a new kind is its own
//! module and the plan builder never learns its name.

use super::{Slot, Step};

/// Where in a hop's swap a part's steps go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// While the old version still serves, once every successor is created and verified: a
    /// failure there costs no downtime.
    BeforeDowntime,
    /// As each successor starts, before its health is awaited (in the group's start order).
    Started,
    /// Once every successor serves, before the old containers are removed: a failure there rolls
    /// back.
    AfterHealthy,
}

/// One member of the hop, as a part places its steps for it.
#[derive(Debug, Clone)]
pub struct Place {
    /// Its container before the hop.
    pub old: Slot,
    /// Its successor.
    pub new: Slot,
    /// The member the command named, first of its group: where a step that runs once goes.
    pub primary: bool,
    /// Another image of the installation (DevLake's UI): it takes only the swap and its own
    /// health, so most parts add nothing to it.
    pub companion: bool,
}

/// What a part does for a Swarm service, whose tasks have only what the service's spec gives
/// them and whose update Swarm itself carries out.
#[derive(Debug)]
pub enum OnAService<'a> {
    /// Made on each new task as it starts, awaited with the task's health.
    CalledOnEachTask(&'a super::steps::Call),
    /// Not done to a service: why, for the refusal before any downtime.
    Refused(&'static str),
}

/// Steps a hop adds at one phase, member by member.
pub trait Part: std::fmt::Debug + Send + Sync {
    /// The profile's name for the step kind, for messages that refuse it.
    fn kind(&self) -> &'static str;

    /// What it does when the hop moves a Swarm service rather than containers. Every kind
    /// answers, so that a new kind either runs on a service or says why it does not.
    fn on_a_service(&self) -> OnAService<'_>;

    fn phase(&self) -> Phase;

    /// Its steps for one member, in the order they run; none for a member it does not concern.
    fn steps(&self, at: &Place) -> Vec<Step>;
}
