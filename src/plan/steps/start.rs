//! Starting a container.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::{Action, Cx, Done, Outputs, StepError, Traits};
use crate::plan::{Plan, Slot};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Start {
    pub slot: Slot,
    /// A successor's first start: it may migrate the data, and once every successor of a stage
    /// was started, recovery finishes the stage instead of undoing it.
    pub successor: bool,
    /// The product upgrades its data as this start begins (its profile says so).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub migrates: bool,
}

#[async_trait]
impl Action for Start {
    fn describe(&self, plan: &Plan) -> String {
        let migrates = match self.migrates {
            true => " (it upgrades its database as it starts)",
            false => "",
        };
        format!("start {}{migrates}", plan.label(&self.slot))
    }

    fn traits(&self) -> Traits {
        Traits {
            runs_app: self.successor,
            writes_data: self.successor,
            migrates: self.migrates,
            ..Traits::default()
        }
    }

    async fn perform(&self, cx: &Cx<'_>) -> Result<Done, StepError> {
        cx.engine.start(cx.id(&self.slot)?).await?;
        Ok(Done::default())
    }

    fn undo_describe(&self, plan: &Plan) -> Option<String> {
        Some(format!("stop {}", plan.label(&self.slot)))
    }

    async fn undo(
        &self,
        cx: &Cx<'_>,
        _outputs: Option<&Outputs>,
    ) -> Result<Option<String>, StepError> {
        cx.engine.stop(cx.id(&self.slot)?, None).await?;
        Ok(None)
    }
}
