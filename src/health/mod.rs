//! Deciding that a freshly started container is serving.
//!
//! Every check that applies must pass: the container's own HEALTHCHECK when it has one, and the
//! HTTP check the operator names (`--health-url`, or `--health-port` with a path, an expected
//! status and JSON conditions). With neither, cutover probes a port the container publishes or
//! exposes (any HTTP answer below 500 counts, and so does a port that accepts connections but
//! does not speak HTTP) and also asks it to keep running for the settle time; a container with
//! no port is judged by the settle time alone.
//!
//! The verdict says when the container first passed its checks, which is where downtime ends;
//! a settle time is reported apart, as confirmation.

mod probe;

use std::time::{Duration, SystemTime};

use crate::engine::Container;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::clock;
use crate::engine::{inspect_required, Engine, EngineError};
use crate::secrets;
pub use probe::{
    client as probe_client, json_field, probe_port, quoted, routes, scalar_text, JsonCondition,
    JsonConditionError, Route, PROBE_PORT_LABEL,
};

const POLL_INTERVAL: Duration = Duration::from_millis(100);

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthPolicy {
    /// A URL the host can reach; journaled without the password it may carry.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "crate::secrets::url_without_password"
    )]
    pub url: Option<String>,
    /// A port of the container, reached through its address or its published binding.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// The path asked on `port`.
    #[serde(default = "root_path")]
    pub path: String,
    /// `port` speaks https (the product serves TLS itself); its certificate is not verified,
    /// since products serve self-signed ones.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub tls: bool,
    /// The status the URL or port must answer; any 2xx when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect_status: Option<u16>,
    /// Fields the answer's JSON body must hold.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub json: Vec<JsonCondition>,
    #[serde(with = "clock::duration_ms")]
    pub settle: Duration,
    #[serde(with = "clock::duration_ms")]
    pub timeout: Duration,
}

fn root_path() -> String {
    "/".into()
}

/// How long a container without other checks must run to count as up.
pub const DEFAULT_SETTLE: Duration = Duration::from_secs(10);
/// How long a new container may take to pass its checks.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

/// One layer of health settings (a profile's, the config file's, the command line's); each sets
/// only what it names, and a layer that names a check replaces the check of those below.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HealthSettings {
    pub url: Option<String>,
    pub port: Option<u16>,
    pub path: Option<String>,
    pub tls: bool,
    pub expect_status: Option<u16>,
    pub json: Vec<JsonCondition>,
    pub settle: Option<Duration>,
    pub timeout: Option<Duration>,
}

impl HealthSettings {
    /// This layer over `policy`.
    pub fn over(&self, mut policy: HealthPolicy) -> HealthPolicy {
        if self.url.is_some() || self.port.is_some() {
            policy.url = self.url.clone();
            policy.port = self.port;
            policy.path = self.path.clone().unwrap_or_else(root_path);
            policy.tls = self.tls;
            policy.expect_status = self.expect_status;
            policy.json = self.json.clone();
        }
        policy.settle = self.settle.unwrap_or(policy.settle);
        policy.timeout = self.timeout.unwrap_or(policy.timeout);
        policy
    }
}

impl Default for HealthPolicy {
    /// HEALTHCHECKs, the default probe and the settle time, within the default timeout.
    fn default() -> HealthPolicy {
        HealthPolicy::new(DEFAULT_SETTLE, DEFAULT_TIMEOUT)
    }
}

impl HealthPolicy {
    /// A policy that relies on HEALTHCHECKs, the default probe and the settle time.
    pub fn new(settle: Duration, timeout: Duration) -> HealthPolicy {
        HealthPolicy {
            url: None,
            port: None,
            path: root_path(),
            tls: false,
            expect_status: None,
            json: Vec::new(),
            settle,
            timeout,
        }
    }

    pub fn explicit(&self) -> bool {
        self.url.is_some() || self.port.is_some()
    }

    /// What the HTTP check the operator named must see, for people.
    fn expectation(&self) -> String {
        let status = self
            .expect_status
            .map_or("2xx".to_string(), |s| s.to_string());
        let json: Vec<String> = self.json.iter().map(ToString::to_string).collect();
        if json.is_empty() {
            format!("answers {status}")
        } else {
            format!("answers {status} with {}", json.join(", "))
        }
    }

    /// The HTTP check the policy names, for people: `port 80 /health answers 200`.
    pub fn named_check(&self) -> Option<String> {
        match (&self.url, self.port) {
            (Some(url), _) => Some(format!("{url} {}", self.expectation())),
            (None, Some(port)) => Some(format!(
                "port {port}{} {} {}",
                if self.tls { " (https)" } else { "" },
                self.path,
                self.expectation()
            )),
            (None, None) => None,
        }
    }

    pub fn describe(&self) -> String {
        let named = self.named_check();
        let settle = humantime::format_duration(self.settle);
        let checks = match named {
            Some(named) => format!("its HEALTHCHECK if it has one, and {named}"),
            None => format!(
                "its HEALTHCHECK if it has one, else a port it publishes or exposes answers (HTTP below 500, or accepts) and it runs {settle} without exiting or restarting"
            ),
        };
        format!(
            "{checks} (at most {})",
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
    Engine(#[from] EngineError),
}

/// A container judged serving.
#[derive(Debug, Clone)]
pub struct Verdict {
    /// What was seen, for people.
    pub evidence: String,
    /// When it first passed its checks: the end of downtime.
    pub serving_at: SystemTime,
    /// The settle time it also ran without exiting, when that was part of the judgement.
    pub settled: Option<Duration>,
}

/// Waits until the container passes every check that applies; says what it saw when it gives up.
pub async fn await_healthy(
    engine: &dyn Engine,
    id: &str,
    policy: &HealthPolicy,
) -> Result<Verdict, HealthError> {
    let began = Instant::now();
    let began_at = clock::now();
    let first = inspect_required(engine, id).await?;
    let restarts = first.restart_count();
    let has_healthcheck = first.has_healthcheck();
    // Addresses are assigned at start; the port probe resolves them from a fresh inspect.
    let mut probe = match (policy.explicit(), has_healthcheck) {
        (true, _) => Some(probe::Probe::named(policy)?),
        (false, false) => probe::Probe::default_for(&first, engine).transpose()?,
        (false, true) => None,
    };
    let settles = !has_healthcheck && !policy.explicit();
    let mut healthcheck_ok = !has_healthcheck;
    let mut serving: Option<(Instant, SystemTime, Vec<String>)> = None;
    let mut last = String::from("nothing checked yet");
    loop {
        let now = inspect_required(engine, id).await?;
        check_still_running(&now, restarts)?;
        if !healthcheck_ok {
            healthcheck_ok = healthcheck_passed(&now)?;
            if !healthcheck_ok {
                last = still_starting(&now, engine.other_than_docker().is_some()).into();
            }
        }
        if healthcheck_ok && serving.is_none() {
            let mut evidence = Vec::new();
            if has_healthcheck {
                evidence.push("its HEALTHCHECK reports healthy".to_string());
            }
            let passed = match probe.as_mut() {
                None => true,
                Some(p) => match p.attempt(&now, engine).await {
                    Ok(seen) => {
                        evidence.push(seen);
                        true
                    }
                    Err(seen) => {
                        last = seen;
                        false
                    }
                },
            };
            if passed {
                // Judged by settle alone, the container serves from its start.
                let at = if probe.is_none() && settles {
                    (began, began_at)
                } else {
                    (Instant::now(), clock::now())
                };
                serving = Some((at.0, at.1, evidence));
            }
        }
        if let Some((_, at, evidence)) = &serving {
            let settle = settles.then_some(policy.settle);
            if let Some(verdict) = verdict(*at, evidence, settle, began.elapsed()) {
                return Ok(verdict);
            }
            last = "still settling".into();
        }
        if began.elapsed() >= policy.timeout {
            return Err(HealthError::Timeout {
                waited: policy.timeout,
                last: secrets::redact(&last),
            });
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// What a HEALTHCHECK not yet passed says: on Podman, one that never ran may never run.
fn still_starting(now: &Container, podman: bool) -> &'static str {
    match podman && !now.healthcheck_ran() {
        true => crate::engine::podman::HEALTHCHECK_NEVER_RAN,
        false => "its HEALTHCHECK is still starting",
    }
}

/// What the container's own HEALTHCHECK says now: healthy, still starting, or unhealthy (an
/// error with its last output).
fn healthcheck_passed(now: &Container) -> Result<bool, HealthError> {
    match now.health().as_deref() {
        Some("healthy") => Ok(true),
        Some("unhealthy") => Err(HealthError::Unhealthy(last_probe_output(now))),
        _ => Ok(false),
    }
}

/// The verdict on a container that serves since `at`: at once, or, when the settle time alone
/// judges it, once it ran that long.
fn verdict(
    at: SystemTime,
    evidence: &[String],
    settle: Option<Duration>,
    ran: Duration,
) -> Option<Verdict> {
    let mut evidence = evidence.to_vec();
    if let Some(settle) = settle {
        if ran < settle {
            return None;
        }
        evidence.push(format!(
            "it ran {} without exiting or restarting",
            humantime::format_duration(settle)
        ));
    }
    Some(Verdict {
        evidence: evidence.join(" and "),
        serving_at: at,
        settled: settle,
    })
}

/// Whether a running container passes the HTTP check a policy names, now: a few attempts a
/// second apart, for the check of a product before anything stops. `Ok` says what answered,
/// `Err` what was seen instead; a policy that names no check passes.
pub async fn probe_now(
    engine: &dyn Engine,
    id: &str,
    policy: &HealthPolicy,
) -> Result<Result<String, String>, HealthError> {
    const ATTEMPTS: usize = 3;
    if !policy.explicit() {
        return Ok(Ok("no HTTP check to make".into()));
    }
    let mut probe = probe::Probe::named(policy)?;
    let mut last = String::new();
    for attempt in 0..ATTEMPTS {
        let c = crate::engine::inspect_reached(engine, id).await?;
        match probe.attempt(&c, engine).await {
            Ok(seen) => return Ok(Ok(seen)),
            Err(seen) => last = seen,
        }
        if attempt + 1 < ATTEMPTS {
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
    Ok(Err(last))
}

/// Confirms that a container put back by a rollback stays up: running, not restarting, for
/// `settle`. Its HEALTHCHECK is not awaited: it served before the run and only needs to run.
pub async fn confirm_running(
    engine: &dyn Engine,
    id: &str,
    settle: Duration,
) -> Result<(), HealthError> {
    let restarts = inspect_required(engine, id).await?.restart_count();
    let started = Instant::now();
    loop {
        check_still_running(&inspect_required(engine, id).await?, restarts)?;
        if started.elapsed() >= settle {
            return Ok(());
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

fn check_still_running(c: &Container, restarts_before: i64) -> Result<(), HealthError> {
    if c.restart_count() > restarts_before || c.is_restarting() {
        return Err(HealthError::Restarted);
    }
    if !c.is_running() {
        return Err(HealthError::Exited {
            code: c.exit_code().unwrap_or(-1),
        });
    }
    Ok(())
}

fn last_probe_output(c: &Container) -> String {
    let output = c.last_health_output().unwrap_or_default();
    let output = output.trim();
    secrets::redact(if output.is_empty() {
        "the probe printed nothing"
    } else {
        output
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_healthcheck_podman_never_ran_is_told_apart() {
        let c = |log: serde_json::Value| -> Container {
            serde_json::from_value(
                serde_json::json!({"State": {"Health": {"Status": "starting", "Log": log}}}),
            )
            .unwrap()
        };
        let never = c(serde_json::Value::Null);
        assert!(still_starting(&never, true).contains("systemd timers"));
        assert_eq!(
            still_starting(&never, false),
            "its HEALTHCHECK is still starting"
        );
        let ran = c(serde_json::json!([{"ExitCode": 1, "Output": "not yet"}]));
        assert_eq!(
            still_starting(&ran, true),
            "its HEALTHCHECK is still starting"
        );
    }

    #[test]
    fn describes_what_it_waits_for() {
        let mut p = HealthPolicy::new(Duration::from_secs(5), Duration::from_secs(120));
        assert!(
            p.describe().contains("runs 5s without exiting"),
            "{}",
            p.describe()
        );
        p.url = Some("http://127.0.0.1:8080/health".into());
        assert_eq!(
            p.describe(),
            "its HEALTHCHECK if it has one, and http://127.0.0.1:8080/health answers 2xx (at most 2m)"
        );
        p.url = None;
        p.port = Some(8080);
        p.path = "/health/instance".into();
        p.expect_status = Some(200);
        p.json = vec!["status_code=200".parse().unwrap()];
        assert!(
            p.describe()
                .contains("port 8080 /health/instance answers 200 with status_code=200"),
            "{}",
            p.describe()
        );
    }
}
