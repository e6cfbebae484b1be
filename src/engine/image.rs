//! An image and a network as the engine reports them, read through the few things cutover asks
//! of them; their wire forms stay inside `engine/`.

use std::collections::HashMap;

use bollard::models::{ImageConfig, ImageInspect, NetworkInspect};

/// An image this engine has.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Image(pub(super) ImageInspect);

impl Image {
    /// Its configuration: the defaults a container of it starts with.
    pub(super) fn config(&self) -> Option<ImageConfig> {
        self.0.config.clone()
    }

    /// The environment a container of it starts with unless told otherwise.
    pub fn env(&self) -> Vec<String> {
        self.config().and_then(|c| c.env).unwrap_or_default()
    }

    /// `repository@digest` for each registry it was pulled from or pushed to.
    pub fn repo_digests(&self) -> Vec<String> {
        self.0.repo_digests.clone().unwrap_or_default()
    }

    /// Its labels, as its config holds them (the registry's image config has the same).
    pub fn labels(&self) -> HashMap<String, String> {
        self.config().and_then(|c| c.labels).unwrap_or_default()
    }
}

/// What an image's OCI labels say of where it comes from: the pre-defined annotation keys of
/// the OCI image spec (opencontainers/image-spec annotations.md, "Pre-Defined Annotation
/// Keys"), which builders also write as labels (`docker buildx`'s metadata action, Buildah).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OciLabels {
    /// `org.opencontainers.image.source`: "URL to get source code for building the image".
    pub source: Option<String>,
    /// `org.opencontainers.image.url`: "URL to find more information on the image".
    pub url: Option<String>,
    /// `org.opencontainers.image.documentation`: "URL to get documentation on the image".
    pub documentation: Option<String>,
    /// `org.opencontainers.image.version`: "version of the packaged software".
    pub version: Option<String>,
    /// `org.opencontainers.image.created`: "date and time on which the image was built"
    /// (RFC 3339), as written.
    pub created: Option<String>,
}

impl OciLabels {
    pub const SOURCE: &'static str = "org.opencontainers.image.source";
    pub const URL: &'static str = "org.opencontainers.image.url";
    pub const DOCUMENTATION: &'static str = "org.opencontainers.image.documentation";
    pub const VERSION: &'static str = "org.opencontainers.image.version";
    pub const CREATED: &'static str = "org.opencontainers.image.created";

    /// The OCI labels among `labels`; an empty value counts as none.
    pub fn read(labels: &HashMap<String, String>) -> OciLabels {
        let get = |key: &str| {
            labels
                .get(key)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        OciLabels {
            source: get(Self::SOURCE),
            url: get(Self::URL),
            documentation: get(Self::DOCUMENTATION),
            version: get(Self::VERSION),
            created: get(Self::CREATED),
        }
    }

    /// The web pages they name, each with its label, the documentation first: where a reader
    /// looks for what changed. Only `http://` and `https://` URLs: a label is anyone's text, and
    /// what is shown in a message should be a page.
    pub fn pages(&self) -> Vec<(&'static str, &str)> {
        let mut pages: Vec<(&'static str, &str)> = Vec::new();
        for (key, value) in [
            (Self::DOCUMENTATION, &self.documentation),
            (Self::URL, &self.url),
            (Self::SOURCE, &self.source),
        ] {
            let Some(url) = value.as_deref() else {
                continue;
            };
            let web = url.starts_with("https://") || url.starts_with("http://");
            if web && !pages.iter().any(|(_, seen)| *seen == url) {
                pages.push((key, url));
            }
        }
        pages
    }
}

/// A network of this engine.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Network(pub(super) NetworkInspect);

impl Network {
    /// Whether it has no route out (`internal`).
    pub fn is_internal(&self) -> bool {
        self.0.internal == Some(true)
    }

    /// The IPv4 address the container `id` has on it, without its prefix length.
    pub(super) fn address_of(&self, id: &str) -> Option<String> {
        let endpoint = self.0.containers.as_ref()?.get(id)?;
        let address = endpoint.ipv4_address.as_deref()?;
        Some(address.split('/').next().unwrap_or_default().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oci_labels_name_their_pages_documentation_first_and_only_web_ones() {
        let labels: HashMap<String, String> = [
            (OciLabels::SOURCE, "https://github.com/example/app"),
            (OciLabels::URL, "https://github.com/example/app"),
            (OciLabels::DOCUMENTATION, "https://docs.example.com/app"),
            (OciLabels::VERSION, "2.1.0"),
            ("org.opencontainers.image.vendor", "Example"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let oci = OciLabels::read(&labels);
        assert_eq!(oci.version.as_deref(), Some("2.1.0"));
        assert_eq!(
            oci.pages(),
            [
                (OciLabels::DOCUMENTATION, "https://docs.example.com/app"),
                (OciLabels::URL, "https://github.com/example/app"),
            ],
            "the same URL twice is one page"
        );
        let odd = HashMap::from([
            (
                OciLabels::SOURCE.to_string(),
                "git@github.com:x/y".to_string(),
            ),
            (OciLabels::URL.to_string(), " ".to_string()),
        ]);
        let oci = OciLabels::read(&odd);
        assert_eq!(oci.url, None, "an empty label is none");
        assert!(oci.pages().is_empty(), "no web page among them");
    }
}
