#!/usr/bin/env python3
"""Validate CDAR lifecycle status files against the official schemas.

For each file given on the command line, print one JSON object on one line:

    {"file": ..., "xsd_errors": [{"line": N, "message": ...}],
     "schematron": [{"kind": "failed-assert"|"successful-report",
                     "id": ..., "flag": ..., "role": ..., "location": ...,
                     "text": ...}],
     "ok": true|false}

* XSD: UN/CEFACT CrossDomainAcknowledgementAndResponse D22B
  (`CrossDomainAcknowledgementAndResponse_100pD22B.xsd` and the code-list /
  data-type schemas it imports), validated with lxml.
* Schematron: the French reform's BR-FR-CDV rules, shipped compiled to an
  XSLT 2.0 stylesheet; run with Saxon (saxonche), since lxml/libxslt only
  does XSLT 1.0. Its SVRL output is parsed for failed asserts and
  successful reports.

Both come from the PyPI package `pyfrctc` (LGPL-2.1+, Akretion), located
with importlib without importing it (its import pulls network libraries
we do not need). `ok` is false on any XSD error or any schematron finding
whose flag (or role) is `fatal` or `error`; warnings are reported but do
not make a file fail.

Exit status: 0 when every file is ok, 1 when some file is not, 2 when the
schemas or the validators are missing (never a silent pass).
"""

import importlib.util
import json
import os
import sys

SVRL = "http://purl.oclc.org/dsdl/svrl"
XSD_NAME = "CrossDomainAcknowledgementAndResponse_100pD22B.xsd"
XSLT_NAME = "BR-FR-CDV-Schematron-CDAR.xslt"
BLOCKING = {"fatal", "error"}


def die(msg):
    print(json.dumps({"setup_error": msg}), flush=True)
    sys.exit(2)


def locate():
    spec = importlib.util.find_spec("pyfrctc")
    if spec is None or not spec.submodule_search_locations:
        die("the Python package pyfrctc is not installed in this interpreter")
    root = list(spec.submodule_search_locations)[0]
    xsd = os.path.join(root, "cdar-xsd", XSD_NAME)
    xslt = os.path.join(root, "cdar-schematron", XSLT_NAME)
    for f in (xsd, xslt):
        if not os.path.isfile(f):
            die("pyfrctc has no " + f)
    return xsd, xslt


def main(argv):
    if len(argv) < 2:
        die("usage: check_cdar.py FILE.xml...")
    xsd_path, xslt_path = locate()
    try:
        from lxml import etree
    except ImportError:
        die("lxml is not installed")
    try:
        from saxonche import PySaxonProcessor
    except ImportError:
        die("saxonche is not installed")

    schema = etree.XMLSchema(etree.parse(xsd_path))
    all_ok = True
    with PySaxonProcessor(license=False) as proc:
        xslt = proc.new_xslt30_processor()
        exe = xslt.compile_stylesheet(stylesheet_file=xslt_path)
        if exe is None:
            die("Saxon could not compile " + xslt_path)
        for path in argv[1:]:
            res = {"file": path, "xsd_errors": [], "schematron": []}
            try:
                doc = etree.parse(path)
            except (etree.XMLSyntaxError, OSError) as e:
                res["xsd_errors"].append(
                    {"line": getattr(e, "lineno", 0), "message": "not readable XML: " + str(e)}
                )
                res["ok"] = False
                all_ok = False
                print(json.dumps(res, ensure_ascii=False), flush=True)
                continue
            if not schema.validate(doc):
                for e in schema.error_log:
                    res["xsd_errors"].append({"line": e.line, "message": e.message})
            svrl_text = exe.transform_to_string(source_file=os.path.abspath(path))
            if svrl_text is None:
                die("Saxon produced no SVRL for " + path + ": " + str(exe.error_message))
            svrl = etree.fromstring(svrl_text.encode("utf-8"))
            for el in svrl.iter("{%s}failed-assert" % SVRL, "{%s}successful-report" % SVRL):
                text = el.find("{%s}text" % SVRL)
                res["schematron"].append(
                    {
                        "kind": etree.QName(el).localname,
                        "id": el.get("id"),
                        "flag": el.get("flag"),
                        "role": el.get("role"),
                        "location": el.get("location"),
                        "text": " ".join((text.text or "").split()) if text is not None else "",
                    }
                )
            blocking = [
                s
                for s in res["schematron"]
                if (s["flag"] or "").lower() in BLOCKING or (s["role"] or "").lower() in BLOCKING
            ]
            res["ok"] = not res["xsd_errors"] and not blocking
            all_ok = all_ok and res["ok"]
            print(json.dumps(res, ensure_ascii=False), flush=True)
    return 0 if all_ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
