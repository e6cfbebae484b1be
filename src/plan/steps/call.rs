//! An HTTP call a product waits for after it starts: DevLake answers 428 on its API until
//! `/proceed-db-migration` is called, which migrates the database and answers when done.

use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use super::{Action, Cx, Done, Step, StepError, Traits};
use crate::engine::Engine;
use crate::health;
use crate::plan::part::{OnAService, Part, Phase, Place};
use crate::plan::{Plan, Slot};

const POLL: Duration = Duration::from_millis(500);
const ATTEMPT: Duration = Duration::from_secs(5);

/// While `while_path` answers `while_status`, call `path` (on the container's `port`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Call {
    pub port: u16,
    pub path: String,
    pub while_path: String,
    pub while_status: u16,
    #[serde(with = "crate::clock::duration_ms")]
    pub timeout: Duration,
}

/// Called on each successor that is not a companion, as it starts.
impl Part for Call {
    fn kind(&self) -> &'static str {
        "call"
    }

    fn on_a_service(&self) -> OnAService<'_> {
        OnAService::CalledOnEachTask(self)
    }

    fn phase(&self) -> Phase {
        Phase::Started
    }

    fn steps(&self, at: &Place) -> Vec<Step> {
        match at.companion {
            true => Vec::new(),
            false => vec![CallStep {
                slot: at.new.clone(),
                call: self.clone(),
            }
            .into()],
        }
    }
}

impl Call {
    /// Makes the call on the running container `id`: what it found, or why it failed.
    pub async fn make(&self, engine: &dyn Engine, id: &str) -> Result<String, StepError> {
        let c = self;
        let http = reqwest::Client::builder()
            .timeout(c.timeout.max(ATTEMPT))
            .build()
            .map_err(|e| StepError::Failed(e.to_string()))?;
        let began = Instant::now();
        let mut called = false;
        let mut last = String::from("nothing answered yet");
        while began.elapsed() < c.timeout {
            let container = crate::engine::inspect_reached(engine, id).await?;
            if !container.is_running() {
                return Err(StepError::Failed(
                    "the container stopped while cutover waited to call it".into(),
                ));
            }
            for endpoint in health::routes(
                &container,
                c.port,
                &engine.machine(),
                engine.networks_here(),
            ) {
                let base = format!("http://{}", endpoint.addr);
                let probe = http
                    .get(format!("{base}{}", c.while_path))
                    .timeout(ATTEMPT)
                    .send()
                    .await;
                let status = match probe {
                    Ok(resp) => resp.status().as_u16(),
                    Err(e) => {
                        last = format!("{base}{}: {}", c.while_path, crate::causes::error_text(&e));
                        continue;
                    }
                };
                if status != c.while_status {
                    let detail = match called {
                        true => format!("called {}; {} now answers {status}", c.path, c.while_path),
                        false => format!("{} answers {status}: no call needed", c.while_path),
                    };
                    return Ok(detail);
                }
                let resp = http
                    .get(format!("{base}{}", c.path))
                    .send()
                    .await
                    .map_err(|e| {
                        StepError::Failed(format!("{}: {}", c.path, crate::causes::error_text(&e)))
                    })?;
                let code = resp.status().as_u16();
                let body = resp.text().await.unwrap_or_default();
                if !(200..300).contains(&code) {
                    return Err(StepError::Failed(crate::secrets::redact(&format!(
                        "{} answered {code}: {}",
                        c.path,
                        body.trim()
                    ))));
                }
                called = true;
                break;
            }
            tokio::time::sleep(POLL).await;
        }
        Err(StepError::Failed(crate::secrets::redact(&format!(
            "still waiting after {}: {last}",
            humantime::format_duration(c.timeout)
        ))))
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CallStep {
    pub slot: Slot,
    pub call: Call,
}

#[async_trait]
impl Action for CallStep {
    fn describe(&self, plan: &Plan) -> String {
        let c = &self.call;
        format!(
            "while {} of {} answers {}, call {} (at most {})",
            c.while_path,
            plan.label(&self.slot),
            c.while_status,
            c.path,
            humantime::format_duration(c.timeout)
        )
    }

    fn traits(&self) -> Traits {
        Traits::migration()
    }

    async fn perform(&self, cx: &Cx<'_>) -> Result<Done, StepError> {
        let id = cx.id(&self.slot)?;
        Ok(Done::said(self.call.make(cx.engine, id).await?))
    }
}
