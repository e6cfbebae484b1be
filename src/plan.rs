//! An upgrade or rollback as a list of steps, each with its undo.
//!
//! Plans are computed by pure functions from what the engine reported, so unit tests can
//! snapshot them and `--dry-run` can print exactly what would run. The executor runs them and
//! journals every step, which is what lets `cutover recover` undo a run that was killed.

use serde::{Deserialize, Serialize};

use crate::health::HealthPolicy;
use crate::recreate::{self, Predecessor, SuccessorSpec};
use crate::reference::ImageRef;

/// Which container a step acts on. Ids are resolved when the plan runs: the incoming
/// container of an upgrade does not exist until its `Create` step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// The container serving under the name now, which the run replaces.
    Outgoing,
    /// The container that will serve under the name when the run succeeds.
    Incoming,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum Step {
    Pull { image: String },
    /// Creates the incoming container under a temporary name and connects its other networks;
    /// the request itself carries secrets and is never journaled.
    Create {
        name: String,
        #[serde(skip)]
        spec: Box<SuccessorSpec>,
    },
    /// Compares the created container with the old one, before any downtime.
    Verify,
    Stop { who: Role, timeout_secs: Option<i64> },
    Rename { who: Role, from: String, to: String },
    Start { who: Role },
    AwaitHealthy { who: Role, policy: HealthPolicy },
    /// Removes the outgoing container once the incoming one is healthy; the point of no return.
    Remove { who: Role },
}

impl Step {
    /// What puts the host back as it was before this step began. Every undo is idempotent, so
    /// recovery can apply it to a step that may or may not have completed.
    pub fn undo(&self) -> Option<Step> {
        match self {
            Step::Create { .. } => Some(Step::Remove { who: Role::Incoming }),
            Step::Stop { who, .. } => Some(Step::Start { who: *who }),
            Step::Rename { who, from, to } => {
                Some(Step::Rename { who: *who, from: to.clone(), to: from.clone() })
            }
            Step::Start { who } => Some(Step::Stop { who: *who, timeout_secs: None }),
            Step::Pull { .. } | Step::Verify | Step::AwaitHealthy { .. } | Step::Remove { .. } => {
                None
            }
        }
    }

    /// Steps after the service is confirmed healthy: their failure is reported but does not
    /// roll a healthy service back.
    pub fn is_cleanup(&self) -> bool {
        matches!(self, Step::Remove { .. })
    }

    /// A short description for people, free of secrets.
    pub fn describe(&self) -> String {
        match self {
            Step::Pull { image } => format!("pull {image}"),
            Step::Create { name, spec } => {
                let networks = spec.extra_networks.len();
                if networks == 0 {
                    format!("create {name} with the old container's configuration")
                } else {
                    format!("create {name} with the old container's configuration and connect {networks} more network(s)")
                }
            }
            Step::Verify => "compare the new container's configuration with the old one".into(),
            Step::Stop { who, timeout_secs } => match timeout_secs {
                Some(t) => format!("stop the {} container (grace period {t}s)", who.label()),
                None => format!("stop the {} container", who.label()),
            },
            Step::Rename { from, to, .. } => format!("rename {from} to {to}"),
            Step::Start { who } => format!("start the {} container", who.label()),
            Step::AwaitHealthy { who, policy } => {
                format!("wait until the {} container is healthy: {}", who.label(), policy.describe())
            }
            Step::Remove { who } => format!("remove the {} container", who.label()),
        }
    }

    /// The step's name in reports and the journal.
    pub fn name(&self) -> &'static str {
        match self {
            Step::Pull { .. } => "pull",
            Step::Create { .. } => "create",
            Step::Verify => "verify",
            Step::Stop { .. } => "stop",
            Step::Rename { .. } => "rename",
            Step::Start { .. } => "start",
            Step::AwaitHealthy { .. } => "await_healthy",
            Step::Remove { .. } => "remove",
        }
    }
}

impl Role {
    fn label(self) -> &'static str {
        match self {
            Role::Outgoing => "old",
            Role::Incoming => "new",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Upgrade,
    Rollback,
}

/// A plan and what it was computed from, as the journal's first record keeps it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Plan {
    pub kind: Kind,
    /// The container's name, which the service keeps across the run.
    pub container: String,
    pub outgoing_id: String,
    /// Known before the run for a rollback (the kept `-old` container); found by the `Create`
    /// step for an upgrade.
    pub incoming_id: Option<String>,
    pub image_from: String,
    pub image_to: String,
    pub steps: Vec<Step>,
    /// The carried configuration, secrets masked: what `--dry-run` shows.
    pub carried: serde_json::Value,
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

pub struct UpgradeOptions {
    pub target: ImageRef,
    pub keep_old: bool,
    pub health: HealthPolicy,
}

/// The upgrade of a running container to `target`.
///
/// The successor is created and verified under a temporary name while the old container still
/// serves, so a setting the engine would not carry aborts the upgrade with no downtime at all;
/// downtime runs only from `Stop` to `AwaitHealthy`.
pub fn plan_upgrade(old: &Predecessor<'_>, name: &str, opts: &UpgradeOptions) -> Plan {
    let inspect = old.inspect;
    let image_to = opts.target.to_string();
    let spec = recreate::successor_spec(old, &image_to);
    let carried = recreate::masked(&spec);
    let stop_timeout = inspect.config.as_ref().and_then(|c| c.stop_timeout);
    let mut steps = vec![
        Step::Pull { image: image_to.clone() },
        Step::Create { name: new_name(name), spec: Box::new(spec) },
        Step::Verify,
        Step::Stop { who: Role::Outgoing, timeout_secs: stop_timeout },
        Step::Rename { who: Role::Outgoing, from: name.to_string(), to: old_name(name) },
        Step::Rename { who: Role::Incoming, from: new_name(name), to: name.to_string() },
        Step::Start { who: Role::Incoming },
        Step::AwaitHealthy { who: Role::Incoming, policy: opts.health.clone() },
    ];
    if !opts.keep_old {
        steps.push(Step::Remove { who: Role::Outgoing });
    }
    Plan {
        kind: Kind::Upgrade,
        container: name.to_string(),
        outgoing_id: inspect.id.clone().unwrap_or_default(),
        incoming_id: None,
        image_from: inspect.config.as_ref().and_then(|c| c.image.clone()).unwrap_or_default(),
        image_to,
        steps,
        carried,
    }
}

/// Going back to the `-old` container kept by `upgrade --keep-old`. The current container is
/// stopped and kept aside as `NAME-failed`, so its logs and any data only it holds survive.
pub fn plan_rollback(
    name: &str,
    current: &bollard::models::ContainerInspectResponse,
    previous: &bollard::models::ContainerInspectResponse,
    health: HealthPolicy,
) -> Plan {
    let image = |c: &bollard::models::ContainerInspectResponse| {
        c.config.as_ref().and_then(|c| c.image.clone()).unwrap_or_default()
    };
    let steps = vec![
        Step::Stop {
            who: Role::Outgoing,
            timeout_secs: current.config.as_ref().and_then(|c| c.stop_timeout),
        },
        Step::Rename { who: Role::Outgoing, from: name.to_string(), to: failed_name(name) },
        Step::Rename { who: Role::Incoming, from: old_name(name), to: name.to_string() },
        Step::Start { who: Role::Incoming },
        Step::AwaitHealthy { who: Role::Incoming, policy: health },
    ];
    Plan {
        kind: Kind::Rollback,
        container: name.to_string(),
        outgoing_id: current.id.clone().unwrap_or_default(),
        incoming_id: previous.id.clone(),
        image_from: image(current),
        image_to: image(previous),
        steps,
        carried: serde_json::Value::Null,
    }
}

#[cfg(test)]
mod tests;
