//! `cutover backup`.

use clap::Args;
use cutover::ops::backup::{self, BackupRequest};

use super::{before_change, carry_out, given, load_profiles, Site};
use crate::args::{BackupWhat, BackupWhere, ChangeArgs};
use crate::output::Exit;

pub async fn run(args: BackupArgs, site: &Site) -> anyhow::Result<Exit> {
    before_change(&args.change)?;
    let (site, given, name) = site.aim(given(&args.change)?, &args.name)?;
    let catalog = load_profiles()?;
    let request = BackupRequest {
        db_var: args.what.backup_db.clone(),
        volumes: args.what.backup_volumes,
        online: args.online,
        ..args.place.request()
    };
    let (engine, state) = site.connect().await?;
    let prepared =
        backup::prepare_backup(&engine, &state, &catalog, &name, &given, &request).await?;
    carry_out(
        prepared,
        &engine,
        &state,
        &args.change,
        super::tell(&site, &given),
    )
    .await
}

#[derive(Args, Debug)]
pub struct BackupArgs {
    /// The container to back up; HOST/NAME for one of the config file's hosts
    pub name: String,
    /// Back up while it runs instead of stopping it
    #[arg(long)]
    pub online: bool,
    #[command(flatten)]
    pub what: BackupWhat,
    #[command(flatten)]
    pub place: BackupWhere,
    #[command(flatten)]
    pub change: ChangeArgs,
}
