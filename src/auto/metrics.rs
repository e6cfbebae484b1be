//! A pass told as Prometheus metrics, in the text format node_exporter's textfile collector reads
//! (`--collector.textfile.directory`): written whole beside the file and renamed over it, so that
//! a scrape never reads half of one; or served on `/metrics` by a resident `auto`.

use std::convert::Infallible;
use std::path::Path;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::{PassOutcome, PassReport};

type Labels = Vec<(String, String)>;
type Value = Gauge<f64, AtomicU64>;

/// The pass as metrics text.
pub fn text(report: &PassReport) -> String {
    let mut registry = Registry::with_prefix("cutover");
    let gauge = |registry: &mut Registry, name: &str, help: &str, value: f64| {
        let g = Value::default();
        g.set(value);
        registry.register(name, help, g);
    };
    let started = seconds(report.started_at);
    gauge(
        &mut registry,
        "last_pass_timestamp_seconds",
        "When the last pass started, in seconds since the epoch",
        started,
    );
    let ok = !report.failed();
    gauge(
        &mut registry,
        "last_pass_success",
        "1 when every upgrade of the last pass went well and every host was read, else 0",
        f64::from(u8::from(ok)),
    );
    let results = Family::<Labels, Value>::default();
    // Every outcome, so that each series exists from the first pass on.
    for outcome in PassOutcome::ALL {
        let count = report
            .results
            .iter()
            .filter(|r| r.result == outcome)
            .count();
        results
            .get_or_create(&vec![("result".into(), word(outcome))])
            .set(count as f64);
    }
    registry.register(
        "last_pass_upgrades",
        "The last pass's containers by how their upgrade ended",
        results,
    );
    let downtime = Family::<Labels, Value>::default();
    for r in &report.results {
        if let Some(ms) = r.downtime_ms {
            downtime
                .get_or_create(&vec![("container".into(), r.container.clone())])
                .set(ms as f64 / 1000.0);
        }
    }
    registry.register(
        "last_pass_downtime_seconds",
        "How long each container the last pass upgraded was down",
        downtime,
    );
    let behind = report
        .checked
        .iter()
        .filter(|s| s.target.is_some())
        .filter(|s| {
            !report
                .results
                .iter()
                .any(|r| r.container == s.container && r.result == PassOutcome::Upgraded)
        })
        .count();
    gauge(
        &mut registry,
        "containers_behind_target",
        "Opted-in containers whose policy allows a newer version than they run after the last pass",
        behind as f64,
    );
    let bytes = Family::<Labels, Value>::default();
    let taken = Family::<Labels, Value>::default();
    for b in &report.backups {
        let labels = vec![("container".into(), b.container.clone())];
        bytes.get_or_create(&labels).set(b.bytes as f64);
        taken.get_or_create(&labels).set(seconds(b.taken_at));
    }
    registry.register(
        "backup_last_bytes",
        "The size of each container's newest backup in cutover's store",
        bytes,
    );
    registry.register(
        "backup_last_timestamp_seconds",
        "When each container's newest backup in cutover's store was taken, in seconds since the epoch (its age is time() minus this)",
        taken,
    );
    gauge(
        &mut registry,
        "hosts_unreached",
        "Hosts of the fleet the last pass could not read",
        report.unreached.len() as f64,
    );
    let mut text = String::new();
    prometheus_client::encoding::prometheus_text::encode(&mut text, &registry)
        .expect("writing into a String does not fail");
    text
}

fn seconds(at: SystemTime) -> f64 {
    at.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default()
}

/// Writes a pass's metrics `text` to `path`, whole.
pub fn write(path: &Path, text: &str) -> Result<(), String> {
    crate::compose::edit::replace(path, text)
}

/// The last pass's metrics, served on `/metrics` for as long as the process lives: empty until
/// the first pass ends.
#[derive(Clone, Default)]
pub struct Exposition {
    text: Arc<Mutex<String>>,
}

impl Exposition {
    pub fn set(&self, text: String) {
        *self.text.lock().expect("metrics text") = text;
    }

    /// Answers every connection `listener` accepts, each on a task of its own.
    pub fn serve(self, listener: TcpListener) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let exposition = self.clone();
                tokio::spawn(async move {
                    let answer = hyper::service::service_fn(move |request| {
                        let exposition = exposition.clone();
                        async move { Ok::<_, Infallible>(exposition.answer(&request)) }
                    });
                    let served = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), answer)
                        .await;
                    if let Err(e) = served {
                        tracing::debug!("metrics: {e}");
                    }
                });
            }
        })
    }

    fn answer<B>(&self, request: &Request<B>) -> Response<Full<Bytes>> {
        let (status, body) = match request.uri().path() {
            "/metrics" => (
                StatusCode::OK,
                self.text.lock().expect("metrics text").clone(),
            ),
            _ => (
                StatusCode::NOT_FOUND,
                "cutover serves /metrics only\n".into(),
            ),
        };
        let mut response = Response::new(Full::new(Bytes::from(body)));
        *response.status_mut() = status;
        response.headers_mut().insert(
            hyper::header::CONTENT_TYPE,
            hyper::header::HeaderValue::from_static(
                prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
            ),
        );
        response
    }
}

fn word(outcome: PassOutcome) -> String {
    serde_json::to_value(outcome)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::*;
    use crate::auto::{NewestBackup, PassResult};
    use crate::discover::check::Status;

    fn result(container: &str, result: PassOutcome, downtime_ms: Option<u64>) -> PassResult {
        PassResult::told(container, result, downtime_ms)
    }

    #[test]
    fn a_pass_with_one_upgrade_and_one_rollback_is_told_series_by_series() {
        let behind = |name: &str| Status {
            target: Some("app:2".into()),
            ..Status::eligible(name)
        };
        let report = PassReport {
            started_at: SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
            checked: vec![behind("web"), behind("api"), Status::eligible("db")],
            results: vec![
                result("web", PassOutcome::Upgraded, Some(1250)),
                result("api", PassOutcome::RolledBack, Some(800)),
            ],
            unreached: Vec::new(),
            backups: vec![NewestBackup {
                container: "db".into(),
                bytes: 4096,
                taken_at: SystemTime::UNIX_EPOCH + Duration::from_secs(1_699_990_000),
            }],
        };
        let text = text(&report);
        for line in [
            "cutover_last_pass_timestamp_seconds 1700000000.0",
            "cutover_last_pass_success 0.0",
            "cutover_last_pass_upgrades{result=\"upgraded\"} 1.0",
            "cutover_last_pass_upgrades{result=\"rolled_back\"} 1.0",
            "cutover_last_pass_upgrades{result=\"needs_attention\"} 0.0",
            "cutover_last_pass_downtime_seconds{container=\"web\"} 1.25",
            "cutover_containers_behind_target 1.0",
            "cutover_hosts_unreached 0.0",
            "cutover_backup_last_bytes{container=\"db\"} 4096.0",
            "cutover_backup_last_timestamp_seconds{container=\"db\"} 1699990000.0",
            "# TYPE cutover_last_pass_upgrades gauge",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "{line} missing from:\n{text}"
            );
        }
    }
}
