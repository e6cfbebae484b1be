//! `cutover tasks`.

use clap::Args;
use cutover::ops::task;

use super::load_profiles;
use super::Site;
use crate::args;
use crate::output::{self, Exit};

pub async fn run(args: TasksArgs, site: &Site) -> anyhow::Result<Exit> {
    let catalog = load_profiles()?;
    let engine = site.engine().await?;
    let choice = args::choice(args.profile.as_deref());
    let tasks = task::tasks_of(&engine, &catalog, &args.name, &choice).await?;
    Ok(output::tasks(&args.name, &tasks, args.json))
}

#[derive(Args, Debug)]
pub struct TasksArgs {
    /// A container of the product
    pub name: String,
    /// The product profile: a name or a file
    #[arg(long, value_name = "NAME|FILE")]
    pub profile: Option<String>,
    /// Print JSON
    #[arg(long)]
    pub json: bool,
}
