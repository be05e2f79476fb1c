//! Scheduled jobs: one instance at a time, and a record of every run.
//!
//! [`Spool::try_lock_job`] hands out a [`JobLock`] guard, or `None` when
//! another instance (or task) runs the job:
//! - PostgreSQL: `pg_try_advisory_lock` on a dedicated connection that the
//!   guard owns. The lock lives exactly as long as that session: released
//!   on drop (the connection closes) and by the server if the instance dies.
//! - SQLite (one machine): a lease row in `job_locks`, taken with a single
//!   conditional upsert, renewed in the background while the guard lives and
//!   deleted on drop. A process killed while holding it blocks the job for at
//!   most [`SQLITE_JOB_LEASE`].
//!
//! [`Spool::start_job_run`] / [`Spool::finish_job_run`] record runs in
//! `job_runs`; [`Spool::last_job_run`] tells the scheduler which slot ran
//! last, so that after downtime a missed run happens once.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::{Connection, PgConnection, SqlitePool};

use crate::{Backend, Result, Spool, SpoolError};

/// How long a SQLite job lease lasts without renewal (renewed every third).
pub const SQLITE_JOB_LEASE: Duration = Duration::from_secs(60);

/// A recorded run of a scheduled job.
#[derive(Debug, Clone, Serialize, Deserialize, sqlx::FromRow)]
pub struct JobRun {
    pub id: i64,
    pub job: String,
    /// The cron slot this run is for.
    pub scheduled_for: DateTime<Utc>,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub instance: String,
    /// `ok`, `failed`, ... (None while running or if the instance died)
    pub outcome: Option<String>,
    pub detail: Option<String>,
}

/// Holds a job's lock; dropping it releases the lock.
pub struct JobLock {
    job: String,
    inner: Option<Held>,
}

enum Held {
    Postgres(PgConnection),
    Sqlite {
        pool: SqlitePool,
        token: String,
        renew: tokio::task::JoinHandle<()>,
    },
}

impl std::fmt::Debug for JobLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobLock").field("job", &self.job).finish()
    }
}

impl JobLock {
    pub fn job(&self) -> &str {
        &self.job
    }

    /// Release now and wait for it (dropping releases too, in the background).
    pub async fn release(mut self) -> Result<()> {
        match self.inner.take() {
            Some(Held::Postgres(mut conn)) => {
                sqlx::query("SELECT pg_advisory_unlock($1)")
                    .bind(advisory_key(&self.job))
                    .execute(&mut conn)
                    .await?;
                conn.close().await?;
            }
            Some(Held::Sqlite { pool, token, renew }) => {
                renew.abort();
                sqlx::query("DELETE FROM job_locks WHERE job = $1 AND token = $2")
                    .bind(&self.job)
                    .bind(&token)
                    .execute(&pool)
                    .await?;
            }
            None => {}
        }
        Ok(())
    }
}

impl Drop for JobLock {
    fn drop(&mut self) {
        match self.inner.take() {
            // Dropping the connection ends the session, which releases the lock.
            Some(Held::Postgres(conn)) => drop(conn),
            Some(Held::Sqlite { pool, token, renew }) => {
                renew.abort();
                let job = self.job.clone();
                if let Ok(rt) = tokio::runtime::Handle::try_current() {
                    rt.spawn(async move {
                        let _ = sqlx::query("DELETE FROM job_locks WHERE job = $1 AND token = $2")
                            .bind(job)
                            .bind(token)
                            .execute(&pool)
                            .await;
                    });
                }
            }
            None => {}
        }
    }
}

/// Advisory lock key of a job: 64 bits of SHA-256("quai job " + name).
fn advisory_key(job: &str) -> i64 {
    let d = Sha256::digest(format!("quai job {job}").as_bytes());
    let mut b = [0u8; 8];
    b.copy_from_slice(&d[..8]);
    i64::from_be_bytes(b)
}

fn token(instance: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = Utc::now().timestamp_nanos_opt().unwrap_or_default();
    format!(
        "{instance}/{}/{nanos}/{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

fn lease_end(now: DateTime<Utc>) -> DateTime<Utc> {
    now + chrono::Duration::from_std(SQLITE_JOB_LEASE).unwrap_or(chrono::Duration::seconds(60))
}

impl Spool {
    /// Take the lock of a scheduled job if nobody holds it (see module doc).
    pub async fn try_lock_job(&self, job: &str) -> Result<Option<JobLock>> {
        match &self.inner.backend {
            Backend::Postgres(b) => {
                let mut conn = PgConnection::connect_with(&b.options).await?;
                let got: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
                    .bind(advisory_key(job))
                    .fetch_one(&mut conn)
                    .await?;
                if !got {
                    let _ = conn.close().await;
                    return Ok(None);
                }
                Ok(Some(JobLock {
                    job: job.to_owned(),
                    inner: Some(Held::Postgres(conn)),
                }))
            }
            Backend::Sqlite(b) => {
                let token = token(self.instance());
                let now = Utc::now();
                let got: Option<String> = sqlx::query_scalar(
                    "INSERT INTO job_locks (job, owner, token, expires_at) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (job) DO UPDATE SET owner = excluded.owner, token = excluded.token, \
                     expires_at = excluded.expires_at WHERE job_locks.expires_at < $5 RETURNING token",
                )
                .bind(job)
                .bind(self.instance())
                .bind(&token)
                .bind(lease_end(now))
                .bind(now)
                .fetch_optional(&b.pool)
                .await?;
                if got.as_deref() != Some(token.as_str()) {
                    return Ok(None);
                }
                let pool = b.pool.clone();
                let (job2, token2) = (job.to_owned(), token.clone());
                let renew = tokio::spawn(async move {
                    loop {
                        tokio::time::sleep(SQLITE_JOB_LEASE / 3).await;
                        let _ = sqlx::query(
                            "UPDATE job_locks SET expires_at = $1 WHERE job = $2 AND token = $3",
                        )
                        .bind(lease_end(Utc::now()))
                        .bind(&job2)
                        .bind(&token2)
                        .execute(&pool)
                        .await;
                    }
                });
                Ok(Some(JobLock {
                    job: job.to_owned(),
                    inner: Some(Held::Sqlite {
                        pool: b.pool.clone(),
                        token,
                        renew,
                    }),
                }))
            }
        }
    }

    /// Record that a run of `job` for the cron slot `scheduled_for` starts now.
    pub async fn start_job_run(&self, job: &str, scheduled_for: DateTime<Utc>) -> Result<i64> {
        let now = Utc::now();
        with_pool!(self, pool => {
            Ok(sqlx::query_scalar(
                "INSERT INTO job_runs (job, scheduled_for, started_at, instance) VALUES ($1, $2, $3, $4) \
                 RETURNING id",
            )
            .bind(job)
            .bind(scheduled_for)
            .bind(now)
            .bind(self.instance())
            .fetch_one(pool)
            .await?)
        })
    }

    /// Record how a run ended (`outcome`: `ok`, `failed`...).
    pub async fn finish_job_run(
        &self,
        run: i64,
        outcome: &str,
        detail: Option<&str>,
    ) -> Result<()> {
        let now = Utc::now();
        let done = with_pool!(self, pool => {
            sqlx::query("UPDATE job_runs SET finished_at = $1, outcome = $2, detail = $3 WHERE id = $4")
                .bind(now)
                .bind(outcome)
                .bind(detail)
                .bind(run)
                .execute(pool)
                .await?
                .rows_affected()
        });
        if done == 0 {
            return Err(SpoolError::Corrupt(format!("job run {run} not found")));
        }
        Ok(())
    }

    /// Record a whole run at once (started and finished); returns its id.
    pub async fn record_job_run(
        &self,
        job: &str,
        scheduled_for: DateTime<Utc>,
        started_at: DateTime<Utc>,
        outcome: &str,
        detail: Option<&str>,
    ) -> Result<i64> {
        let now = Utc::now();
        with_pool!(self, pool => {
            Ok(sqlx::query_scalar(
                "INSERT INTO job_runs (job, scheduled_for, started_at, finished_at, instance, outcome, detail) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
            )
            .bind(job)
            .bind(scheduled_for)
            .bind(started_at)
            .bind(now)
            .bind(self.instance())
            .bind(outcome)
            .bind(detail)
            .fetch_one(pool)
            .await?)
        })
    }

    /// The run of `job` with the latest cron slot (finished or not).
    pub async fn last_job_run(&self, job: &str) -> Result<Option<JobRun>> {
        with_pool!(self, pool => {
            Ok(sqlx::query_as(
                "SELECT id, job, scheduled_for, started_at, finished_at, instance, outcome, detail \
                 FROM job_runs WHERE job = $1 ORDER BY scheduled_for DESC, id DESC LIMIT 1",
            )
            .bind(job)
            .fetch_optional(pool)
            .await?)
        })
    }
}
