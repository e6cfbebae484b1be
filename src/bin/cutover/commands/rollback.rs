//! `cutover rollback`.

use clap::Args;
use cutover::ops::rollback;

use super::{before_change, carry_out, given, load_profiles, Site};
use crate::args::{BackupWhere, ChangeArgs};
use crate::output::Exit;

pub async fn run(args: RollbackArgs, site: &Site) -> anyhow::Result<Exit> {
    before_change(&args.change)?;
    let (site, given, name) = site.aim_alone(given(&args.change)?, &args.name).await?;
    let catalog = load_profiles()?;
    let (engine, state) = site.connect().await?;
    let request = args.backup_where.request();
    let prepared = rollback::prepare(
        &engine,
        &state,
        &catalog,
        &name,
        &given,
        !args.no_restore,
        &request,
    )
    .await?;
    carry_out(prepared, &engine, &state, &args.change, site.tell(&given)).await
}

#[derive(Args, Debug)]
pub struct RollbackArgs {
    /// The container to roll back; HOST/NAME for one of the config file's hosts
    pub name: String,
    /// Keep the current data rather than restore the backup taken before the upgrade (the old
    /// version may not run on data the new one migrated)
    #[arg(long)]
    pub no_restore: bool,
    #[command(flatten)]
    pub backup_where: BackupWhere,
    #[command(flatten)]
    pub change: ChangeArgs,
}
