//! Putting a backup back into the stopped application: `cutover restore`, and a rollback to a
//! version whose data a migration changed. It is undone by the backup of the current data that
//! the plan takes before it.

use std::path::PathBuf;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::{Action, Cx, Done, StepError, Traits};
use crate::backup;
use crate::engine::inspect_required;
use crate::plan::{Plan, Slot};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Restore {
    /// The stopped container whose data is replaced.
    pub slot: Slot,
    pub backup: PathBuf,
}

#[async_trait]
impl Action for Restore {
    fn describe(&self, plan: &Plan) -> String {
        format!(
            "restore the data of {} from the backup in {}",
            plan.label(&self.slot),
            self.backup.display()
        )
    }

    fn traits(&self) -> Traits {
        Traits {
            writes_data: true,
            ..Traits::default()
        }
    }

    async fn perform(&self, cx: &Cx<'_>) -> Result<Done, StepError> {
        let app = inspect_required(cx.engine, cx.id(&self.slot)?).await?;
        let manifest = backup::restore(cx.engine, backup::App::of(&app), &self.backup)
            .await
            .map_err(|e| StepError::Failed(crate::secrets::redact(&e.to_string())))?;
        Ok(Done::said(format!(
            "restored {} from backup {}",
            manifest.target.describe(),
            manifest.id
        )))
    }
}
