//! `call`: an HTTP call the new version waits for after it starts (DevLake's
//! `/proceed-db-migration`).

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{check_timeout, timeout_or, HopSteps, Plans};
use crate::engine::facts::Facts;
use crate::plan::build::Migration;
use crate::plan::steps;

/// How long a call may keep calling when its profile does not say: as long as a migration may
/// run, since that is what it waits for.
const DEFAULT_TIMEOUT: Duration = Migration::DEFAULT_TIMEOUT;

/// After each new container starts: while `while_path` answers `while_status`, call `path`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Call {
    pub port: u16,
    pub path: String,
    pub while_path: String,
    pub while_status: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
}

impl Plans for Call {
    fn check(&self, _secrets: &[String]) -> Result<(), (&'static str, String)> {
        check_timeout(&self.timeout)
    }

    fn plan(&self, _facts: &Facts, hop: &mut HopSteps) -> Result<(), String> {
        hop.stage.parts.push(Arc::new(steps::Call {
            port: self.port,
            path: self.path.clone(),
            while_path: self.while_path.clone(),
            while_status: self.while_status,
            timeout: timeout_or(&self.timeout, DEFAULT_TIMEOUT)?,
        }));
        Ok(())
    }
}
