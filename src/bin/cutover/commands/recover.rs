//! `cutover recover`.

use clap::Args;
use std::collections::BTreeMap;

use cutover::config::HostEntry;
use cutover::fleet;
use cutover::run::Interrupt;

use super::{confirm, ensure_can_confirm, load_config, Site};
use crate::args::{CommonArgs, DiscoveryArgs};
use crate::output::{self, Exit};

pub async fn run(args: RecoverArgs, site: &Site) -> anyhow::Result<Exit> {
    ensure_can_confirm(&args.common)?;
    let config = load_config(&args.discovery)?;
    if !config.hosts.is_empty() {
        return over_fleet(&args, site, &config.hosts).await;
    }
    let (engine, state) = site.connect().await?;
    let pending = state.unfinished(args.name.as_deref())?;
    if !pending.is_empty() && !args.common.yes {
        let names: Vec<String> = pending.iter().map(|r| r.plan.members.join(", ")).collect();
        confirm(&format!(
            "Recover the interrupted runs of {}?",
            names.join(", ")
        ))?;
    }
    let interrupt = Interrupt::from_signals();
    let recoveries =
        cutover::ops::recover::recover(&engine, &state, args.name.as_deref(), &interrupt).await?;
    elsewhere(site, args.name.as_deref());
    Ok(output::recoveries(&recoveries, args.common.json))
}

/// Interrupted runs this engine's recovery does not see, because the state directory's root
/// holds them: the host's standard socket's, or an earlier cutover's of this very engine (which
/// kept every engine's runs there). They are named, never taken for nothing to recover.
fn elsewhere(site: &Site, name: Option<&str>) {
    if site.endpoint.state_key().is_none() {
        return;
    }
    let Ok(root) = cutover::run::StateDir::open(&site.state_root) else {
        return;
    };
    let runs = root.unfinished(name).unwrap_or_default();
    if !runs.is_empty() {
        let names: Vec<String> = runs.iter().map(|r| r.plan.members.join(", ")).collect();
        let own = cutover::fleet::state_dir(&site.state_root, &site.endpoint);
        eprintln!(
            "cutover: {} also holds interrupted runs of {}, journaled for the host's standard socket or by a cutover before each engine kept its own state: recover them with -H unix:///var/run/docker.sock, or, if they ran on this engine, move their journals into {} and run recover again",
            site.state_root.join("runs").display(),
            names.join(", "),
            own.join("runs").display()
        );
    }
}

/// Every host of the config file's fleet, each by its own journals, after one confirmation.
async fn over_fleet(
    args: &RecoverArgs,
    site: &Site,
    hosts: &BTreeMap<String, HostEntry>,
) -> anyhow::Result<Exit> {
    let (only_host, only_name) = fleet::split(args.name.as_deref())?;
    let connected = fleet::connect_with_state(hosts, &site.state_root).await?;
    let hosts: Vec<fleet::Host<'_>> = connected.iter().map(fleet::Connected::host).collect();
    if !args.common.yes {
        let mut names = Vec::new();
        for host in hosts
            .iter()
            .filter(|h| only_host.is_none_or(|o| o == h.name))
        {
            if let Ok((_, state)) = &host.reached {
                for run in state.unfinished(only_name)? {
                    names.push(format!("{}/{}", host.name, run.plan.members.join(", ")));
                }
            }
        }
        if !names.is_empty() {
            confirm(&format!(
                "Recover the interrupted runs of {}?",
                names.join(", ")
            ))?;
        }
    }
    let interrupt = Interrupt::from_signals();
    let recoveries = fleet::recover(&hosts, args.name.as_deref(), &interrupt).await?;
    Ok(output::recoveries(&recoveries, args.common.json))
}

#[derive(Args, Debug)]
pub struct RecoverArgs {
    /// Only this container's interrupted runs (HOST/NAME with a fleet)
    pub name: Option<String>,
    #[command(flatten)]
    pub discovery: DiscoveryArgs,
    #[command(flatten)]
    pub common: CommonArgs,
}
