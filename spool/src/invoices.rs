//! Backend-independent half of `store_invoices`: duplicate-invoice planning.
//!
//! An accepted invoice claims its key (seller, number, year of issue) in the
//! `invoice_keys` table; the first (flow, doc_index) to claim a key holds it.
//! A later accepted invoice with the same key, in another flow or in the same
//! flow, is turned into a reject `REJ_UNI` / DOUBLON. Because a document's own
//! claim is released and taken again when its flow is reprocessed, and
//! documents are always planned in `doc_index` order, reprocessing a flow
//! yields the same verdicts.
//!
//! The backends run: release the batch's own claims → insert the planned
//! claims (`ON CONFLICT DO NOTHING`) → look up the holders of the keys that
//! were refused → [`Plan::decide`] → upsert the rows.

use std::collections::{HashMap, HashSet};

use chrono::Datelike;

use crate::{FlowId, NewInvoice, Reason, Result, SpoolError, StoredInvoice, Verdict};

/// Duplicate-detection key of an invoice.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Key {
    pub(crate) seller: String,
    pub(crate) number: String,
    pub(crate) year: i32,
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
        seller: seller.to_owned(),
        number: number.to_owned(),
        year: inv.issue_date?.year(),
    })
}

/// The REJ_UNI reason of a duplicate invoice.
pub(crate) fn duplicate_reason(key: &Key, held_by: FlowId) -> Reason {
    Reason {
        rule: "REJ_UNI".to_owned(),
        term: "BT-1".to_owned(),
        severity: "fatal".to_owned(),
        message: format!(
            "duplicate invoice: number {} of seller {} for year {} was already received in flow {} (DOUBLON)",
            key.number, key.seller, key.year, held_by
        ),
    }
}

/// What a batch wants to claim.
pub(crate) struct Plan<'a> {
    /// The batch, in doc_index order.
    docs: Vec<&'a NewInvoice>,
    /// Per doc (same order): its key, and whether it is the first of the
    /// batch to want it (a claim) or a later one (an in-batch duplicate).
    keys: Vec<Option<(Key, bool)>>,
}

/// A decided invoice, ready to upsert.
pub(crate) struct Decided<'a> {
    pub(crate) inv: &'a NewInvoice,
    pub(crate) verdict: Verdict,
    pub(crate) duplicate: bool,
    pub(crate) reasons: Vec<Reason>,
}

impl<'a> Plan<'a> {
    /// Order the batch and find the claims. A doc_index appearing twice in a
    /// batch is a caller error.
    pub(crate) fn new(batch: &'a [NewInvoice]) -> Result<Plan<'a>> {
        let mut docs: Vec<&NewInvoice> = batch.iter().collect();
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
    pub(crate) fn decide(self, flow: FlowId, refused: &HashMap<Key, FlowId>) -> Vec<Decided<'a>> {
        self.docs
            .into_iter()
            .zip(self.keys)
            .map(|(inv, key)| {
                let mut reasons = inv.reasons.clone();
                match key {
                    None => Decided {
                        inv,
                        verdict: inv.verdict,
                        duplicate: false,
                        reasons,
                    },
                    Some((key, first)) => {
                        let holder = match refused.get(&key) {
                            Some(holder) => Some(*holder),
                            None if first => None,
                            // a later document of this batch: the first one holds it
                            None => Some(flow),
                        };
                        match holder {
                            None => Decided {
                                inv,
                                verdict: Verdict::Accepted,
                                duplicate: false,
                                reasons,
                            },
                            Some(holder) => {
                                reasons.push(duplicate_reason(&key, holder));
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
        assert!(d[2].reasons[0].message.contains("flow 9 (DOUBLON)"));
        assert!(!d[1].duplicate);
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
