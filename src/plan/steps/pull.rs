//! Pulling the target image, before anything else: a missing tag, a registry that is down or bad
//! credentials fail here, with no downtime.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::{Action, Cx, Done, StepError, Traits};
use crate::engine::reference::ImageRef;
use crate::plan::Plan;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Pull {
    pub image: String,
}

#[async_trait]
impl Action for Pull {
    fn describe(&self, _plan: &Plan) -> String {
        format!("pull {}", self.image)
    }

    fn traits(&self) -> Traits {
        Traits {
            interruptible: true,
            ..Traits::default()
        }
    }

    async fn perform(&self, cx: &Cx<'_>) -> Result<Done, StepError> {
        let reference = ImageRef::parse(&self.image).ok_or_else(|| {
            StepError::Failed(format!("{} is not an image reference", self.image))
        })?;
        cx.engine.pull(&reference, cx.progress).await?;
        Ok(Done::default())
    }
}
