//! `cutover history`: past runs, as their journals tell them.

use serde::Serialize;

use crate::error::Result;
use crate::plan::Kind;
use crate::run::journal::{Outcome, StateDir};

#[derive(Debug, Serialize)]
pub struct Entry {
    pub started_at: String,
    pub container: String,
    /// `None` for a journal that cannot be read.
    pub kind: Option<Kind>,
    /// The profile task a task run ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task: Option<String>,
    pub from: String,
    pub to: String,
    /// `None` for a run that was interrupted and not yet recovered, or whose journal cannot be
    /// read.
    pub outcome: Option<Outcome>,
    /// Why the journal cannot be read, when it cannot.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unreadable: Option<String>,
    pub recovered: bool,
    pub downtime_ms: Option<u64>,
    pub message: Option<String>,
    pub journal: String,
}

pub fn history(state: &StateDir, name: Option<&str>) -> Result<Vec<Entry>> {
    let journals = state.journals()?;
    let mut entries: Vec<Entry> = journals
        .runs
        .into_iter()
        .filter(|r| name.is_none_or(|n| r.plan.involves(n)))
        .map(|r| Entry {
            started_at: humantime::format_rfc3339_seconds(r.started_at).to_string(),
            container: r.plan.container,
            kind: Some(r.plan.kind),
            task: r.plan.task,
            from: r.plan.image_from,
            to: r.plan.image_to,
            outcome: r.outcome,
            unreadable: None,
            recovered: r.recovered,
            downtime_ms: r.downtime.map(|d| d.as_millis() as u64),
            message: r.message,
            journal: r.path.display().to_string(),
        })
        .collect();
    entries.extend(
        journals
            .unreadable
            .into_iter()
            .filter(|u| name.is_none_or(|n| u.container == n))
            .map(|u| Entry {
                started_at: String::new(),
                container: u.container.clone(),
                kind: None,
                task: None,
                from: String::new(),
                to: String::new(),
                outcome: None,
                unreadable: Some(u.why.clone()),
                recovered: false,
                downtime_ms: None,
                message: Some(u.advice()),
                journal: u.path.display().to_string(),
            }),
    );
    Ok(entries)
}
