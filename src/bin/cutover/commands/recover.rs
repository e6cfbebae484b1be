//! `cutover recover`.

use clap::Args;
use cutover::run::recover;
use cutover::run::Interrupt;

use super::{confirm, ensure_can_confirm, Site};
use crate::cli::CommonArgs;
use crate::output::{self, Exit};

pub async fn run(args: RecoverArgs, site: &Site) -> anyhow::Result<Exit> {
    ensure_can_confirm(&args.common)?;
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

#[derive(Args, Debug)]
pub struct RecoverArgs {
    /// Only this container's interrupted runs
    pub name: Option<String>,
    #[command(flatten)]
    pub common: CommonArgs,
}
