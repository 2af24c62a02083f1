//! The catalogue service: registers locations, refreshes them into the
//! store, follows the store's change log into the in-memory projection, and
//! answers queries. The imperative shell around the pure parts.
//!
//! Data flow: location → [`source::read_location`] → reconcile against the
//! projection (hash, ownership, removals) → [`Store::apply`] (entity rows and
//! change-log rows in one transaction) → [`Catalog::catch_up`] reads the log
//! and updates the projection — the same path every replica follows.

use crate::git::{self, GitSource};
use crate::reconcile::{self, conflict, Held, Planned};
use crate::search::SearchIndex;
use crate::source::{self, FileCache, FileNamer, Namer, SourceRead};
use crate::state::{prepare_shared, CatalogState, RecentChange};
use parking_lot::{Mutex, RwLock, RwLockReadGuard};
use plinth_model::yaml::YamlLimits;
use plinth_model::{Diagnostic, Severity};
use plinth_store::{
    ChangeOp, EntityChange, EntityUpsert, IngestionError, LocationKind, LocationRow, LocationStatus, NewLocation,
    SkipReason, Store, StoreError,
};
use rayon::prelude::*;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::broadcast;

/// How the catalogue runs.
#[derive(Debug, Clone)]
pub struct CatalogConfig {
    /// Where git checkouts live.
    pub data_dir: PathBuf,
    /// How often every location is refreshed.
    pub refresh_interval: Duration,
    /// How often the change log is polled for other replicas' writes.
    pub follow_interval: Duration,
    pub limits: YamlLimits,
}

impl CatalogConfig {
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        CatalogConfig {
            data_dir: data_dir.into(),
            refresh_interval: Duration::from_secs(60),
            follow_interval: Duration::from_millis(200),
            limits: YamlLimits::default(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Search(#[from] crate::search::SearchError),
    #[error("no location with id {0}")]
    UnknownLocation(String),
    #[error("{0}")]
    BadLocation(String),
    #[error("internal error: {0}")]
    Internal(String),
}

/// What a refresh did, for callers, logs and metrics.
#[derive(Debug, Clone, Default, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RefreshReport {
    pub location_id: String,
    pub files_read: usize,
    pub entities_found: usize,
    pub written: usize,
    pub deleted: usize,
    pub unchanged: usize,
    pub errors: usize,
    pub warnings: usize,
    pub duration_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
}

/// Counters exported on `/metrics`.
#[derive(Debug, Default)]
pub struct CatalogMetrics {
    pub refreshes: AtomicU64,
    pub refresh_failures: AtomicU64,
    pub refresh_millis_total: AtomicU64,
    pub last_refresh_millis: AtomicU64,
    pub entities_written: AtomicU64,
    pub entities_deleted: AtomicU64,
    pub changes_applied: AtomicU64,
    pub ingestion_errors: AtomicU64,
}

pub struct Catalog {
    store: Store,
    config: CatalogConfig,
    state: RwLock<CatalogState>,
    search: Arc<SearchIndex>,
    cache: Arc<FileCache>,
    refresh_locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    follow_lock: tokio::sync::Mutex<()>,
    /// One resumption at a time: a second one finds what the first resumed
    /// complete instead of refreshing it again.
    resume_lock: tokio::sync::Mutex<()>,
    events: broadcast::Sender<RecentChange>,
    /// Refreshes of this process writing chunks now. While one does, the
    /// periodic follower stands aside: the refresh projects what it wrote
    /// from memory (sharing the parse cache's bodies) and follows the log
    /// itself when another writer came between; a follower that took the
    /// lock first would read every chunk back from the store instead.
    writing: AtomicUsize,
    /// Followers applying a backlog of the change log now (a full batch:
    /// another replica's bulk ingest). Not `writing`, which the periodic
    /// follower stands aside for.
    backlog: AtomicUsize,
    /// The last footprint estimate and when it was taken.
    footprint: Mutex<Option<(Instant, Vec<crate::Footprint>)>>,
    pub metrics: CatalogMetrics,
}

/// Counts a refresh as writing until dropped.
struct Writing<'a>(&'a AtomicUsize);

impl<'a> Writing<'a> {
    fn start(count: &'a AtomicUsize) -> Writing<'a> {
        count.fetch_add(1, Ordering::SeqCst);
        Writing(count)
    }
}

impl Drop for Writing<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Upserts per store transaction: big enough to amortise commits, small
/// enough that entities become visible progressively on a first ingest,
/// that the projection's write lock is held for milliseconds, not hundreds
/// of them, and that a chunk's flattened pairs (the ingest's largest
/// transient) stay a few tens of megabytes.
const APPLY_CHUNK: usize = 5_000;
/// Change-log rows read per follower step.
const FOLLOW_BATCH: i64 = 5_000;
/// Changes the broadcast to live views holds. A chunk's changes are sent
/// in one go; room for a few chunks lets a subscriber that drains as they
/// come (see `plinth-app`'s bursts) keep up through a bulk ingest instead of
/// lagging and paying for a full rebuild.
const EVENTS: usize = 4 * if APPLY_CHUNK > FOLLOW_BATCH as usize { APPLY_CHUNK } else { FOLLOW_BATCH as usize };
/// How long a memory footprint estimate is reused.
const FOOTPRINT_TTL: Duration = Duration::from_secs(30);
/// Search documents indexed between two commits of a bulk ingest.
const SEARCH_COMMIT: usize = 25_000;

impl Catalog {
    /// Builds the projection from the store and returns the catalogue.
    /// The change-log follower starts with [`Catalog::spawn_follower`].
    pub async fn open(store: Store, config: CatalogConfig) -> Result<Arc<Catalog>, CatalogError> {
        let search = Arc::new(SearchIndex::new()?);
        let (events, _) = broadcast::channel(EVENTS);
        let catalog = Arc::new(Catalog {
            store,
            config,
            state: RwLock::new(CatalogState::new()),
            search,
            cache: Arc::new(FileCache::default()),
            refresh_locks: Mutex::new(HashMap::new()),
            follow_lock: tokio::sync::Mutex::new(()),
            resume_lock: tokio::sync::Mutex::new(()),
            events,
            writing: AtomicUsize::new(0),
            backlog: AtomicUsize::new(0),
            footprint: Mutex::new(None),
            metrics: CatalogMetrics::default(),
        });
        // Read the log position first: anything written while we load is
        // replayed afterwards, and replay is idempotent.
        let last_seq = catalog.store.last_seq().await?;
        let entities = catalog.store.load_entities().await?;
        let this = catalog.clone();
        let entities = entities.into_iter().map(|row| (row, None)).collect();
        on_blocking_pool(move || this.apply_rows(entities, Vec::new())).await??;
        catalog.state.write().last_seq = last_seq;
        catalog.catch_up().await?;
        Ok(catalog)
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn config(&self) -> &CatalogConfig {
        &self.config
    }

    /// A read view of the projection. Hold it briefly.
    pub fn read(&self) -> RwLockReadGuard<'_, CatalogState> {
        self.state.read()
    }

    pub fn search_index(&self) -> &SearchIndex {
        &self.search
    }

    /// Changes as they are applied (for live views).
    pub fn subscribe(&self) -> broadcast::Receiver<RecentChange> {
        self.events.subscribe()
    }

    /// Refreshes, at once, every location whose last refresh did not
    /// complete (the process was killed mid-ingest, or before the first
    /// refresh of a newly registered location). Returns how many.
    pub async fn resume_interrupted(self: &Arc<Self>) -> Result<usize, CatalogError> {
        self.resume_interrupted_while(|| true).await
    }

    /// [`Catalog::resume_interrupted`], asking `keep_going` before each
    /// location (a replica that stops leading the refresh job stops there).
    pub async fn resume_interrupted_while(
        self: &Arc<Self>,
        keep_going: impl Fn() -> bool,
    ) -> Result<usize, CatalogError> {
        let _one = self.resume_lock.lock().await;
        let interrupted: Vec<LocationRow> =
            self.store.list_locations().await?.into_iter().filter(|l| l.status.interrupted()).collect();
        let mut resumed = 0;
        for location in &interrupted {
            if !keep_going() {
                break;
            }
            tracing::info!(location = %location.target, "resuming a refresh that did not complete");
            if let Err(error) = self.refresh_location(&location.id).await {
                tracing::warn!(location = %location.target, %error, "resumed refresh failed; the periodic refresh retries");
            }
            resumed += 1;
        }
        Ok(resumed)
    }

    /// Whether a bulk of changes is being applied now: a refresh of this
    /// process writing chunks, or the follower applying a backlog of the
    /// change log (another replica's bulk ingest). Views rebuilt from the
    /// whole catalogue wait for its end rather than rebuild once per burst
    /// of its changes.
    pub fn is_writing(&self) -> bool {
        self.writing.load(Ordering::SeqCst) > 0 || self.backlog.load(Ordering::SeqCst) > 0
    }

    /// Starts the change-log follower, which every replica runs. The
    /// periodic refresh and the resumption of refreshes a crash cut off are
    /// cluster-wide work: the application runs them on one replica at a
    /// time ([`Catalog::refresh_all_while`],
    /// [`Catalog::resume_interrupted_while`]).
    pub fn spawn_follower(self: &Arc<Self>) {
        let follower = Arc::downgrade(self);
        let interval = self.config.follow_interval;
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(interval).await;
                let Some(catalog) = follower.upgrade() else { break };
                if catalog.writing.load(Ordering::SeqCst) > 0 {
                    continue;
                }
                if let Err(error) = catalog.catch_up().await {
                    tracing::warn!(%error, "following the change log failed; retrying");
                }
            }
        });
    }

    /// Applies change-log rows written since the projection's position, by
    /// this process or any other replica.
    pub async fn catch_up(self: &Arc<Self>) -> Result<usize, CatalogError> {
        let _guard = self.follow_lock.lock().await;
        let mut applied = 0;
        let mut backlog = None;
        loop {
            let after = self.state.read().last_seq;
            let changes = self.store.changes_since(after, FOLLOW_BATCH).await?;
            if changes.is_empty() {
                break;
            }
            if changes.len() as i64 == FOLLOW_BATCH && backlog.is_none() {
                backlog = Some(Writing::start(&self.backlog));
            }
            let mut keys: Vec<String> = changes.iter().map(|c| c.key.clone()).collect();
            keys.sort();
            keys.dedup();
            let fetch_started = Instant::now();
            let rows = self.store.get_entities(&keys).await?;
            tracing::debug!(
                rows = rows.len(),
                ms = fetch_started.elapsed().as_millis() as u64,
                "fetched changed entities"
            );
            let present: HashSet<&str> = rows.iter().map(|r| r.key.as_str()).collect();
            let deleted: Vec<String> = keys.iter().filter(|k| !present.contains(k.as_str())).cloned().collect();
            let rows: Vec<_> = {
                let state = self.state.read();
                rows.into_iter()
                    .filter(|row| state.get(&row.key).is_none_or(|r| r.hash != row.hash || !r.uid.is(&row.uid)))
                    .map(|row| (row, None))
                    .collect()
            };
            applied += changes.len();
            self.apply_and_announce(rows, deleted, &changes).await?;
        }
        let this = self.clone();
        on_blocking_pool(move || this.search.commit()).await??;
        Ok(applied)
    }

    /// Projects rows this process just wrote without reading them back,
    /// when nothing else was written in between (their seqs follow the
    /// projection's position); otherwise follows the log as usual.
    async fn project_written(
        self: Arc<Self>,
        chunk: Vec<EntityChange>,
        shared: Vec<Option<Arc<str>>>,
        written: Vec<plinth_store::ChangeRecord>,
        uids: HashMap<String, String>,
    ) -> Result<usize, CatalogError> {
        let guard = self.follow_lock.lock().await;
        let next = self.state.read().last_seq + 1;
        let contiguous = written.first().is_some_and(|first| first.seq == next)
            && written.windows(2).all(|pair| pair[1].seq == pair[0].seq + 1);
        if !contiguous {
            drop(guard);
            return self.catch_up().await;
        }
        let at: HashMap<&str, time::OffsetDateTime> = written.iter().map(|r| (r.key.as_str(), r.at)).collect();
        let mut rows = Vec::with_capacity(written.len());
        let mut deleted = Vec::new();
        for (change, shared) in chunk.into_iter().zip(shared) {
            match change {
                EntityChange::Upsert(upsert) => {
                    let (Some(uid), Some(updated_at)) = (uids.get(&upsert.key), at.get(upsert.key.as_str())) else {
                        continue;
                    };
                    let row = plinth_store::StoredEntity {
                        uid: uid.clone(),
                        etag: upsert.hash.chars().take(16).collect(),
                        updated_at: *updated_at,
                        key: upsert.key,
                        kind: upsert.kind,
                        namespace: upsert.namespace,
                        name: upsert.name,
                        body: upsert.body,
                        hash: upsert.hash,
                        location_id: upsert.location_id,
                    };
                    rows.push((row, shared));
                }
                EntityChange::Delete { key } => {
                    if at.contains_key(key.as_str()) {
                        deleted.push(key);
                    }
                }
            }
        }
        self.apply_and_announce(rows, deleted, &written).await?;
        drop(guard);
        Ok(written.len())
    }

    /// Applies rows to the projection on the blocking pool, records the
    /// change-log rows as seen, and announces them to live views. The caller
    /// holds the follow lock.
    async fn apply_and_announce(
        self: &Arc<Self>,
        rows: Vec<(plinth_store::StoredEntity, Option<Arc<str>>)>,
        deleted: Vec<String>,
        changes: &[plinth_store::ChangeRecord],
    ) -> Result<(), CatalogError> {
        let recent: Vec<RecentChange> = changes
            .iter()
            .map(|c| RecentChange { seq: c.seq, entity_ref: c.key.clone(), op: c.op, at: c.at })
            .collect();
        let this = self.clone();
        let recent_for_apply = recent.clone();
        on_blocking_pool(move || {
            this.apply_rows(rows, deleted)?;
            let mut state = this.state.write();
            for change in recent_for_apply {
                state.note_change(change);
            }
            Ok::<_, CatalogError>(())
        })
        .await??;
        self.metrics.changes_applied.fetch_add(recent.len() as u64, Ordering::Relaxed);
        for change in recent {
            let _ = self.events.send(change);
        }
        Ok(())
    }

    /// Updates the projection: prepare in parallel, mutate under the lock,
    /// index text outside it. A row may come with its body as the parse
    /// cache holds it, to be shared rather than copied.
    fn apply_rows(
        &self,
        rows: Vec<(plinth_store::StoredEntity, Option<Arc<str>>)>,
        deleted: Vec<String>,
    ) -> Result<(), CatalogError> {
        let started = Instant::now();
        let count = rows.len();
        let deleted_count = deleted.len();
        let prepared: Vec<_> = rows
            .into_par_iter()
            .filter_map(|(row, shared)| match prepare_shared(row, shared) {
                Ok(p) => Some(p),
                Err(error) => {
                    tracing::error!(%error, "skipping a stored entity");
                    None
                }
            })
            .collect();
        let prepared_ms = started.elapsed().as_millis() as u64;
        let docs;
        let mut removed = Vec::new();
        let lock_wait_ms;
        {
            let mut state = self.state.write();
            // Readers that hold the projection long (a whole-catalogue
            // scan under one read guard) show here, growing with its size.
            lock_wait_ms = (started.elapsed().as_millis() as u64).saturating_sub(prepared_ms);
            docs = state.apply_batch(prepared);
            for key in &deleted {
                if let Some(node) = state.delete(key) {
                    removed.push(node);
                }
            }
        }
        let projected_ms = started.elapsed().as_millis() as u64;
        docs.par_iter().try_for_each(|a| self.search.upsert(a.node, &a.search_doc, a.replaced))?;
        for node in removed {
            self.search.delete(node);
        }
        // Small change sets are searchable at once; a bulk ingest commits
        // the search index every SEARCH_COMMIT documents, and at its end
        // (`catch_up`, `refresh_location`).
        if count + deleted_count < APPLY_CHUNK {
            self.search.commit()?;
        } else {
            self.search.commit_every(SEARCH_COMMIT)?;
        }
        tracing::debug!(
            rows = count,
            prepared_ms,
            lock_wait_ms,
            projected_ms,
            total_ms = started.elapsed().as_millis() as u64,
            "applied to the projection"
        );
        Ok(())
    }

    /// Estimated bytes per structure: the projection's (see
    /// [`CatalogState::footprint`]), the search index and the parse cache.
    /// Walks every entity under the read lock (about 0.1 s at a million),
    /// so a result is reused for [`FOOTPRINT_TTL`]: scrapes cannot add up.
    pub fn footprint(&self) -> Vec<crate::Footprint> {
        let mut cached = self.footprint.lock();
        if let Some((at, footprint)) = &*cached {
            if at.elapsed() < FOOTPRINT_TTL {
                return footprint.clone();
            }
        }
        let mut out = self.read().footprint();
        out.push(crate::Footprint { structure: "search index", bytes: self.search.footprint() });
        out.push(crate::Footprint { structure: "file parse cache", bytes: self.cache.footprint() });
        *cached = Some((Instant::now(), out.clone()));
        out
    }

    /// Registers a location (or finds the existing one) and refreshes it.
    pub async fn add_location(
        self: &Arc<Self>,
        location: NewLocation,
    ) -> Result<(LocationRow, bool, RefreshReport), CatalogError> {
        let location = normalize_location(location)?;
        let (row, created) = self.store.add_location(&location).await?;
        let report = self.refresh_location(&row.id).await?;
        let row = self.store.get_location(&row.id).await?.unwrap_or(row);
        Ok((row, created, report))
    }

    /// Reads a location without writing anything: the entities it would
    /// produce and its diagnostics.
    pub async fn preview_location(self: &Arc<Self>, location: NewLocation) -> Result<SourceRead, CatalogError> {
        let location = normalize_location(location)?;
        // A normalised location is `file` or `git`.
        let kind = LocationKind::parse(&location.kind).unwrap_or(LocationKind::File);
        let row = LocationRow {
            id: "dry-run".into(),
            kind,
            target: location.target,
            branch: location.branch,
            created_at: time::OffsetDateTime::now_utc(),
            status: LocationStatus::default(),
        };
        let (read, _) = self.read_source(&row).await;
        Ok(read)
    }

    /// Removes a location and every entity it manages.
    pub async fn delete_location(self: &Arc<Self>, id: &str) -> Result<bool, CatalogError> {
        let lock = self.refresh_lock(id);
        let _guard = lock.lock().await;
        let deleted = self.store.delete_location(id).await?;
        self.catch_up().await?;
        Ok(deleted.is_some())
    }

    pub async fn refresh_all(self: &Arc<Self>) {
        self.refresh_all_while(|| true).await
    }

    /// Refreshes every location, asking `keep_going` before each (a replica
    /// that stops leading the refresh job stops there).
    pub async fn refresh_all_while(self: &Arc<Self>, keep_going: impl Fn() -> bool) {
        let locations = match self.store.list_locations().await {
            Ok(locations) => locations,
            Err(error) => {
                tracing::warn!(%error, "cannot list locations for the periodic refresh");
                return;
            }
        };
        for location in locations {
            if !keep_going() {
                break;
            }
            if let Err(error) = self.refresh_location(&location.id).await {
                tracing::warn!(location = %location.target, %error, "refresh failed");
            }
        }
    }

    /// Refreshes the location that manages an entity.
    pub async fn refresh_entity(self: &Arc<Self>, key: &str) -> Result<Option<RefreshReport>, CatalogError> {
        let location_id = match self.read().get(key) {
            Some(record) => record.location_id.to_string(),
            None => return Ok(None),
        };
        Ok(Some(self.refresh_location(&location_id).await?))
    }

    /// Refreshes every git location whose repository matches one of `urls`
    /// (and `branch`, when both say one). Returns the reports.
    pub async fn refresh_repositories(
        self: &Arc<Self>,
        urls: &[String],
        branch: Option<&str>,
    ) -> Result<Vec<RefreshReport>, CatalogError> {
        let wanted: HashSet<String> = urls.iter().map(|u| git::normalize_repo_url(u)).collect();
        let mut reports = Vec::new();
        for location in self.store.list_locations().await? {
            if location.kind != LocationKind::Git {
                continue;
            }
            let source = GitSource::from_target(&location.target, location.branch.as_deref());
            if !wanted.contains(&git::normalize_repo_url(&source.url)) {
                continue;
            }
            if let (Some(pushed), Some(tracked)) = (branch, source.branch.as_deref()) {
                if pushed != tracked {
                    continue;
                }
            }
            reports.push(self.refresh_location(&location.id).await?);
        }
        Ok(reports)
    }

    fn refresh_lock(&self, id: &str) -> Arc<tokio::sync::Mutex<()>> {
        self.refresh_locks.lock().entry(id.to_string()).or_default().clone()
    }

    /// Re-reads one location and brings the store (and so every replica's
    /// projection) in line with it.
    pub async fn refresh_location(self: &Arc<Self>, id: &str) -> Result<RefreshReport, CatalogError> {
        let lock = self.refresh_lock(id);
        let _guard = lock.lock().await;
        let started = Instant::now();
        let location =
            self.store.get_location(id).await?.ok_or_else(|| CatalogError::UnknownLocation(id.to_string()))?;
        // Marked until the refresh completes, so a restart knows to resume it.
        let marked = LocationStatus { refreshing_since: Some(now_rfc3339()), ..location.status.clone() };
        self.store.set_location_status(id, &marked).await?;
        let (mut read, revision) = self.read_source(&location).await;
        tracing::debug!(ms = started.elapsed().as_millis() as u64, files = read.files_read, "read location");
        let mut report = RefreshReport {
            location_id: id.to_string(),
            files_read: read.files_read,
            entities_found: read.entities.len(),
            revision: revision.clone(),
            ..RefreshReport::default()
        };
        let diagnostics = std::mem::take(&mut read.diagnostics);
        // Reconciling walks every entity the location declares and every
        // one it holds (100 ms at 100k, seconds at a million): work for
        // the blocking pool, never an async worker, whose other requests
        // would wait behind it.
        let this = Arc::clone(self);
        let reconciling = location.clone();
        let (changes, unchanged, mut read, mut diagnostics) = on_blocking_pool(move || {
            let mut diagnostics = diagnostics;
            let (changes, unchanged) = this.reconcile(&reconciling, &read, &mut diagnostics);
            (changes, unchanged, read, diagnostics)
        })
        .await?;
        report.unchanged = unchanged;
        // The plan holds what the writes need (the parse cache shares the
        // entities); the per-entity file names and lines go now rather than
        // stay through the writes (~100 MiB at a million entities).
        read.entities = Vec::new();
        tracing::debug!(ms = started.elapsed().as_millis() as u64, changes = changes.len(), "reconciled");
        let owners: HashMap<String, String> =
            self.store.list_locations().await?.into_iter().map(|l| (l.id.clone(), l.target)).collect();
        let mut projecting: Option<tokio::task::JoinHandle<Result<usize, CatalogError>>> = None;
        let writing = Writing::start(&self.writing);
        for planned in changes.chunks(APPLY_CHUNK) {
            // Bodies are copied for the store one chunk at a time, so a
            // first ingest never holds two full copies of the catalogue.
            let chunk: Vec<EntityChange> = planned.iter().map(|p| p.to_change(&location.id)).collect();
            let shared: Vec<Option<Arc<str>>> = planned.iter().map(Planned::shared_body).collect();
            let mut outcome = self.store.apply(&chunk).await?;
            tracing::debug!(ms = started.elapsed().as_millis() as u64, rows = chunk.len(), "stored");
            for record in &outcome.written {
                match record.op {
                    ChangeOp::Upsert => report.written += 1,
                    ChangeOp::Delete => report.deleted += 1,
                }
            }
            for (key, reason) in std::mem::take(&mut outcome.skipped) {
                if let SkipReason::OwnedBy(other) = reason {
                    let owner = owners.get(&other).cloned().unwrap_or(other);
                    diagnostics.push(conflict(&key, &owner, &location.target));
                } else {
                    report.unchanged += 1;
                }
            }
            // Project this chunk while the next one is written: the store's
            // work and the projection's overlap on a first ingest.
            if let Some(previous) = projecting.take() {
                join_projection(previous).await?;
                tracing::debug!(ms = started.elapsed().as_millis() as u64, "projected");
            }
            let this = self.clone();
            projecting =
                Some(tokio::spawn(
                    async move { this.project_written(chunk, shared, outcome.written, outcome.uids).await },
                ));
        }
        if let Some(previous) = projecting.take() {
            join_projection(previous).await?;
        }
        drop(writing);
        self.catch_up().await?;
        report.errors = diagnostics.iter().filter(|d| d.severity == Severity::Error).count();
        report.warnings = diagnostics.len() - report.errors;
        let errors: Vec<IngestionError> = diagnostics
            .into_iter()
            .map(|diagnostic| IngestionError { location_id: id.to_string(), diagnostic })
            .collect();
        self.store.replace_errors(id, &errors).await?;
        // A walk of every entity, too: off the async workers.
        let (this, counted) = (Arc::clone(self), id.to_string());
        let entities =
            on_blocking_pool(move || this.read().entities().filter(|r| *r.location_id == *counted).count() as i64)
                .await?;
        let status = LocationStatus {
            refreshed_at: Some(now_rfc3339()),
            entities,
            errors: report.errors as i64,
            revision,
            refreshing_since: None,
        };
        self.store.set_location_status(id, &status).await?;
        report.duration_ms = started.elapsed().as_millis() as u64;
        self.metrics.refreshes.fetch_add(1, Ordering::Relaxed);
        self.metrics.last_refresh_millis.store(report.duration_ms, Ordering::Relaxed);
        self.metrics.refresh_millis_total.fetch_add(report.duration_ms, Ordering::Relaxed);
        self.metrics.entities_written.fetch_add(report.written as u64, Ordering::Relaxed);
        self.metrics.entities_deleted.fetch_add(report.deleted as u64, Ordering::Relaxed);
        self.metrics.ingestion_errors.fetch_add(report.errors as u64, Ordering::Relaxed);
        if read.root_failed {
            self.metrics.refresh_failures.fetch_add(1, Ordering::Relaxed);
        }
        tracing::info!(
            location = %location.target, written = report.written, deleted = report.deleted,
            unchanged = report.unchanged, errors = report.errors, ms = report.duration_ms, "refreshed location"
        );
        Ok(report)
    }

    /// Reads a location's files (syncing its git checkout first).
    async fn read_source(&self, location: &LocationRow) -> (SourceRead, Option<String>) {
        let limits = self.config.limits;
        match location.kind {
            LocationKind::Git => {
                let source = GitSource::from_target(&location.target, location.branch.as_deref());
                let dir = self.config.data_dir.join("git").join(source.checkout_name());
                let revision = match git::sync(&source, &dir).await {
                    Ok(revision) => revision,
                    Err(message) => {
                        let read = SourceRead {
                            root_failed: true,
                            diagnostics: vec![Diagnostic::error(location.target.clone(), message.to_string())],
                            ..SourceRead::default()
                        };
                        return (read, None);
                    }
                };
                let checkout = dir.canonicalize().unwrap_or(dir);
                let root = match source.subdir(&checkout) {
                    Ok(root) => root,
                    Err(message) => {
                        let read = SourceRead {
                            root_failed: true,
                            diagnostics: vec![Diagnostic::error(location.target.clone(), message.to_string())],
                            ..SourceRead::default()
                        };
                        return (read, Some(revision));
                    }
                };
                let namer = GitNamer {
                    source: source.clone(),
                    checkout,
                    revision: source.branch.clone().unwrap_or_else(|| revision.clone()),
                };
                let read = self.read_files(root, Box::new(namer), limits).await;
                (read, Some(revision))
            }
            LocationKind::File => {
                (self.read_files(PathBuf::from(&location.target), Box::new(FileNamer), limits).await, None)
            }
        }
    }

    async fn read_files(&self, root: PathBuf, namer: Box<dyn Namer>, limits: YamlLimits) -> SourceRead {
        // The file cache is shared; reading is CPU and disk work for the
        // blocking pool, never the async workers.
        let cache = self.cache.clone();
        tokio::task::spawn_blocking(move || source::read_location(&root, namer.as_ref(), &cache, &limits))
            .await
            .unwrap_or_else(|error| SourceRead {
                root_failed: true,
                diagnostics: vec![Diagnostic::error("plinth", format!("reading the location failed: {error}"))],
                ..SourceRead::default()
            })
    }

    /// Compares what a location declares with what the projection holds
    /// (the rules are [`reconcile::plan`]'s).
    fn reconcile(
        &self,
        location: &LocationRow,
        read: &SourceRead,
        diagnostics: &mut Vec<Diagnostic>,
    ) -> (Vec<Planned>, usize) {
        let state = self.read();
        let held = |key: &str| {
            state.get(key).map(|e| Held { location_id: &e.location_id, managed_by: &e.managed_by, hash: &e.hash })
        };
        let owned = state
            .entities()
            .filter(|record| *record.location_id == *location.id)
            .map(|record| (&*record.key, &*record.managed_by));
        reconcile::plan(&location.id, read, held, owned, diagnostics)
    }

    /// Every location with its status.
    pub async fn locations(&self) -> Result<Vec<LocationRow>, CatalogError> {
        Ok(self.store.list_locations().await?)
    }

    /// Deletes one entity by uid (it returns on the next refresh if its
    /// source still declares it, as in Backstage).
    pub async fn delete_entity_by_uid(self: &Arc<Self>, uid: &str) -> Result<bool, CatalogError> {
        let key = match self.read().get_by_uid(uid) {
            Some(record) => record.key.to_string(),
            None => return Ok(false),
        };
        let outcome = self.store.apply(&[EntityChange::Delete { key }]).await?;
        self.catch_up().await?;
        Ok(!outcome.written.is_empty())
    }
}

/// Runs CPU work on the runtime's blocking pool, off the async workers; a
/// panic in it is an internal error.
async fn on_blocking_pool<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Result<T, CatalogError> {
    tokio::task::spawn_blocking(work).await.map_err(|e| CatalogError::Internal(e.to_string()))
}

async fn join_projection(task: tokio::task::JoinHandle<Result<usize, CatalogError>>) -> Result<usize, CatalogError> {
    task.await.map_err(|e| CatalogError::Internal(e.to_string()))?
}

impl Planned {
    /// The body text an upsert writes, as the parse cache holds it.
    fn shared_body(&self) -> Option<Arc<str>> {
        match self {
            Planned::Upsert(entity) => Some(entity.body.clone()),
            Planned::Delete(_) => None,
        }
    }

    fn to_change(&self, location_id: &str) -> EntityChange {
        match self {
            Planned::Upsert(entity) => EntityChange::Upsert(EntityUpsert {
                key: entity.entity_ref.key(),
                kind: entity.kind.clone(),
                namespace: entity.entity_ref.namespace.clone(),
                name: entity.entity_ref.name.clone(),
                body: entity.body.to_string(),
                hash: entity.hash.clone(),
                location_id: location_id.to_string(),
            }),
            Planned::Delete(key) => EntityChange::Delete { key: key.clone() },
        }
    }
}

/// Most characters of a location's target.
pub(crate) const MAX_TARGET: usize = 4096;

/// Most characters of a location's branch.
pub(crate) const MAX_BRANCH: usize = 255;

/// Checks and canonicalises a location before it is stored: file targets
/// become absolute paths; `url` targets that name a git repository become
/// `git` locations.
pub fn normalize_location(mut location: NewLocation) -> Result<NewLocation, CatalogError> {
    let target = location.target.trim().to_string();
    if target.is_empty() {
        return Err(CatalogError::BadLocation("location target is empty; give a file, directory or git URL".into()));
    }
    if target.chars().count() > MAX_TARGET {
        return Err(CatalogError::BadLocation(format!(
            "location target is {} characters long; at most {MAX_TARGET}",
            target.chars().count()
        )));
    }
    if let Some(branch) = &location.branch {
        if branch.chars().count() > MAX_BRANCH {
            return Err(CatalogError::BadLocation(format!(
                "branch is {} characters long; a branch name has at most {MAX_BRANCH}",
                branch.chars().count()
            )));
        }
    }
    let kind = location.kind.trim().to_lowercase();
    location.kind = match kind.as_str() {
        "file" | "" if !looks_like_git(&target) => "file".into(),
        "git" | "url" | "file" | "" => {
            if kind == "url" && !looks_like_git(&target) && !target.starts_with('/') {
                return Err(CatalogError::BadLocation(format!(
                    "cannot read `{target}`: Plinth reads remote catalogues through git; give the repository URL (ending in .git) and optionally a branch"
                )));
            }
            if looks_like_git(&target) || kind == "git" {
                "git".into()
            } else {
                "file".into()
            }
        }
        other => {
            return Err(CatalogError::BadLocation(format!(
                "unknown location type `{other}`; use `file`, `url` or `git`"
            )))
        }
    };
    if location.kind == "git" {
        location.target = blob_url_to_git(&target, &mut location.branch);
        let source = GitSource::from_target(&location.target, location.branch.as_deref());
        source.validate().map_err(|e| CatalogError::BadLocation(e.to_string()))?;
        if source.path.as_deref().is_some_and(|p| p.split('/').any(|part| part == "..")) {
            return Err(CatalogError::BadLocation(format!(
                "the path after `#` in `{}` uses `..`; name a folder or file inside the repository",
                source.url
            )));
        }
        return Ok(location);
    }
    let target = target.strip_prefix("file:").unwrap_or(&target);
    let path = Path::new(target);
    let absolute = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir().map_err(|e| CatalogError::BadLocation(e.to_string()))?.join(path)
    };
    location.target = absolute.canonicalize().unwrap_or(absolute).to_string_lossy().to_string();
    Ok(location)
}

fn looks_like_git(target: &str) -> bool {
    let base = target.split('#').next().unwrap_or(target);
    base.ends_with(".git")
        || base.starts_with("git@")
        || base.starts_with("ssh://")
        || base.starts_with("git://")
        || base.starts_with("file://")
        || base.contains("/blob/")
        || base.contains("/tree/")
        || (base.starts_with('/') && Path::new(base).join(".git").exists())
}

/// `https://host/org/repo/blob/main/path/catalog-info.yaml` →
/// `https://host/org/repo.git#path/catalog-info.yaml` on branch `main`.
fn blob_url_to_git(target: &str, branch: &mut Option<String>) -> String {
    for marker in ["/-/blob/", "/blob/", "/-/tree/", "/tree/"] {
        if let Some((repo, rest)) = target.split_once(marker) {
            let (b, path) = rest.split_once('/').unwrap_or((rest, ""));
            if branch.is_none() {
                *branch = Some(b.to_string());
            }
            let repo = if repo.ends_with(".git") { repo.to_string() } else { format!("{repo}.git") };
            return if path.is_empty() { repo } else { format!("{repo}#{path}") };
        }
    }
    target.to_string()
}

struct GitNamer {
    source: GitSource,
    checkout: PathBuf,
    revision: String,
}

impl Namer for GitNamer {
    fn location_of(&self, path: &Path) -> String {
        let relative = path.strip_prefix(&self.checkout).unwrap_or(path).to_string_lossy().to_string();
        self.source.link_to(&relative, &self.revision)
    }
    fn root(&self) -> Option<&Path> {
        Some(&self.checkout)
    }
    /// `https://host/org/repo/blob/<branch>/path` of this very repository
    /// and branch (or revision) is a file of the checkout.
    fn file_of_url(&self, url: &str) -> Option<PathBuf> {
        let mut branch = None;
        let target = blob_url_to_git(url, &mut branch);
        let linked = GitSource::from_target(&target, branch.as_deref());
        let same_repository = git::normalize_repo_url(&linked.url) == git::normalize_repo_url(&self.source.url);
        let same_revision = linked.branch.as_deref().is_some_and(|b| {
            b == self.revision || Some(b) == self.source.branch.as_deref() || self.revision.starts_with(b)
        });
        match (&linked.path, same_repository && same_revision) {
            (Some(path), true) => Some(self.checkout.join(path)),
            _ => None,
        }
    }
}

pub fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A follower applying a backlog of the change log (another replica's
    /// bulk ingest) counts as writing while it does, and only then.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_follower_applying_a_backlog_counts_as_writing() {
        let dir = tempfile::tempdir().unwrap();
        let config = plinth_store::StoreConfig::Sqlite { data_dir: dir.path().to_path_buf() };
        let store = plinth_store::Store::open(&config).await.unwrap();
        let follower = Catalog::open(store.clone(), CatalogConfig::new(dir.path())).await.unwrap();
        let upsert = |i: usize| {
            let name = format!("svc-{i}");
            let body = serde_json::json!({"apiVersion": "backstage.io/v1alpha1", "kind": "Component",
                "metadata": {"name": name, "namespace": "default"},
                "spec": {"type": "service", "lifecycle": "production", "owner": "team-a"}});
            EntityChange::Upsert(plinth_store::EntityUpsert {
                key: format!("component:default/{name}"),
                kind: "Component".into(),
                namespace: "default".into(),
                name,
                body: body.to_string(),
                hash: format!("h{i}"),
                location_id: "loc".into(),
            })
        };
        // Another replica's writes: a few, then a backlog of three batches.
        store.apply(&(0..10).map(upsert).collect::<Vec<_>>()).await.unwrap();
        follower.catch_up().await.unwrap();
        assert!(!follower.is_writing());
        let backlog: Vec<EntityChange> = (10..3 * FOLLOW_BATCH as usize).map(upsert).collect();
        store.apply(&backlog).await.unwrap();
        let mut changes = follower.subscribe();
        let following = tokio::spawn({
            let follower = follower.clone();
            async move { follower.catch_up().await.unwrap() }
        });
        // Announced after each batch is applied, while the follower is
        // still in its loop: the first batch of a backlog.
        changes.recv().await.unwrap();
        assert!(follower.is_writing(), "a backlog is a bulk of changes");
        assert_eq!(following.await.unwrap(), 3 * FOLLOW_BATCH as usize - 10);
        assert!(!follower.is_writing(), "and no longer once applied");
        assert_eq!(follower.read().len(), 3 * FOLLOW_BATCH as u64);
    }

    #[test]
    fn url_placeholders_read_only_the_same_repository_and_branch() {
        let namer = GitNamer {
            source: GitSource::from_target("https://github.com/Org/Repo.git", Some("main")),
            checkout: PathBuf::from("/data/git/abc"),
            revision: "main".into(),
        };
        assert_eq!(
            namer.file_of_url("https://github.com/org/repo/blob/main/docs/openapi.yaml"),
            Some(PathBuf::from("/data/git/abc/docs/openapi.yaml"))
        );
        assert_eq!(namer.file_of_url("https://github.com/org/other/blob/main/openapi.yaml"), None);
        assert_eq!(namer.file_of_url("https://github.com/org/repo/blob/dev/openapi.yaml"), None);
        assert_eq!(namer.file_of_url("https://evil.example.com/org/repo/blob/main/openapi.yaml"), None);
        assert_eq!(FileNamer.file_of_url("https://github.com/org/repo/blob/main/openapi.yaml"), None);
        // A `..` in the URL's path is refused by the reader's root check.
        let checkout = tempfile::tempdir().unwrap();
        let namer = GitNamer { checkout: checkout.path().to_path_buf(), ..namer };
        let escaping = namer.file_of_url("https://github.com/org/repo/blob/main/../../etc/passwd").unwrap();
        let root = plinth_confine::Root::new(checkout.path()).unwrap();
        let error = root.check(&escaping).unwrap_err().to_string();
        assert!(error.contains("uses `..` to leave"), "{error}");
    }

    #[test]
    fn git_locations_are_validated_when_registered() {
        for (target, branch) in [
            ("https://github.com/o/r.git", Some("--upload-pack=touch /tmp/x")),
            ("--upload-pack=touch /tmp/x", None),
            ("ext::sh -c touch% /tmp/x", None),
            ("https://github.com/o/r.git#../../etc", None),
        ] {
            let location = NewLocation { kind: "git".into(), target: target.into(), branch: branch.map(Into::into) };
            assert!(normalize_location(location).is_err(), "{target} {branch:?}");
        }
    }

    #[test]
    fn locations_normalize() {
        let mut branch = None;
        assert_eq!(
            blob_url_to_git("https://github.com/o/r/blob/main/a/catalog-info.yaml", &mut branch),
            "https://github.com/o/r.git#a/catalog-info.yaml"
        );
        assert_eq!(branch.as_deref(), Some("main"));
        let l = normalize_location(NewLocation {
            kind: "url".into(),
            target: "https://github.com/o/r.git".into(),
            branch: None,
        })
        .unwrap();
        assert_eq!(l.kind, "git");
        assert!(normalize_location(NewLocation {
            kind: "url".into(),
            target: "https://example.com/x.yaml".into(),
            branch: None
        })
        .is_err());
        assert!(normalize_location(NewLocation { kind: "bogus".into(), target: "/x".into(), branch: None }).is_err());
        let l = normalize_location(NewLocation { kind: "file".into(), target: "relative/x.yaml".into(), branch: None })
            .unwrap();
        assert!(l.target.starts_with('/'));
    }
}
