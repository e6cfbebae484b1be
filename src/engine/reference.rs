//! Image references as the Docker CLI writes them: `[registry/]repository[:tag][@digest]`.
//!
//! cutover upgrades to a *reference*, never to an image id, so that the new container shows
//! (and a later upgrade can read) which tag it runs.

use std::fmt;

/// Docker Hub's key in `~/.docker/config.json`, kept for historical reasons by the docker CLI.
const DOCKER_HUB_AUTH_KEY: &str = "https://index.docker.io/v1/";

/// Docker Hub's names for itself as a host: Podman reports its images in full
/// (`docker.io/library/postgres:15`, seen on podman 4.3.1), where Docker writes `postgres:15`.
const DOCKER_HUB_HOSTS: &[&str] = &["docker.io", "index.docker.io", "registry-1.docker.io"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
}

impl ImageRef {
    /// Parses a reference; `None` for an image id (`sha256:…`) or an empty string, which name no
    /// repository to pull from.
    pub fn parse(text: &str) -> Option<ImageRef> {
        let text = text.trim();
        if text.is_empty() || text.starts_with("sha256:") || text.contains(char::is_whitespace) {
            return None;
        }
        let (name, digest) = match text.split_once('@') {
            Some((name, digest)) => (name, Some(digest.to_string())),
            None => (text, None),
        };
        // A colon after the last slash separates the tag; one before it belongs to a host:port.
        let last_slash = name.rfind('/').map_or(0, |i| i + 1);
        let (repository, tag) = match name[last_slash..].rfind(':') {
            Some(i) => (
                &name[..last_slash + i],
                Some(name[last_slash + i + 1..].to_string()),
            ),
            None => (name, None),
        };
        if repository.is_empty() || tag.as_deref() == Some("") {
            return None;
        }
        Some(ImageRef {
            repository: repository.to_string(),
            tag,
            digest,
        })
    }

    /// The same repository at another tag (any digest pin is dropped: the tag decides).
    pub fn with_tag(&self, tag: &str) -> ImageRef {
        ImageRef {
            repository: self.repository.clone(),
            tag: Some(tag.to_string()),
            digest: None,
        }
    }

    /// What to ask the engine for: the digest when pinned, else the tag (`latest` when none,
    /// because an empty tag makes the engine pull *every* tag of the repository).
    pub fn tag_or_digest(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(digest), _) => digest.clone(),
            (None, Some(tag)) => tag.clone(),
            (None, None) => "latest".to_string(),
        }
    }

    /// The registry host, as the docker CLI decides it: the first path component when it looks
    /// like a host (has a dot or a port, or is `localhost`), else Docker Hub.
    pub fn registry(&self) -> Option<&str> {
        let (first, rest) = self.repository.split_once('/')?;
        let looks_like_host = first.contains('.') || first.contains(':') || first == "localhost";
        (looks_like_host && !rest.is_empty()).then_some(first)
    }

    /// Whether Docker Hub serves it: no host written, or one of Hub's own.
    pub fn on_docker_hub(&self) -> bool {
        self.registry()
            .is_none_or(|host| DOCKER_HUB_HOSTS.contains(&host))
    }

    /// The repository as its registry names it: without the host, and Docker Hub's official
    /// images under `library/`.
    pub fn path_in_registry(&self) -> String {
        let path = match self.registry() {
            Some(host) => &self.repository[host.len() + 1..],
            None => &self.repository,
        };
        match self.on_docker_hub() && !path.contains('/') {
            true => format!("library/{path}"),
            false => path.to_string(),
        }
    }

    /// The key under which `~/.docker/config.json` keeps this registry's credentials.
    pub fn auth_key(&self) -> &str {
        match (self.on_docker_hub(), self.registry()) {
            (false, Some(host)) => host,
            _ => DOCKER_HUB_AUTH_KEY,
        }
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::testing::{cases, mutated_text, seeds, text, ARBITRARY, MUTATED, ROUND_TRIP};

    /// References as registries name them, with the host they name: an optional host (with a
    /// port), a path (whose first part has no dot, so it is not taken for a host), a tag, a
    /// digest.
    fn reference() -> impl Strategy<Value = (Option<String>, ImageRef)> {
        (
            proptest::option::of("(localhost|[a-z0-9-]{1,8}\\.[a-z]{2,5})(:[0-9]{1,5})?"),
            proptest::collection::vec("[a-z0-9]([a-z0-9_-]{0,10}[a-z0-9])?", 1..4),
            proptest::option::of("[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}"),
            proptest::option::of("sha256:[0-9a-f]{64}"),
        )
            .prop_map(|(host, path, tag, digest)| {
                let repository = host
                    .iter()
                    .cloned()
                    .chain(path)
                    .collect::<Vec<_>>()
                    .join("/");
                (
                    host,
                    ImageRef {
                        repository,
                        tag,
                        digest,
                    },
                )
            })
    }

    /// Whatever a reference is read from, what cutover writes of it reads back the same:
    /// a container's image, a compose file's, a label's.
    fn reads_back_as_written(text: &str) -> Result<(), TestCaseError> {
        if let Some(r) = ImageRef::parse(text) {
            prop_assert!(!r.repository.is_empty());
            prop_assert_eq!(ImageRef::parse(&r.to_string()), Some(r));
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(cases(ROUND_TRIP))]
        #[test]
        fn a_written_reference_reads_back_equal((host, r) in reference()) {
            prop_assert_eq!(ImageRef::parse(&r.to_string()), Some(r.clone()));
            prop_assert_eq!(r.registry(), host.as_deref());
        }
    }

    proptest! {
        #![proptest_config(cases(ARBITRARY))]
        #[test]
        fn any_text_is_no_reference_or_one_that_reads_back(text in text()) {
            reads_back_as_written(&text)?;
        }
    }

    proptest! {
        #![proptest_config(cases(MUTATED))]
        #[test]
        fn mistyped_references_are_none_or_read_back(
            text in mutated_text(seeds(&[
                "127.0.0.1:5000/demo:1.2",
                "quay.io/projectquay/quay:v3.9.0@sha256:abc",
                "anchore/anchore-engine:v1.1.0",
                "localhost:5000/team/app",
            ]))
        ) {
            reads_back_as_written(&text)?;
        }
    }

    #[test]
    fn splits_tag_after_registry_port() {
        let r = ImageRef::parse("127.0.0.1:5000/demo:1.2").unwrap();
        assert_eq!(r.repository, "127.0.0.1:5000/demo");
        assert_eq!(r.tag.as_deref(), Some("1.2"));
        assert_eq!(r.registry(), Some("127.0.0.1:5000"));
        assert_eq!(r.with_tag("2").to_string(), "127.0.0.1:5000/demo:2");
    }

    #[test]
    fn port_without_tag_is_not_a_tag() {
        let r = ImageRef::parse("localhost:5000/team/app").unwrap();
        assert_eq!(r.repository, "localhost:5000/team/app");
        assert_eq!(r.tag, None);
        assert_eq!(r.tag_or_digest(), "latest");
    }

    #[test]
    fn docker_hub_names_have_no_registry() {
        let r = ImageRef::parse("anchore/anchore-engine:v1.1.0").unwrap();
        assert_eq!(r.registry(), None);
        assert_eq!(r.auth_key(), "https://index.docker.io/v1/");
        assert_eq!(ImageRef::parse("postgres").unwrap().registry(), None);
    }

    #[test]
    fn docker_hub_written_in_full_as_podman_reports_it_is_docker_hub() {
        let full = ImageRef::parse("docker.io/library/postgres:15").unwrap();
        let short = ImageRef::parse("postgres:15").unwrap();
        for r in [&full, &short] {
            assert!(r.on_docker_hub());
            assert_eq!(r.auth_key(), "https://index.docker.io/v1/");
            assert_eq!(r.path_in_registry(), "library/postgres");
        }
        let quay = ImageRef::parse("quay.io/projectquay/quay:v3.9.0").unwrap();
        assert!(!quay.on_docker_hub());
        assert_eq!(quay.auth_key(), "quay.io");
        assert_eq!(quay.path_in_registry(), "projectquay/quay");
        let local = ImageRef::parse("localhost/app").unwrap();
        assert_eq!(local.path_in_registry(), "app");
    }

    #[test]
    fn digest_is_kept_and_preferred() {
        let r = ImageRef::parse("quay.io/projectquay/quay:v3.9.0@sha256:abc").unwrap();
        assert_eq!(r.tag.as_deref(), Some("v3.9.0"));
        assert_eq!(r.tag_or_digest(), "sha256:abc");
        assert_eq!(r.to_string(), "quay.io/projectquay/quay:v3.9.0@sha256:abc");
    }

    #[test]
    fn image_ids_and_garbage_are_not_references() {
        assert_eq!(ImageRef::parse("sha256:0123"), None);
        assert_eq!(ImageRef::parse(""), None);
        assert_eq!(ImageRef::parse("demo:"), None);
        assert_eq!(ImageRef::parse("two words"), None);
    }
}
