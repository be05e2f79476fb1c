//! The CII syntax-binding rules (CII-SR-463 .. CII-SR-476) the official
//! schematrons state, checked while the CII reader reads.
//!
//! The Factur-X schematrons (the EN 16931 one carries the CEN CII rules)
//! keep, of the CEN CII syntax binding, the rules CII-SR-463 .. 476: an
//! element given twice where EN 16931 takes one (a contact's person and
//! department name, the remittance information, an allowance's tax), the
//! payment means of one invoice agreeing with each other. The canonical
//! model keeps one value of each, so they are checked on the XML as it
//! passes: a few flags and counters, nothing held. The findings carry the
//! CEN ids; the reader restates them as the file's Factur-X profile does
//! ([`super::FxProfile::restate`]). CII-SR-464 is stated as a tautology
//! (`A or B or (not A and not B)`) and never fires.

use crate::model::{Severity, Violation};
use crate::xml::Element;

const AGREEMENT: &str = "SupplyChainTradeTransaction/ApplicableHeaderTradeAgreement";
const SELLER_CONTACT: &str =
    "SupplyChainTradeTransaction/ApplicableHeaderTradeAgreement/SellerTradeParty/DefinedTradeContact";
const BUYER_CONTACT: &str =
    "SupplyChainTradeTransaction/ApplicableHeaderTradeAgreement/BuyerTradeParty/DefinedTradeContact";

/// The open SpecifiedTradeAllowanceCharge: indicator, taxes, direct
/// RateApplicablePercent children, amounts.
#[derive(Default)]
struct Ac {
    indicator: bool,
    taxes: u32,
    rates: u32,
    amounts: u32,
}

/// The open SpecifiedTradeSettlementPaymentMeans: type code, IBAN and
/// proprietary account ids.
#[derive(Default)]
struct Means {
    code: Option<String>,
    iban: bool,
    proprietary: bool,
}

/// Follows a CII document's elements; see the module doc.
#[derive(Default)]
pub(crate) struct Checker {
    /// CII-SR-465/466 are warnings in the CEN CII artefact (1.3.16), fatal
    /// in the Factur-X schematrons (the reader restates them for a Factur-X
    /// file): reported here as the CEN artefact does.
    ac: Vec<Ac>,
    means: Means,
    /// Seller / buyer contact: person name, department name seen.
    seller: (bool, bool),
    buyer: (bool, bool),
    first_means_code: Option<String>,
    means_codes_differ: bool,
    first_information: Option<String>,
    information_differs: bool,
    payment_references: u32,
    /// The open line settlement's type-130 documents; the open header
    /// agreement's type-916 document names and attachments.
    line_objects: u32,
    ard: (Option<String>, u32, u32),
    pub findings: Vec<Violation>,
}

fn ends(path: &str, suffix: &str) -> bool {
    path == suffix
        || (path.ends_with(suffix) && path.as_bytes()[path.len() - suffix.len() - 1] == b'/')
}

impl Checker {
    fn emit(&mut self, id: &str, severity: Severity, message: String) {
        self.findings.push(Violation {
            rule: id.to_string(),
            term: String::new(),
            severity,
            message: format!("{message} (EN 16931 CII binding)"),
            location: None,
            line: None,
            column: None,
        });
    }

    /// An element opened.
    pub fn start(&mut self, el: &Element<'_>) {
        let name = el.local();
        match name {
            "SpecifiedTradeAllowanceCharge" => self.ac.push(Ac::default()),
            "SpecifiedTradeSettlementPaymentMeans" => self.means = Means::default(),
            "SpecifiedLineTradeSettlement" => self.line_objects = 0,
            "AdditionalReferencedDocument" => self.ard = (None, 0, 0),
            _ => {}
        }
    }

    /// An element closed, with its trimmed text.
    pub fn end(&mut self, el: &Element<'_>, text: &str) {
        let (path, name) = (el.path, el.local());
        let (parent, parent_name) = (el.parent(), el.parent_local());
        if parent_name == "SpecifiedTradeAllowanceCharge" {
            if let Some(ac) = self.ac.last_mut() {
                match name {
                    "ChargeIndicator" => ac.indicator = true,
                    "CategoryTradeTax" => ac.taxes += 1,
                    "RateApplicablePercent" => ac.rates += 1,
                    "ActualAmount" => ac.amounts += 1,
                    _ => {}
                }
            }
        }
        match name {
            "SpecifiedTradeAllowanceCharge" => {
                if let Some(ac) = self.ac.pop() {
                    if !ac.indicator {
                        self.emit(
                            "CII-SR-463",
                            Severity::Fatal,
                            format!("{path}: an allowance or charge needs its ChargeIndicator"),
                        );
                    }
                    for (n, id, what) in [
                        (ac.taxes, "CII-SR-471", "CategoryTradeTax"),
                        (ac.rates, "CII-SR-472", "RateApplicablePercent"),
                        (ac.amounts, "CII-SR-473", "ActualAmount"),
                    ] {
                        if n > 1 {
                            self.emit(
                                id,
                                Severity::Fatal,
                                format!("{path}: {what} must occur at most 1 time(s), found {n}"),
                            );
                        }
                    }
                }
            }
            "TypeCode" if parent_name == "SpecifiedTradeSettlementPaymentMeans" => {
                let code = text.split_whitespace().collect::<Vec<_>>().join(" ");
                match &self.first_means_code {
                    None => self.first_means_code = Some(code.clone()),
                    Some(first) => self.means_codes_differ |= *first != code,
                }
                self.means.code = Some(code);
            }
            "Information" if parent_name == "SpecifiedTradeSettlementPaymentMeans" => {
                let info = text.split_whitespace().collect::<Vec<_>>().join(" ");
                match &self.first_information {
                    None => self.first_information = Some(info),
                    Some(first) => self.information_differs |= *first != info,
                }
            }
            "IBANID" if parent_name == "PayeePartyCreditorFinancialAccount" => {
                self.means.iban = true
            }
            "ProprietaryID" if parent_name == "PayeePartyCreditorFinancialAccount" => {
                self.means.proprietary = true
            }
            "SpecifiedTradeSettlementPaymentMeans" => {
                let m = std::mem::take(&mut self.means);
                if matches!(m.code.as_deref(), Some("30") | Some("58")) && (m.iban == m.proprietary)
                {
                    self.emit(
                        "CII-SR-470",
                        Severity::Fatal,
                        format!("{path}: a credit transfer gives its account as an IBAN or as a proprietary identifier, exactly one of them"),
                    );
                }
            }
            "PaymentReference" if ends(parent, "ApplicableHeaderTradeSettlement") => {
                self.payment_references += 1
            }
            "TypeCode" if parent_name == "AdditionalReferencedDocument" => {
                self.ard.0 = Some(text.to_string())
            }
            "Name" if parent_name == "AdditionalReferencedDocument" => self.ard.1 += 1,
            "AttachmentBinaryObject" if parent_name == "AdditionalReferencedDocument" => {
                self.ard.2 += 1
            }
            "AdditionalReferencedDocument" => {
                let (code, names, objects) = std::mem::take(&mut self.ard);
                if parent.ends_with("SpecifiedLineTradeSettlement")
                    && code.as_deref() == Some("130")
                {
                    self.line_objects += 1;
                }
                if parent == AGREEMENT && code.as_deref() == Some("916") {
                    for (n, id, what) in [
                        (names, "CII-SR-475", "Name"),
                        (objects, "CII-SR-476", "AttachmentBinaryObject"),
                    ] {
                        if n > 1 {
                            self.emit(id, Severity::Warning, format!("{path}: {what} of a supporting document should occur at most once, found {n}"));
                        }
                    }
                }
            }
            "SpecifiedLineTradeSettlement" if self.line_objects > 1 => {
                let n = self.line_objects;
                self.emit("CII-SR-474", Severity::Warning, format!("{path}: a line should have at most one object identifier (type 130), found {n}"));
            }
            _ => {}
        }
        if parent == SELLER_CONTACT {
            match name {
                "PersonName" => self.seller.0 = true,
                "DepartmentName" => self.seller.1 = true,
                _ => {}
            }
        } else if parent == BUYER_CONTACT {
            match name {
                "PersonName" => self.buyer.0 = true,
                "DepartmentName" => self.buyer.1 = true,
                _ => {}
            }
        }
        if path == AGREEMENT {
            for (both, id, who, bt) in [
                (self.seller, "CII-SR-465", "seller", "BT-41"),
                (self.buyer, "CII-SR-466", "buyer", "BT-56"),
            ] {
                if both.0 && both.1 {
                    self.emit(id, Severity::Warning, format!("The {who} contact point ({bt}) is given twice, as a person name and as a department name; give one"));
                }
            }
            self.seller = (false, false);
            self.buyer = (false, false);
        }
    }

    /// The document ended: the document-wide rules.
    pub fn finish(mut self) -> Vec<Violation> {
        if self.means_codes_differ {
            self.emit("CII-SR-467", Severity::Fatal, "The payment means type codes (BT-81) differ; an invoice has one payment means type".into());
        }
        if self.information_differs {
            self.emit(
                "CII-SR-468",
                Severity::Fatal,
                "The payment means texts (BT-82) differ; an invoice has one".into(),
            );
        }
        if self.payment_references > 1 {
            let n = self.payment_references;
            self.emit("CII-SR-469", Severity::Fatal, format!("The remittance information (BT-83, PaymentReference) is given {n} times; give it once"));
        }
        self.findings
    }
}
