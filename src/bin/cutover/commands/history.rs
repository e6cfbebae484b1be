//! `cutover history`.

use std::path::Path;

use clap::Args;
use cutover::ops::history;
use cutover::run::journal::StateDir;

use crate::output::{self, Exit};

pub fn run(args: HistoryArgs, state_root: &Path) -> anyhow::Result<Exit> {
    let state = StateDir::open(state_root)?;
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
