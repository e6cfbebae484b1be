//! Telling people what an upgrade did, where they read it: one message per pass or command,
//! to each URL of the config file's `notify` and of `--notify`. A notifier that fails is tried
//! again a little, logged, and never changes what the upgrade did or its exit code.

mod deliver;
mod message;
mod target;

pub use deliver::request;
pub use message::{backups, seconds, Message, Severity};
pub use target::{Channel, Level, Notifier, NotifyUrlError};

impl Notifier {
    /// Whether this URL's level takes `message`.
    pub fn takes(&self, message: &Message) -> bool {
        match self.level {
            Level::All => true,
            Level::Change => message.severity >= Severity::Success,
            Level::Failure => message.severity == Severity::Failure,
        }
    }
}

/// Sends `message` to every notifier whose level takes it, all at once; each outcome is only
/// logged.
pub async fn send(notifiers: &[Notifier], message: &Message) {
    let taking: Vec<&Notifier> = notifiers.iter().filter(|n| n.takes(message)).collect();
    if taking.is_empty() {
        return;
    }
    let client = match deliver::client() {
        Ok(c) => c,
        Err(e) => return tracing::warn!("notifications not sent: {e}"),
    };
    let sends = taking.into_iter().map(|n| {
        let client = &client;
        async move { (n, deliver::with_retries(client, n, message).await) }
    });
    for (notifier, result) in futures_util::future::join_all(sends).await {
        match result {
            Ok(()) => tracing::info!("notified {notifier}"),
            Err(e) => tracing::warn!(
                "notifying {notifier} failed: {}; the upgrade itself is unaffected",
                crate::secrets::redact(&e.to_string())
            ),
        }
    }
}

/// This machine's name, for a message's title: a fleet's operators read several.
pub fn host_name() -> String {
    hostname::get()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_else(|_| "this host".into())
}
