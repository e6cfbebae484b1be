//! `cutover restore`.

use clap::Args;
use cutover::ops::backup;

use super::{before_change, carry_out, One, Site};
use crate::args::{BackupWhere, ChangeArgs};
use crate::output::Exit;

pub async fn run(args: RestoreArgs, site: &Site) -> anyhow::Result<Exit> {
    before_change(&args.change)?;
    let one = One::aim(site, &args.change, &args.name).await?;
    let request = args.place.request();
    let prepared = backup::prepare_restore(
        &one.engine,
        &one.state,
        &one.catalog,
        &one.name,
        &args.backup,
        &one.given,
        &request,
    )
    .await?;
    carry_out(prepared, &one.engine, &one.state, &args.change, one.tell()).await
}

#[derive(Args, Debug)]
pub struct RestoreArgs {
    /// The container whose data is replaced; HOST/NAME for one of the config file's hosts
    pub name: String,
    /// The backup (`cutover backups NAME` lists them), or `latest`
    pub backup: String,
    #[command(flatten)]
    pub place: BackupWhere,
    #[command(flatten)]
    pub change: ChangeArgs,
}
