//! A product profile's steps for one hop, as the plan's options: the profile is data and the
//! plan knows no product, so the translation from one to the other lives here.

use std::time::Duration;

use crate::duration;
use crate::plan::build::{CarriedPath, Migration, StageOptions};
use crate::plan::steps::{Call, VersionSource};
use crate::profile::template;
use crate::profile::{Facts, Profile, StepSpec};

/// The steps a hop adds around the swap, as the command line's options would.
#[derive(Debug, Clone, Default)]
pub struct HopSteps {
    pub stage: StageOptions,
    /// Why the hop may not run at all (a required variable is missing).
    pub refusal: Option<String>,
}

/// How long a `call` step may keep calling when its profile does not say: as long as a
/// migration may run, since that is what it waits for.
const CALL_TIMEOUT: Duration = Migration::DEFAULT_TIMEOUT;

/// The steps `profile` adds to one hop (tags `from` to `to`) for a container with these facts.
pub fn for_hop(profile: &Profile, from: &str, to: &str, facts: &Facts) -> Result<HopSteps, String> {
    let mut hop = HopSteps::default();
    hop.stage.migrates_at_start = profile.migrates_at_start;
    if let Some(url) = &profile.expect_version {
        hop.stage.expect_version = Some(VersionSource::Url(url.clone()));
    }
    for step in &profile.steps {
        if !step.when().holds(from, to)? {
            continue;
        }
        match step {
            StepSpec::Migrate {
                command: shown,
                entrypoint,
                env,
                timeout,
                fails_if_output_has,
                ..
            } => {
                let command = template::expand_command(shown, facts)?;
                let timeout = timeout
                    .as_deref()
                    .map(|t| duration::parse(t).map_err(|e| format!("timeout: {e}")))
                    .transpose()?
                    .unwrap_or(Migration::DEFAULT_TIMEOUT);
                hop.stage.migrate = Some(Migration {
                    shown: (command != *shown).then(|| shown.clone()),
                    env: env.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
                    command,
                    entrypoint: entrypoint.clone(),
                    timeout,
                    fails_if_output_has: fails_if_output_has.clone(),
                });
            }
            StepSpec::CarryFile { path, optional, .. } => hop.stage.carry.push(CarriedPath {
                path: path.clone(),
                optional: *optional,
            }),
            StepSpec::EnvCopy {
                from: name,
                to: new,
                files,
                remove_from,
                ..
            } => match facts.value(name, files) {
                Some(value) => {
                    hop.stage.env.set.push((new.clone(), value));
                    if *remove_from {
                        hop.stage.env.unset.push(name.clone());
                    }
                }
                None if facts.value(new, files).is_some() => {}
                None => {
                    hop.refusal.get_or_insert(format!(
                        "the container has neither {name} nor {new} (in its environment or {}); the new version needs {new} set to the key the data was encrypted with",
                        if files.is_empty() { "its files".to_string() } else { files.join(", ") }
                    ));
                }
            },
            StepSpec::Refuse { why, .. } => {
                hop.refusal.get_or_insert(why.clone());
            }
            StepSpec::Note { text, .. } => hop.stage.notes.push(text.clone()),
            StepSpec::RequireEnv {
                any_of, files, why, ..
            } => {
                if !any_of.iter().any(|name| facts.value(name, files).is_some()) {
                    hop.refusal.get_or_insert(format!(
                        "the container has none of {} set: {why}",
                        any_of.join(", ")
                    ));
                }
            }
            StepSpec::Call {
                port,
                path,
                while_path,
                while_status,
                timeout,
                ..
            } => {
                let timeout = timeout
                    .as_deref()
                    .map(|t| duration::parse(t).map_err(|e| format!("timeout: {e}")))
                    .transpose()?
                    .unwrap_or(CALL_TIMEOUT);
                hop.stage.calls.push(Call {
                    port: *port,
                    path: path.clone(),
                    while_path: while_path.clone(),
                    while_status: *while_status,
                    timeout,
                });
            }
        }
    }
    Ok(hop)
}
