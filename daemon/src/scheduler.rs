//! Scheduled cycles (cron): reject digests, reconciliation, purge, SFTP polls.
//!
//! Expressions have seconds (`sec min hour day month weekday`, the `cron`
//! crate) and are read in `[schedule] timezone`, so `0 0 7 * * *` is 07:00 in
//! Paris across daylight-saving changes. Each job is one task:
//! - it sleeps until its next slot, then runs under the spool's job lock
//!   ([`quai_spool::Spool::try_lock_job`]: an advisory lock on PostgreSQL, a
//!   lease row on SQLite), so with several instances on one spool a job runs
//!   on one of them at a time; an instance that finds the lock taken, or the
//!   slot already recorded, skips it;
//! - every run is recorded in the spool's `job_runs` (slot, start, end,
//!   outcome, detail);
//! - **missed runs happen once**: at start, the latest recorded slot is
//!   compared with the latest slot that should have run ([`missed_slot`]);
//!   if it is older, the job runs once for that latest slot — not once per
//!   slot missed during the downtime. A job that never ran does not run at
//!   start; it waits for its first slot.
//!
//! SFTP polls are jobs too (`sftp-poll:<partner>`, `[partner.sftp] poll`,
//! default every two minutes), one task per partner: a broken server only
//! delays its own partner (failures back off exponentially, up to 30 min,
//! logged with the error kind — `host_key` refusals name the fingerprint),
//! and a semaphore shared by all partners bounds concurrent downloads.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use cron::Schedule;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::app::App;
use crate::jobs::{self, RunOutcome};

/// Default SFTP poll schedule: every two minutes.
pub const DEFAULT_SFTP_POLL: &str = "0 */2 * * * *";

/// What a job does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobKind {
    RejectDigest,
    Reconcile,
    Purge,
    SftpPoll { partner: String },
}

/// A scheduled job: a name (as recorded in `job_runs` and locked), a schedule.
#[derive(Debug, Clone)]
pub struct Job {
    pub name: String,
    pub schedule: Schedule,
    pub kind: JobKind,
}

/// The jobs of a configuration (invalid expressions were refused when the
/// configuration was loaded; one that still fails to parse is skipped).
pub fn jobs_of(config: &crate::config::Config) -> Vec<Job> {
    let mut out = Vec::new();
    let mut add = |name: String, expr: &str, kind: JobKind| match Schedule::from_str(expr) {
        Ok(schedule) => out.push(Job {
            name,
            schedule,
            kind,
        }),
        Err(e) => {
            warn!(job = %name, expr, error = %e, "invalid cron expression: job not scheduled")
        }
    };
    if let Some(e) = &config.reject_digest {
        add("reject_digest".into(), e, JobKind::RejectDigest);
    }
    if let Some(e) = &config.reconcile {
        add("reconcile".into(), e, JobKind::Reconcile);
    }
    if let Some(e) = &config.purge {
        add("purge".into(), e, JobKind::Purge);
    }
    for p in &config.partners {
        if let Some(s) = &p.sftp {
            let expr = s.poll.as_deref().unwrap_or(DEFAULT_SFTP_POLL);
            add(
                format!("sftp-poll:{}", p.id),
                expr,
                JobKind::SftpPoll {
                    partner: p.id.clone(),
                },
            );
        }
    }
    out
}

/// The latest slot at or before `now`.
pub fn previous_slot(schedule: &Schedule, tz: Tz, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    // `prev_from` is strict: start one second later to include `now` itself.
    let probe = (now + chrono::Duration::seconds(1)).with_timezone(&tz);
    schedule
        .after(&probe)
        .next_back()
        .map(|d| d.with_timezone(&Utc))
        .filter(|d| *d <= now)
}

/// The first slot strictly after `after`.
pub fn next_slot(schedule: &Schedule, tz: Tz, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
    schedule
        .after(&after.with_timezone(&tz))
        .next()
        .map(|d| d.with_timezone(&Utc))
}

/// The slot to run once at start after downtime: the latest slot due, if the
/// last recorded run is older than it. `None` when nothing was missed, or
/// when the job never ran (it waits for its first slot).
pub fn missed_slot(
    schedule: &Schedule,
    tz: Tz,
    last_run_slot: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let last = last_run_slot?;
    let due = previous_slot(schedule, tz, now)?;
    (last < due).then_some(due)
}

/// Run the scheduled jobs of the configuration until `stop`.
pub async fn run(daemon: Arc<App>, stop: CancellationToken) {
    let jobs = jobs_of(&daemon.config());
    if jobs.is_empty() {
        stop.cancelled().await;
        return;
    }
    let mut tasks = tokio::task::JoinSet::new();
    for job in jobs {
        info!(job = %job.name, "scheduled");
        let d = daemon.clone();
        let s = stop.clone();
        tasks.spawn(async move { job_loop(d, job, s).await });
    }
    while let Some(r) = tasks.join_next().await {
        if let Err(e) = r {
            warn!(error = %e, "a scheduled job task panicked");
        }
    }
}

/// One job's loop: catch up once, then every slot.
async fn job_loop(daemon: Arc<App>, job: Job, stop: CancellationToken) {
    let tz = daemon.config().timezone;
    let mut poll_state = jobs::sftp_poll::PartnerPoller::default();
    // Catch up once after downtime.
    match daemon.spool.last_job_run(&job.name).await {
        Ok(last) => {
            if let Some(slot) =
                missed_slot(&job.schedule, tz, last.map(|r| r.scheduled_for), Utc::now())
            {
                info!(job = %job.name, slot = %slot, "missed run during downtime: running it once now");
                run_slot(&daemon, &job, slot, &mut poll_state).await;
            }
        }
        Err(e) => warn!(job = %job.name, error = %e, "cannot read the last run of the job"),
    }
    let mut after = Utc::now();
    loop {
        let Some(slot) = next_slot(&job.schedule, tz, after) else {
            info!(job = %job.name, "no further slot: job stops");
            break;
        };
        let wait = (slot - Utc::now()).to_std().unwrap_or(Duration::ZERO);
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tokio::time::sleep(wait) => {}
        }
        run_slot(&daemon, &job, slot, &mut poll_state).await;
        // Slots that passed while the job ran are not run again.
        after = slot.max(Utc::now());
    }
}

/// Run one slot of a job under its lock, recording the run. Returns false
/// when it was skipped (lock held elsewhere, slot already run, backoff).
pub async fn run_slot(
    daemon: &Arc<App>,
    job: &Job,
    slot: DateTime<Utc>,
    poll_state: &mut jobs::sftp_poll::PartnerPoller,
) -> bool {
    if let JobKind::SftpPoll { .. } = job.kind {
        if poll_state.backing_off(Utc::now()) {
            debug!(job = %job.name, "backing off after failures: slot skipped");
            return false;
        }
    }
    let lock = match daemon.spool.try_lock_job(&job.name).await {
        Ok(Some(l)) => l,
        Ok(None) => {
            debug!(job = %job.name, "held by another instance: slot skipped");
            return false;
        }
        Err(e) => {
            warn!(job = %job.name, error = %e, "cannot take the job lock: slot skipped");
            return false;
        }
    };
    match daemon.spool.last_job_run(&job.name).await {
        Ok(Some(last)) if last.scheduled_for >= slot => {
            debug!(job = %job.name, "slot already run by another instance");
            drop(lock);
            return false;
        }
        _ => {}
    }
    let run_id = match daemon.spool.start_job_run(&job.name, slot).await {
        Ok(id) => id,
        Err(e) => {
            warn!(job = %job.name, error = %e, "cannot record the run: slot skipped");
            return false;
        }
    };
    let outcome = execute(daemon, job, poll_state).await;
    let (label, detail) = match &outcome {
        RunOutcome::Ok(d) => ("ok", d.as_str()),
        RunOutcome::Failed(d) => ("failed", d.as_str()),
    };
    if let RunOutcome::Failed(d) = &outcome {
        warn!(job = %job.name, error = %d, "scheduled job failed");
    }
    if let Err(e) = daemon
        .spool
        .finish_job_run(run_id, label, Some(detail))
        .await
    {
        warn!(job = %job.name, error = %e, "cannot record the end of the run");
    }
    if let Err(e) = lock.release().await {
        debug!(job = %job.name, error = %e, "job lock release failed (expires on its own)");
    }
    true
}

async fn execute(
    daemon: &Arc<App>,
    job: &Job,
    poll_state: &mut jobs::sftp_poll::PartnerPoller,
) -> RunOutcome {
    match &job.kind {
        JobKind::RejectDigest => match jobs::digest::run(daemon).await {
            Ok(s) if s.failed.is_empty() => RunOutcome::Ok(s.detail()),
            Ok(s) => RunOutcome::Failed(s.detail()),
            Err(e) => RunOutcome::Failed(format!("{e:#}")),
        },
        JobKind::Reconcile => match jobs::reconcile::run_scheduled(daemon).await {
            Ok(r) => RunOutcome::Ok(r.summary_line()),
            Err(e) => RunOutcome::Failed(format!("{e:#}")),
        },
        JobKind::Purge => match jobs::purge::run(daemon).await {
            Ok(s) => RunOutcome::Ok(s.detail()),
            Err(e) => RunOutcome::Failed(format!("{e:#}")),
        },
        JobKind::SftpPoll { partner } => poll_state.poll(daemon, partner).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap()
    }

    #[test]
    fn previous_slot_includes_now() {
        let s = Schedule::from_str("0 30 23 * * *").unwrap();
        let tz = chrono_tz::UTC;
        assert_eq!(
            previous_slot(&s, tz, utc(2026, 11, 28, 23, 30, 0)),
            Some(utc(2026, 11, 28, 23, 30, 0))
        );
        assert_eq!(
            previous_slot(&s, tz, utc(2026, 11, 28, 23, 29, 59)),
            Some(utc(2026, 11, 27, 23, 30, 0))
        );
        assert_eq!(
            next_slot(&s, tz, utc(2026, 11, 28, 23, 30, 0)),
            Some(utc(2026, 11, 29, 23, 30, 0))
        );
    }

    #[test]
    fn slots_in_the_configured_time_zone() {
        // 07:00 in Paris is 06:00 UTC in winter, 05:00 UTC in summer.
        let s = Schedule::from_str("0 0 7 * * *").unwrap();
        let paris: Tz = "Europe/Paris".parse().unwrap();
        assert_eq!(
            next_slot(&s, paris, utc(2026, 11, 28, 12, 0, 0)),
            Some(utc(2026, 11, 29, 6, 0, 0))
        );
        assert_eq!(
            next_slot(&s, paris, utc(2026, 7, 1, 12, 0, 0)),
            Some(utc(2026, 7, 2, 5, 0, 0))
        );
    }

    #[test]
    fn a_missed_run_happens_once() {
        // Every hour; the last run was for 08:00, the daemon was down until
        // 12:34: 09:00, 10:00, 11:00 and 12:00 were missed; one run, for 12:00.
        let s = Schedule::from_str("0 0 * * * *").unwrap();
        let tz = chrono_tz::UTC;
        let now = utc(2026, 11, 28, 12, 34, 0);
        assert_eq!(
            missed_slot(&s, tz, Some(utc(2026, 11, 28, 8, 0, 0)), now),
            Some(utc(2026, 11, 28, 12, 0, 0))
        );
        // After that run is recorded, nothing is missed any more.
        assert_eq!(
            missed_slot(&s, tz, Some(utc(2026, 11, 28, 12, 0, 0)), now),
            None
        );
        // Up to date: nothing.
        assert_eq!(
            missed_slot(
                &s,
                tz,
                Some(utc(2026, 11, 28, 12, 0, 0)),
                utc(2026, 11, 28, 12, 59, 59)
            ),
            None
        );
        // Never ran: wait for the first slot.
        assert_eq!(missed_slot(&s, tz, None, now), None);
    }

    #[test]
    fn seconds_schedules() {
        let s = Schedule::from_str("*/1 * * * * *").unwrap();
        let now = utc(2026, 11, 28, 12, 0, 0);
        assert_eq!(
            next_slot(&s, chrono_tz::UTC, now),
            Some(utc(2026, 11, 28, 12, 0, 1))
        );
        assert_eq!(
            missed_slot(&s, chrono_tz::UTC, Some(utc(2026, 11, 28, 11, 0, 0)), now),
            Some(now)
        );
    }
}
