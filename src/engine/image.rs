//! An image and a network as the engine reports them, read through the few things cutover asks
//! of them; their wire forms stay inside `engine/`.

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
