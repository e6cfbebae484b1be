//! `cutover history`.

use clap::Args;
use cutover::ops::history;

use super::Site;
use crate::output::{self, Exit};

pub fn run(args: HistoryArgs, site: &Site) -> anyhow::Result<Exit> {
    let state = site.state()?;
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
