"""The shared upstream engine, through the PyPI format: resolution order, statuses in upstreams,
the remote client's timeout, circuit breaker and max-age."""

from __future__ import annotations

import hashlib
import socket
import threading
import time

import httpx
import pytest

from tests.pypi_support import form_for, raw_upload, wait_for, wheel_bytes, wheel_filename
from tests.support.server import start_server
from tests.upstream_support import Remote, start_static

JSON = "application/vnd.pypi.simple.v1+json"


def _upload(server, d, repo, name, version, module_source=None):
    data = wheel_bytes(name, version, module_source=module_source)
    r = raw_upload(server.endpoint(d, "pypi", repo), server.token(d), form_for(name, version, data),
                   wheel_filename(name, version), data)
    assert r.status_code == 200, r.text
    return data


def _get(server, d, repo, path, **headers):
    return httpx.get(server.endpoint(d, "pypi", repo) + path, auth=("aws", server.token(d)), headers=headers,
                     timeout=30)


def test_resolution_order_is_depth_first_and_first_hit_wins(server, domain, unique):
    c = server.boto()
    d = domain
    for repo in ("deep", "second"):
        c.create_repository(domain=d, repository=repo)
    c.create_repository(domain=d, repository="first", upstreams=[{"repositoryName": "deep"}])
    c.create_repository(domain=d, repository="app",
                        upstreams=[{"repositoryName": "first"}, {"repositoryName": "second"}])
    name = f"ord-{unique}"
    from_deep = _upload(server, d, "deep", name, "1.0", module_source="WHERE = 'deep'\n")
    from_b1 = _upload(server, d, "second", name, "1.0", module_source="WHERE = 'second'\n")
    from_b2 = _upload(server, d, "second", name, "2.0")
    own3 = _upload(server, d, "app", name, "3.0")

    # A version published in app itself makes upstream=BLOCK the default there (CodeArtifact).
    assert _get(server, d, "app", f"simple/{name}/", Accept=JSON).json()["versions"] == ["3.0"]
    c.put_package_origin_configuration(domain=d, repository="app", format="pypi", package=name,
                                       restrictions={"publish": "ALLOW", "upstream": "ALLOW"})
    page = _get(server, d, "app", f"simple/{name}/", Accept=JSON).json()
    assert page["versions"] == ["1.0", "2.0", "3.0"]
    shas = {f["filename"]: f["hashes"]["sha256"] for f in page["files"]}
    # first's upstream `deep` comes before app's second upstream `second`
    assert shas[wheel_filename(name, "1.0")] == hashlib.sha256(from_deep).hexdigest()
    assert shas[wheel_filename(name, "2.0")] == hashlib.sha256(from_b2).hexdigest()
    assert shas[wheel_filename(name, "3.0")] == hashlib.sha256(own3).hexdigest()
    assert _get(server, d, "app", f"simple/{name}/{wheel_filename(name, '1.0')}").content == from_deep
    # `second` alone still serves its own 1.0
    page_b = _get(server, d, "second", f"simple/{name}/", Accept=JSON).json()
    assert page_b["versions"] == ["1.0", "2.0"]
    # Reordering the upstreams changes the winner.
    c.update_repository(domain=d, repository="app", upstreams=[{"repositoryName": "second"}, {"repositoryName": "first"}])
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # the chain is cached per process for 2 s
        body = _get(server, d, "app", f"simple/{name}/{wheel_filename(name, '1.0')}").content
        if body != from_deep:
            break
        time.sleep(0.2)
    assert body == from_b1


def test_only_published_upstream_versions_are_listed(server, domain, unique):
    c = server.boto()
    d = domain
    c.create_repository(domain=d, repository="libs")
    c.create_repository(domain=d, repository="app", upstreams=[{"repositoryName": "libs"}])
    name = f"st-{unique}"
    for v in ("1.0", "2.0", "3.0", "4.0"):
        _upload(server, d, "libs", name, v)
    c.update_package_versions_status(domain=d, repository="libs", format="pypi", package=name,
                                     versions=["2.0"], targetStatus="Archived")
    c.update_package_versions_status(domain=d, repository="libs", format="pypi", package=name,
                                     versions=["3.0"], targetStatus="Unlisted")
    c.dispose_package_versions(domain=d, repository="libs", format="pypi", package=name, versions=["4.0"])
    page = _get(server, d, "app", f"simple/{name}/", Accept=JSON).json()
    # Unlisted: on a PyPI page as a PEP 592 yank (reason "Unlisted"); Archived and Disposed: absent.
    assert page["versions"] == ["1.0", "3.0"]
    assert {f["filename"]: f["yanked"] for f in page["files"]} == {
        wheel_filename(name, "1.0"): False, wheel_filename(name, "3.0"): "Unlisted"}
    assert _get(server, d, "app", f"simple/{name}/{wheel_filename(name, '2.0')}").status_code == 404
    assert _get(server, d, "app", f"simple/{name}/{wheel_filename(name, '4.0')}").status_code == 404
    # Unlisted: downloadable by its exact file name.
    assert _get(server, d, "app", f"simple/{name}/{wheel_filename(name, '3.0')}").status_code == 200


class Hang:
    """Accepts TCP connections and never answers: a remote that times out."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(50)
        self.port = self.sock.getsockname()[1]
        self.accepted = []
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        while True:
            try:
                conn, peer = self.sock.accept()
            except OSError:
                return
            self.accepted.append((conn, peer))

    def connections(self) -> list:
        """The peers that connected, in order, after a barrier: a connection of our own, made now, is
        accepted after every connection made before it (one accept queue, one accepting thread)."""
        with socket.create_connection(("127.0.0.1", self.port)) as marker:
            me = marker.getsockname()
            assert wait_for(lambda: any(peer == me for _c, peer in self.accepted)), "the marker was not accepted"
            peers = [peer for _c, peer in self.accepted]
        self.accepted = [(c, p) for c, p in self.accepted if p != me]
        return peers[:peers.index(me)]

    def close(self):
        self.sock.close()
        for c, _peer in self.accepted:
            c.close()


def test_remote_timeout_and_circuit_breaker(tmp_path, unique):
    hang = Hang()
    srv = start_server(tmp_path / "arca", env={
        "ARCA_EXTERNAL_PUBLIC_PYPI": f"http://127.0.0.1:{hang.port}/simple/", "ARCA_UPSTREAM_TIMEOUT": "1",
        "ARCA_UPSTREAM_BREAKER_FAILURES": "2", "ARCA_UPSTREAM_BREAKER_SECONDS": "600"})
    try:
        c = srv.boto()
        d = f"t{unique}"
        c.create_domain(domain=d)
        c.create_repository(domain=d, repository="proxy")
        c.associate_external_connection(domain=d, repository="proxy", externalConnection="public:pypi")
        # Two requests reach the remote and time out (a read timeout, not a refused connection)...
        for i in range(2):
            r = _get(srv, d, "proxy", f"simple/p{i}/")
            assert r.status_code == 502 and "ReadTimeout" in r.text, r.text
            assert len(hang.connections()) == i + 1
        # ... then the breaker is open (2 failures): answered at once, the remote is not contacted.
        for i in range(2, 5):
            r = _get(srv, d, "proxy", f"simple/p{i}/")
            assert r.status_code == 502 and "unavailable (it failed 2 times in a row" in r.text, r.text
        assert len(hang.connections()) == 2
    finally:
        srv.stop()
        hang.close()


def test_remote_metadata_reused_for_max_age(tmp_path, unique):
    files = tmp_path / "static"
    name = f"ma-{unique}"
    (files / "simple" / name).mkdir(parents=True)
    (files / "packages").mkdir()
    data = wheel_bytes(name, "1.0")
    (files / "packages" / wheel_filename(name, "1.0")).write_bytes(data)
    (files / "simple" / name / "index.html").write_text(
        f'<a href="../../packages/{wheel_filename(name, "1.0")}#sha256={hashlib.sha256(data).hexdigest()}">'
        f'{wheel_filename(name, "1.0")}</a>')
    static = start_static(files, tmp_path / "static.log")
    remote = Remote(static.url)
    srv = start_server(tmp_path / "arca", env={"ARCA_EXTERNAL_PUBLIC_PYPI": f"{remote.url}/simple/",
                                              "ARCA_UPSTREAM_MAX_AGE": "300"})
    try:
        c = srv.boto()
        d = f"m{unique}"
        c.create_domain(domain=d)
        c.create_repository(domain=d, repository="proxy")
        c.associate_external_connection(domain=d, repository="proxy", externalConnection="public:pypi")
        for _ in range(3):
            page = _get(srv, d, "proxy", f"simple/{name}/", Accept=JSON)
            assert page.status_code == 200 and page.json()["versions"] == ["1.0"]
        assert remote.count(f"/simple/{name}/") == 1
        assert _get(srv, d, "proxy", f"simple/{name}/{wheel_filename(name, '1.0')}").content == data
        # The retained copy of the remote index survives a restart of Arca (it is in the database)
        # and serves while the remote is down.
        static.stop()
        srv.stop()
        srv.start()
        assert _get(srv, d, "proxy", f"simple/{name}/", Accept=JSON).json()["versions"] == ["1.0"]
        assert _get(srv, d, "proxy", f"simple/{name}/{wheel_filename(name, '1.0')}").content == data
    finally:
        srv.stop()
        remote.close()
        static.stop()


# ---- units: the URL guard, single-flight, the breaker ------------------------------------------

@pytest.mark.parametrize("url, ok", [
    ("http://mirror.test/simple/foo/", True),
    ("http://mirror.test/packages/foo-1.0.tar.gz", True),  # beside /simple/ (pypiserver layout)
    ("http://other.test/simple/foo/", False),
    ("http://mirror.test.evil/simple/foo/", False),
    ("http://user:pw@mirror.test/simple/foo/", False),
    ("http://mirror.test@evil.test/simple/", False),
    ("http://mirror.test/simple/../../etc/passwd", False),
    ("http://mirror.test/simple/%2e%2e/x", False),
    ("file:///etc/passwd", False),
    ("ftp://mirror.test/simple/foo/", False),
    ("http://127.0.0.1:22/simple/", False),
])
def test_only_urls_under_the_connection_are_allowed(url, ok):
    from app.config import settings_from_env
    from app.services.connections import public_connection
    from app.upstream.remote import is_allowed

    conn = public_connection(settings_from_env({"ARCA_EXTERNAL_PUBLIC_PYPI": "http://mirror.test/simple/"}),
                             "public:pypi")
    assert is_allowed(url, conn.prefixes()) is ok


def test_single_flight_shares_one_call_and_its_error():
    import asyncio

    from app.config import settings_from_env
    from app.upstream.remote import Remotes

    remotes = Remotes(settings_from_env({}))
    calls = []

    async def work():
        calls.append(1)
        await asyncio.sleep(0.05)
        return "value"

    async def fail():
        calls.append(1)
        await asyncio.sleep(0.05)
        raise ValueError("boom")

    async def main():
        results = await asyncio.gather(*[remotes.single_flight("k", work) for _ in range(10)])
        assert results == ["value"] * 10 and len(calls) == 1
        outcomes = await asyncio.gather(*[remotes.single_flight("e", fail) for _ in range(5)],
                                        return_exceptions=True)
        assert all(isinstance(o, ValueError) for o in outcomes) and len(calls) == 2
        assert remotes.flights == {}  # nothing left behind: the next call runs again
        assert await remotes.single_flight("k", work) == "value" and len(calls) == 3

    asyncio.run(main())


def test_npm_integrity_and_remote_packument_filtering():
    from types import SimpleNamespace

    from app.upstream import npm as up

    body = b"tarball"
    integ = "sha512-" + __import__("base64").b64encode(hashlib.sha512(body).digest()).decode()
    assert up._expected({"integrity": integ}) == {"sha512": hashlib.sha512(body).hexdigest()}
    assert up._expected({"shasum": "a" * 40}) == {"sha1": "a" * 40}
    assert up._expected({"integrity": "sha1-xx"}) is None
    doc = {"versions": {
        "1.0.0": {"dist": {"tarball": "http://reg.test/p/-/p-1.0.0.tgz", "integrity": integ}},
        "2.0.0": {"dist": {"tarball": "http://evil.test/p-2.0.0.tgz", "integrity": integ}},
        "3.0.0": {"dist": {"tarball": "http://reg.test/p/-/p-3.0.0.tgz"}},
        "bad": {"dist": {"tarball": "http://reg.test/p/-/p-bad.tgz", "integrity": integ}}},
        "dist-tags": {"latest": "2.0.0", "stable": "1.0.0"}}
    resp = SimpleNamespace(content=__import__("json").dumps(doc).encode())
    out = up.parse_packument(resp, "p", ["http://reg.test/"])
    assert list(out["versions"]) == ["1.0.0"] and out["dist-tags"] == {"stable": "1.0.0"}
