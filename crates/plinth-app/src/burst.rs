//! Bursts of catalogue changes. An ingest or a big refresh announces its
//! changes chunk by chunk; the views derived from the whole catalogue
//! (governance, signals attribution) gather a burst and rebuild once
//! rather than once per chunk, so a 100k-entity ingest costs them a few
//! passes, not dozens of O(n) passes each holding the projection's lock.

use parking_lot::Mutex;
use plinth_catalog::RecentChange;
use std::sync::{Arc, Weak};
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::broadcast::Receiver;
use tokio::sync::Notify;
use tokio::time::Instant;

/// A burst ends after this long without a change...
pub(crate) const QUIET: Duration = Duration::from_millis(500);
/// ...or this long after it began, so a long ingest still shows progress.
pub(crate) const LONGEST: Duration = Duration::from_secs(10);

/// The changes of one burst.
#[derive(Debug, Default)]
pub(crate) struct Burst {
    pub(crate) changes: Vec<RecentChange>,
    /// Changes were missed (the receiver fell behind): which entities they
    /// touched is unknown, so a view must rebuild everything.
    pub(crate) lagged: bool,
}

/// Follows the catalogue's changes in bursts. A task drains the broadcast
/// receiver as changes arrive, also while the view is busy with the
/// previous burst, so a view that takes seconds to evaluate does not fall
/// behind the channel and pay for a full rebuild.
pub(crate) struct Bursts {
    shared: Arc<Shared>,
}

#[derive(Default)]
struct Shared {
    pending: Mutex<Pending>,
    arrived: Notify,
}

#[derive(Default)]
struct Pending {
    burst: Burst,
    /// When the pending burst's first and last changes arrived.
    first: Option<Instant>,
    last: Option<Instant>,
    closed: bool,
}

impl Bursts {
    pub(crate) fn new(mut changes: Receiver<RecentChange>) -> Bursts {
        let shared = Arc::new(Shared::default());
        let weak: Weak<Shared> = Arc::downgrade(&shared);
        tokio::spawn(async move {
            loop {
                let received = changes.recv().await;
                let Some(shared) = weak.upgrade() else { return };
                let closed = {
                    let mut pending = shared.pending.lock();
                    match received {
                        Ok(change) => pending.burst.changes.push(change),
                        Err(RecvError::Lagged(_)) => pending.burst.lagged = true,
                        Err(RecvError::Closed) => pending.closed = true,
                    }
                    let now = Instant::now();
                    pending.first.get_or_insert(now);
                    pending.last = Some(now);
                    pending.closed
                };
                shared.arrived.notify_one();
                if closed {
                    return;
                }
            }
        });
        Bursts { shared }
    }

    /// Waits for a change, then gathers until [`QUIET`] passes without one
    /// or [`LONGEST`] since the first. `None` once the catalogue is gone and
    /// everything announced was handed out.
    pub(crate) async fn next(&mut self) -> Option<Burst> {
        loop {
            let ends = {
                let mut pending = self.shared.pending.lock();
                match (pending.first, pending.last) {
                    (Some(first), Some(last)) => {
                        let ends = (last + QUIET).min(first + LONGEST);
                        if pending.closed || Instant::now() >= ends {
                            let burst = std::mem::take(&mut pending.burst);
                            pending.first = None;
                            pending.last = None;
                            if burst.changes.is_empty() && !burst.lagged {
                                return None;
                            }
                            return Some(burst);
                        }
                        Some(ends)
                    }
                    _ if pending.closed => return None,
                    _ => None,
                }
            };
            match ends {
                Some(ends) => tokio::time::sleep_until(ends).await,
                None => self.shared.arrived.notified().await,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use plinth_store::ChangeOp;
    use tokio::sync::broadcast;

    fn change(seq: i64) -> RecentChange {
        RecentChange {
            seq,
            entity_ref: format!("component:default/c{seq}"),
            op: ChangeOp::Upsert,
            at: time::OffsetDateTime::UNIX_EPOCH,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_burst_ends_after_a_quiet_gap() {
        let (tx, rx) = broadcast::channel(64);
        let sender = tokio::spawn(async move {
            for seq in 0..5 {
                tx.send(change(seq)).unwrap();
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
            tx.send(change(99)).unwrap();
            tx
        });
        let mut bursts = Bursts::new(rx);
        let first = bursts.next().await.unwrap();
        assert_eq!(first.changes.iter().map(|c| c.seq).collect::<Vec<_>>(), vec![0, 1, 2, 3, 4]);
        assert!(!first.lagged);
        let second = bursts.next().await.unwrap();
        assert_eq!(second.changes.iter().map(|c| c.seq).collect::<Vec<_>>(), vec![99]);
        drop(sender.await.unwrap());
        assert!(bursts.next().await.is_none(), "closed channel ends the stream");
    }

    #[tokio::test(start_paused = true)]
    async fn a_steady_stream_is_cut_at_the_longest_burst() {
        let (tx, rx) = broadcast::channel(1024);
        let _sender = tokio::spawn(async move {
            for seq in 0.. {
                if tx.send(change(seq)).is_err() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        let mut bursts = Bursts::new(rx);
        let began = tokio::time::Instant::now();
        let burst = bursts.next().await.unwrap();
        let took = began.elapsed();
        assert!(took >= LONGEST && took < LONGEST + QUIET, "cut after {took:?}");
        assert!((95..=105).contains(&burst.changes.len()), "{} changes", burst.changes.len());
    }

    #[tokio::test(start_paused = true)]
    async fn a_receiver_that_fell_behind_says_so() {
        let (tx, rx) = broadcast::channel(4);
        for seq in 0..10 {
            tx.send(change(seq)).unwrap();
        }
        let mut bursts = Bursts::new(rx);
        let burst = bursts.next().await.unwrap();
        assert!(burst.lagged, "missed changes must be reported");
        assert_eq!(burst.changes.iter().map(|c| c.seq).collect::<Vec<_>>(), vec![6, 7, 8, 9]);
        drop(tx);
        assert!(bursts.next().await.is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn a_busy_view_does_not_fall_behind_the_channel() {
        // Chunks of 5,000 on a channel that holds 8,000: a view that took
        // the channel itself and spent 3 s on each burst would lag; the
        // drainer takes every change as it comes.
        let (tx, rx) = broadcast::channel(8_000);
        let mut bursts = Bursts::new(rx);
        let _sender = tokio::spawn(async move {
            for chunk in 0..8 {
                for i in 0..5_000 {
                    tx.send(change(chunk * 5_000 + i)).unwrap();
                }
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
            tokio::time::sleep(Duration::from_secs(60)).await;
        });
        let mut seen = 0;
        while seen < 40_000 {
            let burst = bursts.next().await.unwrap();
            assert!(!burst.lagged, "the drainer fell behind after {seen} changes");
            seen += burst.changes.len();
            tokio::time::sleep(Duration::from_secs(3)).await;
        }
        assert_eq!(seen, 40_000);
    }
}
