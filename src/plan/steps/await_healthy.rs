//! Waiting until a started container passes its health checks; downtime ends when it first
//! does.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::{Action, Cx, Done, Outputs, StepError, Traits, Transcript};
use crate::clock;
use crate::health::{self, HealthError, HealthPolicy};
use crate::plan::{Plan, Slot};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AwaitHealthy {
    pub slot: Slot,
    pub policy: HealthPolicy,
}

#[async_trait]
impl Action for AwaitHealthy {
    fn describe(&self, plan: &Plan) -> String {
        format!(
            "wait until {} is healthy: {}",
            plan.label(&self.slot),
            self.policy.describe()
        )
    }

    fn traits(&self) -> Traits {
        Traits {
            proves_serving: true,
            ..Traits::default()
        }
    }

    async fn perform(&self, cx: &Cx<'_>) -> Result<Done, StepError> {
        let id = cx.id(&self.slot)?;
        let verdict = match health::await_healthy(cx.engine, id, &self.policy).await {
            Ok(verdict) => verdict,
            // What it printed before it exited says why; the rollback removes it, and its logs.
            Err(e @ HealthError::Exited { .. }) => {
                let mut transcript = Transcript::new(&self.slot.member);
                cx.engine
                    .follow_to_exit(id, &mut |line| transcript.line(line))
                    .await?;
                return Err(StepError::Failed(format!(
                    "{e}; {}",
                    transcript.tail_text()
                )));
            }
            Err(e) => return Err(e.into()),
        };
        Ok(Done {
            detail: Some(verdict.evidence),
            outputs: Outputs {
                serving_at_ms: Some(clock::millis(verdict.serving_at)),
                settled_ms: verdict.settled.map(|d| d.as_millis() as u64),
                ..Outputs::default()
            },
            ..Done::default()
        })
    }
}
