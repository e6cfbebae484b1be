//! `cutover check`.

use clap::Args;
use cutover::discover::check::{self, Selection};
use cutover::engine::registry::RegistryClient;

use super::{load_config, load_profiles, Site};
use crate::cli::DiscoveryArgs;
use crate::output::{self, Exit};

pub async fn run(args: CheckArgs, site: &Site) -> anyhow::Result<Exit> {
    let config = load_config(&args.discovery)?;
    let engine = site.engine().await?;
    let registry = RegistryClient::new(config.insecure_registries.clone())?;
    let selection = match (args.all, args.names.is_empty()) {
        (true, _) => Selection::All,
        (false, true) => Selection::OptedIn,
        (false, false) => Selection::Named(args.names.clone()),
    };
    let catalog = load_profiles()?;
    let watched = check::discover(&engine, &config, &catalog, &selection).await?;
    let statuses = check::check(&registry, &watched).await;
    Ok(output::check(&statuses, registry.requests(), args.json))
}

#[derive(Args, Debug)]
pub struct CheckArgs {
    /// Containers to check [default: the opted-in ones]
    pub names: Vec<String>,
    /// Check every running container
    #[arg(long, conflicts_with = "names")]
    pub all: bool,
    #[command(flatten)]
    pub discovery: DiscoveryArgs,
    /// Print JSON
    #[arg(long)]
    pub json: bool,
}
