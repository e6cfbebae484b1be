//! `exec`: a command run inside the named container, as `--exec-before`/`--exec-after` give one:
//! in the old one while it still serves (a failure stops the upgrade with no downtime), or in
//! the new one once the group serves (a failure rolls back). For an operator's own profile: a
//! product's maintenance switch, a cache to warm.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::ApplyError;
use super::{check_timeout, timeout_or, HopSteps, Plans};
use crate::engine::facts::Facts;
use crate::plan::part::{OnAService, Part, Phase, Place};
use crate::plan::steps::{self, Hook};
use crate::plan::Step;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecSpec {
    /// Words run as they are, no shell: `[sh, -c, "..."]` for one, which also reads the
    /// container's own variables, so no secret passes through cutover.
    pub command: Vec<String>,
    /// `old` or `new`.
    #[serde(rename = "in")]
    pub container: Which,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Which {
    Old,
    New,
}

impl Plans for ExecSpec {
    fn check(&self, _secrets: &[String]) -> Result<(), (&'static str, String)> {
        if self.command.is_empty() {
            return Err(("command", "command is empty".into()));
        }
        check_timeout(&self.timeout)
    }

    fn plan(&self, _facts: &Facts, hop: &mut HopSteps) -> Result<(), ApplyError> {
        hop.stage.parts.push(Arc::new(Placed {
            hook: match self.container {
                Which::Old => Hook::Before,
                Which::New => Hook::After,
            },
            command: self.command.clone(),
            timeout: timeout_or(&self.timeout, steps::Exec::DEFAULT_TIMEOUT)?,
        }));
        Ok(())
    }
}

/// The command placed in the hop, once, on the named container.
#[derive(Debug)]
struct Placed {
    hook: Hook,
    command: Vec<String>,
    timeout: std::time::Duration,
}

impl Part for Placed {
    fn kind(&self) -> &'static str {
        "exec"
    }

    /// Swarm replaces a service's tasks itself: there is no old task kept serving to run a
    /// command in before the swap, nor one new task chosen to run it in after.
    fn on_a_service(&self) -> OnAService<'_> {
        OnAService::Refused(
            "it runs a command inside the product's container, which is not done in a Swarm task",
        )
    }

    fn phase(&self) -> Phase {
        match self.hook {
            Hook::Before => Phase::BeforeDowntime,
            Hook::After => Phase::AfterHealthy,
        }
    }

    fn steps(&self, at: &Place) -> Vec<Step> {
        if !at.primary {
            return Vec::new();
        }
        let slot = match self.hook {
            Hook::Before => at.old.clone(),
            Hook::After => at.new.clone(),
        };
        vec![steps::Exec {
            slot,
            hook: self.hook,
            command: self.command.clone(),
            timeout: self.timeout,
        }
        .into()]
    }
}
