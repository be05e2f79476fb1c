"""A real SMTP server for quai's tests (aiosmtpd).

Usage: python smtp_sink.py PORT OUTDIR [USER:PASSWORD]

Listens on 127.0.0.1:PORT. Every message received is written to OUTDIR as
<n>.eml (the raw bytes) and <n>.json (envelope and the decoded MIME parts:
subject, headers, text and HTML bodies, attachments), the .json last, through
a temporary name, so a reader never sees half a message. With USER:PASSWORD,
AUTH PLAIN/LOGIN is required (over plain TCP: test only).
"""
import email
import email.policy
import json
import os
import signal
import sys
import threading

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


class Sink:
    def __init__(self, out):
        self.out = out
        self.n = 0
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.n += 1
            n = self.n
        raw = envelope.original_content or envelope.content
        if isinstance(raw, str):
            raw = raw.encode("utf-8")
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        parts = {"text": None, "html": None, "attachments": []}
        for part in msg.walk():
            if part.is_multipart():
                continue
            disp = part.get_content_disposition()
            ctype = part.get_content_type()
            if disp == "attachment":
                payload = part.get_payload(decode=True) or b""
                parts["attachments"].append({
                    "filename": part.get_filename(),
                    "content_type": ctype,
                    "content": payload.decode("utf-8", "replace"),
                })
            elif ctype == "text/plain" and parts["text"] is None:
                parts["text"] = part.get_content()
            elif ctype == "text/html" and parts["html"] is None:
                parts["html"] = part.get_content()
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "auth_login": session.auth_data if isinstance(session.auth_data, str) else None,
            "subject": str(msg["subject"]),
            "from": str(msg["from"]),
            "to": str(msg["to"]),
            "message_id": str(msg["message-id"]),
            **parts,
        }
        name = "%06d" % n
        with open(os.path.join(self.out, name + ".eml"), "wb") as f:
            f.write(raw)
        tmp = os.path.join(self.out, "." + name + ".json.tmp")
        with open(tmp, "w") as f:
            json.dump(record, f)
        os.rename(tmp, os.path.join(self.out, name + ".json"))
        return "250 Message accepted for delivery"


def main():
    port = int(sys.argv[1])
    out = sys.argv[2]
    kwargs = {}
    if len(sys.argv) > 3:
        user, password = sys.argv[3].split(":", 1)

        def authenticator(server, session, envelope, mechanism, auth_data):
            ok = (isinstance(auth_data, LoginPassword)
                  and auth_data.login.decode() == user
                  and auth_data.password.decode() == password)
            return AuthResult(success=ok, auth_data=user if ok else None)

        kwargs = dict(authenticator=authenticator, auth_required=True, auth_require_tls=False)
    controller = Controller(Sink(out), hostname="127.0.0.1", port=port, **kwargs)
    controller.start()
    print("READY", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *a: stop.set())
    signal.signal(signal.SIGINT, lambda *a: stop.set())
    stop.wait()
    controller.stop()


if __name__ == "__main__":
    main()
