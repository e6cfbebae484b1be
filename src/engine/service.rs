//! A Swarm service and its tasks as the manager reports them, in the words the rest of cutover
//! asks them (its name, image, replicas, update order, the secrets and mounts its tasks get),
//! and the edits cutover makes to a service's spec. The manager's wire form stays inside
//! `engine/`.

use std::collections::HashMap;
use std::time::SystemTime;

use bollard::models::{
    ServiceSpecMode, ServiceSpecModeReplicatedJob, ServiceSpecUpdateConfigOrderEnum,
    ServiceUpdateStatusStateEnum, TaskSpecContainerSpec, TaskSpecRestartPolicy,
    TaskSpecRestartPolicyConditionEnum, TaskState,
};

use super::{env_name, put_env, Stored};

/// A Swarm service, as its manager reports it.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize)]
#[serde(transparent)]
pub struct Service(pub(super) bollard::models::Service);

/// A service's spec, as cutover hands it back to the manager changed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ServiceSpec(pub(super) bollard::models::ServiceSpec);

/// One task of a service: a container the manager runs (or ran) on some node.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize)]
#[serde(transparent)]
pub struct Task(pub(super) bollard::models::Task);

impl From<bollard::models::Service> for Service {
    fn from(s: bollard::models::Service) -> Service {
        Service(s)
    }
}

impl From<bollard::models::Task> for Task {
    fn from(t: bollard::models::Task) -> Task {
        Task(t)
    }
}

impl Service {
    pub fn id(&self) -> &str {
        self.0.id.as_deref().unwrap_or_default()
    }

    pub fn name(&self) -> &str {
        self.spec_ref()
            .and_then(|s| s.name.as_deref())
            .unwrap_or_default()
    }

    /// The version its spec was read at: an update names it, so that a change someone made
    /// meanwhile is refused rather than overwritten.
    pub fn version(&self) -> u64 {
        self.0
            .version
            .as_ref()
            .and_then(|v| v.index)
            .unwrap_or_default()
    }

    fn spec_ref(&self) -> Option<&bollard::models::ServiceSpec> {
        self.0.spec.as_ref()
    }

    /// What its tasks are created with: its spec's container part.
    pub(super) fn task_container(&self) -> TaskSpecContainerSpec {
        self.spec_ref()
            .and_then(|s| s.task_template.as_ref())
            .and_then(|t| t.container_spec.clone())
            .unwrap_or_default()
    }

    /// The image its spec names, as written there (pinned to a digest, usually).
    pub fn image(&self) -> String {
        self.task_container().image.unwrap_or_default()
    }

    /// The environment its spec gives each task (the image's own defaults not included).
    pub fn env(&self) -> Vec<String> {
        self.task_container().env.unwrap_or_default()
    }

    /// Its labels and its containers': either may opt it in or name its profile.
    pub fn labels(&self) -> HashMap<String, String> {
        let mut labels = self.task_container().labels.unwrap_or_default();
        labels.extend(
            self.spec_ref()
                .and_then(|s| s.labels.clone())
                .unwrap_or_default(),
        );
        labels
    }

    /// The networks its tasks join.
    pub fn networks(&self) -> Vec<String> {
        self.spec_ref()
            .and_then(|s| s.task_template.as_ref())
            .and_then(|t| t.networks.clone())
            .unwrap_or_default()
            .into_iter()
            .filter_map(|n| n.target)
            .collect()
    }

    /// A replicated service's replicas (Swarm's default is 1); `None` for a global one.
    pub fn replicas(&self) -> Option<i64> {
        self.spec_ref().and_then(replicas)
    }

    /// A job (replicated or global), which runs to its end rather than serving.
    pub fn is_job(&self) -> bool {
        self.spec_ref()
            .and_then(|s| s.mode.as_ref())
            .is_some_and(|m| m.replicated_job.is_some() || m.global_job.is_some())
    }

    /// Whether its update stops every task before any new one runs: stop-first (Swarm's
    /// default order), with as many replicas as it updates at once (0: all).
    pub fn stops_all(&self) -> bool {
        let update = self
            .spec_ref()
            .and_then(|s| s.update_config.clone())
            .unwrap_or_default();
        let start_first = update.order == Some(ServiceSpecUpdateConfigOrderEnum::START_FIRST);
        // Swarm's default parallelism is 1.
        let parallelism = update.parallelism.unwrap_or(1);
        !start_first && (parallelism == 0 || self.replicas().is_some_and(|n| n <= parallelism))
    }

    /// The Swarm secret or config its spec mounts at `path`: its kind, name and id.
    pub fn stored_at(&self, path: &str) -> Option<(Stored, String, String)> {
        let container = self.task_container();
        let at = |kind: Stored, file: Option<&str>| file.is_some_and(|f| kind.target(f) == path);
        let secret = container
            .secrets
            .unwrap_or_default()
            .into_iter()
            .find_map(|s| {
                let file = s.file.as_ref().and_then(|f| f.name.as_deref());
                at(Stored::Secret, file).then_some((Stored::Secret, s.secret_name?, s.secret_id?))
            });
        secret.or_else(|| {
            container
                .configs
                .unwrap_or_default()
                .into_iter()
                .find_map(|c| {
                    let file = c.file.as_ref().and_then(|f| f.name.as_deref());
                    at(Stored::Config, file).then_some((
                        Stored::Config,
                        c.config_name?,
                        c.config_id?,
                    ))
                })
        })
    }

    /// Whether its spec gives each task `path`: a secret, a config, or a mount holds it.
    pub fn gives(&self, path: &str) -> bool {
        let under =
            |dir: &str| path == dir || path.starts_with(&format!("{}/", dir.trim_end_matches('/')));
        self.stored_at(path).is_some()
            || self
                .task_container()
                .mounts
                .unwrap_or_default()
                .into_iter()
                .filter_map(|m| m.target)
                .any(|t| under(&t))
    }

    /// Why the manager gave up the update under way (paused, or rolled back), if it did.
    pub fn update_given_up(&self) -> Option<String> {
        let status = self.0.update_status.as_ref()?;
        let state = status.state?;
        matches!(
            state,
            ServiceUpdateStatusStateEnum::PAUSED
                | ServiceUpdateStatusStateEnum::ROLLBACK_STARTED
                | ServiceUpdateStatusStateEnum::ROLLBACK_PAUSED
                | ServiceUpdateStatusStateEnum::ROLLBACK_COMPLETED
        )
        .then(|| format!("{state}: {}", status.message.clone().unwrap_or_default()))
    }

    /// Its spec, to change and hand back ([`super::Engine::update_service`]).
    pub fn spec(&self) -> ServiceSpec {
        ServiceSpec(self.0.spec.clone().unwrap_or_default())
    }

    /// A one-shot job named `name` with its task template (networks, secrets, configs, mounts,
    /// environment), running `args` of `image` (with `entrypoint` when given and `env` over its
    /// own), never restarted, labelled `labels`.
    pub fn job(
        &self,
        name: &str,
        image: &str,
        args: &[String],
        entrypoint: Option<&[String]>,
        env: &[(String, String)],
        labels: &[(String, String)],
    ) -> ServiceSpec {
        let mut template = self
            .spec_ref()
            .and_then(|s| s.task_template.clone())
            .unwrap_or_default();
        let container = template.container_spec.get_or_insert_with(Default::default);
        container.image = Some(image.to_string());
        container.args = Some(args.to_vec());
        if let Some(entrypoint) = entrypoint {
            container.command = Some(entrypoint.to_vec());
        }
        let vars = container.env.get_or_insert_with(Vec::new);
        for (name, value) in env {
            put_env(vars, name, value);
        }
        template.restart_policy = Some(TaskSpecRestartPolicy {
            condition: Some(TaskSpecRestartPolicyConditionEnum::NONE),
            ..Default::default()
        });
        ServiceSpec(bollard::models::ServiceSpec {
            name: Some(name.to_string()),
            labels: Some(labels.iter().cloned().collect()),
            task_template: Some(template),
            mode: Some(ServiceSpecMode {
                replicated_job: Some(ServiceSpecModeReplicatedJob {
                    max_concurrent: Some(1),
                    total_completions: Some(1),
                }),
                ..Default::default()
            }),
            ..Default::default()
        })
    }
}

fn replicas(spec: &bollard::models::ServiceSpec) -> Option<i64> {
    spec.mode
        .as_ref()
        .and_then(|m| m.replicated.as_ref())
        .map(|r| r.replicas.unwrap_or(1))
}

impl ServiceSpec {
    fn container(&mut self) -> &mut TaskSpecContainerSpec {
        self.0
            .task_template
            .get_or_insert_with(Default::default)
            .container_spec
            .get_or_insert_with(Default::default)
    }

    pub fn set_image(&mut self, image: &str) {
        self.container().image = Some(image.to_string());
    }

    pub fn set_replicas(&mut self, replicas: i64) {
        self.0
            .mode
            .get_or_insert_with(Default::default)
            .replicated
            .get_or_insert_with(Default::default)
            .replicas = Some(replicas);
    }

    /// Sets `NAME=VALUE` entries in its tasks' environment, replacing the values they had.
    pub fn set_env(&mut self, entries: &[String]) {
        let env = self.container().env.get_or_insert_with(Vec::new);
        for entry in entries {
            let (name, value) = entry.split_once('=').unwrap_or((entry, ""));
            put_env(env, name, value);
        }
    }

    pub fn unset_env(&mut self, names: &[String]) {
        if let Some(env) = self.container().env.as_mut() {
            env.retain(|e| !names.iter().any(|n| n == env_name(e)));
        }
    }

    /// Makes the reference to the secret or config `old` at `target` name `new` (its id and
    /// name) instead.
    pub fn point(&mut self, kind: Stored, old: &str, new: (&str, &str), target: &str) {
        let container = self.container();
        let at = |file: Option<&str>| file.is_some_and(|f| kind.target(f) == target);
        match kind {
            Stored::Secret => {
                for s in container.secrets.iter_mut().flatten() {
                    let file = s.file.as_ref().and_then(|f| f.name.as_deref());
                    if s.secret_name.as_deref() == Some(old) && at(file) {
                        s.secret_id = Some(new.0.to_string());
                        s.secret_name = Some(new.1.to_string());
                    }
                }
            }
            Stored::Config => {
                for c in container.configs.iter_mut().flatten() {
                    let file = c.file.as_ref().and_then(|f| f.name.as_deref());
                    if c.config_name.as_deref() == Some(old) && at(file) {
                        c.config_id = Some(new.0.to_string());
                        c.config_name = Some(new.1.to_string());
                    }
                }
            }
        }
    }
}

impl Task {
    pub fn id(&self) -> &str {
        self.0.id.as_deref().unwrap_or_default()
    }

    /// The image it runs, as its spec names it.
    pub fn image(&self) -> &str {
        self.0
            .spec
            .as_ref()
            .and_then(|s| s.container_spec.as_ref())
            .and_then(|c| c.image.as_deref())
            .unwrap_or_default()
    }

    fn state(&self) -> Option<TaskState> {
        self.0.status.as_ref().and_then(|s| s.state)
    }

    /// Its state as the manager names it (`running`, `failed`, ...).
    pub fn state_name(&self) -> String {
        self.state().map(|s| s.to_string()).unwrap_or_default()
    }

    pub fn is_running(&self) -> bool {
        self.state() == Some(TaskState::RUNNING)
    }

    /// Whether the manager wants it running (rather than shut down or replaced).
    pub fn is_wanted(&self) -> bool {
        self.0.desired_state == Some(TaskState::RUNNING)
    }

    /// Whether it ended: completed, shut down, failed, rejected, orphaned or removed.
    pub fn has_ended(&self) -> bool {
        matches!(
            self.state(),
            Some(
                TaskState::COMPLETE
                    | TaskState::SHUTDOWN
                    | TaskState::FAILED
                    | TaskState::REJECTED
                    | TaskState::ORPHANED
                    | TaskState::REMOVE
            )
        )
    }

    /// Whether it failed, or no node would run it.
    pub fn failed(&self) -> bool {
        matches!(self.state(), Some(TaskState::FAILED | TaskState::REJECTED))
    }

    pub fn completed(&self) -> bool {
        self.state() == Some(TaskState::COMPLETE)
    }

    /// Its container's exit code, once it exited.
    pub fn exit_code(&self) -> Option<i64> {
        self.0
            .status
            .as_ref()
            .and_then(|s| s.container_status.as_ref())
            .and_then(|c| c.exit_code)
    }

    /// What the manager said of it: its error, else its message.
    pub fn said(&self) -> String {
        let status = self.0.status.clone().unwrap_or_default();
        status.err.or(status.message).unwrap_or_default()
    }

    pub fn created(&self) -> Option<SystemTime> {
        humantime::parse_rfc3339_weak(self.0.created_at.as_deref()?).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(replicas: i64, parallelism: Option<i64>, start_first: bool) -> Service {
        let mut update = serde_json::json!({ "Parallelism": parallelism });
        if start_first {
            update["Order"] = "start-first".into();
        }
        serde_json::from_value(serde_json::json!({"Spec": {
            "Mode": {"Replicated": {"Replicas": replicas}},
            "UpdateConfig": update
        }}))
        .unwrap()
    }

    #[test]
    fn a_service_is_down_only_when_its_update_stops_every_task_first() {
        assert!(
            service(1, None, false).stops_all(),
            "one replica, stop-first"
        );
        assert!(
            !service(2, None, false).stops_all(),
            "one task at a time of two"
        );
        assert!(service(3, Some(0), false).stops_all(), "all at once");
        assert!(service(2, Some(2), false).stops_all());
        assert!(!service(1, None, true).stops_all(), "start-first");
    }

    #[test]
    fn a_spec_points_a_secret_at_its_new_copy_and_sets_what_it_is_told() {
        let lake: Service = serde_json::from_value(serde_json::json!({"Spec": {
            "TaskTemplate": {"ContainerSpec": {
                "Env": ["A=1", "B=2"],
                "Secrets": [{"File": {"Name": "/app/.env"}, "SecretID": "s1", "SecretName": "env"}]
            }}
        }}))
        .unwrap();
        assert_eq!(
            lake.stored_at("/app/.env"),
            Some((Stored::Secret, "env".into(), "s1".into()))
        );
        let mut spec = lake.spec();
        spec.point(Stored::Secret, "env", ("s2", "env-2"), "/app/.env");
        spec.set_env(&["C=3".into()]);
        spec.unset_env(&["A".into()]);
        spec.set_image("demo:2");
        let changed = Service(bollard::models::Service {
            spec: Some(spec.0),
            ..Default::default()
        });
        assert_eq!(
            changed.stored_at("/app/.env"),
            Some((Stored::Secret, "env-2".into(), "s2".into()))
        );
        assert_eq!(changed.env(), ["B=2", "C=3"]);
        assert_eq!(changed.image(), "demo:2");
    }
}
