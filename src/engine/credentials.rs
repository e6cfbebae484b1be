//! Registry credentials, found where `docker login` and `podman login` keep them. bollard reads
//! none of these itself.
//!
//! Docker's: `$DOCKER_CONFIG/config.json` or `~/.docker/config.json`, its `auths`, `credsStore`
//! and per-registry `credHelpers` (`docker-credential-NAME get`).
//!
//! Podman's, in the order containers-auth.json(5) gives (containers/image 5.23, Debian's podman
//! 4.3): the file `REGISTRY_AUTH_FILE` names (podman-login(1)) or else the primary one,
//! `${XDG_RUNTIME_DIR}/containers/auth.json`, which a root without `XDG_RUNTIME_DIR` has at
//! `/run/containers/0/auth.json` (measured: where podman 4.3.1's `login` wrote); then
//! `${XDG_CONFIG_HOME:-~/.config}/containers/auth.json`; then Docker's. Its keys may name a
//! namespace (`registry/org/repo`), the most specific first. The legacy `~/.dockercfg` the
//! manual lists last is not read.

use std::ffi::OsString;
use std::path::PathBuf;

use bollard::auth::DockerCredentials;
use docker_credential::{CredentialRetrievalError, DockerCredential};

use super::reference::ImageRef;
use crate::secrets;

/// What the config holds for one registry. Both values are registered as secrets on lookup.
#[derive(Clone)]
pub enum Credential {
    Basic { username: String, password: String },
    IdentityToken(String),
}

/// Whose logins are read first: Docker's, with Podman's files after it for a registry it has
/// no entry for; or, when the engine is Podman, Podman's own order (which ends with Docker's).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Logins {
    #[default]
    DockerFirst,
    PodmanFirst,
}

impl Logins {
    /// The order for an engine: Podman's own for Podman's service.
    pub fn of(engine: &dyn super::Engine) -> Logins {
        match engine.other_than_docker() {
            Some(_) => Logins::PodmanFirst,
            None => Logins::DockerFirst,
        }
    }
}

/// One file that may hold a login, and how it names Docker Hub.
#[derive(Debug, Clone, PartialEq, Eq)]
struct LoginFile {
    path: PathBuf,
    docker: bool,
}

/// The files to read, in order, from the environment `var` reads and the user's id.
fn login_files(logins: Logins, var: impl Fn(&str) -> Option<OsString>, uid: u32) -> Vec<LoginFile> {
    let home = var("HOME").map(PathBuf::from);
    let docker = var("DOCKER_CONFIG")
        .map(PathBuf::from)
        .or_else(|| home.as_ref().map(|h| h.join(".docker")))
        .map(|dir| LoginFile {
            path: dir.join("config.json"),
            docker: true,
        });
    let primary = var("REGISTRY_AUTH_FILE").map(PathBuf::from).or_else(|| {
        Some(match var("XDG_RUNTIME_DIR") {
            Some(dir) => PathBuf::from(dir).join("containers/auth.json"),
            None => PathBuf::from(format!("/run/containers/{uid}/auth.json")),
        })
    });
    let config = var("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| home.map(|h| h.join(".config")))
        .map(|dir| dir.join("containers/auth.json"));
    let podmans = [primary, config]
        .into_iter()
        .flatten()
        .map(|path| LoginFile {
            path,
            docker: false,
        });
    match logins {
        Logins::DockerFirst => docker.into_iter().chain(podmans).collect(),
        Logins::PodmanFirst => podmans.chain(docker).collect(),
    }
}

/// The key to ask a file for: the most specific namespace its `auths` name (`host/org/repo`,
/// then `host/org`), unless a `credHelpers` entry claims the host, whose helper then answers for
/// it (containers-auth.json(5)); else the host (Docker Hub as the file's own tool names it).
fn key_in(file: &LoginFile, text: &[u8], image: &ImageRef) -> String {
    let host = match (image.registry(), file.docker) {
        (Some(host), _) => host,
        (None, true) => image.auth_key(),
        (None, false) => "docker.io",
    };
    let Ok(json) = serde_json::from_slice::<serde_json::Value>(text) else {
        return host.to_string();
    };
    if json["credHelpers"].get(host).is_some() {
        return host.to_string();
    }
    let path = image.path_in_registry();
    let parts: Vec<&str> = path.split('/').collect();
    (1..=parts.len())
        .rev()
        .map(|n| format!("{host}/{}", parts[..n].join("/")))
        .find(|key| json["auths"].get(key).is_some())
        .unwrap_or_else(|| host.to_string())
}

/// Credentials for the image's registry, from the first file that has some, or `None` to go
/// anonymously. A file that cannot be read, or a broken helper, is reported and passed over.
pub async fn lookup(image: &ImageRef, logins: Logins) -> Option<Credential> {
    let files = login_files(
        logins,
        |v| std::env::var_os(v),
        rustix::process::getuid().as_raw(),
    );
    let image = image.clone();
    let found = tokio::task::spawn_blocking(move || {
        files.into_iter().find_map(|file| {
            // A missing file simply holds no login.
            let text = std::fs::read(&file.path).ok()?;
            let key = key_in(&file, &text, &image);
            let path = file.path.display();
            match docker_credential::get_credential_from_reader(&text[..], &key) {
                Ok(found) => Some(found),
                Err(CredentialRetrievalError::NoCredentialConfigured) => None,
                // The helper's own output may hold the secret: name the helper only.
                Err(CredentialRetrievalError::HelperFailure { helper, .. }) => {
                    tracing::warn!("credential helper {helper} (named in {path}) failed for {key}; passed over");
                    None
                }
                Err(e) => {
                    tracing::warn!("could not read the credentials for {key} in {path} ({e}); passed over");
                    None
                }
            }
        })
    })
    .await
    .ok()??;
    Some(match found {
        DockerCredential::UsernamePassword(username, password) => {
            secrets::register(&password);
            Credential::Basic { username, password }
        }
        DockerCredential::IdentityToken(token) => {
            secrets::register(&token);
            Credential::IdentityToken(token)
        }
    })
}

/// The same credentials in the form the engine's pull takes.
pub async fn for_pull(image: &ImageRef, logins: Logins) -> Option<DockerCredentials> {
    let serveraddress = Some(image.auth_key().to_string());
    Some(match lookup(image, logins).await? {
        Credential::Basic { username, password } => DockerCredentials {
            username: Some(username),
            password: Some(password),
            serveraddress,
            ..Default::default()
        },
        Credential::IdentityToken(token) => DockerCredentials {
            identitytoken: Some(token),
            serveraddress,
            ..Default::default()
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<OsString> + 'a {
        move |name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| OsString::from(v))
        }
    }

    fn paths(files: Vec<LoginFile>) -> Vec<String> {
        files
            .into_iter()
            .map(|f| f.path.display().to_string())
            .collect()
    }

    #[test]
    fn podmans_files_come_in_the_manuals_order_and_dockers_last() {
        let vars = [("HOME", "/home/op"), ("XDG_RUNTIME_DIR", "/run/user/1000")];
        assert_eq!(
            paths(login_files(Logins::PodmanFirst, env(&vars), 1000)),
            [
                "/run/user/1000/containers/auth.json",
                "/home/op/.config/containers/auth.json",
                "/home/op/.docker/config.json",
            ]
        );
        assert_eq!(
            paths(login_files(Logins::DockerFirst, env(&vars), 1000))[0],
            "/home/op/.docker/config.json"
        );
    }

    #[test]
    fn registry_auth_file_xdg_config_home_and_a_root_without_a_runtime_dir() {
        let vars = [
            ("HOME", "/root"),
            ("REGISTRY_AUTH_FILE", "/etc/auth.json"),
            ("XDG_RUNTIME_DIR", "/run/user/0"),
            ("XDG_CONFIG_HOME", "/cfg"),
            ("DOCKER_CONFIG", "/dc"),
        ];
        assert_eq!(
            paths(login_files(Logins::PodmanFirst, env(&vars), 0)),
            [
                "/etc/auth.json",
                "/cfg/containers/auth.json",
                "/dc/config.json"
            ]
        );
        let root = [("HOME", "/root")];
        assert_eq!(
            paths(login_files(Logins::PodmanFirst, env(&root), 0))[0],
            "/run/containers/0/auth.json"
        );
    }

    #[test]
    fn the_most_specific_namespace_is_asked_unless_a_helper_claims_the_host() {
        let podman = LoginFile {
            path: "auth.json".into(),
            docker: false,
        };
        let image = ImageRef::parse("reg.lan:5000/org/team/app:1").unwrap();
        let file =
            br#"{"auths":{"reg.lan:5000":{},"reg.lan:5000/org":{},"reg.lan:5000/other":{}}}"#;
        assert_eq!(key_in(&podman, file, &image), "reg.lan:5000/org");
        let helped = br#"{"auths":{"reg.lan:5000/org":{}},"credHelpers":{"reg.lan:5000":"x"}}"#;
        assert_eq!(key_in(&podman, helped, &image), "reg.lan:5000");
        let hub = ImageRef::parse("postgres:15").unwrap();
        let official = br#"{"auths":{"docker.io/library/postgres":{}}}"#;
        assert_eq!(
            key_in(&podman, official, &hub),
            "docker.io/library/postgres"
        );
        assert_eq!(key_in(&podman, b"{}", &hub), "docker.io");
        let docker = LoginFile {
            docker: true,
            ..podman
        };
        assert_eq!(key_in(&docker, b"{}", &hub), "https://index.docker.io/v1/");
    }

    #[test]
    fn a_login_is_read_from_the_file_the_key_names() {
        let file = br#"{"auths":{"reg.lan/org":{"auth":"dTpw"}}}"#;
        let image = ImageRef::parse("reg.lan/org/app:1").unwrap();
        let podman = LoginFile {
            path: "auth.json".into(),
            docker: false,
        };
        let key = key_in(&podman, file, &image);
        assert_eq!(
            docker_credential::get_credential_from_reader(&file[..], &key),
            Ok(DockerCredential::UsernamePassword("u".into(), "p".into()))
        );
    }
}
