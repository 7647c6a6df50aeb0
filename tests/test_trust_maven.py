"""Issue 14, Maven: a POM's own coordinates (after parent inheritance) must be those of the path
it is PUT to, for curl and for mvn alike; SNAPSHOT build names carry a plausible timestamp; an
empty jar or POM is refused. Each refusal is a 400 with the reason, and nothing is stored."""

from __future__ import annotations

import subprocess
from datetime import datetime, timedelta, timezone

import httpx
import pytest

from tests.maven_support import SERVER_ID, Mvn, mvn  # noqa: F401  (module-scoped fixture)
from tests.support.server import clean_env, require_tool

G, GP = "com.trust", "com/trust"


def pom(group: str | None, artifact: str, version: str | None, parent: tuple[str, str, str] | None = None,
        props: dict | None = None) -> bytes:
    parts = ["<project xmlns=\"http://maven.apache.org/POM/4.0.0\"><modelVersion>4.0.0</modelVersion>"]
    if parent:
        parts.append(f"<parent><groupId>{parent[0]}</groupId><artifactId>{parent[1]}</artifactId>"
                     f"<version>{parent[2]}</version></parent>")
    if group:
        parts.append(f"<groupId>{group}</groupId>")
    parts.append(f"<artifactId>{artifact}</artifactId>")
    if version:
        parts.append(f"<version>{version}</version>")
    if props:
        parts.append("<properties>" + "".join(f"<{k}>{v}</{k}>" for k, v in props.items()) + "</properties>")
    parts.append("</project>")
    return "".join(parts).encode()


@pytest.fixture
def repo(server, unique):
    d = f"tm{unique}"
    server.create_repo(d, "libs")
    return d, server.token(d), server.endpoint(d, "maven", "libs")


def _put(repo, path: str, data: bytes) -> httpx.Response:
    _d, token, ep = repo
    return httpx.put(ep + path, content=data, auth=("aws", token), timeout=60)


def _stored(server, repo, artifact: str) -> dict:
    d = repo[0]
    c = server.boto()
    try:
        out = c.list_package_versions(domain=d, repository="libs", format="maven", namespace=G, package=artifact)
    except c.exceptions.ResourceNotFoundException:
        return {}
    return {v["version"]: v["status"] for v in out["versions"]}


@pytest.mark.parametrize("body, reason", [
    (pom("com.other", "lib", "1.0"), "com.other:lib:1.0 but the path is com.trust:lib:1.0"),
    (pom(G, "other", "1.0"), "com.trust:other:1.0 but the path is com.trust:lib:1.0"),
    (pom(G, "lib", "1.0.0"), "com.trust:lib:1.0.0 but the path is com.trust:lib:1.0"),
    (pom(None, "lib", None, parent=("com.evil", "parent", "1.0")), "com.evil:lib:1.0 but the path is"),
    (pom(G, "lib", "${revision}"), "names a property it does not define"),
    (pom(None, "lib", "1.0"), "declares no groupId"),
    (b"<html><body>not a pom</body></html>", "root element must be <project>"),
    (b"<project><groupId>", "not well-formed"),
])
def test_a_pom_whose_coordinates_disagree_with_its_path_is_refused(server, repo, body, reason):
    resp = _put(repo, f"{GP}/lib/1.0/lib-1.0.pom", body)
    assert resp.status_code == 400 and reason in resp.text, resp.text
    assert reason[:40] in resp.reason_phrase or reason in resp.reason_phrase
    assert _stored(server, repo, "lib") == {}


@pytest.mark.parametrize("body", [
    pom(G, "lib", "1.0"),
    pom(None, "lib", None, parent=(G, "parent", "1.0")),  # both inherited from the parent
    pom(G, "lib", "${revision}", props={"revision": "1.0"}),  # CI-friendly version, resolved
])
def test_a_pom_with_the_paths_coordinates_is_stored(server, repo, body):
    assert _put(repo, f"{GP}/lib/1.0/lib-1.0.pom", body).status_code == 201
    assert _stored(server, repo, "lib") == {"1.0": "Unfinished"}


def test_snapshot_poms_match_their_version_directory(server, repo):
    name = f"{GP}/snap/1.0-SNAPSHOT/snap-1.0-20260101.120000-1.pom"
    assert _put(repo, name, pom(G, "snap", "1.0")).status_code == 400
    assert _put(repo, name, pom(G, "snap", "1.0-SNAPSHOT")).status_code == 201


@pytest.mark.parametrize("stamp", ["20261301.120000", "20260230.120000", "20260101.250000", "19990101.120000",
                                   "FUTURE"])
def test_snapshot_builds_need_a_plausible_timestamp(server, repo, stamp):
    if stamp == "FUTURE":
        stamp = (datetime.now(timezone.utc) + timedelta(days=3)).strftime("%Y%m%d.%H%M%S")
    resp = _put(repo, f"{GP}/snap/1.0-SNAPSHOT/snap-1.0-{stamp}-1.jar", b"jar bytes")
    assert resp.status_code == 400 and stamp in resp.text, resp.text
    assert _stored(server, repo, "snap") == {}
    today = datetime.now(timezone.utc).strftime("%Y%m%d.%H%M%S")
    assert _put(repo, f"{GP}/snap/1.0-SNAPSHOT/snap-1.0-{today}-1.jar", b"jar bytes").status_code == 201


@pytest.mark.parametrize("name", ["lib-1.0.jar", "lib-1.0.pom", "lib-1.0.war", "lib-1.0-sources.jar"])
def test_an_empty_jar_or_pom_is_refused(server, repo, name, tmp_path):
    resp = _put(repo, f"{GP}/lib/1.0/{name}", b"")
    assert resp.status_code == 400 and "is empty" in resp.text, resp.text
    # curl sends the empty body the same way a broken build would
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    d, token, ep = repo
    out = subprocess.run([require_tool("curl"), "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--request", "PUT",
                          "--user", f"aws:{token}", "--data-binary", f"@{empty}", f"{ep}{GP}/lib/1.0/{name}"],
                         env=clean_env(), capture_output=True, text=True, timeout=60)
    assert out.stdout == "400"
    assert _stored(server, repo, "lib") == {}


def test_mvn_deploy_file_with_a_pom_of_other_coordinates_fails(server, repo, mvn: Mvn, unique):
    d, token, ep = repo
    project = mvn.project(f"deployfile{unique}", G, "real", "1.0", ep)
    jar = project.dir / "real.jar"
    jar.write_bytes(b"PK\x05\x06" + bytes(18))  # an empty zip
    other = project.dir / "other.pom"
    other.write_bytes(pom("com.elsewhere", "other", "9.9"))
    proc = mvn.run(project, "deploy:deploy-file", f"-Dfile={jar}", f"-DpomFile={other}", f"-DgroupId={G}",
                   "-DartifactId=real", "-Dversion=1.0", "-Dpackaging=jar", f"-Durl={ep}",
                   f"-DrepositoryId={SERVER_ID}", "-DgeneratePom=false", repo_url=ep, token=token, check=False)
    assert proc.returncode != 0
    assert "400" in proc.stdout + proc.stderr
    assert _stored(server, repo, "other") == {}
    assert "1.0" not in _stored(server, repo, "real") or _stored(server, repo, "real")["1.0"] == "Unfinished"
