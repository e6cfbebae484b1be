//! A hook: a command run inside a running container, before the old one stops (a failure
//! aborts with no downtime) or after the new one is healthy (a failure rolls back).

use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::{bounded, finished, shown, Action, Cx, Done, StepError, Transcript};
use crate::plan::{Plan, Slot};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Hook {
    Before,
    After,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Exec {
    pub slot: Slot,
    pub hook: Hook,
    #[serde(serialize_with = "crate::secrets::shown_words")]
    pub command: Vec<String>,
    #[serde(with = "crate::clock::duration_ms")]
    pub timeout: Duration,
}

impl Exec {
    /// How long a hook may run when nobody said: a hook before the downtime holds up nothing,
    /// and one after it holds the rollback back, so minutes, not the hour of a migration.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);
}

#[async_trait]
impl Action for Exec {
    fn describe(&self, plan: &Plan) -> String {
        format!(
            "run `{}` inside {} (must exit 0 within {})",
            shown(&self.command),
            plan.label(&self.slot),
            humantime::format_duration(self.timeout)
        )
    }

    async fn perform(&self, cx: &Cx<'_>) -> Result<Done, StepError> {
        let id = cx.id(&self.slot)?;
        let mut transcript = Transcript::new(match self.hook {
            Hook::Before => "exec-before",
            Hook::After => "exec-after",
        });
        let code = bounded(
            self.timeout,
            cx.engine
                .exec(id, &self.command, &mut |line| transcript.line(line)),
        )
        .await?;
        finished(
            &self.command,
            code,
            self.timeout,
            &transcript,
            "it may still run inside the container",
        )
    }
}
