//! The signals service: the OTLP receiver's write path (bounded in-flight
//! memory, group commit, durable before 200), attribution kept current with
//! the catalogue, background compaction and retention, and alert rules.
//!
//! Decoding, normalisation, pricing and rollups are `plinth-telemetry`;
//! this module owns the I/O around them.

use arc_swap::ArcSwap;
use plinth_catalog::{Catalog, EntityFilter};
use plinth_confine::OutboundPolicy;
use plinth_store::{SignalBatchOutcome, Store};
use plinth_telemetry::attribution::{Attribution, TeamInfo};
use plinth_telemetry::ingest::{PreparedBatch, RecentTraces};
use plinth_telemetry::metrics::{metric_rows, CumulativeState, MetricRows};
use plinth_telemetry::prices::PriceTable;
use serde_json::Value;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, Semaphore};

use crate::lease::{self, Flow, LeaderTerm, Leadership};

/// Settings of the signals service.
#[derive(Debug, Clone)]
pub struct SignalsConfig {
    /// Largest OTLP request body, before and after gzip (413 above).
    pub max_body_bytes: usize,
    /// Memory the receiver may hold for requests in flight (decoded
    /// payloads included); beyond it, 429 with `Retry-After`.
    pub max_inflight_bytes: usize,
    /// Raw spans of GenAI traces are kept this long (trace views).
    pub span_retention: Duration,
    /// Rollups are kept this long.
    pub rollup_retention: Duration,
    /// Key-only span rows (de-duplication of retried exports) are kept this long.
    pub dedupe_window: Duration,
    pub prices: Arc<PriceTable>,
    /// Store writers draining the ingest queue (each commits batches).
    pub writers: usize,
    /// How often alert rules are evaluated.
    pub alert_interval: Duration,
    /// Where alert webhooks may be posted.
    pub outbound: Arc<OutboundPolicy>,
}

impl Default for SignalsConfig {
    fn default() -> Self {
        SignalsConfig {
            max_body_bytes: 16 * 1024 * 1024,
            max_inflight_bytes: 256 * 1024 * 1024,
            span_retention: Duration::from_secs(7 * 86_400),
            rollup_retention: Duration::from_secs(400 * 86_400),
            dedupe_window: Duration::from_secs(86_400),
            prices: Arc::new(shipped_prices()),
            writers: 1,
            alert_interval: Duration::from_secs(15),
            outbound: Arc::new(OutboundPolicy::default_for(false)),
        }
    }
}

/// The price table compiled into the binary.
pub fn shipped_prices() -> PriceTable {
    PriceTable::parse("prices.yaml", plinth_telemetry::prices::SHIPPED).unwrap_or_default()
}

/// Counters for `/metrics`.
#[derive(Debug, Default)]
pub struct SignalsMetrics {
    pub spans_accepted: AtomicU64,
    pub spans_rejected: AtomicU64,
    pub spans_duplicate: AtomicU64,
    pub requests_throttled: AtomicU64,
    pub requests_failed: AtomicU64,
    pub metric_points: AtomicU64,
    pub batches_committed: AtomicU64,
    pub commit_micros: AtomicU64,
}

/// A prepared export waiting for its commit.
struct Job {
    batch: PreparedBatch,
    reply: oneshot::Sender<Result<SignalBatchOutcome, String>>,
}

/// Most spans committed in one transaction (several exports together).
const MAX_GROUP_SPANS: usize = 20_000;
/// Exports waiting for a writer; beyond it the receiver answers 429.
const QUEUE_DEPTH: usize = 256;

pub struct SignalsService {
    store: Store,
    catalog: Arc<Catalog>,
    pub config: SignalsConfig,
    attribution: ArcSwap<Attribution>,
    recent: RecentTraces,
    /// One permit per KiB of request memory in flight.
    inflight: Arc<Semaphore>,
    queue: mpsc::Sender<Job>,
    pub metrics: SignalsMetrics,
    pub alerts: super::alerts::AlertEngine,
    cumulative: CumulativeState,
    leadership: Arc<Leadership>,
}

impl std::fmt::Debug for SignalsService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignalsService").field("config", &self.config).finish_non_exhaustive()
    }
}

impl SignalsService {
    /// Starts the service and its background tasks (writers, attribution
    /// refresh, the alert rules' follower; compaction, retention and alert
    /// evaluation on the replica that leads each).
    pub async fn start(
        config: SignalsConfig,
        store: Store,
        catalog: Arc<Catalog>,
        leadership: Arc<Leadership>,
    ) -> Arc<SignalsService> {
        let (sender, receiver) = mpsc::channel(QUEUE_DEPTH);
        let permits = (config.max_inflight_bytes / 1024).clamp(1, Semaphore::MAX_PERMITS);
        let service = Arc::new(SignalsService {
            attribution: ArcSwap::from_pointee(build_attribution(&catalog)),
            recent: RecentTraces::new(200_000),
            inflight: Arc::new(Semaphore::new(permits)),
            queue: sender,
            metrics: SignalsMetrics::default(),
            alerts: super::alerts::AlertEngine::new(config.outbound.clone()),
            cumulative: CumulativeState::new(100_000, now_s().max(0) as u64 * 1_000_000_000),
            store,
            catalog,
            config,
            leadership,
        });
        let receiver = Arc::new(tokio::sync::Mutex::new(receiver));
        for _ in 0..service.config.writers.max(1) {
            tokio::spawn(writer(Arc::downgrade(&service), receiver.clone()));
        }
        tokio::spawn(follow_catalogue(Arc::downgrade(&service)));
        spawn_maintenance(&service);
        if let Err(error) = service.alerts.sync(&service).await {
            tracing::error!(%error, "cannot load alert rules");
        }
        crate::follow::follow(
            &service,
            "alert rules",
            |service| async move { Ok(service.alerts.sync(&service).await?) },
        );
        super::alerts::spawn_evaluation(&service);
        service
    }

    /// This replica's part in choosing leaders.
    pub fn leadership(&self) -> &Arc<Leadership> {
        &self.leadership
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn catalog(&self) -> &Arc<Catalog> {
        &self.catalog
    }

    pub fn attribution(&self) -> arc_swap::Guard<Arc<Attribution>> {
        self.attribution.load()
    }

    pub fn recent(&self) -> &RecentTraces {
        &self.recent
    }

    /// Reserves request memory, or `None` when the receiver is full.
    pub fn reserve(&self, bytes: usize) -> Option<tokio::sync::OwnedSemaphorePermit> {
        // A request larger than the whole budget still gets in when nothing
        // else is in flight (the body limit bounds it), or it could never.
        let total = (self.config.max_inflight_bytes / 1024).clamp(1, Semaphore::MAX_PERMITS);
        let kib = (bytes / 1024 + 1).min(total).min(u32::MAX as usize) as u32;
        self.inflight.clone().try_acquire_many_owned(kib).ok()
    }

    /// Queues a prepared export for the next group commit and waits until it
    /// is durable. `Err(None)` means the queue is full (answer 429).
    pub async fn commit(&self, batch: PreparedBatch) -> Result<SignalBatchOutcome, Option<String>> {
        let (reply, answer) = oneshot::channel();
        self.queue.try_send(Job { batch, reply }).map_err(|_| None)?;
        match answer.await {
            Ok(Ok(outcome)) => Ok(outcome),
            Ok(Err(error)) => Err(Some(error)),
            Err(_) => Err(Some("the ingest writer stopped".to_string())),
        }
    }

    /// Rollup rows from an OTLP metrics export.
    pub fn metric_points(
        &self,
        request: &opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest,
        attribution: &Attribution,
    ) -> MetricRows {
        metric_rows(request, attribution, &self.config.prices, &self.cumulative)
    }

    /// Stores metric-derived rollups (durable when this returns).
    pub async fn store_metric_points(&self, rows: MetricRows) -> Result<(), plinth_store::StoreError> {
        self.metrics.metric_points.fetch_add(rows.accepted.max(0) as u64, Ordering::Relaxed);
        if rows.minutes.is_empty() {
            return Ok(());
        }
        let MetricRows { minutes, hours, .. } = rows;
        self.store.ingest_signals(&[], move |_| (minutes, hours)).await.map(|_| ())
    }

    /// Evaluates every alert rule now (tests, `POST /api/signals/alerts/evaluate`).
    pub async fn alerts_evaluate_now(self: &Arc<Self>) {
        super::alerts::evaluate_once(self).await;
    }

    /// Rebuilds attribution from the catalogue now.
    pub fn refresh_attribution(&self) {
        self.attribution.store(Arc::new(build_attribution(&self.catalog)));
    }
}

/// Drains the queue: gathers waiting exports into one transaction (group
/// commit), then answers each.
async fn writer(service: std::sync::Weak<SignalsService>, receiver: Arc<tokio::sync::Mutex<mpsc::Receiver<Job>>>) {
    loop {
        let mut jobs = Vec::new();
        {
            let mut receiver = receiver.lock().await;
            let Some(first) = receiver.recv().await else { return };
            let mut spans = first.batch.accepted();
            jobs.push(first);
            while spans < MAX_GROUP_SPANS {
                match receiver.try_recv() {
                    Ok(job) => {
                        spans += job.batch.accepted();
                        jobs.push(job);
                    }
                    Err(_) => break,
                }
            }
        }
        let Some(service) = service.upgrade() else { return };
        let sizes: Vec<usize> = jobs.iter().map(|j| j.batch.accepted()).collect();
        let mut replies = Vec::with_capacity(jobs.len());
        // The first export is the base the others are appended to: a group
        // of one (the common case) moves none of its rows.
        let mut merged: Option<PreparedBatch> = None;
        for job in jobs {
            match &mut merged {
                Some(merged) => merged.absorb(job.batch),
                None => merged = Some(job.batch),
            }
            replies.push(job.reply);
        }
        let merged = merged.unwrap_or_default();
        let started = std::time::Instant::now();
        let mut mask: Vec<bool> = Vec::new();
        let result = service
            .store
            .ingest_signals(&merged.rows, |inserted| {
                mask = inserted.to_vec();
                merged.rollups(inserted)
            })
            .await;
        let result = match result {
            Ok(outcome) => match service.store.insert_scores(&merged.scores).await {
                Ok(()) => Ok(outcome),
                Err(error) => Err(error.to_string()),
            },
            Err(error) => Err(error.to_string()),
        };
        match &result {
            Ok(outcome) => {
                service.metrics.batches_committed.fetch_add(1, Ordering::Relaxed);
                service.metrics.commit_micros.fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
                service.metrics.spans_accepted.fetch_add(outcome.inserted as u64, Ordering::Relaxed);
                service.metrics.spans_duplicate.fetch_add(outcome.duplicates as u64, Ordering::Relaxed);
            }
            Err(error) => tracing::error!(%error, spans = merged.rows.len(), "signal batch not stored"),
        }
        let mut offset = 0;
        for (reply, size) in replies.into_iter().zip(sizes) {
            let answer = match &result {
                Ok(_) => {
                    let part = mask.get(offset..offset + size).unwrap_or(&[]);
                    let inserted = part.iter().filter(|new| **new).count();
                    Ok(SignalBatchOutcome { inserted, duplicates: size - inserted })
                }
                Err(error) => Err(error.clone()),
            };
            offset += size;
            let _ = reply.send(answer);
        }
    }
}

/// Longest a rebuild of attribution waits for a bulk ingest to end.
const ATTRIBUTION_DEFERRAL: Duration = Duration::from_secs(120);

/// Keeps attribution current: rebuilt once per burst of catalogue changes
/// (see [`crate::burst`]). A rebuild reads every Component, Model and
/// Group, so while a bulk of changes is being applied (a refresh of this
/// process, or a backlog of another replica's changes its follower
/// applies: [`Catalog::is_writing`]), it waits for the end (at most
/// [`ATTRIBUTION_DEFERRAL`]): a bulk ingest then costs two rebuilds, not
/// one per burst. A million-entity ingest cuts a
/// burst every 10 s for two minutes, and its rebuilds, each longer than
/// the last, took a quarter of the CPU by the end of it.
async fn follow_catalogue(service: std::sync::Weak<SignalsService>) {
    let Some(mut bursts) = service.upgrade().map(|s| crate::burst::Bursts::new(s.catalog.subscribe())) else { return };
    while bursts.next().await.is_some() {
        let Some(catalog) = service.upgrade().map(|s| s.catalog.clone()) else { return };
        while_busy(|| catalog.is_writing(), ATTRIBUTION_DEFERRAL).await;
        let Some(service) = service.upgrade() else { return };
        if let Ok(attribution) = tokio::task::spawn_blocking(move || build_attribution(&catalog)).await {
            service.attribution.store(Arc::new(attribution));
        }
    }
}

/// Waits while `busy` says so, looking every 200 ms, for at most `longest`.
async fn while_busy(busy: impl Fn() -> bool, longest: Duration) {
    let started = tokio::time::Instant::now();
    while busy() && started.elapsed() < longest {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Compaction every 15 seconds (queries read fewer rows once partials
/// are merged); retention every hour, and when a replica takes the job
/// over. Both on the replica that leads [`lease::Job::SignalsMaintenance`].
fn spawn_maintenance(service: &Arc<SignalsService>) {
    let weak = Arc::downgrade(service);
    // Retention runs every 240th tick (hourly), and first in each term.
    let mut ticks = 0u64;
    service.leadership.spawn_job(lease::Job::SignalsMaintenance, Duration::from_secs(15), move |term| {
        if term.new_term {
            ticks = 0;
        }
        let retention = ticks.is_multiple_of(240);
        ticks += 1;
        let weak = weak.clone();
        async move {
            let Some(service) = weak.upgrade() else { return Flow::Stop };
            maintain(&service, &term, retention).await;
            Flow::Continue
        }
    });
}

/// One round of compaction (and retention): each step only while `term`
/// lasts. Every tick compacts the buckets that received rows since the last
/// one; the hourly round (`retention`, also the first of each term) also
/// sweeps every table, for rows whose dirty marker was lost to a crash or
/// written before markers existed.
async fn maintain(service: &SignalsService, term: &LeaderTerm, retention: bool) {
    let now = now_s();
    for resolution in [plinth_store::Resolution::Minute, plinth_store::Resolution::Hour, plinth_store::Resolution::Day]
    {
        if !term.holds() {
            return;
        }
        let merge = plinth_telemetry::rollup::merge_rows;
        let result = match retention {
            true => service.store.compact_rollups(resolution, now, COMPACTION_GROUPS, merge).await,
            false => service.store.compact_dirty_rollups(resolution, COMPACTION_GROUPS, merge).await,
        };
        match result {
            Ok(groups) if groups > 0 => tracing::debug!(groups, ?resolution, "rollups compacted"),
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "rollup compaction failed; retrying at the next tick"),
        }
    }
    if !retention || !term.holds() {
        return;
    }
    let config = &service.config;
    let result = service
        .store
        .purge_signals(
            now - config.dedupe_window.as_secs() as i64,
            now - config.span_retention.as_secs() as i64,
            now - config.rollup_retention.as_secs() as i64,
        )
        .await;
    match result {
        Ok(rows) if rows > 0 => tracing::info!(rows, "signal retention applied"),
        Ok(_) => {}
        Err(error) => tracing::warn!(%error, "signal retention failed; retrying in an hour"),
    }
}

/// Rollup groups one compaction step merges at most (per resolution and
/// tick): bounds the transaction, and so the time ingest waits for the
/// SQLite write lock.
const COMPACTION_GROUPS: usize = 20_000;

pub fn now_s() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// Attribution from the catalogue: Components (by name or their
/// `opentelemetry.io/service-name` annotation) with their owners, Models,
/// Prompts, Agents, and Groups with cost centres (`plinth.dev/cost-center`,
/// inherited from the parent group).
pub fn build_attribution(catalog: &Catalog) -> Attribution {
    // Only the records are taken under the projection's read lock (an Arc
    // clone each); their bodies are parsed after it is released, so a
    // rebuild never holds up an ingest's write.
    let records = |state: &plinth_catalog::CatalogState, kind: &str| -> Vec<Arc<plinth_catalog::EntityRecord>> {
        let nodes = state.filters().matching(&EntityFilter::equals("kind", kind), state.live());
        nodes.iter().filter_map(|node| state.entity(node).cloned()).collect()
    };
    let (components, models, prompts, agents, group_records) = {
        let state = catalog.read();
        (
            records(&state, "component"),
            records(&state, "model"),
            records(&state, "prompt"),
            records(&state, "agent"),
            records(&state, "group"),
        )
    };
    let mut attribution = Attribution::default();
    let parsed = |records: Vec<Arc<plinth_catalog::EntityRecord>>| {
        records.into_iter().filter_map(|record| {
            let value = serde_json::from_str::<Value>(&record.body).ok()?;
            Some((record, value))
        })
    };
    let owner_ref = |owner: Option<&str>| -> String {
        owner
            .and_then(|o| plinth_model::parse_ref_lenient(o, Some("group")).ok())
            .map(|r| r.to_string())
            .unwrap_or_default()
    };
    for (record, value) in parsed(components) {
        let service_name = value["metadata"]["annotations"]["opentelemetry.io/service-name"].as_str();
        attribution.add_component(
            &record.summary.name,
            service_name,
            &record.entity_ref.to_string(),
            &owner_ref(record.summary.owner.as_deref()),
        );
    }
    for (record, value) in parsed(models) {
        attribution.add_model(
            &record.entity_ref.to_string(),
            &record.summary.name,
            value["spec"]["provider"].as_str(),
            value["metadata"]["annotations"]["plinth.dev/model-id"].as_str(),
        );
    }
    for record in prompts {
        attribution.add_prompt(&record.entity_ref.to_string(), &record.summary.name);
    }
    for record in agents {
        attribution.add_agent(&record.entity_ref.to_string(), &record.summary.name);
    }
    // Groups: cost centres, inherited down the parent chain.
    let mut groups: Vec<(String, String, Option<String>, Option<String>)> = Vec::new();
    for (record, value) in parsed(group_records) {
        let title = record.summary.title.clone().unwrap_or_else(|| record.summary.name.clone());
        let cost_center = value["metadata"]["annotations"]["plinth.dev/cost-center"].as_str().map(str::to_string);
        let parent = value["spec"]["parent"].as_str().map(|p| owner_ref(Some(p)));
        groups.push((record.entity_ref.to_string(), title, cost_center, parent));
    }
    let direct: std::collections::HashMap<&str, (&Option<String>, &Option<String>)> =
        groups.iter().map(|(r, _, cc, parent)| (r.as_str(), (cc, parent))).collect();
    for (group_ref, title, cost_center, _) in &groups {
        let mut resolved = cost_center.clone();
        let mut at = group_ref.as_str();
        for _ in 0..16 {
            if resolved.is_some() {
                break;
            }
            let Some((_, Some(parent))) = direct.get(at) else { break };
            resolved = direct.get(parent.as_str()).and_then(|(cc, _)| (*cc).clone());
            at = parent;
        }
        attribution.add_team(group_ref, TeamInfo { title: title.clone(), cost_center: resolved });
    }
    attribution.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    /// A rebuild waits for the refresh that is writing, and no longer
    /// than its bound when the writing does not end.
    #[tokio::test(start_paused = true)]
    async fn waits_while_busy_within_its_bound() {
        let checks = AtomicUsize::new(0);
        let started = tokio::time::Instant::now();
        while_busy(|| checks.fetch_add(1, Ordering::SeqCst) < 3, Duration::from_secs(120)).await;
        assert_eq!(started.elapsed(), Duration::from_millis(600), "three busy looks, then done");
        let started = tokio::time::Instant::now();
        while_busy(|| true, Duration::from_secs(120)).await;
        assert_eq!(started.elapsed(), Duration::from_secs(120));
        let started = tokio::time::Instant::now();
        while_busy(|| false, Duration::from_secs(120)).await;
        assert_eq!(started.elapsed(), Duration::ZERO);
    }
}
