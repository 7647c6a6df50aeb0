"""The registry's rules over raw HTTP, where npm would refuse on its own: names, versions,
attachments, digests, tarball contents, dist-tags, auth, size limit, concurrency; and the
packument's wire shape (abbreviated fields, ETag/304, gzip, scoped URL forms)."""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import os
import re
import tarfile
import threading

import httpx
import pytest

from tests.npm_support import escape, make_tarball, publish_body, setup_registry
from tests.support.server import start_server


@pytest.fixture
def reg(server, tmp_path, unique):
    return setup_registry(server, tmp_path, unique)


def put(reg, name: str, body, token: str | None = None, path: str | None = None) -> httpx.Response:
    with reg.http(token) as c:
        return c.put(path if path is not None else escape(name), json=body)


def assert_error(resp: httpx.Response, status: int, words: str) -> None:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/json")
    assert words in resp.json()["error"], resp.json()


def nothing_stored(server, reg) -> None:
    assert server.boto().list_packages(domain=reg.domain, repository=reg.repo, format="npm")["packages"] == []


# ---- names, versions, body/URL agreement -------------------------------------------------------

@pytest.mark.parametrize("name,words", [
    ("Caps", "capital letters"),
    ("node_modules", "not a valid package name"),
    (".hidden", "cannot start with a period"),
    ("_under", "cannot start with an underscore"),
    ("-dash", "cannot start with a hyphen"),
    ("x" * 215, "214 characters"),
    ("http", "core module name"),
    ("bad~name", "special characters"),
    ("sp ace", "URL-friendly"),
    ("@acme/.dot", "after the scope"),
    ("@ac me/x", "URL-friendly"),
])
def test_invalid_names_are_refused(server, reg, name, words):
    assert_error(put(reg, name, publish_body(name, "1.0.0")), 400, words)
    nothing_stored(server, reg)


def test_body_name_must_match_the_url(server, reg):
    assert_error(put(reg, "right", publish_body("right", "1.0.0", body_name="wrong")), 400, "does not match")
    body = publish_body("right", "1.0.0", manifest={"name": "other"})
    assert_error(put(reg, "right", body), 400, "the URL names")
    nothing_stored(server, reg)


@pytest.mark.parametrize("version", ["1.0", "01.0.0", "1.0.0-", "v1.0.0", "latest", "1.0.0.0"])
def test_invalid_versions_are_refused(server, reg, version):
    assert_error(put(reg, "semv", publish_body("semv", version)), 400, "SemVer")
    nothing_stored(server, reg)


def test_publish_over_an_existing_version_is_409(server, reg):
    assert put(reg, "once", publish_body("once", "1.0.0")).status_code == 201
    other = make_tarball("once", "1.0.0", files={"extra.js": b"changed"})
    assert_error(put(reg, "once", publish_body("once", "1.0.0", other)), 409, "previously published version")
    sha = reg.packument("once").json()["versions"]["1.0.0"]["dist"]["shasum"]
    assert sha != hashlib.sha1(other).hexdigest()


# ---- attachments and digests ---------------------------------------------------------------------

def test_digest_mismatches_are_refused(server, reg):
    tgz = make_tarball("dig", "1.0.0")
    wrong = make_tarball("dig", "1.0.0", files={"x": b"y"})
    bad_sri = "sha512-" + base64.b64encode(hashlib.sha512(wrong).digest()).decode()
    assert_error(put(reg, "dig", publish_body("dig", "1.0.0", tgz, integrity=bad_sri)), 400, "dist.integrity")
    assert_error(put(reg, "dig", publish_body("dig", "1.0.0", tgz, shasum="0" * 40)), 400, "dist.shasum")
    assert_error(put(reg, "dig", publish_body("dig", "1.0.0", tgz, integrity="sha1-AAAA")), 400, "sha512")
    nothing_stored(server, reg)


def test_attachment_count_name_length_and_base64(server, reg):
    tgz = make_tarball("att", "1.0.0")
    data = base64.b64encode(tgz).decode()
    two = {"att-1.0.0.tgz": {"data": data}, "att-1.0.1.tgz": {"data": data}}
    assert_error(put(reg, "att", publish_body("att", "1.0.0", tgz, attachments=two)), 400, "exactly one")
    misnamed = {"att-9.9.9.tgz": {"data": data, "length": len(tgz)}}
    assert_error(put(reg, "att", publish_body("att", "1.0.0", tgz, attachments=misnamed)), 400, "not the tarball")
    bad_len = {"att-1.0.0.tgz": {"data": data, "length": len(tgz) + 1}}
    assert_error(put(reg, "att", publish_body("att", "1.0.0", tgz, attachments=bad_len)), 400, "length")
    bad_b64 = {"att-1.0.0.tgz": {"data": data[:-3] + "!!!"}}
    assert_error(put(reg, "att", publish_body("att", "1.0.0", tgz, attachments=bad_b64)), 400, "base64")
    # No attachment at all: a metadata update cannot add a version.
    none = publish_body("att", "1.0.0", tgz)
    del none["_attachments"]
    assert_error(put(reg, "att", none), 400, "exactly one tarball")
    nothing_stored(server, reg)


def _tar_without_package_json() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        info = tarfile.TarInfo("package/index.js")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"1"))
    return buf.getvalue()


@pytest.mark.parametrize("tgz,words", [
    (b"this is not gzip at all", "not a gzip-compressed tar"),
    (gzip.compress(b"gzip but not a tar" * 100, mtime=0), "not a gzip-compressed tar"),
    (_tar_without_package_json(), "no package/package.json"),
    (make_tarball("tarc", "1.0.0", prefix="other"), "no package/package.json"),
    (make_tarball("someone-else", "1.0.0"), "not tarc@1.0.0"),
    (make_tarball("tarc", "2.0.0"), "not tarc@1.0.0"),
], ids=["not-gzip", "gzip-not-tar", "no-package-json", "other-prefix", "other-name", "other-version"])
def test_tarball_must_be_the_published_package(server, reg, tgz, words):
    assert_error(put(reg, "tarc", publish_body("tarc", "1.0.0", tgz)), 400, words)
    nothing_stored(server, reg)


def test_publish_tag_must_name_the_published_version(server, reg):
    body = publish_body("tagp", "1.0.0")
    body["dist-tags"] = {"latest": "0.9.0"}
    assert_error(put(reg, "tagp", body), 400, "may only tag the version")
    body["dist-tags"] = {"1.0.0": "1.0.0"}
    assert_error(put(reg, "tagp", body), 400, "Invalid dist-tag")
    nothing_stored(server, reg)


# ---- dist-tags -----------------------------------------------------------------------------------

def test_dist_tag_rules(server, reg):
    assert put(reg, "@s/dt", publish_body("@s/dt", "1.0.0")).status_code == 201
    assert put(reg, "@s/dt", publish_body("@s/dt", "1.1.0", tag="next")).status_code == 201
    base = "-/package/@s%2fdt/dist-tags"
    with reg.http() as c:
        assert c.get(base).json() == {"latest": "1.0.0", "next": "1.1.0"}
        assert_error(c.put(f"{base}/beta", json="9.9.9"), 400, "does not exist")
        assert_error(c.put(f"{base}/beta", json={"version": "1.0.0"}), 400, "JSON string")
        assert_error(c.put(f"{base}/1.2", json="1.0.0"), 400, "Invalid dist-tag")
        assert_error(c.delete(f"{base}/latest"), 400, "cannot be removed")
        assert_error(c.delete(f"{base}/nope"), 404, "no dist-tag")
        server.boto().update_package_versions_status(domain=reg.domain, repository=reg.repo, format="npm",
                                                     namespace="s", package="dt", versions=["1.1.0"],
                                                     targetStatus="Unlisted")
        assert_error(c.put(f"{base}/beta", json="1.1.0"), 400, "is Unlisted")
        assert c.get(base).json() == {"latest": "1.0.0"}
        assert c.put(f"{base}/stable", json="1.0.0").status_code == 201
        # the unscoped URL form of the scoped name works too
        assert c.get("-/package/@s/dt/dist-tags").json() == {"latest": "1.0.0", "stable": "1.0.0"}


# ---- auth ----------------------------------------------------------------------------------------

def test_publish_needs_a_token_and_permission(server, reg, unique):
    body = publish_body("authp", "1.0.0")
    resp = httpx.put(reg.url + "authp", json=body)
    assert resp.status_code == 401 and resp.headers["www-authenticate"] == 'Basic realm="arca"'
    user = f"reader{unique}"
    key = server.new_user(user)
    arn = f"arn:aws:iam::000000000000:user/{user}"
    policy = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"AWS": arn}, "Resource": "*",
        "Action": ["codeartifact:GetAuthorizationToken", "codeartifact:ReadFromRepository",
                   "sts:GetServiceBearerToken"]}]}
    server.boto().put_domain_permissions_policy(domain=reg.domain, policyDocument=json.dumps(policy))
    token = server.token(reg.domain, key=key)
    assert_error(put(reg, "authp", body, token=token), 403, "PublishPackageVersion")
    nothing_stored(server, reg)
    assert put(reg, "authp", body).status_code == 201
    with reg.http(token) as c:  # reading is allowed
        assert c.get("authp").status_code == 200
        assert c.get("-/whoami").json() == {"username": user}
        assert_error(c.put("-/package/authp/dist-tags/x", json="1.0.0"), 403, "PublishPackageVersion")
        assert_error(c.delete(f"authp/-rev/{reg.packument('authp').json()['_rev']}"), 403, "DeletePackageVersions")


def test_publish_body_limit_is_413(tmp_path, unique):
    srv = start_server(tmp_path / "small", env={"ARCA_NPM_MAX_PUBLISH_BYTES": "200000"})
    try:
        reg = setup_registry(srv, tmp_path / "work", unique)
        small = publish_body("big", "1.0.0")
        assert put(reg, "big", small).status_code == 201
        huge = make_tarball("big", "2.0.0", files={"blob.bin": os.urandom(300_000)})
        body = json.dumps(publish_body("big", "2.0.0", huge)).encode()
        with reg.http() as c:
            r = c.put("big", content=body, headers={"Content-Type": "application/json"})
            assert_error(r, 413, "limit of 200000 bytes")

            def chunked():  # no Content-Length: refused while reading
                for i in range(0, len(body), 65536):
                    yield body[i:i + 65536]
            r = c.put("big", content=chunked(), headers={"Content-Type": "application/json"})
            assert_error(r, 413, "limit of 200000 bytes")
        assert list(reg.packument("big").json()["versions"]) == ["1.0.0"]
    finally:
        srv.stop()


# ---- concurrency ---------------------------------------------------------------------------------

def _race(reg, bodies: list[tuple[str, dict]]) -> list[int]:
    barrier = threading.Barrier(len(bodies))
    results: list[int] = [0] * len(bodies)

    def run(i, name, body):
        data = json.dumps(body).encode()
        with reg.http() as c:
            barrier.wait()
            results[i] = c.put(escape(name), content=data, headers={"Content-Type": "application/json"}).status_code

    threads = [threading.Thread(target=run, args=(i, n, b)) for i, (n, b) in enumerate(bodies)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return results


def test_concurrent_publishes_of_different_versions_all_land(reg):
    versions = [f"1.{i}.0" for i in range(8)]
    assert _race(reg, [("@c/many", publish_body("@c/many", v)) for v in versions]) == [201] * 8
    doc = reg.packument("@c/many").json()
    assert sorted(doc["versions"]) == sorted(versions)
    assert doc["dist-tags"]["latest"] in versions


def test_concurrent_publishes_of_one_version_one_wins(reg):
    for round_ in range(3):
        a = publish_body("same", f"1.0.{round_}", make_tarball("same", f"1.0.{round_}", files={"a": b"1"}))
        b = publish_body("same", f"1.0.{round_}", make_tarball("same", f"1.0.{round_}", files={"b": b"2"}))
        assert sorted(_race(reg, [("same", a), ("same", b)])) == [201, 409]
    assert sorted(reg.packument("same").json()["versions"]) == ["1.0.0", "1.0.1", "1.0.2"]


# ---- the packument on the wire -------------------------------------------------------------------

def test_packument_shapes_and_url_forms(reg):
    extra = {"bin": {"tool": "index.js"}, "scripts": {"postinstall": "node x"}, "keywords": ["k"],
             "engines": {"node": ">=18"}, "devDependencies": {"dev": "1"}, "peerDependenciesMeta": {}}
    manifest = {**extra, "dependencies": {"dep": "^1"}, "author": "me"}
    assert put(reg, "@w/shape", publish_body("@w/shape", "1.0.0", manifest=manifest)).status_code == 201
    full = reg.packument("@w/shape").json()
    assert full["_id"] == "@w/shape" and re.fullmatch(r"\d+-[0-9a-f]+", full["_rev"]), full["_rev"]  # CouchDB style
    assert set(full["time"]) == {"created", "modified", "1.0.0"}
    v = full["versions"]["1.0.0"]
    assert v["dist"]["tarball"] == f"{reg.url}@w/shape/-/shape-1.0.0.tgz"
    assert v["dist"]["integrity"].startswith("sha512-") and len(v["dist"]["shasum"]) == 40
    assert v["keywords"] == ["k"] and v["hasInstallScript"] is True and full["author"] == "me"

    corgi = reg.packument("@w/shape", accept="application/vnd.npm.install-v1+json; q=1.0, "
                                             "application/json; q=0.8, */*")
    assert corgi.headers["content-type"].startswith("application/vnd.npm.install-v1+json")
    doc = corgi.json()
    assert set(doc) == {"name", "modified", "dist-tags", "versions"}
    cv = doc["versions"]["1.0.0"]
    assert set(cv) <= {"name", "version", "deprecated", "dependencies", "optionalDependencies",
                       "devDependencies", "bundleDependencies", "peerDependencies", "peerDependenciesMeta",
                       "acceptDependencies", "bin", "directories", "dist", "engines", "cpu", "os", "libc",
                       "_hasShrinkwrap", "hasInstallScript", "funding", "license"}
    assert cv["bin"] == {"tool": "index.js"} and cv["hasInstallScript"] is True and "keywords" not in cv

    with reg.http() as c:
        for path in ("@w%2fshape", "@w%2Fshape", "@w/shape", "%40w%2fshape"):
            assert c.get(path).json()["name"] == "@w/shape", path
        assert c.get("@w/shape/1.0.0").json()["version"] == "1.0.0"
        assert c.get("@w%2fshape/latest").json()["dist"]["tarball"].endswith("shape-1.0.0.tgz")
        assert c.get("@w/shape/9.9.9").status_code == 404
        tgz = c.get("@w/shape/-/shape-1.0.0.tgz")
        assert tgz.status_code == 200 and tgz.headers["content-type"] == "application/octet-stream"
        assert base64.b64encode(hashlib.sha512(tgz.content).digest()).decode() == \
            v["dist"]["integrity"][7:]
        assert c.get("@w/shape/-/shape-9.9.9.tgz").status_code == 404
        assert c.get("@w/shape/-/other-1.0.0.tgz").status_code == 404
        assert c.get("-/ping").json() == {}
        assert c.get("-/whoami").json() == {"username": "admin"}
        assert c.get("never-published").status_code == 404


def test_etag_304_gzip_and_revalidation(reg):
    assert put(reg, "cachey", publish_body("cachey", "1.0.0")).status_code == 201
    with reg.http() as c:
        first = c.get("cachey", headers={"Accept-Encoding": "gzip"})
        assert first.headers["content-encoding"] == "gzip" and first.json()["name"] == "cachey"
        etag = first.headers["etag"]
        again = c.get("cachey", headers={"Accept-Encoding": "gzip", "If-None-Match": etag})
        assert again.status_code == 304 and again.headers["etag"] == etag
        plain = c.get("cachey", headers={"Accept-Encoding": "identity"})
        assert "content-encoding" not in plain.headers and plain.headers["etag"] != etag
        assert put(reg, "cachey", publish_body("cachey", "1.1.0")).status_code == 201
        changed = c.get("cachey", headers={"Accept-Encoding": "gzip", "If-None-Match": etag})
        assert changed.status_code == 200 and set(changed.json()["versions"]) == {"1.0.0", "1.1.0"}
        # the abbreviated document has its own validator
        corgi = c.get("cachey", headers={"Accept": "application/vnd.npm.install-v1+json"})
        assert corgi.headers["etag"] != plain.headers["etag"]


def test_unpublish_rev_must_be_current(reg):
    for v in ("1.0.0", "1.1.0"):
        assert put(reg, "revd", publish_body("revd", v)).status_code == 201
    doc = reg.packument("revd").json()
    stale = doc["_rev"]
    assert put(reg, "revd", publish_body("revd", "1.2.0")).status_code == 201
    del doc["versions"]["1.1.0"]
    with reg.http() as c:
        assert_error(c.put(f"revd/-rev/{stale}", json=doc), 409, "conflict")
        assert_error(c.delete(f"revd/-rev/{stale}"), 409, "conflict")
    assert set(reg.packument("revd").json()["versions"]) == {"1.0.0", "1.1.0", "1.2.0"}


def test_metadata_put_cannot_add_versions_and_keeps_hidden_ones(server, reg):
    for v in ("1.0.0", "1.1.0", "1.2.0"):
        assert put(reg, "meta", publish_body("meta", v)).status_code == 201
    server.boto().update_package_versions_status(domain=reg.domain, repository=reg.repo, format="npm",
                                                 package="meta", versions=["1.0.0"], targetStatus="Unlisted")
    doc = reg.packument("meta").json()
    assert set(doc["versions"]) == {"1.1.0", "1.2.0"}
    sneaky = json.loads(json.dumps(doc))
    sneaky["versions"]["9.0.0"] = dict(sneaky["versions"]["1.1.0"], version="9.0.0")
    assert_error(put(reg, "meta", sneaky), 400, "publish it with its tarball")
    # unpublish 1.2.0 the way npm does (PUT -rev without it): the Unlisted 1.0.0 stays
    del doc["versions"]["1.2.0"]
    doc["dist-tags"] = {"latest": "1.1.0"}
    with reg.http() as c:
        assert c.put(f"meta/-rev/{doc['_rev']}", json=doc).status_code == 200
    out = server.boto().list_package_versions(domain=reg.domain, repository=reg.repo, format="npm", package="meta")
    assert {v["version"]: v["status"] for v in out["versions"]} == {"1.0.0": "Unlisted", "1.1.0": "Published"}
    # a deprecation through a plain PUT of the packument
    doc = reg.packument("meta").json()
    doc["versions"]["1.1.0"]["deprecated"] = "gone soon"
    assert put(reg, "meta", doc).status_code == 200
    assert reg.packument("meta").json()["versions"]["1.1.0"]["deprecated"] == "gone soon"
    corgi = reg.packument("meta", accept="application/vnd.npm.install-v1+json").json()
    assert corgi["versions"]["1.1.0"]["deprecated"] == "gone soon"


def test_origin_controls_block_publish(server, reg):
    assert put(reg, "@o/blocked", publish_body("@o/blocked", "1.0.0")).status_code == 201
    server.boto().put_package_origin_configuration(
        domain=reg.domain, repository=reg.repo, format="npm", namespace="o", package="blocked",
        restrictions={"publish": "BLOCK", "upstream": "ALLOW"})
    resp = put(reg, "@o/blocked", publish_body("@o/blocked", "1.1.0"))
    assert resp.status_code == 403, resp.text
    assert list(reg.packument("@o/blocked").json()["versions"]) == ["1.0.0"]
