//! Creating a successor under a temporary name, with the whole configuration of the container
//! it replaces, while that one still serves: a setting the engine would not take fails here,
//! with no downtime.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::{Action, Cx, Done, Outputs, StepError};
use crate::engine::short;
use crate::engine::successor::SuccessorSpec;
use crate::plan::{Plan, Slot};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Create {
    /// The successor this creates.
    pub slot: Slot,
    /// The container it replaces and borrows the volumes of.
    pub source: Slot,
    pub name: String,
    /// The create request carries secrets and is never journaled: a created container is
    /// never created again by recovery, only removed.
    #[serde(skip)]
    pub spec: Box<SuccessorSpec>,
}

#[async_trait]
impl Action for Create {
    fn describe(&self, plan: &Plan) -> String {
        let image = plan.image_of(&self.slot);
        let networks = match self.spec.extra_networks() {
            0 => String::new(),
            n => format!(" and connect {n} more network(s)"),
        };
        format!(
            "create {} ({image}) with the configuration of {}{networks}",
            self.name,
            plan.label(&self.source)
        )
    }

    async fn perform(&self, cx: &Cx<'_>) -> Result<Done, StepError> {
        let spec = self.spec.with_source(cx.id(&self.source)?);
        let id = cx.engine.create_successor(&self.name, &spec).await?;
        Ok(Done {
            detail: Some(format!("created {} ({})", self.name, short(&id))),
            outputs: Outputs {
                bind: Some((self.slot.clone(), id)),
                ..Outputs::default()
            },
            ..Done::default()
        })
    }

    fn undo_describe(&self, _plan: &Plan) -> Option<String> {
        Some(format!("remove {}", self.name))
    }

    async fn undo(
        &self,
        cx: &Cx<'_>,
        outputs: Option<&Outputs>,
    ) -> Result<Option<String>, StepError> {
        let id = match outputs.and_then(|o| o.bind.as_ref()) {
            Some((_, id)) => Some(id.clone()),
            // Killed between the create and its journal record: it is under the temporary name.
            None => cx.stray(&self.name).await?,
        };
        if let Some(id) = id {
            cx.engine.remove(&id).await?;
        }
        Ok(None)
    }
}
