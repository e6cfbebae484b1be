//! A one-shot container from the new image with the old container's configuration, such as a
//! database migration (`migrate head`, `upgradedb`), run while the service is stopped. Its
//! output is streamed; a non-zero exit or a timeout fails the step; it is removed either way.

use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::{bounded, finished, shown, Action, Cx, Done, Outputs, StepError, Traits, Transcript};
use crate::engine::successor::SuccessorSpec;
use crate::plan::{short_image, Plan, Slot};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OneShot {
    /// The container whose volumes it borrows (the one being replaced).
    pub source: Slot,
    pub name: String,
    pub image: String,
    /// Shown before the command when it replaces the image's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    /// As people read it: a profile's `${VAR}` templates unexpanded (the spec holds the words
    /// the container runs), a command line's words with secrets scrubbed.
    #[serde(serialize_with = "crate::secrets::shown_words")]
    pub command: Vec<String>,
    #[serde(with = "crate::clock::duration_ms")]
    pub timeout: Duration,
    /// Output that fails the step although the command exited 0.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fails_if_output_has: Vec<String>,
    /// Carries secrets, like every create request: never journaled.
    #[serde(skip)]
    pub spec: Box<SuccessorSpec>,
}

impl OneShot {
    /// Runs it with `files` (path, bytes) put into its container before it starts.
    pub async fn run_with(
        &self,
        cx: &Cx<'_>,
        files: &[(String, Vec<u8>)],
    ) -> Result<Done, StepError> {
        let spec = self.spec.with_source(cx.id(&self.source)?);
        let mut transcript = Transcript::new(&self.name).watching(&self.fails_if_output_has);
        let code = run_once(cx, &self.name, &spec, files, self.timeout, &mut transcript).await?;
        finished(
            &self.command,
            code,
            self.timeout,
            &transcript,
            "it was killed",
        )
    }
}

#[async_trait]
impl Action for OneShot {
    fn describe(&self, plan: &Plan) -> String {
        let whole = [
            self.entrypoint.clone().unwrap_or_default(),
            self.command.clone(),
        ]
        .concat();
        format!(
            "run `{}` in a one-shot container {} from {} with the configuration of {} (must exit 0 within {})",
            shown(&whole),
            self.name,
            short_image(&self.image),
            plan.label(&self.source),
            humantime::format_duration(self.timeout)
        )
    }

    fn traits(&self) -> Traits {
        Traits::migration()
    }

    async fn perform(&self, cx: &Cx<'_>) -> Result<Done, StepError> {
        self.run_with(cx, &[]).await
    }

    fn undo_describe(&self, _plan: &Plan) -> Option<String> {
        Some(format!("remove {} if it is left", self.name))
    }

    async fn undo(
        &self,
        cx: &Cx<'_>,
        _outputs: Option<&Outputs>,
    ) -> Result<Option<String>, StepError> {
        cx.remove_stray(&self.name).await?;
        Ok(None)
    }
}

/// Creates a one-shot container, puts `files` (path, bytes) into it, runs it to its end or its
/// timeout (then kills it) with its output in `transcript`, and removes it whatever happened.
/// `Some(code)` when it ended, `None` when it was killed.
pub async fn run_once(
    cx: &Cx<'_>,
    name: &str,
    spec: &SuccessorSpec,
    files: &[(String, Vec<u8>)],
    timeout: Duration,
    transcript: &mut Transcript,
) -> Result<Option<i64>, StepError> {
    let id = cx.engine.create_successor(name, spec).await?;
    let result = run(cx, &id, files, timeout, transcript).await;
    // Removed whatever happened: its output is in the log and the report.
    let removed = cx.engine.remove_successor(&id, spec).await;
    let code = result?;
    removed?;
    Ok(code)
}

async fn run(
    cx: &Cx<'_>,
    id: &str,
    files: &[(String, Vec<u8>)],
    timeout: Duration,
    transcript: &mut Transcript,
) -> Result<Option<i64>, StepError> {
    if !files.is_empty() {
        super::files::put_new(cx.engine, id, files).await?;
    }
    cx.engine.start(id).await?;
    let code = bounded(
        timeout,
        cx.engine
            .follow_to_exit(id, &mut |line| transcript.line(line)),
    )
    .await?;
    if code.is_none() {
        cx.engine.kill(id).await?;
    }
    Ok(code)
}
