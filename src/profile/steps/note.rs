//! `note`: a follow-up the vendor lists for the hop, which cutover cannot do (ProGet's retention
//! rules after 2022): shown with the plan and in the report.

use serde::{Deserialize, Serialize};

use super::ApplyError;
use super::{HopSteps, Plans};
use crate::engine::facts::Facts;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Note {
    pub text: String,
}

impl Plans for Note {
    fn plan(&self, _facts: &Facts, hop: &mut HopSteps) -> Result<(), ApplyError> {
        hop.stage.notes.push(self.text.clone());
        Ok(())
    }
}
