#!/usr/bin/env python3
"""An AS2 partner built on pyas2lib, the independent implementation quai's
AS2 receiver is tested against.

Usage: peer.py CONFIG.json            send one message (or several) to quai
       peer.py --receive CONFIG.json  be an AS2 receiver for quai's sender

The config (written by test-support/src/as2peer.rs) says how to
build the message (sign / encrypt / compress, MDN mode, signed MDN), where to
POST it, and optional faults (tampering, a fixed Message-ID sent several
times). For every send the script verifies the MDN with pyas2lib's own
`Mdn.parse` (signature with quai's certificate, status, MIC comparison) and
prints one JSON document on stdout that the Rust test asserts.
"""

import base64
import hashlib
import http.server
import json
import queue
import re
import sys
import threading
import urllib.error
import urllib.request
from email import encoders
from email import message as email_message

from pyas2lib import Mdn, Message, Organization, Partner
from pyas2lib.utils import mime_to_bytes


def read(path):
    with open(path, "rb") as f:
        return f.read()


class MdnCatcher:
    """A small HTTP server receiving asynchronous MDNs."""

    def __init__(self):
        self.received = queue.Queue()
        catcher = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                catcher.received.put((list(self.headers.items()), body))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d/mdn" % self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def wait(self, timeout):
        try:
            return self.received.get(timeout=timeout)
        except queue.Empty:
            return None

    def close(self):
        self.server.shutdown()


def plain_entity(cfg, data):
    """The payload MIME entity exactly as pyas2lib's Message.build makes it."""
    payload = email_message.Message()
    payload.set_payload(data)
    payload.set_type(cfg["content_type"])
    if cfg["content_type"].lower().startswith("application/octet-stream"):
        payload["Content-Transfer-Encoding"] = "binary"
    else:
        encoders.encode_7or8bit(payload)
    if cfg.get("filename"):
        payload.add_header("Content-Disposition", "attachment", filename=cfg["filename"])
    del payload["MIME-Version"]
    return payload


def expected_mic(cfg, message, data, headers, body):
    """The MIC the receiver must report (RFC 4130 section 7.3.1).

    Signed: pyas2lib's own MIC over the signed part. Unsigned: the digest of
    the payload's MIME entity; when that entity travelled unwrapped its header
    fields are the HTTP Content-Type / Content-Disposition /
    Content-Transfer-Encoding (quai's documented convention)."""
    alg = (cfg.get("mdn_digest_alg") or "sha256").replace("-", "")
    if message.mic:
        return message.mic.decode()
    if cfg.get("encrypt") or cfg.get("compress"):
        entity = mime_to_bytes(plain_entity(cfg, data))
    else:
        lower = {k.lower(): v for k, v in headers.items()}
        entity = b""
        for name in ("Content-Type", "Content-Disposition", "Content-Transfer-Encoding"):
            if name.lower() in lower:
                entity += ("%s: %s\r\n" % (name, lower[name.lower()])).encode()
        entity += b"\r\n" + body
    return base64.b64encode(hashlib.new(alg, entity).digest()).decode()


def post(url, headers, body, timeout):
    req = urllib.request.Request(url, data=body, method="POST")
    for k, v in headers.items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, list(resp.headers.items()), resp.read()
    except urllib.error.HTTPError as e:
        return e.code, list(e.headers.items()), e.read()


def mdn_fields(raw):
    text = raw.decode("utf-8", "replace")
    out = {}
    m = re.search(r"(?im)^Received-Content-MIC:\s*([^,\r\n]+)\s*,\s*([^\r\n]+)", text)
    if m:
        out["mdn_mic"] = m.group(1).strip()
        out["mdn_mic_alg"] = m.group(2).strip()
    m = re.search(r"(?im)^Disposition:\s*([^\r\n]+)", text)
    if m:
        out["mdn_disposition"] = m.group(1).strip()
    m = re.search(r"(?im)^Original-Message-ID:\s*([^\r\n]+)", text)
    if m:
        out["mdn_original_message_id"] = m.group(1).strip()
    return out


def raw_message(headers, body):
    head = "".join("%s: %s\r\n" % (k, v) for k, v in headers)
    return head.encode("utf-8") + b"\r\n" + body


def main():
    cfg = json.loads(read(sys.argv[1]))
    catcher = MdnCatcher() if cfg.get("mdn_mode") == "ASYNC" else None

    sender = Organization(
        as2_name=cfg["sender_as2"],
        sign_key=read(cfg["sender_key"]) + read(cfg["sender_cert"]),
        mdn_url=catcher.url if catcher else None,
    )
    quai_cert = read(cfg["receiver_cert"])
    receiver = Partner(
        as2_name=cfg["receiver_as2"],
        verify_cert=quai_cert,
        encrypt_cert=read(cfg["encrypt_cert"]) if cfg.get("encrypt_cert") else quai_cert,
        sign=cfg.get("sign", False),
        encrypt=cfg.get("encrypt", False),
        compress=cfg.get("compress", False),
        digest_alg=cfg.get("digest_alg", "sha256"),
        enc_alg=cfg.get("enc_alg", "aes_256_cbc"),
        mdn_mode=cfg.get("mdn_mode"),
        mdn_digest_alg=cfg.get("mdn_digest_alg"),
    )
    data = read(cfg["payload"])
    results = []
    for _ in range(int(cfg.get("repeat", 1))):
        message = Message(sender, receiver)
        message.build(
            data,
            filename=cfg.get("filename"),
            content_type=cfg["content_type"],
            message_id=cfg.get("message_id"),
        )
        headers = dict(message.headers)
        for k, v in cfg.get("override_headers", {}).items():
            for existing in [h for h in headers if h.lower() == k.lower()]:
                del headers[existing]
            if v is not None:
                headers[k] = v
        body = message.content
        if cfg.get("tamper"):
            marker = b"TAMPERME"
            if marker not in body:
                raise SystemExit("tamper marker not found in the built message")
            body = body.replace(marker, b"TAMPERED", 1)

        result = {
            "message_id": "<%s>" % message.message_id,
            "expected_mic": expected_mic(cfg, message, data, headers, body),
        }
        if cfg.get("cut_body"):
            # Declare the full length but send only part of it, then close.
            result["http_status"] = cut_short(cfg["url"], headers, body)
            results.append(result)
            continue

        status, resp_headers, resp_body = post(cfg["url"], headers, body, cfg.get("timeout", 60))
        result["http_status"] = status
        result["response_body"] = resp_body.decode("utf-8", "replace")[:2000]
        mdn_raw = None
        if status == 200 and cfg.get("mdn_mode") == "SYNC":
            mdn_raw = raw_message(resp_headers, resp_body)
        elif status == 200 and catcher:
            got = catcher.wait(cfg.get("async_wait", 30))
            if got is not None:
                mdn_raw = raw_message(got[0], got[1])
        if mdn_raw is not None:
            mdn = Mdn()
            mdn_status, detailed = mdn.parse(mdn_raw, find_message_cb=lambda mid, rcpt: message)
            result["mdn_status"] = mdn_status
            result["mdn_detailed_status"] = detailed
            result["mdn_message_id"] = mdn.message_id
            result["mdn_orig_message_id"] = mdn.orig_message_id
            result["mdn_signed"] = b"multipart/signed" in mdn_raw.split(b"\r\n\r\n", 1)[0].lower()
            result["mdn_body_sha256"] = hashlib.sha256(mdn_raw.split(b"\r\n\r\n", 1)[1]).hexdigest()
            result.update(mdn_fields(mdn_raw))
        results.append(result)

    if catcher:
        catcher.close()
    print(json.dumps({"results": results}))


def cut_short(url, headers, body):
    import socket
    from urllib.parse import urlparse

    u = urlparse(url)
    sock = socket.create_connection((u.hostname, u.port), timeout=30)
    head = "POST %s HTTP/1.1\r\nHost: %s:%d\r\n" % (u.path, u.hostname, u.port)
    for k, v in headers.items():
        head += "%s: %s\r\n" % (k, v)
    head += "Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body)
    sock.sendall(head.encode() + body[: len(body) // 2])
    sock.shutdown(socket.SHUT_WR)
    reply = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            break
        reply += chunk
    sock.close()
    m = re.match(rb"HTTP/1\.[01] (\d{3})", reply)
    return int(m.group(1)) if m else None


def cms_encryption(content_type, body):
    """The content-encryption algorithm of an EnvelopedData body, as
    asn1crypto names it (aes256_cbc, tripledes_3key...); pyas2lib does not
    report it for AES."""
    if "enveloped-data" not in content_type.lower():
        return None
    from asn1crypto import cms
    info = cms.ContentInfo.load(body)["content"]["encrypted_content_info"]
    return info["content_encryption_algorithm"]["algorithm"].native


def receive(cfg):
    """An AS2 receiver: every POST is parsed with pyas2lib's Message.parse
    (decrypting with our key, verifying with quai's certificate), answered
    with the MDN pyas2lib builds (synchronously), and recorded as one JSON
    line in cfg["record"]: the payload bytes (base64), whether the message
    was signed / encrypted / compressed, the MIC pyas2lib computed and the
    disposition it reported. Faults on request: a fixed HTTP status instead
    of processing, an MDN with a wrong MIC, an MDN altered after signing,
    never signing MDNs, HTTP 503 (recorded as {"unavailable": filename}) for
    the first `unavailable_times` files named *`unavailable_for_suffix`.
    Prints {"port": N} once listening."""
    import logging
    # Refusals are expected in these tests; their tracebacks are noise.
    logging.getLogger("pyas2lib").setLevel(logging.CRITICAL)
    sign_key = read(cfg["org_key"]) + read(cfg["org_cert"])
    org = Organization(
        as2_name=cfg["org_as2"],
        sign_key=None if cfg.get("mdn_never_signed") else sign_key,
        decrypt_key=sign_key,
    )
    quai = Partner(
        as2_name=cfg["partner_as2"],
        verify_cert=read(cfg["partner_cert"]),
        sign=cfg.get("require_signed", False),
        encrypt=cfg.get("require_encrypted", False),
    )
    record_lock = threading.Lock()

    def find_org_partner(org_id, partner_id):
        return (org if org_id == org.as2_name else None,
                quai if partner_id == quai.as2_name else None)

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            if cfg.get("http_status"):
                text = b"refused by test configuration\r\n"
                self.send_response(int(cfg["http_status"]))
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(text)))
                self.end_headers()
                self.wfile.write(text)
                return
            raw = raw_message(self.headers.items(), body)
            message = Message()
            status, (exc, _tb), mdn = message.parse(raw, find_org_partner_cb=find_org_partner)
            entry = {
                "message_id": "<%s>" % message.message_id,
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "status": status,
                "exception": str(exc) if exc else None,
                "signed": bool(message.signed),
                "encrypted": bool(message.encrypted),
                "compressed": bool(message.compressed),
                "digest_alg": message.digest_alg,
                "enc_alg": message.enc_alg,
                "mic": message.mic.decode() if message.mic else None,
                "cms_enc_alg": cms_encryption(self.headers.get("Content-Type", ""), body),
            }
            suffix = cfg.get("unavailable_for_suffix")
            if status == "processed" and suffix and (message.payload.get_filename() or "").endswith(suffix):
                with record_lock:
                    refused = receive.refused = getattr(receive, "refused", 0) + 1
                if refused <= int(cfg.get("unavailable_times", 1)):
                    # Parsed, then answered "try later": nothing is kept.
                    with record_lock:
                        with open(cfg["record"], "a") as f:
                            f.write(json.dumps({"unavailable": message.payload.get_filename()}) + "\n")
                    text = b"temporarily unavailable\r\n"
                    self.send_response(503)
                    self.send_header("Content-Type", "text/plain")
                    self.send_header("Content-Length", str(len(text)))
                    self.end_headers()
                    self.wfile.write(text)
                    return
            if status == "processed":
                content = message.content
                entry["payload_hex"] = content.hex()
                entry["content_type"] = message.payload.get_content_type()
                entry["filename"] = message.payload.get_filename()
            if mdn is None:
                answer_headers, answer = [("Content-Type", "text/plain")], b"no MDN requested\r\n"
            else:
                answer_headers = list(mdn.headers.items())
                answer = mdn.content
                entry["mdn_signed"] = b"multipart/signed" in mdn.headers.get("Content-Type", "").encode()
                if cfg.get("mdn_wrong_mic") and message.mic:
                    answer = answer.replace(message.mic, b"AAAA" + message.mic[4:], 1)
                if cfg.get("mdn_tamper"):
                    answer = answer.replace(b"Original-Recipient", b"Original-Recipienx", 1)
            with record_lock:
                with open(cfg["record"], "a") as f:
                    f.write(json.dumps(entry) + "\n")
                    f.flush()
            self.send_response(200)
            for k, v in answer_headers:
                if k.lower() not in ("content-length", "transfer-encoding", "connection"):
                    self.send_header(k, v)
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", int(cfg.get("port", 0))), Handler)
    print(json.dumps({"port": server.server_address[1]}), flush=True)
    server.serve_forever()


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--receive":
        receive(json.loads(read(sys.argv[2])))
    else:
        main()
