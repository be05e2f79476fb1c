//! Business-rule findings carry the place of the node they are about (the
//! XPath, as the schematron's `location`, and its line and column), through
//! the path a flow takes; and an element given but unreadable gets the
//! reader's finding, not also "missing". (How these places compare with
//! the official artefacts' `location` on 1,200 mutants: `rules_mutations`,
//! section "Where the findings are" of docs/conformance.md.)

use std::path::Path;

use quai_mappings::flow::{self, DocumentResult, FlowEnd, FlowLimits};
use quai_mappings::Violation;

fn fixture(rel: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel);
    std::fs::read_to_string(p).expect("fixture")
}

/// The violations of the one document in `text`, read as file `name`.
fn judge(name: &str, text: &str) -> Vec<Violation> {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join(name);
    std::fs::write(&path, text).expect("write");
    let mut out = Vec::new();
    let end = flow::process(&path, name, &FlowLimits::default(), &mut |doc| {
        if let DocumentResult::Mapped { violations, .. } = doc.result {
            out = violations;
        }
        Ok(())
    });
    assert!(matches!(end, FlowEnd::Done(_)), "{end:?}");
    out
}

/// The 1-based line of the first occurrence of `needle` in `text`.
fn line_of(text: &str, needle: &str) -> u32 {
    let at = text.find(needle).expect("needle");
    text[..at].matches('\n').count() as u32 + 1
}

/// `doc` with the first element `<tag ...>...</tag>` replaced by `with`.
fn replace_first(doc: &str, tag: &str, with: &str) -> String {
    let start = doc.find(&format!("<{tag}")).expect("element");
    let close = format!("</{tag}>");
    let end = doc[start..].find(&close).expect("end tag") + start + close.len();
    format!("{}{with}{}", &doc[..start], &doc[end..])
}

fn find<'a>(v: &'a [Violation], rule: &str) -> Option<&'a Violation> {
    v.iter().find(|f| f.rule == rule)
}

#[test]
fn a_ubl_line_finding_names_its_line_and_a_total_its_group() {
    let doc = fixture("ubl/en16931-ubl-examples/ubl-tc434-example2.xml");
    // The second line loses its quantity: BR-22 on that line element.
    let second = doc
        .match_indices("<cac:InvoiceLine>")
        .nth(1)
        .expect("two lines")
        .0;
    let (head, tail) = doc.split_at(second);
    let tail = replace_first(tail, "cbc:InvoicedQuantity", "");
    let mutated = replace_first(&format!("{head}{tail}"), "cbc:PayableAmount", "");
    let v = judge("m.xml", &mutated);
    let br22 = find(&v, "BR-22").expect("BR-22");
    assert_eq!(
        br22.location.as_deref(),
        Some("/Invoice/cac:InvoiceLine[2]"),
        "{br22:?}"
    );
    let at = mutated.match_indices("<cac:InvoiceLine>").nth(1).unwrap().0;
    assert_eq!(
        br22.line,
        Some(mutated[..at].matches('\n').count() as u32 + 1)
    );
    let column = at - mutated[..at].rfind('\n').map_or(0, |n| n + 1) + 1;
    assert_eq!(br22.column, Some(column as u32));
    let br15 = find(&v, "BR-15").expect("BR-15");
    assert_eq!(
        br15.location.as_deref(),
        Some("/Invoice/cac:LegalMonetaryTotal"),
        "{br15:?}"
    );
    assert_eq!(
        br15.line,
        Some(line_of(&mutated, "<cac:LegalMonetaryTotal>"))
    );
}

#[test]
fn an_unreadable_quantity_is_not_also_missing() {
    let doc = fixture("ubl/en16931-ubl-examples/ubl-tc434-example2.xml");
    let q = doc.find("<cbc:InvoicedQuantity").expect("quantity");
    let gt = doc[q..].find('>').unwrap() + q + 1;
    let lt = doc[gt..].find('<').unwrap() + gt;
    let mutated = format!("{}x#1{}", &doc[..gt], &doc[lt..]);
    let v = judge("m.xml", &mutated);
    let syntax = v
        .iter()
        .find(|f| f.term == "BT-129")
        .expect("the reader's finding");
    assert_eq!(syntax.rule, "SYNTAX");
    assert_eq!(
        syntax.location.as_deref(),
        Some("/Invoice/cac:InvoiceLine[1]/cbc:InvoicedQuantity")
    );
    assert!(find(&v, "BR-22").is_none(), "{v:#?}");
    // Removed, it is missing.
    let removed = replace_first(&doc, "cbc:InvoicedQuantity", "");
    assert!(find(&judge("m.xml", &removed), "BR-22").is_some());
}

#[test]
fn a_cii_breakdown_finding_names_its_breakdown() {
    let doc = fixture("cii/en16931-cii-examples/CII_example1.xml");
    let settlement = doc
        .find("<ram:ApplicableHeaderTradeSettlement")
        .expect("settlement");
    let (head, tail) = doc.split_at(settlement);
    let tail = replace_first(tail, "ram:CalculatedAmount", "");
    let mutated = format!("{head}{tail}");
    let v = judge("m.xml", &mutated);
    let br46 = find(&v, "BR-46").expect("BR-46");
    assert_eq!(
        br46.location.as_deref(),
        Some("/rsm:CrossIndustryInvoice/rsm:SupplyChainTradeTransaction/ram:ApplicableHeaderTradeSettlement/ram:ApplicableTradeTax[1]"),
        "{br46:?}"
    );
    let at = settlement + tail.find("<ram:ApplicableTradeTax").unwrap();
    assert_eq!(
        br46.line,
        Some(mutated[..at].matches('\n').count() as u32 + 1)
    );
    // A header term on its element: a grand total that is not BT-109 + BT-110.
    let g = doc.find("<ram:GrandTotalAmount").expect("grand total");
    let gt = doc[g..].find('>').unwrap() + g + 1;
    let lt = doc[gt..].find('<').unwrap() + gt;
    let changed = format!("{}1.00{}", &doc[..gt], &doc[lt..]);
    let v = judge("m.xml", &changed);
    let co15 = find(&v, "BR-CO-15").unwrap_or_else(|| panic!("{v:#?}"));
    assert_eq!(
        co15.location.as_deref(),
        Some("/rsm:CrossIndustryInvoice/rsm:SupplyChainTradeTransaction/ram:ApplicableHeaderTradeSettlement/ram:SpecifiedTradeSettlementHeaderMonetarySummation/ram:GrandTotalAmount"),
        "{co15:?}"
    );
    assert_eq!(co15.line, Some(line_of(&changed, "<ram:GrandTotalAmount")));
}
