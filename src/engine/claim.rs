//! A claim on containers held on their engine itself: `NAME-cutover-lock`, a container created
//! from NAME's own image and never started, whose label says who holds it. The locks of the
//! state directory are this machine's alone; two controllers that reach one host see each
//! other's claims here, because the engine refuses a second container of the same name.

use std::collections::HashMap;

use bollard::models::{ContainerCreateBody, HostConfig};

use super::{Engine, EngineError};

/// What a claim's container is named after its container.
pub const SUFFIX: &str = "-cutover-lock";
const LABEL: &str = "cutover.lock";

#[derive(Debug, thiserror::Error)]
pub enum ClaimError {
    #[error("{container} is being changed by {holder}: wait for that run to end; if its controller is gone, run `cutover recover` there, or remove the container {container}{SUFFIX} once a person has looked")]
    Held { container: String, holder: String },
    #[error(transparent)]
    Engine(#[from] EngineError),
}

/// The containers claimed, to release when the run ends.
#[derive(Debug)]
pub struct Claim {
    names: Vec<String>,
}

/// Claims every one of `members` that exists, or none: a container another controller claimed
/// refuses the whole claim, naming its holder.
pub async fn claim(engine: &dyn Engine, members: &[String]) -> Result<Claim, ClaimError> {
    let mut claim = Claim { names: Vec::new() };
    for member in members {
        let Some(container) = engine.inspect(member).await? else {
            continue;
        };
        let body = ContainerCreateBody {
            image: Some(container.image_id().to_string()),
            cmd: Some(vec!["cutover-lock".into()]),
            labels: Some(HashMap::from([(LABEL.to_string(), holder())])),
            host_config: Some(HostConfig {
                network_mode: Some("none".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let name = format!("{member}{SUFFIX}");
        match engine.create(&name, &body).await {
            Ok(_) => claim.names.push(name),
            Err(e) => {
                let holder = match e.status() {
                    Some(409) => held_by(engine, &name).await,
                    _ => None,
                };
                claim.release(engine).await;
                return Err(match holder {
                    Some(holder) => ClaimError::Held {
                        container: member.clone(),
                        holder,
                    },
                    None => ClaimError::Engine(e),
                });
            }
        }
    }
    Ok(claim)
}

impl Claim {
    /// Removes the claim's containers; one that cannot be removed is only logged, since the run
    /// it guarded is over.
    pub async fn release(self, engine: &dyn Engine) {
        release(engine, &self.names).await;
    }
}

/// Removes the claims of `members` a run left (a killed controller's), once it was recovered.
pub async fn release_of(engine: &dyn Engine, members: &[String]) {
    let names: Vec<String> = members.iter().map(|m| format!("{m}{SUFFIX}")).collect();
    release(engine, &names).await;
}

async fn release(engine: &dyn Engine, names: &[String]) {
    for name in names {
        if let Err(e) = engine.remove_with_anonymous_volumes(name).await {
            tracing::warn!("the claim {name} was not removed: {e}; remove it by hand");
        }
    }
}

/// Who holds the claim `name`, as its label says; `None` when it is no claim of cutover's.
async fn held_by(engine: &dyn Engine, name: &str) -> Option<String> {
    let c = engine.inspect(name).await.ok()??;
    c.label(LABEL).map(str::to_string)
}

/// This controller, for the label: its host name, process and the time.
fn holder() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "an unknown host".into());
    format!(
        "cutover on {host} (process {}) since {}",
        std::process::id(),
        humantime::format_rfc3339_seconds(crate::clock::now())
    )
}
