//! `refuse`: a hop the vendor's procedure gives to a person (Quay into 3.0).

use serde::{Deserialize, Serialize};

use super::ApplyError;
use super::{HopSteps, Plans};
use crate::engine::facts::Facts;

/// Refuses the hop before any downtime, saying why and what to do instead.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Refuse {
    pub why: String,
}

impl Plans for Refuse {
    fn plan(&self, _facts: &Facts, hop: &mut HopSteps) -> Result<(), ApplyError> {
        hop.refuse(self.why.clone());
        Ok(())
    }
}
