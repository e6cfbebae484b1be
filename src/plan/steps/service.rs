//! A Swarm service moved by its manager: its spec's image replaced by the target pinned to the
//! digest this engine pulled (so that every node runs the same image, as `docker service update`
//! pins it), then its tasks watched until every replica runs it. The service's own update
//! config (order, parallelism, failure action) is left as its operator set it: cutover watches
//! the tasks itself, and puts the previous image back when they do not come up.

use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::{
    finished, shown, Action, Call, CheckVersion, Cx, Done, Outputs, StepError, Traits, Transcript,
    VersionSource,
};
use crate::clock;
use crate::engine::reference::ImageRef;
use crate::engine::{Engine, Service, ServiceSpec, Task};
use crate::health::HealthPolicy;
use crate::plan::Plan;

/// How often the manager is asked how the tasks are doing.
const POLL: Duration = Duration::from_millis(500);

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServiceUpdate {
    pub service: String,
    /// The image its spec named before, as written there (with its digest when pinned).
    pub from: String,
    /// The target as asked.
    pub to: String,
    /// How long the previous image's tasks may take to run again when undone.
    #[serde(with = "clock::duration_ms")]
    pub timeout: Duration,
    #[serde(with = "clock::duration_ms")]
    pub settle: Duration,
    /// Its update config stops every task before starting the new ones (stop-first, all at
    /// once, or one replica): the service is down until they run. Otherwise some task serves
    /// throughout, and there is no downtime to tell.
    pub stops_all: bool,
    /// The replicas the update gives it back, after a [`ServiceScale`] to 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i64>,
}

/// The service scaled to 0 and awaited until none of its tasks runs: products change their
/// schema with every instance stopped. Undone by giving it its replicas back.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServiceScale {
    pub service: String,
    /// Its replicas before, given back by the undo.
    pub replicas: i64,
    /// The image it runs, awaited again by the undo.
    pub image: String,
    #[serde(with = "clock::duration_ms")]
    pub timeout: Duration,
    #[serde(with = "clock::duration_ms")]
    pub settle: Duration,
}

/// A one-shot Swarm job (a `ReplicatedJob` service, API 1.41) from the target image with the
/// service's task template (networks, secrets, configs, mounts, environment), its command
/// replaced, awaited to its end and its output shown; removed either way.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServiceJob {
    pub service: String,
    pub to: String,
    /// As people read it, secrets scrubbed; the words the job runs are `words`.
    #[serde(serialize_with = "crate::secrets::shown_words")]
    pub command: Vec<String>,
    /// The words the job runs, secrets included: never journaled.
    #[serde(skip)]
    pub words: Vec<String>,
    /// Replaces the image's entrypoint (ProGet's `upgradedb` program).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    /// Variables set in the job only (Quay's `QUAYENTRY`, Anchore's `PGPASSWORD`), over the
    /// service's; they may hold secrets: never journaled.
    #[serde(skip)]
    pub env: Vec<(String, String)>,
    /// Output that means the command did nothing although it exited 0.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fails_if_output_has: Vec<String>,
    #[serde(with = "clock::duration_ms")]
    pub timeout: Duration,
}

impl ServiceJob {
    fn name(&self) -> String {
        format!("{}-cutover-migrate", self.service)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServiceAwait {
    pub service: String,
    /// The target as asked: the spec must still name it (pinned), or someone else changed it.
    pub to: String,
    #[serde(with = "clock::duration_ms")]
    pub timeout: Duration,
    #[serde(with = "clock::duration_ms")]
    pub settle: Duration,
    /// A product's own rules, tried on its new tasks once Swarm runs them all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checks: Option<TaskChecks>,
}

/// A product profile's health and version rules, tried on each running task of the new image on
/// this node (by its address on the node's gateway bridge): a HEALTHCHECK that passes may not
/// say what the profile asks (Quay's `status_code`, ProGet's `databaseStatus`). Tasks on other
/// nodes are not reached from here: their HEALTHCHECK alone decides.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TaskChecks {
    /// Calls the product waits for once it started (DevLake's `/proceed-db-migration`), made
    /// first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub calls: Vec<Call>,
    pub health: HealthPolicy,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<VersionSource>,
}

impl TaskChecks {
    /// What each local task answered, or the first that did not pass within `timeout`.
    async fn on_tasks(
        &self,
        engine: &dyn Engine,
        service: &str,
        image: &str,
        timeout: Duration,
    ) -> Result<String, StepError> {
        let tasks: Vec<String> = crate::engine::service_containers(engine, service)
            .await?
            .into_iter()
            .filter(|c| c.is_running() && c.image() == image)
            .map(|c| c.id().to_string())
            .collect();
        if tasks.is_empty() {
            return Ok("no task runs on this node: their HEALTHCHECK alone decided".into());
        }
        let began = Instant::now();
        let mut seen = Vec::new();
        for id in &tasks {
            for call in &self.calls {
                seen.push(call.make(engine, id).await?);
            }
            loop {
                match crate::health::probe_now(engine, id, &self.health).await? {
                    Ok(answer) => {
                        seen.push(answer);
                        break;
                    }
                    Err(answer) if began.elapsed() >= timeout => {
                        return Err(StepError::Failed(format!(
                            "the task {} of {service} does not pass its profile's health rule ({}): {answer}",
                            crate::engine::short(id),
                            self.health.named_check().unwrap_or_default()
                        )))
                    }
                    Err(_) => tokio::time::sleep(POLL).await,
                }
            }
            if let Some(source) = &self.version {
                let want = ImageRef::parse(image)
                    .and_then(|r| r.tag)
                    .unwrap_or_default();
                let check = CheckVersion {
                    slot: crate::plan::Slot::new(service, 0),
                    source: source.clone(),
                    want,
                    port: self.health.port,
                    tls: self.health.tls,
                };
                let confirmed = check.confirm(engine, id).await.map_err(|e| {
                    StepError::Failed(format!(
                        "the task {} of {service}: {e}",
                        crate::engine::short(id)
                    ))
                })?;
                seen.push(confirmed);
            }
        }
        Ok(format!(
            "its {} task(s) on this node: {}",
            tasks.len(),
            seen.join("; ")
        ))
    }
}

#[async_trait]
impl Action for ServiceUpdate {
    fn describe(&self, _plan: &Plan) -> String {
        format!(
            "update the Swarm service {} to {} (pinned to the digest pulled), as its update config says",
            self.service, self.to
        )
    }

    fn traits(&self) -> Traits {
        Traits {
            starts_downtime: self.stops_all,
            replaces_app: true,
            runs_app: true,
            writes_data: true,
            ..Traits::default()
        }
    }

    async fn perform(&self, cx: &Cx<'_>) -> Result<Done, StepError> {
        let pinned = pinned(cx.engine, &self.to).await?;
        let service = required(cx.engine, &self.service).await?;
        let current = service.image();
        if current != self.from && current != pinned {
            return Err(changed(&self.service, &current));
        }
        set_spec(cx.engine, &service, Some(&pinned), self.replicas).await?;
        Ok(Done {
            detail: Some(format!("the spec names {pinned}")),
            outputs: Outputs {
                more: [("image".to_string(), pinned.into())].into(),
                ..Outputs::default()
            },
            ..Done::default()
        })
    }

    fn undo_describe(&self, _plan: &Plan) -> Option<String> {
        Some(match self.replicas {
            // Data the migration changed is put back before the old version runs on it.
            Some(_) => format!(
                "put {} back in the spec of {} with 0 replicas, and wait until none of its tasks runs",
                self.from, self.service
            ),
            None => format!(
                "put {} back in the spec of {} and wait until its tasks run it",
                self.from, self.service
            ),
        })
    }

    async fn undo(
        &self,
        cx: &Cx<'_>,
        _outputs: Option<&Outputs>,
    ) -> Result<Option<String>, StepError> {
        let service = required(cx.engine, &self.service).await?;
        if self.replicas.is_some() {
            set_spec(cx.engine, &service, Some(&self.from), Some(0)).await?;
            none_running(cx.engine, &service, self.timeout).await?;
            return Ok(None);
        }
        if service.image() != self.from {
            set_spec(cx.engine, &service, Some(&self.from), None).await?;
        }
        back_to(
            cx.engine,
            &self.service,
            &self.from,
            self.timeout,
            self.settle,
        )
        .await
    }
}

#[async_trait]
impl Action for ServiceAwait {
    fn describe(&self, _plan: &Plan) -> String {
        let checks = match &self.checks {
            Some(c) => format!(
                "; then, on each of its tasks on this node, {}the profile's health rule{}",
                match c.calls.len() {
                    0 => String::new(),
                    _ => format!(
                        "the call of {}, ",
                        c.calls
                            .iter()
                            .map(|c| c.path.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                },
                match c.version {
                    Some(_) => " and its version rule",
                    None => "",
                }
            ),
            None => String::new(),
        };
        format!(
            "wait until every task of {} runs {} (Swarm starts a task once its HEALTHCHECK passes) and stays up {} (at most {}){checks}",
            self.service,
            self.to,
            humantime::format_duration(self.settle),
            humantime::format_duration(self.timeout)
        )
    }

    fn traits(&self) -> Traits {
        Traits {
            proves_serving: true,
            ..Traits::default()
        }
    }

    async fn perform(&self, cx: &Cx<'_>) -> Result<Done, StepError> {
        let service = required(cx.engine, &self.service).await?;
        let image = service.image();
        if !names(&image, &self.to) {
            return Err(changed(&self.service, &image));
        }
        let watch = Watch {
            service: &self.service,
            image: &image,
            timeout: self.timeout,
            settle: self.settle,
            heed_update_status: true,
        };
        let (serving_at, mut evidence) = watch.converge(cx.engine).await?;
        if let Some(checks) = &self.checks {
            let answered = checks
                .on_tasks(cx.engine, &self.service, &image, self.timeout)
                .await?;
            evidence = format!("{evidence}; {answered}");
        }
        Ok(Done {
            detail: Some(evidence),
            outputs: Outputs {
                serving_at_ms: Some(clock::millis(serving_at)),
                settled_ms: Some(self.settle.as_millis() as u64),
                ..Outputs::default()
            },
            ..Done::default()
        })
    }
}

#[async_trait]
impl Action for ServiceScale {
    fn describe(&self, _plan: &Plan) -> String {
        format!(
            "scale {} to 0 and wait until none of its tasks runs (at most {})",
            self.service,
            humantime::format_duration(self.timeout)
        )
    }

    fn traits(&self) -> Traits {
        Traits {
            starts_downtime: true,
            ..Traits::default()
        }
    }

    async fn perform(&self, cx: &Cx<'_>) -> Result<Done, StepError> {
        let service = required(cx.engine, &self.service).await?;
        set_spec(cx.engine, &service, None, Some(0)).await?;
        none_running(cx.engine, &service, self.timeout).await?;
        Ok(Done::said(format!("no task of {} runs", self.service)))
    }

    fn undo_describe(&self, _plan: &Plan) -> Option<String> {
        Some(format!(
            "give {} its {} replica(s) back and wait until they run {}",
            self.service, self.replicas, self.image
        ))
    }

    async fn undo(
        &self,
        cx: &Cx<'_>,
        _outputs: Option<&Outputs>,
    ) -> Result<Option<String>, StepError> {
        let service = required(cx.engine, &self.service).await?;
        set_spec(cx.engine, &service, None, Some(self.replicas)).await?;
        back_to(
            cx.engine,
            &self.service,
            &self.image,
            self.timeout,
            self.settle,
        )
        .await
    }
}

/// Waits until no task of a service scaled to 0 runs any more.
async fn none_running(
    engine: &dyn Engine,
    service: &Service,
    timeout: Duration,
) -> Result<(), StepError> {
    let name = service.name();
    let began = Instant::now();
    loop {
        let tasks = engine.service_tasks(service.id()).await?;
        let running = tasks.iter().filter(|t| !t.has_ended());
        if running.count() == 0 {
            return Ok(());
        }
        if began.elapsed() >= timeout {
            return Err(StepError::Failed(format!(
                "tasks of {name} still ran {} after it was scaled to 0",
                humantime::format_duration(timeout)
            )));
        }
        tokio::time::sleep(POLL).await;
    }
}

#[async_trait]
impl Action for ServiceJob {
    fn describe(&self, _plan: &Plan) -> String {
        format!(
            "run `{}` as the Swarm job {} from {} with the task template of {} (must end well within {})",
            shown(&self.command),
            self.name(),
            self.to,
            self.service,
            humantime::format_duration(self.timeout)
        )
    }

    fn traits(&self) -> Traits {
        Traits::migration()
    }

    async fn perform(&self, cx: &Cx<'_>) -> Result<Done, StepError> {
        let service = required(cx.engine, &self.service).await?;
        let pinned = pinned(cx.engine, &self.to).await?;
        let name = self.name();
        // One a killed run left would hold the name.
        cx.engine.remove_service(&name).await?;
        let spec = service.job(
            &name,
            &pinned,
            &self.words,
            self.entrypoint.as_deref(),
            &self.env,
            &[("cutover.job".to_string(), self.service.clone())],
        );
        let id = cx.engine.create_service(spec).await?;
        let ended = self.await_end(cx.engine, &id).await;
        let mut transcript = Transcript::new(&name).watching(&self.fails_if_output_has);
        for line in cx.engine.service_logs(&id).await.unwrap_or_default() {
            transcript.line(&line);
        }
        cx.engine.remove_service(&id).await?;
        finished(
            &self.command,
            ended?,
            self.timeout,
            &transcript,
            "its job was removed",
        )
    }

    fn undo_describe(&self, _plan: &Plan) -> Option<String> {
        Some(format!("remove the job {} if it is left", self.name()))
    }

    async fn undo(
        &self,
        cx: &Cx<'_>,
        _outputs: Option<&Outputs>,
    ) -> Result<Option<String>, StepError> {
        cx.engine.remove_service(&self.name()).await?;
        Ok(None)
    }
}

impl ServiceJob {
    /// The job's exit code once its task ended, or `None` when the time ran out.
    async fn await_end(&self, engine: &dyn Engine, id: &str) -> Result<Option<i64>, StepError> {
        let began = Instant::now();
        loop {
            let tasks = engine.service_tasks(id).await?;
            if let Some(task) = tasks.iter().find(|t| t.completed() || t.failed()) {
                return match (task.completed(), task.exit_code()) {
                    (true, _) => Ok(Some(0)),
                    (_, Some(code)) if code != 0 => Ok(Some(code)),
                    _ => Err(StepError::Failed(format!(
                        "the job {} could not run: {}",
                        self.name(),
                        task.said()
                    ))),
                };
            }
            if began.elapsed() >= self.timeout {
                return Ok(None);
            }
            tokio::time::sleep(POLL).await;
        }
    }
}

/// An undo's wait until every task of `service` runs `image` again. The manager may still say
/// how the update it is undoing went: that is no failure of the undo.
async fn back_to(
    engine: &dyn Engine,
    service: &str,
    image: &str,
    timeout: Duration,
    settle: Duration,
) -> Result<Option<String>, StepError> {
    let watch = Watch {
        service,
        image,
        timeout,
        settle,
        heed_update_status: false,
    };
    watch.converge(engine).await?;
    Ok(None)
}

/// The service, or a failure naming it when it is gone.
pub(super) async fn required(engine: &dyn Engine, name: &str) -> Result<Service, StepError> {
    engine
        .service(name)
        .await?
        .ok_or_else(|| StepError::Failed(format!("the Swarm service {name} is gone")))
}

fn changed(service: &str, image: &str) -> StepError {
    StepError::Failed(format!(
        "the spec of {service} now names {image}: someone else changed it meanwhile; cutover leaves it as it is"
    ))
}

/// Whether `image` (as a spec writes it, maybe pinned) is `target` (as asked).
fn names(image: &str, target: &str) -> bool {
    image == target
        || image
            .strip_prefix(target)
            .is_some_and(|r| r.starts_with('@'))
}

/// `target@DIGEST`, with the digest this engine's pull of `target` recorded for its repository;
/// a target pinned already (as a plan's is) is kept.
async fn pinned(engine: &dyn Engine, target: &str) -> Result<String, StepError> {
    let reference = ImageRef::parse(target)
        .ok_or_else(|| StepError::Failed(format!("{target} is not an image reference")))?;
    if reference.digest.is_some() {
        return Ok(target.to_string());
    }
    let image = engine.image(target).await?.unwrap_or_default();
    let digest = image
        .repo_digests()
        .into_iter()
        .find_map(|d| {
            let (repository, digest) = d.split_once('@')?;
            (repository == reference.repository).then(|| digest.to_string())
        })
        .ok_or_else(|| {
            StepError::Failed(format!(
                "{target} has no digest from its registry on this engine: Swarm's other nodes pull images from a registry, so the target must come from one"
            ))
        })?;
    Ok(format!("{target}@{digest}"))
}

/// Replaces the image of the service's spec, its replicas, or both.
async fn set_spec(
    engine: &dyn Engine,
    service: &Service,
    image: Option<&str>,
    replicas: Option<i64>,
) -> Result<(), StepError> {
    update_spec(engine, service, |spec| {
        if let Some(image) = image {
            spec.set_image(image);
        }
        if let Some(replicas) = replicas {
            spec.set_replicas(replicas);
        }
    })
    .await
}

/// Updates the service's spec as `edit` changes it, at the version it was read at, so that a
/// change someone made meanwhile is refused rather than overwritten.
pub(super) async fn update_spec(
    engine: &dyn Engine,
    service: &Service,
    edit: impl FnOnce(&mut ServiceSpec),
) -> Result<(), StepError> {
    let version = i32::try_from(service.version()).unwrap_or(i32::MAX);
    let mut spec = service.spec();
    edit(&mut spec);
    engine.update_service(service.id(), version, spec).await?;
    Ok(())
}

/// What waiting for a service's tasks to run one image looks for.
struct Watch<'a> {
    service: &'a str,
    image: &'a str,
    timeout: Duration,
    settle: Duration,
    /// Whether a paused or rolled-back update fails the wait.
    heed_update_status: bool,
}

impl Watch<'_> {
    /// Waits until every task the manager wants running runs `image`, as many as the service
    /// has replicas, then that they stay up for `settle`: when they first all ran, and what
    /// showed it.
    async fn converge(&self, engine: &dyn Engine) -> Result<(SystemTime, String), StepError> {
        let began = Instant::now();
        let since = SystemTime::now() - Duration::from_secs(5);
        let mut serving: Option<(SystemTime, Instant, Vec<String>)> = None;
        loop {
            let service = required(engine, self.service).await?;
            let tasks = engine.service_tasks(service.id()).await?;
            let seen = self.look(&service, &tasks, since)?;
            serving = match (serving, seen) {
                (None, Some(ids)) => Some((SystemTime::now(), Instant::now(), ids)),
                (Some((at, from, before)), Some(ids)) if ids == before => Some((at, from, ids)),
                (Some(_), _) => {
                    return Err(StepError::Failed(format!(
                        "a task of {} running {} stopped or was replaced within the settle time",
                        self.service, self.image
                    )))
                }
                (None, None) => None,
            };
            if let Some((at, from, ids)) = &serving {
                if from.elapsed() >= self.settle {
                    return Ok((
                        *at,
                        format!(
                            "{} task(s) of {} ran {} and stayed up {}",
                            ids.len(),
                            self.service,
                            self.image,
                            humantime::format_duration(self.settle)
                        ),
                    ));
                }
            }
            if began.elapsed() >= self.timeout {
                return Err(StepError::Failed(format!(
                    "the tasks of {} did not all run {} within {}",
                    self.service,
                    self.image,
                    humantime::format_duration(self.timeout)
                )));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// The ids of the running tasks when every wanted task runs `image`; `None` while not
    /// yet; a failure once a task of `image` failed or the manager gave the update up.
    fn look(
        &self,
        service: &Service,
        tasks: &[Task],
        since: SystemTime,
    ) -> Result<Option<Vec<String>>, StepError> {
        if let Some(given_up) = service
            .update_given_up()
            .filter(|_| self.heed_update_status)
        {
            return Err(StepError::Failed(format!(
                "Swarm's update of {} is {given_up}",
                self.service
            )));
        }
        let ours = |t: &&Task| t.image() == self.image;
        if let Some(failed) = tasks
            .iter()
            .filter(ours)
            .find(|t| t.failed() && t.created().is_some_and(|c| c >= since))
        {
            return Err(StepError::Failed(format!(
                "a task of {} running {} {}: {}",
                self.service,
                self.image,
                failed.state_name(),
                failed.said()
            )));
        }
        let wanted: Vec<&Task> = tasks.iter().filter(|t| t.is_wanted()).collect();
        let enough = match service.replicas() {
            Some(n) => wanted.len() as i64 == n,
            None => !wanted.is_empty(),
        };
        let settled = enough
            && wanted.iter().all(|t| t.image() == self.image)
            && wanted.iter().all(|t| t.is_running());
        Ok(settled.then(|| {
            let mut ids: Vec<String> = wanted.iter().map(|t| t.id().to_string()).collect();
            ids.sort();
            ids
        }))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const NEW: &str = "reg/app:2@sha256:b";
    const OLD: &str = "reg/app:1@sha256:a";

    /// `update` is the manager's state of the update under way (`paused`, ...).
    fn service(replicas: i64, update: Option<&str>) -> Service {
        let status =
            update.map(|state| json!({"State": state, "Message": "update paused due to failure"}));
        serde_json::from_value(json!({
            "Spec": {"Mode": {"Replicated": {"Replicas": replicas}}},
            "UpdateStatus": status
        }))
        .unwrap()
    }

    /// A task, by the manager's names of its desired and current states (`running`, ...).
    fn task(id: &str, image: &str, desired: &str, state: &str) -> Task {
        serde_json::from_value(json!({
            "ID": id,
            "DesiredState": desired,
            "Status": {"State": state, "Err": "task: non-zero exit (3)"},
            "Spec": {"ContainerSpec": {"Image": image}},
            "CreatedAt": humantime::format_rfc3339_nanos(SystemTime::now()).to_string()
        }))
        .unwrap()
    }

    fn watch(heed: bool) -> Watch<'static> {
        Watch {
            service: "web",
            image: NEW,
            timeout: Duration::from_secs(1),
            settle: Duration::ZERO,
            heed_update_status: heed,
        }
    }

    fn look(w: &Watch<'_>, s: &Service, tasks: &[Task]) -> Result<Option<Vec<String>>, String> {
        let since = SystemTime::now() - Duration::from_secs(60);
        w.look(s, tasks, since).map_err(|e| e.to_string())
    }

    #[test]
    fn a_service_has_moved_once_every_wanted_task_runs_the_image() {
        let s = service(2, None);
        let w = watch(true);
        let old_going = task("o1", OLD, "shutdown", "running");
        let half = [
            task("n1", NEW, "running", "running"),
            task("o2", OLD, "running", "running"),
        ];
        assert_eq!(look(&w, &s, &half), Ok(None));
        let starting = [
            task("n1", NEW, "running", "running"),
            task("n2", NEW, "running", "starting"),
        ];
        assert_eq!(look(&w, &s, &starting), Ok(None));
        let done = [
            task("n2", NEW, "running", "running"),
            task("n1", NEW, "running", "running"),
            old_going,
        ];
        assert_eq!(
            look(&w, &s, &done),
            Ok(Some(vec!["n1".into(), "n2".into()]))
        );
        assert_eq!(look(&w, &service(0, None), &[]), Ok(Some(vec![])));
    }

    #[test]
    fn a_failed_task_or_a_paused_update_fails_the_wait_but_not_the_undo() {
        let failed = [task("n1", NEW, "shutdown", "failed")];
        let why = look(&watch(true), &service(1, None), &failed).unwrap_err();
        assert!(why.contains("failed: task: non-zero exit (3)"), "{why}");
        let paused = service(1, Some("paused"));
        let why = look(&watch(true), &paused, &[]).unwrap_err();
        assert!(why.contains("paused"), "{why}");
        // Putting the old image back, the paused update it undoes is no failure.
        let undo = Watch {
            image: OLD,
            ..watch(false)
        };
        let back = [task("o3", OLD, "running", "running")];
        assert_eq!(look(&undo, &paused, &back), Ok(Some(vec!["o3".into()])));
    }

    #[test]
    fn a_pinned_spec_names_the_target_it_was_asked_for() {
        assert!(names("reg/app:2@sha256:b", "reg/app:2"));
        assert!(names("reg/app:2", "reg/app:2"));
        assert!(!names("reg/app:20@sha256:b", "reg/app:2"));
    }
}
