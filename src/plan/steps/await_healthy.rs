//! Waiting until a started container passes its health checks; downtime ends when it first
//! does.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::{Action, Cx, Done, Outputs, StepError, Traits};
use crate::clock;
use crate::health::{self, HealthPolicy};
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
        let verdict = health::await_healthy(cx.engine, cx.id(&self.slot)?, &self.policy).await?;
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
