#!/usr/bin/env python3
"""A small receiver for Arca's package events that starts a build when a version is published.

    ARCA_WEBHOOK_SECRET=S python examples/webhook_receiver.py --port 9000 \\
        --on-maven 'mvn -B dependency:get -Dartifact={namespace}:{name}:{version}' \\
        --on-pypi 'pip install --index-url "$PIP_INDEX_URL" {name}=={version}'

Register it with `arca admin create-webhook --domain acme --url http://HOST:9000/ --secret S`.
It checks the X-Arca-Signature-256 HMAC, ignores duplicates by eventDeduplicationId (delivery is
at-least-once), and runs the command of the event's format for Published versions."""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import shlex
import subprocess
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SEEN: set[str] = set()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=9000)
    for fmt in ("maven", "pypi", "npm"):
        ap.add_argument(f"--on-{fmt}", help="command; {namespace} {name} {version} {repository} are filled in")
    args = ap.parse_args()
    secret = os.environ.get("ARCA_WEBHOOK_SECRET", "").encode()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            want = "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()
            if secret and not hmac.compare_digest(self.headers.get("X-Arca-Signature-256", ""), want):
                self.send_response(401)
                self.end_headers()
                return
            detail = json.loads(body)["detail"]
            self.send_response(204)  # acknowledge first: the build runs on its own
            self.end_headers()
            if detail["eventDeduplicationId"] in SEEN or detail["packageVersionState"] != "Published":
                return
            SEEN.add(detail["eventDeduplicationId"])
            template = getattr(args, f"on_{detail['packageFormat']}", None)
            if template:
                cmd = template.format(namespace=shlex.quote(detail.get("packageNamespace") or ""),
                                      name=shlex.quote(detail["packageName"]),
                                      version=shlex.quote(detail["packageVersion"]),
                                      repository=shlex.quote(detail["repositoryName"]))
                print("running:", cmd, flush=True)
                subprocess.Popen(cmd, shell=True)

    ThreadingHTTPServer(("0.0.0.0", args.port), Handler).serve_forever()


if __name__ == "__main__":
    main()
