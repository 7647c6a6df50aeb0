"""npm search and npm audit with the real npm: search over the repository (and its upstreams),
merged with the external connection's answer; audit forwarded to the external connection's
registry, and a clear refusal that npm prints when there is none. The remote registry is a small
scripted HTTP server on loopback that records what it was asked."""

from __future__ import annotations

import gzip
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.npm_support import Registry, write_consumer, write_npmrc
from tests.support.server import start_server

ADVISORY = {"id": 1099, "url": "https://advisories.invalid/1099", "title": "Prototype pollution in widget",
            "severity": "high", "vulnerable_versions": "<2.0.0", "cwe": ["CWE-1321"],
            "cvss": {"score": 7.5, "vectorString": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:H/A:N"}}


class ScriptedRegistry:
    """Answers `-/v1/search` with `search_answer` and the audit endpoints with `audit_answer` (bytes,
    or a dict as JSON), recording every request as (method, path, body)."""

    def __init__(self):
        self.requests: list[tuple[str, str, bytes]] = []
        self.search_answer: object = {"objects": [], "total": 0}
        self.audit_answer: object = {}
        reg = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _answer(self, answer):
                data = answer if isinstance(answer, bytes) else json.dumps(answer).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                reg.requests.append(("GET", self.path, b""))
                if urlsplit(self.path).path == "/-/v1/search":
                    return self._answer(reg.search_answer)
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                reg.requests.append(("POST", self.path, body))
                self._answer(reg.audit_answer)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/"

    def posts(self) -> list[tuple[str, bytes]]:
        return [(p, b) for m, p, b in self.requests if m == "POST"]

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def remote():
    r = ScriptedRegistry()
    yield r
    r.close()


@pytest.fixture(scope="module")
def arca(tmp_path_factory, remote):
    srv = start_server(tmp_path_factory.mktemp("arca-search"), env={
        "ARCA_EXTERNAL_PUBLIC_NPMJS": remote.url, "ARCA_UPSTREAM_MAX_AGE": "0",
        "ARCA_UPSTREAM_BREAKER_FAILURES": "1000"})
    yield srv
    srv.stop()


def registry(arca, unique, tmp_path, *, connected: bool) -> Registry:
    """`libs` (the packages published here) and `app` reading through it; with `connected`, `libs`
    has the public:npmjs connection (the scripted registry)."""
    d = f"s{unique}"
    c = arca.boto()
    c.create_domain(domain=d)
    c.create_repository(domain=d, repository="libs")
    if connected:
        c.associate_external_connection(domain=d, repository="libs", externalConnection="public:npmjs")
    c.create_repository(domain=d, repository="app", upstreams=[{"repositoryName": "libs"}])
    token = arca.token(d)
    libs = Registry(arca, d, "libs", token, tmp_path / "libs")
    write_npmrc(libs.npmrc, libs.url, token)
    libs.publish("widget", "1.0.0", extra={"description": "The widget", "keywords": ["ui"]})
    libs.publish("widgetry", "0.3.0", extra={"description": "Tools"})
    libs.publish("@acme/widget-kit", "2.1.0", extra={"description": "Kit"})
    libs.publish("gadget", "1.2.0", extra={"description": "Works with any widget", "keywords": ["gizmo"]})
    libs.publish("unrelated", "1.0.0", extra={"description": "Nothing to see"})
    app = Registry(arca, d, "app", token, tmp_path / "app")
    write_npmrc(app.npmrc, app.url, token)
    return app


def names(objects) -> list[str]:
    return [o["name"] for o in objects]


# ---- search --------------------------------------------------------------------------------------

def test_npm_search_ranks_by_name_match_through_upstreams(arca, unique, tmp_path):
    app = registry(arca, unique, tmp_path, connected=False)
    found = app.npm_json("search", "widget")  # asked of `app`; the packages live in its upstream
    assert names(found) == ["widget", "@acme/widget-kit", "widgetry", "gadget"]
    first = found[0]
    assert first["version"] == "1.0.0" and first["description"] == "The widget" and first["keywords"] == ["ui"]
    assert names(app.npm_json("search", "gizmo")) == ["gadget"]  # a keyword
    assert names(app.npm_json("search", "@acme/widget-kit")) == ["@acme/widget-kit"]  # scoped names
    assert names(app.npm_json("search", "widget", "tools")) == ["widgetry"]  # every word must match
    assert app.npm_json("search", "nothing-like-it") == []
    plain = app.npm("search", "widget").stdout  # what a person sees
    assert "widget" in plain and "The widget" in plain


def test_search_merges_the_external_connection_answer(arca, remote, unique, tmp_path):
    app = registry(arca, unique, tmp_path, connected=True)
    remote.search_answer = {"total": 3, "objects": [
        {"package": {"name": "widget", "version": "9.9.9", "description": "public widget"}},
        {"package": {"name": "widget-public", "version": "1.0.0", "description": "from the registry",
                     "maintainers": [{"username": "someone"}], "date": "2024-01-02T03:04:05.000Z"}},
        {"package": {"name": "zebra", "version": "1.0.0", "description": "no match here"}},
        "junk", {"package": {"name": 7}}]}
    found = app.npm_json("search", "widget")
    # The local widget shadows the remote one; the remote's own match is ranked among the local ones.
    assert names(found) == ["widget", "@acme/widget-kit", "widget-public", "widgetry", "gadget"]
    assert found[0]["version"] == "1.0.0"
    assert any(m == "GET" and "/-/v1/search?" in p and parse_qs(urlsplit(p).query)["text"] == ["widget"]
               for m, p, _ in remote.requests)
    # A remote answering nonsense adds nothing, and the search still answers.
    remote.search_answer = b"<html>not json"
    assert names(app.npm_json("search", "widget")) == ["widget", "@acme/widget-kit", "widgetry", "gadget"]
    remote.search_answer = {"objects": [], "total": 0}


def test_search_paging_and_bad_queries(arca, unique, tmp_path):
    app = registry(arca, unique, tmp_path, connected=False)
    with app.http() as c:
        page = c.get("-/v1/search", params={"text": "widget", "size": 2, "from": 1}).json()
        assert [o["package"]["name"] for o in page["objects"]] == ["@acme/widget-kit", "widgetry"]
        assert page["total"] == 4
        assert page["objects"][0]["package"]["scope"] == "acme" and page["objects"][0]["searchScore"] > 0
        for params, word in (({"text": "widget", "size": "abc"}, "size"), ({"text": "widget", "size": "0"}, "size"),
                             ({"text": "widget", "from": "-1"}, "from"), ({}, "text"), ({"text": "x" * 300}, "text")):
            r = c.get("-/v1/search", params=params)
            assert r.status_code == 400 and word in r.json()["error"], (params, r.text)
    with httpx.Client(base_url=app.url) as anon:
        assert anon.get("-/v1/search", params={"text": "widget"}).status_code == 401


# ---- audit ---------------------------------------------------------------------------------------

def installed_project(app: Registry):
    project = write_consumer(app.root / "consumer", {"widget": "^1.0.0", "gadget": "^1.2.0"})
    app.npm("install", cwd=project)
    return project


def test_npm_audit_is_forwarded_to_the_external_connection(arca, remote, unique, tmp_path):
    app = registry(arca, unique, tmp_path, connected=True)
    project = installed_project(app)
    remote.audit_answer = {"widget": [ADVISORY]}
    before = len(remote.posts())
    proc = app.npm("audit", "--json", "--audit=true", cwd=project, check=False)
    report = json.loads(proc.stdout)
    assert proc.returncode == 1  # npm's exit code when it found vulnerabilities
    assert report["vulnerabilities"]["widget"]["severity"] == "high"
    assert report["metadata"]["vulnerabilities"]["high"] == 1
    path, body = remote.posts()[before]
    assert path == "/-/npm/v1/security/advisories/bulk"
    assert json.loads(body) == {"widget": ["1.0.0"], "gadget": ["1.2.0"]}  # forwarded as plain JSON
    remote.audit_answer = {}
    clean = app.npm("audit", "--audit=true", cwd=project)
    assert "found 0 vulnerabilities" in clean.stdout


def test_npm_audit_without_a_connection_says_why(arca, remote, unique, tmp_path):
    app = registry(arca, unique, tmp_path, connected=False)
    project = installed_project(app)
    before = len(remote.requests)
    proc = app.npm("audit", "--audit=true", cwd=project, check=False)
    assert proc.returncode != 0
    out = proc.stdout + proc.stderr
    assert "npm warn audit 501" in out and "no external connection to an npm registry" in out
    assert "audit endpoint returned an error" in out
    assert len(remote.requests) == before
    with app.http() as c:
        for path in ("-/npm/v1/security/advisories/bulk", "-/npm/v1/security/audits/quick"):
            r = c.post(path, json={"widget": ["1.0.0"]})
            assert r.status_code == 501 and "associate-external-connection" in r.json()["error"]


def test_hostile_audit_requests_and_answers(arca, remote, unique, tmp_path):
    app = registry(arca, unique, tmp_path, connected=True)
    bulk = "-/npm/v1/security/advisories/bulk"
    before = len(remote.posts())
    with app.http() as c:
        bad = [(b"not gzip", {"Content-Encoding": "gzip"}, "gzip"),
               (gzip.compress(b"[1, 2]"), {"Content-Encoding": "gzip"}, "JSON object"),
               (b'{"widget": "1.0.0"}', {}, "lists of versions"),
               (b"{", {}, "not valid JSON"),
               (b"{}", {"Content-Encoding": "br"}, "Content-Encoding"),
               (gzip.compress(b" " * (65 * 1024 * 1024)), {"Content-Encoding": "gzip"}, "decompresses")]
        for body, headers, word in bad:
            r = c.post(bulk, content=body, headers={"Content-Type": "application/json", **headers})
            assert r.status_code in (400, 413) and word in r.json()["error"], (word, r.status_code, r.text)
        assert len(remote.posts()) == before  # nothing refused was forwarded
        for answer in (b"<html>", b"[]", b"null"):
            remote.audit_answer = answer
            r = c.post(bulk, json={"widget": ["1.0.0"]})
            assert r.status_code == 502 and "not a JSON object" in r.json()["error"]
        remote.audit_answer = {}
        assert c.post(bulk, content=gzip.compress(b'{"widget":["1.0.0"]}'),
                      headers={"Content-Encoding": "gzip", "Content-Type": "application/json"}).json() == {}
