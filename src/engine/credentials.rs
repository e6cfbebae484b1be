//! Registry credentials, found the way the docker CLI finds them: `DOCKER_CONFIG` or
//! `~/.docker/config.json`, its `auths`, `credsStore` and per-registry `credHelpers`
//! (`docker-credential-NAME get`). bollard reads none of these itself.

use bollard::auth::DockerCredentials;
use docker_credential::{CredentialRetrievalError, DockerCredential};

use crate::secrets;

/// What the config holds for one registry. Both values are registered as secrets on lookup.
#[derive(Clone)]
pub enum Credential {
    Basic { username: String, password: String },
    IdentityToken(String),
}

/// The docker CLI's config file: `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`.
fn config_file() -> Option<std::path::PathBuf> {
    let dir = std::env::var_os("DOCKER_CONFIG")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| std::path::Path::new(&h).join(".docker")))?;
    Some(dir.join("config.json"))
}

/// Credentials for the registry under its config key, or `None` to go anonymously. A broken
/// helper is reported and treated as "no credentials", so the registry's own answer decides.
pub async fn lookup(key: &str) -> Option<Credential> {
    // The crate reports a missing config file as a read error; no file simply means anonymous.
    if !config_file().is_some_and(|p| p.exists()) {
        return None;
    }
    let server = key.to_string();
    let found = tokio::task::spawn_blocking(move || docker_credential::get_credential(&server))
        .await
        .ok()?;
    match found {
        Ok(DockerCredential::UsernamePassword(username, password)) => {
            secrets::register(&password);
            Some(Credential::Basic { username, password })
        }
        Ok(DockerCredential::IdentityToken(token)) => {
            secrets::register(&token);
            Some(Credential::IdentityToken(token))
        }
        Err(
            CredentialRetrievalError::NoCredentialConfigured
            | CredentialRetrievalError::ConfigNotFound,
        ) => None,
        // The helper's own output may hold the secret: name the helper only.
        Err(CredentialRetrievalError::HelperFailure { helper, .. }) => {
            tracing::warn!(
                "credential helper {helper} failed for {key}; going without credentials"
            );
            None
        }
        Err(e) => {
            tracing::warn!("could not read credentials for {key} ({e}); going without credentials");
            None
        }
    }
}

/// The same credentials in the form the engine's pull takes.
pub async fn for_pull(key: &str) -> Option<DockerCredentials> {
    let serveraddress = Some(key.to_string());
    Some(match lookup(key).await? {
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
