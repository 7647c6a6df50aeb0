"""Issue 14, remotes: an external connection that answers with a document of the wrong shape (JSON
that is a list, not JSON at all, a truncated packument, a page whose links are garbage, a broken
maven-metadata.xml) gives a 502 whose reason names the remote, never a 500; what was retained
before is still served."""

from __future__ import annotations

import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from tests.pypi_support import wheel_bytes, wheel_filename
from tests.support.server import start_server


class Scripted:
    """A remote that answers each path as the test says: routes[path] = (status, content type, body)."""

    def __init__(self):
        self.routes: dict[str, tuple[int, str, bytes]] = {}
        scripted = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                status, ctype, body = scripted.routes.get(self.path.split("?")[0], (404, "text/plain", b"no\n"))
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def remote():
    r = Scripted()
    try:
        yield r
    finally:
        r.close()


@pytest.fixture(scope="module")
def srv(tmp_path_factory, remote):
    s = start_server(tmp_path_factory.mktemp("remotes"), env={
        "ARCA_EXTERNAL_PUBLIC_PYPI": f"{remote.url}/simple/", "ARCA_EXTERNAL_PUBLIC_NPMJS": f"{remote.url}/npm/",
        "ARCA_EXTERNAL_PUBLIC_MAVEN_CENTRAL": f"{remote.url}/maven2/", "ARCA_UPSTREAM_MAX_AGE": "0",
        "ARCA_UPSTREAM_BREAKER_FAILURES": "1000"})
    c = s.boto()
    c.create_domain(domain="rem")
    for repo, conn in (("py", "public:pypi"), ("js", "public:npmjs"), ("mvn", "public:maven-central")):
        c.create_repository(domain="rem", repository=repo)
        c.associate_external_connection(domain="rem", repository=repo, externalConnection=conn)
    try:
        yield s
    finally:
        s.stop()


def _get(srv, fmt: str, repo: str, path: str, **headers) -> httpx.Response:
    return httpx.get(srv.endpoint("rem", fmt, repo) + path, auth=("aws", srv.token("rem")), headers=headers,
                     timeout=60)


JSON = "application/vnd.pypi.simple.v1+json"


@pytest.mark.parametrize("ctype, body", [
    (JSON, b"[]"),
    (JSON, b"this is not json"),
    (JSON, b'{"files": {"a": 1}}'),
    ("text/html", b'<a href="javascript:alert(1)">x</a><a href="../../etc/passwd#sha256=zz">y.whl</a>'),
])
def test_a_pypi_page_of_the_wrong_shape_is_a_502_naming_the_remote(srv, remote, ctype, body):
    project = "shape" + hashlib.sha1(body).hexdigest()[:8]
    remote.routes[f"/simple/{project}/"] = (200, ctype, body)
    resp = _get(srv, "pypi", "py", f"simple/{project}/")
    assert resp.status_code == 502, resp.text
    assert "public:pypi" in resp.text and f"/simple/{project}/" in resp.text


@pytest.mark.parametrize("body", [
    b"[1, 2, 3]",
    b"<!doctype html><p>maintenance</p>",
    b'{"name": "cut", "versions": {"1.0.0": {"name": "cut", "dist": {"tarb',
    b'{"name": "lst", "versions": ["1.0.0"]}',
    b'"just a string"',
])
def test_an_npm_packument_of_the_wrong_shape_is_a_502_naming_the_remote(srv, remote, body):
    name = "shape" + hashlib.sha1(body).hexdigest()[:8]
    remote.routes[f"/npm/{name}"] = (200, "application/json", body)
    for path in (name, f"{name}/-/{name}-1.0.0.tgz"):
        resp = _get(srv, "npm", "js", path)
        assert resp.status_code == 502, (path, resp.text)
        assert "public:npmjs" in resp.json()["error"]


@pytest.mark.parametrize("body", [b"<metadata><versioning>", b"<html/>", b"\x00\xff garbage"])
def test_a_broken_maven_metadata_is_a_502_naming_the_remote(srv, remote, body):
    artifact = "shape" + hashlib.sha1(body).hexdigest()[:8]
    remote.routes[f"/maven2/org/bad/{artifact}/maven-metadata.xml"] = (200, "text/xml", body)
    resp = _get(srv, "maven", "mvn", f"org/bad/{artifact}/maven-metadata.xml")
    assert resp.status_code == 502 and "public:maven-central" in resp.text, resp.text


def test_what_was_retained_is_still_served_when_the_remote_turns_to_garbage(srv, remote):
    wheel = wheel_bytes("kept", "1.0")
    name = wheel_filename("kept", "1.0")
    sha = hashlib.sha256(wheel).hexdigest()
    remote.routes["/packages/" + name] = (200, "application/octet-stream", wheel)
    page = {"meta": {"api-version": "1.1"}, "name": "kept",
            "files": [{"filename": name, "url": f"{remote.url}/packages/{name}", "hashes": {"sha256": sha}}]}
    remote.routes["/simple/kept/"] = (200, JSON, json.dumps(page).encode())
    assert name in _get(srv, "pypi", "py", "simple/kept/").text
    assert _get(srv, "pypi", "py", f"simple/kept/{name}").content == wheel  # fetched and retained

    remote.routes["/simple/kept/"] = (200, JSON, b"[garbage")
    listed = _get(srv, "pypi", "py", "simple/kept/")
    assert listed.status_code == 200 and name in listed.text
    assert _get(srv, "pypi", "py", f"simple/kept/{name}").content == wheel
    remote.routes["/simple/kept/"] = (500, "text/plain", b"down")
    assert _get(srv, "pypi", "py", f"simple/kept/{name}").content == wheel
