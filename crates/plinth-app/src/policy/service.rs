//! The policy service: the loaded policy set (reloaded when its files
//! change), decisions with catalogue context, the decision log, waivers, and
//! the live governance view (catalog-point results and scorecards of every
//! entity, kept current from the catalogue's change stream).

use arc_swap::ArcSwap;
use plinth_catalog::git::GitSource;
use plinth_catalog::Catalog;
use plinth_policy::scorecard::{self, ScorecardDef};
use plinth_policy::{
    attach_context, Context, Decision, Enforcement, EngineOptions, EvalRequest, Input, Point, PolicyBundle,
    PolicyEngine, Waiver,
};
use plinth_store::{DecisionRecord, Store, WaiverRecord};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use time::OffsetDateTime;
use tokio::sync::mpsc;

use super::context;
use super::governance::{self as view, GovernanceView};
use crate::background::Background;
use crate::lease::{Flow, Job, Leadership};

/// Default decision-log retention: the EU AI Act asks deployers of high-risk
/// systems to keep logs at least six months.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(180 * 24 * 3600);

#[derive(Debug, Clone)]
pub struct PolicyConfig {
    /// Directories, files or git URLs (`https://…`, `git@…`, `file://…`,
    /// `….git`; `URL#subdir` reads a folder of the repository).
    pub sources: Vec<String>,
    pub time_limit: Duration,
    /// Enforcement overrides by policy id, `package.rule` or package.
    pub enforcement: HashMap<String, Enforcement>,
    /// JSON pointers erased from logged events (`/input/spec/token`).
    pub masks: Vec<String>,
    pub retention: Duration,
    /// How often policy files are checked for changes (git sources are
    /// fetched every `git_interval`).
    pub reload_interval: Duration,
    pub git_interval: Duration,
    /// Where git sources are checked out.
    pub data_dir: PathBuf,
}

impl PolicyConfig {
    pub fn new(sources: Vec<String>, data_dir: PathBuf) -> Self {
        PolicyConfig {
            sources,
            time_limit: plinth_policy::engine::DEFAULT_TIME_LIMIT,
            enforcement: HashMap::new(),
            masks: Vec::new(),
            retention: DEFAULT_RETENTION,
            reload_interval: Duration::from_secs(2),
            git_interval: Duration::from_secs(60),
            data_dir,
        }
    }
}

/// A compiled policy set and what was derived from it.
pub struct Compiled {
    pub engine: PolicyEngine,
    pub scorecards: Vec<ScorecardDef>,
    pub loaded_at: OffsetDateTime,
    pub digests: Digests,
}

/// Digests of what a policy revision is made of, so a reload can tell
/// which packages changed (see [`view::reload_scope`]).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Digests {
    /// Package → digest of its decision files (tests excluded).
    pub packages: std::collections::BTreeMap<String, String>,
    /// The merged data documents.
    pub data: String,
    /// Files without a package, and load problems.
    pub other: String,
}

impl Digests {
    fn of(bundle: &PolicyBundle) -> Digests {
        let mut hashers: std::collections::BTreeMap<String, Sha256> = std::collections::BTreeMap::new();
        let mut other = Sha256::new();
        let mut files: Vec<_> = bundle.decision_files().collect();
        files.sort_by(|a, b| a.display.cmp(&b.display));
        for file in files {
            let hasher = match &file.scan.package {
                Some(package) => hashers.entry(package.clone()).or_default(),
                None => &mut other,
            };
            hasher.update(file.display.as_bytes());
            hasher.update([u8::from(file.rego_v0)]);
            hasher.update(file.text.as_bytes());
        }
        for problem in &bundle.problems {
            other.update(problem.message.as_bytes());
        }
        let digest = |hasher: Sha256| hex::encode(&hasher.finalize()[..16]);
        Digests {
            packages: hashers.into_iter().map(|(name, hasher)| (name, digest(hasher))).collect(),
            data: hex::encode(&Sha256::digest(bundle.data.to_string().as_bytes())[..16]),
            other: digest(other),
        }
    }
}

/// Context a caller gives with a decision request.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RequestContext {
    /// `production`, `staging`, …
    pub environment: Option<String>,
    /// The user asking (recorded in the decision log).
    pub user: Option<String>,
    /// Workload profile: training, inference, agent, rag (default: all).
    pub profile: Option<String>,
    /// Entity refs the decision involves, besides those the input names.
    #[serde(default)]
    pub entities: Vec<String>,
    /// Entities about to be registered by the same request (a golden
    /// path's rendered descriptors), seen by policies as catalogued.
    #[serde(skip)]
    pub pending: Vec<Value>,
}

pub struct PolicyService {
    pub(crate) config: PolicyConfig,
    pub(crate) store: Store,
    pub(crate) catalog: Arc<Catalog>,
    roots: Vec<Root>,
    pub(crate) compiled: ArcSwap<Compiled>,
    pub(crate) waivers: ArcSwap<Vec<Waiver>>,
    log: LogQueue,
    pub(crate) view: parking_lot::RwLock<GovernanceView>,
    pub(crate) instance_id: String,
    /// Where the governance view is evaluated: low-priority threads that
    /// give way to requests.
    pub(crate) background: Arc<Background>,
    /// Full results of recently viewed entities (see `governance::detail`).
    pub(crate) details: parking_lot::Mutex<HashMap<String, (view::DetailStamp, view::EntityGovernance)>>,
    /// Context entities already converted for the engine (see
    /// `context::ContextCache`).
    pub(crate) context_cache: context::ContextCache,
}

impl std::fmt::Debug for PolicyService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PolicyService").field("sources", &self.config.sources).finish()
    }
}

/// A policy source on disk (a git source's checkout once synced).
#[derive(Debug, Clone)]
struct Root {
    path: PathBuf,
    git: Option<GitSource>,
    checkout: Option<PathBuf>,
}

fn is_git_url(source: &str) -> bool {
    let base = source.split('#').next().unwrap_or(source);
    ["https://", "http://", "git@", "ssh://", "git://", "file://"].iter().any(|p| base.starts_with(p))
        || base.ends_with(".git")
}

impl PolicyService {
    /// Loads the policies (fetching git sources), the waivers, and starts the
    /// decision-log writer, retention, reload and the governance view.
    pub async fn start(
        config: PolicyConfig,
        store: Store,
        catalog: Arc<Catalog>,
        background: Arc<Background>,
        leadership: Arc<Leadership>,
    ) -> Arc<PolicyService> {
        let mut roots = Vec::new();
        for source in &config.sources {
            if is_git_url(source) {
                let git = GitSource::from_target(source, None);
                let checkout = config.data_dir.join("policies").join(git.checkout_name());
                if let Err(error) = plinth_catalog::git::sync(&git, &checkout).await {
                    tracing::error!(source, %error, "cannot fetch policy repository; points depending on it fail closed");
                }
                // The folder after `#` stays inside the checkout; a path
                // that leaves it loads nothing, so its points fail closed.
                let path = git.subdir(&checkout).unwrap_or_else(|error| {
                    tracing::error!(source, %error, "policy source path refused; points depending on it fail closed");
                    checkout.join(".plinth-refused-path")
                });
                roots.push(Root { path, git: Some(git), checkout: Some(checkout) });
            } else {
                roots.push(Root { path: PathBuf::from(source), git: None, checkout: None });
            }
        }
        let compiled = compile(&roots, &config);
        report_problems(&compiled.engine);
        let (log, receiver) = LogQueue::new(LOG_QUEUE, LOG_QUEUE_BYTES);
        let service = Arc::new(PolicyService {
            compiled: ArcSwap::from_pointee(compiled),
            waivers: ArcSwap::from_pointee(Vec::new()),
            view: parking_lot::RwLock::new(GovernanceView::default()),
            instance_id: uuid::Uuid::new_v4().to_string(),
            background,
            details: parking_lot::Mutex::new(HashMap::new()),
            context_cache: context::ContextCache::default(),
            log,
            roots,
            store,
            catalog,
            config,
        });
        if let Err(error) = service.reload_waivers().await {
            tracing::error!(%error, "cannot read waivers");
        }
        tokio::spawn(write_log(service.store.clone(), receiver));
        service.spawn_maintenance(&leadership);
        view::spawn(Arc::clone(&service));
        service
    }

    pub fn compiled(&self) -> arc_swap::Guard<Arc<Compiled>> {
        self.compiled.load()
    }

    pub fn catalog(&self) -> &Arc<Catalog> {
        &self.catalog
    }

    pub fn view(&self) -> parking_lot::RwLockReadGuard<'_, GovernanceView> {
        self.view.read()
    }

    pub fn waivers(&self) -> Arc<Vec<Waiver>> {
        self.waivers.load_full()
    }

    pub fn config(&self) -> &PolicyConfig {
        &self.config
    }

    /// Makes a decision and records it in the decision log.
    pub async fn decide(
        &self,
        point: Point,
        input: Value,
        context: &RequestContext,
        requested_by: &str,
    ) -> (String, Decision) {
        let (decision, full_input, entities) = self.evaluate(point, input, context);
        let decision_id = uuid::Uuid::now_v7().to_string();
        let record =
            self.record(&decision_id, &decision, full_input, entities, requested_by, OffsetDateTime::now_utc());
        // Awaiting a full queue is back-pressure, not loss: every decision is recorded.
        if self.log.record(record).await.is_err() {
            tracing::error!(decision_id, "decision log writer stopped; decision not recorded");
        }
        (decision_id, decision)
    }

    /// Evaluates without logging: returns the decision, the input as the
    /// policies saw it and the entities involved.
    pub fn evaluate(&self, point: Point, input: Value, context: &RequestContext) -> (Decision, Value, Vec<String>) {
        let compiled = self.compiled.load();
        let refs = context::named_refs(&input, &context.entities);
        // The context twice: as JSON for the decision log, and converted for
        // the engine, where the teams, systems and models that recur come
        // from the context cache instead of being converted again (converting
        // the whole input was a quarter of a decision's cost).
        let (mut entities, mut converted_entities) =
            context::resolve_both(&self.catalog.read(), &refs, None, &self.context_cache);
        for entity in &context.pending {
            if let Some(entity_ref) = plinth_model::entity_ref_of(entity) {
                if let serde_json::map::Entry::Vacant(slot) = entities.entry(entity_ref.key()) {
                    converted_entities.insert(slot.key(), Input::from_json(entity));
                    slot.insert(entity.clone());
                }
            }
        }
        let now = OffsetDateTime::now_utc();
        let plinth = Context {
            point,
            environment: context.environment.as_deref(),
            user: context.user.as_deref(),
            profile: context.profile.as_deref(),
            now,
            catalog: true,
        };
        let mut converted = Input::from_json(&input);
        converted.insert("plinth", plinth.to_input(converted_entities, None));
        let full_input = attach_context(input, plinth.to_json(Value::Object(entities), None));
        debug_assert_eq!(converted, Input::from_json(&full_input), "the engine's input is the logged input");
        let waivers = self.waivers.load();
        let subjects = context::subject_refs(&full_input, &context.entities);
        let request = EvalRequest {
            point,
            input: &converted,
            profile: context.profile.as_deref(),
            waivers: &waivers,
            entities: &subjects,
            now,
        };
        let decision = compiled.engine.evaluate(&request);
        (decision, full_input, refs)
    }

    /// The OPA-shaped decision-log event for a decision.
    pub(crate) fn record(
        &self,
        decision_id: &str,
        decision: &Decision,
        input: Value,
        entities: Vec<String>,
        requested_by: &str,
        at: OffsetDateTime,
    ) -> DecisionRecord {
        let mut masks = context::default_masks(&input);
        masks.extend(self.config.masks.iter().cloned());
        let mut event = json!({
            "decision_id": decision_id,
            "path": format!("plinth/{}", decision.point),
            "input": input,
            "result": decision,
            "timestamp": at.format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
            "requested_by": requested_by,
            "labels": {"id": self.instance_id, "version": env!("CARGO_PKG_VERSION"), "point": decision.point.as_str()},
            "bundles": {"policies": {"revision": decision.revision}},
            "metrics": {"timer_rego_query_eval_ns": decision.duration_us * 1000},
        });
        let erased = context::erase(&mut event, &masks);
        if !erased.is_empty() {
            event["erased"] = json!(erased);
        }
        DecisionRecord {
            decision_id: decision_id.to_string(),
            ts_ms: (at.unix_timestamp_nanos() / 1_000_000) as i64,
            point: decision.point.as_str().to_string(),
            result: decision.result.as_str().to_string(),
            entities,
            event: event.to_string(),
        }
    }

    /// Records a decision made without a request (catalogue changes).
    pub(crate) async fn log_decision(&self, record: DecisionRecord) {
        let _ = self.log.record(record).await;
    }

    /// Waits until every decision made so far is in the store.
    pub async fn flush_log(&self) {
        let (done, wait) = tokio::sync::oneshot::channel();
        if self.log.sender.send(LogMessage::Flush(done)).await.is_ok() {
            let _ = wait.await;
        }
    }

    /// Reloads the waivers from the store (every replica follows them, see
    /// `super::waivers`). Returns the keys of the entities whose waivers
    /// changed, or `None` when a concurrent reload swapped in its copy
    /// first, repeatedly (that copy stands; the next poll looks again). A
    /// copy read before another reload's is never swapped in over it.
    pub async fn reload_waivers(&self) -> Result<Option<Vec<String>>, plinth_store::StoreError> {
        for _ in 0..4 {
            let before = self.waivers.load_full();
            let bodies = self.store.list_waivers().await?;
            let waivers: Vec<Waiver> = bodies.iter().filter_map(|b| serde_json::from_str(b).ok()).collect();
            let changed = super::waivers::changed_entities(&before, &waivers);
            let previous = self.waivers.compare_and_swap(&before, Arc::new(waivers));
            if Arc::ptr_eq(&previous, &before) {
                return Ok(Some(changed));
            }
        }
        Ok(None)
    }

    /// Stores a waiver; it applies here at once and on every other replica
    /// within a poll of the store.
    pub async fn add_waiver(self: &Arc<Self>, waiver: &Waiver) -> Result<(), plinth_store::StoreError> {
        let record = WaiverRecord {
            id: waiver.id.clone(),
            entity_ref: waiver.entity.to_lowercase(),
            expires_ms: (waiver.expires_at.unix_timestamp_nanos() / 1_000_000) as i64,
            created_ms: (waiver.created_at.unix_timestamp_nanos() / 1_000_000) as i64,
            body: serde_json::to_string(waiver).unwrap_or_default(),
        };
        self.store.put_waiver(&record).await?;
        self.waivers_changed().await
    }

    /// Deletes a waiver; `false` when there was none.
    pub async fn remove_waiver(self: &Arc<Self>, id: &str) -> Result<bool, plinth_store::StoreError> {
        let removed = self.store.delete_waiver(id).await?;
        self.waivers_changed().await?;
        Ok(removed)
    }

    /// Reloads the waivers after a change made here and has the governance
    /// view evaluate the entities concerned again.
    async fn waivers_changed(self: &Arc<Self>) -> Result<(), plinth_store::StoreError> {
        if let Some(changed) = self.reload_waivers().await? {
            super::waivers::reevaluate(self, changed).await;
        }
        Ok(())
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Checks the policy files for changes (fetching git sources now and
    /// then) and swaps in a new compiled set when they changed. Returns
    /// which entities the governance view must evaluate again (`None`: the
    /// policies did not change).
    pub async fn reload_if_changed(&self, fetch_git: bool) -> Option<view::Scope> {
        if fetch_git {
            for root in &self.roots {
                if let (Some(git), Some(checkout)) = (&root.git, &root.checkout) {
                    if let Err(error) = plinth_catalog::git::sync(git, checkout).await {
                        tracing::warn!(url = %git.url, %error, "policy repository fetch failed; keeping the loaded policies");
                    }
                }
            }
        }
        let paths: Vec<PathBuf> = self.roots.iter().map(|r| r.path.clone()).collect();
        let bundle = tokio::task::spawn_blocking(move || PolicyBundle::load(&paths)).await.unwrap_or_default();
        if bundle.revision == self.compiled.load().engine.revision() {
            return None;
        }
        let compiled = compiled_from(&bundle, &self.config);
        report_problems(&compiled.engine);
        let scope = view::reload_scope(&self.compiled.load(), &compiled);
        tracing::info!(
            revision = compiled.engine.revision(),
            packages = compiled.engine.packages().len(),
            scope = ?scope,
            "policies reloaded"
        );
        self.compiled.store(Arc::new(compiled));
        Some(scope)
    }

    fn spawn_maintenance(self: &Arc<Self>, leadership: &Arc<Leadership>) {
        let weak = Arc::downgrade(self);
        let reload_every = self.config.reload_interval;
        let git_every = self.config.git_interval;
        tokio::spawn(async move {
            let mut since_fetch = Duration::ZERO;
            loop {
                tokio::time::sleep(reload_every).await;
                let Some(service) = weak.upgrade() else { break };
                since_fetch += reload_every;
                let fetch = since_fetch >= git_every;
                if fetch {
                    since_fetch = Duration::ZERO;
                }
                if let Some(scope) = service.reload_if_changed(fetch).await {
                    view::rebuild(&service, scope).await;
                }
            }
        });
        // Retention runs on the replica leading its job, hourly.
        let weak = Arc::downgrade(self);
        leadership.spawn_job(Job::DecisionRetention, Duration::from_secs(3600), move |term| {
            let weak = weak.clone();
            async move {
                let Some(service) = weak.upgrade() else { return Flow::Stop };
                if !term.holds() {
                    return Flow::Continue;
                }
                let cutoff = OffsetDateTime::now_utc() - service.config.retention;
                match service.store.purge_decisions((cutoff.unix_timestamp_nanos() / 1_000_000) as i64).await {
                    Ok(0) => {}
                    Ok(purged) => tracing::info!(purged, "decision log entries past retention deleted"),
                    Err(error) => tracing::warn!(%error, "decision log retention failed"),
                }
                Flow::Continue
            }
        });
    }
}

const LOG_QUEUE: usize = 20_000;
/// Most bytes of decision events waiting to be written. A record of the
/// catalog point is several kB and an admission input can be a large
/// manifest, so the count alone would let a slow or failing store hold
/// gigabytes; past this, `decide` waits (back-pressure, never loss).
const LOG_QUEUE_BYTES: usize = 32 * 1024 * 1024;
const LOG_BATCH: usize = 500;
/// How long the writer waits for more decisions once several are queued.
const LOG_LINGER: Duration = Duration::from_millis(2);

enum LogMessage {
    /// A record with its share of the byte budget, given back once written.
    Record(DecisionRecord, tokio::sync::OwnedSemaphorePermit),
    /// Answered once everything queued before it is written.
    Flush(tokio::sync::oneshot::Sender<()>),
}

/// The decision-log queue, bounded by records and by bytes: a record
/// waits for its event's size (in KiB, at most the whole budget) before
/// it is queued, and the writer gives the bytes back once it is stored.
struct LogQueue {
    sender: mpsc::Sender<LogMessage>,
    kib: Arc<tokio::sync::Semaphore>,
    budget_kib: u32,
}

impl LogQueue {
    fn new(records: usize, bytes: usize) -> (LogQueue, mpsc::Receiver<LogMessage>) {
        let (sender, receiver) = mpsc::channel(records);
        let budget_kib = u32::try_from(bytes / 1024).unwrap_or(u32::MAX).max(1);
        let kib = Arc::new(tokio::sync::Semaphore::new(budget_kib as usize));
        (LogQueue { sender, kib, budget_kib }, receiver)
    }

    /// Queues `record`, waiting while the queue is full. Errs only when
    /// the writer has stopped.
    async fn record(&self, record: DecisionRecord) -> Result<(), ()> {
        let size = record.event.len() + record.entities.iter().map(String::len).sum::<usize>();
        let kib = u32::try_from(size.div_ceil(1024)).unwrap_or(u32::MAX).clamp(1, self.budget_kib);
        let permit = Arc::clone(&self.kib).acquire_many_owned(kib).await.map_err(|_| ())?;
        self.sender.send(LogMessage::Record(record, permit)).await.map_err(|_| ())
    }
}

/// Writes queued decisions in batches. A failed write is retried, so a
/// database hiccup delays the log instead of losing it.
async fn write_log(store: Store, mut receiver: mpsc::Receiver<LogMessage>) {
    let mut messages = Vec::with_capacity(LOG_BATCH);
    let mut batch = Vec::with_capacity(LOG_BATCH);
    let mut permits = Vec::with_capacity(LOG_BATCH);
    while receiver.recv_many(&mut messages, LOG_BATCH).await > 0 {
        // Under load, wait a moment for more decisions so one multi-row
        // write carries many (a flush is answered without the wait).
        let flushing = messages.iter().any(|m| matches!(m, LogMessage::Flush(_)));
        if !flushing && messages.len() > 1 && messages.len() < LOG_BATCH {
            tokio::time::sleep(LOG_LINGER).await;
            while messages.len() < LOG_BATCH {
                match receiver.try_recv() {
                    Ok(message) => messages.push(message),
                    Err(_) => break,
                }
            }
        }
        let mut flushes = Vec::new();
        for message in messages.drain(..) {
            match message {
                LogMessage::Record(record, permit) => {
                    batch.push(record);
                    permits.push(permit);
                }
                LogMessage::Flush(done) => flushes.push(done),
            }
        }
        let mut delay = Duration::from_millis(100);
        while let Err(error) = store.insert_decisions(&batch).await {
            tracing::warn!(%error, pending = batch.len(), "writing the decision log failed; retrying");
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(10));
        }
        batch.clear();
        permits.clear();
        for done in flushes {
            let _ = done.send(());
        }
    }
}

/// Compiles the policies under `dir` (tests of the reload scope).
#[cfg(test)]
pub(crate) fn compile_dir(dir: &std::path::Path) -> Compiled {
    compiled_from(&PolicyBundle::load(&[dir.to_path_buf()]), &PolicyConfig::new(Vec::new(), dir.to_path_buf()))
}

fn compile(roots: &[Root], config: &PolicyConfig) -> Compiled {
    let paths: Vec<PathBuf> = roots.iter().map(|r| r.path.clone()).collect();
    compiled_from(&PolicyBundle::load(&paths), config)
}

fn compiled_from(bundle: &PolicyBundle, config: &PolicyConfig) -> Compiled {
    let engine = PolicyEngine::build(
        bundle,
        EngineOptions { time_limit: config.time_limit, enforcement: config.enforcement.clone(), ..Default::default() },
    );
    let scorecards = scorecard::definitions(&engine);
    Compiled { engine, scorecards, loaded_at: OffsetDateTime::now_utc(), digests: Digests::of(bundle) }
}

fn report_problems(engine: &PolicyEngine) {
    for problem in engine.problems() {
        tracing::error!(%problem, "policy failed to load; the points that depend on it fail closed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(bytes: usize) -> DecisionRecord {
        DecisionRecord {
            decision_id: "d".into(),
            ts_ms: 0,
            point: "admission".into(),
            result: "allow".into(),
            entities: Vec::new(),
            event: "x".repeat(bytes),
        }
    }

    /// The queue holds at most its byte budget: a record that would go
    /// past it waits until the writer has stored earlier ones, and a
    /// record larger than the whole budget still gets through alone.
    #[tokio::test]
    async fn the_decision_log_queue_is_bounded_by_bytes() {
        let (queue, mut receiver) = LogQueue::new(1000, 8 * 1024);
        for _ in 0..4 {
            queue.record(record(2 * 1024)).await.unwrap();
        }
        let blocked = tokio::time::timeout(Duration::from_millis(100), queue.record(record(10))).await;
        assert!(blocked.is_err(), "a ninth KiB was queued past the 8 KiB budget");
        // The writer stores one record: its bytes come back.
        let Some(LogMessage::Record(_, permit)) = receiver.recv().await else { panic!("no record queued") };
        drop(permit);
        tokio::time::timeout(Duration::from_secs(5), queue.record(record(10))).await.unwrap().unwrap();
        // Drain, then a record over the whole budget takes all of it.
        while receiver.try_recv().is_ok() {}
        tokio::time::timeout(Duration::from_secs(5), queue.record(record(64 * 1024))).await.unwrap().unwrap();
        let blocked = tokio::time::timeout(Duration::from_millis(100), queue.record(record(10))).await;
        assert!(blocked.is_err(), "the oversized record should hold the whole budget");
        // With the writer gone, recording fails instead of waiting forever.
        drop(receiver);
        let closed = tokio::time::timeout(Duration::from_secs(5), queue.record(record(10))).await.unwrap();
        assert!(closed.is_err());
    }
}
