//! Containers docker-compose manages: which project and service they belong to, where the
//! project writes their image (a service's `image:` line, or a variable of the project's `.env`),
//! that place rewritten as text so comments and formatting stay, and the config hash compose
//! will expect of the recreated container, so that the next `docker-compose up` leaves it alone
//! and a `down`/`up` brings back the new version rather than the old one. Podman's systemd units
//! ([`units`]) name a container's image too, and are edited the same way.

pub mod edit;
pub mod units;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::engine::Container;
use serde::{Deserialize, Serialize};

pub const LABEL_PROJECT: &str = "com.docker.compose.project";
pub const LABEL_SERVICE: &str = "com.docker.compose.service";
pub const LABEL_WORKING_DIR: &str = "com.docker.compose.project.working_dir";
pub const LABEL_CONFIG_FILES: &str = "com.docker.compose.project.config_files";
pub const LABEL_ENVIRONMENT_FILE: &str = "com.docker.compose.project.environment_file";
pub const LABEL_CONFIG_HASH: &str = "com.docker.compose.config-hash";
pub const LABEL_ONE_OFF: &str = "com.docker.compose.oneoff";

/// A container's place in a compose project, from the labels compose gave it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Membership {
    pub project: String,
    pub service: String,
    pub working_dir: PathBuf,
    /// The `-f` files, in order (a later one overrides an earlier one).
    pub config_files: Vec<PathBuf>,
    /// The `--env-file`, or the project directory's `.env`.
    pub env_file: PathBuf,
}

impl Membership {
    pub fn of(c: &Container) -> Option<Membership> {
        let labels = c.labels();
        if labels.get(LABEL_ONE_OFF).is_some_and(|v| v == "True") {
            return None;
        }
        let working_dir = PathBuf::from(labels.get(LABEL_WORKING_DIR)?);
        let resolve = |p: &str| {
            let p = Path::new(p.trim());
            if p.is_absolute() {
                p.to_path_buf()
            } else {
                working_dir.join(p)
            }
        };
        let config_files = labels
            .get(LABEL_CONFIG_FILES)
            .map(|f| {
                f.split(',')
                    .filter(|s| !s.is_empty())
                    .map(resolve)
                    .collect()
            })
            .unwrap_or_default();
        let env_file = labels
            .get(LABEL_ENVIRONMENT_FILE)
            .map(|f| resolve(f))
            .unwrap_or_else(|| working_dir.join(".env"));
        Some(Membership {
            project: labels.get(LABEL_PROJECT)?.clone(),
            service: labels.get(LABEL_SERVICE)?.clone(),
            working_dir,
            config_files,
            env_file,
        })
    }

    pub fn describe(&self) -> String {
        format!(
            "service {} of compose project {} ({})",
            self.service,
            self.project,
            self.working_dir.display()
        )
    }
}

/// The services of a project's files as compose merges them: the later file wins per key.
pub fn services(texts: &[(PathBuf, String)]) -> Result<BTreeMap<String, ServiceDef>, ComposeError> {
    let mut merged: BTreeMap<String, ServiceDef> = BTreeMap::new();
    for (path, text) in texts {
        let doc: serde_json::Value = yaml_serde::from_str(text)
            .map_err(|e| ComposeError::Unreadable(format!("{}: {e}", path.display())))?;
        // Version 1 files have the services at the top; later ones under `services`.
        let services = match doc.get("services") {
            Some(s) => s.clone(),
            None if doc.get("version").is_none() => doc.clone(),
            None => continue,
        };
        for (name, def) in services.as_object().into_iter().flatten() {
            let entry = merged.entry(name.clone()).or_default();
            if let Some(image) = def.get("image").and_then(|i| i.as_str()) {
                entry.image = Some((path.clone(), image.to_string()));
            }
            if def.get("build").is_some() {
                entry.build = true;
            }
            match def.get("depends_on") {
                Some(serde_json::Value::Array(list)) => entry
                    .depends_on
                    .extend(list.iter().filter_map(|d| d.as_str().map(str::to_string))),
                Some(serde_json::Value::Object(map)) => {
                    entry.depends_on.extend(map.keys().cloned())
                }
                _ => {}
            }
        }
    }
    Ok(merged)
}

/// Why a project's or a unit's image cannot be rewritten to the new one: found before any
/// downtime; the message says what to change by hand.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ComposeError {
    /// A compose file that is not YAML, or an image written in a way cutover does not read.
    #[error("{0}")]
    Unreadable(String),
    /// The files do not let the new image be written safely, or do not name it where looked.
    #[error("{0}")]
    Unwritable(String),
    /// A file that cannot be written, or docker-compose that failed.
    #[error("{0}")]
    Failed(String),
}

impl ComposeError {
    /// The error of the systemd unit `unit`, named.
    fn in_unit(self, unit: &str) -> ComposeError {
        match self {
            ComposeError::Unreadable(e) => ComposeError::Unreadable(format!("unit {unit}: {e}")),
            ComposeError::Unwritable(e) => ComposeError::Unwritable(format!("unit {unit}: {e}")),
            ComposeError::Failed(e) => ComposeError::Failed(format!("unit {unit}: {e}")),
        }
    }
}

/// One service as the files define it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServiceDef {
    /// The file that sets its image last, and the image as written there.
    pub image: Option<(PathBuf, String)>,
    pub build: bool,
    pub depends_on: Vec<String>,
}

/// Where the new tag must be written so that the project names the new image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "in")]
pub enum Change {
    /// The service's `image:` line of a compose file.
    ImageLine { service: String, image: String },
    /// A variable of the project's `.env` that the image is written with.
    Variable { name: String, value: String },
    /// The image a Podman container's systemd unit runs (see [`units`]), which names `old`.
    UnitImage {
        unit: String,
        old: String,
        image: String,
    },
}

impl Change {
    /// The text after the change.
    pub fn apply(&self, text: &str) -> Result<String, ComposeError> {
        match self {
            Change::ImageLine { service, image } => edit::set_image(text, service, image),
            Change::Variable { name, value } => Ok(edit::set_dotenv(text, name, value)),
            Change::UnitImage { unit, old, image } => {
                units::set_image(text, old, image).map_err(|e| e.in_unit(unit))
            }
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Change::ImageLine { service, image } => {
                format!("image of service {service} to {image}")
            }
            Change::Variable { name, value } => format!("{name}={value}"),
            Change::UnitImage { unit, image, .. } => format!("image of unit {unit} to {image}"),
        }
    }
}

/// Where and how to write `new_image` for a service, or why it cannot be done safely.
pub fn plan_change(
    m: &Membership,
    defs: &BTreeMap<String, ServiceDef>,
    dotenv: Option<&str>,
    new_image: &str,
) -> Result<(PathBuf, Change), ComposeError> {
    let def = defs.get(&m.service).ok_or_else(|| {
        ComposeError::Unwritable(format!(
            "no file of project {} defines service {}",
            m.project, m.service
        ))
    })?;
    if def.build {
        return Err(ComposeError::Unwritable(format!(
            "service {} of project {} is built from `build:`; cutover upgrades images, and `docker-compose up --build` would rebuild the old one",
            m.service, m.project
        )));
    }
    let (file, written) = def.image.clone().ok_or_else(|| {
        ComposeError::Unwritable(format!(
            "no file of project {} sets the image of service {}",
            m.project, m.service
        ))
    })?;
    let Some(reference) = edit::variable(&written)? else {
        return Ok((
            file,
            Change::ImageLine {
                service: m.service.clone(),
                image: new_image.to_string(),
            },
        ));
    };
    let value = new_image
        .strip_prefix(reference.prefix.as_str())
        .and_then(|rest| rest.strip_suffix(reference.suffix.as_str()))
        .filter(|v| !v.is_empty())
        .ok_or_else(|| ComposeError::Unwritable(format!("the image of service {} is written {written:?}, which no value of ${} turns into {new_image}", m.service, reference.name)))?;
    let in_dotenv = dotenv
        .and_then(|text| crate::engine::facts::dotenv_value(text, &reference.name))
        .is_some();
    if !in_dotenv && reference.default.is_none() {
        return Err(ComposeError::Unwritable(format!(
            "the image of service {} is written {written:?} and ${} is not set in {}: it comes from the environment of whoever runs docker-compose, which cutover cannot change",
            m.service,
            reference.name,
            m.env_file.display()
        )));
    }
    Ok((
        m.env_file.clone(),
        Change::Variable {
            name: reference.name,
            value: value.to_string(),
        },
    ))
}

/// The config hash compose computes for `services` with the changed files in place of the
/// project's, as `docker-compose config --hash` prints it (compose 1.25 and later, and v2). The
/// changed files are written next to nothing of the project's: into `scratch`.
pub async fn config_hashes(
    m: &Membership,
    services: &[String],
    changed: &BTreeMap<PathBuf, String>,
    scratch: &Path,
) -> Result<BTreeMap<String, String>, ComposeError> {
    let mut args: Vec<String> = vec![
        "--project-name".into(),
        m.project.clone(),
        "--project-directory".into(),
        m.working_dir.display().to_string(),
    ];
    crate::private::dir(scratch).map_err(|e| ComposeError::Failed(e.to_string()))?;
    let write = |path: &Path, text: &str| -> Result<String, ComposeError> {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        let temp = scratch.join(format!("{}-{name}", changed.len()));
        crate::private::write(&temp, text.as_bytes())
            .map_err(|e| ComposeError::Failed(format!("{}: {e}", temp.display())))?;
        Ok(temp.display().to_string())
    };
    for file in &m.config_files {
        let path = match changed.get(file) {
            Some(text) => write(file, text)?,
            None => file.display().to_string(),
        };
        args.extend(["--file".to_string(), path]);
    }
    if let Some(text) = changed.get(&m.env_file) {
        let path = write(&m.env_file, text)?;
        args.extend(["--env-file".to_string(), path]);
    }
    args.extend([
        "config".to_string(),
        format!("--hash={}", services.join(",")),
    ]);
    let out = tokio::process::Command::new("docker-compose")
        .args(&args)
        .current_dir(&m.working_dir)
        .output()
        .await
        .map_err(|e| ComposeError::Failed(format!("docker-compose: {e}")))?;
    let _ = std::fs::remove_dir_all(scratch);
    if !out.status.success() {
        return Err(ComposeError::Failed(format!(
            "docker-compose config --hash failed: {}",
            crate::secrets::redact(String::from_utf8_lossy(&out.stderr).trim())
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            l.split_once(' ')
                .map(|(s, h)| (s.to_string(), h.trim().to_string()))
        })
        .collect())
}

/// Whether the docker-compose command is on this host.
pub fn available() -> bool {
    std::env::var_os("PATH").is_some_and(|paths| {
        std::env::split_paths(&paths).any(|dir| dir.join("docker-compose").is_file())
    })
}

#[cfg(test)]
mod tests;
