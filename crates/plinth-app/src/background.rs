//! Background CPU work that gives way to requests.
//!
//! Heavy background work (the governance evaluation of every entity at
//! start and after a policy reload, re-evaluation after catalogue changes)
//! runs here instead of on the runtime's blocking pool:
//!
//! - on its own threads, lowered to `SCHED_IDLE` (nice 19 where that is
//!   refused), so the kernel runs a request's thread first whenever both
//!   want a core;
//! - in small slices, each a separate job, so a slice never holds the
//!   catalogue's read lock for long;
//! - offering the core to requests between steps ([`give_way`]): a request
//!   woken onto a core that runs background work would otherwise wait for
//!   the next scheduler tick;
//! - with bounded parallelism: every core while no request is in flight,
//!   one slice at a time while requests are (or were in the last 50 ms).
//!
//! Surfaces mark each request with [`Background::foreground`].

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long after the last request the pool still counts as busy.
const QUIET_AFTER: Duration = Duration::from_millis(50);

pub struct Background {
    pool: rayon::ThreadPool,
    cores: usize,
    in_flight: AtomicUsize,
    /// Milliseconds since `started` when the last request ended.
    last_request_ms: AtomicU64,
    started: Instant,
    /// Slices run, and slices run while requests were in flight.
    pub slices: AtomicU64,
    pub slices_while_busy: AtomicU64,
}

impl std::fmt::Debug for Background {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Background")
            .field("cores", &self.cores)
            .field("in_flight", &self.in_flight.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// Counts one request in flight until dropped.
#[derive(Debug)]
pub struct ForegroundGuard(Arc<Background>);

impl Drop for ForegroundGuard {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
        let now = self.0.started.elapsed().as_millis() as u64;
        self.0.last_request_ms.store(now, Ordering::Relaxed);
    }
}

impl Background {
    /// A pool with one low-priority thread per core.
    pub fn new() -> Result<Arc<Background>, rayon::ThreadPoolBuildError> {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(cores)
            .thread_name(|i| format!("plinth-background-{i}"))
            .start_handler(|_| lower_priority())
            .build()?;
        Ok(Arc::new(Background {
            pool,
            cores,
            in_flight: AtomicUsize::new(0),
            last_request_ms: AtomicU64::new(0),
            started: Instant::now(),
            slices: AtomicU64::new(0),
            slices_while_busy: AtomicU64::new(0),
        }))
    }

    /// Marks a request in flight until the guard drops.
    pub fn foreground(self: &Arc<Self>) -> ForegroundGuard {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        ForegroundGuard(Arc::clone(self))
    }

    /// Whether requests are in flight or ended moments ago.
    pub fn busy(&self) -> bool {
        if self.in_flight.load(Ordering::Relaxed) > 0 {
            return true;
        }
        let last = self.last_request_ms.load(Ordering::Relaxed);
        last > 0 && self.started.elapsed().as_millis() as u64 <= last + QUIET_AFTER.as_millis() as u64
    }

    /// Slices that may run at once now.
    pub fn parallelism(&self) -> usize {
        if self.busy() {
            1
        } else {
            self.cores
        }
    }

    /// Runs `work` over `items` in slices of `slice`, on the pool, as many
    /// slices at once as [`Background::parallelism`] allows when each is
    /// started, and gathers the results (in no particular order).
    pub async fn map_slices<I, T, F>(self: &Arc<Self>, items: Vec<I>, slice: usize, work: F) -> Vec<T>
    where
        I: Send + Sync + 'static,
        T: Send + 'static,
        F: Fn(&[I]) -> Vec<T> + Send + Sync + 'static,
    {
        let items = Arc::new(items);
        let work = Arc::new(work);
        let slice = slice.max(1);
        let mut starts = (0..items.len()).step_by(slice);
        let mut running = futures::stream::FuturesUnordered::new();
        let mut out = Vec::with_capacity(items.len());
        loop {
            while running.len() < self.parallelism() {
                let Some(start) = starts.next() else { break };
                let (sender, receiver) = tokio::sync::oneshot::channel();
                let (items, work, pool) = (Arc::clone(&items), Arc::clone(&work), Arc::clone(self));
                self.pool.spawn(move || {
                    pool.slices.fetch_add(1, Ordering::Relaxed);
                    if pool.busy() {
                        pool.slices_while_busy.fetch_add(1, Ordering::Relaxed);
                    }
                    let end = (start + slice).min(items.len());
                    let _ = sender.send(work(&items[start..end]));
                });
                running.push(receiver);
            }
            match futures::StreamExt::next(&mut running).await {
                Some(Ok(results)) => out.extend(results),
                // The slice panicked: its entities keep their old results.
                Some(Err(_)) => {}
                None => break,
            }
        }
        out
    }

    /// Runs one job on the pool and waits for it.
    pub async fn run<T, F>(&self, work: F) -> Option<T>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let (sender, receiver) = tokio::sync::oneshot::channel();
        self.pool.spawn(move || {
            let _ = sender.send(work());
        });
        receiver.await.ok()
    }
}

/// Hands the core to any request thread waiting for it, at once; returns
/// at once when none is. Background work calls it between steps of a few
/// hundred microseconds.
///
/// `SCHED_IDLE` alone does not do this. Measured with `perf sched` on the
/// reference machine's kernel (6.18, preemption model `none`, 250 Hz):
/// a request's thread woken onto the core that ran a background slice
/// waited there until the next tick, up to 4 ms, even with the other core
/// idle (35 of 6,611 wake-ups of the server's workers in 8 s of the 100k
/// bench waited over 1 ms). The kernel marks the background thread for
/// rescheduling but switches only when that thread next enters the kernel;
/// a `sched_yield` is such an entry, and costs about a microsecond.
pub fn give_way() {
    std::thread::yield_now();
}

/// Lowers the calling thread to `SCHED_IDLE`, or to nice 19 where the
/// kernel refuses that.
fn lower_priority() {
    use thread_priority::{ThreadPriority, ThreadPriorityValue};
    #[cfg(target_os = "linux")]
    {
        use thread_priority::unix::{
            set_thread_priority_and_policy, thread_native_id, NormalThreadSchedulePolicy, ThreadSchedulePolicy,
        };
        let idle = ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Idle);
        if set_thread_priority_and_policy(thread_native_id(), ThreadPriority::Min, idle).is_ok() {
            return;
        }
    }
    if let Ok(lowest) = ThreadPriorityValue::try_from(ThreadPriorityValue::MIN) {
        let _ = thread_priority::set_current_thread_priority(ThreadPriority::Crossplatform(lowest));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn slices_cover_every_item_once() {
        let background = Background::new().unwrap();
        let items: Vec<u32> = (0..1000).collect();
        let mut out = background.map_slices(items, 64, |slice: &[u32]| slice.iter().map(|i| i * 2).collect()).await;
        out.sort_unstable();
        assert_eq!(out, (0..1000).map(|i| i * 2).collect::<Vec<_>>());
        assert_eq!(background.slices.load(Ordering::Relaxed), 16);
    }

    #[tokio::test]
    async fn one_slice_at_a_time_while_requests_are_in_flight() {
        let background = Background::new().unwrap();
        assert_eq!(background.parallelism(), background.cores);
        let guard = background.foreground();
        assert!(background.busy());
        assert_eq!(background.parallelism(), 1);
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let (r, m) = (running.clone(), most.clone());
        background
            .map_slices((0..64).collect::<Vec<u32>>(), 4, move |slice: &[u32]| {
                let now = r.fetch_add(1, Ordering::SeqCst) + 1;
                m.fetch_max(now, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(2));
                r.fetch_sub(1, Ordering::SeqCst);
                slice.to_vec()
            })
            .await;
        assert_eq!(most.load(Ordering::SeqCst), 1, "slices overlapped while a request was in flight");
        assert_eq!(background.slices_while_busy.load(Ordering::Relaxed), 16);
        drop(guard);
        assert!(background.busy(), "busy for a moment after the last request");
        std::thread::sleep(QUIET_AFTER + Duration::from_millis(20));
        assert!(!background.busy());
    }
}
