//! Deciding that a freshly started container is serving.
//!
//! In order of trust: the container's own HEALTHCHECK status when it has one, else an HTTP
//! endpoint the operator names, else "running without an exit or restart for a settle time".
//! Which one applies is decided when the container runs, because only then is it known whether
//! the new image brought a HEALTHCHECK.

use std::time::{Duration, Instant};

use bollard::models::{ContainerInspectResponse, HealthStatusEnum};
use serde::{Deserialize, Serialize};

use crate::docker::Engine;
use crate::secrets;

const POLL_INTERVAL: Duration = Duration::from_millis(100);
const HTTP_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthPolicy {
    /// Checked when the container has no HEALTHCHECK.
    pub url: Option<String>,
    /// The status the URL must answer; any 2xx when unset.
    pub expect_status: Option<u16>,
    #[serde(with = "millis")]
    pub settle: Duration,
    #[serde(with = "millis")]
    pub timeout: Duration,
}

impl HealthPolicy {
    pub fn describe(&self) -> String {
        let fallback = match &self.url {
            Some(url) => match self.expect_status {
                Some(code) => format!("else {url} answers {code}"),
                None => format!("else {url} answers 2xx"),
            },
            None => format!(
                "else it runs for {} without exiting or restarting",
                humantime::format_duration(self.settle)
            ),
        };
        format!(
            "its HEALTHCHECK reports healthy if it has one, {fallback} (at most {})",
            humantime::format_duration(self.timeout)
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum HealthError {
    #[error("the container exited (code {code}) while starting")]
    Exited { code: i64 },
    #[error("the container restarted while starting (it crashed)")]
    Restarted,
    #[error("its HEALTHCHECK reports unhealthy: {0}")]
    Unhealthy(String),
    #[error("not healthy within {}: {last}", humantime::format_duration(*waited))]
    Timeout { waited: Duration, last: String },
    #[error(transparent)]
    Engine(#[from] crate::docker::EngineError),
}

/// Waits until the container is healthy by the policy; says what it saw when it gives up.
pub async fn await_healthy(engine: &Engine, id: &str, policy: &HealthPolicy) -> Result<String, HealthError> {
    let started = Instant::now();
    let http = reqwest::Client::builder()
        .timeout(HTTP_ATTEMPT_TIMEOUT)
        .build()
        .map_err(|e| HealthError::Timeout { waited: Duration::ZERO, last: e.to_string() })?;
    let first = engine.inspect_required(id).await?;
    let restarts = first.restart_count.unwrap_or(0);
    let mut running_since: Option<Instant> = None;
    let mut last;
    loop {
        let now = engine.inspect_required(id).await?;
        check_still_running(&now, restarts)?;
        running_since.get_or_insert_with(Instant::now);
        match now.state.as_ref().and_then(|s| s.health.as_ref()).and_then(|h| h.status) {
            Some(HealthStatusEnum::HEALTHY) => return Ok("its HEALTHCHECK reports healthy".into()),
            Some(HealthStatusEnum::UNHEALTHY) => return Err(HealthError::Unhealthy(last_probe_output(&now))),
            Some(HealthStatusEnum::STARTING) => last = "its HEALTHCHECK is still starting".into(),
            _ => match &policy.url {
                Some(url) => match http.get(url).send().await {
                    Ok(resp) if status_ok(resp.status().as_u16(), policy.expect_status) => {
                        return Ok(format!("{url} answered {}", resp.status().as_u16()));
                    }
                    Ok(resp) => last = format!("{url} answered {}", resp.status().as_u16()),
                    Err(e) => last = format!("{url}: {}", secrets::redact(&crate::error::error_text(&e))),
                },
                None => {
                    let ran = running_since.map_or(Duration::ZERO, |t| t.elapsed());
                    if ran >= policy.settle {
                        return Ok(format!("it ran for {} without exiting or restarting", humantime::format_duration(policy.settle)));
                    }
                    last = "still settling".into();
                }
            },
        }
        if started.elapsed() >= policy.timeout {
            return Err(HealthError::Timeout { waited: policy.timeout, last });
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// Confirms that a container put back by a rollback stays up: running, not restarting, for
/// `settle`. Its HEALTHCHECK is not awaited: it served before the run and only needs to run.
pub async fn confirm_running(engine: &Engine, id: &str, settle: Duration) -> Result<(), HealthError> {
    let restarts = engine.inspect_required(id).await?.restart_count.unwrap_or(0);
    let started = Instant::now();
    loop {
        check_still_running(&engine.inspect_required(id).await?, restarts)?;
        if started.elapsed() >= settle {
            return Ok(());
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

fn check_still_running(c: &ContainerInspectResponse, restarts_before: i64) -> Result<(), HealthError> {
    let state = c.state.clone().unwrap_or_default();
    if c.restart_count.unwrap_or(0) > restarts_before || state.restarting == Some(true) {
        return Err(HealthError::Restarted);
    }
    if state.running != Some(true) {
        return Err(HealthError::Exited { code: state.exit_code.unwrap_or(-1) });
    }
    Ok(())
}

fn status_ok(code: u16, expect: Option<u16>) -> bool {
    match expect {
        Some(want) => code == want,
        None => (200..300).contains(&code),
    }
}

fn last_probe_output(c: &ContainerInspectResponse) -> String {
    let log = c.state.as_ref().and_then(|s| s.health.as_ref()).and_then(|h| h.log.as_ref());
    let output = log.and_then(|l| l.last()).and_then(|r| r.output.clone()).unwrap_or_default();
    let output = output.trim();
    secrets::redact(if output.is_empty() { "the probe printed nothing" } else { output })
}

mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_millis(u64::deserialize(d)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_rules() {
        assert!(status_ok(204, None));
        assert!(!status_ok(301, None));
        assert!(status_ok(301, Some(301)));
        assert!(!status_ok(200, Some(204)));
    }

    #[test]
    fn describes_what_it_waits_for() {
        let p = HealthPolicy {
            url: Some("http://127.0.0.1:8080/health".into()),
            expect_status: None,
            settle: Duration::from_secs(5),
            timeout: Duration::from_secs(120),
        };
        assert_eq!(
            p.describe(),
            "its HEALTHCHECK reports healthy if it has one, else http://127.0.0.1:8080/health answers 2xx (at most 2m)"
        );
        let p = HealthPolicy { url: None, ..p };
        assert!(p.describe().contains("else it runs for 5s without exiting or restarting"));
    }
}
