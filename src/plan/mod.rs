//! An upgrade, a rollback or any later procedure as a plan: stages of steps over named
//! container slots.
//!
//! Plans are computed by pure functions ([`build`]) from what the engine reported, so unit tests
//! can snapshot them and `--dry-run` can print exactly what would run. Each step kind lives in
//! its own module under [`steps`] with its description, action, undo and traits; the runner
//! (the layer above) journals every step and its outputs, which is what lets `cutover recover`
//! finish or undo a run that was killed.
//!
//! A *slot* names a container by role rather than by id: member `web`, generation 0 is the
//! container serving when the run began, generation 1 the one the first stage creates, and so on
//! through the hops of a campaign. Ids are bound as the run creates containers and journaled, so
//! recovery rebuilds the bindings from the journal alone.

pub mod build;
mod error;
pub mod part;
pub mod rehearse;
pub mod steps;

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

pub use build::{plan_rollback, plan_upgrade, UpgradeOptions};
pub use error::PlanError;
pub use steps::Step;

/// A container of the run: one generation of one member.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Slot {
    pub member: String,
    pub generation: u32,
}

impl Slot {
    pub fn new(member: &str, generation: u32) -> Slot {
        Slot {
            member: member.to_string(),
            generation,
        }
    }
}

impl fmt::Display for Slot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}#{}", self.member, self.generation)
    }
}

impl TryFrom<String> for Slot {
    type Error = String;

    fn try_from(s: String) -> Result<Slot, String> {
        let (member, generation) = s
            .rsplit_once('#')
            .ok_or_else(|| format!("{s:?} is not a slot"))?;
        Ok(Slot {
            member: member.to_string(),
            generation: generation
                .parse()
                .map_err(|_| format!("{s:?} is not a slot"))?,
        })
    }
}

impl From<Slot> for String {
    fn from(s: Slot) -> String {
        s.to_string()
    }
}

/// What the plan knows of a slot before the run: the image it runs, and its id when the
/// container already exists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotInfo {
    pub image: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Upgrade,
    Rollback,
    Backup,
    Restore,
    Task,
    /// An upgrade's migration tried on a copy: production is only read.
    Rehearsal,
}

impl Kind {
    pub fn word(self) -> &'static str {
        match self {
            Kind::Upgrade => "upgrade",
            Kind::Rollback => "rollback",
            Kind::Backup => "backup",
            Kind::Restore => "restore",
            Kind::Task => "task",
            Kind::Rehearsal => "rehearsal",
        }
    }
}

/// One hop of a campaign: every member moves one generation, and the stage commits or is undone
/// as a whole.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Stage {
    /// The primary member's image before and after the stage.
    pub from: String,
    pub to: String,
    pub steps: Vec<Step>,
}

/// The product profile a plan follows, and why, for people and the journal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProfileUse {
    pub name: String,
    /// `built-in`, or the file it came from.
    pub origin: String,
    pub why: String,
}

/// A plan and what it was computed from, as the journal's first record keeps it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Plan {
    pub kind: Kind,
    /// The primary member's name: the container the command was given.
    pub container: String,
    /// Every member, the primary first, in the order their containers stop.
    pub members: Vec<String>,
    pub image_from: String,
    pub image_to: String,
    pub slots: BTreeMap<Slot, SlotInfo>,
    pub stages: Vec<Stage>,
    /// The configuration carried to each member's successor, secrets masked: what `--dry-run`
    /// shows.
    pub carried: serde_json::Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<ProfileUse>,
    /// The profile task a [`Kind::Task`] plan runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<String>,
    /// What people must know before they say yes and do after: the follow-ups the vendor lists
    /// for these versions, which cutover cannot do.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

impl Plan {
    /// A slot as people read it: `web (demo:2)`.
    pub fn label(&self, slot: &Slot) -> String {
        match self.slots.get(slot) {
            Some(info) => format!("{} ({})", slot.member, short_image(&info.image)),
            None => slot.to_string(),
        }
    }

    /// The image of a slot as people read it (`demo:2`), empty for an unknown slot.
    pub fn image_of(&self, slot: &Slot) -> &str {
        self.slots
            .get(slot)
            .map(|s| short_image(&s.image))
            .unwrap_or_default()
    }

    /// The ids known before the run: the containers that already exist.
    pub fn known_ids(&self) -> BTreeMap<Slot, String> {
        self.slots
            .iter()
            .filter_map(|(s, i)| i.id.clone().map(|id| (s.clone(), id)))
            .collect()
    }

    pub fn involves(&self, name: &str) -> bool {
        self.members.iter().any(|m| m == name)
    }

    /// The image the primary member runs after `stages_done` stages.
    pub fn image_after(&self, stages_done: usize) -> &str {
        match stages_done {
            0 => &self.image_from,
            n => &self.stages[n - 1].to,
        }
    }

    /// Whether the containers the last stage replaced are removed, rather than kept as `-old`.
    pub fn removes_old(&self) -> bool {
        self.stages
            .last()
            .is_some_and(|s| s.steps.iter().any(|step| step.name() == "remove"))
    }

    /// Whether the plan moves a Swarm service, whose tasks are its manager's, not containers of
    /// the plan's.
    pub fn moves_a_service(&self) -> bool {
        self.stages
            .iter()
            .flat_map(|s| &s.steps)
            .any(|step| matches!(step, Step::ServiceUpdate(_)))
    }

    pub fn step_count(&self) -> usize {
        self.stages.iter().map(|s| s.steps.len()).sum()
    }

    /// Places a cluster's gate in the first stage (see [`steps::gate`]): the first node's just
    /// before it stops a serving container, another node's just after its last stop.
    pub fn gate(&mut self, gate: steps::Gate) {
        let first = gate.node == gate.first;
        let Some(stage) = self.stages.first_mut() else {
            return;
        };
        let stops: Vec<usize> = stage
            .steps
            .iter()
            .enumerate()
            .filter(|(_, s)| s.traits().starts_downtime)
            .map(|(i, _)| i)
            .collect();
        let at = match first {
            true => stops.first().copied(),
            false => stops.last().map(|i| i + 1),
        };
        stage
            .steps
            .insert(at.unwrap_or(stage.steps.len()), gate.into());
    }
}

/// The last path component of an image reference: `demo:2` for `127.0.0.1:5000/demo:2`.
pub fn short_image(image: &str) -> &str {
    image.rsplit('/').next().unwrap_or(image)
}

pub fn old_name(name: &str) -> String {
    format!("{name}-old")
}

pub fn new_name(name: &str) -> String {
    format!("{name}-new")
}

pub fn failed_name(name: &str) -> String {
    format!("{name}-failed")
}

/// The one-shot container of a migration.
pub fn migrate_name(name: &str) -> String {
    format!("{name}-migrate")
}

/// Names cutover gives containers it keeps aside; no service is upgraded under one of them.
pub fn is_reserved_name(name: &str) -> bool {
    [
        "-old",
        "-new",
        "-failed",
        "-migrate",
        "-cutover-task",
        "-cutover-task-undo",
        "-cutover-rehearse-app",
        "-cutover-rehearse-db",
        "-cutover-rehearse-migrate",
        crate::engine::claim::SUFFIX,
    ]
    .iter()
    .any(|s| name.ends_with(s))
}

#[cfg(test)]
mod tests;
