//! `call`: an HTTP call the new version waits for after it starts (DevLake's
//! `/proceed-db-migration`).

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::ApplyError;
use super::{check_timeout, timeout_or, HopSteps, Plans};
use crate::engine::facts::Facts;
use crate::plan::build::Migration;
use crate::plan::steps;
use crate::profile::EnvIs;

/// How long a call may keep calling when its profile does not say: as long as a migration may
/// run, since that is what it waits for.
const DEFAULT_TIMEOUT: Duration = Migration::DEFAULT_TIMEOUT;

/// After each new container starts: while `while_path` answers `while_status`, call `path`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallSpec {
    pub port: u16,
    pub path: String,
    pub while_path: String,
    pub while_status: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
    /// Another `while_path` and `while_status` when a setting of the container closes the first
    /// (DevLake's login gate).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub while_when: Option<WhileWhen>,
}

/// `while_path` and `while_status` instead, when `env` holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WhileWhen {
    pub env: EnvIs,
    pub while_path: String,
    pub while_status: u16,
}

impl Plans for CallSpec {
    fn check(&self, _secrets: &[String]) -> Result<(), (&'static str, String)> {
        check_timeout(&self.timeout)
    }

    fn files(&self) -> Vec<String> {
        self.while_when
            .iter()
            .flat_map(|w| w.env.files.clone())
            .collect()
    }

    fn plan(&self, facts: &Facts, hop: &mut HopSteps) -> Result<(), ApplyError> {
        let (while_path, while_status) =
            match self.while_when.as_ref().filter(|w| w.env.holds(facts)) {
                Some(w) => (w.while_path.clone(), w.while_status),
                None => (self.while_path.clone(), self.while_status),
            };
        hop.stage.parts.push(Arc::new(steps::Call {
            port: self.port,
            path: self.path.clone(),
            while_path,
            while_status,
            timeout: timeout_or(&self.timeout, DEFAULT_TIMEOUT)?,
        }));
        Ok(())
    }
}
