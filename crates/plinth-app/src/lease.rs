//! Leadership: with several replicas on one store, exactly one at a time
//! runs each cluster-wide job (periodic refresh, alert evaluation and
//! webhooks, signals compaction and retention, audit retention, the
//! golden-path sweeper), chosen by a lease in the store
//! (`plinth_store::Lease`).
//!
//! Each process has a random holder id. [`Leadership`] contends for the
//! lease of every job this process runs and renews the ones it holds every
//! third of the lease period, so when a holder dies (`kill -9`) its leases
//! lapse within one period and another replica takes them within the next
//! third: failover in at most 4/3 of a period. The process's own view of a
//! term ends at the time it *sent* the request that began or renewed it
//! plus the period, never later than the store's, so two replicas never
//! both believe they lead the same job.
//!
//! Fencing: a job asks [`LeaderTerm::holds`] before each action, and a
//! write that must not happen after the term ended names the term's
//! [`Fence`], which the store checks in the write's own transaction.
//!
//! On SQLite the store belongs to one process: a lease left by a killed
//! predecessor is taken over at once instead of waiting for it to lapse.

use parking_lot::Mutex;
use plinth_store::{Backend, Fence, Lease, Store};
use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// The lease period unless configured: a dead leader's jobs move to
/// another replica within 4/3 of it.
pub const DEFAULT_LEASE_PERIOD: Duration = Duration::from_secs(10);
/// The shortest lease period accepted (renewals run every third of it).
pub const MIN_LEASE_PERIOD: Duration = Duration::from_millis(300);

/// How leases are held.
#[derive(Debug, Clone)]
pub struct LeaseConfig {
    /// How long a term lasts unless renewed; renewed every third of it.
    pub period: Duration,
}

impl Default for LeaseConfig {
    fn default() -> LeaseConfig {
        LeaseConfig { period: DEFAULT_LEASE_PERIOD }
    }
}

/// A job that runs on one replica of the cluster at a time, under its own
/// lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Job {
    /// The periodic refresh of every location, and resuming refreshes a
    /// crash cut off.
    CatalogRefresh,
    /// Alert rule evaluation and webhook delivery.
    Alerts,
    /// Rollup compaction and signal retention.
    SignalsMaintenance,
    /// Audit-log retention.
    AuditRetention,
    /// Failing golden-path runs whose runner stopped.
    RunSweeper,
    /// Decision-log retention.
    DecisionRetention,
}

impl Job {
    pub const ALL: [Job; 6] = [
        Job::CatalogRefresh,
        Job::Alerts,
        Job::SignalsMaintenance,
        Job::AuditRetention,
        Job::RunSweeper,
        Job::DecisionRetention,
    ];

    /// The lease's name in the store (and the label on `/metrics`).
    pub fn lease_name(self) -> &'static str {
        match self {
            Job::CatalogRefresh => "catalog.refresh",
            Job::Alerts => "signals.alerts",
            Job::SignalsMaintenance => "signals.maintenance",
            Job::AuditRetention => "audit.retention",
            Job::RunSweeper => "golden_paths.sweeper",
            Job::DecisionRetention => "policy.decision_retention",
        }
    }
}

/// A term this process holds.
#[derive(Debug, Clone)]
struct Term {
    fence: Fence,
    /// When this process stops believing it holds the lease.
    until: Instant,
    since: Instant,
}

/// Whether a job's loop goes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Continue,
    /// The service the job works for is gone.
    Stop,
}

/// One term of leadership of a job, handed to the job's work.
#[derive(Debug, Clone)]
pub struct LeaderTerm {
    job: Job,
    fence: Fence,
    /// This is the first run of the job in this term (the lease was just
    /// taken: from a replica that died, or at start).
    pub new_term: bool,
    leadership: Weak<Leadership>,
}

impl LeaderTerm {
    /// Whether this process still holds this term: ask before each action.
    pub fn holds(&self) -> bool {
        self.leadership.upgrade().is_some_and(|l| l.holds(self.job, self.fence.epoch))
    }

    /// The fence of a write that must only happen during this term.
    pub fn fence(&self) -> &Fence {
        &self.fence
    }

    pub fn job(&self) -> Job {
        self.job
    }
}

/// A job's lease as this process sees it, for `/metrics` and status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseStatus {
    pub job: Job,
    pub held: bool,
    /// The epoch of the term held (0 when not held).
    pub epoch: i64,
    /// How long this process has held it.
    pub held_for: Duration,
}

/// This process's part in choosing leaders.
pub struct Leadership {
    store: Store,
    holder: String,
    period: Duration,
    /// Jobs this process runs (and so contends for).
    jobs: Mutex<BTreeSet<Job>>,
    terms: Mutex<BTreeMap<Job, Term>>,
    /// Jobs taken over at start already (SQLite).
    taken_over: Mutex<BTreeSet<Job>>,
    /// Bumped whenever a term begins, to wake the job's loop at once.
    began: watch::Sender<u64>,
    stopped: std::sync::atomic::AtomicBool,
    pub acquisitions: AtomicU64,
    pub losses: AtomicU64,
}

impl std::fmt::Debug for Leadership {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Leadership")
            .field("holder", &self.holder)
            .field("period", &self.period)
            .field("terms", &self.terms.lock().keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// A random holder id for this process: readable (`plinth-<pid>-…`) and
/// unique.
fn holder_id() -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!("plinth-{}-{}", std::process::id(), &id[..12])
}

impl Leadership {
    /// Starts contending: the renewal loop runs every third of the period
    /// while the returned value lives. Jobs join with [`Leadership::spawn_job`].
    pub fn start(store: Store, config: &LeaseConfig) -> Arc<Leadership> {
        let period = config.period.max(MIN_LEASE_PERIOD);
        let (began, _) = watch::channel(0);
        let leadership = Arc::new(Leadership {
            store,
            holder: holder_id(),
            period,
            jobs: Mutex::new(BTreeSet::new()),
            terms: Mutex::new(BTreeMap::new()),
            taken_over: Mutex::new(BTreeSet::new()),
            began,
            stopped: std::sync::atomic::AtomicBool::new(false),
            acquisitions: AtomicU64::new(0),
            losses: AtomicU64::new(0),
        });
        tracing::info!(holder = %leadership.holder, period_ms = period.as_millis() as u64, "contending for cluster-wide jobs");
        let weak = Arc::downgrade(&leadership);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(period / 3).await;
                let Some(leadership) = weak.upgrade() else { return };
                if leadership.stopped.load(Ordering::Acquire) {
                    return;
                }
                let jobs: Vec<Job> = leadership.jobs.lock().iter().copied().collect();
                for job in jobs {
                    leadership.contend(job).await;
                }
            }
        });
        leadership
    }

    /// This process's holder id (the `holder` of the leases it holds).
    pub fn holder(&self) -> &str {
        &self.holder
    }

    pub fn period(&self) -> Duration {
        self.period
    }

    /// Whether this process leads `job` now.
    pub fn is_leader(&self, job: Job) -> bool {
        self.terms.lock().get(&job).is_some_and(|t| t.until > Instant::now())
    }

    fn holds(&self, job: Job, epoch: i64) -> bool {
        self.terms.lock().get(&job).is_some_and(|t| t.fence.epoch == epoch && t.until > Instant::now())
    }

    /// The current term's fence, when this process leads `job`.
    pub fn fence(&self, job: Job) -> Option<Fence> {
        self.terms.lock().get(&job).filter(|t| t.until > Instant::now()).map(|t| t.fence.clone())
    }

    /// The current term of `job`, when this process leads it.
    pub fn term(self: &Arc<Self>, job: Job) -> Option<LeaderTerm> {
        self.fence(job).map(|fence| LeaderTerm { job, fence, new_term: false, leadership: Arc::downgrade(self) })
    }

    /// Every job this process runs, with whether it leads it.
    pub fn status(&self) -> Vec<LeaseStatus> {
        let now = Instant::now();
        let jobs: Vec<Job> = self.jobs.lock().iter().copied().collect();
        let terms = self.terms.lock();
        jobs.into_iter()
            .map(|job| match terms.get(&job).filter(|t| t.until > now) {
                Some(term) => {
                    LeaseStatus { job, held: true, epoch: term.fence.epoch, held_for: now.duration_since(term.since) }
                }
                None => LeaseStatus { job, held: false, epoch: 0, held_for: Duration::ZERO },
            })
            .collect()
    }

    /// One round for one job: renews the term held, or tries to take the
    /// lease.
    async fn contend(&self, job: Job) {
        if self.stopped.load(Ordering::Acquire) {
            return;
        }
        let name = job.lease_name();
        let current = self.terms.lock().get(&job).cloned();
        let sent = Instant::now();
        if let Some(term) = current {
            match self.store.renew_lease(&term.fence, self.period).await {
                Ok(Some(lease)) => {
                    self.record(job, &lease, sent, false);
                    return;
                }
                Ok(None) => {
                    self.terms.lock().remove(&job);
                    self.losses.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(
                        lease = name,
                        epoch = term.fence.epoch,
                        "lost the lease; another replica may run the job now"
                    );
                }
                Err(error) => {
                    // The term stands until its deadline; the next round retries.
                    tracing::warn!(lease = name, %error, "cannot renew the lease");
                    return;
                }
            }
        }
        let take_over = self.store.backend() == Backend::Sqlite && self.taken_over.lock().insert(job);
        let sent = Instant::now();
        let acquired = if take_over {
            self.store.take_over_lease(name, &self.holder, self.period).await.map(Some)
        } else {
            self.store.try_acquire_lease(name, &self.holder, self.period).await
        };
        match acquired {
            Ok(Some(lease)) => self.record(job, &lease, sent, true),
            Ok(None) => {}
            Err(error) => {
                if take_over {
                    self.taken_over.lock().remove(&job);
                }
                tracing::warn!(lease = name, %error, "cannot take the lease");
            }
        }
    }

    fn record(&self, job: Job, lease: &Lease, sent: Instant, acquired: bool) {
        if self.stopped.load(Ordering::Acquire) {
            return;
        }
        let until = sent + self.period;
        let mut terms = self.terms.lock();
        let new_term = terms.get(&job).is_none_or(|t| t.fence.epoch != lease.epoch);
        let since = terms.get(&job).filter(|_| !new_term).map_or(sent, |t| t.since);
        terms.insert(job, Term { fence: lease.fence(), until, since });
        drop(terms);
        if acquired && new_term {
            self.acquisitions.fetch_add(1, Ordering::Relaxed);
            tracing::info!(lease = job.lease_name(), epoch = lease.epoch, holder = %self.holder, "leading");
            self.began.send_modify(|n| *n += 1);
        }
    }

    /// Runs `work` for `job` on this replica whenever it leads the job: at
    /// once when a term begins (`new_term`), then every `every` while the
    /// term lasts. Ends when `work` answers [`Flow::Stop`] or this
    /// `Leadership` is dropped.
    pub fn spawn_job<F, Fut>(self: &Arc<Self>, job: Job, every: Duration, mut work: F)
    where
        F: FnMut(LeaderTerm) -> Fut + Send + 'static,
        Fut: Future<Output = Flow> + Send + 'static,
    {
        self.jobs.lock().insert(job);
        let weak = Arc::downgrade(self);
        let mut began = self.began.subscribe();
        let every = every.max(Duration::from_millis(10));
        tokio::spawn(async move {
            // Contend at once rather than after a renewal period.
            match weak.upgrade() {
                Some(leadership) => leadership.contend(job).await,
                None => return,
            }
            let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut last_epoch = None;
            loop {
                let Some(leadership) = weak.upgrade() else { return };
                let term = leadership.fence(job);
                drop(leadership);
                let new_term = term.as_ref().is_some_and(|fence| last_epoch != Some(fence.epoch));
                if !new_term {
                    tokio::select! {
                        _ = tick.tick() => {}
                        changed = began.changed() => {
                            if changed.is_err() {
                                return;
                            }
                            continue;
                        }
                    }
                }
                let Some(leadership) = weak.upgrade() else { return };
                let Some(fence) = leadership.fence(job) else { continue };
                let new_term = last_epoch != Some(fence.epoch);
                last_epoch = Some(fence.epoch);
                let term = LeaderTerm { job, fence, new_term, leadership: Arc::downgrade(&leadership) };
                drop(leadership);
                if work(term).await == Flow::Stop {
                    return;
                }
            }
        });
    }

    /// Ends every term this process holds, in the store too, so another
    /// replica takes over at once (graceful shutdown).
    pub async fn release_all(&self) {
        self.stopped.store(true, Ordering::Release);
        let held: Vec<Job> = std::mem::take(&mut *self.terms.lock()).into_keys().collect();
        for job in held {
            match self.store.release_lease(job.lease_name(), &self.holder).await {
                Ok(_) => tracing::info!(lease = job.lease_name(), "lease released"),
                Err(error) => tracing::warn!(lease = job.lease_name(), %error, "cannot release the lease; it lapses"),
            }
        }
    }
}
