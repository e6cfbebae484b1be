//! SIGINT and SIGTERM during a run: an operator's Ctrl-C, or a service manager stopping cutover.
//!
//! A signal never stops a run in the middle of a step, which could leave a container renamed,
//! a migration half done or a backup half written. It is raised here and the runner reads it
//! between steps: before the downtime the run stops and undoes what it prepared (nothing
//! changed); once the service is down it rolls back; once every new container was started it
//! finishes, since going forward is then the shorter way to a serving product. Steps that are
//! only waiting and change nothing (a pull) are cut short. A second signal only says what
//! cutover is still doing. SIGKILL cannot be caught: `cutover recover` stays the answer.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

/// Whether a signal asked the run to stop; cheap to clone, shared by the listener and the runner.
#[derive(Clone, Default)]
pub struct Interrupt {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    count: AtomicUsize,
    notify: Notify,
    /// The first signal's name.
    signal: Mutex<Option<&'static str>>,
    /// What the run is doing, for the message of a second signal.
    doing: Mutex<String>,
}

impl Interrupt {
    /// Listens for SIGINT and SIGTERM from now on, for the rest of the process: the default
    /// action (dying on the spot) no longer applies.
    pub fn from_signals() -> Interrupt {
        let interrupt = Interrupt::default();
        let listener = interrupt.clone();
        tokio::spawn(async move {
            use tokio::signal::unix::{signal, SignalKind};
            let (Ok(mut int), Ok(mut term)) = (
                signal(SignalKind::interrupt()),
                signal(SignalKind::terminate()),
            ) else {
                tracing::warn!("signals cannot be listened for: SIGINT and SIGTERM end cutover at once; `cutover recover` then finishes or undoes the run");
                return;
            };
            loop {
                let name = tokio::select! {
                    _ = int.recv() => "SIGINT",
                    _ = term.recv() => "SIGTERM",
                };
                listener.raise(name);
            }
        });
        interrupt
    }

    /// A signal arrived: says what happens now.
    pub fn raise(&self, name: &'static str) {
        let count = self.inner.count.fetch_add(1, Ordering::SeqCst) + 1;
        let doing = self.lock_doing().clone();
        if count == 1 {
            *self.inner.signal.lock().unwrap_or_else(|e| e.into_inner()) = Some(name);
            tracing::warn!(
                "{name}: cutover stops after the step it is in ({doing}); before the downtime nothing will have changed, during it the old version is put back, and once the new version was started it is finished instead"
            );
        } else {
            tracing::warn!(
                "{name} again: still {doing}; cutover exits as soon as one version serves (SIGKILL would leave the run half done for `cutover recover`)"
            );
        }
        self.inner.notify.notify_waiters();
    }

    /// The first signal's name, once one arrived.
    pub fn raised(&self) -> Option<&'static str> {
        *self.inner.signal.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Resolves once a signal arrived.
    pub async fn wait(&self) {
        loop {
            let notified = self.inner.notify.notified();
            if self.raised().is_some() {
                return;
            }
            notified.await;
        }
    }

    /// Records what the run is doing, for the message of a later signal.
    pub fn doing(&self, what: &str) {
        *self.lock_doing() = what.to_string();
    }

    fn lock_doing(&self) -> std::sync::MutexGuard<'_, String> {
        self.inner.doing.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_signal_wakes_a_waiter_and_stays_raised() {
        let interrupt = Interrupt::default();
        assert_eq!(interrupt.raised(), None);
        let waiter = {
            let interrupt = interrupt.clone();
            tokio::spawn(async move { interrupt.wait().await })
        };
        tokio::task::yield_now().await;
        interrupt.doing("step 3: stop web");
        interrupt.raise("SIGTERM");
        interrupt.raise("SIGINT");
        waiter.await.unwrap();
        assert_eq!(
            interrupt.raised(),
            Some("SIGTERM"),
            "the first signal is the one told"
        );
        interrupt.wait().await;
    }
}
