//! Comparing the created successor with what was carried, before any downtime: the cheapest
//! insurance against a setting the engine silently dropped.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::{Action, Cx, Done, StepError};
use crate::engine::inspect_required;
use crate::engine::successor::{self, Difference, SuccessorSpec};
use crate::plan::{Plan, Slot};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Verify {
    pub slot: Slot,
    pub source: Slot,
    /// What was asked of the engine; never journaled, like the create request.
    #[serde(skip)]
    pub expected: Box<SuccessorSpec>,
    /// Variables the run removed or renamed away, which must not reach the successor unless its
    /// image sets them by default.
    pub removed_env: Vec<String>,
}

#[async_trait]
impl Action for Verify {
    fn describe(&self, plan: &Plan) -> String {
        format!(
            "check that {} carries every setting of {}",
            plan.label(&self.slot),
            plan.label(&self.source)
        )
    }

    async fn perform(&self, cx: &Cx<'_>) -> Result<Done, StepError> {
        let created = inspect_required(cx.engine, cx.id(&self.slot)?).await?;
        let expected = self.expected.with_source(cx.id(&self.source)?);
        let mut diffs = successor::verify(&expected, &created);
        if !self.removed_env.is_empty() {
            let image = created.image().to_string();
            let defaults = cx
                .engine
                .image(&image)
                .await?
                .map(|i| i.env())
                .unwrap_or_default();
            let env = created.env().to_vec();
            for name in &self.removed_env {
                let set = env
                    .iter()
                    .find(|e| e.split_once('=').is_some_and(|(n, _)| n == name));
                if let Some(entry) = set.filter(|e| !defaults.contains(e)) {
                    diffs.push(Difference {
                        path: format!("Config.Env.{name}"),
                        expected: "unset".into(),
                        actual: crate::secrets::mask_env_entry(entry),
                    });
                }
            }
        }
        if diffs.is_empty() {
            return Ok(Done::said("every setting is carried"));
        }
        let list: Vec<String> = diffs.iter().map(ToString::to_string).collect();
        Err(StepError::Failed(format!(
            "the new container does not carry every setting of the old one: {}",
            list.join("; ")
        )))
    }
}
