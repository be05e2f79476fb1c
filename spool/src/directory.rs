//! The recipient directory: which partner receives invoices for an
//! electronic address (`scheme:identifier`), valid when (issue 15).
//!
//! It lives in the database, not in memory: a national directory has
//! millions of lines, and several instances on one PostgreSQL share one
//! copy. Two sources fill it, each as versions of its own: `file` (the
//! `[directory] file` CSV export, read by `directory_csv`) and `config` (the
//! `[[partner]] addresses`, lines without dates). A load streams its lines
//! into a new `loading` version in batches (each batch its own short
//! transaction, so the SQLite writer is never held for the whole file),
//! checking every line; only if every line is good does one transaction
//! make it `current` and retire the previous version, whose lines are then
//! deleted. A load with a bad line keeps the previous version and reports
//! every bad line (the first [`MAX_PROBLEMS`] in full, and how many in all).
//!
//! Lookup ([`Spool::route`]): the most specific line valid on the day wins,
//! tier by tier ([`candidates`]): a routing-code line
//! (`0225:SIREN_SIRET_CODE`) over a SIRET line (`0225:SIREN_SIRET`, or
//! `0009:SIRET`) over a SIREN line (`0225:SIREN`, or `0002:SIREN`). Within a
//! tier, a configuration line comes before a file line, then the lowest
//! file line. `valid_from` and `valid_to` are both inclusive days.

use std::collections::HashMap;

use chrono::{NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use sqlx::QueryBuilder;

use crate::durability::Durability;
use crate::{Backend, Result, Spool};

/// Problems reported in full by one load (the count covers every one).
pub const MAX_PROBLEMS: usize = 10_000;
/// Lines per INSERT statement (6 binds each: under SQLite's 32,766).
const ROWS_PER_STATEMENT: usize = 2_000;
/// Lines per loading transaction.
const LINES_PER_TX: usize = 50_000;

/// One line of the directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirectoryLine {
    pub address: String,
    pub partner: String,
    pub valid_from: Option<NaiveDate>,
    pub valid_to: Option<NaiveDate>,
    /// 1-based line of the CSV file (0 for a configuration address).
    pub line: i64,
}

/// A bad line of a load.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineProblem {
    /// 1-based line of the CSV file (0: the configuration).
    pub line: u64,
    pub message: String,
}

impl std::fmt::Display for LineProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

/// A load refused: the previous version stays current.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoadRefused {
    /// The first [`MAX_PROBLEMS`] problems, in line order.
    pub problems: Vec<LineProblem>,
    /// How many problems in all.
    pub total: u64,
}

/// A load that became current.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Loaded {
    pub version: i64,
    pub lines: u64,
}

/// Which source a version comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DirectorySource {
    File,
    Config,
}

impl DirectorySource {
    pub fn as_str(self) -> &'static str {
        match self {
            DirectorySource::File => "file",
            DirectorySource::Config => "config",
        }
    }
}

/// The answer of a lookup: who receives, under which line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    pub partner: String,
    /// The address of the line that matched (may be less specific than the
    /// one looked up).
    pub address: String,
    pub valid_from: Option<NaiveDate>,
    pub valid_to: Option<NaiveDate>,
    pub source: DirectorySource,
    /// The file's line (None for a configuration address).
    pub line: Option<i64>,
}

/// A current version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirectoryVersion {
    pub source: DirectorySource,
    pub version: i64,
    pub lines: i64,
    /// What the loader recorded of its input (the file's size and mtime).
    pub stamp: Option<String>,
}

/// Check an address: `scheme:identifier`, the scheme 4 digits (an ISO 6523
/// ICD such as 0225, 0009, 0002), the identifier non-empty without spaces.
pub fn check_address(address: &str) -> std::result::Result<(), String> {
    let Some((scheme, id)) = address.split_once(':') else {
        return Err(format!(
            "address {address:?} is not scheme:identifier (e.g. 0225:732829320)"
        ));
    };
    if scheme.len() != 4 || !scheme.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "address {address:?}: the scheme {scheme:?} is not 4 digits"
        ));
    }
    if id.is_empty() {
        return Err(format!("address {address:?} has no identifier"));
    }
    if id.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "address {address:?}: the identifier contains spaces"
        ));
    }
    Ok(())
}

fn digits(s: &str, n: usize) -> bool {
    s.len() == n && s.bytes().all(|b| b.is_ascii_digit())
}

/// The addresses a lookup of `address` tries, most specific tier first
/// (within a tier, in order):
///
/// - `0225:A_B_C` → [`0225:A_B_C`], [`0225:A_B`, `0009:B`], [`0225:A`, `0002:A`]
/// - `0225:A_B`   → [`0225:A_B`, `0009:B`], [`0225:A`, `0002:A`]
///   (B a SIRET; `A_SUFFIX` falls back to the SIREN the same way)
/// - `0225:A`     → [`0225:A`, `0002:A`]
/// - `0009:S` (S 14 digits) → [`0009:S`, `0225:S9_S`], [`0225:S9`, `0002:S9`]
///   where S9 is the SIREN, the SIRET's first 9 digits
/// - `0002:N`     → [`0002:N`, `0225:N`]
/// - any other scheme: the address itself.
pub fn candidates(address: &str) -> Vec<Vec<String>> {
    let Some((scheme, id)) = address.split_once(':') else {
        return vec![vec![address.to_owned()]];
    };
    match scheme {
        "0225" => {
            let parts: Vec<&str> = id.splitn(3, '_').collect();
            let siren = |a: &str| vec![format!("0225:{a}"), format!("0002:{a}")];
            match parts.as_slice() {
                [a, b, _] => vec![
                    vec![address.to_owned()],
                    vec![format!("0225:{a}_{b}"), format!("0009:{b}")],
                    siren(a),
                ],
                [a, b] => vec![vec![address.to_owned(), format!("0009:{b}")], siren(a)],
                _ => vec![siren(id)],
            }
        }
        "0009" if digits(id, 14) => {
            let siren = &id[..9];
            vec![
                vec![address.to_owned(), format!("0225:{siren}_{id}")],
                vec![format!("0225:{siren}"), format!("0002:{siren}")],
            ]
        }
        "0002" => vec![vec![address.to_owned(), format!("0225:{id}")]],
        _ => vec![vec![address.to_owned()]],
    }
}

/// The directory's writes, written once for both backends (as `steps.rs`).
macro_rules! directory_steps {
    ($name:ident, $conn:ty, $db:ty, $now:ty) => {
        pub(crate) mod $name {
            use super::*;

            pub(crate) async fn begin(
                tx: &mut $conn,
                source: DirectorySource,
                now: $now,
            ) -> Result<i64> {
                Ok(sqlx::query_scalar(
                    "INSERT INTO directory_versions (source, state, created_at) \
                     VALUES ($1, 'loading', $2) RETURNING id",
                )
                .bind(source.as_str())
                .bind(now)
                .fetch_one(&mut *tx)
                .await?)
            }

            pub(crate) async fn insert(
                tx: &mut $conn,
                version: i64,
                lines: &[DirectoryLine],
            ) -> Result<()> {
                for chunk in lines.chunks(ROWS_PER_STATEMENT) {
                    let mut qb = QueryBuilder::<$db>::new(
                        "INSERT INTO directory_lines \
                         (version, address, partner, valid_from, valid_to, line) ",
                    );
                    qb.push_values(chunk, |mut b, l| {
                        b.push_bind(version)
                            .push_bind(&l.address)
                            .push_bind(&l.partner)
                            .push_bind(l.valid_from)
                            .push_bind(l.valid_to)
                            .push_bind(l.line);
                    });
                    qb.build().execute(&mut *tx).await?;
                }
                Ok(())
            }

            /// Lines of one version that give one address to two partners
            /// on a common day.
            pub(crate) async fn contradictions(
                tx: &mut $conn,
                version: i64,
                limit: i64,
            ) -> Result<Vec<(i64, i64, String, String, String)>> {
                Ok(sqlx::query_as(
                    "SELECT a.line, b.line, a.address, a.partner, b.partner \
                     FROM directory_lines a JOIN directory_lines b \
                     ON b.version = a.version AND b.address = a.address AND b.line > a.line \
                     AND b.partner <> a.partner \
                     WHERE a.version = $1 \
                     AND (a.valid_from IS NULL OR b.valid_to IS NULL OR a.valid_from <= b.valid_to) \
                     AND (b.valid_from IS NULL OR a.valid_to IS NULL OR b.valid_from <= a.valid_to) \
                     ORDER BY b.line, a.line LIMIT $2",
                )
                .bind(version)
                .bind(limit)
                .fetch_all(&mut *tx)
                .await?)
            }

            /// Make `version` current, retiring the source's previous one.
            pub(crate) async fn flip(
                tx: &mut $conn,
                source: DirectorySource,
                version: i64,
                lines: i64,
                stamp: Option<&str>,
            ) -> Result<()> {
                sqlx::query(
                    "UPDATE directory_versions SET state = 'retired' \
                     WHERE source = $1 AND state = 'current'",
                )
                .bind(source.as_str())
                .execute(&mut *tx)
                .await?;
                sqlx::query(
                    "UPDATE directory_versions SET state = 'current', lines = $2, stamp = $3 \
                     WHERE id = $1",
                )
                .bind(version)
                .bind(lines)
                .bind(stamp)
                .execute(&mut *tx)
                .await?;
                Ok(())
            }

            /// Drop one version (its lines and its row).
            pub(crate) async fn drop_version(tx: &mut $conn, version: i64) -> Result<()> {
                sqlx::query("DELETE FROM directory_lines WHERE version = $1")
                    .bind(version)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query("DELETE FROM directory_versions WHERE id = $1")
                    .bind(version)
                    .execute(&mut *tx)
                    .await?;
                Ok(())
            }

            /// Versions to drop: retired ones, and loads abandoned (a crash
            /// mid-load) for over a day.
            pub(crate) async fn stale(tx: &mut $conn, before: $now) -> Result<Vec<i64>> {
                Ok(sqlx::query_scalar(
                    "SELECT id FROM directory_versions WHERE state = 'retired' \
                     OR (state = 'loading' AND created_at < $1) ORDER BY id",
                )
                .bind(before)
                .fetch_all(&mut *tx)
                .await?)
            }
        }
    };
}

directory_steps!(
    sqlite_dir,
    sqlx::SqliteConnection,
    sqlx::Sqlite,
    chrono::DateTime<Utc>
);
directory_steps!(
    postgres_dir,
    sqlx::PgConnection,
    sqlx::Postgres,
    chrono::DateTime<Utc>
);

/// Run `$step(tx, args…)` of `directory_steps!` in a transaction of its own.
macro_rules! dir_tx {
    ($self:ident, $step:ident($($arg:expr),* $(,)?)) => {
        match &$self.inner.backend {
            Backend::Sqlite(b) => {
                let _writer = b.writer.lock().await;
                let mut tx = b.begin(Durability::Relaxed).await?;
                let result = sqlite_dir::$step(&mut tx, $($arg),*).await;
                crate::settle(tx, result).await
            }
            Backend::Postgres(b) => {
                let mut tx = b.pool.begin().await?;
                let result = postgres_dir::$step(&mut tx, $($arg),*).await;
                crate::settle(tx, result).await
            }
        }
    };
}

impl Spool {
    /// Load a new version of `source` from `lines` (parsed and checked by
    /// the caller, e.g. `CsvLines` of the CSV reader): if every line
    /// is good and no two lines give one address to two partners on a
    /// common day, it becomes current at once; otherwise nothing changes
    /// and every problem is returned. `stamp` is recorded with the version
    /// (what [`Spool::directory_versions`] shows, to tell a changed file).
    pub async fn load_directory<I>(
        &self,
        source: DirectorySource,
        lines: I,
        stamp: Option<&str>,
    ) -> Result<std::result::Result<Loaded, LoadRefused>>
    where
        I: IntoIterator<Item = std::result::Result<DirectoryLine, LineProblem>>,
    {
        let version = dir_tx!(self, begin(source, Utc::now()))?;
        let outcome = self.fill(version, lines).await;
        let outcome = match outcome {
            Ok(Ok(n)) => dir_tx!(self, flip(source, version, n as i64, stamp))
                .map(|()| Ok(Loaded { version, lines: n })),
            Ok(Err(refused)) => Ok(Err(refused)),
            Err(e) => Err(e),
        };
        if !matches!(outcome, Ok(Ok(_))) {
            // Refused or failed: this version never becomes current.
            if let Err(e) = dir_tx!(self, drop_version(version)) {
                tracing::warn!(version, error = %e, "could not drop a refused directory version");
            }
        }
        self.drop_stale_directory().await?;
        outcome
    }

    async fn fill<I>(&self, version: i64, lines: I) -> Result<std::result::Result<u64, LoadRefused>>
    where
        I: IntoIterator<Item = std::result::Result<DirectoryLine, LineProblem>>,
    {
        let mut refused = LoadRefused::default();
        let mut batch = Vec::with_capacity(LINES_PER_TX);
        let mut count = 0u64;
        for line in lines {
            match line {
                Ok(l) => {
                    count += 1;
                    // After a bad line, lines are still checked, no longer stored.
                    if refused.total == 0 {
                        batch.push(l);
                        if batch.len() == LINES_PER_TX {
                            dir_tx!(self, insert(version, &batch))?;
                            batch.clear();
                        }
                    }
                }
                Err(p) => {
                    refused.total += 1;
                    if refused.problems.len() < MAX_PROBLEMS {
                        refused.problems.push(p);
                    }
                    batch.clear();
                }
            }
        }
        if refused.total == 0 && !batch.is_empty() {
            dir_tx!(self, insert(version, &batch))?;
        }
        drop(batch);
        if refused.total == 0 {
            let found = dir_tx!(self, contradictions(version, MAX_PROBLEMS as i64))?;
            for (a, b, address, pa, pb) in found {
                refused.total += 1;
                refused.problems.push(LineProblem {
                    line: b as u64,
                    message: format!(
                        "{address} is given to partner {pb:?} here and to {pa:?} on line {a} \
                         for a common day"
                    ),
                });
            }
        }
        Ok(if refused.total == 0 {
            Ok(count)
        } else {
            Err(refused)
        })
    }

    /// Delete the lines of retired versions (and of loads abandoned over a
    /// day ago), one version per transaction.
    pub async fn drop_stale_directory(&self) -> Result<()> {
        let before = Utc::now() - chrono::Duration::days(1);
        let stale = dir_tx!(self, stale(before))?;
        for v in stale {
            dir_tx!(self, drop_version(v))?;
        }
        Ok(())
    }

    /// The current versions (at most one per source).
    pub async fn directory_versions(&self) -> Result<Vec<DirectoryVersion>> {
        let rows: Vec<(String, i64, i64, Option<String>)> = with_pool!(self, pool => {
            sqlx::query_as(
                "SELECT source, id, lines, stamp FROM directory_versions \
                 WHERE state = 'current' ORDER BY source",
            )
            .fetch_all(pool)
            .await?
        });
        Ok(rows
            .into_iter()
            .map(|(source, version, lines, stamp)| DirectoryVersion {
                source: if source == "config" {
                    DirectorySource::Config
                } else {
                    DirectorySource::File
                },
                version,
                lines,
                stamp,
            })
            .collect())
    }

    /// Who receives invoices for `address` on `on` (see the module doc for
    /// the rule), or None when no line is valid that day.
    pub async fn route(&self, address: &str, on: NaiveDate) -> Result<Option<Route>> {
        let mut found = self.routes(&[address.to_owned()], on).await?;
        Ok(found.remove(address))
    }

    /// [`Spool::route`] for many addresses at once: one query per
    /// [`ADDRESSES_PER_QUERY`] addresses (the pipeline routes a batch of
    /// invoices this way). Addresses no line serves are not in the map.
    pub async fn routes(
        &self,
        addresses: &[String],
        on: NaiveDate,
    ) -> Result<HashMap<String, Route>> {
        let mut out = HashMap::new();
        let mut unique: Vec<&String> = addresses.iter().collect();
        unique.sort();
        unique.dedup();
        for chunk in unique.chunks(ADDRESSES_PER_QUERY) {
            let tiers: Vec<Vec<Vec<String>>> = chunk.iter().map(|a| candidates(a)).collect();
            let mut all: Vec<&str> = tiers
                .iter()
                .flatten()
                .flatten()
                .map(String::as_str)
                .collect();
            all.sort_unstable();
            all.dedup();
            let list = serde_json::to_string(&all).unwrap_or_else(|_| "[]".to_owned());
            let rows: Vec<LineRow> = match &self.inner.backend {
                Backend::Sqlite(b) => {
                    sqlx::query_as(&format!(
                        "{ROUTE_SELECT} IN (SELECT value FROM json_each($2))"
                    ))
                    .bind(on)
                    .bind(&list)
                    .fetch_all(&b.pool)
                    .await?
                }
                Backend::Postgres(b) => {
                    sqlx::query_as(&format!(
                        "{ROUTE_SELECT} IN (SELECT jsonb_array_elements_text($2::jsonb))"
                    ))
                    .bind(on)
                    .bind(&list)
                    .fetch_all(&b.pool)
                    .await?
                }
            };
            let mut by_address: HashMap<&str, Vec<&LineRow>> = HashMap::new();
            for r in &rows {
                by_address.entry(r.0.as_str()).or_default().push(r);
            }
            for (address, tiers) in chunk.iter().zip(&tiers) {
                if let Some(route) = best(tiers, &by_address) {
                    out.insert((*address).clone(), route);
                }
            }
        }
        Ok(out)
    }
}

/// Addresses looked up per query by [`Spool::routes`].
pub const ADDRESSES_PER_QUERY: usize = 500;

/// The lines valid on `$1` whose address is in the list that follows.
const ROUTE_SELECT: &str =
    "SELECT l.address, l.partner, l.valid_from, l.valid_to, l.line, v.source \
    FROM directory_lines l JOIN directory_versions v ON v.id = l.version \
    WHERE v.state = 'current' \
    AND (l.valid_from IS NULL OR l.valid_from <= $1) \
    AND (l.valid_to IS NULL OR l.valid_to >= $1) AND l.address";

type LineRow = (
    String,
    String,
    Option<NaiveDate>,
    Option<NaiveDate>,
    i64,
    String,
);

/// How good a line is for an address: (tier, not from the configuration,
/// position among the candidates, file line); lowest wins.
type RouteRank = (usize, bool, usize, i64);

/// The best line among `rows` (by address) for an address's candidate
/// `tiers`: the lowest (tier, position in tier), config before file, then
/// the lowest file line.
fn best(tiers: &[Vec<String>], rows: &HashMap<&str, Vec<&LineRow>>) -> Option<Route> {
    let mut chosen: Option<(RouteRank, &LineRow)> = None;
    let mut pos = 0usize;
    for (tier, list) in tiers.iter().enumerate() {
        for a in list {
            for r in rows.get(a.as_str()).into_iter().flatten() {
                let key = (tier, r.5 != "config", pos, r.4);
                if chosen.as_ref().is_none_or(|(k, _)| key < *k) {
                    chosen = Some((key, r));
                }
            }
            pos += 1;
        }
    }
    chosen.map(
        |(_, (address, partner, valid_from, valid_to, line, source))| {
            let config = source == "config";
            Route {
                partner: partner.clone(),
                address: address.clone(),
                valid_from: *valid_from,
                valid_to: *valid_to,
                source: if config {
                    DirectorySource::Config
                } else {
                    DirectorySource::File
                },
                line: (!config).then_some(*line),
            }
        },
    )
}
