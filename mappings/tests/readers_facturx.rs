//! Factur-X / ZUGFeRD hybrid PDFs: the embedded XML is found, mapped with
//! `syntax = FacturX` and its profile; PDFs without an invoice and broken
//! PDFs are read errors, never panics.

use std::io::Cursor;
use std::path::{Path, PathBuf};

use quai_mappings::facturx;
use quai_mappings::model::{Profile, Severity, Syntax};

fn fx(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/facturx")
        .join(rel)
}

fn read(rel: &str) -> Result<quai_mappings::ReadOutcome, quai_mappings::ReadError> {
    facturx::read(std::fs::File::open(fx(rel)).unwrap())
}

/// Every PDF of the fixtures, with what it must give: `Ok(profile)` or an
/// error message fragment.
const PDFS: &[(&str, Result<Profile, &str>)] = &[
    (
        "akretion-factur-x/invoice_EN16931.pdf",
        Ok(Profile::En16931),
    ),
    (
        "mustang-validator/XMLinvalidV2PDF.pdf",
        Ok(Profile::Extended),
    ),
    ("mustang-validator/invalidXMP.pdf", Ok(Profile::En16931)),
    (
        "mustang-validator/invalidXRechnung.pdf",
        Ok(Profile::Xrechnung),
    ),
    (
        "mustang-validator/validAvoir_FR_type380_BASICWL.pdf",
        Ok(Profile::BasicWl),
    ),
    (
        "mustang-validator/validV1WithAdditionalData.pdf",
        Ok(Profile::Extended),
    ),
    ("mustang-validator/validV2PDF.pdf", Ok(Profile::En16931)),
    (
        "mustang-validator/validXRechnung.pdf",
        Ok(Profile::Xrechnung),
    ),
    (
        "zugferd-corpus/Avoir_FR_type380_MINIMUM.pdf",
        Ok(Profile::Minimum),
    ),
    (
        "zugferd-corpus/Avoir_FR_type381_BASIC.pdf",
        Ok(Profile::Basic),
    ),
    (
        "zugferd-corpus/Facture_UE_BASICWL.pdf",
        Ok(Profile::BasicWl),
    ),
    (
        "zugferd-corpus/ZUGFeRD_1p0_BASIC_Einfach.pdf",
        Ok(Profile::Basic),
    ),
    (
        "zugferd-corpus/ZUGFeRD_1p0_COMFORT_Rabatte.pdf",
        Ok(Profile::En16931),
    ),
    // In the corpus "fail" folder: the XML declares encoding "UTF-8-W/O-BOM".
    (
        "zugferd-corpus/factur-x-invalid-xml-encoding-attribute.pdf",
        Err("unsupported XML encoding"),
    ),
    // ZUGFeRD 1.0 COMFORT ("komfort") from the corpus "fail" folder; its
    // artificial errors are checked in `fail1_syntax_errors_are_found`.
    ("zugferd-corpus/fail1.pdf", Ok(Profile::En16931)),
    ("zugferd-corpus/fail2.pdf", Ok(Profile::En16931)),
    (
        "zugferd-corpus/zugferd_2p0_EN16931_Einfach.pdf",
        Ok(Profile::En16931),
    ),
    (
        "zugferd-corpus/zugferd_2p0_EXTENDED_Warenrechnung.pdf",
        Ok(Profile::Extended),
    ),
];

#[test]
fn every_fixture_pdf_gives_its_expected_outcome() {
    let mut seen = 0;
    for (rel, expected) in PDFS {
        match (read(rel), expected) {
            (Ok(out), Ok(profile)) => {
                assert_eq!(out.invoice.syntax, Some(Syntax::FacturX), "{rel}");
                assert_eq!(out.invoice.profile, Some(*profile), "{rel}");
                assert!(out.invoice.number.is_some(), "{rel}");
                if *rel != "zugferd-corpus/fail1.pdf" {
                    assert!(
                        out.issues.iter().all(|i| i.severity == Severity::Warning),
                        "{rel}: {:?}",
                        out.issues
                    );
                }
            }
            (Err(e), Err(fragment)) => assert!(e.message.contains(fragment), "{rel}: {e}"),
            (got, want) => panic!(
                "{rel}: got {:?}, want {want:?}",
                got.map(|o| o.invoice.profile)
            ),
        }
        seen += 1;
    }
    // The table covers every PDF of the fixtures.
    let mut on_disk = 0;
    for dir in ["akretion-factur-x", "mustang-validator", "zugferd-corpus"] {
        on_disk += std::fs::read_dir(fx(dir))
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .path()
                    .extension()
                    .is_some_and(|x| x == "pdf")
            })
            .count();
    }
    assert_eq!(seen, on_disk);
}

#[test]
fn extract_returns_the_embedded_xml_and_the_xmp_level() {
    let e = facturx::extract(
        std::fs::File::open(fx("zugferd-corpus/Avoir_FR_type380_MINIMUM.pdf")).unwrap(),
    )
    .unwrap();
    assert_eq!(e.file_name, "factur-x.xml");
    assert!(
        e.xml.starts_with(b"<?xml"),
        "{:?}",
        String::from_utf8_lossy(&e.xml[..40])
    );
    assert!(e.conformance_level.is_some());
    let out =
        facturx::read_bytes(&std::fs::read(fx("akretion-factur-x/invoice_EN16931.pdf")).unwrap())
            .unwrap();
    assert_eq!(out.invoice.lines.len(), 3);
}

#[test]
fn bad_xmp_level_is_a_warning() {
    let out = read("mustang-validator/invalidXMP.pdf").unwrap();
    assert!(
        out.issues.iter().any(|i| i.term == "BT-24"
            && i.severity == Severity::Warning
            && i.message.contains("no thing")),
        "{:?}",
        out.issues
    );
}

/// A minimal valid PDF with one page and no attachments, built with lopdf.
fn plain_pdf() -> Vec<u8> {
    use lopdf::{dictionary, Document, Object};
    let mut doc = Document::with_version("1.7");
    let pages_id = doc.new_object_id();
    let page_id = doc.add_object(dictionary! { "Type" => "Page", "Parent" => pages_id, "MediaBox" => vec![0.into(), 0.into(), 595.into(), 842.into()] });
    doc.objects.insert(
        pages_id,
        Object::Dictionary(
            dictionary! { "Type" => "Pages", "Kids" => vec![page_id.into()], "Count" => 1 },
        ),
    );
    let catalog_id = doc.add_object(dictionary! { "Type" => "Catalog", "Pages" => pages_id });
    doc.trailer.set("Root", catalog_id);
    let mut out = Vec::new();
    doc.save_to(&mut out).unwrap();
    out
}

#[test]
fn pdf_without_embedded_invoice_is_a_read_error() {
    let e = facturx::read(Cursor::new(plain_pdf())).unwrap_err();
    assert_eq!(e.message, "PDF has no embedded Factur-X/ZUGFeRD XML");
}

#[test]
fn broken_pdfs_never_panic() {
    let good = std::fs::read(fx("zugferd-corpus/Avoir_FR_type380_MINIMUM.pdf")).unwrap();
    // Truncations.
    for cut in [10, 1000, good.len() / 3, good.len() / 2, good.len() - 10] {
        let _ = facturx::read_bytes(&good[..cut]);
    }
    // Deterministic byte flips (xorshift), 200 variants.
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut errors = 0;
    for _ in 0..200 {
        let mut m = good.clone();
        for _ in 0..8 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let i = (x as usize) % m.len();
            m[i] ^= (x >> 32) as u8 | 1;
        }
        if facturx::read_bytes(&m).is_err() {
            errors += 1;
        }
    }
    eprintln!("{errors}/200 mutated PDFs were read errors, the rest still mapped");
    assert!(facturx::read_bytes(b"%PDF-1.4\n%%EOF").is_err());
}

#[test]
fn fail1_syntax_errors_are_found() {
    // The corpus "fail" sample writes its issue date with format "1020" and
    // a VAT rate "19.00e".
    let out = read("zugferd-corpus/fail1.pdf").unwrap();
    let terms: Vec<_> = out
        .issues
        .iter()
        .map(|i| (i.rule.as_str(), i.term.as_str()))
        .collect();
    assert_eq!(
        terms,
        [("SYNTAX", "BT-2"), ("SYNTAX", "BT-152")],
        "{:?}",
        out.issues
    );
    assert_eq!(out.invoice.issue_date, None);
}
