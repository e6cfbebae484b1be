//! After health, the new container must report the version the upgrade was for: an image
//! retagged by mistake, or a product that fell back to its old code, is caught here and rolled
//! back.

use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{bounded, shown, Action, Cx, Done, StepError, Transcript};
use crate::engine::Engine;
use crate::health;
use crate::plan::{Plan, Slot};

const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the version is read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VersionSource {
    /// `http://HOST:PORT/PATH`, or `/PATH` and `:PORT/PATH` on the container, with an optional
    /// `#FIELD` (a JSON pointer or a dotted path) naming the field of a JSON answer.
    Url(String),
    /// A command run inside the container; its output must name the version.
    Command(#[serde(serialize_with = "crate::secrets::shown_words")] Vec<String>),
}

impl std::fmt::Display for VersionSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            VersionSource::Url(url) => f.write_str(url),
            VersionSource::Command(cmd) => write!(f, "`{}`", shown(cmd)),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CheckVersion {
    pub slot: Slot,
    pub source: VersionSource,
    /// The tag the upgrade moved to.
    pub want: String,
    /// The container port a relative URL is asked on when it names none.
    pub port: Option<u16>,
    /// A relative URL is asked over https (the health check's port serves TLS).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub tls: bool,
}

#[async_trait]
impl Action for CheckVersion {
    fn describe(&self, plan: &Plan) -> String {
        format!(
            "check that {} reports version {} ({})",
            plan.label(&self.slot),
            self.want,
            self.source
        )
    }

    async fn perform(&self, cx: &Cx<'_>) -> Result<Done, StepError> {
        Ok(Done::said(
            self.confirm(cx.engine, cx.id(&self.slot)?).await?,
        ))
    }
}

impl CheckVersion {
    /// What the container `id` reports, when it is the version wanted; a failure otherwise.
    pub async fn confirm(&self, engine: &dyn Engine, id: &str) -> Result<String, StepError> {
        let reported = self.read(engine, id).await?;
        if reports(&self.want, &reported) {
            Ok(format!("it reports {reported}"))
        } else {
            Err(StepError::Failed(format!(
                "it reports version {reported:?}, not {} ({})",
                self.want, self.source
            )))
        }
    }

    /// The version the container reports, as people may read it (secrets masked): also what
    /// the check of a running product before an upgrade compares with its current tag.
    pub async fn read(&self, engine: &dyn Engine, id: &str) -> Result<String, StepError> {
        let reported = match &self.source {
            VersionSource::Url(url) => self.fetch(engine, id, url).await?,
            VersionSource::Command(cmd) => {
                let mut transcript = Transcript::new("version");
                let mut text = String::new();
                let code = bounded(
                    ATTEMPT_TIMEOUT,
                    engine.exec(id, cmd, &mut |line| {
                        transcript.line(line);
                        text.push_str(line);
                        text.push('\n');
                    }),
                )
                .await?;
                if code != Some(0) {
                    return Err(StepError::Failed(format!(
                        "{} did not exit 0; {}",
                        self.source,
                        transcript.tail_text()
                    )));
                }
                text
            }
        };
        Ok(crate::secrets::redact(reported.trim()))
    }

    async fn fetch(&self, engine: &dyn Engine, id: &str, url: &str) -> Result<String, StepError> {
        let (address, field) = match url.split_once('#') {
            Some((address, field)) => (address, Some(field)),
            None => (url, None),
        };
        let urls = if address.starts_with("http://") || address.starts_with("https://") {
            vec![address.to_string()]
        } else {
            let c = crate::engine::inspect_reached(engine, id).await?;
            let (port, path) = match address
                .strip_prefix(':')
                .and_then(|rest| rest.split_once('/'))
            {
                Some((port, path)) => (port.parse().ok(), format!("/{path}")),
                None => (
                    self.port.or_else(|| health::probe_port(&c)),
                    address.to_string(),
                ),
            };
            let port = port.ok_or_else(|| {
                StepError::Failed(format!(
                    "{url}: the container has no port to ask; write :PORT/PATH"
                ))
            })?;
            let scheme = if self.tls { "https" } else { "http" };
            health::routes(&c, port, &engine.machine(), engine.networks_here())
                .iter()
                .map(|e| format!("{scheme}://{}{path}", e.addr))
                .collect()
        };
        let http =
            health::probe_client(ATTEMPT_TIMEOUT).map_err(|e| StepError::Failed(e.to_string()))?;
        let mut last = format!("{url}: the container is not reachable");
        for url in urls {
            match http.get(&url).send().await {
                Ok(resp) if resp.status().is_success() => {
                    let body = resp
                        .text()
                        .await
                        .map_err(|e| StepError::Failed(format!("{url}: {e}")))?;
                    return read_field(&body, field).map_err(|e| {
                        StepError::Failed(format!("{url}: {e}{}", health::quoted(&body)))
                    });
                }
                Ok(resp) => {
                    let code = resp.status().as_u16();
                    let body = resp.text().await.unwrap_or_default();
                    last = format!("{url} answered {code}{}", health::quoted(&body))
                }
                Err(e) => last = format!("{url}: {}", crate::causes::error_text(&e)),
            }
        }
        Err(StepError::Failed(crate::secrets::redact(&last)))
    }
}

fn read_field(body: &str, field: Option<&str>) -> Result<String, String> {
    let Some(field) = field else {
        return Ok(body.to_string());
    };
    let json: Value =
        serde_json::from_str(body).map_err(|e| format!("the answer is not JSON ({e})"))?;
    health::json_field(&json, field)
        .map(health::scalar_text)
        .ok_or_else(|| format!("the answer has no {field}"))
}

/// Whether a reported version is the tag's: `v0.18.0` is reported as `0.18.0`, `v0.18.0@1a2b3c`
/// or `DevLake v0.18.0 (build 5)`, and `25.0.13` as `25.0.13.0`.
pub fn reports(tag: &str, reported: &str) -> bool {
    let want = bare(tag);
    let parsed = |s: &str| crate::version::TagVersion::parse(s).map(|v| trimmed(v.numbers));
    reported
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '.' || c == '-'))
        .map(bare)
        .any(|token| token == want || (parsed(token).is_some() && parsed(token) == parsed(want)))
}

fn bare(s: &str) -> &str {
    let s = s.trim();
    s.strip_prefix(['v', 'V'])
        .filter(|r| r.starts_with(|c: char| c.is_ascii_digit()))
        .unwrap_or(s)
}

fn trimmed(mut numbers: Vec<u64>) -> Vec<u64> {
    while numbers.len() > 1 && numbers.last() == Some(&0) {
        numbers.pop();
    }
    numbers
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_recognised_in_what_products_report() {
        assert!(reports("v0.18.0", "v0.18.0@1a2b3c4"));
        assert!(reports("v0.18.0", "0.18.0"));
        assert!(reports("25.0.13", "25.0.13.0"));
        assert!(reports("v3.9.0", "Quay v3.9.0 (build 12)"));
        assert!(reports("2", "version=2 color=green"));
        assert!(!reports("v0.18.0", "v0.17.0@1a2b3c4"));
        assert!(!reports("2", "version=12"));
        assert!(!reports("25.0.13", "25.0.1"));
        assert!(reports("latest-rc", "running latest-rc"));
    }

    #[test]
    fn fields_are_read_from_json_answers() {
        let body = r#"{"service":{"version":"0.7.1"},"db":{"schema_version":"0.0.13"}}"#;
        assert_eq!(
            read_field(body, Some("/service/version")),
            Ok("0.7.1".into())
        );
        assert_eq!(
            read_field(body, Some("db.schema_version")),
            Ok("0.0.13".into())
        );
        assert!(read_field(body, Some("api.version"))
            .unwrap_err()
            .contains("no api.version"));
        assert!(read_field("OK", Some("/version"))
            .unwrap_err()
            .contains("not JSON"));
        assert_eq!(read_field("OK", None), Ok("OK".into()));
    }
}
