//! Group commit of deposits: one task registers the deposits that arrive
//! together in one transaction, and each is answered only once its group
//! is committed.
//!
//! Why: a deposit must be durable before its `202` (the file, the store
//! folder it was renamed into, the spool's row), and on SQLite every
//! commit is a WAL fsync queued behind every other spool write; an fsync
//! per file costs a disk flush per file too. Here each request lands its
//! file without fsync ([`landing::land_unsynced`], in parallel on the
//! blocking pool) and queues its registration; the committer takes
//! everything queued, makes the group's files and folders durable at once
//! ([`landing::sync_store`]: one `syncfs(2)` and one flush, whatever the
//! group's size), registers the group in one transaction
//! (`Spool::register_api_flows`: one commit, repeats within the group
//! answered with the first) and answers each. While a group commits, the
//! next one queues and is synced: the busier the API, the larger the
//! groups, with no timer to wait for.
//!
//! Nothing is acknowledged before the durable commit: a request is
//! answered from the commit's outcome only. When a group's transaction
//! fails, its deposits are registered again one by one, so one deposit
//! the spool refuses does not fail the others.

use std::fs::File;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Utc};
use quai_connectors::landing;
use quai_spool::api::{ApiDeposit, ApiRegistration};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info, warn};

use crate::app::App;

/// Most deposits in one group (more wait for the next one).
const MAX_GROUP: usize = 512;
/// Deposits queued for the committer at most (the listener's connection
/// cap bounds them first).
const QUEUE: usize = 1024;

/// A deposit whose file is landed (not yet durable), to register.
pub struct Landed {
    pub deposit: ApiDeposit,
    /// The store its file was landed in (made durable by the group).
    pub store: PathBuf,
}

/// How a deposit was registered, and when its group committed.
#[derive(Debug, Clone, Copy)]
pub struct Registered {
    pub registration: ApiRegistration,
    pub at: DateTime<Utc>,
}

struct Queued {
    landed: Landed,
    answer: oneshot::Sender<Result<Registered, String>>,
}

/// The handle requests queue their deposits on (cloned into each).
#[derive(Clone)]
pub struct GroupCommit {
    queue: mpsc::Sender<Queued>,
}

impl GroupCommit {
    /// Start the committer task; it ends once every handle is dropped and
    /// the queue is drained.
    pub fn start(app: Arc<App>) -> GroupCommit {
        let (queue, rx) = mpsc::channel(QUEUE);
        tokio::spawn(committer(app, rx));
        GroupCommit { queue }
    }

    /// Register a landed deposit with the next group; returns once that
    /// group is committed (or failed).
    pub async fn register(&self, landed: Landed) -> Result<Registered, String> {
        let (answer, answered) = oneshot::channel();
        self.queue
            .send(Queued { landed, answer })
            .await
            .map_err(|_| "the deposit committer has stopped".to_owned())?;
        answered
            .await
            .map_err(|_| "the deposit committer stopped before the commit".to_owned())?
    }
}

/// Two stages, so the disk and the spool work at the same time: while
/// one group is being committed to the spool, the next one gathers and
/// its store folders are synced. Groups reach the spool in order, so a
/// repeat of a deposit of the group before finds it committed.
async fn committer(app: Arc<App>, mut rx: mpsc::Receiver<Queued>) {
    let (synced_tx, synced_rx) = mpsc::channel::<Vec<Queued>>(1);
    let registrar = tokio::spawn(registrar(app, synced_rx));
    let mut group = Vec::with_capacity(MAX_GROUP);
    let mut store: Option<(PathBuf, Arc<File>)> = None;
    while rx.recv_many(&mut group, MAX_GROUP).await > 0 {
        let group = std::mem::replace(&mut group, Vec::with_capacity(MAX_GROUP));
        if let Some(synced) = sync_group(&mut store, group).await {
            if synced_tx.send(synced).await.is_err() {
                break;
            }
        }
    }
    drop(synced_tx);
    let _ = registrar.await;
}

async fn registrar(app: Arc<App>, mut rx: mpsc::Receiver<Vec<Queued>>) {
    while let Some(group) = rx.recv().await {
        register(&app, group).await;
    }
}

/// Make a group's files durable (one [`landing::sync_store`] for each
/// store its deposits were landed in: one, unless the configuration
/// changed meanwhile); the group when they are, else its deposits are
/// answered with the error. The store stays open between groups (`open`)
/// so that a write-back error since the first group is reported.
async fn sync_group(
    open: &mut Option<(PathBuf, Arc<File>)>,
    group: Vec<Queued>,
) -> Option<Vec<Queued>> {
    let started = Instant::now();
    let mut stores: Vec<PathBuf> = group.iter().map(|q| q.landed.store.clone()).collect();
    stores.sort();
    stores.dedup();
    let mut failed = None;
    for path in stores {
        let handle = match open {
            Some((p, f)) if *p == path => Ok(f.clone()),
            _ => File::open(&path).map(Arc::new),
        };
        let outcome = match handle {
            Ok(file) => {
                *open = Some((path.clone(), file.clone()));
                tokio::task::spawn_blocking(move || landing::sync_store(&file))
                    .await
                    .map_err(|e| e.to_string())
                    .and_then(|r| r.map_err(|e| e.to_string()))
            }
            Err(e) => Err(e.to_string()),
        };
        if let Err(e) = outcome {
            failed = Some(format!("sync of the store {}: {e}", path.display()));
        }
    }
    if let Some(e) = failed {
        warn!(error = %e, deposits = group.len(), "partner API: the store could not be synced; deposits refused");
        for q in group {
            let _ = q.answer.send(Err(e.clone()));
        }
        return None;
    }
    debug!(
        deposits = group.len(),
        elapsed_us = started.elapsed().as_micros() as u64,
        "deposit group: store synced"
    );
    Some(group)
}

/// Register one synced group in one transaction and answer each deposit.
async fn register(app: &App, group: Vec<Queued>) {
    let started = Instant::now();
    let deposits: Vec<ApiDeposit> = group.iter().map(|q| q.landed.deposit.clone()).collect();
    match app.spool.register_api_flows(&deposits).await {
        Ok(done) => {
            debug!(
                deposits = group.len(),
                elapsed_us = started.elapsed().as_micros() as u64,
                "deposit group: committed"
            );
            let new = done
                .registrations
                .iter()
                .filter(|r| matches!(r, ApiRegistration::New(_)))
                .count();
            for (q, r) in group.into_iter().zip(done.registrations) {
                announce(&q.landed.deposit, r);
                let _ = q.answer.send(Ok(Registered {
                    registration: r,
                    at: done.at,
                }));
            }
            if new > 0 {
                app.work.notify_waiters();
                app.work.notify_one();
            }
        }
        Err(e) if group.len() > 1 => {
            warn!(error = %e, deposits = group.len(), "partner API: a group of deposits was not committed; registering them one by one");
            for q in group {
                let one = std::slice::from_ref(&q.landed.deposit);
                let outcome = app.spool.register_api_flows(one).await;
                let answer = match outcome {
                    Ok(done) => {
                        let r = done.registrations[0];
                        announce(&q.landed.deposit, r);
                        if matches!(r, ApiRegistration::New(_)) {
                            app.work.notify_one();
                        }
                        Ok(Registered {
                            registration: r,
                            at: done.at,
                        })
                    }
                    Err(e) => Err(e.to_string()),
                };
                let _ = q.answer.send(answer);
            }
        }
        Err(e) => {
            let _ = group
                .into_iter()
                .next()
                .map(|q| q.answer.send(Err(e.to_string())));
        }
    }
}

/// The log line and counters of one registered deposit.
fn announce(d: &ApiDeposit, r: ApiRegistration) {
    let partner = &d.flow.partner;
    match r {
        ApiRegistration::New(id) => {
            crate::metrics::flow_received(partner, "api");
            crate::metrics::bytes_in(partner, d.flow.size as u64);
            info!(partner = %partner, flow_id = id, stage = "received", file = %d.meta.name,
                size = d.flow.size, "flow registered (partner API)");
        }
        ApiRegistration::Existing(id) => {
            info!(partner = %partner, flow_id = id, file = %d.meta.name,
                "deposit repeats a flow already received: answered with it");
        }
    }
}
