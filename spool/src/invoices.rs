//! Backend-independent half of `store_invoices`: duplicate-invoice planning.
//!
//! An accepted invoice claims its key (seller, number, year of issue) in the
//! `invoice_keys` table; the first (flow, doc_index) to claim a key holds it.
//! A later accepted invoice with the same key, in another flow or in the same
//! flow, is turned into a reject `REJ_UNI` / DOUBLON. Its reason says "twice
//! in this flow", "already received in flow N" (the same partner's flow), or
//! only "already received" when another partner holds the key: a partner is
//! never told another partner's flow ids. Because a document's own
//! claim is released and taken again when its flow is reprocessed, and
//! documents are always planned in `doc_index` order, reprocessing a flow
//! yields the same verdicts.
//!
//! The backends run: release the batch's own claims → insert the planned
//! claims (`ON CONFLICT DO NOTHING`) → look up the holders of the keys that
//! were refused → [`Plan::decide`] → upsert the rows.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

use chrono::Datelike;
use sha2::{Digest, Sha256};

use crate::{FlowId, NewInvoice, Reason, Result, SpoolError, StoredInvoice, Verdict};

/// Duplicate-detection key of an invoice.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Key {
    pub(crate) seller: String,
    pub(crate) number: String,
    pub(crate) year: i32,
}

/// Longest key part stored as is; longer ones are stored as their hash
/// (index entries have a size limit, and hostile input can be long).
const MAX_KEY_PART: usize = 200;

pub(crate) fn key_part(s: &str) -> String {
    if s.len() <= MAX_KEY_PART {
        s.to_owned()
    } else {
        format!("sha256:{}", hex::encode(Sha256::digest(s.as_bytes())))
    }
}

/// The key of an accepted invoice, when it has all three parts.
fn key_of(inv: &NewInvoice) -> Option<Key> {
    if inv.verdict != Verdict::Accepted {
        return None;
    }
    let seller = inv.seller_id.as_deref()?.trim();
    let number = inv.number.as_deref()?.trim();
    if seller.is_empty() || number.is_empty() {
        return None;
    }
    Some(Key {
        seller: key_part(seller),
        number: key_part(number),
        year: inv.issue_date?.year(),
    })
}

/// Who holds a key a document could not claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Holder {
    pub(crate) flow: FlowId,
    /// The holding flow belongs to the same partner. Another partner's
    /// flow is never named to this one (issue 14: partners stay in their
    /// own room).
    pub(crate) same_partner: bool,
}

/// The REJ_UNI reason of a duplicate invoice of `flow`, held by `holder`:
/// "twice in this flow", "already received in flow N" (a flow of the same
/// partner) or "already received" (another partner's: no flow id).
pub(crate) fn duplicate_reason(
    inv: &NewInvoice,
    key: &Key,
    flow: FlowId,
    holder: Holder,
) -> Reason {
    let number = inv.number.as_deref().map_or("", str::trim);
    let seller = inv.seller_id.as_deref().map_or("", str::trim);
    let year = key.year;
    let what = if holder.flow == flow {
        "appears twice in this flow".to_owned()
    } else if holder.same_partner {
        format!("was already received in flow {}", holder.flow)
    } else {
        "was already received".to_owned()
    };
    Reason {
        rule: "REJ_UNI".to_owned(),
        term: "BT-1".to_owned(),
        severity: "fatal".to_owned(),
        message: format!(
            "duplicate invoice: number {number} of seller {seller} for year {year} {what} (DOUBLON)"
        ),
    }
}

/// Text both databases accept: PostgreSQL refuses NUL characters in `text`
/// and `\u0000` in `jsonb`, so they become U+FFFD.
pub(crate) fn clean_text(s: &str) -> Cow<'_, str> {
    if s.contains('\0') {
        Cow::Owned(s.replace('\0', "\u{FFFD}"))
    } else {
        Cow::Borrowed(s)
    }
}

/// A copy of a document that both databases accept, when it needs one:
/// NUL characters replaced, issue dates outside years 1 to 9999 dropped
/// (PostgreSQL `date` and the text form of SQLite only sort those).
fn cleaned(inv: &NewInvoice) -> Option<NewInvoice> {
    let bad = |s: &Option<String>| s.as_deref().is_some_and(|s| s.contains('\0'));
    let bad_date = inv
        .issue_date
        .is_some_and(|d| !(1..=9999).contains(&d.year()));
    let dirty = bad_date
        || inv.entry.contains('\0')
        || [
            &inv.syntax,
            &inv.profile,
            &inv.seller_id,
            &inv.number,
            &inv.type_code,
            &inv.currency,
        ]
        .into_iter()
        .any(bad)
        || inv
            .canonical_json
            .as_deref()
            .is_some_and(|s| s.contains('\0'))
        || inv.reasons.iter().any(|r| {
            [&r.rule, &r.term, &r.severity, &r.message]
                .iter()
                .any(|s| s.contains('\0'))
        });
    if !dirty {
        return None;
    }
    let c = |s: &Option<String>| s.as_deref().map(|s| clean_text(s).into_owned());
    let mut out = inv.clone();
    out.entry = clean_text(&inv.entry).into_owned();
    out.syntax = c(&inv.syntax);
    out.profile = c(&inv.profile);
    out.seller_id = c(&inv.seller_id);
    out.number = c(&inv.number);
    out.type_code = c(&inv.type_code);
    out.currency = c(&inv.currency);
    out.canonical_json = c(&inv.canonical_json);
    for r in &mut out.reasons {
        for s in [&mut r.rule, &mut r.term, &mut r.severity, &mut r.message] {
            *s = clean_text(s).into_owned();
        }
    }
    if bad_date {
        out.issue_date = None;
    }
    Some(out)
}

/// What a batch wants to claim.
pub(crate) struct Plan<'a> {
    /// The batch, in doc_index order.
    docs: Vec<Cow<'a, NewInvoice>>,
    /// Per doc (same order): its key, and whether it is the first of the
    /// batch to want it (a claim) or a later one (an in-batch duplicate).
    keys: Vec<Option<(Key, bool)>>,
}

/// A decided invoice, ready to upsert.
pub(crate) struct Decided<'a> {
    pub(crate) inv: Cow<'a, NewInvoice>,
    pub(crate) verdict: Verdict,
    pub(crate) duplicate: bool,
    pub(crate) reasons: Vec<Reason>,
}

impl<'a> Plan<'a> {
    /// Order the batch and find the claims. A doc_index appearing twice in a
    /// batch is a caller error.
    pub(crate) fn new(batch: &'a [NewInvoice]) -> Result<Plan<'a>> {
        let mut docs: Vec<Cow<'a, NewInvoice>> = batch
            .iter()
            .map(|d| cleaned(d).map_or(Cow::Borrowed(d), Cow::Owned))
            .collect();
        docs.sort_by_key(|d| d.doc_index);
        if let Some(w) = docs.windows(2).find(|w| w[0].doc_index == w[1].doc_index) {
            return Err(SpoolError::InvalidBatch(format!(
                "doc_index {} appears twice in one batch",
                w[0].doc_index
            )));
        }
        if let Some(d) = docs.iter().find(|d| d.doc_index < 0) {
            return Err(SpoolError::InvalidBatch(format!(
                "negative doc_index {}",
                d.doc_index
            )));
        }
        let mut seen = HashSet::new();
        let keys = docs
            .iter()
            .map(|d| key_of(d).map(|k| (k.clone(), seen.insert(k))))
            .collect();
        Ok(Plan { docs, keys })
    }

    /// Doc indexes of the batch (their previous claims are released first).
    pub(crate) fn doc_indexes(&self) -> Vec<i64> {
        self.docs.iter().map(|d| d.doc_index).collect()
    }

    /// Claims to insert: (key, doc_index).
    pub(crate) fn claims(&self) -> Vec<(&Key, i64)> {
        self.docs
            .iter()
            .zip(&self.keys)
            .filter_map(|(d, k)| match k {
                Some((key, true)) => Some((key, d.doc_index)),
                _ => None,
            })
            .collect()
    }

    /// Decide every document, given the holders of the keys whose claim was
    /// refused (held by another flow or another document of this flow).
    pub(crate) fn decide(self, flow: FlowId, refused: &HashMap<Key, Holder>) -> Vec<Decided<'a>> {
        self.docs
            .into_iter()
            .zip(self.keys)
            .map(|(inv, key)| {
                let mut reasons = inv.reasons.clone();
                match key {
                    None => Decided {
                        verdict: inv.verdict,
                        inv,
                        duplicate: false,
                        reasons,
                    },
                    Some((key, first)) => {
                        let holder = match refused.get(&key) {
                            Some(holder) => Some(*holder),
                            None if first => None,
                            // a later document of this batch: the first one holds it
                            None => Some(Holder {
                                flow,
                                same_partner: true,
                            }),
                        };
                        match holder {
                            None => Decided {
                                inv,
                                verdict: Verdict::Accepted,
                                duplicate: false,
                                reasons,
                            },
                            Some(holder) => {
                                reasons.push(duplicate_reason(&inv, &key, flow, holder));
                                Decided {
                                    inv,
                                    verdict: Verdict::Rejected,
                                    duplicate: true,
                                    reasons,
                                }
                            }
                        }
                    }
                }
            })
            .collect()
    }
}

impl Decided<'_> {
    pub(crate) fn stored(&self) -> StoredInvoice {
        StoredInvoice {
            doc_index: self.inv.doc_index,
            verdict: self.verdict,
            duplicate: self.duplicate,
            reasons: self.reasons.clone(),
        }
    }
    pub(crate) fn reasons_json(&self) -> String {
        // Serializing plain strings cannot fail.
        serde_json::to_string(&self.reasons).unwrap_or_else(|_| "[]".to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn inv(i: i64, number: &str, verdict: Verdict) -> NewInvoice {
        NewInvoice {
            doc_index: i,
            entry: format!("e{i}.xml"),
            syntax: None,
            profile: None,
            seller_id: Some("S1".into()),
            number: Some(number.into()),
            issue_date: NaiveDate::from_ymd_opt(2024, 3, 1),
            type_code: None,
            currency: None,
            total_without_vat: None,
            total_with_vat: None,
            amount_due: None,
            verdict,
            reasons: vec![],
            canonical_json: None,
        }
    }

    #[test]
    fn in_batch_duplicates_lose_to_the_lowest_index() {
        let batch = vec![
            inv(3, "A", Verdict::Accepted),
            inv(1, "A", Verdict::Accepted),
            inv(2, "B", Verdict::Rejected),
        ];
        let plan = Plan::new(&batch).unwrap();
        assert_eq!(
            plan.claims().iter().map(|c| c.1).collect::<Vec<_>>(),
            vec![1]
        );
        let d = plan.decide(9, &HashMap::new());
        assert_eq!(d[0].inv.doc_index, 1);
        assert_eq!(d[0].verdict, Verdict::Accepted);
        assert_eq!(d[1].verdict, Verdict::Rejected);
        assert_eq!(d[2].verdict, Verdict::Rejected);
        assert!(d[2].duplicate);
        assert!(
            d[2].reasons[0]
                .message
                .ends_with("appears twice in this flow (DOUBLON)"),
            "{:?}",
            d[2].reasons
        );
        assert!(!d[1].duplicate);
    }

    #[test]
    fn another_partners_flow_is_never_named() {
        let batch = vec![
            inv(1, "A", Verdict::Accepted),
            inv(2, "B", Verdict::Accepted),
        ];
        let plan = Plan::new(&batch).unwrap();
        let key = |n: &str| Key {
            seller: "S1".into(),
            number: n.into(),
            year: 2024,
        };
        let refused = HashMap::from([
            (
                key("A"),
                Holder {
                    flow: 4,
                    same_partner: false,
                },
            ),
            (
                key("B"),
                Holder {
                    flow: 5,
                    same_partner: true,
                },
            ),
        ]);
        let d = plan.decide(9, &refused);
        let m = &d[0].reasons[0].message;
        assert!(
            m.ends_with("year 2024 was already received (DOUBLON)"),
            "{m}"
        );
        assert!(!m.contains("flow"), "{m}");
        let m = &d[1].reasons[0].message;
        assert!(m.ends_with("already received in flow 5 (DOUBLON)"), "{m}");
    }

    #[test]
    fn repeated_doc_index_is_refused() {
        let batch = vec![
            inv(1, "A", Verdict::Accepted),
            inv(1, "B", Verdict::Accepted),
        ];
        assert!(matches!(
            Plan::new(&batch),
            Err(SpoolError::InvalidBatch(_))
        ));
    }
}
