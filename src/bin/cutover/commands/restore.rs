//! `cutover restore`.

use clap::Args;
use cutover::ops::backup;

use super::{before_change, carry_out, given, load_profiles, Site};
use crate::args::{BackupWhere, ChangeArgs};
use crate::output::Exit;

pub async fn run(args: RestoreArgs, site: &Site) -> anyhow::Result<Exit> {
    before_change(&args.change)?;
    let (site, given, name) = site.aim_alone(given(&args.change)?, &args.name).await?;
    let catalog = load_profiles()?;
    let request = args.place.request();
    let (engine, state) = site.connect().await?;
    let prepared = backup::prepare_restore(
        &engine,
        &state,
        &catalog,
        &name,
        &args.backup,
        &given,
        &request,
    )
    .await?;
    carry_out(prepared, &engine, &state, &args.change, site.tell(&given)).await
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
