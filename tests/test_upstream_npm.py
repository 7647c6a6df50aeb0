"""npm through upstream repositories and `public:npmjs`, with a real Verdaccio 6.8.0 as the
remote and real npm as the client: app -> libs -> proxy (public:npmjs)."""

from __future__ import annotations

import httpx
import pytest

from tests.npm_support import Registry, installed_version, write_consumer, write_npmrc
from tests.support.checks import stored_versions
from tests.support.server import start_server
from tests.upstream_support import Remote, Verdaccio


@pytest.fixture(scope="module")
def verd(tmp_path_factory):
    v = Verdaccio(tmp_path_factory.mktemp("verdaccio"))
    remote = Remote(v.url)
    remote.verdaccio = v
    yield remote
    remote.close()
    v.stop()


@pytest.fixture(scope="module")
def arca(tmp_path_factory, verd):
    srv = start_server(tmp_path_factory.mktemp("arca-up-npm"), env={
        "ARCA_EXTERNAL_PUBLIC_NPMJS": f"{verd.url}/", "ARCA_UPSTREAM_MAX_AGE": "0",
        "ARCA_UPSTREAM_BREAKER_FAILURES": "1000"})
    yield srv
    srv.stop()


@pytest.fixture
def chain(arca, unique, tmp_path):
    d = f"n{unique}"
    c = arca.boto()
    c.create_domain(domain=d)
    c.create_repository(domain=d, repository="proxy")
    c.associate_external_connection(domain=d, repository="proxy", externalConnection="public:npmjs")
    c.create_repository(domain=d, repository="libs", upstreams=[{"repositoryName": "proxy"}])
    c.create_repository(domain=d, repository="app", upstreams=[{"repositoryName": "libs"}])
    token = arca.token(d)
    regs = {}
    for repo in ("app", "libs"):
        reg = Registry(arca, d, repo, token, tmp_path / repo)
        write_npmrc(reg.npmrc, reg.url, token)
        regs[repo] = reg
    return regs


def _versions(arca, d, repo, name):
    return sorted(stored_versions(arca.boto(), domain=d, repository=repo, format="npm", package=name))


def test_npm_install_through_two_level_chain_and_retention(arca, verd, chain, unique):
    app, libs = chain["app"], chain["libs"]
    pub = f"pubn-{unique}"
    verd.verdaccio.publish(pub, "1.0.0")
    verd.verdaccio.publish(pub, "1.1.0")
    libs.publish(f"intn-{unique}", "1.0.0", deps={pub: "^1.0.0"})

    project = write_consumer(app.root / "consumer", {f"intn-{unique}": "^1.0.0"})
    app.npm("install", cwd=project)
    assert installed_version(project, f"intn-{unique}") == "1.0.0"
    assert installed_version(project, pub) == "1.1.0"

    doc = app.packument(pub).json()
    assert sorted(doc["versions"]) == ["1.0.0", "1.1.0"]
    assert doc["dist-tags"]["latest"] == "1.1.0"
    assert all(v["dist"]["tarball"].startswith(app.url) for v in doc["versions"].values())
    corgi = app.packument(pub, accept="application/vnd.npm.install-v1+json").json()
    assert sorted(corgi["versions"]) == ["1.0.0", "1.1.0"]
    assert _versions(arca, app.domain, "proxy", pub) == ["1.1.0"]
    desc = arca.boto().describe_package_version(domain=app.domain, repository="proxy", format="npm",
                                                package=pub, packageVersion="1.1.0")["packageVersion"]
    assert desc["origin"]["originType"] == "EXTERNAL"
    assert desc["origin"]["domainEntryPoint"] == {"externalConnectionName": "public:npmjs"}
    assert _versions(arca, app.domain, "app", pub) == []


def test_retained_versions_install_when_verdaccio_is_stopped(arca, verd, chain, unique, tmp_path):
    app = chain["app"]
    own = Verdaccio(tmp_path / "own-verdaccio")
    saved = verd.target
    verd.target = own.url
    try:
        own.publish(f"keepn-{unique}", "1.0.0")
        p1 = write_consumer(tmp_path / "c1", {f"keepn-{unique}": "1.0.0"})
        app.npm("install", cwd=p1)
        own.stop()
        assert own.proc.poll() is not None
        p2 = write_consumer(tmp_path / "c2", {f"keepn-{unique}": "1.0.0"})
        app.npm("install", cwd=p2, cache=tmp_path / "fresh-cache")
        assert installed_version(p2, f"keepn-{unique}") == "1.0.0"
        # Never fetched before: nothing retained, so 502 rather than a wrong answer.
        with app.http() as c:
            assert c.get(f"never-{unique}").status_code == 502
    finally:
        verd.target = saved
        own.stop()


def test_tarball_integrity_mismatch_is_refused(arca, verd, chain, unique, tmp_path):
    app = chain["app"]
    name = f"badn-{unique}"
    verd.verdaccio.publish(name, "1.0.0")
    verd.tamper[f"/{name}/-/"] = lambda body: body + b"\0"
    try:
        p = write_consumer(tmp_path / "c", {name: "1.0.0"})
        proc = app.npm("install", cwd=p, check=False)
        assert proc.returncode != 0
        with app.http() as c:
            r = c.get(f"{name}/-/{name}-1.0.0.tgz")
        assert r.status_code == 502 and "sha512" in r.text
        assert _versions(arca, app.domain, "proxy", name) == []
    finally:
        verd.tamper.pop(f"/{name}/-/", None)


def test_dependency_confusion_internal_npm_name_wins(arca, verd, chain, unique, tmp_path):
    app, libs = chain["app"], chain["libs"]
    name = f"confn-{unique}"
    libs.publish(name, "1.0.0")  # internal first; then the attacker publishes a higher public version
    verd.verdaccio.publish(name, "9.0.0")
    p = write_consumer(tmp_path / "c", {name: "*"})
    app.npm("install", cwd=p)
    assert installed_version(p, name) == "1.0.0"
    assert sorted(app.packument(name).json()["versions"]) == ["1.0.0"]
    with app.http() as c:
        assert c.get(f"{name}/-/{name}-9.0.0.tgz").status_code == 404
    assert _versions(arca, app.domain, "proxy", name) == []


def test_a_retained_version_keeps_every_field_the_remote_gives(arca, verd, chain, unique, tmp_path):
    """The entry of a version retained from the remote is the remote's, field by field (engines,
    funding, gitHead, _npmUser, dist.fileCount ...), and follows the remote when it changes
    (a deprecation there shows here, and npm warns about it)."""
    app = chain["app"]
    name = f"fields-{unique}"
    extra = {"engines": {"node": ">=18"}, "funding": "https://example.invalid/fund", "keywords": ["a", "b"],
             "gitHead": "0123456789abcdef", "bin": {f"fields-{unique}": "index.js"}, "os": ["linux", "darwin"]}
    verd.verdaccio.publish(name, "1.0.0", extra=extra)
    p = write_consumer(tmp_path / "c", {name: "1.0.0"})
    app.npm("install", cwd=p)
    assert _versions(arca, app.domain, "proxy", name) == ["1.0.0"]

    remote = httpx.get(f"{verd.verdaccio.url}/{name}", timeout=30).json()["versions"]["1.0.0"]
    ours = app.packument(name).json()["versions"]["1.0.0"]
    assert {k: v for k, v in ours.items() if k != "dist"} == {k: v for k, v in remote.items() if k != "dist"}
    assert {k: v for k, v in ours["dist"].items() if k != "tarball"} == \
        {k: v for k, v in remote["dist"].items() if k != "tarball"}
    assert ours["dist"]["tarball"] == app.url + f"{name}/-/{name}-1.0.0.tgz"
    corgi = app.packument(name, accept="application/vnd.npm.install-v1+json").json()["versions"]["1.0.0"]
    assert corgi["engines"] == {"node": ">=18"} and corgi["os"] == ["linux", "darwin"]

    verd.verdaccio.npm("deprecate", f"{name}@1.0.0", "use 2.x")
    assert app.packument(name).json()["versions"]["1.0.0"]["deprecated"] == "use 2.x"
    fresh = app.npm("install", cwd=write_consumer(tmp_path / "c2", {name: "1.0.0"}), cache=tmp_path / "cache2")
    assert "use 2.x" in fresh.stderr


def test_versions_tags_and_conditional_documents_through_the_chain(arca, verd, chain, unique, tmp_path):
    """`GET /{name}/{version}` and `/{name}/{dist-tag}` answer from the merged document; the full and
    the abbreviated document answer If-None-Match with 304 until the remote changes."""
    app, libs = chain["app"], chain["libs"]
    pub, own = f"vt-{unique}", f"vt-own-{unique}"
    verd.verdaccio.publish(pub, "1.0.0")
    verd.verdaccio.publish(pub, "2.0.0-beta.1", tag="next")
    libs.publish(own, "3.1.0")
    with app.http() as c:
        v = c.get(f"{pub}/1.0.0").json()
        assert v["version"] == "1.0.0" and v["dist"]["tarball"] == app.url + f"{pub}/-/{pub}-1.0.0.tgz"
        assert c.get(f"{pub}/latest").json()["version"] == "1.0.0"
        assert c.get(f"{pub}/next").json()["version"] == "2.0.0-beta.1"
        assert c.get(f"{own}/latest").json()["version"] == "3.1.0"  # from libs
        missing = c.get(f"{pub}/9.9.9")
        assert missing.status_code == 404 and "9.9.9" in missing.json()["error"]
        etags = {}
        for accept in ("application/json", "application/vnd.npm.install-v1+json"):
            etags[accept] = c.get(pub, headers={"Accept": accept}).headers["etag"]
            again = c.get(pub, headers={"Accept": accept, "If-None-Match": etags[accept]})
            assert again.status_code == 304 and again.content == b""
        assert len(set(etags.values())) == 2
    shown = app.npm_json("view", f"{pub}@next", "version")
    assert shown == "2.0.0-beta.1"
    verd.verdaccio.publish(pub, "1.1.0")
    with app.http() as c:
        for accept in ("application/json", "application/vnd.npm.install-v1+json"):
            fresh = c.get(pub, headers={"Accept": accept, "If-None-Match": etags[accept]})
            assert fresh.status_code == 200 and "1.1.0" in fresh.json()["versions"]
        assert c.get(f"{pub}/latest").json()["version"] == "1.1.0"
