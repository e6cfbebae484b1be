//! `cutover rollback`.

use clap::Args;
use cutover::ops::rollback;

use super::{before_change, carry_out, One, Site};
use crate::args::{BackupWhere, ChangeArgs};
use crate::output::Exit;

pub async fn run(args: RollbackArgs, site: &Site) -> anyhow::Result<Exit> {
    before_change(&args.change)?;
    let one = One::aim(site, &args.change, &args.name).await?;
    let request = args.backup_where.request();
    let prepared = rollback::prepare(
        &one.engine,
        &one.state,
        &one.catalog,
        &one.name,
        &one.given,
        !args.no_restore,
        &request,
    )
    .await?;
    carry_out(prepared, &one.engine, &one.state, &args.change, one.tell()).await
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
