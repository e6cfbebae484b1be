//! `cutover plan`, `apply`, `pending`, `approve`: an upgrade planned now, reviewed, and carried
//! out later exactly as planned, or refused (see [`cutover::ops::plan_file`]).

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use clap::{Args, Parser};
use cutover::auto;
use cutover::discover::check::Status;
use cutover::engine::credentials::Logins;
use cutover::engine::reference::ImageRef;
use cutover::engine::registry::RegistryClient;
use cutover::fleet;
use cutover::fleet::rollout;
use cutover::ops::plan_file::{self, PlanFile, PlanStore, Planned};
use cutover::ops::preflight::Prepared;
use cutover::ops::upgrade;
use cutover::run::journal::StateDir;
use cutover::run::FirstSeen;
use serde_json::{json, Value};

use super::{bad_input, confirm, ensure_can_confirm, execute, load_profiles, refused, One, Site};
use crate::args::{CommonArgs, NotifyArgs};
use crate::commands::upgrade::UpgradeArgs;
use crate::output::{self, Exit};

#[derive(Args, Debug)]
#[command(
    mut_arg("names", |a| a.required_unless_present_any(["all"])),
    mut_arg("to", |a| a.required_unless_present_any(["all"]))
)]
pub struct PlanArgs {
    #[command(flatten)]
    pub upgrade: UpgradeArgs,
    /// Plan every upgrade the config file's policies make eligible now (what `cutover check`
    /// marks eligible), into one plan file, as `auto --approval` plans its pass
    #[arg(long, conflicts_with_all = ["names", "project", "stack", "to", "image", "via", "with", "related"])]
    pub all: bool,
    /// Write the plan to this file [default: keep it in the state directory, where `cutover
    /// pending` lists it and `cutover approve ID` carries it out]
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// How long the plan holds: `apply` refuses it after that
    #[arg(long, value_name = "DURATION", value_parser = cutover::duration::parse, default_value = "7d")]
    pub valid_for: Duration,
}

#[derive(Args, Debug)]
pub struct ApplyArgs {
    /// The plan file `cutover plan --out FILE` wrote
    pub file: PathBuf,
    #[command(flatten)]
    pub notify: NotifyArgs,
    #[command(flatten)]
    pub common: CommonArgs,
}

#[derive(Args, Debug)]
pub struct ApproveArgs {
    /// The plan's id, as `cutover pending` lists it (its first characters are enough)
    pub id: String,
    /// Apply it not now but at the next pass of the resident `cutover auto --schedule` (with
    /// approval) that falls inside its window
    #[arg(long)]
    pub in_window: bool,
    #[command(flatten)]
    pub notify: NotifyArgs,
    #[command(flatten)]
    pub common: CommonArgs,
}

#[derive(Args, Debug)]
pub struct PendingArgs {
    /// Print JSON
    #[arg(long)]
    pub json: bool,
}

pub async fn plan(mut args: PlanArgs, site: &Site) -> anyhow::Result<Exit> {
    if args.all {
        return plan_all(args, site).await;
    }
    let upgrade = &mut args.upgrade;
    let refusal = match () {
        _ if upgrade.change.dry_run => Some("--dry-run: a plan changes nothing already"),
        _ if upgrade.rehearse => Some("--rehearse: rehearse first with `cutover rehearse`, then plan"),
        _ if upgrade.project.is_some() || upgrade.stack.is_some() => {
            Some("--project and --stack are not planned yet: name the containers (with --with)")
        }
        _ if upgrade.names.len() > 1 && !(upgrade.with.is_empty() && upgrade.related.is_empty()) => {
            Some("--with and --related go with the one container named; with several, each moves on its own")
        }
        _ if upgrade.rollout.parallel > 1 => {
            Some("--parallel: a plan's hosts roll one after the other")
        }
        _ if !upgrade.steps.env.is_empty() => Some(
            "--env NAME=VALUE would write its value in the plan file: set it on the container first, or upgrade without a plan",
        ),
        _ => None,
    };
    if let Some(why) = refusal {
        return Err(refused(why.into()));
    }
    // The plan is applied from wherever: its config file is named in full.
    if let Some(config) = &upgrade.change.discovery.config {
        upgrade.change.discovery.config = Some(
            std::fs::canonicalize(config)
                .map_err(|e| refused(format!("--config {}: {e}", config.display())))?,
        );
    }
    let mut planned = Vec::new();
    for name in &upgrade.names {
        planned.push(plan_one(site, upgrade, name).await?);
    }
    let json = upgrade.change.common.json;
    write(&args, planned, json, site)
}

/// `plan --all`: what a pass of `auto` would upgrade now, planned as `auto --approval` plans it
/// (the config file's settings and labels; no other upgrade option is taken).
async fn plan_all(args: PlanArgs, site: &Site) -> anyhow::Result<Exit> {
    let change = &args.upgrade.change;
    // What the option parser makes of nothing but a name and a target, the config file and
    // the output format being what `--all` takes.
    let mut plain =
        serde_json::to_value(upgrade_args(&["NAME".into(), "--to".into(), "TAG".into()])?)?;
    let mut given = serde_json::to_value(&args.upgrade)?;
    for value in [&mut plain, &mut given] {
        value["names"] = Value::Null;
        value["target"] = Value::Null;
        value["change"]["discovery"] = Value::Null;
    }
    if plain != given || change.dry_run {
        return Err(refused(
            "--all plans each upgrade with the config file's settings and the containers' labels, as `auto --approval` does: give it no other upgrade option (only --config, --out, --valid-for, --json)".into(),
        ));
    }
    let settings = auto::PassSettings {
        asked: auto::Asked::default(),
        // Nothing but the config file was given (refused above), so no flag sets a layer.
        given: super::given(change)?,
        catalog: load_profiles()?,
        window: None,
        first_seen: FirstSeen::under(&site.state_root),
    };
    let planned = plan_eligible(
        site,
        &settings,
        change.discovery.config.as_deref(),
        &plans(site)?,
    )
    .await?;
    if planned.is_empty() {
        println!("Nothing to upgrade: no plan was written.");
        return Ok(Exit::Done);
    }
    write(&args, planned, change.common.json, site)
}

/// Seals `planned` into a plan file, writes it where `args` says and tells how to carry it out.
fn write(args: &PlanArgs, planned: Vec<Planned>, json: bool, site: &Site) -> anyhow::Result<Exit> {
    let file = PlanFile::seal(planned, SystemTime::now(), args.valid_for);
    let path = match &args.out {
        Some(path) => {
            cutover::private::write(path, file.text().as_bytes())
                .map_err(|e| refused(format!("--out {}: {e}", path.display())))?;
            path.clone()
        }
        None => plans(site)?.keep(&file)?,
    };
    let apply = match &args.out {
        Some(path) => format!("cutover apply {}", path.display()),
        None => format!("cutover approve {}", file.id),
    };
    Ok(told(&file, &path, &apply, json))
}

/// Prints what a plan written to `path` does and how to carry it out.
pub(super) fn told(file: &PlanFile, path: &Path, apply: &str, json: bool) -> Exit {
    if json {
        output::print_json(&json!({
            "id": file.id, "path": path, "made_at": humantime::format_rfc3339_seconds(file.made_at).to_string(),
            "valid_until": humantime::format_rfc3339_seconds(file.valid_until).to_string(),
            "summary": file.summary, "apply": apply,
        }));
        return Exit::Done;
    }
    println!(
        "Plan {} written to {} (nothing was changed; valid until {}):",
        file.id,
        path.display(),
        humantime::format_rfc3339_seconds(file.valid_until)
    );
    for line in &file.summary {
        println!("  {}", cutover::secrets::redact(line));
    }
    println!("To carry it out: {apply}");
    Exit::Done
}

/// The state directory's plans: this machine's, whichever engine they move.
pub(super) fn plans(site: &Site) -> anyhow::Result<PlanStore> {
    Ok(PlanStore::open(&StateDir::open(&site.state_root)?)?)
}

/// The upgrade `args` asks of `name`, prepared (changing nothing), then prepared again with
/// every image it would run pinned to the digest its tag has now (the target's, each hop's, a
/// related product's) and its hops fixed: that is the plan `apply` will compute again.
pub(super) async fn plan_one(
    site: &Site,
    args: &UpgradeArgs,
    name: &str,
) -> anyhow::Result<Planned> {
    let one = One::aim(site, &args.change, name).await?;
    let first = prepare(&one, args).await?;
    let registry = RegistryClient::new(one.given.config.insecure_registries.clone())?
        .logins(Logins::of(&one.engine));
    // A Swarm service's plan names its images by stage only.
    let images = first
        .plan
        .slots
        .iter()
        .filter(|(slot, _)| slot.generation > 0);
    let images = images
        .map(|(_, info)| &info.image)
        .chain(first.plan.stages.iter().map(|stage| &stage.to));
    let mut pins: Vec<String> = Vec::new();
    for image in images {
        let pinned = plan_file::pin(&registry, image).await?;
        if !pins.contains(&pinned) {
            pins.push(pinned);
        }
    }
    let hops = first.plan.stages.len().saturating_sub(1);
    let via: Vec<Value> = first.plan.stages[..hops]
        .iter()
        .filter_map(|stage| ImageRef::parse(&stage.to).and_then(|r| r.tag))
        .map(Value::from)
        .collect();
    // Its locks are let go for the second preparation, which takes them again.
    drop(first);
    let mut asked = serde_json::to_value(args)?;
    asked["names"] = json!([name]);
    // The hops a profile's upgrade path chose are fixed: a tag pushed since changes none.
    asked["target"]["via"] = Value::Array(via);
    asked["target"]["pin"] = json!(pins);
    let pinned: UpgradeArgs = serde_json::from_value(asked.clone())?;
    let prepared = prepare(&one, &pinned).await?;
    let now = plan_file::identities(&one.engine, &prepared.plan.members).await?;
    let hops = prepared.plan.stages.len().saturating_sub(1);
    let via = prepared.plan.stages[..hops]
        .iter()
        .map(|stage| stage.to.clone())
        .collect();
    Ok(Planned::of(name, &prepared.plan, via, now, asked))
}

/// The upgrade `args` asks of the container `one` aims at, prepared: nothing changes.
async fn prepare(one: &One, args: &UpgradeArgs) -> anyhow::Result<Prepared> {
    let options = args.options().map_err(bad_input)?;
    let request = args.request(one, options);
    Ok(upgrade::prepare(&one.engine, &one.state, &one.catalog, &request).await?)
}

pub async fn apply(args: ApplyArgs, site: &Site) -> anyhow::Result<Exit> {
    ensure_can_confirm(&args.common)?;
    let text = std::fs::read_to_string(&args.file)
        .map_err(|e| refused(format!("{}: {e}", args.file.display())))?;
    let shown = args.file.display().to_string();
    carry_out(&text, &shown, args.notify, args.common, site).await
}

pub async fn approve(args: ApproveArgs, site: &Site) -> anyhow::Result<Exit> {
    if !args.in_window {
        ensure_can_confirm(&args.common)?;
    }
    let plans = plans(site)?;
    if let Some(done) = applied_already(&plans, &args.id) {
        return Ok(done);
    }
    let path = plans.find(&args.id)?;
    let text =
        std::fs::read_to_string(&path).map_err(|e| refused(format!("{}: {e}", path.display())))?;
    if args.in_window {
        let file = PlanFile::read(&text, SystemTime::now())
            .map_err(|why| refused(format!("plan {} is refused: {why}", args.id)))?;
        plans.approve(&file.id)?;
        println!(
            "Plan {} is approved: the resident `cutover auto --schedule` applies it at its next pass inside its window.",
            file.id
        );
        return Ok(Exit::Done);
    }
    carry_out(&text, &args.id, args.notify, args.common, site).await
}

pub fn pending(args: PendingArgs, site: &Site) -> anyhow::Result<Exit> {
    let waiting = plans(site)?.waiting(SystemTime::now())?;
    if args.json {
        let listed: Vec<Value> = waiting
            .iter()
            .map(|w| match &w.plan {
                Ok(p) => json!({
                    "id": p.id, "path": w.path,
                    "made_at": humantime::format_rfc3339_seconds(p.made_at).to_string(),
                    "valid_until": humantime::format_rfc3339_seconds(p.valid_until).to_string(),
                    "summary": p.summary,
                }),
                Err(why) => json!({"path": w.path, "error": why}),
            })
            .collect();
        output::print_json(&json!({ "pending": listed }));
        return Ok(Exit::Done);
    }
    if waiting.is_empty() {
        println!("No plan waits for approval.");
    }
    for w in &waiting {
        match &w.plan {
            Ok(p) => {
                println!(
                    "{}  made {}, valid until {}  (cutover approve {})",
                    p.id,
                    humantime::format_rfc3339_seconds(p.made_at),
                    humantime::format_rfc3339_seconds(p.valid_until),
                    p.id
                );
                for line in &p.summary {
                    println!("  {}", cutover::secrets::redact(line));
                }
            }
            Err(why) => println!("{}: cannot be applied: {why}", w.path.display()),
        }
    }
    Ok(Exit::Done)
}

/// Says so, and that there is nothing to do, when plan `id` was applied already.
fn applied_already(plans: &PlanStore, id: &str) -> Option<Exit> {
    let when = plans.applied(id)?;
    println!("plan {id} was applied already at {when}: nothing to do");
    Some(Exit::Done)
}

/// An upgrade of a plan, prepared again and found to be the one planned.
struct Ready {
    prepared: Prepared,
    one: One,
    /// As planned: NAME or HOST/NAME.
    container: String,
    /// How the plan's hosts roll, as its `plan` command asked.
    roll: plan_file::Roll,
}

/// Reads the plan `text` (`shown` names it), refuses it with exit 2 and nothing changed when it
/// was altered, expired or applied already or when its containers or its steps are no longer
/// those planned, then asks (unless `--yes`) and runs its upgrades in their order, stopping at
/// the first that does not end done.
pub(super) async fn carry_out(
    text: &str,
    shown: &str,
    notify: NotifyArgs,
    common: CommonArgs,
    site: &Site,
) -> anyhow::Result<Exit> {
    let file = PlanFile::read(text, SystemTime::now()).map_err(|why| {
        refused(format!(
            "plan {shown} is refused, and nothing was changed: {why}"
        ))
    })?;
    let plans = plans(site)?;
    if let Some(done) = applied_already(&plans, &file.id) {
        return Ok(done);
    }
    let mut ready = Vec::new();
    let mut differs = Vec::new();
    for planned in &file.upgrades {
        match prepare_again(site, planned, &notify, &common).await {
            Ok(Ok(r)) => ready.push(r),
            Ok(Err(said)) => differs.extend(
                said.into_iter()
                    .map(|s| format!("{}: {s}", planned.container)),
            ),
            Err(e) => differs.push(format!("{}: {e}", planned.container)),
        }
    }
    if !differs.is_empty() {
        return Err(refused(format!(
            "plan {} is no longer what was planned, so it is refused and nothing was changed (make a new plan):\n  - {}",
            file.id,
            differs.join("\n  - ")
        )));
    }
    if !common.yes {
        println!(
            "Plan {}, made {}:",
            file.id,
            humantime::format_rfc3339_seconds(file.made_at)
        );
        for r in &ready {
            output::plan_summary(&r.prepared.plan);
        }
        confirm("Proceed?")?;
    }
    let containers: Vec<String> = file.upgrades.iter().map(|u| u.container.clone()).collect();
    let roll = ready.first().map(|r| r.roll.clone()).unwrap_or_default();
    let canary = roll.first(&containers).to_string();
    let mut ready: Vec<Option<Ready>> = ready.into_iter().map(Some).collect();
    let (mut exit, mut ran, mut failed_hosts) = (Exit::Done, Vec::new(), Vec::new());
    for i in roll.order(&containers) {
        let Some(Ready { prepared, one, .. }) = ready[i].take() else {
            continue;
        };
        let (name, host) = (&containers[i], plan_file::host(&containers[i]));
        let ended = execute(prepared, &one.engine, &one.state, common.json, one.tell()).await?;
        ran.push(format!("{name}: exit {}", ended.code()));
        if ended == Exit::Done {
            continue;
        }
        if exit == Exit::Done {
            exit = ended;
        }
        if !failed_hosts.contains(&host) {
            failed_hosts.push(host);
        }
        let attention = ended == Exit::NeedsAttention;
        if let Some(why) = roll.stops(host == canary, attention, failed_hosts.len()) {
            let rest: Vec<&str> = ready
                .iter()
                .flatten()
                .map(|r| r.container.as_str())
                .collect();
            if !rest.is_empty() {
                tracing::warn!(
                    "not attempted, since {name} did not end done and {why}: {}",
                    rest.join(", ")
                );
            }
            break;
        }
    }
    // A plan that changed nothing (refused before any downtime) may be tried again.
    if ran.len() > 1 || exit != Exit::NothingChanged {
        plans.mark_applied(&file.id, &ran.join(", "))?;
    }
    Ok(exit)
}

/// `planned` prepared again to its pinned target: ready when its containers and its steps are
/// those planned, else what differs.
async fn prepare_again(
    site: &Site,
    planned: &Planned,
    notify: &NotifyArgs,
    common: &CommonArgs,
) -> anyhow::Result<Result<Ready, Vec<String>>> {
    let mut args: UpgradeArgs = serde_json::from_value(planned.asked.clone())
        .map_err(|e| refused(format!("its upgrade cannot be read: {e}")))?;
    args.change.notify = notify.clone();
    args.change.common = CommonArgs {
        yes: common.yes,
        json: common.json,
    };
    let one = One::aim(site, &args.change, &planned.container).await?;
    let now = plan_file::identities(&one.engine, &planned.plan.members).await?;
    let mut said = plan_file::changed(&planned.containers, &now);
    if !said.is_empty() {
        return Ok(Err(said));
    }
    let prepared = prepare(&one, &args).await?;
    let now = plan_file::identities(&one.engine, &prepared.plan.members).await?;
    said.extend(plan_file::changed(&planned.containers, &now));
    said.extend(plan_file::plan_differs(planned, &prepared.plan));
    match said.is_empty() {
        true => Ok(Ok(Ready {
            prepared,
            one,
            container: planned.container.clone(),
            roll: plan_file::Roll {
                canary: args.rollout.canary.clone(),
                failure_budget: args.rollout.failure_budget,
            },
        })),
        false => Ok(Err(said)),
    }
}

/// `cutover upgrade`'s arguments as a command line gives them: how `auto` with approval plans
/// what its pass found, as `cutover plan NAME --image TARGET` would.
#[derive(Parser, Debug)]
struct Upgrade {
    #[command(flatten)]
    args: UpgradeArgs,
}

/// The arguments of `cutover upgrade WORDS...`.
pub(super) fn upgrade_args(words: &[String]) -> anyhow::Result<UpgradeArgs> {
    let parsed =
        Upgrade::try_parse_from(std::iter::once("cutover").chain(words.iter().map(String::as_str)))
            .map_err(|e| bad_input(e.to_string()))?;
    Ok(parsed.args)
}

/// What a pass would upgrade now (what `check`'s policies make eligible), each planned as
/// `cutover plan NAME --image TARGET` plans it with the config file `config`, in the order the
/// pass would move them: `auto` with approval and `plan --all` write these. Nothing moves.
/// One engine's registry logins are read in its own order (Podman's files first on Podman), as
/// `check` reads them.
pub(super) async fn plan_eligible(
    site: &Site,
    settings: &auto::PassSettings,
    config: Option<&Path>,
    plans: &PlanStore,
) -> anyhow::Result<Vec<Planned>> {
    let registry = RegistryClient::new(settings.given.config.insecure_registries.clone())?;
    let checked = match settings.given.config.hosts.is_empty() {
        true => {
            let (engine, state) = site.connect().await?;
            let _pass = state.lock_auto()?;
            let registry = registry.logins(Logins::of(&engine));
            auto::survey(&engine, &registry, settings).await?
        }
        false => {
            let hosts = &settings.given.config.hosts;
            let connected = fleet::connect_with_state(hosts, &site.state_root).await?;
            let members: Vec<fleet::Host<'_>> =
                connected.iter().map(fleet::Connected::host).collect();
            let (checked, unreached) = rollout::survey(&members, &registry, settings).await?;
            for host in unreached {
                tracing::warn!("host {} could not be read: {}", host.host, host.error);
            }
            checked
        }
    };
    let config = config
        .map(std::fs::canonicalize)
        .transpose()
        .map_err(|e| refused(format!("--config: {e}")))?;
    let mut planned: Vec<Planned> = Vec::new();
    // A container an earlier upgrade moves with its group, or that a plan waiting already
    // moves, is not planned again.
    let mut moved: Vec<String> = Vec::new();
    for waiting in plans.waiting(std::time::SystemTime::now())? {
        moved.extend(
            waiting
                .plan
                .iter()
                .flat_map(|p| &p.upgrades)
                .flat_map(|u| u.moves()),
        );
    }
    for status in auto::dependency_order(checked.iter().filter(|s| s.eligible).collect()) {
        if moved.contains(&status.container) {
            continue;
        }
        let words = upgrade_words(status, config.as_deref());
        match plan_one(site, &upgrade_args(&words)?, &status.container).await {
            Ok(p) => {
                moved.extend(p.moves());
                planned.push(p);
            }
            Err(e) => tracing::warn!("{} is not planned: {e:#}", status.container),
        }
    }
    Ok(planned)
}

/// `cutover upgrade`'s words for what check found of `status`: its target and hops, with the
/// config file.
fn upgrade_words(status: &Status, config: Option<&Path>) -> Vec<String> {
    let mut words = vec![
        status.container.clone(),
        "--image".into(),
        status.target.clone().unwrap_or_default(),
    ];
    for hop in &status.via {
        words.extend(["--via".into(), hop.clone()]);
    }
    if let Some(config) = config {
        words.extend(["--config".into(), config.display().to_string()]);
    }
    words
}
