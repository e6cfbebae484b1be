//! `env_copy`: a variable the new version reads under another name (DevLake's `ENCODE_KEY`,
//! `ENCRYPTION_SECRET` from 0.18).

use serde::{Deserialize, Serialize};

use super::ApplyError;
use super::{HopSteps, Plans};
use crate::engine::facts::Facts;

/// Sets `to` in the new container to the value of `from`, read from the container's environment
/// or else from the dotenv `files`; `remove_from` also removes `from`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvCopy {
    pub from: String,
    pub to: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<String>,
    #[serde(default)]
    pub remove_from: bool,
    /// A new name for a setting the container may not use at all (ProGet's connection string
    /// from 6.0): `to` is set only where the container lacks it and has `from`; neither is no
    /// refusal, and a `to` already set is left as it is.
    #[serde(default)]
    pub if_missing: bool,
}

impl Plans for EnvCopy {
    fn files(&self) -> Vec<String> {
        self.files.clone()
    }

    fn plan(&self, facts: &Facts, hop: &mut HopSteps) -> Result<(), ApplyError> {
        let (name, new, files) = (&self.from, &self.to, &self.files);
        if self.if_missing && facts.value(new, files).is_some() {
            return Ok(());
        }
        match facts.value(name, files) {
            Some(value) => {
                hop.stage.env.set.push((new.clone(), value));
                if self.remove_from {
                    hop.stage.env.unset.push(name.clone());
                }
            }
            None if self.if_missing || facts.value(new, files).is_some() => {}
            None => hop.refuse(format!(
                "the container has neither {name} nor {new} (in its environment or {}); the new version needs {new} set to the key the data was encrypted with",
                if files.is_empty() { "its files".to_string() } else { files.join(", ") }
            )),
        }
        Ok(())
    }
}
