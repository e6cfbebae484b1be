//! What a container holds that cutover reads before it plans or restores: its whole
//! environment and small files inside it (dotenv files, a configuration file), read through the
//! archive API, which works on stopped containers too.

use std::collections::{BTreeMap, BTreeSet};

use super::{Engine, EngineError};

/// What the containers hold that a profile reads before planning: the whole environment of each
/// member, and the text of files inside them. Secrets among them are registered for redaction
/// as they are read, never printed.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    pub env: Vec<String>,
    /// Path to content; absent files are absent.
    pub files: BTreeMap<String, String>,
    /// Paths known to exist, of those asked about without reading them (a TLS key).
    pub present: BTreeSet<String>,
}

/// Files read from a container are configuration: anything larger is not read.
const MAX_FACT_BYTES: usize = 1024 * 1024;

impl Facts {
    /// The container's environment and these files inside it (through the archive API, which
    /// works on stopped containers too). Secret-looking values among them are registered for
    /// redaction before anything else sees them.
    pub async fn read(
        engine: &dyn Engine,
        c: &super::Container,
        files: &[String],
    ) -> Result<Facts, EngineError> {
        let mut facts = Facts {
            env: c.env().to_vec(),
            ..Facts::default()
        };
        let id = c.id().to_string();
        // Swarm mounts a task's secrets and configs where the archive API sees only empty
        // placeholders: a running task's files are read as the task sees them.
        let task = c.swarm_service().is_some() && c.is_running();
        for path in files {
            let text = match task {
                true => read_in_task(engine, &id, path).await?,
                false => read_text(engine, &id, path).await?,
            };
            if let Some(text) = text {
                crate::secrets::register_config_text(&text);
                facts.files.insert(path.clone(), text);
            }
        }
        // A value given as a file (`NAME_FILE=/run/secrets/x`, Docker's convention for secrets)
        // is the whole file: registered whole, since it is one value, not a configuration.
        for path in &facts.files {
            if facts
                .env
                .iter()
                .any(|e| e.ends_with(&format!("_FILE={}", path.0)))
            {
                crate::secrets::register(path.1.trim());
            }
        }
        Ok(facts)
    }

    /// Learns which of `paths` exist in the container, without reading them.
    pub async fn test(
        &mut self,
        engine: &dyn Engine,
        c: &super::Container,
        paths: &[String],
    ) -> Result<(), EngineError> {
        let id = c.id().to_string();
        for path in paths {
            if engine.archive_get(&id, path).await?.is_some() {
                self.present.insert(path.clone());
            }
        }
        Ok(())
    }

    /// A variable from the environment, else from the file its `NAME_FILE` variable names (when
    /// it was read), else from the first of the dotenv files that sets it.
    pub fn value(&self, name: &str, files: &[String]) -> Option<String> {
        env_value(&self.env, name)
            .filter(|v| !v.is_empty())
            .map(str::to_string)
            .or_else(|| {
                let path = env_value(&self.env, &format!("{name}_FILE"))?;
                self.files.get(path).map(|text| text.trim().to_string())
            })
            .or_else(|| {
                files
                    .iter()
                    .filter_map(|f| self.files.get(f))
                    .find_map(|text| dotenv_value(text, name))
            })
    }
}

/// The files named by the `NAME_FILE` variables of `names` in an environment: where a value is
/// given as a file, they must be read for the value.
pub fn file_variants(env: &[String], names: &[&str]) -> Vec<String> {
    names
        .iter()
        .filter_map(|n| env_value(env, &format!("{n}_FILE")))
        .filter(|p| p.starts_with('/'))
        .map(str::to_string)
        .collect()
}

/// A small text file as a running container sees it, by `cat` inside it; through the archive
/// API when the image has no `cat`.
async fn read_in_task(
    engine: &dyn Engine,
    id: &str,
    path: &str,
) -> Result<Option<String>, EngineError> {
    let mut text = String::new();
    let cat = ["cat".to_string(), path.to_string()];
    let code = engine
        .exec(id, &cat, &mut |line| {
            if text.len() <= MAX_FACT_BYTES {
                text.push_str(line);
                text.push('\n');
            }
        })
        .await?;
    match code {
        0 => Ok(Some(text)),
        // The shell's "not found" and "cannot run": no `cat` in the image.
        126 | 127 => read_text(engine, id, path).await,
        _ => Ok(None),
    }
}

/// A small text file inside a container.
async fn read_text(
    engine: &dyn Engine,
    id: &str,
    path: &str,
) -> Result<Option<String>, EngineError> {
    let unreadable = |message: String| EngineError::Api {
        action: format!("reading {path} from the container"),
        status: None,
        message,
    };
    let Some(mut stream) = engine.archive_get(id, path).await? else {
        return Ok(None);
    };
    let mut tar = Vec::new();
    while let Some(chunk) = futures_util::StreamExt::next(&mut stream).await {
        tar.extend_from_slice(&chunk?);
        if tar.len() > MAX_FACT_BYTES {
            return Err(unreadable(
                "it is larger than a configuration file should be".into(),
            ));
        }
    }
    let mut archive = tar::Archive::new(tar.as_slice());
    let mut entries = archive.entries().map_err(|e| unreadable(e.to_string()))?;
    let Some(entry) = entries.next() else {
        return Ok(None);
    };
    let mut text = String::new();
    std::io::Read::read_to_string(
        &mut entry.map_err(|e| unreadable(e.to_string()))?,
        &mut text,
    )
    .map_err(|e| unreadable(e.to_string()))?;
    Ok(Some(text))
}

/// The value of `name` in an environment (`NAME=value` entries).
pub fn env_value<'a>(env: &'a [String], name: &str) -> Option<&'a str> {
    env.iter().find_map(|e| {
        e.split_once('=')
            .filter(|(n, _)| *n == name)
            .map(|(_, v)| v)
    })
}

/// A value of a dotenv file (`NAME=value`, optionally quoted or exported).
pub fn dotenv_value(text: &str, name: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let line = line.trim().strip_prefix("export ").unwrap_or(line.trim());
        let (key, value) = line.split_once('=')?;
        (key.trim() == name)
            .then(|| value.trim().trim_matches(['"', '\'']).to_string())
            .filter(|v| !v.is_empty())
    })
}
