//! `cutover backups`.

use std::path::PathBuf;

use clap::Args;
use cutover::ops::backup::{copies_left, Leftover};
use cutover::run::StateDir;

use super::refused;
use super::Site;
use crate::output::{self, Exit};

pub async fn run(args: BackupsArgs, site: &Site) -> anyhow::Result<Exit> {
    let state = site.state()?;
    let root = args
        .backup_dir
        .clone()
        .unwrap_or_else(|| state.path().join("backups"));
    let (found, unreadable) = cutover::backup::catalogue(&root, args.name.as_deref())
        .map_err(|e| refused(e.to_string()))?;
    for u in &unreadable {
        tracing::warn!(
            "the backup in {} cannot be read: {}",
            u.path.display(),
            u.why
        );
    }
    let left = left_behind(site, &state).await;
    Ok(output::backups(&found, &left, args.json))
}

/// The copies of databases runs left on the engine, asked briefly: the backups are listed
/// whether or not the engine answers.
async fn left_behind(site: &Site, state: &StateDir) -> Vec<Leftover> {
    let asked = tokio::time::timeout(std::time::Duration::from_secs(5), async {
        let engine = site.engine().await?;
        anyhow::Ok(copies_left(&engine, state).await)
    })
    .await;
    match asked {
        Ok(Ok(left)) => left,
        Ok(Err(e)) => {
            tracing::debug!("the engine was not asked for copies left behind: {e}");
            Vec::new()
        }
        Err(_) => Vec::new(),
    }
}

#[derive(Args, Debug)]
pub struct BackupsArgs {
    /// Only this container's backups
    pub name: Option<String>,
    /// Where backups live [default: STATE_DIR/backups]
    #[arg(long, value_name = "DIR")]
    pub backup_dir: Option<PathBuf>,
    /// Print JSON
    #[arg(long)]
    pub json: bool,
}
