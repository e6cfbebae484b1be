//! `migrate`: a one-shot command from the new image while the service is stopped, as
//! `--migrate` gives one.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::ApplyError;
use super::{check_timeout, timeout_or, HopSteps, Plans};
use crate::engine::facts::Facts;
use crate::plan::build::Migration;
use crate::template;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Migrate {
    /// Words of the command; `${VAR}` and `${VAR:-default}` come from the container's
    /// environment.
    pub command: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    /// Variables set in the one-shot container only, over the service's own; `${VAR}` and
    /// `${VAR:-default}` come from the container's environment. A secret the command needs goes
    /// here, never into its words (see [`template::check`]).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
    /// Output that means the command did nothing although it exited 0.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fails_if_output_has: Vec<String>,
}

impl Plans for Migrate {
    fn check(&self, secrets: &[String]) -> Result<(), (&'static str, String)> {
        if self.command.is_empty() {
            return Err(("command", "command is empty".into()));
        }
        check_timeout(&self.timeout)?;
        for word in &self.command {
            template::check(word, secrets).map_err(|e| ("command", e.to_string()))?;
        }
        for value in self.env.values() {
            template::check_value(value).map_err(|e| ("env", e.to_string()))?;
        }
        Ok(())
    }

    fn files(&self) -> Vec<String> {
        template::condition_files(&self.command)
    }

    fn plan(&self, facts: &Facts, hop: &mut HopSteps) -> Result<(), ApplyError> {
        let command = template::expand_command(&self.command, facts)?;
        hop.stage.migrate = Some(Migration {
            shown: (command != self.command).then(|| self.command.clone()),
            env: self
                .env
                .iter()
                .map(|(k, v)| Ok((k.clone(), template::expand(v, &facts.env)?)))
                .collect::<Result<_, crate::template::TemplateError>>()?,
            command,
            entrypoint: self.entrypoint.clone(),
            timeout: timeout_or(&self.timeout, Migration::DEFAULT_TIMEOUT)?,
            fails_if_output_has: self.fails_if_output_has.clone(),
        });
        Ok(())
    }
}
