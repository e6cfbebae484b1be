//! The groups of flags several commands take, read once into what the library asks for.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use cutover::health::{HealthSettings, JsonConditionError};
use cutover::ops::backup::BackupRequest;
use cutover::profile::Choice;
use serde::{Deserialize, Serialize};

/// What a backup holds beyond the database a profile names.
#[derive(Args, Debug, Serialize, Deserialize)]
#[command(next_help_heading = "Backup")]
pub struct BackupWhat {
    /// A variable of the container that holds its database's URL (postgres://... or mysql://...), when no profile names it
    #[arg(long, value_name = "VAR")]
    pub backup_db: Option<String>,
    /// Back up the container's volumes and bind mounts too
    #[arg(long)]
    pub backup_volumes: bool,
}

#[derive(Args, Debug, Serialize, Deserialize)]
#[command(next_help_heading = "Backup")]
pub struct BackupWhere {
    /// Where backups live, a folder per container [default: STATE_DIR/backups]
    #[arg(long, value_name = "DIR")]
    pub backup_dir: Option<PathBuf>,
    /// How many backups of a container to keep [default: 5]
    #[arg(long, value_name = "N")]
    pub keep_backups: Option<usize>,
}

impl BackupWhere {
    /// A request for backups kept where these flags say.
    pub fn request(&self) -> BackupRequest {
        BackupRequest {
            dir: self.backup_dir.clone(),
            keep: self.keep_backups,
            ..BackupRequest::default()
        }
    }
}

/// The `profile` flag's three forms.
pub fn choice(profile: Option<&str>) -> Choice {
    match profile {
        None => Choice::Auto,
        Some("none") => Choice::Without,
        Some(name) => Choice::Named(name.to_string()),
    }
}

/// How a rolling upgrade goes over a fleet's hosts (`auto`, `upgrade` of several HOST/NAME).
#[derive(Args, Debug, Serialize, Deserialize)]
#[command(next_help_heading = "Rolling over a fleet")]
pub struct RolloutArgs {
    /// The host that goes first, alone; the rest follow only if it all went well [default: the first host with something to upgrade]
    #[arg(long, value_name = "HOST")]
    pub canary: Option<String>,
    /// How many hosts upgrade at once after the canary
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    pub parallel: u64,
    /// How many failed hosts the rollout tolerates after the canary before it stops
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub failure_budget: usize,
}

impl RolloutArgs {
    pub fn rollout(&self) -> cutover::fleet::rollout::Rollout {
        cutover::fleet::rollout::Rollout {
            canary: self.canary.clone(),
            parallel: usize::try_from(self.parallel).unwrap_or(usize::MAX),
            failure_budget: self.failure_budget,
        }
    }
}

#[derive(Args, Debug, Serialize, Deserialize)]
pub struct DiscoveryArgs {
    /// The YAML config: opted-in containers, their policies, the hosts of a fleet, insecure registries, notification URLs, window, health timeout and settle (see README)
    #[arg(long, value_name = "FILE", env = "CUTOVER_CONFIG")]
    pub config: Option<PathBuf>,
}

/// The rules `check` and `auto` take on the command line, over every container's labels.
#[derive(Args, Debug)]
#[command(next_help_heading = "Policy")]
pub struct PolicyArgs {
    /// Take a version only once it has been published this long (e.g. 3d): its image's creation time, or when cutover first saw it if the image does not say [default: the container's cutover.min_age label, else the config file's min_age]
    #[arg(long, value_name = "DURATION", value_parser = cutover::duration::parse)]
    pub min_age: Option<Duration>,
}

impl PolicyArgs {
    /// The command line's layer of the rules.
    pub fn layer(&self) -> cutover::config::RuleLayer {
        cutover::config::RuleLayer {
            min_age: self
                .min_age
                .map(|d| humantime::format_duration(d).to_string()),
            ..Default::default()
        }
    }
}

/// What every command that changes containers takes; flattened last, since its groups set the
/// help headings of what follows them.
#[derive(Args, Debug, Serialize, Deserialize)]
#[command(next_help_heading = "Common")]
pub struct ChangeArgs {
    /// Print the plan; change nothing
    #[arg(long)]
    #[serde(skip)]
    pub dry_run: bool,
    /// The product profile to follow: a name (`cutover profiles list`), a file, or `none` [default: the container's
    /// cutover.profile label, else the profile matching its image]
    #[arg(long, value_name = "NAME|FILE|none")]
    pub profile: Option<String>,
    #[command(flatten)]
    pub discovery: DiscoveryArgs,
    // A plan file keeps what was asked (see `commands::plan`), but neither the notification
    // URLs, which hold tokens, nor how the command that made it was run.
    #[command(flatten)]
    #[serde(skip)]
    pub notify: NotifyArgs,
    #[command(flatten)]
    #[serde(skip)]
    pub common: CommonArgs,
    #[command(flatten)]
    pub health: HealthArgs,
}

#[derive(Args, Debug, Clone, Default)]
pub struct NotifyArgs {
    /// Send a message of what this did to URL (repeatable; adds to the config file's `notify`):
    /// ntfy://, gotify://, slack://, discord://, workflows:// (Teams), matrix://, smtp://,
    /// mailto://, json://, apprise://, their TLS forms ending in s, each with
    /// ?level=all|change|failure [default level: change] (README "Notifications")
    // Read by `commands::config_told`, not by clap, whose error would quote the URL's token.
    #[arg(long = "notify", value_name = "URL")]
    pub urls: Vec<String>,
}

#[derive(Args, Debug, Default)]
pub struct CommonArgs {
    /// Do not ask for confirmation (required without a terminal)
    #[arg(short = 'y', long)]
    pub yes: bool,
    /// Print the result as JSON on standard output
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug, Serialize, Deserialize)]
#[command(next_help_heading = "Health")]
pub struct HealthArgs {
    /// Require this URL to answer too, besides the image's HEALTHCHECK if it has one (e.g. http://127.0.0.1:8080/health)
    #[arg(long, value_name = "URL", conflicts_with = "health_port")]
    pub health_url: Option<String>,
    /// Require this port of the container to answer too, reached through its address or its published binding
    #[arg(long, value_name = "PORT")]
    pub health_port: Option<u16>,
    /// The path asked on --health-port
    #[arg(
        long,
        value_name = "PATH",
        default_value = "/",
        requires = "health_port"
    )]
    pub health_path: String,
    /// Ask --health-port over https, without verifying its certificate (products that serve TLS themselves serve self-signed ones)
    #[arg(long, requires = "health_port")]
    pub health_https: bool,
    /// The HTTP status --health-url or --health-port must answer [default: any 2xx]
    #[arg(long, value_name = "CODE")]
    pub health_status: Option<u16>,
    /// A field the JSON answer must hold, e.g. status_code=200 or databaseStatus=OK (repeatable)
    #[arg(long, value_name = "FIELD=VALUE")]
    pub health_json: Vec<String>,
    /// How long to wait for the new container to be healthy [default: the container's cutover.health_timeout label, else the config file's, else the profile's, else 2m]
    #[arg(long, value_name = "DURATION", value_parser = cutover::duration::parse)]
    pub health_timeout: Option<Duration>,
    /// Without a HEALTHCHECK, URL or port: how long it must also run without exiting or restarting [default: the cutover.settle label, else the config file's, else 10s]
    #[arg(long, value_name = "DURATION", value_parser = cutover::duration::parse)]
    pub settle: Option<Duration>,
}

impl HealthArgs {
    /// Whether any health flag was given (`--health-path` alone judges nothing).
    pub fn given(&self) -> bool {
        self.health_url.is_some()
            || self.health_port.is_some()
            || self.health_status.is_some()
            || !self.health_json.is_empty()
            || self.health_timeout.is_some()
            || self.settle.is_some()
    }

    /// The command line's layer of the health settings.
    pub fn settings(&self) -> Result<HealthSettings, String> {
        let named = self.health_url.is_some() || self.health_port.is_some();
        if !named && (self.health_status.is_some() || !self.health_json.is_empty()) {
            return Err("--health-status and --health-json judge the answer of --health-url or --health-port: give one of them".into());
        }
        Ok(HealthSettings {
            url: self.health_url.clone(),
            port: self.health_port,
            path: Some(self.health_path.clone()),
            tls: self.health_https,
            expect_status: self.health_status,
            json: self
                .health_json
                .iter()
                .map(|c| c.parse().map_err(|e: JsonConditionError| e.to_string()))
                .collect::<Result<_, _>>()?,
            settle: self.settle,
            timeout: self.health_timeout,
        })
    }
}
