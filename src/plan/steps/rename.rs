//! Renaming a container, so that the service's name moves from the old container to the new.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::{Action, Cx, Done, Outputs, StepError};
use crate::plan::{Plan, Slot};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Rename {
    pub slot: Slot,
    pub from: String,
    pub to: String,
}

#[async_trait]
impl Action for Rename {
    fn describe(&self, _plan: &Plan) -> String {
        format!("rename {} to {}", self.from, self.to)
    }

    async fn perform(&self, cx: &Cx<'_>) -> Result<Done, StepError> {
        cx.engine.rename(cx.id(&self.slot)?, &self.to).await?;
        Ok(Done::default())
    }

    fn undo_describe(&self, _plan: &Plan) -> Option<String> {
        Some(format!("rename {} to {}", self.to, self.from))
    }

    async fn undo(
        &self,
        cx: &Cx<'_>,
        _outputs: Option<&Outputs>,
    ) -> Result<Option<String>, StepError> {
        cx.engine.rename(cx.id(&self.slot)?, &self.from).await?;
        Ok(None)
    }
}
