//! The EDIFACT INVOIC D96A writer: interchange header, messages, trailer.

use std::fmt::Write as _;

use super::invoice::GenInvoice;
use super::text::{a2, cii_date, rate_str};

/// EDIFACT text value with the release character applied.
fn edi(out: &mut String, s: &str) {
    for c in s.chars() {
        if matches!(c, '?' | '+' | ':' | '\'') {
            out.push('?');
        }
        out.push(c);
    }
}

/// One INVOIC D96A message (UNH .. UNT) with reference `msg_ref`.
pub fn write_edifact_message(inv: &GenInvoice, msg_ref: usize, out: &mut String) {
    let start = out.len();
    let mut segs = 0usize;
    let mut seg = |out: &mut String, f: &dyn Fn(&mut String)| {
        f(out);
        out.push_str("'\n");
        segs += 1;
    };
    seg(out, &|o| {
        let _ = write!(o, "UNH+{msg_ref}+INVOIC:D:96A:UN:EAN008");
    });
    seg(out, &|o| {
        o.push_str("BGM+380+");
        edi(o, &inv.number);
        o.push_str("+9");
    });
    seg(out, &|o| {
        let _ = write!(o, "DTM+137:{}:102", cii_date(inv.issue_date));
    });
    seg(out, &|o| {
        let _ = write!(o, "DTM+35:{}:102", cii_date(inv.delivery_date));
    });
    seg(out, &|o| o.push_str("FTX+DOC+++urn?:cen.eu?:en16931?:2017"));
    seg(out, &|o| {
        o.push_str("FTX+AAB+++");
        edi(o, "Paiement à 30 jours fin de mois");
    });
    seg(out, &|o| {
        o.push_str("RFF+ON:");
        edi(o, &inv.order_reference);
    });
    for (qual, p) in [("SE", &inv.seller), ("BY", &inv.buyer)] {
        seg(out, &|o| {
            let _ = write!(o, "NAD+{qual}+{}00011:0009++", p.siren);
            if let Some(name) = &p.name {
                edi(o, name);
            }
            o.push('+');
            edi(o, &p.street);
            o.push('+');
            edi(o, &p.city);
            let _ = write!(o, "++{}+{}", p.post_code, p.country);
        });
        if qual == "SE" {
            seg(out, &|o| {
                let _ = write!(o, "FII+RB+{}:Compte courant+BNPAFRPPXXX", inv.iban);
            });
        }
        seg(out, &|o| {
            let _ = write!(o, "RFF+VA:{}", p.vat_id);
        });
        seg(out, &|o| {
            let _ = write!(o, "RFF+GN:{}", p.siren);
        });
    }
    seg(out, &|o| {
        let _ = write!(o, "CUX+2:{}:4", inv.currency);
    });
    seg(out, &|o| o.push_str("PAT+1"));
    seg(out, &|o| {
        let _ = write!(o, "DTM+13:{}:102", cii_date(inv.due_date));
    });
    seg(out, &|o| o.push_str("PAI+::30"));
    for l in &inv.lines {
        seg(out, &|o| {
            let _ = write!(o, "LIN+{}", l.id);
        });
        seg(out, &|o| {
            let _ = write!(o, "PIA+5+{}:SA", l.seller_item_id);
        });
        seg(out, &|o| {
            o.push_str("IMD+F++:::");
            edi(o, &l.item_name);
        });
        seg(out, &|o| {
            let _ = write!(o, "QTY+47:{}:{}", l.quantity, l.unit);
        });
        seg(out, &|o| {
            let _ = write!(o, "MOA+203:{}", a2(l.net));
        });
        seg(out, &|o| {
            let _ = write!(o, "PRI+AAA:{}:::1:{}", a2(l.price), l.unit);
        });
        seg(out, &|o| {
            let _ = write!(o, "TAX+7+VAT+++:::{}+S", rate_str(l.rate));
        });
    }
    seg(out, &|o| o.push_str("UNS+S"));
    seg(out, &|o| {
        let _ = write!(o, "MOA+79:{}", a2(inv.line_total));
    });
    seg(out, &|o| {
        let _ = write!(o, "MOA+389:{}", a2(inv.without_vat));
    });
    seg(out, &|o| {
        let _ = write!(o, "MOA+176:{}", a2(inv.vat_total));
    });
    seg(out, &|o| {
        let _ = write!(o, "MOA+388:{}", a2(inv.with_vat));
    });
    seg(out, &|o| {
        let _ = write!(o, "MOA+9:{}", a2(inv.due));
    });
    for b in &inv.breakdown {
        seg(out, &|o| {
            let _ = write!(o, "TAX+7+VAT+++:::{}+S", rate_str(b.rate));
        });
        seg(out, &|o| {
            let _ = write!(o, "MOA+125:{}", a2(b.taxable));
        });
        seg(out, &|o| {
            let _ = write!(o, "MOA+124:{}", a2(b.tax));
        });
    }
    let count = segs + 1;
    let _ = writeln!(out, "UNT+{count}+{msg_ref}'");
    debug_assert!(out.len() > start);
}

/// The interchange header (UNA, UNB) of an EDIFACT flow.
pub fn write_edifact_header(control_ref: &str, out: &mut String) {
    let _ = writeln!(
        out,
        "UNA:+.? '\nUNB+UNOC:3+3012345000013:14+3019876000015:14+250102:0900+{control_ref}'"
    );
}

/// The interchange trailer (UNZ) for `messages` messages.
pub fn write_edifact_trailer(control_ref: &str, messages: usize, out: &mut String) {
    let _ = writeln!(out, "UNZ+{messages}+{control_ref}'");
}
