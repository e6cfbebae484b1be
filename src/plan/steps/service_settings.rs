//! Settings a new version reads that a Swarm service must be given (DevLake's
//! `ENCRYPTION_SECRET` from 0.18, copied from its `ENCODE_KEY`), put where the service keeps
//! its settings, so that a value kept secret stays so: a variable of the spec's environment
//! when the old value is one there; a line added to the dotenv file when a Swarm secret or
//! config holds it. Secrets and configs never change once made: a new one is made with the
//! file's lines and the new ones, and the spec names it at the same target. The old one is
//! left as it is, for the way back. Made while no task runs, so that no task restarts for it.

use async_trait::async_trait;
use bollard::models::ServiceSpec;
use serde::{Deserialize, Serialize};

use super::service::{required, update_spec};
use super::{Action, Cx, Done, Outputs, StepError, Traits};
use crate::engine::{env_name, put_env, Stored};
use crate::plan::Plan;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServiceSettings {
    pub service: String,
    /// The variables given, by name.
    pub names: Vec<String>,
    pub into: SettingsHome,
    /// Their values, or the file's new text: secrets, in memory only.
    #[serde(skip)]
    pub text: Hidden,
}

/// Where a service keeps the settings given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SettingsHome {
    /// Its spec's environment: `text` holds `NAME=VALUE` lines.
    Env,
    /// The dotenv file at `target`, which the Swarm secret or config `from` holds; `made` holds
    /// it with the lines added (`text`, the whole file).
    File {
        kind: Stored,
        from: String,
        /// Its id, which the spec names again on the way back.
        from_id: String,
        made: String,
        target: String,
    },
}

/// A text that holds secrets: never printed, never journaled.
#[derive(Clone, Default)]
pub struct Hidden(pub String);

impl std::fmt::Debug for Hidden {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Hidden(***)")
    }
}

#[async_trait]
impl Action for ServiceSettings {
    fn describe(&self, _plan: &Plan) -> String {
        let names = self.names.join(", ");
        match &self.into {
            SettingsHome::Env => format!("set {names} in the environment of {}'s spec", self.service),
            SettingsHome::File {
                kind,
                from,
                made,
                target,
                ..
            } => format!(
                "make the Swarm {kind} {made}: {from}'s file with {names} added, and give it to {} at {target} in its place",
                self.service
            ),
        }
    }

    fn traits(&self) -> Traits {
        Traits::default()
    }

    async fn perform(&self, cx: &Cx<'_>) -> Result<Done, StepError> {
        if self.text.0.is_empty() {
            // A recovering run has no values: it only ever undoes this step.
            return Err(StepError::Failed(format!(
                "the values of {} are not known to this run",
                self.names.join(", ")
            )));
        }
        let service = required(cx.engine, &self.service).await?;
        match &self.into {
            SettingsHome::Env => {
                let entries: Vec<String> = self.text.0.lines().map(str::to_string).collect();
                update_spec(cx.engine, &service, |spec| set_env(spec, &entries)).await?;
                Ok(Done::said(format!(
                    "the spec of {} sets {}",
                    self.service,
                    self.names.join(", ")
                )))
            }
            SettingsHome::File {
                kind,
                from,
                made,
                target,
                ..
            } => {
                // One that a killed run made would hold the name.
                cx.engine.remove_stored(*kind, made).await?;
                let id = cx
                    .engine
                    .create_stored(*kind, made, self.text.0.as_bytes())
                    .await?;
                update_spec(cx.engine, &service, |spec| {
                    point(spec, *kind, from, (&id, made), target)
                })
                .await?;
                Ok(Done {
                    detail: Some(format!(
                        "{} reads {target} from the {kind} {made}, which adds {}",
                        self.service,
                        self.names.join(", ")
                    )),
                    outputs: Outputs::default(),
                    ..Done::default()
                })
            }
        }
    }

    fn undo_describe(&self, _plan: &Plan) -> Option<String> {
        Some(match &self.into {
            SettingsHome::Env => format!(
                "remove {} from the environment of {}'s spec",
                self.names.join(", "),
                self.service
            ),
            SettingsHome::File {
                kind, from, made, ..
            } => format!(
                "give {} the {kind} {from} again, and remove {made}",
                self.service
            ),
        })
    }

    async fn undo(
        &self,
        cx: &Cx<'_>,
        _outputs: Option<&Outputs>,
    ) -> Result<Option<String>, StepError> {
        let service = required(cx.engine, &self.service).await?;
        match &self.into {
            SettingsHome::Env => {
                let names = &self.names;
                update_spec(cx.engine, &service, |spec| unset_env(spec, names)).await?;
            }
            SettingsHome::File {
                kind,
                from,
                from_id,
                made,
                target,
            } => {
                update_spec(cx.engine, &service, |spec| {
                    point(spec, *kind, made, (from_id, from), target)
                })
                .await?;
                cx.engine.remove_stored(*kind, made).await?;
            }
        }
        Ok(None)
    }
}

fn container(spec: &mut ServiceSpec) -> &mut bollard::models::TaskSpecContainerSpec {
    spec.task_template
        .get_or_insert_with(Default::default)
        .container_spec
        .get_or_insert_with(Default::default)
}

fn set_env(spec: &mut ServiceSpec, entries: &[String]) {
    let env = container(spec).env.get_or_insert_with(Vec::new);
    for entry in entries {
        let (name, value) = entry.split_once('=').unwrap_or((entry, ""));
        put_env(env, name, value);
    }
}

fn unset_env(spec: &mut ServiceSpec, names: &[String]) {
    if let Some(env) = container(spec).env.as_mut() {
        env.retain(|e| !names.iter().any(|n| n == env_name(e)));
    }
}

/// Makes the reference to `old` at `target` name `new` (its id and name) instead.
fn point(spec: &mut ServiceSpec, kind: Stored, old: &str, new: (&str, &str), target: &str) {
    let container = container(spec);
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
