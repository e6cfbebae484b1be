//! `cutover rehearse`.

use clap::Args;
use cutover::ops::backup::BackupRequest;
use cutover::ops::compose::ComposeRequest;
use cutover::ops::rehearse;
use cutover::ops::upgrade::UpgradeRequest;

use super::upgrade::{MigrateArgs, TargetArgs};
use super::{bad_input, before_change, carry_out, One, Site};
use crate::args::ChangeArgs;
use crate::output::Exit;

pub async fn run(args: RehearseArgs, site: &Site) -> anyhow::Result<Exit> {
    before_change(&args.change)?;
    let mut options = args.target.options().map_err(bad_input)?;
    options.steps.migrate = args.migrate.migration().map_err(bad_input)?;
    let one = One::aim(site, &args.change, &args.name).await?;
    let request = UpgradeRequest {
        follows: None,
        name: one.name.clone(),
        with: Vec::new(),
        options,
        given: one.given.clone(),
        backup: BackupRequest {
            db_var: args.backup_db.clone(),
            ..BackupRequest::default()
        },
        compose: ComposeRequest::default(),
        related: Default::default(),
    };
    let prepared = rehearse::prepare(&one.engine, &one.state, &one.catalog, &request).await?;
    carry_out(prepared, &one.engine, &one.state, &args.change, one.tell()).await
}

#[derive(Args, Debug)]
pub struct RehearseArgs {
    /// The product's container; HOST/NAME for one of the config file's hosts
    pub name: String,
    #[command(flatten)]
    pub target: TargetArgs,
    #[command(flatten)]
    pub migrate: MigrateArgs,
    /// A variable of the container that holds its database's URL (postgres://... or mysql://...), when no profile names it
    #[arg(long, value_name = "VAR")]
    pub backup_db: Option<String>,
    #[command(flatten)]
    pub change: ChangeArgs,
}
