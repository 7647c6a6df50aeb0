"""Real `mvn` (3.8.7) against a real `arca serve`: deploy, snapshot builds, strict resolution,
the curl-then-publish workflow, immutability and bad tokens. Each mvn run costs seconds, so
each test walks through one scenario end to end."""

from __future__ import annotations

import hashlib
import io
import subprocess
import zipfile
from pathlib import Path

import httpx
import pytest

from tests.maven_support import Mvn
from tests.support.server import clean_env, require_tool


@pytest.fixture
def repo(server, unique):
    d = f"mv{unique}"
    server.create_repo(d, "libs")
    return d, server.token(d), server.endpoint(d, "maven", "libs")


def _versions(server, d, group, artifact, **kw):
    out = server.boto().list_package_versions(domain=d, repository="libs", format="maven", namespace=group,
                                              package=artifact, **kw)
    return {v["version"]: v["status"] for v in out["versions"]}


def _assets(server, d, group, artifact, version):
    out = server.boto().list_package_version_assets(domain=d, repository="libs", format="maven",
                                                    namespace=group, package=artifact, packageVersion=version)
    return {a["name"]: a for a in out["assets"]}


def _jar(classes: dict[str, bytes] | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("META-INF/MANIFEST.MF", "Manifest-Version: 1.0\n")
        for name, data in (classes or {}).items():
            z.writestr(name, data)
    return buf.getvalue()


def _pom(group, artifact, version) -> bytes:
    return (f'<project xmlns="http://maven.apache.org/POM/4.0.0"><modelVersion>4.0.0</modelVersion>'
            f"<groupId>{group}</groupId><artifactId>{artifact}</artifactId><version>{version}</version>"
            "</project>").encode()


def _curl_put(url: str, token: str, data: Path, *, content_type: str | None) -> str:
    curl = require_tool("curl")
    cmd = [curl, "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--request", "PUT", url, "--user", f"aws:{token}"]
    if content_type:
        cmd += ["--header", f"Content-Type: {content_type}"]
    cmd += ["--data-binary", f"@{data}"]
    return subprocess.run(cmd, env=clean_env(), capture_output=True, text=True, check=True, timeout=60).stdout


def test_mvn_deploy_release_two_snapshots_and_strict_resolve(server, repo, unique, mvn: Mvn):
    d, token, ep = repo
    group = f"com.acme.u{unique}"
    gpath = group.replace(".", "/")
    lib = mvn.project("lib", group, "lib", "1.0.0", ep, description="The acme library")
    lib.write_class(group, "Lib", 'public static String hi() { return "hi"; }')
    mvn.run(lib, "deploy", repo_url=ep, token=token)
    assert _versions(server, d, group, "lib") == {"1.0.0": "Published"}
    assets = _assets(server, d, group, "lib", "1.0.0")
    assert set(assets) == {"lib-1.0.0.jar", "lib-1.0.0.pom"}
    jar = lib.built().read_bytes()
    assert assets["lib-1.0.0.jar"]["hashes"]["SHA-256"] == hashlib.sha256(jar).hexdigest()
    assert assets["lib-1.0.0.jar"]["size"] == len(jar)
    described = server.boto().describe_package_version(domain=d, repository="libs", format="maven", namespace=group,
                                                       package="lib", packageVersion="1.0.0")["packageVersion"]
    assert described["summary"] == "The acme library" and described["status"] == "Published"

    snap = mvn.project("snap", group, "snap", "2.0-SNAPSHOT", ep)
    snap.write_class(group, "Snap", "public static int n() { return 1; }")
    mvn.run(snap, "deploy", repo_url=ep, token=token)
    snap.write_class(group, "Snap", "public static int n() { return 2; }")
    mvn.run(snap, "deploy", repo_url=ep, token=token)
    assert _versions(server, d, group, "snap") == {"2.0-SNAPSHOT": "Published"}
    names = sorted(_assets(server, d, group, "snap", "2.0-SNAPSHOT"))
    builds = sorted(n.rsplit("-", 1)[1] for n in names)
    assert builds == ["1.jar", "1.pom", "2.jar", "2.pom"], names
    meta = httpx.get(f"{ep}{gpath}/snap/2.0-SNAPSHOT/maven-metadata.xml", auth=("aws", token)).text
    assert "<buildNumber>2</buildNumber>" in meta

    # An Unfinished 1.2.0 (curl, never published) must not win the range below.
    curl_jar = mvn.work / "unfinished.jar"
    curl_jar.write_bytes(_jar())
    assert _curl_put(f"{ep}{gpath}/lib/1.2.0/lib-1.2.0.jar", token, curl_jar,
                     content_type="application/octet-stream") == "201"
    assert _versions(server, d, group, "lib")["1.2.0"] == "Unfinished"

    mvn.forget(group)  # the deploys installed both artifacts locally: resolve them from the server
    consumer = mvn.project("consumer", f"org.user{unique}", "consumer", "1.0", ep,
                           deps=[(group, "lib", "[1.0,2.0)"), (group, "snap", "2.0-SNAPSHOT")])
    consumer.write_class(f"org.user{unique}", "Use", f"String s = {group}.Lib.hi() + {group}.Snap.n();")
    mvn.run(consumer, "compile", repo_url=ep, token=token, strict=True)
    local = mvn.local_repo / gpath
    assert (local / "lib/1.0.0/lib-1.0.0.jar").read_bytes() == jar
    assert not (local / "lib/1.2.0").exists()
    resolved = [p.name for p in (local / "snap/2.0-SNAPSHOT").glob("snap-2.0-*-2.jar")]
    assert len(resolved) == 1, sorted(p.name for p in (local / "snap/2.0-SNAPSHOT").iterdir())


def test_curl_put_then_publish_then_mvn_resolves(server, repo, unique, mvn: Mvn):
    d, token, ep = repo
    group = f"com.acme.c{unique}"
    gpath = group.replace(".", "/")
    files = mvn.work / f"curl{unique}"
    files.mkdir(parents=True)
    jars = {}
    for artifact in ("app", "app2", "app3"):
        jars[artifact] = _jar({f"{artifact}/Marker.txt": artifact.encode()})
        (files / f"{artifact}.jar").write_bytes(jars[artifact])
        (files / f"{artifact}.pom").write_bytes(_pom(group, artifact, "1.0.0"))
        base = f"{ep}{gpath}/{artifact}/1.0.0/{artifact}-1.0.0"
        # As in the CodeArtifact docs, and without the header (curl then says form-urlencoded).
        assert _curl_put(base + ".jar", token, files / f"{artifact}.jar",
                         content_type="application/octet-stream") == "201"
        assert _curl_put(base + ".pom", token, files / f"{artifact}.pom", content_type=None) == "201"

    listed = server.cli_json("list-package-versions", "--domain", d, "--repository", "libs", "--format", "maven",
                             "--namespace", group, "--package", "app")
    assert [(v["version"], v["status"]) for v in listed["versions"]] == [("1.0.0", "Unfinished")]
    auth = ("aws", token)
    assert httpx.get(f"{ep}{gpath}/app/1.0.0/app-1.0.0.jar", auth=auth).status_code == 404
    assert httpx.get(f"{ep}{gpath}/app/1.0.0/app-1.0.0.jar.sha1", auth=auth).status_code == 404
    assert httpx.get(f"{ep}{gpath}/app/maven-metadata.xml", auth=auth).status_code == 404

    # Publish app through the arca CLI, app2 by PUTting maven-metadata.xml, app3 by boto3 then Unlisted.
    out = server.cli_json("update-package-versions-status", "--domain", d, "--repository", "libs", "--format",
                          "maven", "--namespace", group, "--package", "app", "--versions", "1.0.0",
                          "--expected-status", "Unfinished", "--target-status", "Published")
    assert out["successfulVersions"]["1.0.0"]["status"] == "Published"
    meta = files / "maven-metadata.xml"
    meta.write_text(f"<metadata><groupId>{group}</groupId><artifactId>app2</artifactId><versioning>"
                    "<latest>1.0.0</latest><release>1.0.0</release><versions><version>1.0.0</version></versions>"
                    "<lastUpdated>20240101000000</lastUpdated></versioning></metadata>")
    assert _curl_put(f"{ep}{gpath}/app2/maven-metadata.xml", token, meta, content_type="application/xml") == "200"
    c = server.boto()
    c.update_package_versions_status(domain=d, repository="libs", format="maven", namespace=group, package="app3",
                                     versions=["1.0.0"], targetStatus="Published")
    c.update_package_versions_status(domain=d, repository="libs", format="maven", namespace=group, package="app3",
                                     versions=["1.0.0"], expectedStatus="Published", targetStatus="Unlisted")
    assert _versions(server, d, group, "app2") == {"1.0.0": "Published"}
    assert _versions(server, d, group, "app3") == {"1.0.0": "Unlisted"}
    assert httpx.get(f"{ep}{gpath}/app3/maven-metadata.xml", auth=auth).status_code == 404

    consumer = mvn.project(f"consumer{unique}", f"org.user{unique}", "consumer", "1.0", ep,
                           deps=[(group, a, "1.0.0") for a in ("app", "app2", "app3")])
    consumer.write_class(f"org.user{unique}", "Use")
    mvn.run(consumer, "compile", repo_url=ep, token=token, strict=True)
    for artifact, data in jars.items():
        assert (mvn.local_repo / gpath / artifact / "1.0.0" / f"{artifact}-1.0.0.jar").read_bytes() == data


def test_mvn_redeploy_rules_and_bad_tokens(server, repo, unique, mvn: Mvn):
    d, token, ep = repo
    group = f"com.acme.r{unique}"
    lib = mvn.project(f"redeploy{unique}", group, "lib", "1.0.0", ep)
    lib.write_class(group, "Lib", "public static int v() { return 1; }")
    mvn.run(lib, "deploy", repo_url=ep, token=token)
    before = _assets(server, d, group, "lib", "1.0.0")

    # The identical (reproducible) build deploys again: a safe retry.
    mvn.run(lib, "deploy", repo_url=ep, token=token)
    assert _assets(server, d, group, "lib", "1.0.0") == before

    # Other bytes for a published release: 409, and mvn fails cleanly.
    lib.write_class(group, "Lib", "public static int v() { return 2; }")
    proc = mvn.run(lib, "deploy", repo_url=ep, token=token, check=False)
    assert proc.returncode != 0 and "409" in proc.stdout, proc.stdout[-3000:]
    assert _assets(server, d, group, "lib", "1.0.0") == before

    # A wrong token and a missing one (Maven then sends the literal ${env...}): 401, nothing stored.
    # -U re-checks the plugin POM Maven could not find before, as on a fresh machine, so the
    # build fails on that GET's 401. (A 401 to a PUT is answered before Maven's body is read;
    # see the report on Connection: close in app/formats/http.py.)
    other = mvn.project(f"other{unique}", group, "other", "1.0.0", ep)
    other.write_class(group, "Other")
    for bad in ("not-a-token", None):
        proc = mvn.run(other, "-U", "deploy", repo_url=ep, token=bad, check=False)
        assert proc.returncode != 0 and "401" in proc.stdout, proc.stdout[-3000:]
    packages = server.boto().list_packages(domain=d, repository="libs")["packages"]
    assert [p["package"] for p in packages] == ["lib"]
