//! `cutover history`.

use clap::Args;
use cutover::fleet;
use cutover::ops::history;

use super::{load_config, Site};
use crate::args::DiscoveryArgs;
use crate::output::{self, Exit};

pub fn run(args: HistoryArgs, site: &Site) -> anyhow::Result<Exit> {
    let config = load_config(&args.discovery)?;
    let entries = match config.hosts.is_empty() {
        true => history::history(&site.state()?, args.name.as_deref())?,
        false => fleet::history(&config.hosts, &site.state_root, args.name.as_deref())?,
    };
    Ok(output::history(&entries, args.json))
}

#[derive(Args, Debug)]
pub struct HistoryArgs {
    /// Only this container's runs (HOST/NAME with a fleet)
    pub name: Option<String>,
    #[command(flatten)]
    pub discovery: DiscoveryArgs,
    /// Print JSON
    #[arg(long)]
    pub json: bool,
}
