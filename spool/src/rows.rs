//! Rows as both backends return them, and their conversion to the API types.
//!
//! The `Raw*` structs only hold primitive column types that decode the same
//! way from SQLite and PostgreSQL (PostgreSQL queries cast NUMERIC columns to
//! text), so the conversion and its validation are written once.

use std::str::FromStr;

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;

use crate::{
    state, AckRow, Destination, FlowRow, FlowState, InvoiceRow, Origin, Reason, Result, SpoolError,
    Verdict,
};

pub(crate) fn parse_decimal(s: Option<String>) -> Result<Option<Decimal>> {
    s.map(|s| Decimal::from_str(&s).map_err(|e| SpoolError::Corrupt(format!("decimal {s:?}: {e}"))))
        .transpose()
}

pub(crate) fn parse_reasons(s: &str) -> Result<Vec<Reason>> {
    serde_json::from_str(s).map_err(|e| SpoolError::Corrupt(format!("reasons JSON: {e}")))
}

pub(crate) fn decimal_str(d: Option<Decimal>) -> Option<String> {
    d.map(|d| d.to_string())
}

#[derive(sqlx::FromRow)]
pub(crate) struct RawFlow {
    pub id: i64,
    pub partner: String,
    pub origin: String,
    pub original_name: String,
    pub size: i64,
    pub sha256: String,
    pub state: String,
    pub received_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub attempts: i32,
    pub duplicate_of: Option<i64>,
    pub failure_code: Option<String>,
    pub failure_message: Option<String>,
    pub invoices_accepted: i64,
    pub invoices_rejected: i64,
}

impl TryFrom<RawFlow> for FlowRow {
    type Error = SpoolError;
    fn try_from(r: RawFlow) -> Result<FlowRow> {
        Ok(FlowRow {
            id: r.id,
            partner: r.partner,
            origin: state::parse::<Origin>(&r.origin)?,
            original_name: r.original_name,
            size: r.size,
            sha256: r.sha256,
            state: state::parse::<FlowState>(&r.state)?,
            received_at: r.received_at,
            updated_at: r.updated_at,
            attempts: r.attempts,
            duplicate_of: r.duplicate_of,
            failure_code: r.failure_code,
            failure_message: r.failure_message,
            invoices_accepted: r.invoices_accepted,
            invoices_rejected: r.invoices_rejected,
        })
    }
}

#[derive(sqlx::FromRow, serde::Deserialize)]
pub(crate) struct RawInvoice {
    pub id: i64,
    pub flow_id: i64,
    pub doc_index: i64,
    pub entry: String,
    pub syntax: Option<String>,
    pub profile: Option<String>,
    pub seller_id: Option<String>,
    pub number: Option<String>,
    pub issue_date: Option<NaiveDate>,
    pub type_code: Option<String>,
    pub currency: Option<String>,
    pub total_with_vat: Option<String>,
    pub verdict: String,
    pub reasons: String,
}

impl TryFrom<RawInvoice> for InvoiceRow {
    type Error = SpoolError;
    fn try_from(r: RawInvoice) -> Result<InvoiceRow> {
        Ok(InvoiceRow {
            id: r.id,
            flow_id: r.flow_id,
            doc_index: r.doc_index,
            entry: r.entry,
            syntax: r.syntax,
            profile: r.profile,
            seller_id: r.seller_id,
            number: r.number,
            issue_date: r.issue_date,
            type_code: r.type_code,
            currency: r.currency,
            total_with_vat: parse_decimal(r.total_with_vat)?,
            verdict: state::parse::<Verdict>(&r.verdict)?,
            reasons: parse_reasons(&r.reasons)?,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct RawAck {
    pub id: i64,
    pub flow_id: i64,
    pub partner: String,
    pub kind: String,
    pub delivery_id: i64,
    pub to_partner: String,
    pub destination_kind: String,
    pub destination: String,
    pub state: String,
    pub file_name: String,
    pub generated_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub next_attempt_at: DateTime<Utc>,
}

impl TryFrom<RawAck> for AckRow {
    type Error = SpoolError;
    fn try_from(r: RawAck) -> Result<AckRow> {
        let to = Destination::from_columns(&r.destination_kind, &r.to_partner, &r.destination)?;
        Ok(AckRow {
            id: r.id,
            flow_id: r.flow_id,
            partner: r.partner,
            kind: state::parse(&r.kind)?,
            destination: to.legacy_name().to_owned(),
            to,
            delivery_id: r.delivery_id,
            state: state::parse(&r.state)?,
            file_name: r.file_name,
            generated_at: r.generated_at,
            delivered_at: r.delivered_at,
            attempts: r.attempts,
            last_error: r.last_error,
            next_attempt_at: r.next_attempt_at,
        })
    }
}

/// Convert a list of raw rows.
pub(crate) fn convert<R, T: TryFrom<R, Error = SpoolError>>(rows: Vec<R>) -> Result<Vec<T>> {
    rows.into_iter().map(T::try_from).collect()
}

/// Assemble `status()` from the three grouped queries both backends run.
pub(crate) fn build_status(
    partners: Vec<String>,
    flows: Vec<(String, String, i64)>,
    invoices: Vec<(String, String, i64)>,
) -> crate::StatusSummary {
    use std::collections::BTreeMap;
    let empty = || crate::Counts {
        flows: BTreeMap::new(),
        invoices: BTreeMap::from([("accepted".to_owned(), 0), ("rejected".to_owned(), 0)]),
    };
    let mut per: BTreeMap<String, crate::Counts> =
        partners.into_iter().map(|p| (p, empty())).collect();
    let mut totals = empty();
    for (partner, state, n) in flows {
        *per.entry(partner)
            .or_insert_with(empty)
            .flows
            .entry(state.clone())
            .or_default() += n;
        *totals.flows.entry(state).or_default() += n;
    }
    for (partner, verdict, n) in invoices {
        *per.entry(partner)
            .or_insert_with(empty)
            .invoices
            .entry(verdict.clone())
            .or_default() += n;
        *totals.invoices.entry(verdict).or_default() += n;
    }
    crate::StatusSummary {
        totals,
        partners: per
            .into_iter()
            .map(|(partner, counts)| crate::PartnerCounts { partner, counts })
            .collect(),
    }
}

/// Columns of a [`RawFlow`] (alias `f` for `flows`), valid on both backends.
pub(crate) const FLOW_SELECT: &str = "SELECT f.id, f.partner, f.origin, f.original_name, f.size, \
    f.sha256, f.state, f.received_at, f.updated_at, f.attempts, f.duplicate_of, f.failure_code, \
    f.failure_message, \
    (SELECT count(*) FROM invoices i WHERE i.flow_id = f.id AND i.verdict = 'accepted') AS invoices_accepted, \
    (SELECT count(*) FROM invoices i WHERE i.flow_id = f.id AND i.verdict = 'rejected') AS invoices_rejected \
    FROM flows f";

/// Columns of a [`RawInvoice`] (alias `i`), valid on both backends.
pub(crate) const INVOICE_SELECT: &str = "SELECT i.id, i.flow_id, i.doc_index, i.entry, i.syntax, \
    i.profile, i.seller_id, i.number, i.issue_date, i.type_code, i.currency, \
    CAST(i.total_with_vat AS TEXT) AS total_with_vat, i.verdict, \
    CAST(i.reasons AS TEXT) AS reasons \
    FROM invoices i";

/// Columns of a [`RawAck`] (alias `a`, joined with its flow `f` and its
/// delivery `d`), valid on both backends.
pub(crate) const ACK_SELECT: &str = "SELECT a.id, a.flow_id, f.partner, a.kind, d.id AS delivery_id, \
    d.partner AS to_partner, d.destination_kind, d.destination, d.state, a.file_name, a.generated_at, \
    d.delivered_at, d.attempts, d.last_error, d.next_attempt_at \
    FROM acknowledgements a JOIN flows f ON f.id = a.flow_id JOIN deliveries d ON d.ack_id = a.id";

/// The canonical JSON of an invoice, as stored: a zstd frame compressed
/// with a dictionary trained on canonical invoices.
///
/// Why: the canonical JSON (about 4 KB for an invoice of a few lines, most
/// of it field names and `null`s) is most of every invoice row, and each
/// byte is written twice in SQLite's WAL mode (WAL, then checkpoint) and
/// copied several times on the way. With the dictionary a typical invoice
/// shrinks 10 to 17 times (4.5 times for the official EN 16931 examples,
/// which the dictionary never saw), at about 1.7 GB/s of JSON on one core,
/// far cheaper than writing the bytes; without a dictionary zstd only
/// reaches about 3 times at a fifth of the speed on records this small.
///
/// Format: one zstd frame (level 1) with the content size and the
/// dictionary id in its header, in the BLOB / bytea column `canonical_z`
/// (migration 0003); `canonical` (text) is left NULL for such rows. Rows
/// written before 0003 keep their text in `canonical`;
/// `Spool::canonical_invoice` reads either. A frame names its dictionary by
/// id, so a better dictionary can be added later: keep every dictionary
/// ever shipped in `DICTIONARIES` (newest first, used for writing).
pub(crate) mod canonical {
    use std::sync::OnceLock;

    use crate::{Result, SpoolError};

    /// Dictionaries by id, newest first (the first one is used to write).
    /// `canonical-1.zdict` is trained by `examples/train_dictionary.rs`.
    const DICTIONARIES: &[&[u8]] = &[include_bytes!("canonical-1.zdict")];

    /// zstd level: with a dictionary, level 1 compresses these records as
    /// small as level 3, several times faster.
    const LEVEL: i32 = 1;

    /// Largest canonical JSON a stored frame may claim to hold (a corrupt
    /// header must not make the reader allocate without bound).
    const MAX_JSON: u64 = 1 << 30;

    fn encoder() -> &'static zstd::dict::EncoderDictionary<'static> {
        static E: OnceLock<zstd::dict::EncoderDictionary<'static>> = OnceLock::new();
        E.get_or_init(|| zstd::dict::EncoderDictionary::copy(DICTIONARIES[0], LEVEL))
    }

    fn decoders() -> &'static [(u32, zstd::dict::DecoderDictionary<'static>)] {
        static D: OnceLock<Vec<(u32, zstd::dict::DecoderDictionary<'static>)>> = OnceLock::new();
        D.get_or_init(|| {
            DICTIONARIES
                .iter()
                .map(|d| {
                    let id = zstd::zstd_safe::get_dict_id_from_dict(d).map_or(0, |id| id.get());
                    (id, zstd::dict::DecoderDictionary::copy(d))
                })
                .collect()
        })
    }

    /// Compresses the canonical JSON of a batch; reuse one per batch.
    ///
    /// Each frame is compressed into one buffer kept by the compressor and
    /// copied out at its exact size: `zstd::bulk::Compressor::compress`
    /// would return a vector of the worst-case size (about 4 KB for a 4 KB
    /// invoice whose frame is 250 bytes), held until the batch is written.
    pub(crate) struct Compressor {
        zstd: zstd::bulk::Compressor<'static>,
        buffer: Vec<u8>,
    }

    impl Compressor {
        pub(crate) fn new() -> Result<Compressor> {
            zstd::bulk::Compressor::with_prepared_dictionary(encoder())
                .map(|zstd| Compressor {
                    zstd,
                    buffer: Vec::new(),
                })
                .map_err(|e| SpoolError::Corrupt(format!("zstd compressor: {e}")))
        }

        pub(crate) fn compress(&mut self, json: &str) -> Result<Vec<u8>> {
            self.buffer.clear();
            self.buffer
                .reserve(zstd::zstd_safe::compress_bound(json.len()));
            self.zstd
                .compress_to_buffer(json.as_bytes(), &mut self.buffer)
                .map_err(|e| SpoolError::Corrupt(format!("zstd compression: {e}")))?;
            Ok(self.buffer.as_slice().to_vec())
        }
    }

    /// A stored frame as a stream: its content size and a decompressing
    /// reader (the frame is held, compressed; the JSON never whole).
    pub(crate) fn reader(frame: Vec<u8>) -> Result<crate::CanonicalJson> {
        use std::io::Read;
        let corrupt = |why: String| SpoolError::Corrupt(format!("canonical JSON: {why}"));
        let size = zstd::zstd_safe::get_frame_content_size(&frame)
            .map_err(|_| corrupt("not a zstd frame".into()))?
            .ok_or_else(|| corrupt("zstd frame without a content size".into()))?;
        if size > MAX_JSON {
            return Err(corrupt(format!("zstd frame claims {size} bytes")));
        }
        let id = zstd::zstd_safe::get_dict_id_from_frame(&frame).map_or(0, |id| id.get());
        let input = std::io::BufReader::new(std::io::Cursor::new(frame));
        let decoder = match decoders().iter().find(|(d, _)| *d == id) {
            Some((_, dict)) => zstd::stream::read::Decoder::with_prepared_dictionary(input, dict),
            None if id == 0 => zstd::stream::read::Decoder::with_buffer(input),
            None => return Err(corrupt(format!("unknown zstd dictionary {id}"))),
        }
        .map_err(|e| corrupt(format!("zstd: {e}")))?;
        Ok(crate::CanonicalJson {
            len: size,
            reader: Box::new(decoder.take(size)),
        })
    }

    /// The JSON of a stored frame.
    pub(crate) fn decompress(frame: &[u8]) -> Result<String> {
        let corrupt = |why: String| SpoolError::Corrupt(format!("canonical JSON: {why}"));
        let size = zstd::zstd_safe::get_frame_content_size(frame)
            .map_err(|_| corrupt("not a zstd frame".into()))?
            .ok_or_else(|| corrupt("zstd frame without a content size".into()))?;
        if size > MAX_JSON {
            return Err(corrupt(format!("zstd frame claims {size} bytes")));
        }
        let id = zstd::zstd_safe::get_dict_id_from_frame(frame).map_or(0, |id| id.get());
        let mut d = match decoders().iter().find(|(d, _)| *d == id) {
            Some((_, dict)) => zstd::bulk::Decompressor::with_prepared_dictionary(dict),
            None if id == 0 => zstd::bulk::Decompressor::new(),
            None => return Err(corrupt(format!("unknown zstd dictionary {id}"))),
        }
        .map_err(|e| corrupt(format!("zstd: {e}")))?;
        let bytes = d
            .decompress(frame, size as usize)
            .map_err(|e| corrupt(format!("zstd: {e}")))?;
        if bytes.len() as u64 != size {
            return Err(corrupt("zstd frame shorter than its header says".into()));
        }
        String::from_utf8(bytes).map_err(|e| corrupt(format!("not UTF-8: {e}")))
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn round_trip_is_exact_and_small() {
            let json = r#"{"syntax":"ubl","number":"F-1","notes":[{"text":"Pénalités de retard : 40 €"}],"seller":{"name":"Société Générale Müller","vat_id":null},"lines":[]}"#;
            let mut c = Compressor::new().unwrap();
            let z = c.compress(json).unwrap();
            assert_eq!(decompress(&z).unwrap(), json);
            // an invoice as the pipeline serializes it shrinks several times
            let invoice = include_str!("../tests/fixtures/canonical-generated.json");
            let zi = c.compress(invoice).unwrap();
            assert!(
                zi.len() * 5 < invoice.len(),
                "{} -> {}",
                invoice.len(),
                zi.len()
            );
            assert_eq!(decompress(&zi).unwrap(), invoice);
            // the frame names the shipped dictionary
            let id = zstd::zstd_safe::get_dict_id_from_frame(&z).map(|i| i.get());
            assert_eq!(
                id,
                zstd::zstd_safe::get_dict_id_from_dict(DICTIONARIES[0]).map(|i| i.get())
            );
            // empty and large documents too
            assert_eq!(decompress(&c.compress("").unwrap()).unwrap(), "");
            let big = json.repeat(5000);
            assert_eq!(decompress(&c.compress(&big).unwrap()).unwrap(), big);
        }

        #[test]
        fn reader_streams_what_decompress_gives() {
            use std::io::Read;
            let json = r#"{"number":"F-1","lines":[{"id":"1","name":"Vis 4×40"}]}"#.repeat(20_000);
            let mut c = Compressor::new().unwrap();
            let frame = c.compress(&json).unwrap();
            let mut r = reader(frame).unwrap();
            assert_eq!(r.len, json.len() as u64);
            let mut out = String::new();
            let mut piece = [0u8; 1000];
            let mut bytes = Vec::new();
            loop {
                let n = r.reader.read(&mut piece).unwrap();
                if n == 0 {
                    break;
                }
                bytes.extend_from_slice(&piece[..n]);
            }
            out.push_str(std::str::from_utf8(&bytes).unwrap());
            assert_eq!(out, json);
            assert!(reader(b"not zstd".to_vec()).is_err());
        }

        #[test]
        fn plain_frames_decode() {
            // a frame without dictionary (e.g. written by hand) is read too
            let plain = zstd::bulk::compress(b"{\"a\":1}", 3).unwrap();
            assert_eq!(decompress(&plain).unwrap(), "{\"a\":1}");
        }

        #[test]
        fn corrupt_frames_are_errors_not_panics() {
            let mut c = Compressor::new().unwrap();
            let z = c.compress(&"{\"x\":\"y\"}".repeat(100)).unwrap();
            for bad in [
                &b""[..],
                &b"{\"not\":\"zstd\"}"[..],
                &z[..z.len() / 2],
                &z[..4],
            ] {
                assert!(
                    matches!(decompress(bad), Err(SpoolError::Corrupt(_))),
                    "{bad:?}"
                );
            }
            // a frame naming a dictionary the spool does not know
            let other = zstd::dict::from_samples(
                &(0..200)
                    .map(|i| format!("{{\"k{i}\":{i},\"other\":\"dictionary {i}\"}}"))
                    .collect::<Vec<_>>(),
                1024,
            );
            if let Ok(other) = other {
                let z = zstd::bulk::Compressor::with_dictionary(1, &other)
                    .unwrap()
                    .compress(b"{\"k1\":1,\"other\":\"dictionary 1\"}")
                    .unwrap();
                assert!(
                    matches!(decompress(&z), Err(SpoolError::Corrupt(m)) if m.contains("unknown zstd dictionary"))
                );
            }
            // a header claiming an absurd size
            let mut huge = zstd::bulk::compress(b"x", 1).unwrap();
            // frame header: magic (4), descriptor with an 8-byte content size
            huge.truncate(4);
            huge.extend_from_slice(&[0xC0]);
            huge.extend_from_slice(&u64::MAX.to_le_bytes());
            assert!(matches!(decompress(&huge), Err(SpoolError::Corrupt(_))));
        }
    }
}
