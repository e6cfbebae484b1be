//! `cutover check`.

use clap::Args;
use cutover::discover::check::{self, FleetHost, FleetWatch, Selection};
use cutover::engine::credentials::Logins;
use cutover::engine::registry::RegistryClient;
use cutover::fleet;
use cutover::run::FirstSeen;

use super::{given_of, load_config, load_profiles, Site};
use crate::args::{DiscoveryArgs, PolicyArgs};
use crate::output::{self, Exit};

/// One host, or with a config file that names `hosts`, every host of the fleet at once.
pub async fn run(args: CheckArgs, site: &Site) -> anyhow::Result<Exit> {
    let given = given_of(
        load_config(&args.discovery)?,
        None,
        Some(&args.policy),
        None,
    )?;
    let config = &given.config;
    let mut registry = RegistryClient::new(config.insecure_registries.clone())?;
    let selection = match (args.all, args.names.is_empty()) {
        (true, _) => Selection::All,
        (false, true) => Selection::OptedIn,
        (false, false) => Selection::Named(args.names.clone()),
    };
    let catalog = load_profiles()?;
    let found = match config.hosts.is_empty() {
        true => {
            let engine = site.engine().await?;
            registry = registry.logins(Logins::of(&engine));
            FleetWatch {
                watched: check::discover(&engine, &given, &catalog, &selection).await?,
                unreached: Vec::new(),
                nodes: Vec::new(),
            }
        }
        false => {
            let engines = fleet::connect(&config.hosts).await;
            let hosts = FleetHost::all(&engines);
            check::discover_fleet(&hosts, &given, &catalog, &selection).await?
        }
    };
    let statuses = found
        .check(&registry, &FirstSeen::under(&site.state_root))
        .await;
    Ok(output::check(
        &statuses,
        &config.hosts,
        &found.unreached,
        registry.requests(),
        args.json,
    ))
}

#[derive(Args, Debug)]
pub struct CheckArgs {
    /// Containers to check, HOST/NAME in a fleet [default: the opted-in ones]
    pub names: Vec<String>,
    /// Check every running container (of every host of the config file's fleet)
    #[arg(long, conflicts_with = "names")]
    pub all: bool,
    #[command(flatten)]
    pub discovery: DiscoveryArgs,
    #[command(flatten)]
    pub policy: PolicyArgs,
    /// Print JSON
    #[arg(long)]
    pub json: bool,
}
