//! `cutover profiles`.

use std::path::PathBuf;

use clap::Subcommand;
use cutover::ops::live;

use super::{load_profiles, Site};
use crate::args;
use crate::output::{self, Exit};

pub async fn run(command: ProfilesCommand, site: &Site) -> anyhow::Result<Exit> {
    let catalog = load_profiles()?;
    match command {
        ProfilesCommand::List { json } => Ok(output::profiles(&catalog, json)),
        ProfilesCommand::Show { name } => {
            let loaded = catalog.named(&name).map_err(cutover::Error::from)?;
            Ok(output::profile(&loaded))
        }
        ProfilesCommand::Check {
            name,
            profile,
            json,
        } => {
            let engine = site.engine().await?;
            let choice = args::choice(profile.as_deref());
            let (profile, findings) =
                live::check_container(&engine, &catalog, &name, &choice).await?;
            Ok(output::profile_check(&name, &profile, &findings, json))
        }
        ProfilesCommand::Validate { file } => {
            let loaded = cutover::profile::load_file(&file).map_err(cutover::Error::from)?;
            println!(
                "{}: valid profile {:?}",
                file.display(),
                loaded.profile.name
            );
            Ok(Exit::Done)
        }
    }
}

#[derive(Subcommand, Debug)]
pub enum ProfilesCommand {
    /// The profiles this host knows (built in, /etc/cutover/profiles, ~/.config/cutover/profiles) and what they match
    List {
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// A profile as cutover resolved it, in YAML
    Show {
        /// A profile name, or a file
        name: String,
    },
    /// Check a profile file: its errors name the line and column
    Validate { file: PathBuf },
    /// Try a container's profile on the running product, changing nothing: its health and version rules for the version that runs, its database (found, dumpable, restorable, its extensions), on every container of its group. An upgrade runs the same checks before anything stops.
    #[command(
        after_help = "Exit codes:\n  0  the product answers as its profile says\n  2  a rule does not match (each is shown with what the product answered), or bad input"
    )]
    Check {
        /// The container
        name: String,
        /// The profile to try, a name or a file [default: the container's own]
        #[arg(long, value_name = "NAME|FILE")]
        profile: Option<String>,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
}

impl ProfilesCommand {
    pub fn json(&self) -> bool {
        match self {
            ProfilesCommand::List { json } | ProfilesCommand::Check { json, .. } => *json,
            ProfilesCommand::Show { .. } | ProfilesCommand::Validate { .. } => false,
        }
    }
}
