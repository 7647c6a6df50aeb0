"""Issue 14, npm: a tarball's expansion is bounded while it is decompressed (a small gzip that
unpacks hugely is refused with 413 after bounded work, and nothing is stored), and versions are
SemVer with ASCII digits only."""

from __future__ import annotations

import gzip
import io
import json
import tarfile

import httpx
import pytest

from tests.npm_support import make_tarball, publish_body
from tests.support.server import start_server

LIMIT = 8 * 1024 * 1024


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    s = start_server(tmp_path_factory.mktemp("npmtrust"), env={"ARCA_NPM_MAX_UNPACKED_BYTES": str(LIMIT)})
    s.create_repo("bombs", "js")
    try:
        yield s
    finally:
        s.stop()


def _tar(members: list[tuple[str, bytes]]) -> bytes:
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", compresslevel=9) as gz, tarfile.open(fileobj=gz, mode="w|") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _pj(name: str, version: str) -> bytes:
    return json.dumps({"name": name, "version": version}).encode()


def _publish(srv, name: str, version: str, tgz: bytes) -> httpx.Response:
    token = srv.token("bombs")
    return httpx.put(srv.endpoint("bombs", "npm", "js") + name, json=publish_body(name, version, tgz),
                     headers={"Authorization": f"Bearer {token}"}, timeout=120)


def _nothing_stored(srv, name: str) -> None:
    token = srv.token("bombs")
    assert httpx.get(srv.endpoint("bombs", "npm", "js") + name,
                     headers={"Authorization": f"Bearer {token}"}).status_code == 404
    listed = srv.boto().list_packages(domain="bombs", repository="js", format="npm", packagePrefix=name)
    assert [p["package"] for p in listed["packages"] if p["package"] == name] == []


@pytest.mark.parametrize("bomb_first", [False, True])
def test_a_gzip_bomb_is_refused_with_bounded_work(srv, bomb_first):
    name = f"bomb-{int(bomb_first)}"
    zeros = ("package/zeros.bin", bytes(64 * 1024 * 1024))  # 64 MiB of zeros: about 64 KiB gzipped
    members = [("package/package.json", _pj(name, "1.0.0")), zeros]
    tgz = _tar(members[::-1] if bomb_first else members)
    assert len(tgz) < 200_000
    resp = _publish(srv, name, "1.0.0", tgz)
    assert resp.status_code == 413, resp.text
    assert "ARCA_NPM_MAX_UNPACKED_BYTES" in resp.json()["error"]
    _nothing_stored(srv, name)


def test_a_member_claiming_more_than_the_limit_is_refused(srv):
    tgz = _tar([("package/package.json", _pj("liar", "1.0.0")), ("package/big.bin", bytes(LIMIT + 1))])
    resp = _publish(srv, "liar", "1.0.0", tgz)
    assert resp.status_code == 413 and "big.bin" in resp.json()["error"]
    _nothing_stored(srv, "liar")


def test_a_tarball_within_the_limit_is_published(srv):
    tgz = make_tarball("fits", "1.0.0", files={"data.bin": bytes(LIMIT // 2)})
    assert _publish(srv, "fits", "1.0.0", tgz).status_code == 201


@pytest.mark.parametrize("version", ["\u0661.\u0660.\u0660", "1\u0660.0.0", "1.0.1\u0663", "1.0.0-rc.1\u0661"])
def test_versions_take_ascii_digits_only(srv, version):
    resp = _publish(srv, "digits", version, make_tarball("digits", version))
    assert resp.status_code == 400 and "SemVer" in resp.json()["error"]
    _nothing_stored(srv, "digits")
