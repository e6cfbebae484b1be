//! `carry_file`: a file on no volume, carried from the old container to its successor, as
//! `--carry-file` gives one.

use serde::{Deserialize, Serialize};

use super::ApplyError;
use super::{HopSteps, Plans};
use crate::engine::facts::Facts;
use crate::plan::build::CarriedPath;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CarryFileSpec {
    pub path: String,
    #[serde(default)]
    pub optional: bool,
}

impl Plans for CarryFileSpec {
    fn check(&self, _secrets: &[String]) -> Result<(), (&'static str, String)> {
        match self.path.starts_with('/') {
            true => Ok(()),
            false => Err(("path", format!("{:?} is not an absolute path", self.path))),
        }
    }

    fn plan(&self, _facts: &Facts, hop: &mut HopSteps) -> Result<(), ApplyError> {
        hop.stage.carry.push(CarriedPath {
            path: self.path.clone(),
            optional: self.optional,
            by_profile: true,
        });
        Ok(())
    }
}
