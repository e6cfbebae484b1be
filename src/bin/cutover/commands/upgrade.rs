//! `cutover upgrade`.

use std::time::Duration;

use clap::Args;
use cutover::engine::reference::ImageRef;
use cutover::engine::successor::EnvChanges;
use cutover::health::HealthPolicy;
use cutover::ops::backup::BackupRequest;
use cutover::ops::compose::ComposeRequest;
use cutover::ops::rehearse;
use cutover::ops::upgrade::{self, UpgradeRequest};
use cutover::plan::build::{CarriedPath, Migration, StageOptions, Target};
use cutover::plan::steps::VersionSource;
use cutover::plan::UpgradeOptions;
use serde::{Deserialize, Serialize};

use cutover::auto;
use cutover::fleet;
use cutover::fleet::rollout;
use cutover::notify;
use cutover::run::{Interrupt, Outcome};

use super::{
    bad_input, before_change, carry_out, confirm, execute, given, load_profiles, refused, One, Site,
};
use crate::args::{BackupWhat, BackupWhere, ChangeArgs, RolloutArgs};
use crate::output::{self, Exit};
use cutover::ops::preflight::Prepared;

pub async fn run(args: UpgradeArgs, site: &Site) -> anyhow::Result<Exit> {
    before_change(&args.change)?;
    let options = args.options().map_err(bad_input)?;
    if args.names.len() > 1 {
        return several(args, options, site).await;
    }
    let name = args.names.first().map(String::as_str).unwrap_or_default();
    let one = One::aim(site, &args.change, name).await?;
    let request = args.request(&one, options);
    let prepared = upgrade::prepare(&one.engine, &one.state, &one.catalog, &request).await?;
    match args.rehearse {
        false => carry_out(prepared, &one.engine, &one.state, &args.change, one.tell()).await,
        true => rehearse_first(prepared, &one, &request, &args.change).await,
    }
}

/// `upgrade --rehearse`: the plan confirmed, the rehearsal run; the upgrade prepared anew and
/// run only when the rehearsal passed.
async fn rehearse_first(
    prepared: Prepared,
    one: &One,
    request: &UpgradeRequest,
    change: &ChangeArgs,
) -> anyhow::Result<Exit> {
    let mut plan = prepared.plan.clone();
    plan.notes.push("--rehearse: its migrations are tried first on a copy of the database while the product serves (`cutover rehearse` with the same options shows how); if one fails there, the upgrade does not start".into());
    if change.dry_run {
        return Ok(output::dry_run(&plan, change.common.json));
    }
    if !change.common.yes {
        output::plan_summary(&plan);
        confirm("Proceed?")?;
    }
    // The upgrade's claim is let go for the rehearsal, which takes its own, and prepared anew
    // after it: what it checked may have changed meanwhile.
    drop(prepared);
    let (engine, state, catalog) = (&one.engine, &one.state, &one.catalog);
    let rehearsal = rehearse::prepare(engine, state, catalog, request).await?;
    let rehearsal_plan = rehearsal.plan.clone();
    let report = rehearsal
        .execute(engine, state, None, &Interrupt::from_signals())
        .await?;
    if report.outcome != Outcome::Succeeded {
        tracing::error!("the rehearsal failed: the upgrade was not started, and nothing changed");
        return Ok(output::run(&rehearsal_plan, &report, change.common.json));
    }
    output::rehearsed(&rehearsal_plan, &report);
    let prepared = upgrade::prepare(engine, state, catalog, request).await?;
    execute(prepared, engine, state, change.common.json, one.tell()).await
}

/// Several `HOST/NAME` of the config file's fleet, each to the target: a rolling upgrade, as
/// `auto` rolls out over a fleet, with this command's options for each container.
async fn several(args: UpgradeArgs, options: UpgradeOptions, site: &Site) -> anyhow::Result<Exit> {
    let given = given(&args.change)?;
    let fleet_names = args.names.iter().all(|n| {
        n.split_once('/')
            .is_some_and(|(host, _)| given.config.hosts.contains_key(host))
    });
    if !fleet_names || site.named_engine {
        return Err(refused(
            "several containers are upgraded over the config file's fleet: name each HOST/NAME of its `hosts`, without -H/--context (to move containers of one host as one group, name one and add --with)".into(),
        ));
    }
    if !args.related.is_empty() {
        return Err(refused(
            "--related gives the version of a related product beside the one container named; with several, upgrade each on its own".into(),
        ));
    }
    if !args.with.is_empty() {
        return Err(refused(
            "--with moves a group with the one container named; with several, each moves on its own (with its profile's group)".into(),
        ));
    }
    if let Some(twice) = args
        .names
        .iter()
        .enumerate()
        .find_map(|(i, n)| args.names[..i].contains(n).then_some(n))
    {
        return Err(refused(format!(
            "{twice} is named twice; name each container once"
        )));
    }
    let json = args.change.common.json;
    let target = options.target.clone();
    let settings = auto::PassSettings {
        catalog: load_profiles()?,
        window: None,
        first_seen: cutover::run::FirstSeen::under(&site.state_root),
        asked: auto::Asked {
            options: Some(options),
            backup: args.backup(),
            rehearse: args.rehearse,
        },
        given,
    };
    let hosts = &settings.given.config.hosts;
    let connected = fleet::connect_with_state(hosts, &site.state_root).await?;
    let members: Vec<fleet::Host<'_>> = connected.iter().map(fleet::Connected::host).collect();
    let surveyed = rollout::survey_named(&members, &args.names, &target, &settings).await?;
    if args.change.dry_run || !args.change.common.yes {
        let shown = output::check(
            &surveyed.0,
            hosts,
            &surveyed.1,
            0,
            json && args.change.dry_run,
        );
        if args.change.dry_run {
            return Ok(shown);
        }
        confirm("Proceed?")?;
    }
    let interrupt = Interrupt::from_signals();
    let rollout = args.rollout.rollout();
    let report =
        rollout::upgrade_surveyed(&members, surveyed, &settings, &rollout, &interrupt).await?;
    let message = report.message("upgrade", &notify::host_name());
    let exit = output::pass("upgrade", Exit::Done, &report, json);
    notify::send(&settings.given.config.notifiers(), &message).await;
    Ok(exit)
}

#[derive(Args, Debug, Serialize, Deserialize)]
#[command(group = clap::ArgGroup::new("grouped").args(["project", "stack"]))]
pub struct UpgradeArgs {
    /// The container to upgrade (with --with, the first of the group); HOST/NAME for one of the
    /// config file's hosts. Several HOST/NAME: a rolling upgrade over the fleet, as `auto` does
    #[arg(required_unless_present_any = ["project", "stack"])]
    pub names: Vec<String>,
    /// Upgrade the services of this compose project as one group: those that run the image most
    /// of its services run (not its database), or those named with --service; dependents stop first
    #[arg(long, value_name = "PROJECT", conflicts_with_all = ["names", "with"])]
    pub project: Option<String>,
    /// With --project or --stack: a service to upgrade (repeatable)
    #[arg(long, value_name = "SERVICE", requires = "grouped")]
    pub service: Vec<String>,
    /// Upgrade the Swarm services of this stack (on a manager): those that run the image most of
    /// its services run (not its database), or those named with --service
    #[arg(long, value_name = "STACK", conflicts_with_all = ["names", "with", "project"])]
    pub stack: Option<String>,
    /// The stack's file, as `docker stack deploy -c` took it (repeatable): the new image is
    /// written there once the services run it, so that a later deploy keeps it
    #[arg(long, value_name = "FILE")]
    pub stack_file: Vec<std::path::PathBuf>,
    /// Leave compose files and Podman's systemd unit files alone (their old tag would bring the
    /// old version back on the next `docker-compose up --force-recreate`, `down`/`up`, or start of
    /// the unit)
    #[arg(long)]
    pub no_compose_edit: bool,
    #[command(flatten)]
    pub target: TargetArgs,
    /// Another container that moves with it to the same tag (repeatable; stopped in the order given, started in reverse)
    #[arg(long = "with", value_name = "NAME")]
    pub with: Vec<String>,
    /// The version a related product of its profile moves to, where its vendor ties none to the target: Quay's Clair from quay.io/projectquay/clair, e.g. --related clair=4.8.0 (Red Hat's clair-rhel8 takes Quay's tag) (repeatable)
    #[arg(long = "related", value_name = "NAME=TAG", value_parser = name_and_tag)]
    pub related: Vec<(String, String)>,
    /// Keep the old container, stopped, as NAME-old, for `cutover rollback` (with --via: the one of the last hop)
    #[arg(long)]
    pub keep_old: bool,
    /// First try the migrations on a copy of the database while the product serves, as `cutover rehearse` does; if one fails there, the upgrade does not start (exit 5)
    #[arg(long, conflicts_with_all = ["project", "stack", "with"])]
    pub rehearse: bool,
    #[command(flatten)]
    pub steps: StepArgs,
    /// Take no backup (say why: a database cutover cannot dump, your own backup)
    #[arg(long, help_heading = "Backup")]
    pub skip_backup: bool,
    /// Take the backup while the old version still runs (less downtime, a backup that may miss the last writes)
    #[arg(long, help_heading = "Backup", conflicts_with = "skip_backup")]
    pub backup_online: bool,
    /// Dump the database in the window as before, rather than copy it (its server's volume, or the database on its server) and write the backup once the new version serves
    #[arg(long, help_heading = "Backup", conflicts_with_all = ["skip_backup", "backup_online"])]
    pub backup_dump: bool,
    #[command(flatten)]
    pub backup_what: BackupWhat,
    #[command(flatten)]
    pub backup_where: BackupWhere,
    #[command(flatten)]
    pub rollout: RolloutArgs,
    #[command(flatten)]
    pub change: ChangeArgs,
}

/// Where an upgrade goes: `upgrade` and `rehearse` take the same.
#[derive(Args, Debug, Serialize, Deserialize)]
pub struct TargetArgs {
    /// The tag to move to, in the container's current repository
    #[arg(
        long,
        value_name = "TAG",
        required_unless_present = "image",
        conflicts_with = "image"
    )]
    pub to: Option<String>,
    /// The image to move to, possibly in another repository
    #[arg(long, value_name = "REPOSITORY:TAG")]
    pub image: Option<String>,
    /// Go through this intermediate tag first, as an upgrade of its own (repeatable, in order)
    #[arg(long, value_name = "TAG")]
    pub via: Vec<String>,
    /// Run this digest wherever the upgrade would move a container to REPOSITORY:TAG, at any hop,
    /// even if the tag moved since (repeatable): how a plan file holds its images
    #[arg(long, value_name = "REPOSITORY:TAG@sha256:DIGEST")]
    #[serde(default)]
    pub pin: Vec<String>,
}

impl TargetArgs {
    /// An upgrade's options to this target through these hops, nothing else asked yet.
    pub fn options(&self) -> Result<UpgradeOptions, String> {
        let target =
            match (&self.to, &self.image) {
                (Some(to), _) => Target::Tag(tag(to)?),
                (None, Some(image)) => Target::Image(ImageRef::parse(image).ok_or_else(|| {
                    format!("{image} is not an image reference (REPOSITORY[:TAG])")
                })?),
                (None, None) => unreachable!("clap requires --to or --image"),
            };
        let mut options = UpgradeOptions::new(target, HealthPolicy::default());
        options.via = self.via.iter().map(|v| tag(v)).collect::<Result<_, _>>()?;
        options.pins = self.pin.iter().map(|p| pin(p)).collect::<Result<_, _>>()?;
        Ok(options)
    }
}

/// The migration each hop runs, when no profile gives one: `upgrade` and `rehearse` take the
/// same.
#[derive(Args, Debug, Serialize, Deserialize)]
pub struct MigrateArgs {
    /// While the service is stopped, run this command in a one-shot container from the new image
    /// with the old container's configuration (e.g. "migrate head"); it must exit 0. Stdin is
    /// closed: give a tool that asks (y/N) its non-interactive flag
    #[arg(long, value_name = "CMD", allow_hyphen_values = true)]
    pub migrate: Option<String>,
    /// The entrypoint of the migration container [default: the new image's]
    #[arg(
        long,
        value_name = "CMD",
        requires = "migrate",
        allow_hyphen_values = true
    )]
    pub migrate_entrypoint: Option<String>,
    /// How long the migration may run before it is killed and the upgrade rolled back
    #[arg(long, value_name = "DURATION", value_parser = cutover::duration::parse, requires = "migrate")]
    pub migrate_timeout: Option<Duration>,
}

impl MigrateArgs {
    pub fn migration(&self) -> Result<Option<Migration>, String> {
        let Some(cmd) = &self.migrate else {
            return Ok(None);
        };
        Ok(Some(Migration {
            shown: None,
            env: Vec::new(),
            command: command("--migrate", cmd)?,
            entrypoint: self
                .migrate_entrypoint
                .as_deref()
                .map(|e| command("--migrate-entrypoint", e))
                .transpose()?,
            timeout: self.migrate_timeout.unwrap_or(Migration::DEFAULT_TIMEOUT),
            fails_if_output_has: Vec::new(),
        }))
    }
}

/// Steps around the swap, for products that need more than a new container.
#[derive(Args, Debug, Serialize, Deserialize)]
#[command(next_help_heading = "Steps around the swap")]
pub struct StepArgs {
    #[command(flatten)]
    pub migrate: MigrateArgs,
    /// Run this command inside the old container before it stops; a failure aborts with no downtime (repeatable)
    #[arg(long, value_name = "CMD", allow_hyphen_values = true)]
    pub exec_before: Vec<String>,
    /// Run this command inside the new container once it is healthy; a failure rolls back (repeatable)
    #[arg(long, value_name = "CMD", allow_hyphen_values = true)]
    pub exec_after: Vec<String>,
    /// How long each --exec-before/--exec-after command may run
    #[arg(long, value_name = "DURATION", value_parser = cutover::duration::parse, default_value = "5m")]
    pub hook_timeout: Duration,
    /// Copy this file, which lives on no volume, from the old container into the new one, with its mode and owner (repeatable)
    #[arg(long, value_name = "PATH")]
    pub carry_file: Vec<String>,
    /// Like --carry-file, for a file that may not exist
    #[arg(long, value_name = "PATH")]
    pub carry_file_if_present: Vec<String>,
    /// Set a variable in the new container (repeatable)
    #[arg(long = "env", value_name = "NAME=VALUE")]
    pub env: Vec<String>,
    /// Remove a variable you set from the new container (a default of the new image still applies) (repeatable)
    #[arg(long, value_name = "NAME")]
    pub env_unset: Vec<String>,
    /// Move a variable's value to a new name in the new container, e.g. ENCODE_KEY=ENCRYPTION_SECRET (repeatable)
    #[arg(long, value_name = "OLD=NEW")]
    pub env_rename: Vec<String>,
    /// After health, the new container must report the target version at this URL: http://HOST:PORT/PATH, or /PATH
    /// or :PORT/PATH on the container, with #FIELD naming a JSON field (e.g. /version#service.version)
    #[arg(
        long,
        value_name = "URL[#FIELD]",
        conflicts_with = "expect_version_cmd"
    )]
    pub expect_version: Option<String>,
    /// After health, this command inside the new container must print the target version
    #[arg(long, value_name = "CMD", allow_hyphen_values = true)]
    pub expect_version_cmd: Option<String>,
}

/// A tag as `--to` and `--via` take it.
fn tag(text: &str) -> Result<String, String> {
    if text.is_empty() || text.contains(['/', '@', ':']) || text.contains(char::is_whitespace) {
        return Err(format!(
            "{text:?} is not a tag; use --image for a whole reference"
        ));
    }
    Ok(text.to_string())
}

/// A `--pin`: a whole reference with its tag and a sha256 digest.
fn pin(text: &str) -> Result<ImageRef, String> {
    ImageRef::parse(text)
        .filter(|r| {
            r.tag.is_some()
                && r.digest.as_deref().is_some_and(|d| {
                    d.strip_prefix("sha256:").is_some_and(|hex| {
                        hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit())
                    })
                })
        })
        .ok_or_else(|| {
            format!("--pin {text}: give REPOSITORY:TAG@sha256:DIGEST (64 hex digits), as `cutover plan` writes it")
        })
}

/// A command line, split the way a shell would (quotes group words; no variables, no globs).
fn command(flag: &str, text: &str) -> Result<Vec<String>, String> {
    let words = shell_words::split(text).map_err(|e| format!("{flag} {text:?}: {e}"))?;
    if words.is_empty() {
        return Err(format!("{flag} needs a command"));
    }
    Ok(words)
}

fn pair<'a>(flag: &str, text: &'a str, shape: &str) -> Result<(&'a str, &'a str), String> {
    match text.split_once('=') {
        Some((name, value)) if valid_env_name(name) => Ok((name, value)),
        _ => Err(format!("{flag} {text:?}: write {shape}")),
    }
}

fn valid_env_name(name: &str) -> bool {
    !name.is_empty() && !name.contains(char::is_whitespace)
}

impl StepArgs {
    /// The steps around the swap these flags ask for, each hop the same.
    fn stage(&self) -> Result<StageOptions, String> {
        let migrate = self.migrate.migration()?;
        let commands = |flag: &str, texts: &[String]| {
            texts
                .iter()
                .map(|c| command(flag, c))
                .collect::<Result<Vec<_>, _>>()
        };
        let carry = self
            .carry_file
            .iter()
            .map(|p| (p, false))
            .chain(self.carry_file_if_present.iter().map(|p| (p, true)))
            .map(|(path, optional)| CarriedPath {
                path: path.clone(),
                optional,
                by_profile: false,
            })
            .collect();
        Ok(StageOptions {
            migrate,
            exec_before: commands("--exec-before", &self.exec_before)?,
            exec_after: commands("--exec-after", &self.exec_after)?,
            carry,
            env: self.env_changes()?,
            expect_version: self.expect_version()?,
            ..StageOptions::default()
        })
    }

    fn env_changes(&self) -> Result<EnvChanges, String> {
        let mut env = EnvChanges::default();
        for entry in &self.env {
            let (name, value) = pair("--env", entry, "NAME=VALUE")?;
            env.set.push((name.to_string(), value.to_string()));
        }
        for name in &self.env_unset {
            if !valid_env_name(name) || name.contains('=') {
                return Err(format!("--env-unset {name:?}: give a variable name"));
            }
            env.unset.push(name.clone());
        }
        for entry in &self.env_rename {
            let (old, new) = pair("--env-rename", entry, "OLD=NEW")?;
            if !valid_env_name(new) {
                return Err(format!("--env-rename {entry:?}: write OLD=NEW"));
            }
            env.rename.push((old.to_string(), new.to_string()));
        }
        Ok(env)
    }

    fn expect_version(&self) -> Result<Option<VersionSource>, String> {
        Ok(match (&self.expect_version, &self.expect_version_cmd) {
            (Some(url), _) => {
                let address = url.split('#').next().unwrap_or_default();
                let known = ["http://", "https://", "/", ":"]
                    .iter()
                    .any(|p| address.starts_with(p));
                if !known {
                    return Err(format!("--expect-version {url:?}: write http://HOST:PORT/PATH, /PATH or :PORT/PATH, optionally with #FIELD"));
                }
                Some(VersionSource::Url(url.clone()))
            }
            (None, Some(cmd)) => Some(VersionSource::Command(command(
                "--expect-version-cmd",
                cmd,
            )?)),
            (None, None) => None,
        })
    }
}

impl UpgradeArgs {
    /// The raw flags, validated into the options of an upgrade.
    pub fn options(&self) -> Result<UpgradeOptions, String> {
        let mut options = self.target.options()?;
        options.keep_old = self.keep_old;
        options.steps = self.steps.stage()?;
        options.hook_timeout = self.steps.hook_timeout;
        Ok(options)
    }

    /// The upgrade these flags ask, with `options` read from them, of the container `one` aims
    /// at.
    pub(super) fn request(&self, one: &One, options: UpgradeOptions) -> UpgradeRequest {
        UpgradeRequest {
            follows: None,
            name: one.name.clone(),
            with: self.with.clone(),
            options,
            given: one.given.clone(),
            backup: self.backup(),
            compose: self.compose(),
            related: self.related.iter().cloned().collect(),
        }
    }

    pub fn compose(&self) -> ComposeRequest {
        ComposeRequest {
            project: self.project.clone(),
            services: self.service.clone(),
            stack: self.stack.clone(),
            stack_files: self.stack_file.clone(),
            no_edit: self.no_compose_edit,
            dry_run: self.change.dry_run,
        }
    }

    pub fn backup(&self) -> BackupRequest {
        BackupRequest {
            skip: self.skip_backup,
            db_var: self.backup_what.backup_db.clone(),
            volumes: self.backup_what.backup_volumes,
            online: self.backup_online,
            dump: self.backup_dump,
            ..self.backup_where.request()
        }
    }
}

/// `NAME=TAG` of `--related`.
fn name_and_tag(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((name, tag)) if !name.is_empty() && !tag.is_empty() && !tag.contains([':', '/', '@']) => {
            Ok((name.to_string(), tag.to_string()))
        }
        _ => Err(format!(
            "give NAME=TAG, a related product of the profile and its tag alone (clair=4.8.0), not {text:?}"
        )),
    }
}
