//! `require_env`: a variable without which an upgrade loses data (a key that decrypts what the
//! product stored).

use serde::{Deserialize, Serialize};

use super::ApplyError;
use super::{HopSteps, Plans};
use crate::engine::facts::Facts;

/// Refuses before any downtime unless one of the variables is set (in the environment or a
/// dotenv file).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequireEnv {
    pub any_of: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<String>,
    pub why: String,
}

impl Plans for RequireEnv {
    fn files(&self) -> Vec<String> {
        self.files.clone()
    }

    fn plan(&self, facts: &Facts, hop: &mut HopSteps) -> Result<(), ApplyError> {
        if !self
            .any_of
            .iter()
            .any(|name| facts.value(name, &self.files).is_some())
        {
            hop.refuse(format!(
                "the container has none of {} set: {}",
                self.any_of.join(", "),
                self.why
            ));
        }
        Ok(())
    }
}
