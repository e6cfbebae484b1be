//! A rehearsal's steps: an isolated network, a copy of the product's database on a server of
//! its own there, the new version's migration run against the copy, the new version started on
//! it (then awaited and checked by the upgrade's own steps), and everything removed.
//! Production is only read (its database dumped while it serves); each step's undo removes what
//! it made, by names fixed from the product's, so that a rehearsal killed at any moment leaves
//! nothing once it is recovered.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::{took, Action, Cx, Done, OneShot, Outputs, StepError, Traits};
use crate::backup::rehearsal::{self, CopyServer};
use crate::backup::{App, DatabaseTarget};
use crate::engine::successor::SuccessorSpec;
use crate::engine::{inspect_required, short};
use crate::plan::{Plan, Slot};

/// The network the rehearsal's containers share, with no route out of it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RehearseNetwork {
    pub copy: CopyServer,
}

/// The copy's server, started on the network and given the product's role and database.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RehearseServer {
    /// The product, whose settings hold the database's credentials.
    pub slot: Slot,
    pub database: DatabaseTarget,
    pub copy: CopyServer,
}

/// The product's database dumped while it serves, into the run's private directory.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RehearseDump {
    pub slot: Slot,
    pub database: DatabaseTarget,
}

/// The dump restored into the copy.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RehearseRestore {
    pub slot: Slot,
    pub database: DatabaseTarget,
    pub copy: CopyServer,
}

/// A hop's migration, from its new image, against the copy: a one-shot on the rehearsal's
/// network alone, with none of production's volumes, its connection pointed at the copy.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RehearseMigrate {
    #[serde(flatten)]
    pub run: OneShot,
    /// Put in before it starts (see [`crate::plan::rehearse::Rehearsal::files`]); they hold
    /// the password, so are never journaled.
    #[serde(skip)]
    pub files: Vec<(String, Vec<u8>)>,
    /// The copy it reaches, named in its hosts file (see [`CopyServer::host_entry`]).
    #[serde(skip)]
    pub copy: Option<CopyServer>,
}

/// The copy's host entry for a container about to start on its network.
async fn copy_entry(cx: &Cx<'_>, copy: Option<&CopyServer>) -> Result<Option<String>, StepError> {
    match copy {
        Some(copy) => Ok(copy.host_entry(cx.engine).await?),
        None => Ok(None),
    }
}

/// The new version, created and started on the migrated copy, isolated as the migrations
/// are; the upgrade's own steps then await it and check its version.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RehearseStart {
    pub slot: Slot,
    pub name: String,
    /// Carries secrets, like every create request: never journaled.
    #[serde(skip)]
    pub spec: Box<SuccessorSpec>,
    /// Put in before it starts, as the migrations' (see [`RehearseMigrate::files`]).
    #[serde(skip)]
    pub files: Vec<(String, Vec<u8>)>,
    /// The copy it reaches, as the migrations'.
    #[serde(skip)]
    pub copy: Option<CopyServer>,
}

/// The new version stopped as the upgrade stops the old one (its own grace period): how long
/// that takes is the part of the window a rehearsal cannot try on production.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RehearseStop {
    pub slot: Slot,
    pub timeout_secs: Option<i64>,
}

/// Everything the rehearsal made, removed once it is over.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RehearseRemove {
    pub copy: CopyServer,
    /// The containers on its network (the migrations' one-shots, the new version), which a
    /// kill may have left.
    pub containers: Vec<String>,
}

/// Removes the copy's server and the network, the containers on it first, each with the
/// anonymous volumes its image made: a rehearsal's container borrows no other's.
async fn remove_all(
    cx: &Cx<'_>,
    copy: &CopyServer,
    containers: &[String],
) -> Result<(), StepError> {
    for name in containers {
        cx.engine.remove_with_anonymous_volumes(name).await?;
    }
    rehearsal::remove_server(cx.engine, copy).await?;
    cx.engine.remove_network(&copy.network).await?;
    Ok(())
}

#[async_trait]
impl Action for RehearseNetwork {
    fn describe(&self, _plan: &Plan) -> String {
        format!(
            "create the network {}, internal (no route out of it), for the rehearsal's containers alone",
            self.copy.network
        )
    }

    async fn perform(&self, cx: &Cx<'_>) -> Result<Done, StepError> {
        // One a killed rehearsal left has nothing on it that is still of use.
        cx.engine.remove_network(&self.copy.network).await?;
        cx.engine
            .create_internal_network(&self.copy.network, &self.copy.labels())
            .await?;
        let made = cx.engine.network(&self.copy.network).await?;
        if !made.is_some_and(|n| n.is_internal()) {
            return Err(StepError::Failed(format!(
                "the engine made the network {} without isolating it (not internal): nothing is run on it",
                self.copy.network
            )));
        }
        Ok(Done::said(format!("created {}", self.copy.network)))
    }

    fn undo_describe(&self, _plan: &Plan) -> Option<String> {
        Some(format!("remove the network {}", self.copy.network))
    }

    async fn undo(
        &self,
        cx: &Cx<'_>,
        _outputs: Option<&Outputs>,
    ) -> Result<Option<String>, StepError> {
        cx.engine.remove_network(&self.copy.network).await?;
        Ok(None)
    }
}

#[async_trait]
impl Action for RehearseServer {
    fn describe(&self, plan: &Plan) -> String {
        format!(
            "start {}, a server of {}'s image on a fresh volume, on {} only, with {}'s database user",
            self.copy.container,
            self.database.container,
            self.copy.network,
            plan.label(&self.slot)
        )
    }

    async fn perform(&self, cx: &Cx<'_>) -> Result<Done, StepError> {
        let clock = tokio::time::Instant::now();
        let app = inspect_required(cx.engine, cx.id(&self.slot)?).await?;
        rehearsal::start(cx.engine, App::of(&app), &self.database, &self.copy).await?;
        Ok(Done::said(format!(
            "{} answers the product's user, in {}",
            self.copy.container,
            took(clock)
        )))
    }

    fn undo_describe(&self, _plan: &Plan) -> Option<String> {
        Some(format!(
            "remove {} and its volume {}",
            self.copy.container, self.copy.volume
        ))
    }

    async fn undo(
        &self,
        cx: &Cx<'_>,
        _outputs: Option<&Outputs>,
    ) -> Result<Option<String>, StepError> {
        rehearsal::remove_server(cx.engine, &self.copy).await?;
        Ok(None)
    }
}

#[async_trait]
impl Action for RehearseDump {
    fn describe(&self, plan: &Plan) -> String {
        format!(
            "dump the database {} of {} while it serves (one read-only snapshot)",
            self.database.name,
            plan.label(&self.slot)
        )
    }

    async fn perform(&self, cx: &Cx<'_>) -> Result<Done, StepError> {
        let app = inspect_required(cx.engine, cx.id(&self.slot)?).await?;
        let bytes = rehearsal::dump(cx.engine, App::of(&app), &self.database, cx.files).await?;
        Ok(Done::said(format!(
            "dumped {}",
            crate::size::human_bytes(bytes)
        )))
    }

    fn undo_describe(&self, _plan: &Plan) -> Option<String> {
        Some("delete the dump".into())
    }

    async fn undo(
        &self,
        cx: &Cx<'_>,
        _outputs: Option<&Outputs>,
    ) -> Result<Option<String>, StepError> {
        match std::fs::remove_file(rehearsal::dump_path(cx.files, self.database.engine)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(StepError::Failed(format!(
                "deleting the rehearsal's dump: {e}"
            ))),
            _ => Ok(None),
        }
    }
}

#[async_trait]
impl Action for RehearseRestore {
    fn describe(&self, _plan: &Plan) -> String {
        format!(
            "restore the dump into {} as the product's user",
            self.copy.container
        )
    }

    async fn perform(&self, cx: &Cx<'_>) -> Result<Done, StepError> {
        let app = inspect_required(cx.engine, cx.id(&self.slot)?).await?;
        let restored = rehearsal::restore(
            cx.engine,
            App::of(&app),
            &self.database,
            &self.copy,
            cx.files,
        )
        .await;
        // The dump served its purpose either way; the copy's server goes with its undo.
        let _ = std::fs::remove_file(rehearsal::dump_path(cx.files, self.database.engine));
        restored?;
        Ok(Done::said(format!(
            "{} holds the copy",
            self.copy.container
        )))
    }
}

#[async_trait]
impl Action for RehearseMigrate {
    fn describe(&self, plan: &Plan) -> String {
        format!(
            "on the copy: {}{}",
            self.run.describe(plan),
            put_in(&self.files)
        )
    }

    /// Unlike the upgrade's migration, it writes the copy alone: nothing of production's data.
    fn traits(&self) -> Traits {
        Traits::default()
    }

    async fn perform(&self, cx: &Cx<'_>) -> Result<Done, StepError> {
        let mut run = self.run.clone();
        *run.spec = run
            .spec
            .with_host(copy_entry(cx, self.copy.as_ref()).await?);
        run.run_with(cx, &self.files).await
    }

    fn undo_describe(&self, plan: &Plan) -> Option<String> {
        self.run.undo_describe(plan)
    }

    async fn undo(
        &self,
        cx: &Cx<'_>,
        outputs: Option<&Outputs>,
    ) -> Result<Option<String>, StepError> {
        self.run.undo(cx, outputs).await
    }
}

#[async_trait]
impl Action for RehearseStart {
    fn describe(&self, plan: &Plan) -> String {
        format!(
            "start {} ({}) on the migrated copy, isolated as the migrations{}",
            self.name,
            plan.image_of(&self.slot),
            put_in(&self.files)
        )
    }

    async fn perform(&self, cx: &Cx<'_>) -> Result<Done, StepError> {
        // An earlier hop's, stopped: each hop's version has the name in turn.
        cx.engine.remove_with_anonymous_volumes(&self.name).await?;
        let spec = self
            .spec
            .with_host(copy_entry(cx, self.copy.as_ref()).await?);
        let id = cx.engine.create_successor(&self.name, &spec).await?;
        let done = Done {
            detail: Some(format!("started {} ({})", self.name, short(&id))),
            outputs: Outputs {
                bind: Some((self.slot.clone(), id.clone())),
                ..Outputs::default()
            },
            ..Done::default()
        };
        let started = match self.files.is_empty() {
            true => Ok(()),
            false => super::files::put_new(cx.engine, &id, &self.files).await,
        };
        let started = match started {
            Ok(()) => cx.engine.start(&id).await.map_err(StepError::from),
            Err(e) => Err(e),
        };
        if let Err(e) = started {
            cx.engine.remove_with_anonymous_volumes(&id).await?;
            return Err(e);
        }
        Ok(done)
    }

    fn undo_describe(&self, _plan: &Plan) -> Option<String> {
        Some(format!("remove {}", self.name))
    }

    async fn undo(
        &self,
        cx: &Cx<'_>,
        _outputs: Option<&Outputs>,
    ) -> Result<Option<String>, StepError> {
        cx.engine.remove_with_anonymous_volumes(&self.name).await?;
        Ok(None)
    }
}

#[async_trait]
impl Action for RehearseStop {
    fn describe(&self, plan: &Plan) -> String {
        format!(
            "stop {} as the upgrade stops the product, to time it",
            plan.label(&self.slot)
        )
    }

    /// Its container goes with the undo of the start that made it.
    async fn perform(&self, cx: &Cx<'_>) -> Result<Done, StepError> {
        let clock = tokio::time::Instant::now();
        cx.engine
            .stop(cx.id(&self.slot)?, self.timeout_secs)
            .await?;
        Ok(Done::said(format!("stopped in {}", took(clock))))
    }
}

#[async_trait]
impl Action for RehearseRemove {
    fn describe(&self, _plan: &Plan) -> String {
        format!(
            "remove {}, its volume and the network {}",
            self.copy.container, self.copy.network
        )
    }

    fn traits(&self) -> Traits {
        Traits {
            cleanup: true,
            ..Traits::default()
        }
    }

    async fn perform(&self, cx: &Cx<'_>) -> Result<Done, StepError> {
        remove_all(cx, &self.copy, &self.containers).await?;
        Ok(Done::said("nothing of the rehearsal is left"))
    }

    fn undo_describe(&self, _plan: &Plan) -> Option<String> {
        Some("remove what is left of the rehearsal".into())
    }

    async fn undo(
        &self,
        cx: &Cx<'_>,
        _outputs: Option<&Outputs>,
    ) -> Result<Option<String>, StepError> {
        remove_all(cx, &self.copy, &self.containers).await?;
        Ok(None)
    }
}

/// What a rehearsal's container is given of production's files: one file, or a directory
/// copied whole (the shortest of their directories), named by its directory (a secret file's
/// path may be masked as a secret's value).
fn put_in(files: &[(String, Vec<u8>)]) -> String {
    let mut dirs: Vec<&str> = files
        .iter()
        .map(|(p, _)| super::files::split(p).0)
        .collect();
    dirs.sort();
    let Some(dir) = dirs.first() else {
        return String::new();
    };
    let what = match files.len() {
        1 => format!("its file in {dir}"),
        _ => format!("production's {dir}"),
    };
    format!(", given a copy of {what} with its connection pointed at the copy")
}
