//! `cutover history`.

use clap::Args;
use cutover::ops::history;
use cutover::run::journal::StateDir;

use super::Site;
use crate::output::{self, Exit};

pub fn run(args: HistoryArgs, site: &Site) -> anyhow::Result<Exit> {
    let state = StateDir::open(&site.state_root)?;
    let entries = history::history(&state, args.name.as_deref())?;
    Ok(output::history(&entries, args.json))
}

#[derive(Args, Debug)]
pub struct HistoryArgs {
    /// Only this container's runs
    pub name: Option<String>,
    /// Print JSON
    #[arg(long)]
    pub json: bool,
}
