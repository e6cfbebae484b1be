//! Stopping a container with its own stop signal and grace period.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::{Action, Cx, Done, Outputs, StepError, Traits};
use crate::plan::{Plan, Slot};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Stop {
    pub slot: Slot,
    /// The container's own `--stop-timeout`, or the engine's default.
    pub timeout_secs: Option<i64>,
    /// Whether this stop takes the service down (the old version of an upgrade), as opposed to
    /// stopping a container that is not serving.
    pub serving: bool,
}

#[async_trait]
impl Action for Stop {
    fn describe(&self, plan: &Plan) -> String {
        match self.timeout_secs {
            Some(t) => format!("stop {} (grace period {t}s)", plan.label(&self.slot)),
            None => format!("stop {}", plan.label(&self.slot)),
        }
    }

    fn traits(&self) -> Traits {
        Traits {
            starts_downtime: self.serving,
            ..Traits::default()
        }
    }

    async fn perform(&self, cx: &Cx<'_>) -> Result<Done, StepError> {
        cx.engine
            .stop(cx.id(&self.slot)?, self.timeout_secs)
            .await?;
        Ok(Done::default())
    }

    fn undo_describe(&self, plan: &Plan) -> Option<String> {
        Some(format!("start {}", plan.label(&self.slot)))
    }

    async fn undo(
        &self,
        cx: &Cx<'_>,
        _outputs: Option<&Outputs>,
    ) -> Result<Option<String>, StepError> {
        cx.engine.start(cx.id(&self.slot)?).await?;
        Ok(None)
    }
}
