//! `POST /v1/flows`: a deposit, streamed into the flow store, registered
//! durably, then answered.
//!
//! The multipart body is read a chunk at a time (axum's `Multipart`, over
//! the listener's body-rate bounds): `flowInfo` (JSON, at most 64 KiB) is
//! checked against the specification, `file` goes through a bounded
//! channel into `landing::land_unsynced` on the blocking pool (hashed,
//! renamed to its SHA-256), so no deposit is ever held whole in memory.
//! Past the limit (`[api] max_file_bytes`, at most 100 MiB, and the
//! partner's `max_flow_bytes`) the landing is abandoned and the answer is
//! 413; nothing is registered. The file, its store folder and its
//! registration are made durable by the group it joins
//! ([`super::group_commit`]: one `syncfs` per group, the flows and
//! their metadata in one transaction) before the 202: a repeat
//! of the same tracking id or the same bytes is answered with the original
//! flow and registers nothing, so a client that retries after losing the
//! answer (or after a crash before it) gets one flow.

use std::io::{self, Read};
use std::sync::Arc;

use axum::extract::{FromRequest, Multipart, Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use bytes::Bytes;
use quai_connectors::landing;
use quai_spool::api::{ApiDeposit, ApiFlowMeta, ApiRegistration};
use quai_spool::{NewFlow, Origin};
use serde_json::Value;
use tokio::sync::mpsc;

use super::group_commit::{self, GroupCommit};
use super::{FlowError, Who};
use crate::app::App;
use crate::flow_json;

/// Files up to this size are landed from memory (see [`land_field`]):
/// at most this much per request in flight, bounded by the listener's
/// connection cap.
const SMALL_FILE: u64 = 64 * 1024;
/// Largest `flowInfo` part.
const MAX_FLOW_INFO: usize = 64 * 1024;
/// Room for the multipart framing and `flowInfo` beside the file when a
/// declared Content-Length is checked before reading.
const FRAMING: u64 = 128 * 1024;

/// The blocking side of the file's channel: chunks as a `Read`.
struct ChannelReader {
    rx: mpsc::Receiver<io::Result<Bytes>>,
    current: Bytes,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.current.is_empty() {
            match self.rx.blocking_recv() {
                Some(Ok(b)) => self.current = b,
                Some(Err(e)) => return Err(e),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        self.current = self.current.slice(n..);
        Ok(n)
    }
}

/// `flowInfo`, checked, and the sha256 it gave (checked against the bytes).
fn parse_flow_info(bytes: &[u8]) -> Result<(ApiFlowMeta, Option<String>), FlowError> {
    let v: Value = serde_json::from_slice(bytes)
        .map_err(|e| FlowError::bad_request(format!("flowInfo is not JSON: {e}")))?;
    let o = v
        .as_object()
        .ok_or_else(|| FlowError::bad_request("flowInfo must be a JSON object"))?;
    let missing = |k: &str| {
        FlowError::new(
            StatusCode::BAD_REQUEST,
            "MISSING_REQUIRED_FIELD",
            format!("flowInfo.{k} is required"),
        )
    };
    let text = |k: &str| -> Result<Option<String>, FlowError> {
        match o.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(FlowError::bad_request(format!(
                "flowInfo.{k} must be a string"
            ))),
        }
    };
    let one_of = |k: &str, v: &Option<String>, allowed: &[&str]| -> Result<(), FlowError> {
        match v {
            Some(s) if !allowed.contains(&s.as_str()) => Err(FlowError::bad_request(format!(
                "flowInfo.{k} must be one of {}",
                allowed.join(", ")
            ))),
            _ => Ok(()),
        }
    };
    let name = text("name")?.ok_or_else(|| missing("name"))?;
    if name.is_empty() || name.chars().count() > 255 {
        return Err(FlowError::bad_request(
            "flowInfo.name must have 1 to 255 characters",
        ));
    }
    let syntax = text("flowSyntax")?.ok_or_else(|| missing("flowSyntax"))?;
    one_of(
        "flowSyntax",
        &Some(syntax.clone()),
        flow_json::FLOW_SYNTAXES,
    )?;
    let profile = text("flowProfile")?;
    one_of("flowProfile", &profile, flow_json::FLOW_PROFILES)?;
    let rule = text("processingRule")?;
    one_of("processingRule", &rule, flow_json::PROCESSING_RULES)?;
    let tracking = text("trackingId")?;
    if let Some(t) = &tracking {
        if t.is_empty() || t.chars().count() > 64 {
            return Err(FlowError::bad_request(
                "flowInfo.trackingId must have 1 to 64 characters",
            ));
        }
    }
    let sha = text("sha256")?;
    if let Some(s) = &sha {
        if s.len() != 64
            || !s
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(FlowError::bad_request(
                "flowInfo.sha256 must be 64 lower-case hex digits",
            ));
        }
    }
    let meta = ApiFlowMeta {
        tracking_id: tracking,
        name,
        flow_syntax: syntax,
        flow_profile: profile,
        processing_rule: rule,
        sha256_given: sha.is_some(),
    };
    Ok((meta, sha))
}

/// What the file part landed as.
enum Landed {
    Stored(landing::Stored),
    TooLarge,
}

/// Stream one multipart field into the store, at most `max` bytes. A
/// file of at most [`SMALL_FILE`] bytes (most single invoices) is landed
/// from memory in one task of the blocking pool; a larger one is handed
/// over chunk by chunk, never held whole.
async fn land_field(
    field: &mut axum::extract::multipart::Field<'_>,
    store: std::path::PathBuf,
    max: u64,
) -> Result<Landed, FlowError> {
    let mut head: Vec<Bytes> = Vec::new();
    let mut total: u64 = 0;
    loop {
        match field.chunk().await {
            Ok(Some(chunk)) => {
                total += chunk.len() as u64;
                if total > max {
                    return Ok(Landed::TooLarge);
                }
                head.push(chunk);
                if total > SMALL_FILE {
                    break;
                }
            }
            Ok(None) => {
                let bytes = head.concat();
                let landed = tokio::task::spawn_blocking(move || {
                    landing::land_unsynced(&mut bytes.as_slice(), &store, max)
                })
                .await
                .map_err(FlowError::internal)?;
                let stored = landed.map_err(FlowError::internal)?;
                if !stored.complete {
                    return Ok(Landed::TooLarge);
                }
                return Ok(Landed::Stored(stored));
            }
            Err(e) => {
                return Err(FlowError::bad_request(format!(
                    "the request body could not be read: {e}"
                )))
            }
        }
    }
    land_streamed(field, store, max, head, total).await
}

/// [`land_field`] for a file larger than [`SMALL_FILE`]: `head` (the
/// chunks read so far, `total` bytes), then the rest of the field, go
/// through a bounded channel to the landing on the blocking pool.
async fn land_streamed(
    field: &mut axum::extract::multipart::Field<'_>,
    store: std::path::PathBuf,
    max: u64,
    head: Vec<Bytes>,
    mut total: u64,
) -> Result<Landed, FlowError> {
    let (tx, rx) = mpsc::channel::<io::Result<Bytes>>(8);
    let landing = tokio::task::spawn_blocking(move || {
        let mut reader = ChannelReader {
            rx,
            current: Bytes::new(),
        };
        landing::land_unsynced(&mut reader, &store, max)
    });
    let mut outcome = Ok(false);
    for chunk in head {
        if tx.send(Ok(chunk)).await.is_err() {
            break;
        }
    }
    loop {
        match field.chunk().await {
            Ok(Some(chunk)) => {
                total += chunk.len() as u64;
                if total > max {
                    outcome = Ok(true);
                    break;
                }
                if tx.send(Ok(chunk)).await.is_err() {
                    break;
                }
            }
            Ok(None) => break,
            Err(e) => {
                outcome = Err(FlowError::bad_request(format!(
                    "the request body could not be read: {e}"
                )));
                break;
            }
        }
    }
    let abandon = !matches!(outcome, Ok(false));
    if abandon {
        // The landing removes its temporary file on an error.
        let _ = tx.send(Err(io::Error::other("deposit abandoned"))).await;
    }
    drop(tx);
    let landed = landing.await.map_err(FlowError::internal)?;
    match outcome {
        Err(e) => Err(e),
        Ok(true) => Ok(Landed::TooLarge),
        Ok(false) => {
            let stored = landed.map_err(FlowError::internal)?;
            if !stored.complete {
                return Ok(Landed::TooLarge);
            }
            Ok(Landed::Stored(stored))
        }
    }
}

fn too_large(max: u64) -> FlowError {
    FlowError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "FILE_SIZE_EXCEEDED",
        format!("the file is larger than this partner's limit of {max} bytes"),
    )
}

pub async fn deposit(
    State(app): State<Arc<App>>,
    Extension(group): Extension<GroupCommit>,
    who: Who,
    req: Request,
) -> Result<Response, FlowError> {
    let partner = who.0 .0.clone();
    let config = app.config();
    let max = config
        .api
        .max_file_bytes
        .min(config.limits_for(&partner).max_flow_bytes);
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max.saturating_add(FRAMING)) {
        return Err(too_large(max));
    }
    let mut multipart = Multipart::from_request(req, &()).await.map_err(|e| {
        FlowError::bad_request(format!("a multipart/form-data body is expected: {e}"))
    })?;
    let mut meta: Option<(ApiFlowMeta, Option<String>)> = None;
    let mut stored: Option<landing::Stored> = None;
    loop {
        let field = multipart
            .next_field()
            .await
            .map_err(|e| FlowError::bad_request(format!("the multipart body is malformed: {e}")))?;
        let Some(mut field) = field else { break };
        match field.name() {
            Some("flowInfo") if meta.is_none() => {
                let mut buf = Vec::new();
                while let Some(chunk) = field
                    .chunk()
                    .await
                    .map_err(|e| FlowError::bad_request(format!("flowInfo: {e}")))?
                {
                    if buf.len() + chunk.len() > MAX_FLOW_INFO {
                        return Err(FlowError::bad_request("flowInfo is larger than 64 KiB"));
                    }
                    buf.extend_from_slice(&chunk);
                }
                meta = Some(parse_flow_info(&buf)?);
            }
            Some("file") if stored.is_none() => {
                match land_field(&mut field, config.store.clone(), max).await? {
                    Landed::Stored(s) => stored = Some(s),
                    Landed::TooLarge => return Err(too_large(max)),
                }
            }
            Some(other) => {
                return Err(FlowError::bad_request(format!(
                    "unexpected or repeated part {other:?} (expected flowInfo and file)"
                )))
            }
            None => return Err(FlowError::bad_request("a part without a name")),
        }
    }
    let (meta, given_sha) = meta.ok_or_else(|| {
        FlowError::new(
            StatusCode::BAD_REQUEST,
            "MISSING_REQUIRED_FIELD",
            "the flowInfo part is required",
        )
    })?;
    let stored = stored.ok_or_else(|| {
        FlowError::new(
            StatusCode::BAD_REQUEST,
            "MISSING_REQUIRED_FIELD",
            "the file part is required",
        )
    })?;
    let stored_meta = meta.as_stored();
    if let Some(given) = &given_sha {
        if *given != stored.sha256 {
            return Err(FlowError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "CHECKSUM_MISMATCH",
                format!(
                    "flowInfo.sha256 is {given}, the file received has {}",
                    stored.sha256
                ),
            ));
        }
    }
    let new = NewFlow {
        partner: partner.clone(),
        origin: Origin::Api,
        original_name: meta.name.clone(),
        size: stored.size as i64,
        sha256: stored.sha256.clone(),
        as2_message_id: None,
    };
    let landed = group_commit::Landed {
        deposit: ApiDeposit { flow: new, meta },
        store: config.store.clone(),
    };
    let registered = group.register(landed).await.map_err(FlowError::internal)?;
    let body = match registered.registration {
        // Answered from what was just committed, without reading it back.
        ApiRegistration::New(id) => {
            flow_json::deposit_info(id, registered.at, &stored_meta, &stored.sha256)
        }
        ApiRegistration::Existing(id) => {
            let flow = app.spool.api_flow(&partner, id).await?.ok_or_else(|| {
                FlowError::internal(format!("flow {id} just registered is not found"))
            })?;
            flow_json::full_info(&app.spool, &flow).await?
        }
    };
    Ok((StatusCode::ACCEPTED, Json(body)).into_response())
}
