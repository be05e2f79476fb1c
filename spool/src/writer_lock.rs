//! The SQLite backend's in-process write lock, with a lane for writers
//! someone waits on.
//!
//! One process writes its SQLite spool one transaction at a time (see
//! `dispatch_write!`). Most writers are background work (a worker
//! claiming, storing, finishing a flow; the deliverer marking a row) that
//! a few milliseconds change nothing for; a group of partner API deposits
//! is not: 32 clients wait for its commit. Queued in one FIFO behind
//! every worker's fsynced commit, its latency is the sum of theirs. So
//! ordinary writers first queue among themselves (at most one of them
//! waits for the database at a time) and step aside while a writer of
//! the fast lane ([`WriterLock::lock_first`]) waits: such a writer waits
//! for the transaction under way and at most one more, never for the
//! queue. Ordinary writers are not starved: once the fast writer holds
//! the lock, the next ordinary one queues behind it, before the next
//! fast one.

use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::{Mutex, MutexGuard, Notify};

#[derive(Default)]
pub(crate) struct WriterLock {
    /// The database's one writer.
    lane: Mutex<()>,
    /// Where ordinary writers queue before `lane`.
    ordinary: Mutex<()>,
    /// Fast-lane writers waiting for `lane`.
    first: AtomicUsize,
    /// Woken when no fast-lane writer waits any more.
    first_gone: Notify,
}

/// Held for one write transaction.
pub(crate) struct WriterGuard<'a> {
    // Dropped in this order: the lane first, so the next ordinary writer
    // finds it free or a fast-lane writer waiting for it.
    _lane: MutexGuard<'a, ()>,
    _ordinary: Option<MutexGuard<'a, ()>>,
}

impl WriterLock {
    /// The lock for an ordinary writer.
    pub(crate) async fn lock(&self) -> WriterGuard<'_> {
        let ordinary = self.ordinary.lock().await;
        loop {
            // Created before the check: a `notify_waiters` in between is
            // not missed.
            let gone = self.first_gone.notified();
            if self.first.load(Ordering::SeqCst) == 0 {
                break;
            }
            gone.await;
        }
        WriterGuard {
            _lane: self.lane.lock().await,
            _ordinary: Some(ordinary),
        }
    }

    /// The lock for a writer someone waits on: ahead of every ordinary
    /// writer not yet waiting for the database.
    pub(crate) async fn lock_first(&self) -> WriterGuard<'_> {
        self.first.fetch_add(1, Ordering::SeqCst);
        let lane = self.lane.lock().await;
        if self.first.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.first_gone.notify_waiters();
        }
        WriterGuard {
            _lane: lane,
            _ordinary: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;

    /// Ordinary writers queued before a fast one do not go before it
    /// (but the one holding the lock and at most one more do), and every
    /// writer gets the lock.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_fast_lane_passes_the_queue_and_starves_no_one() {
        let lock = Arc::new(WriterLock::default());
        let order = Arc::new(std::sync::Mutex::new(Vec::new()));
        let held = lock.lock().await;
        let mut tasks = Vec::new();
        for i in 0..5 {
            let (lock, order) = (lock.clone(), order.clone());
            tasks.push(tokio::spawn(async move {
                let _g = lock.lock().await;
                order.lock().unwrap().push(format!("o{i}"));
            }));
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let (l, o) = (lock.clone(), order.clone());
        let fast = tokio::spawn(async move {
            let _g = l.lock_first().await;
            o.lock().unwrap().push("fast".to_owned());
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        drop(held);
        fast.await.unwrap();
        for t in tasks {
            t.await.unwrap();
        }
        let order = order.lock().unwrap().clone();
        assert_eq!(order.len(), 6, "{order:?}");
        let at = order.iter().position(|w| w == "fast").unwrap();
        assert!(at <= 1, "the fast writer waited for the queue: {order:?}");
    }
}
