//! Removing the container a stage replaced, once its successor is healthy: the point of no
//! return, so a failure here is reported and never rolls a healthy service back.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::{Action, Cx, Done, StepError, Traits};
use crate::plan::{Plan, Slot};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Remove {
    pub slot: Slot,
    /// The name the container has by then.
    pub name: String,
}

#[async_trait]
impl Action for Remove {
    fn describe(&self, plan: &Plan) -> String {
        let image = plan.image_of(&self.slot);
        format!("remove {} ({image}), keeping its volumes", self.name)
    }

    fn traits(&self) -> Traits {
        Traits {
            cleanup: true,
            ..Traits::default()
        }
    }

    async fn perform(&self, cx: &Cx<'_>) -> Result<Done, StepError> {
        cx.engine.remove(cx.id(&self.slot)?).await?;
        Ok(Done::default())
    }
}
