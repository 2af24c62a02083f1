//! The audit log: every mutation, every denial, every sign-in and token
//! event, with who (never a secret), what, on what, the outcome and the
//! request. Rows are hash-chained in the store (each carries the hash of
//! the one before), so `plinth audit verify` finds an edited or deleted
//! row.
//!
//! Writes go through one writer task per process that commits in batches
//! (group commit); a call returns once its row is durable, so a mutation's
//! answer is never sent before its audit row exists.

use plinth_store::{NewAuditEntry, Store};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

use crate::access::{AccessControl, Permission, Resource};
use crate::lease::{Flow, Job, Leadership};
use crate::{AppError, AppResult, Caller};

pub use plinth_store::{AuditEntry, AuditOutcome, AuditProblem, AuditQuery, AuditVerification};

/// Rows waiting for the writer, at most; a caller waits when it is full.
const QUEUE: usize = 4096;
/// Rows per transaction, at most.
const BATCH: usize = 512;
/// The most rows one page of `GET /api/audit` returns.
pub const MAX_AUDIT_PAGE: usize = 1000;

type Pending = (NewAuditEntry, oneshot::Sender<()>);

/// The process's audit writer.
pub struct AuditLog {
    store: Store,
    sender: mpsc::Sender<Pending>,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog").field("queued", &(QUEUE - self.sender.capacity())).finish_non_exhaustive()
    }
}

impl AuditLog {
    /// Starts the writer (and, with `retention`, hourly pruning of older
    /// rows on the replica leading [`Job::AuditRetention`]).
    pub(crate) fn start(store: Store, retention: Option<Duration>, leadership: &Arc<Leadership>) -> Arc<AuditLog> {
        let (sender, receiver) = mpsc::channel(QUEUE);
        tokio::spawn(write(store.clone(), receiver));
        if let Some(retention) = retention {
            let store = store.clone();
            leadership.spawn_job(Job::AuditRetention, Duration::from_secs(3600), move |term| {
                let store = store.clone();
                async move {
                    if !term.holds() {
                        return Flow::Continue;
                    }
                    let before = time::OffsetDateTime::now_utc() - retention;
                    match store.prune_audit(before).await {
                        Ok(0) => {}
                        Ok(deleted) => tracing::info!(deleted, "audit rows past retention deleted"),
                        Err(error) => tracing::warn!(%error, "audit retention could not run"),
                    }
                    Flow::Continue
                }
            });
        }
        Arc::new(AuditLog { store, sender })
    }

    /// Records one event and waits until it is stored. `action` names what
    /// was attempted (`catalog.location.create`, `auth.token.revoke`, …).
    pub async fn record(&self, caller: &Caller, action: &str, target: &str, outcome: AuditOutcome, detail: Value) {
        let entry = NewAuditEntry {
            at: time::OffsetDateTime::now_utc(),
            actor: caller.actor(),
            token_id: caller.token_id.clone(),
            action: action.to_string(),
            target: target.to_string(),
            outcome,
            request_id: caller.request_id.clone(),
            detail: if detail.is_object() { detail } else { Value::Object(Default::default()) },
        };
        tracing::info!(
            target: "plinth::audit",
            actor = %entry.actor, action, target, outcome = outcome.as_str(),
            request_id = entry.request_id.as_deref().unwrap_or(""), "audit"
        );
        let (done, stored) = oneshot::channel();
        if self.sender.send((entry, done)).await.is_ok() {
            let _ = stored.await;
        }
    }

    /// The store behind the log (verification, listing).
    pub(crate) fn store(&self) -> &Store {
        &self.store
    }
}

async fn write(store: Store, mut receiver: mpsc::Receiver<Pending>) {
    let mut batch: Vec<Pending> = Vec::with_capacity(BATCH);
    while receiver.recv_many(&mut batch, BATCH).await > 0 {
        let entries: Vec<NewAuditEntry> = batch.iter().map(|(e, _)| e.clone()).collect();
        let mut delay = Duration::from_millis(50);
        for attempt in 1.. {
            match store.append_audit(&entries).await {
                Ok(_) => break,
                Err(error) if attempt < 5 => {
                    tracing::warn!(%error, attempt, rows = entries.len(), "audit rows not stored yet; retrying");
                    tokio::time::sleep(delay).await;
                    delay *= 2;
                }
                Err(error) => {
                    // The rows were logged above (target plinth::audit);
                    // the store refused them five times.
                    tracing::error!(%error, rows = entries.len(), "audit rows could not be stored");
                    break;
                }
            }
        }
        for (_, done) in batch.drain(..) {
            let _ = done.send(());
        }
    }
}

/// The audit log's use cases (admins only).
#[derive(Debug, Clone, Copy)]
pub struct Audit<'a> {
    pub(crate) log: &'a AuditLog,
    pub(crate) access: &'a AccessControl,
}

impl<'a> Audit<'a> {
    /// Rows matching `query`, newest first, and the cursor of the next page.
    pub async fn entries(&self, caller: &Caller, query: &AuditQuery) -> AppResult<(Vec<AuditEntry>, Option<i64>)> {
        self.access.check(caller, Permission::AuditRead, &Resource::none())?;
        if query.limit > MAX_AUDIT_PAGE {
            return Err(AppError::invalid_field("limit", format!("at most {MAX_AUDIT_PAGE} rows per page")));
        }
        Ok(self.log.store().audit_entries(query).await?)
    }

    /// Walks the whole chain; the first bad row, if any, is in the answer.
    pub async fn verify(&self, caller: &Caller) -> AppResult<AuditVerification> {
        self.access.check(caller, Permission::AuditRead, &Resource::none())?;
        Ok(self.log.store().verify_audit().await?)
    }
}
