//! A registry client for update discovery: tag lists, digests and image ages, never a pull.
//!
//! Registries rate-limit and some charge per request, so the client does the least the answer
//! needs: one tag listing (more only when the registry paginates), one `HEAD` for a digest, and
//! the manifest and config only when a minimum age needs an image's age or release notes its
//! labels. It counts its requests so the benchmark can hold it to that.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use reqwest::header::{HeaderMap, ACCEPT, LINK, WWW_AUTHENTICATE};
use reqwest::{Method, Response, StatusCode};
use serde::Deserialize;

use crate::causes::error_text;
use crate::engine::credentials::{self, Credential, Logins};
use crate::engine::reference::ImageRef;
use crate::secrets;

/// Manifest types accepted for a digest: a multi-platform index answers with the digest a
/// `docker pull` by tag records in the image's RepoDigests.
const MANIFEST_TYPES: &[&str] = &[
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
];
const DOCKER_HUB_API: &str = "registry-1.docker.io";
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_PAGE_SIZE: usize = 1000;
/// What to look at when a registry refuses the login cutover found.
const CHECK_LOGIN: &str = " (check the login `docker login` or `podman login` keeps for it)";

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("{registry}: {message}")]
    Unreachable { registry: String, message: String },
    #[error("{registry}: {what} answered {status}{hint}")]
    Status {
        registry: String,
        what: String,
        status: u16,
        hint: &'static str,
    },
    #[error("{registry}: {what}: {message}")]
    Invalid {
        registry: String,
        what: String,
        message: String,
    },
}

#[derive(Clone)]
enum Auth {
    Basic { username: String, password: String },
    Bearer(String),
}

pub struct RegistryClient {
    http: reqwest::Client,
    insecure: Vec<String>,
    page_size: usize,
    requests: AtomicUsize,
    /// Authorisation that worked, per registry and repository, reused for later requests.
    auth: Mutex<HashMap<(String, String), Auth>>,
    /// Whose logins are read first (see [`credentials`]).
    logins: Logins,
}

/// Where a repository lives and how to reach it.
struct Repository {
    registry: String,
    base: String,
    repository: String,
}

impl RegistryClient {
    /// `insecure` registries (host or host:port) are reached over plain http; loopback ones
    /// always are, every other one only over https.
    pub fn new(insecure: Vec<String>) -> Result<RegistryClient, RegistryError> {
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .user_agent(concat!("cutover/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| RegistryError::Unreachable {
                registry: "-".into(),
                message: e.to_string(),
            })?;
        Ok(RegistryClient {
            http,
            insecure,
            page_size: DEFAULT_PAGE_SIZE,
            requests: AtomicUsize::new(0),
            auth: Mutex::new(HashMap::new()),
            logins: Logins::default(),
        })
    }

    /// Reads `podman login`'s files first, as Podman does, for the containers of its engine.
    pub fn logins(mut self, logins: Logins) -> RegistryClient {
        self.logins = logins;
        self
    }

    /// Smaller pages, for registries that paginate (and for tests of pagination).
    pub fn with_page_size(mut self, page_size: usize) -> RegistryClient {
        self.page_size = page_size.max(1);
        self
    }

    /// Requests sent so far, token requests included.
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::Relaxed)
    }

    fn endpoint(&self, image: &ImageRef) -> Repository {
        let registry = match image.registry() {
            Some(host) if !image.on_docker_hub() => host,
            _ => DOCKER_HUB_API,
        }
        .to_string();
        let repository = image.path_in_registry();
        let plain = is_loopback(&registry) || self.insecure.iter().any(|i| i == &registry);
        let base = format!("{}://{registry}", if plain { "http" } else { "https" });
        Repository {
            registry,
            base,
            repository,
        }
    }

    /// Every tag of the repository, following `Link` headers across pages.
    pub async fn tags(&self, image: &ImageRef) -> Result<Vec<String>, RegistryError> {
        #[derive(Deserialize)]
        struct Page {
            tags: Option<Vec<String>>,
        }
        let ep = self.endpoint(image);
        let mut url = format!(
            "{}/v2/{}/tags/list?n={}",
            ep.base, ep.repository, self.page_size
        );
        let mut tags = Vec::new();
        loop {
            let resp = self
                .send(&ep, image, Method::GET, &url, &[], "the tag list")
                .await?;
            let next = next_page(resp.headers(), &ep.base);
            let page: Page = read_json(resp, &ep, "the tag list").await?;
            tags.extend(page.tags.unwrap_or_default());
            match next {
                Some(n) => url = n,
                None => return Ok(tags),
            }
        }
    }

    /// The digest the registry serves for `tag`, from a `HEAD` of its manifest.
    pub async fn digest(&self, image: &ImageRef, tag: &str) -> Result<String, RegistryError> {
        let ep = self.endpoint(image);
        let url = format!("{}/v2/{}/manifests/{tag}", ep.base, ep.repository);
        let what = format!("the manifest of {tag}");
        let resp = self
            .send(&ep, image, Method::HEAD, &url, MANIFEST_TYPES, &what)
            .await?;
        resp.headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
            .ok_or_else(|| RegistryError::Invalid {
                registry: ep.registry,
                what,
                message: "no Docker-Content-Digest header".into(),
            })
    }

    /// What the registry says of the image behind `tag` for this machine's platform: the
    /// manifest (and for an index, the platform's manifest), then its config, whose creation
    /// time and labels are the image's own word on when it was built and what it is.
    pub async fn image(&self, image: &ImageRef, tag: &str) -> Result<RemoteImage, RegistryError> {
        #[derive(Deserialize)]
        struct Manifest {
            config: Option<Descriptor>,
            manifests: Option<Vec<Descriptor>>,
        }
        #[derive(Deserialize)]
        struct Descriptor {
            digest: String,
            platform: Option<Platform>,
        }
        #[derive(Deserialize)]
        struct Platform {
            os: String,
            architecture: String,
        }
        #[derive(Deserialize)]
        struct Blob {
            created: Option<String>,
            config: Option<BlobConfig>,
        }
        #[derive(Deserialize)]
        struct BlobConfig {
            #[serde(rename = "Labels")]
            labels: Option<HashMap<String, String>>,
        }
        let ep = self.endpoint(image);
        let what = format!("the manifest of {tag}");
        let mut reference = tag.to_string();
        let mut found = RemoteImage::default();
        for _ in 0..2 {
            let url = format!("{}/v2/{}/manifests/{reference}", ep.base, ep.repository);
            let resp = self
                .send(&ep, image, Method::GET, &url, MANIFEST_TYPES, &what)
                .await?;
            let served = resp
                .headers()
                .get("docker-content-digest")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let bytes = read_bytes(resp, &ep, &what).await?;
            if found.digest.is_empty() {
                // The tag's own digest (an index's, for a multi-platform image), as a `HEAD`
                // gives it; a registry that does not send it is answered by the bytes' hash.
                found.digest = served.unwrap_or_else(|| {
                    format!(
                        "sha256:{:x}",
                        <sha2::Sha256 as sha2::Digest>::digest(&bytes)
                    )
                });
            }
            let manifest: Manifest = parse_json(&bytes, &ep, &what)?;
            if let Some(config) = manifest.config {
                let url = format!("{}/v2/{}/blobs/{}", ep.base, ep.repository, config.digest);
                let resp = self
                    .send(&ep, image, Method::GET, &url, &[], "the image config")
                    .await?;
                let bytes = read_bytes(resp, &ep, "the image config").await?;
                let blob: Blob = parse_json(&bytes, &ep, "the image config")?;
                found.created = blob.created.as_deref().and_then(built_at);
                found.labels = blob.config.and_then(|c| c.labels).unwrap_or_default();
                return Ok(found);
            }
            let arch = platform_architecture();
            let chosen = manifest
                .manifests
                .unwrap_or_default()
                .into_iter()
                .find(|m| {
                    m.platform
                        .as_ref()
                        .is_some_and(|p| p.os == "linux" && p.architecture == arch)
                });
            match chosen {
                Some(m) => reference = m.digest,
                None => return Ok(found),
            }
        }
        Ok(found)
    }

    /// Sends a request with the authorisation that worked before; on a 401, follows the
    /// registry's challenge (Bearer token or Basic) once and retries.
    async fn send(
        &self,
        ep: &Repository,
        image: &ImageRef,
        method: Method,
        url: &str,
        accept: &[&str],
        what: &str,
    ) -> Result<Response, RegistryError> {
        let key = (ep.registry.clone(), ep.repository.clone());
        let known = self
            .auth
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
            .cloned();
        let resp = self
            .request(ep, method.clone(), url, accept, known.as_ref())
            .await?;
        let resp = if resp.status() == StatusCode::UNAUTHORIZED {
            let challenge = resp
                .headers()
                .get(WWW_AUTHENTICATE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string();
            let auth = self.answer(ep, image, &challenge).await?;
            let retried = self.request(ep, method, url, accept, Some(&auth)).await?;
            if retried.status().is_success() {
                self.auth
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(key, auth);
            }
            retried
        } else {
            resp
        };
        if resp.status().is_success() {
            return Ok(resp);
        }
        let hint = match resp.status() {
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => CHECK_LOGIN,
            StatusCode::NOT_FOUND => " (no such repository or tag)",
            StatusCode::TOO_MANY_REQUESTS => " (rate limited: try later)",
            _ => "",
        };
        Err(RegistryError::Status {
            registry: ep.registry.clone(),
            what: what.to_string(),
            status: resp.status().as_u16(),
            hint,
        })
    }

    async fn request(
        &self,
        ep: &Repository,
        method: Method,
        url: &str,
        accept: &[&str],
        auth: Option<&Auth>,
    ) -> Result<Response, RegistryError> {
        let mut req = self.http.request(method, url);
        if !accept.is_empty() {
            req = req.header(ACCEPT, accept.join(", "));
        }
        req = match auth {
            Some(Auth::Basic { username, password }) => req.basic_auth(username, Some(password)),
            Some(Auth::Bearer(token)) => req.bearer_auth(token),
            None => req,
        };
        self.send_counted(ep, req).await
    }

    /// Every request the client makes goes out here, so `requests()` counts them all.
    async fn send_counted(
        &self,
        ep: &Repository,
        req: reqwest::RequestBuilder,
    ) -> Result<Response, RegistryError> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        req.send().await.map_err(|e| RegistryError::Unreachable {
            registry: ep.registry.clone(),
            message: secrets::redact(&error_text(&e)),
        })
    }

    async fn answer(
        &self,
        ep: &Repository,
        image: &ImageRef,
        challenge: &str,
    ) -> Result<Auth, RegistryError> {
        let credential = credentials::lookup(image, self.logins).await;
        let basic = match &credential {
            Some(Credential::Basic { username, password }) => {
                Some((username.clone(), password.clone()))
            }
            _ => None,
        };
        let Some(bearer) = parse_bearer_challenge(challenge) else {
            // A Basic challenge (or none): the configured user and password, if any.
            return basic
                .map(|(username, password)| Auth::Basic { username, password })
                .ok_or_else(|| RegistryError::Status {
                    registry: ep.registry.clone(),
                    what: "anonymous access".into(),
                    status: 401,
                    hint: " (log in with `docker login` or `podman login`, or configure a credential helper)",
                });
        };
        #[derive(Deserialize)]
        struct Token {
            token: Option<String>,
            access_token: Option<String>,
        }
        let scope = bearer
            .scope
            .unwrap_or_else(|| format!("repository:{}:pull", ep.repository));
        let mut req = self
            .http
            .get(&bearer.realm)
            .query(&[("scope", scope.as_str())]);
        if let Some(service) = &bearer.service {
            req = req.query(&[("service", service.as_str())]);
        }
        if let Some((username, password)) = basic {
            req = req.basic_auth(username, Some(password));
        }
        let resp = self.send_counted(ep, req).await?;
        if !resp.status().is_success() {
            return Err(RegistryError::Status {
                registry: ep.registry.clone(),
                what: "the token service".into(),
                status: resp.status().as_u16(),
                hint: CHECK_LOGIN,
            });
        }
        let token: Token = read_json(resp, ep, "the token service").await?;
        let token = token
            .token
            .or(token.access_token)
            .ok_or_else(|| RegistryError::Invalid {
                registry: ep.registry.clone(),
                what: "the token service".into(),
                message: "no token in its answer".into(),
            })?;
        secrets::register(&token);
        Ok(Auth::Bearer(token))
    }
}

fn invalid(ep: &Repository, what: &str, message: String) -> RegistryError {
    RegistryError::Invalid {
        registry: ep.registry.clone(),
        what: what.to_string(),
        message,
    }
}

async fn read_bytes(
    resp: Response,
    ep: &Repository,
    what: &str,
) -> Result<bytes::Bytes, RegistryError> {
    resp.bytes()
        .await
        .map_err(|e| invalid(ep, what, error_text(&e)))
}

fn parse_json<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
    ep: &Repository,
    what: &str,
) -> Result<T, RegistryError> {
    serde_json::from_slice(bytes).map_err(|e| invalid(ep, what, e.to_string()))
}

async fn read_json<T: serde::de::DeserializeOwned>(
    resp: Response,
    ep: &Repository,
    what: &str,
) -> Result<T, RegistryError> {
    parse_json(&read_bytes(resp, ep, what).await?, ep, what)
}

/// What a registry says of one image.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RemoteImage {
    /// The digest the registry serves for the tag: what the engine records in `RepoDigests`.
    pub digest: String,
    /// When it was built, when its config says so truly (see [`built_at`]).
    pub created: Option<SystemTime>,
    /// Its config's labels (`org.opencontainers.image.*` among them).
    pub labels: HashMap<String, String>,
}

/// No container image was built before this: an earlier creation time is a placeholder.
const FIRST_REAL_BUILD: Duration = Duration::from_secs(946_684_800); // 2000-01-01T00:00:00Z

/// An image config's `created` as a time it was built, or `None` when it says none: reproducible
/// builds write the epoch (or a second after it, as Nix's dockerTools does), Go's zero time
/// (`0001-01-01`) reads as no time at all.
pub fn built_at(created: &str) -> Option<SystemTime> {
    humantime::parse_rfc3339_weak(created)
        .ok()
        .filter(|t| *t >= SystemTime::UNIX_EPOCH + FIRST_REAL_BUILD)
}

fn is_loopback(registry: &str) -> bool {
    let host = match registry.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or_default(),
        None => registry.rsplit_once(':').map_or(registry, |(h, _)| h),
    };
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The architecture name registries use for this machine.
fn platform_architecture() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

/// The `rel="next"` target of a `Link` header, made absolute against the registry.
fn next_page(headers: &HeaderMap, base: &str) -> Option<String> {
    let link = headers.get(LINK)?.to_str().ok()?;
    link.split(',').find_map(|part| {
        let (target, params) = part.split_once(';')?;
        params.contains("rel=\"next\"").then(|| {
            let target = target.trim().trim_start_matches('<').trim_end_matches('>');
            if target.starts_with("http://") || target.starts_with("https://") {
                target.to_string()
            } else {
                format!("{base}{target}")
            }
        })
    })
}

struct BearerChallenge {
    realm: String,
    service: Option<String>,
    scope: Option<String>,
}

fn parse_bearer_challenge(header: &str) -> Option<BearerChallenge> {
    let rest = header
        .trim()
        .strip_prefix("Bearer ")
        .or_else(|| header.trim().strip_prefix("bearer "))?;
    let mut params: HashMap<String, String> = HashMap::new();
    let mut rest = rest.trim();
    while let Some((key, after)) = rest.split_once('=') {
        let key = key
            .trim()
            .trim_start_matches(',')
            .trim()
            .to_ascii_lowercase();
        let (value, remainder) = match after.strip_prefix('"') {
            Some(quoted) => quoted.split_once('"').unwrap_or((quoted, "")),
            None => after.split_once(',').unwrap_or((after, "")),
        };
        params.insert(key, value.to_string());
        rest = remainder.trim_start_matches(',').trim();
    }
    Some(BearerChallenge {
        realm: params.remove("realm")?,
        service: params.remove("service"),
        scope: params.remove("scope"),
    })
}

#[cfg(test)]
mod tests {
    use reqwest::header::HeaderValue;

    use super::*;

    #[test]
    fn bearer_challenges_parse_with_commas_in_scopes() {
        let c = parse_bearer_challenge(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/ubuntu:pull,push""#,
        )
        .unwrap();
        assert_eq!(c.realm, "https://auth.docker.io/token");
        assert_eq!(c.service.as_deref(), Some("registry.docker.io"));
        assert_eq!(
            c.scope.as_deref(),
            Some("repository:library/ubuntu:pull,push")
        );
        assert!(parse_bearer_challenge(r#"Basic realm="Registry""#).is_none());
    }

    #[test]
    fn placeholder_creation_times_say_no_time() {
        for placeholder in [
            "1970-01-01T00:00:00Z",
            "1970-01-01T00:00:01Z",
            "0001-01-01T00:00:00Z",
            "",
        ] {
            assert_eq!(built_at(placeholder), None, "{placeholder:?}");
        }
        let real = built_at("2026-11-30T10:20:30.123456789Z").unwrap();
        assert_eq!(
            humantime::format_rfc3339_seconds(real).to_string(),
            "2026-11-30T10:20:30Z"
        );
    }

    #[test]
    fn link_headers_lead_to_the_next_page() {
        let mut h = HeaderMap::new();
        h.insert(
            LINK,
            HeaderValue::from_static(r#"</v2/demo/tags/list?last=b&n=2>; rel="next""#),
        );
        assert_eq!(
            next_page(&h, "http://127.0.0.1:5000").as_deref(),
            Some("http://127.0.0.1:5000/v2/demo/tags/list?last=b&n=2")
        );
        assert_eq!(next_page(&HeaderMap::new(), "x"), None);
    }

    #[test]
    fn plain_http_only_for_loopback_or_marked_registries() {
        let client = RegistryClient::new(vec!["registry.lan:5000".into()]).unwrap();
        let base = |r: &str| client.endpoint(&ImageRef::parse(r).unwrap()).base;
        assert_eq!(base("127.0.0.1:5000/demo:1"), "http://127.0.0.1:5000");
        assert_eq!(base("localhost:5000/demo"), "http://localhost:5000");
        assert_eq!(
            base("registry.lan:5000/team/app:2"),
            "http://registry.lan:5000"
        );
        assert_eq!(base("quay.io/projectquay/quay:v3.9.0"), "https://quay.io");
        let hub = client.endpoint(&ImageRef::parse("postgres:16").unwrap());
        assert_eq!(
            (hub.base.as_str(), hub.repository.as_str()),
            ("https://registry-1.docker.io", "library/postgres")
        );
    }
}
