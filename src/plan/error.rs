//! Why a plan cannot be made of what the engine reported with the options given: a
//! precondition, found before any step runs, so nothing has changed.

/// A refusal of the plan's builder; each message says what to give instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("{container} was created from image {image}, which names no repository; give the target with --image REPOSITORY:TAG")]
    NoRepository { container: String, image: String },
    #[error("{container} is given {given} images for {hops} hops")]
    HopImages {
        container: String,
        given: usize,
        hops: usize,
    },
    #[error(
        "--via {0} repeats a hop: give each intermediate tag once, in order, and not the target"
    )]
    RepeatedHop(String),
    /// An environment change that would lose a value (see
    /// [`crate::engine::successor::apply_env_changes`]).
    #[error("{0}")]
    Env(String),
    #[error("--carry-file {0}: give the absolute path inside the container")]
    CarryRelative(String),
    #[error("--carry-file {path}: it lies on the mount {mount} of {container}, which the new container shares already; it needs no carrying")]
    CarryOnMount {
        path: String,
        mount: String,
        container: String,
    },
    #[error("--expect-version needs a tag to compare with, and {0} has none")]
    NoTag(String),
    /// A rehearsal's container that would reach production (see [`super::rehearse::isolated`]).
    #[error("a rehearsal's container for {product} would keep {reaches} of production's; nothing was run")]
    NotIsolated { product: String, reaches: String },
    #[error("the upgrade of {0} runs no migration, so there is nothing to rehearse; give the one it needs with --migrate")]
    NothingToRehearse(String),
}
