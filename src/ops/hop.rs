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
        if step.when().holds(from, to)? {
            add(step, facts, &mut hop)?;
        }
    }
    Ok(hop)
}

/// What one step of the profile adds to the hop; a step that finds the container unfit says
/// why, which refuses the hop.
fn add(step: &StepSpec, facts: &Facts, hop: &mut HopSteps) -> Result<(), String> {
    let stage = &mut hop.stage;
    let refusal = match step {
        StepSpec::Migrate {
            command: shown,
            entrypoint,
            env,
            timeout,
            fails_if_output_has,
            ..
        } => {
            let command = template::expand_command(shown, facts)?;
            stage.migrate = Some(Migration {
                shown: (command != *shown).then(|| shown.clone()),
                env: env.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
                command,
                entrypoint: entrypoint.clone(),
                timeout: timeout_or(timeout, Migration::DEFAULT_TIMEOUT)?,
                fails_if_output_has: fails_if_output_has.clone(),
            });
            None
        }
        StepSpec::CarryFile { path, optional, .. } => {
            stage.carry.push(CarriedPath {
                path: path.clone(),
                optional: *optional,
            });
            None
        }
        StepSpec::EnvCopy {
            from: name,
            to: new,
            files,
            remove_from,
            ..
        } => match facts.value(name, files) {
            Some(value) => {
                stage.env.set.push((new.clone(), value));
                if *remove_from {
                    stage.env.unset.push(name.clone());
                }
                None
            }
            None if facts.value(new, files).is_some() => None,
            None => Some(format!(
                "the container has neither {name} nor {new} (in its environment or {}); the new version needs {new} set to the key the data was encrypted with",
                if files.is_empty() { "its files".to_string() } else { files.join(", ") }
            )),
        },
        StepSpec::Refuse { why, .. } => Some(why.clone()),
        StepSpec::Note { text, .. } => {
            stage.notes.push(text.clone());
            None
        }
        StepSpec::RequireEnv {
            any_of, files, why, ..
        } => (!any_of.iter().any(|name| facts.value(name, files).is_some())).then(|| {
            format!(
                "the container has none of {} set: {why}",
                any_of.join(", ")
            )
        }),
        StepSpec::Call {
            port,
            path,
            while_path,
            while_status,
            timeout,
            ..
        } => {
            stage.calls.push(Call {
                port: *port,
                path: path.clone(),
                while_path: while_path.clone(),
                while_status: *while_status,
                timeout: timeout_or(timeout, CALL_TIMEOUT)?,
            });
            None
        }
    };
    if let Some(why) = refusal {
        hop.refusal.get_or_insert(why);
    }
    Ok(())
}

fn timeout_or(timeout: &Option<String>, default: Duration) -> Result<Duration, String> {
    match timeout {
        Some(t) => duration::parse(t).map_err(|e| format!("timeout: {e}")),
        None => Ok(default),
    }
}
