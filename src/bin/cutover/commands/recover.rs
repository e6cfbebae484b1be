//! `cutover recover`.

use clap::Args;
use std::collections::BTreeMap;

use cutover::discover::config::HostEntry;
use cutover::ops::fleet;
use cutover::run::recover;
use cutover::run::Interrupt;

use super::{confirm, ensure_can_confirm, load_config, Site};
use crate::cli::{CommonArgs, DiscoveryArgs};
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
    let recoveries = recover::recover(&engine, &state, args.name.as_deref(), &interrupt).await?;
    Ok(output::recoveries(&recoveries, args.common.json))
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
