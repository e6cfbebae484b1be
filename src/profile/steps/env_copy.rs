//! `env_copy`: a variable the new version reads under another name (DevLake's `ENCODE_KEY`,
//! `ENCRYPTION_SECRET` from 0.18).

use serde::{Deserialize, Serialize};

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
}

impl Plans for EnvCopy {
    fn files(&self) -> Vec<String> {
        self.files.clone()
    }

    fn plan(&self, facts: &Facts, hop: &mut HopSteps) -> Result<(), String> {
        let (name, new, files) = (&self.from, &self.to, &self.files);
        match facts.value(name, files) {
            Some(value) => {
                hop.stage.env.set.push((new.clone(), value));
                if self.remove_from {
                    hop.stage.env.unset.push(name.clone());
                }
            }
            None if facts.value(new, files).is_some() => {}
            None => hop.refuse(format!(
                "the container has neither {name} nor {new} (in its environment or {}); the new version needs {new} set to the key the data was encrypted with",
                if files.is_empty() { "its files".to_string() } else { files.join(", ") }
            )),
        }
        Ok(())
    }
}
