"""Issue 14, crash leftovers: an upload interrupted by a crash (kill -9 of the server mid-body)
leaves a temporary file; `arca admin fsck` reports it with its size, and `arca admin gc` removes it
after its grace period, saying how many and how many bytes. Runs on the disk store and on S3 (the
request body is staged on local disk before it goes to the bucket)."""

from __future__ import annotations

import json
import os
import signal
import threading

import httpx

from tests.pypi_support import form_for, multipart_body, wait_for, wheel_bytes, wheel_filename
from tests.support.server import start_server


def _staged(srv) -> list:
    data = srv.root / "storage"
    return [p for d in (data / "tmp", data / "blobs" / "tmp") if d.is_dir() for p in d.iterdir()
            if p.is_file() and p.stat().st_size > 0]


def test_an_interrupted_upload_is_reported_by_fsck_and_removed_by_gc(tmp_path):
    srv = start_server(tmp_path / "crash")
    try:
        srv.create_repo("crash", "py")
        token = srv.token("crash")
        content = os.urandom(3 * 1024 * 1024)  # stands in for a wheel: the body never completes
        body, ctype = multipart_body(form_for("crashy", "1.0", content), wheel_filename("crashy", "1.0"), content)
        half = len(body) // 2
        gate = threading.Event()

        def chunks():
            yield body[:half]
            gate.wait(120)  # the rest never comes before the server dies
            yield body[half:]

        def upload():
            try:
                httpx.post(srv.endpoint("crash", "pypi", "py"), content=chunks(), auth=("aws", token),
                           headers={"Content-Type": ctype}, timeout=120)
            except httpx.HTTPError:
                pass

        t = threading.Thread(target=upload)
        t.start()
        assert wait_for(lambda: _staged(srv), timeout=60), "the server never staged the body"
        srv.stop(signal.SIGKILL)
        gate.set()
        t.join(120)
        left = _staged(srv)
        assert len(left) == 1
        size = left[0].stat().st_size

        report = json.loads(srv.admin("fsck").stdout)
        assert report["ok"] is True and report["temp_files"] == 1 and report["temp_bytes"] == size
        young = json.loads(srv.admin("gc").stdout)  # default grace period: too young to go
        assert young["temp_cleaned"] == 0 and _staged(srv) == left
        dry = json.loads(srv.admin("gc", "--grace-seconds", "0", "--dry-run").stdout)
        assert dry["temp_cleaned"] == 1 and dry["temp_bytes"] == size and _staged(srv) == left
        gone = json.loads(srv.admin("gc", "--grace-seconds", "0").stdout)
        assert gone["temp_cleaned"] == 1 and gone["temp_bytes"] == size and _staged(srv) == []
        assert json.loads(srv.admin("fsck").stdout)["temp_files"] == 0

        # the server comes back and the upload, sent again, goes through
        srv.start(port=srv.port)
        full = wheel_bytes("crashy", "1.0")
        body, ctype = multipart_body(form_for("crashy", "1.0", full), wheel_filename("crashy", "1.0"), full)
        resp = httpx.post(srv.endpoint("crash", "pypi", "py"), content=body, auth=("aws", srv.token("crash")),
                          headers={"Content-Type": ctype}, timeout=60)
        assert resp.status_code == 200, resp.text
    finally:
        srv.stop()
