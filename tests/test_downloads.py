"""Issue 19, one download path for every format: caching headers (a Published release file is
immutable; SNAPSHOT files, Unlisted files and index documents are revalidated), ETag/304, HEAD
and Range, files sent whole by sendfile, and the X-Accel-Redirect mode with a real nginx in front
(Arca authenticates, nginx sends the bytes)."""

from __future__ import annotations

import hashlib
import json
import os
import socket
from pathlib import Path

import httpx
import pytest

from tests import pypi_support as ps
from tests.npm_support import make_tarball, publish_body
from tests.support.nginx import LISTEN, Nginx, server_block
from tests.support.server import start_server

IMMUTABLE = "public, max-age=31536000, immutable"
META = ("<metadata><groupId>com.dl</groupId><artifactId>lib</artifactId><versioning><versions>"
        "<version>{v}</version></versions></versioning></metadata>")


def _maven(server, domain: str, version: str, data: bytes, publish: bool = True) -> str:
    ep = server.endpoint(domain, "maven", "libs")
    auth = ("aws", server.token(domain))
    url = f"{ep}com/dl/lib/{version}/lib-{version}.jar"
    assert httpx.put(url, content=data, auth=auth).status_code == 201
    if publish:
        assert httpx.put(f"{ep}com/dl/lib/maven-metadata.xml", content=META.format(v=version).encode(),
                         auth=auth).status_code == 200
    return url


@pytest.fixture
def repo(server, domain):
    server.boto().create_repository(domain=domain, repository="libs")
    return domain


def test_published_release_files_are_immutable_and_everything_else_is_revalidated(server, repo):
    auth = ("aws", server.token(repo))
    jar = os.urandom(5000)
    url = _maven(server, repo, "1.0", jar)
    got = httpx.get(url, auth=auth)
    assert got.content == jar and got.headers["cache-control"] == IMMUTABLE
    assert got.headers["etag"] == f'"{hashlib.sha256(jar).hexdigest()}"'
    again = httpx.get(url, auth=auth, headers={"If-None-Match": got.headers["etag"]})
    assert again.status_code == 304 and again.content == b"" and again.headers["cache-control"] == IMMUTABLE
    head = httpx.head(url, auth=auth)
    assert head.status_code == 200 and head.headers["content-length"] == "5000" and head.content == b""

    # a SNAPSHOT build, the metadata and an Unlisted version's file may change: revalidate
    ep = server.endpoint(repo, "maven", "libs")
    snap = f"{ep}com/dl/lib/2.0-SNAPSHOT/lib-2.0-20250101.120000-1.jar"
    assert httpx.put(snap, content=b"snapshot", auth=auth).status_code == 201
    assert httpx.put(f"{ep}com/dl/lib/2.0-SNAPSHOT/maven-metadata.xml", auth=auth, content=(
        "<metadata><groupId>com.dl</groupId><artifactId>lib</artifactId><version>2.0-SNAPSHOT</version>"
        "</metadata>").encode()).status_code == 200
    assert httpx.get(snap, auth=auth).headers["cache-control"] == "no-cache"
    assert "immutable" not in httpx.get(f"{ep}com/dl/lib/maven-metadata.xml", auth=auth).headers["cache-control"]
    unlisted = _maven(server, repo, "3.0", b"unlisted jar")
    server.boto().update_package_versions_status(domain=repo, repository="libs", format="maven", namespace="com.dl",
                                                 package="lib", versions=["3.0"], targetStatus="Unlisted")
    assert httpx.get(unlisted, auth=auth).headers["cache-control"] == "no-cache"

    # PyPI: the wheel and its core metadata are immutable, the pages are not
    wheel = ps.wheel_bytes("dl-proj", "1.0")
    name = ps.wheel_filename("dl-proj", "1.0")
    py = server.endpoint(repo, "pypi", "libs")
    ps.raw_upload(py, auth[1], ps.form_for("dl-proj", "1.0", wheel), name, wheel).raise_for_status()
    for path in (name, name + ".metadata"):
        assert httpx.get(f"{py}simple/dl-proj/{path}", auth=auth).headers["cache-control"] == IMMUTABLE
    assert "immutable" not in httpx.get(f"{py}simple/dl-proj/", auth=auth).headers["cache-control"]

    # npm: the tarball is immutable, the packument is not
    js = server.endpoint(repo, "npm", "libs")
    tgz = make_tarball("dl-pkg", "1.0.0")
    assert httpx.put(js + "dl-pkg", content=json.dumps(publish_body("dl-pkg", "1.0.0", tgz)), auth=auth,
                     headers={"Content-Type": "application/json"}).status_code == 201
    got = httpx.get(js + "dl-pkg/-/dl-pkg-1.0.0.tgz", auth=auth)
    assert got.content == tgz and got.headers["cache-control"] == IMMUTABLE
    again = httpx.get(js + "dl-pkg/-/dl-pkg-1.0.0.tgz", auth=auth, headers={"If-None-Match": got.headers["etag"]})
    assert again.status_code == 304
    assert "immutable" not in httpx.get(js + "dl-pkg", auth=auth).headers["cache-control"]


def test_a_large_file_is_sent_whole_with_ranges_and_a_client_leaving_midway_harms_nothing(server, repo):
    auth = ("aws", server.token(repo))
    data = os.urandom(8 * 1024 * 1024 + 123)
    url = _maven(server, repo, "4.0", data)
    with httpx.Client(auth=auth, timeout=60) as client:  # one keep-alive connection, several files
        for _ in range(3):
            got = client.get(url)
            assert got.status_code == 200 and got.content == data
            assert got.headers["content-length"] == str(len(data))
        part = client.get(url, headers={"Range": "bytes=1000-1999"})
        assert part.status_code == 206 and part.content == data[1000:2000]
    path = url.split(str(server.port), 1)[1]
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {auth[1]}\r\n\r\n".encode())
        assert sock.recv(65536).startswith(b"HTTP/1.1 200")
    # the server is still whole: the same file again, complete
    assert httpx.get(url, auth=auth, timeout=60).content == data


def test_a_small_file_answered_from_its_bytes_honours_ranges_head_and_repeats(server, repo):
    """A file of at most 256 KiB is read in the lookup and answered (then repeated from the worker's
    memory) from its bytes, on disk and S3 alike: the same Range, HEAD and 304 answers as a large one."""
    auth = ("aws", server.token(repo))
    data = os.urandom(200 * 1024)
    url = _maven(server, repo, "5.0", data)
    with httpx.Client(auth=auth, timeout=60) as client:
        for _ in range(3):  # the first answer, then its repeats from memory
            got = client.get(url)
            assert got.status_code == 200 and got.content == data and got.headers["content-length"] == str(len(data))
            assert got.headers["accept-ranges"] == "bytes" and got.headers["cache-control"] == IMMUTABLE
            part = client.get(url, headers={"Range": "bytes=1000-1999"})
            assert part.status_code == 206 and part.content == data[1000:2000]
            assert part.headers["content-range"] == f"bytes 1000-1999/{len(data)}"
            tail = client.get(url, headers={"Range": "bytes=-10"})
            assert tail.status_code == 206 and tail.content == data[-10:]
            assert client.get(url, headers={"Range": f"bytes={len(data)}-"}).status_code == 416
            head = client.head(url)
            assert head.status_code == 200 and head.headers["content-length"] == str(len(data)) and head.content == b""
            assert client.get(url, headers={"If-None-Match": got.headers["etag"]}).status_code == 304


ACCEL_PROXY = """    location /internal/ {{ internal; alias {blobs}/; }}
    location / {{ proxy_pass http://127.0.0.1:{port}; proxy_http_version 1.1; proxy_set_header Host $http_host;
                 proxy_request_buffering off; proxy_buffering off; client_max_body_size 0; }}"""


@pytest.fixture(scope="module")
def accel(tmp_path_factory):
    root = tmp_path_factory.mktemp("accel")
    srv = start_server(root / "arca", env={"ARCA_ACCEL_REDIRECT": "/internal/", "ARCA_BLOB_STORE": "file"})
    proxy = Nginx(root / "nginx", server_block(ACCEL_PROXY.format(blobs=root / "arca" / "storage" / "blobs",
                                                                  port=srv.port)))
    try:
        yield srv, proxy
    finally:
        proxy.stop()
        srv.stop()


def test_with_accel_redirect_arca_authenticates_and_nginx_sends_the_file(accel, unique):
    srv, proxy = accel
    domain = f"x{unique}"
    srv.create_repo(domain, "libs")
    token = srv.token(domain)
    data = os.urandom(700 * 1024)
    url = _maven(srv, domain, "1.0", data)
    path = url.split(str(srv.port), 1)[1]
    sha = hashlib.sha256(data).hexdigest()

    direct = httpx.get(url, auth=("aws", token))  # what Arca answers: headers, no bytes
    assert direct.status_code == 200 and direct.content == b""
    assert direct.headers["x-accel-redirect"] == f"/internal/sha256/{sha[:2]}/{sha[2:4]}/{sha}"
    got = httpx.get(proxy.url + path, auth=("aws", token))
    assert got.status_code == 200 and got.content == data
    assert got.headers["cache-control"] == IMMUTABLE and "x-accel-redirect" not in got.headers
    part = httpx.get(proxy.url + path, auth=("aws", token), headers={"Range": "bytes=10-19"})
    assert part.status_code == 206 and part.content == data[10:20]

    # the proxy sends nothing Arca did not allow
    assert httpx.get(proxy.url + path).status_code == 401
    assert httpx.get(proxy.url + path, auth=("aws", "forged")).status_code == 401
    assert httpx.get(f"{proxy.url}/internal/sha256/{sha[:2]}/{sha[2:4]}/{sha}").status_code == 404
    missing = path.replace("lib-1.0.jar", "lib-1.0-sources.jar")
    assert httpx.get(proxy.url + missing, auth=("aws", token)).status_code == 404


def test_the_docker_nginx_cache_serves_repeats_of_immutable_files_to_the_same_token_only(server, repo,
                                                                                          tmp_path):
    """docker/nginx.conf itself, pointed at this server: a Published jar is cached per token, a
    SNAPSHOT build and the metadata never are."""
    conf = (Path(__file__).resolve().parents[1] / "docker" / "nginx.conf").read_text()
    conf = (conf.replace("    server arca1:8080;\n    server arca2:8080;\n", f"    server 127.0.0.1:{server.port};\n")
            .replace("/var/cache/nginx/arca", str(tmp_path / "cache")).replace("listen 8080;", f"listen {LISTEN};"))
    assert f"127.0.0.1:{server.port}" in conf and str(tmp_path) in conf
    proxy = Nginx(tmp_path / "nginx", conf)
    try:
        token = server.token(repo)
        other = server.token(repo, duration=3600)  # another token (same rights, other header: tokens
        # issued in the same second with the same expiry are the same string)
        url = _maven(server, repo, "5.0", b"release jar")
        path = url.split(str(server.port), 1)[1]

        def get(p, tok):
            return httpx.get(proxy.url + p, auth=("aws", tok) if tok else None)

        first, repeat = get(path, token), get(path, token)
        assert first.content == repeat.content == b"release jar"
        assert (first.headers["x-cache"], repeat.headers["x-cache"]) == ("MISS", "HIT")
        assert get(path, other).headers["x-cache"] == "MISS"  # not handed to another token
        assert get(path, None).status_code == 401  # nor to nobody
        meta = path.rsplit("/", 2)[0] + "/maven-metadata.xml"
        assert [get(meta, token).headers["x-cache"] for _ in range(2)] == ["MISS", "MISS"]
    finally:
        proxy.stop()
