//! What the partner API (AFNOR Flow Service, `/v1`) keeps in the spool.
//!
//! - **Tokens**: a partner's bearer tokens, by the SHA-256 of their secret
//!   (the secret itself is never stored; `quai token create` prints it
//!   once). A revoked token stays listed, refused.
//! - **API flows**: what a deposit said about its flow (`flowInfo`: name,
//!   syntax, profile, processing rule, the client's tracking id, unique
//!   per partner). [`Spool::register_api_flow`] registers the flow and
//!   its metadata in one transaction, or names the flow a repeat stands
//!   for (same tracking id, or same bytes, of the same partner): a repeat
//!   is answered with the original and registers nothing.
//!   [`Spool::register_api_flows`] does it for a group of deposits in one
//!   transaction (the partner API's group commit: one WAL fsync for the
//!   deposits that arrive together), repeats within the group included.
//! - **Webhooks**: subscriptions of a partner, and the posts owed to them
//!   (one per subscription and flow), sent with a lease and the stored
//!   backoff of [`crate::retry_delay`], as deliveries are.
//! - **Flows `In`** ([`InboxFlow`]): files quai delivered to a partner
//!   through the API (invoices routed to it, statuses relayed to it), one
//!   per partner and file name, registered with their webhook posts in one
//!   transaction ([`Spool::put_inbox_flow`]).
//!
//! Every read takes the partner: another partner's flow or webhook is
//! not found.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::durability::Durability;
use crate::invoices::clean_text;
use crate::rows::{self, RawFlow};
use crate::steps::Dialect;
use crate::{Backend, FlowId, FlowRow, Lease, NewFlow, Result, Spool, SpoolError};

/// One write transaction on whichever backend (SQLite: under the writer
/// lock, fsynced at commit; PostgreSQL: the database clock). `$tx` is the
/// transaction, `$now` its time; the body's `Result` commits or rolls back.
macro_rules! in_tx {
    ($self:ident, $tx:ident, $now:ident => $body:expr) => {
        in_tx!($self, lock, $tx, $now => $body)
    };
    // `$lock`: how the SQLite writer lock is taken (`lock`, or
    // `lock_first` for a group of deposits clients wait on).
    ($self:ident, $lock:ident, $tx:ident, $now:ident => $body:expr) => {
        match &$self.inner.backend {
            Backend::Sqlite(b) => {
                let _writer = b.writer.$lock().await;
                let mut $tx = b.begin(Durability::Full).await?;
                let $now: DateTime<Utc> = Utc::now();
                let result: Result<_> = async { $body }.await;
                crate::settle($tx, result).await
            }
            Backend::Postgres(b) => {
                let mut $tx = b.pool.begin().await?;
                let $now: DateTime<Utc> = sqlx::query_scalar("SELECT now()")
                    .fetch_one(&mut *$tx)
                    .await?;
                let result: Result<_> = async { $body }.await;
                crate::settle($tx, result).await
            }
        }
    };
}

/// A partner token as listed (never its secret).
#[derive(Debug, Clone, Serialize, Deserialize, sqlx::FromRow)]
pub struct ApiToken {
    pub id: i64,
    pub partner: String,
    pub name: Option<String>,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// What a deposit said about its flow.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow)]
pub struct ApiFlowMeta {
    pub tracking_id: Option<String>,
    pub name: String,
    pub flow_syntax: String,
    pub flow_profile: Option<String>,
    pub processing_rule: Option<String>,
    /// The client gave the SHA-256 (checked against the bytes received).
    pub sha256_given: bool,
}

impl ApiFlowMeta {
    /// The metadata as the spool stores it (and reads it back): text
    /// without NUL characters.
    pub fn as_stored(&self) -> ApiFlowMeta {
        ApiFlowMeta {
            tracking_id: self
                .tracking_id
                .as_deref()
                .map(|t| clean_text(t).into_owned()),
            name: clean_text(&self.name).into_owned(),
            ..self.clone()
        }
    }
}

/// One deposit to register: the flow and what its deposit said.
#[derive(Debug, Clone)]
pub struct ApiDeposit {
    pub flow: NewFlow,
    pub meta: ApiFlowMeta,
}

/// A group of deposits committed together ([`Spool::register_api_flows`]).
#[derive(Debug, Clone)]
pub struct ApiGroup {
    /// The commit's time: a new flow's `received_at`.
    pub at: DateTime<Utc>,
    /// One per deposit, in order.
    pub registrations: Vec<ApiRegistration>,
}

/// How a deposit was registered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiRegistration {
    /// A new flow, `received`.
    New(FlowId),
    /// A repeat of this flow of the same partner (same tracking id, or
    /// same bytes): nothing was registered.
    Existing(FlowId),
}

/// A flow as the API shows it: the spool's row and, for a flow deposited
/// through the API, what its deposit said.
#[derive(Debug, Clone)]
pub struct ApiFlow {
    pub flow: FlowRow,
    pub meta: Option<ApiFlowMeta>,
}

/// The filters of `POST /v1/flows/search`, in the spool's terms.
#[derive(Debug, Clone, Default)]
pub struct ApiFlowSearch {
    /// `updatedAt > updated_after`.
    pub updated_after: Option<DateTime<Utc>>,
    /// `updatedAt < updated_before`.
    pub updated_before: Option<DateTime<Utc>>,
    pub tracking_id: Option<String>,
    /// Flow states to keep (`None`: all but duplicates).
    pub states: Option<Vec<crate::FlowState>>,
    /// Processing rules to keep (a flow without one counts as `Undefined`);
    /// each must be a plain word (the daemon checks them against the
    /// specification's enumeration).
    pub processing_rules: Option<Vec<String>>,
    /// Keep flows whose syntax is CDAR (`Some(true)`), or the others
    /// (`Some(false)`).
    pub cdar: Option<bool>,
    /// Flows with an id above this one (the cursor).
    pub after: Option<FlowId>,
    pub limit: i64,
}

/// A webhook subscription.
#[derive(Debug, Clone, Serialize, Deserialize, sqlx::FromRow)]
pub struct ApiWebhook {
    pub id: String,
    pub partner: String,
    pub callback_url: String,
    /// Base64 of the HMAC-SHA256 key.
    pub signing_key: String,
    /// JSON array of FlowType names (empty: all).
    pub flow_types: String,
    pub flow_direction: Option<String>,
    pub ack_status: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// A webhook post claimed for sending.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct WebhookPost {
    pub id: i64,
    pub webhook_id: String,
    /// The flow deposited through the API it announces, or
    pub flow_id: Option<FlowId>,
    /// the flow `In` ([`InboxFlow`]) it announces.
    pub inbox_id: Option<i64>,
    pub attempts: i32,
    pub partner: String,
    pub callback_url: String,
    pub signing_key: String,
}

/// Counts of webhook posts by state (for `quai status` and tests).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WebhookPostCounts {
    pub pending: i64,
    pub delivered: i64,
}

fn plain_word(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric())
}

impl Spool {
    // ------------------------------------------------------------ tokens

    /// Store a new token of `partner` by the SHA-256 (hex) of its secret.
    pub async fn create_api_token(
        &self,
        partner: &str,
        name: Option<&str>,
        secret_sha256: &str,
    ) -> Result<i64> {
        let partner = clean_text(partner).into_owned();
        let name = name.map(|n| clean_text(n).into_owned());
        in_tx!(self, tx, now => {
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO api_tokens (partner, name, secret_sha256, created_at) \
                 VALUES ($1, $2, $3, $4) RETURNING id",
            )
            .bind(&partner)
            .bind(name.as_deref())
            .bind(secret_sha256)
            .bind(now)
            .fetch_one(&mut *tx)
            .await?;
            Ok(id)
        })
    }

    /// Revoke a token; false when there is no such token or it was revoked.
    pub async fn revoke_api_token(&self, id: i64) -> Result<bool> {
        in_tx!(self, tx, now => {
            let n = sqlx::query(
                "UPDATE api_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL",
            )
            .bind(now)
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            Ok(n == 1)
        })
    }

    /// Every token, oldest first, without secrets.
    pub async fn list_api_tokens(&self) -> Result<Vec<ApiToken>> {
        with_pool!(self, pool => {
            Ok(sqlx::query_as::<_, ApiToken>(
                "SELECT id, partner, name, created_at, revoked_at FROM api_tokens ORDER BY id",
            )
            .fetch_all(pool)
            .await?)
        })
    }

    /// The live token whose secret hashes to `secret_sha256`: (id,
    /// partner, the stored hash, for the caller's constant-time compare).
    pub async fn api_token_by_hash(
        &self,
        secret_sha256: &str,
    ) -> Result<Option<(i64, String, String)>> {
        with_pool!(self, pool => {
            Ok(sqlx::query_as::<_, (i64, String, String)>(
                "SELECT id, partner, secret_sha256 FROM api_tokens \
                 WHERE secret_sha256 = $1 AND revoked_at IS NULL",
            )
            .bind(secret_sha256)
            .fetch_optional(pool)
            .await?)
        })
    }

    // ------------------------------------------------------------- flows

    /// Register a deposited flow with its metadata in one transaction, or
    /// name the partner's flow it repeats (same tracking id, else same
    /// bytes): see the module doc.
    pub async fn register_api_flow(
        &self,
        flow: &NewFlow,
        meta: &ApiFlowMeta,
    ) -> Result<ApiRegistration> {
        let group = self
            .register_api_flows(&[ApiDeposit {
                flow: flow.clone(),
                meta: meta.clone(),
            }])
            .await?;
        group
            .registrations
            .into_iter()
            .next()
            .ok_or_else(|| SpoolError::Corrupt("a group of one registered nothing".into()))
    }

    /// Register a group of deposits in one transaction (one commit, one
    /// WAL fsync on SQLite): each is registered as [`register_api_flow`]
    /// would, in order, so a deposit repeating an earlier one of the same
    /// group (same partner and tracking id, or same partner and bytes) is
    /// answered with that one's flow, as a repeat of an earlier group is.
    /// Either the whole group is committed or nothing is.
    ///
    /// The group costs a constant number of statements whatever its size
    /// (the keys and rows bound as JSON arrays): the partners, the
    /// originals known by tracking id and by bytes, then one insert each
    /// of the new flows, their events and their metadata. Repeats within
    /// the group are decided here, in order, before anything is written.
    ///
    /// [`register_api_flow`]: Spool::register_api_flow
    pub async fn register_api_flows(&self, deposits: &[ApiDeposit]) -> Result<ApiGroup> {
        let d = match &self.inner.backend {
            Backend::Sqlite(_) => Dialect::Sqlite,
            Backend::Postgres(_) => Dialect::Postgres,
        };
        let stored: Vec<(String, ApiFlowMeta, String)> = deposits
            .iter()
            .map(|d| {
                (
                    clean_text(&d.flow.partner).into_owned(),
                    d.meta.as_stored(),
                    clean_text(&d.flow.original_name).into_owned(),
                )
            })
            .collect();
        let mut partners: Vec<&str> = stored.iter().map(|(p, _, _)| p.as_str()).collect();
        partners.sort_unstable();
        partners.dedup();
        let tracked: Vec<serde_json::Value> = stored
            .iter()
            .filter_map(|(p, m, _)| {
                m.tracking_id
                    .as_ref()
                    .map(|t| serde_json::json!({ "p": p, "t": t }))
            })
            .collect();
        let hashed: Vec<serde_json::Value> = stored
            .iter()
            .zip(deposits)
            .map(|((p, _, _), dep)| serde_json::json!({ "p": p, "h": dep.flow.sha256 }))
            .collect();
        let tracked = serde_json::Value::Array(tracked).to_string();
        let hashed = serde_json::Value::Array(hashed).to_string();
        let by_tracking_sql = format!(
            "SELECT a.partner, a.tracking_id, a.flow_id FROM {} JOIN api_flows a \
             ON a.partner = {} AND a.tracking_id = {}",
            d.json_rows(1),
            d.field("p", false),
            d.field("t", false)
        );
        let by_bytes_sql = format!(
            "SELECT f.partner, f.sha256, MIN(f.id) FROM {} JOIN flows f \
             ON f.partner = {} AND f.sha256 = {} WHERE f.state <> 'duplicate' \
             GROUP BY f.partner, f.sha256",
            d.json_rows(1),
            d.field("p", false),
            d.field("h", false)
        );
        // SQLite reads `INSERT … SELECT … ON CONFLICT` only after a WHERE.
        let insert_flows_sql = format!(
            "INSERT INTO flows (partner, origin, original_name, size, sha256, state, \
             received_at, updated_at) SELECT {}, 'api', {}, {}, {}, 'received', $2, $2 \
             FROM {} WHERE true ON CONFLICT DO NOTHING RETURNING id, partner, sha256",
            d.field("p", false),
            d.field("n", false),
            d.field("s", true),
            d.field("h", false),
            d.json_rows(1)
        );
        let insert_events_sql = format!(
            "INSERT INTO events (at, instance, entity, entity_id, from_state, to_state, reason) \
             SELECT $1, $2, 'flow', id, NULL, 'received', 'registered (partner API)' \
             FROM flows WHERE id {} ORDER BY id",
            d.in_json_ids(3)
        );
        let given = match d {
            Dialect::Sqlite => "(t.value ->> 'g')".to_owned(),
            Dialect::Postgres => "(t.value ->> 'g')::boolean".to_owned(),
        };
        let insert_meta_sql = format!(
            "INSERT INTO api_flows (flow_id, partner, tracking_id, name, flow_syntax, \
             flow_profile, processing_rule, sha256_given) \
             SELECT {}, {}, {}, {}, {}, {}, {}, {given} FROM {}",
            d.field("id", true),
            d.field("p", false),
            d.field("t", false),
            d.field("n", false),
            d.field("x", false),
            d.field("f", false),
            d.field("r", false),
            d.json_rows(1)
        );
        // Clients wait on this commit: ahead of background writers.
        in_tx!(self, lock_first, tx, now => {
            for partner in &partners {
                sqlx::query("INSERT INTO partners (id, created_at) VALUES ($1, $2) ON CONFLICT DO NOTHING")
                    .bind(partner)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
            }
            let mut by_tracking: HashMap<(String, String), FlowId> = HashMap::new();
            if tracked != "[]" {
                let rows: Vec<(String, String, i64)> = sqlx::query_as(&by_tracking_sql)
                    .bind(&tracked)
                    .fetch_all(&mut *tx)
                    .await?;
                by_tracking.extend(rows.into_iter().map(|(p, t, id)| ((p, t), id)));
            }
            let rows: Vec<(String, String, i64)> = sqlx::query_as(&by_bytes_sql)
                .bind(&hashed)
                .fetch_all(&mut *tx)
                .await?;
            let mut by_bytes: HashMap<(String, String), FlowId> =
                rows.into_iter().map(|(p, h, id)| ((p, h), id)).collect();
            // In order: what each deposit is, the group's earlier new
            // flows counting as known (by their index until inserted).
            enum Is {
                Known(FlowId),
                New(usize),
            }
            let mut group_tracking: HashMap<(&str, &str), usize> = HashMap::new();
            let mut group_bytes: HashMap<(&str, &str), usize> = HashMap::new();
            let mut decided = Vec::with_capacity(deposits.len());
            let mut fresh: Vec<usize> = Vec::new();
            for (i, ((partner, meta, _), dep)) in stored.iter().zip(deposits).enumerate() {
                let t_key = meta.tracking_id.as_deref().map(|t| (partner.as_str(), t));
                let h_key = (partner.as_str(), dep.flow.sha256.as_str());
                let known_t = t_key.and_then(|(p, t)| {
                    by_tracking
                        .get(&(p.to_owned(), t.to_owned()))
                        .map(|id| Is::Known(*id))
                        .or_else(|| group_tracking.get(&(p, t)).map(|k| Is::New(*k)))
                });
                let known = known_t.or_else(|| {
                    by_bytes
                        .get(&(h_key.0.to_owned(), h_key.1.to_owned()))
                        .map(|id| Is::Known(*id))
                        .or_else(|| group_bytes.get(&h_key).map(|k| Is::New(*k)))
                });
                match known {
                    Some(k) => decided.push(k),
                    None => {
                        if let Some(t) = t_key {
                            group_tracking.insert(t, i);
                        }
                        group_bytes.insert(h_key, i);
                        fresh.push(i);
                        decided.push(Is::New(i));
                    }
                }
            }
            // The new flows, in one insert; a row the insert skipped was
            // registered meanwhile by another instance (PostgreSQL): its
            // flow is the original.
            let mut ids: HashMap<usize, FlowId> = HashMap::new();
            if !fresh.is_empty() {
                let rows: Vec<serde_json::Value> = fresh
                    .iter()
                    .map(|&i| {
                        serde_json::json!({
                            "p": stored[i].0,
                            "n": stored[i].2,
                            "s": deposits[i].flow.size,
                            "h": deposits[i].flow.sha256,
                        })
                    })
                    .collect();
                let inserted: Vec<(i64, String, String)> = sqlx::query_as(&insert_flows_sql)
                    .bind(serde_json::Value::Array(rows).to_string())
                    .bind(now)
                    .fetch_all(&mut *tx)
                    .await?;
                let inserted: HashMap<(String, String), FlowId> =
                    inserted.into_iter().map(|(id, p, h)| ((p, h), id)).collect();
                let mut skipped = false;
                for &i in &fresh {
                    let key = (stored[i].0.clone(), deposits[i].flow.sha256.clone());
                    match inserted.get(&key) {
                        Some(id) => {
                            ids.insert(i, *id);
                        }
                        None => skipped = true,
                    }
                }
                if skipped {
                    let rows: Vec<(String, String, i64)> = sqlx::query_as(&by_bytes_sql)
                        .bind(&hashed)
                        .fetch_all(&mut *tx)
                        .await?;
                    by_bytes = rows.into_iter().map(|(p, h, id)| ((p, h), id)).collect();
                }
                let mut metas = Vec::new();
                let mut new_ids = Vec::new();
                for &i in &fresh {
                    let key = (stored[i].0.clone(), deposits[i].flow.sha256.clone());
                    if let Some(id) = ids.get(&i) {
                        let m = &stored[i].1;
                        new_ids.push(*id);
                        metas.push(serde_json::json!({
                            "id": id,
                            "p": stored[i].0,
                            "t": m.tracking_id,
                            "n": m.name,
                            "x": m.flow_syntax,
                            "f": m.flow_profile,
                            "r": m.processing_rule,
                            "g": m.sha256_given,
                        }));
                    } else {
                        let id = by_bytes.get(&key).copied().ok_or_else(|| {
                            SpoolError::Corrupt(format!("flow of {} {} neither inserted nor found", key.0, key.1))
                        })?;
                        // Answered as a repeat of the other instance's flow.
                        decided[i] = Is::Known(id);
                    }
                }
                if !new_ids.is_empty() {
                    sqlx::query(&insert_events_sql)
                        .bind(now)
                        .bind(&self.inner.instance)
                        .bind(crate::steps::json_ids(&new_ids))
                        .execute(&mut *tx)
                        .await?;
                    sqlx::query(&insert_meta_sql)
                        .bind(serde_json::Value::Array(metas).to_string())
                        .execute(&mut *tx)
                        .await?;
                }
            }
            // A new flow's id, or the original it turned out to repeat.
            let flow_of = |k: usize| -> Result<FlowId> {
                ids.get(&k)
                    .copied()
                    .or(match decided[k] {
                        Is::Known(id) => Some(id),
                        Is::New(_) => None,
                    })
                    .ok_or_else(|| SpoolError::Corrupt(format!("deposit {k} of a group has no flow")))
            };
            let mut registrations = Vec::with_capacity(decided.len());
            for (i, is) in decided.iter().enumerate() {
                registrations.push(match is {
                    Is::Known(id) => ApiRegistration::Existing(*id),
                    Is::New(k) if *k == i => ApiRegistration::New(flow_of(*k)?),
                    Is::New(k) => ApiRegistration::Existing(flow_of(*k)?),
                });
            }
            Ok(ApiGroup { at: now, registrations })
        })
    }

    /// One flow of `partner` (not a duplicate row), or `None`.
    pub async fn api_flow(&self, partner: &str, flow: FlowId) -> Result<Option<ApiFlow>> {
        let raw: Option<RawFlow> = with_pool!(self, pool => {
            sqlx::query_as(&format!(
                "{} WHERE f.id = $1 AND f.partner = $2 AND f.state <> 'duplicate'",
                rows::FLOW_SELECT
            ))
            .bind(flow)
            .bind(partner)
            .fetch_optional(pool)
            .await?
        });
        let Some(raw) = raw else { return Ok(None) };
        let flow: FlowRow = raw.try_into()?;
        let meta = self.api_flow_meta(flow.id).await?;
        Ok(Some(ApiFlow { flow, meta }))
    }

    async fn api_flow_meta(&self, flow: FlowId) -> Result<Option<ApiFlowMeta>> {
        with_pool!(self, pool => {
            Ok(sqlx::query_as::<_, ApiFlowMeta>(
                "SELECT tracking_id, name, flow_syntax, flow_profile, processing_rule, \
                 sha256_given FROM api_flows WHERE flow_id = $1",
            )
            .bind(flow)
            .fetch_optional(pool)
            .await?)
        })
    }

    /// A page of `partner`'s flows matching `search`, by id.
    pub async fn search_api_flows(
        &self,
        partner: &str,
        search: &ApiFlowSearch,
    ) -> Result<Vec<ApiFlow>> {
        let mut sql = format!(
            "{} LEFT JOIN api_flows a ON a.flow_id = f.id WHERE f.partner = $1 \
             AND f.state <> 'duplicate' AND f.id > $2",
            rows::FLOW_SELECT
        );
        let mut n = 2;
        let mut next = || {
            n += 1;
            n
        };
        let after_n = search.updated_after.map(|_| next());
        let before_n = search.updated_before.map(|_| next());
        let tracking_n = search.tracking_id.as_ref().map(|_| next());
        let limit_n = next();
        if let Some(i) = after_n {
            sql.push_str(&format!(" AND f.updated_at > ${i}"));
        }
        if let Some(i) = before_n {
            sql.push_str(&format!(" AND f.updated_at < ${i}"));
        }
        if let Some(i) = tracking_n {
            sql.push_str(&format!(" AND a.tracking_id = ${i}"));
        }
        if let Some(states) = &search.states {
            if states.is_empty() {
                return Ok(Vec::new());
            }
            let names: Vec<String> = states.iter().map(|s| format!("'{}'", s.as_str())).collect();
            sql.push_str(&format!(" AND f.state IN ({})", names.join(", ")));
        }
        if let Some(rules) = &search.processing_rules {
            if rules.is_empty() || !rules.iter().all(|r| plain_word(r)) {
                return Ok(Vec::new());
            }
            let names: Vec<String> = rules.iter().map(|r| format!("'{r}'")).collect();
            sql.push_str(&format!(
                " AND COALESCE(a.processing_rule, 'Undefined') IN ({})",
                names.join(", ")
            ));
        }
        match search.cdar {
            Some(true) => sql.push_str(" AND a.flow_syntax = 'CDAR'"),
            Some(false) => sql.push_str(" AND COALESCE(a.flow_syntax, '') <> 'CDAR'"),
            None => {}
        }
        sql.push_str(&format!(" ORDER BY f.id LIMIT ${limit_n}"));
        let raws: Vec<RawFlow> = with_pool!(self, pool => {
            let mut q = sqlx::query_as(&sql)
                .bind(partner)
                .bind(search.after.unwrap_or(0));
            if let Some(t) = search.updated_after {
                q = q.bind(t);
            }
            if let Some(t) = search.updated_before {
                q = q.bind(t);
            }
            if let Some(t) = &search.tracking_id {
                q = q.bind(t);
            }
            q.bind(search.limit.max(0)).fetch_all(pool).await?
        });
        let mut out = Vec::with_capacity(raws.len());
        for raw in raws {
            let flow: FlowRow = raw.try_into()?;
            let meta = self.api_flow_meta(flow.id).await?;
            out.push(ApiFlow { flow, meta });
        }
        Ok(out)
    }

    // ---------------------------------------------------------- webhooks

    /// Store a new subscription.
    pub async fn create_webhook(&self, hook: &ApiWebhook) -> Result<()> {
        let url = clean_text(&hook.callback_url).into_owned();
        in_tx!(self, tx, _now => {
            sqlx::query(
                "INSERT INTO api_webhooks (id, partner, callback_url, signing_key, flow_types, \
                 flow_direction, ack_status, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(&hook.id)
            .bind(&hook.partner)
            .bind(&url)
            .bind(&hook.signing_key)
            .bind(&hook.flow_types)
            .bind(hook.flow_direction.as_deref())
            .bind(hook.ack_status.as_deref())
            .bind(hook.created_at)
            .execute(&mut *tx)
            .await?;
            Ok(())
        })
    }

    /// A partner's subscriptions, oldest first.
    pub async fn webhooks_of(&self, partner: &str) -> Result<Vec<ApiWebhook>> {
        with_pool!(self, pool => {
            Ok(sqlx::query_as::<_, ApiWebhook>(
                "SELECT id, partner, callback_url, signing_key, flow_types, flow_direction, \
                 ack_status, created_at FROM api_webhooks WHERE partner = $1 ORDER BY created_at, id",
            )
            .bind(partner)
            .fetch_all(pool)
            .await?)
        })
    }

    /// Delete a partner's subscription (and the posts it still owes);
    /// false when the partner has no such subscription.
    pub async fn delete_webhook(&self, partner: &str, id: &str) -> Result<bool> {
        in_tx!(self, tx, _now => {
            sqlx::query(
                "DELETE FROM api_webhook_posts WHERE webhook_id IN \
                 (SELECT id FROM api_webhooks WHERE id = $1 AND partner = $2)",
            )
            .bind(id)
            .bind(partner)
            .execute(&mut *tx)
            .await?;
            let n = sqlx::query("DELETE FROM api_webhooks WHERE id = $1 AND partner = $2")
                .bind(id)
                .bind(partner)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            Ok(n == 1)
        })
    }

    /// Owe one post of `flow` to each of the given subscriptions, once
    /// (a post already owed or sent is not added again). Returns how many
    /// were added.
    pub async fn owe_webhook_posts(&self, flow: FlowId, webhooks: &[String]) -> Result<u64> {
        if webhooks.is_empty() {
            return Ok(0);
        }
        in_tx!(self, tx, now => {
            let mut added = 0;
            for hook in webhooks {
                added += sqlx::query(
                    "INSERT INTO api_webhook_posts (webhook_id, flow_id, state, created_at, \
                     updated_at, next_attempt_at) VALUES ($1, $2, 'pending', $3, $3, $3) \
                     ON CONFLICT DO NOTHING",
                )
                .bind(hook)
                .bind(flow)
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            }
            Ok(added)
        })
    }

    /// Claim up to `limit` due webhook posts no live lease holds.
    pub async fn claim_due_webhook_posts(
        &self,
        limit: i64,
        lease: Lease,
    ) -> Result<Vec<WebhookPost>> {
        let skip = match &self.inner.backend {
            Backend::Sqlite(_) => "",
            Backend::Postgres(_) => " FOR UPDATE SKIP LOCKED",
        };
        let me = self.inner.instance.clone();
        in_tx!(self, tx, now => {
            let ids: Vec<i64> = sqlx::query_scalar(&format!(
                "SELECT id FROM api_webhook_posts WHERE state = 'pending' AND next_attempt_at <= $1 \
                 AND (lease_expires_at IS NULL OR lease_expires_at < $1) \
                 ORDER BY next_attempt_at, id LIMIT $2{skip}"
            ))
            .bind(now)
            .bind(limit.max(0))
            .fetch_all(&mut *tx)
            .await?;
            let until = now
                + chrono::Duration::from_std(lease.duration).unwrap_or(chrono::Duration::minutes(10));
            let mut posts = Vec::with_capacity(ids.len());
            for id in ids {
                sqlx::query(
                    "UPDATE api_webhook_posts SET lease_owner = $1, lease_expires_at = $2 WHERE id = $3",
                )
                .bind(&me)
                .bind(until)
                .bind(id)
                .execute(&mut *tx)
                .await?;
                let post: WebhookPost = sqlx::query_as(
                    "SELECT p.id, p.webhook_id, p.flow_id, p.inbox_id, p.attempts, w.partner, w.callback_url, \
                     w.signing_key FROM api_webhook_posts p JOIN api_webhooks w ON w.id = p.webhook_id \
                     WHERE p.id = $1",
                )
                .bind(id)
                .fetch_one(&mut *tx)
                .await?;
                posts.push(post);
            }
            Ok(posts)
        })
    }

    /// A post was answered 2xx: delivered, lease released.
    pub async fn webhook_post_delivered(&self, id: i64) -> Result<()> {
        in_tx!(self, tx, now => {
            let n = sqlx::query(
                "UPDATE api_webhook_posts SET state = 'delivered', delivered_at = $1, updated_at = $1, \
                 attempts = attempts + 1, last_error = NULL, lease_owner = NULL, lease_expires_at = NULL \
                 WHERE id = $2 AND state = 'pending'",
            )
            .bind(now)
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if n == 0 {
                return Err(SpoolError::DeliveryNotFound(id));
            }
            Ok(())
        })
    }

    /// A post failed: attempts + 1, the error, the next attempt after
    /// [`crate::retry_delay`], lease released.
    pub async fn webhook_post_failed(&self, id: i64, error: &str) -> Result<()> {
        let error = clean_text(error).into_owned();
        in_tx!(self, tx, now => {
            let attempts: Option<i32> = sqlx::query_scalar(
                "SELECT attempts FROM api_webhook_posts WHERE id = $1 AND state = 'pending'",
            )
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
            let attempts = attempts.ok_or(SpoolError::DeliveryNotFound(id))? + 1;
            let next = now
                + chrono::Duration::from_std(crate::retry_delay(attempts))
                    .unwrap_or(chrono::Duration::minutes(15));
            sqlx::query(
                "UPDATE api_webhook_posts SET attempts = $1, last_error = $2, next_attempt_at = $3, \
                 updated_at = $4, lease_owner = NULL, lease_expires_at = NULL WHERE id = $5",
            )
            .bind(attempts)
            .bind(&error)
            .bind(next)
            .bind(now)
            .bind(id)
            .execute(&mut *tx)
            .await?;
            Ok(())
        })
    }

    /// Webhook posts by state (all partners).
    pub async fn webhook_post_counts(&self) -> Result<WebhookPostCounts> {
        let rows: Vec<(String, i64)> = with_pool!(self, pool => {
            sqlx::query_as("SELECT state, count(*) FROM api_webhook_posts GROUP BY state")
                .fetch_all(pool)
                .await?
        });
        let mut c = WebhookPostCounts::default();
        for (state, n) in rows {
            match state.as_str() {
                "pending" => c.pending = n,
                "delivered" => c.delivered = n,
                _ => {}
            }
        }
        Ok(c)
    }
}

// ------------------------------------------------------------- flows `In`

/// A flow `In`: a file quai delivered to a partner through the API (an
/// invoice routed to it, or a lifecycle status relayed to it).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct InboxFlow {
    pub id: i64,
    pub partner: String,
    /// The delivered file's name (unique per partner).
    pub name: String,
    /// FlowSyntax (`UBL`, `CII`, `Factur-X`, `CDAR`).
    pub flow_syntax: String,
    /// FlowType (`SupplierInvoice`, `CustomerInvoiceLC`...).
    pub flow_type: String,
    pub sha256: String,
    pub size: i64,
    pub created_at: DateTime<Utc>,
    /// The first successful download of its file.
    pub fetched_at: Option<DateTime<Utc>>,
}

/// A file to deliver as a flow `In`, and the subscriptions to tell.
#[derive(Debug, Clone)]
pub struct NewInboxFlow {
    pub partner: String,
    pub name: String,
    pub flow_syntax: String,
    pub flow_type: String,
    pub sha256: String,
    pub size: i64,
    /// Subscriptions owed a post of the new flow (none when it exists).
    pub webhooks: Vec<String>,
}

/// What [`Spool::put_inbox_flow`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InboxPut {
    /// A new flow `In` (and its webhook posts), committed.
    New(i64),
    /// Already delivered under this name with the same bytes: nothing added.
    Existing(i64),
    /// Already delivered under this name with other bytes (their SHA-256).
    Conflict(String),
}

/// The filters of a search of flows `In`.
#[derive(Debug, Clone, Default)]
pub struct InboxSearch {
    pub updated_after: Option<DateTime<Utc>>,
    pub updated_before: Option<DateTime<Utc>>,
    /// FlowTypes to keep (`None`: all).
    pub flow_types: Option<Vec<String>>,
    /// Flows `In` with an id above this one (the cursor).
    pub after: Option<i64>,
    pub limit: i64,
}

const INBOX_SELECT: &str = "SELECT id, partner, name, flow_syntax, flow_type, sha256, size, \
     created_at, fetched_at FROM api_inbox";

impl Spool {
    /// Register a delivered file as a flow `In` of its partner, with its
    /// webhook posts, in one transaction; once per partner and name.
    pub async fn put_inbox_flow(&self, new: &NewInboxFlow) -> Result<InboxPut> {
        let name = clean_text(&new.name).into_owned();
        in_tx!(self, tx, now => {
            let existing: Option<(i64, String)> = sqlx::query_as(
                "SELECT id, sha256 FROM api_inbox WHERE partner = $1 AND name = $2",
            )
            .bind(&new.partner)
            .bind(&name)
            .fetch_optional(&mut *tx)
            .await?;
            if let Some((id, sha)) = existing {
                return Ok(if sha == new.sha256 {
                    InboxPut::Existing(id)
                } else {
                    InboxPut::Conflict(sha)
                });
            }
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO api_inbox (partner, name, flow_syntax, flow_type, sha256, size, \
                 created_at) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
            )
            .bind(&new.partner)
            .bind(&name)
            .bind(&new.flow_syntax)
            .bind(&new.flow_type)
            .bind(&new.sha256)
            .bind(new.size)
            .bind(now)
            .fetch_one(&mut *tx)
            .await?;
            for hook in &new.webhooks {
                sqlx::query(
                    "INSERT INTO api_webhook_posts (webhook_id, inbox_id, state, created_at, \
                     updated_at, next_attempt_at) VALUES ($1, $2, 'pending', $3, $3, $3) \
                     ON CONFLICT DO NOTHING",
                )
                .bind(hook)
                .bind(id)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            }
            Ok(InboxPut::New(id))
        })
    }

    /// One flow `In` of `partner`, or `None`.
    pub async fn inbox_flow(&self, partner: &str, id: i64) -> Result<Option<InboxFlow>> {
        with_pool!(self, pool => {
            Ok(sqlx::query_as::<_, InboxFlow>(&format!(
                "{INBOX_SELECT} WHERE id = $1 AND partner = $2"
            ))
            .bind(id)
            .bind(partner)
            .fetch_optional(pool)
            .await?)
        })
    }

    /// Record the first download of a flow `In`'s file; true the first time.
    pub async fn inbox_flow_fetched(&self, id: i64) -> Result<bool> {
        in_tx!(self, tx, now => {
            let n = sqlx::query(
                "UPDATE api_inbox SET fetched_at = $1 WHERE id = $2 AND fetched_at IS NULL",
            )
            .bind(now)
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            Ok(n == 1)
        })
    }

    /// A page of `partner`'s flows `In` matching `search`, by id.
    /// `updatedAt` is the first download, else the delivery.
    pub async fn search_inbox_flows(
        &self,
        partner: &str,
        search: &InboxSearch,
    ) -> Result<Vec<InboxFlow>> {
        let mut sql = format!("{INBOX_SELECT} WHERE partner = $1 AND id > $2");
        let mut n = 2;
        if search.updated_after.is_some() {
            n += 1;
            sql.push_str(&format!(" AND COALESCE(fetched_at, created_at) > ${n}"));
        }
        if search.updated_before.is_some() {
            n += 1;
            sql.push_str(&format!(" AND COALESCE(fetched_at, created_at) < ${n}"));
        }
        if let Some(types) = &search.flow_types {
            if types.is_empty() || !types.iter().all(|t| plain_word(t)) {
                return Ok(Vec::new());
            }
            let names: Vec<String> = types.iter().map(|t| format!("'{t}'")).collect();
            sql.push_str(&format!(" AND flow_type IN ({})", names.join(", ")));
        }
        sql.push_str(&format!(" ORDER BY id LIMIT ${}", n + 1));
        with_pool!(self, pool => {
            let mut q = sqlx::query_as::<_, InboxFlow>(&sql)
                .bind(partner)
                .bind(search.after.unwrap_or(0));
            if let Some(t) = search.updated_after {
                q = q.bind(t);
            }
            if let Some(t) = search.updated_before {
                q = q.bind(t);
            }
            Ok(q.bind(search.limit.max(0)).fetch_all(pool).await?)
        })
    }

    /// Retention of flows `In` (`quai purge`): remove those last changed
    /// (downloaded, else delivered) before `older_than` that no webhook post
    /// still waits on, with their posts, in one transaction. Returns how many
    /// went and the SHA-256 of their files that no remaining flow `In` holds:
    /// the caller deletes those from the inbox folder after the commit.
    pub async fn purge_inbox(&self, older_than: DateTime<Utc>) -> Result<InboxPurge> {
        in_tx!(self, tx, _now => {
            let gone: Vec<String> = sqlx::query_scalar(&format!(
                "DELETE FROM api_inbox WHERE {INBOX_PURGEABLE} RETURNING sha256"
            ))
            .bind(older_than)
            .fetch_all(&mut *tx)
            .await?;
            let mut shas: Vec<String> = gone.clone();
            shas.sort();
            shas.dedup();
            let mut unreferenced = Vec::new();
            for sha in shas {
                let held: bool =
                    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM api_inbox WHERE sha256 = $1)")
                        .bind(&sha)
                        .fetch_one(&mut *tx)
                        .await?;
                if !held {
                    unreferenced.push(sha);
                }
            }
            Ok(InboxPurge {
                flows: gone.len() as u64,
                unreferenced,
            })
        })
    }

    /// How many flows `In` [`Spool::purge_inbox`] would remove now.
    pub async fn purgeable_inbox_flows(&self, older_than: DateTime<Utc>) -> Result<u64> {
        with_pool!(self, pool => {
            let n: i64 = sqlx::query_scalar(&format!(
                "SELECT count(*) FROM api_inbox WHERE {INBOX_PURGEABLE}"
            ))
            .bind(older_than)
            .fetch_one(pool)
            .await?;
            Ok(n.max(0) as u64)
        })
    }
}

/// The flows `In` retention takes: last changed before `$1`, no webhook post
/// of theirs still pending.
const INBOX_PURGEABLE: &str = "COALESCE(fetched_at, created_at) < $1 \
    AND NOT EXISTS (SELECT 1 FROM api_webhook_posts p \
    WHERE p.inbox_id = api_inbox.id AND p.state = 'pending')";

/// What [`Spool::purge_inbox`] removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InboxPurge {
    pub flows: u64,
    /// Files (by SHA-256) no remaining flow `In` refers to: delete them.
    pub unreferenced: Vec<String>,
}
