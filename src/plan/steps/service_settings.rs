//! Settings a new version reads that a Swarm service must be given (DevLake's
//! `ENCRYPTION_SECRET` from 0.18, copied from its `ENCODE_KEY`), put where the service keeps
//! its settings, so that a value kept secret stays so: a variable of the spec's environment
//! when the old value is one there; a line added to the dotenv file when a Swarm secret or
//! config holds it. Secrets and configs never change once made: a new one is made with the
//! file's lines and the new ones, and the spec names it at the same target. The old one is
//! left as it is, for the way back. Made while no task runs, so that no task restarts for it.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::service::{required, update_spec};
use super::{Action, Cx, Done, Outputs, StepError, Traits};
use crate::engine::Stored;
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
                update_spec(cx.engine, &service, |spec| spec.set_env(&entries)).await?;
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
                    spec.point(*kind, from, (&id, made), target)
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
                update_spec(cx.engine, &service, |spec| spec.unset_env(names)).await?;
            }
            SettingsHome::File {
                kind,
                from,
                from_id,
                made,
                target,
            } => {
                update_spec(cx.engine, &service, |spec| {
                    spec.point(*kind, made, (from_id, from), target)
                })
                .await?;
                cx.engine.remove_stored(*kind, made).await?;
            }
        }
        Ok(None)
    }
}
