//! Caches that follow the store. Each replica keeps some tables in memory
//! (tokens, alert rules and states, waivers); every [`POLL`] it reads a
//! cheap fingerprint of each (an aggregate, or the table's revision bumped
//! in the writing transaction) and reloads a table only when its
//! fingerprint moved. A write on any replica is so visible on every other
//! within one poll plus one reload, well under a second.
//!
//! The fingerprint is read *before* the table: a write that lands between
//! the two is caught by the next poll, never missed.

use parking_lot::Mutex;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use crate::AppResult;

/// How often each replica checks its cached tables for changes.
pub(crate) const POLL: Duration = Duration::from_millis(200);

/// The fingerprint a cache was last loaded with.
#[derive(Debug)]
pub(crate) struct Seen<F>(Mutex<Option<F>>);

impl<F: PartialEq> Seen<F> {
    pub(crate) fn new() -> Seen<F> {
        Seen(Mutex::new(None))
    }

    /// Whether the cache was loaded with this fingerprint (no reload needed).
    pub(crate) fn is(&self, fingerprint: &F) -> bool {
        self.0.lock().as_ref() == Some(fingerprint)
    }

    /// Records the fingerprint the cache was just loaded with.
    pub(crate) fn set(&self, fingerprint: F) {
        *self.0.lock() = Some(fingerprint);
    }
}

/// Runs `step` (one poll of a cache: compare the fingerprint, reload when
/// it moved) on `target` every [`POLL`] while `target` lives. A failing
/// step keeps the cache as it is; the first failure of a run of them is a
/// warning, the recovery a notice.
pub(crate) fn follow<T, F, Fut>(target: &Arc<T>, what: &'static str, step: F)
where
    T: Send + Sync + 'static,
    F: Fn(Arc<T>) -> Fut + Send + 'static,
    Fut: Future<Output = AppResult<()>> + Send + 'static,
{
    let weak = Arc::downgrade(target);
    tokio::spawn(async move {
        let mut failing = false;
        loop {
            tokio::time::sleep(POLL).await;
            let Some(target) = weak.upgrade() else { return };
            match step(target).await {
                Ok(()) if failing => {
                    failing = false;
                    tracing::info!(cache = what, "the cache follows the store again");
                }
                Ok(()) => {}
                Err(error) if !failing => {
                    failing = true;
                    tracing::warn!(cache = what, error = %error.message, "cannot read the store; keeping the cached copy");
                }
                Err(_) => {}
            }
        }
    });
}
