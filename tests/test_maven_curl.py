"""The Maven layout over plain HTTP (real curl where the CodeArtifact docs use it, httpx and raw
http.client elsewhere): validation, checksums, statuses, immutability, metadata, auth, races."""

from __future__ import annotations

import hashlib
import http.client
import json
import subprocess
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import defusedxml.ElementTree as ET
import httpx
import pytest

from tests.support.server import clean_env, require_tool

G, GP = "com.acme", "com/acme"


@dataclass
class Repo:
    server: object
    domain: str
    token: str
    ep: str

    @property
    def auth(self):
        return ("aws", self.token)

    def put(self, path: str, data: bytes, **headers) -> httpx.Response:
        return httpx.put(self.ep + path, content=data, auth=self.auth, headers=headers, timeout=60)

    def get(self, path: str, **headers) -> httpx.Response:
        return httpx.get(self.ep + path, auth=self.auth, headers=headers, timeout=60)

    def raw(self, method: str, raw_path: str, body: bytes = b"", headers: dict | None = None):
        """A request whose path goes out byte for byte (no normalisation, no re-encoding)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=60)
        try:
            prefix = self.ep.split(str(self.server.port), 1)[1]
            conn.putrequest(method, prefix + raw_path, skip_accept_encoding=True)
            hdrs = {"Authorization": httpx.BasicAuth(*self.auth)._auth_header, "Content-Length": str(len(body))}
            for k, v in {**hdrs, **(headers or {})}.items():
                conn.putheader(k, v)
            conn.endheaders(body)
            resp = conn.getresponse()
            return resp.status, resp.read().decode(errors="replace"), dict(resp.getheaders())
        finally:
            conn.close()

    def boto(self, op: str, **kw):
        return getattr(self.server.boto(), op)(domain=self.domain, repository="libs", **kw)

    def versions(self, artifact: str, group: str = G, **kw) -> dict:
        out = self.boto("list_package_versions", format="maven", namespace=group, package=artifact, **kw)
        return {v["version"]: v["status"] for v in out["versions"]}

    def assets(self, artifact: str, version: str, group: str = G) -> dict:
        out = self.boto("list_package_version_assets", format="maven", namespace=group, package=artifact,
                        packageVersion=version)
        return {a["name"]: a for a in out["assets"]}

    def set_status(self, artifact: str, versions: list[str], target: str, group: str = G, **kw) -> dict:
        return self.boto("update_package_versions_status", format="maven", namespace=group, package=artifact,
                         versions=versions, targetStatus=target, **kw)

    def packages(self) -> list[str]:
        return [f"{p.get('namespace')}:{p['package']}" for p in self.boto("list_packages")["packages"]]

    def metadata(self, artifact: str, versions: list[str], group: str = G) -> bytes:
        vs = "".join(f"<version>{v}</version>" for v in versions)
        return (f"<metadata><groupId>{group}</groupId><artifactId>{artifact}</artifactId><versioning>"
                f"<versions>{vs}</versions><lastUpdated>20000101000000</lastUpdated></versioning></metadata>").encode()

    def publish(self, artifact: str, version: str, files: dict[str, bytes], group: str = G) -> None:
        base = f"{group.replace('.', '/')}/{artifact}/{version}/"
        for name, data in files.items():
            assert self.put(base + name, data).status_code == 201
        resp = self.put(f"{group.replace('.', '/')}/{artifact}/maven-metadata.xml",
                        self.metadata(artifact, [version], group))
        assert resp.status_code == 200, resp.text


def pom_of(group: str, artifact: str, version: str, note: str = "") -> bytes:
    """A minimal POM with these coordinates (what the server checks an uploaded POM against)."""
    return (f"<project><modelVersion>4.0.0</modelVersion><groupId>{group}</groupId><artifactId>{artifact}"
            f"</artifactId><version>{version}</version><description>{note}</description></project>").encode()


def _repo(server, unique) -> Repo:
    d = f"mc{unique}"
    server.create_repo(d, "libs")
    return Repo(server, d, server.token(d), server.endpoint(d, "maven", "libs"))


@pytest.fixture
def repo(server, unique) -> Repo:
    return _repo(server, unique)


@pytest.fixture(scope="module")
def empty_repo(server) -> Repo:
    """Every request sent here is refused, so it must stay empty."""
    return _repo(server, uuid.uuid4().hex[:8])


def _meta_versions(body: str) -> list[str]:
    return [v.text for v in ET.fromstring(body).findall("versioning/versions/version")]


# ---- validation ------------------------------------------------------------------------------------

LONG = "x" * 256
# (raw path, words in the one-line reason, status of a GET of the same path)
BAD_PATHS = [
    ("com/acme/../app/1.0/app-1.0.jar", "traversal", 400),
    ("com/acme/%2e%2e/app/1.0/app-1.0.jar", "traversal", 400),
    ("com/acme/app/%2E/app-1.0.jar", "traversal", 400),
    ("com/acme%2fevil/app/1.0/app-1.0.jar", "%2F", 400),
    ("com/acme/app%2F1.0/1.0/app-1.0.jar", "%2F", 400),
    ("com\\acme/app/1.0/app-1.0.jar", "Backslash", 400),
    ("com%5Cacme/app/1.0/app-1.0.jar", "Backslash", 400),
    ("com/acme/app/1.0/app-1.0.jar%00", "Control characters", 400),
    ("com/acme/app/1.0/app-1.0%0d.jar", "Control characters", 400),
    ("com/acme/app%09x/1.0/app%09x-1.0.jar", "Control characters", 400),
    ("com/acme/app/1.0/app-1.0.jar%ff", "UTF-8", 400),
    ("app/1.0/app-1.0.jar", "too short", 404),
    ("app-1.0.jar", "too short", 404),
    ("app/maven-metadata.xml", "too short", 404),
    ("/app/1.0/app-1.0.jar", "groupId is empty", 400),
    ("com//app/1.0/app-1.0.jar", "groupId is empty", 400),
    ("com/ac%20me/app/1.0/app-1.0.jar", "Illegal character(s) ' ' in groupId", 400),
    ("com/acme/a:pp/1.0/a:pp-1.0.jar", "Illegal character(s) ':' in artifactId", 400),
    ("com/acme/app/1.0|2/app-1.0|2.jar", "Illegal character(s) '|' in version", 400),
    ("com/acme/app/1.0/app-1.0$.jar", "Illegal character(s) '$' in file name", 400),
    ("com/acme/app/1.0/other-1.0.jar", "must start with 'app-1.0'", 404),
    ("com/acme/app/1.0/app-1.1.jar", "Version directory '1.0' disagrees", 404),
    ("com/acme/app/1.0/app-1.0", "disagrees", 404),
    ("com/acme/app/1.0-SNAPSHOT/app-1.1-20240101.120000-1.jar", "disagrees", 404),
    (f"com/{LONG}/app/1.0/app-1.0.jar", "at most 255", 400),
    ("/".join(["g" * 100] * 3) + "/app/1.0/app-1.0.jar", "groupId is 302 characters", 400),
    (f"com/acme/{LONG}/1.0/{LONG}-1.0.jar", "artifactId is 256 characters", 400),
    (f"com/acme/app/{LONG}/app-{LONG}.jar", "version is 256 characters", 400),
    (f"com/acme/app/1.0/app-1.0-{LONG}.jar", "file name is", 400),
]


@pytest.mark.parametrize("raw_path,reason,get_status", BAD_PATHS, ids=[f"bad{i}" for i in range(len(BAD_PATHS))])
def test_invalid_coordinates_are_400_and_store_nothing(empty_repo: Repo, raw_path, reason, get_status):
    status, body, headers = empty_repo.raw("PUT", raw_path, b"PK\x03\x04 not stored",
                                           {"Expect": "100-continue"} if "1.0.jar" in raw_path else None)
    assert status == 400, (status, body)
    assert reason in body and body.count("\n") == 1, body
    assert headers.get("connection") == "close"
    status, body, _ = empty_repo.raw("GET", raw_path)
    assert status == get_status, (status, body)
    assert empty_repo.packages() == []


def test_unknown_paths_are_fast_404_after_the_challenge(repo: Repo):
    path = "org/apache/maven/maven-core/3.2.5/maven-core-3.2.5.pom"
    anon = httpx.get(repo.ep + path)
    assert anon.status_code == 401 and anon.headers["www-authenticate"] == 'Basic realm="arca"'
    for p in (path, path + ".sha1", "org/apache/maven/plugins/maven-metadata.xml", "archetype-catalog.xml",
              f"{GP}/app/", f"{GP}/app/1.0-SNAPSHOT/maven-metadata.xml"):
        assert repo.get(p).status_code == 404, p
    assert httpx.delete(repo.ep + f"{GP}/app/1.0/app-1.0.jar", auth=repo.auth).status_code == 405


# ---- curl PUT, checksums -------------------------------------------------------------------------

def _curl(url: str, token: str | None, path, *headers: str) -> tuple[str, str]:
    curl = require_tool("curl")
    cmd = [curl, "-sS", "-o", "-", "-w", "\n%{http_code}", "--request", "PUT", url]
    if token:
        cmd += ["--user", f"aws:{token}"]
    for h in headers:
        cmd += ["--header", h]
    cmd += ["--data-binary", f"@{path}"]
    out = subprocess.run(cmd, env=clean_env(), capture_output=True, text=True, check=True, timeout=60).stdout
    body, _, code = out.rpartition("\n")
    return code, body


def test_curl_put_stores_raw_bytes_and_serves_every_checksum(repo: Repo, tmp_path):
    small = tmp_path / "app-1.0.0.jar"
    small.write_bytes(b"a=1&b=2\n" * 100)  # looks like a form: must be stored verbatim
    big = tmp_path / "app-1.0.0-big.jar"
    big.write_bytes(bytes(range(256)) * 8192)  # 2 MiB: curl sends Expect: 100-continue
    base = f"{repo.ep}{GP}/app/1.0.0/"
    assert _curl(base + "app-1.0.0.jar", repo.token, small)[0] == "201"  # no header: form-urlencoded
    assert _curl(base + "app-1.0.0-big.jar", repo.token, big, "Content-Type: application/octet-stream")[0] == "201"
    pom = tmp_path / "app.pom"
    pom.write_bytes(b"<project><groupId>com.acme</groupId><artifactId>app</artifactId><version>1.0.0</version></project>")
    assert _curl(base + "app-1.0.0.pom", repo.token, pom, "Content-Type: text/xml")[0] == "201"
    code, body = _curl(base + "app-1.0.0.jar", None, small)
    assert code == "401"

    assert repo.versions("app") == {"1.0.0": "Unfinished"}
    assets = repo.assets("app", "1.0.0")
    assert assets["app-1.0.0.jar"]["hashes"]["SHA-256"] == hashlib.sha256(small.read_bytes()).hexdigest()
    assert assets["app-1.0.0-big.jar"]["size"] == big.stat().st_size
    for p in ("app-1.0.0.jar", "app-1.0.0.jar.sha1", "app-1.0.0.pom"):
        assert repo.get(f"{GP}/app/1.0.0/{p}").status_code == 404
    assert repo.get(f"{GP}/app/maven-metadata.xml").status_code == 404

    out = repo.set_status("app", ["1.0.0"], "Published", expectedStatus="Unfinished")
    assert out["successfulVersions"]["1.0.0"]["status"] == "Published"
    for f in (small, big):
        name = "app-1.0.0.jar" if f is small else "app-1.0.0-big.jar"
        data = f.read_bytes()
        resp = repo.get(f"{GP}/app/1.0.0/{name}")
        assert resp.status_code == 200 and resp.content == data
        for alg in ("sha1", "md5", "sha256", "sha512"):
            got = repo.get(f"{GP}/app/1.0.0/{name}.{alg}")
            assert got.status_code == 200 and got.text == hashlib.new(alg, data).hexdigest()
    assert _meta_versions(repo.get(f"{GP}/app/maven-metadata.xml").text) == ["1.0.0"]


def test_uploaded_checksums_are_verified(repo: Repo):
    data = b"jar bytes"
    base = f"{GP}/app/1.0/app-1.0.jar"
    assert repo.put(base, data).status_code == 201
    before = repo.boto("list_package_version_assets", format="maven", namespace=G, package="app",
                       packageVersion="1.0")
    for alg in ("sha1", "md5", "sha256", "sha512"):
        digest = hashlib.new(alg, data).hexdigest()
        assert repo.put(f"{base}.{alg}", digest.encode()).status_code == 200
        assert repo.put(f"{base}.{alg}", f"{digest.upper()}  app-1.0.jar\n".encode()).status_code == 200
        wrong = hashlib.new(alg, b"other").hexdigest()
        resp = repo.put(f"{base}.{alg}", wrong.encode())
        assert resp.status_code == 400 and "mismatch" in resp.text and wrong in resp.text
    for junk in (b"", b"xyz", b"12345"):
        resp = repo.put(f"{base}.sha1", junk)
        assert resp.status_code == 400 and "SHA-1 checksum" in resp.text
    # A checksum of a file that is not there yet is held for it (202: test_maven_parallel.py), and
    # creates no package, version or asset.
    resp = repo.put(f"{GP}/app/1.0/app-1.0-sources.jar.sha1", hashlib.sha1(b"x").hexdigest().encode())
    assert resp.status_code == 202
    resp = repo.put(f"{GP}/other/1.0/other-1.0.jar.md5", hashlib.md5(b"x").hexdigest().encode())
    assert resp.status_code == 202
    after = repo.boto("list_package_version_assets", format="maven", namespace=G, package="app", packageVersion="1.0")
    assert after["assets"] == before["assets"] and after["versionRevision"] == before["versionRevision"]
    assert repo.packages() == [f"{G}:app"]
    # Metadata checksums are accepted and ignored: the server renders (and sums) metadata itself.
    assert repo.put(f"{GP}/app/maven-metadata.xml.sha1", b"0" * 40).status_code == 200
    assert repo.put(f"{GP}/app/maven-metadata.xml.md5", b"junk").status_code == 200
    assert repo.versions("app") == {"1.0": "Unfinished"}


# ---- immutability and races ----------------------------------------------------------------------

def test_release_files_are_immutable_snapshots_are_not(repo: Repo):
    jar = f"{GP}/app/1.0/app-1.0.jar"
    assert repo.put(jar, b"A").status_code == 201
    assert repo.put(jar, b"A").status_code == 200  # a retry
    resp = repo.put(jar, b"B")  # even while Unfinished: one upload of a release file wins
    assert resp.status_code == 409 and "immutable" in resp.text
    repo.set_status("app", ["1.0"], "Published")
    assert repo.put(jar, b"A").status_code == 200
    assert repo.put(jar, b"B").status_code == 409
    assert repo.get(jar).content == b"A"
    # New files may still join a published release (e.g. sources later); they are immutable too.
    assert repo.put(f"{GP}/app/1.0/app-1.0-sources.jar", b"S").status_code == 201
    assert repo.put(f"{GP}/app/1.0/app-1.0-sources.jar", b"T").status_code == 409

    snap = f"{GP}/app/2.0-SNAPSHOT/app-2.0-SNAPSHOT.jar"
    assert repo.put(snap, b"one").status_code == 201
    assert repo.put(snap, b"two").status_code == 200
    repo.set_status("app", ["2.0-SNAPSHOT"], "Published")
    assert repo.put(snap, b"three").status_code == 200
    assert repo.get(snap).content == b"three"

    repo.set_status("app", ["1.0"], "Archived")
    resp = repo.put(f"{GP}/app/1.0/app-1.0-javadoc.jar", b"J")
    assert resp.status_code == 409 and "Archived" in resp.text
    assert set(repo.assets("app", "1.0")) == {"app-1.0.jar", "app-1.0-sources.jar"}


def test_parallel_puts_all_land_and_racing_puts_have_one_winner(repo: Repo):
    files = {f"app-3.0{c}.jar": f"body of {c}".encode() * 100 for c in
             ["", "-sources", "-javadoc", "-tests", "-a", "-b", "-c", "-d"]}
    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(lambda kv: repo.put(f"{GP}/app/3.0/{kv[0]}", kv[1]).status_code, files.items()))
    assert codes == [201] * 8
    stored = repo.assets("app", "3.0")
    assert {n: a["hashes"]["SHA-256"] for n, a in stored.items()} == {
        n: hashlib.sha256(b).hexdigest() for n, b in files.items()}
    assert repo.versions("app") == {"3.0": "Unfinished"}

    for round_ in range(4):
        name = f"{GP}/race/1.{round_}/race-1.{round_}.jar"
        bodies = [f"writer {i} ".encode() * 20000 for i in range(2)]
        barrier = threading.Barrier(2)

        def put(body):
            barrier.wait()
            return repo.put(name, body).status_code

        with ThreadPoolExecutor(2) as pool:
            codes = list(pool.map(put, bodies))
        assert sorted(codes) == [201, 409], codes
        winner = bodies[codes.index(201)]
        repo.set_status("race", [f"1.{round_}"], "Published")
        assert repo.get(name).content == winner


# ---- statuses through the control plane ----------------------------------------------------------

def test_status_transitions_and_control_plane_shapes(repo: Repo):
    jars = {v: f"jar {v}".encode() for v in ("1.0", "2.0", "3.0")}
    for v, data in jars.items():
        repo.publish("app", v, {f"app-{v}.jar": data, f"app-{v}.pom": pom_of(G, "app", v)})
    assert repo.versions("app") == {"1.0": "Published", "2.0": "Published", "3.0": "Published"}
    meta = lambda: _meta_versions(repo.get(f"{GP}/app/maven-metadata.xml").text)  # noqa: E731
    jar = lambda v: repo.get(f"{GP}/app/{v}/app-{v}.jar")  # noqa: E731
    assert meta() == ["1.0", "2.0", "3.0"]

    repo.set_status("app", ["1.0"], "Unlisted", expectedStatus="Published")
    assert jar("1.0").content == jars["1.0"] and meta() == ["2.0", "3.0"]
    assert repo.versions("app", status="Unlisted") == {"1.0": "Unlisted"}
    repo.set_status("app", ["1.0"], "Archived")
    assert jar("1.0").status_code == 404 and repo.get(f"{GP}/app/1.0/app-1.0.jar.sha1").status_code == 404
    assert meta() == ["2.0", "3.0"]
    out = repo.set_status("app", ["1.0"], "Published", expectedStatus="Unlisted")
    assert out["failedVersions"]["1.0"]["errorCode"] == "MISMATCHED_STATUS"
    repo.set_status("app", ["1.0"], "Published", expectedStatus="Archived")
    assert jar("1.0").status_code == 200 and meta() == ["1.0", "2.0", "3.0"]

    c = repo.server.boto()
    kw = dict(domain=repo.domain, repository="libs", format="maven", namespace=G, package="app")
    desc = c.describe_package_version(packageVersion="2.0", **kw)["packageVersion"]
    assert (desc["namespace"], desc["packageName"], desc["version"], desc["status"]) == (G, "app", "2.0", "Published")
    assets = repo.assets("app", "2.0")
    assert assets["app-2.0.jar"]["size"] == len(jars["2.0"])
    assert assets["app-2.0.jar"]["hashes"] == {alg: hashlib.new(name, jars["2.0"]).hexdigest() for alg, name in
                                               (("MD5", "md5"), ("SHA-1", "sha1"), ("SHA-256", "sha256"),
                                                ("SHA-512", "sha512"))}
    got = c.get_package_version_asset(packageVersion="2.0", asset="app-2.0.jar", **kw)
    assert got["asset"].read() == jars["2.0"] and got["packageVersion"] == "2.0"
    pkgs = c.list_packages(domain=repo.domain, repository="libs", format="maven")["packages"]
    assert [(p["namespace"], p["package"], p["format"]) for p in pkgs] == [(G, "app", "maven")]

    c.dispose_package_versions(versions=["2.0"], **kw)
    assert repo.versions("app")["2.0"] == "Disposed" and repo.assets("app", "2.0") == {}
    assert jar("2.0").status_code == 404 and meta() == ["1.0", "3.0"]
    assert repo.put(f"{GP}/app/2.0/app-2.0.jar", jars["2.0"]).status_code == 409

    c.delete_package_versions(versions=["3.0"], **kw)
    assert "3.0" not in repo.versions("app") and meta() == ["1.0"]
    # A deleted release can be deployed again, with other bytes.
    repo.publish("app", "3.0", {"app-3.0.jar": b"second life"})
    assert jar("3.0").content == b"second life" and meta() == ["1.0", "3.0"]


# ---- maven-metadata.xml --------------------------------------------------------------------------

XXE = (b'<?xml version="1.0"?><!DOCTYPE metadata [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
       b"<metadata><groupId>&x;</groupId><versioning><versions><version>2.0</version></versions></versioning>"
       b"</metadata>")
LAUGHS = (b'<?xml version="1.0"?><!DOCTYPE m [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]>'
          b"<metadata><versioning><versions><version>&b;</version></versions></versioning></metadata>")


def test_uploaded_metadata_publishes_but_is_never_served(repo: Repo):
    for v in ("1.0", "2.0"):
        assert repo.put(f"{GP}/app/{v}/app-{v}.jar", v.encode()).status_code == 201
    path = f"{GP}/app/maven-metadata.xml"
    for bad, reason in ((XXE, "DTD or entity"), (LAUGHS, "DTD or entity"), (b"<metadata><versioning>", "well-formed"),
                        (repo.metadata("app", ["2.0"], group="org.evil"), "groupId 'org.evil'"),
                        (repo.metadata("other", ["2.0"]), "artifactId 'other'"),
                        (b"<project/>", "<metadata> root")):
        resp = repo.put(path, bad)
        assert resp.status_code == 400 and reason in resp.text, resp.text
        assert resp.text.count("\n") == 1
    assert repo.versions("app") == {"1.0": "Unfinished", "2.0": "Unfinished"}

    # Lists 1.0 and an unknown 9.9: 1.0 is published, 9.9 is not invented, 2.0 stays Unfinished.
    assert repo.put(path, repo.metadata("app", ["1.0", "9.9"])).status_code == 200
    assert repo.versions("app") == {"1.0": "Published", "2.0": "Unfinished"}
    served = repo.get(path)
    assert _meta_versions(served.text) == ["1.0"]
    root = ET.fromstring(served.text)
    assert root.findtext("versioning/release") == "1.0" and root.findtext("versioning/latest") == "1.0"
    assert root.findtext("versioning/lastUpdated") != "20000101000000"
    assert repo.get(path + ".sha1").text == hashlib.sha1(served.content).hexdigest()
    assert repo.get(path + ".sha512").text == hashlib.sha512(served.content).hexdigest()

    # Metadata for a package that does not exist changes nothing and creates nothing.
    assert repo.put(f"{GP}/ghost/maven-metadata.xml", repo.metadata("ghost", ["1.0"])).status_code == 200
    assert repo.packages() == [f"{G}:app"]


def test_snapshot_builds_and_version_level_metadata(repo: Repo):
    d = f"{GP}/app/1.0-SNAPSHOT/"
    b1, b2 = "1.0-20240101.101010-1", "1.0-20240102.111111-2"
    for name in (f"app-{b1}.jar", f"app-{b1}.pom", f"app-{b1}-sources.jar", f"app-{b2}.jar", f"app-{b2}.pom"):
        body = pom_of(G, "app", "1.0-SNAPSHOT", name) if name.endswith(".pom") else name.encode()
        assert repo.put(d + name, body).status_code == 201
    assert repo.versions("app") == {"1.0-SNAPSHOT": "Unfinished"}
    assert repo.get(d + "maven-metadata.xml").status_code == 404
    assert repo.get(d + f"app-{b2}.jar").status_code == 404

    meta = (f"<metadata modelVersion='1.1.0'><groupId>{G}</groupId><artifactId>app</artifactId>"
            "<version>1.0-SNAPSHOT</version><versioning><snapshot><buildNumber>77</buildNumber></snapshot>"
            "</versioning></metadata>").encode()
    bad = meta.replace(b"<version>1.0-SNAPSHOT</version>", b"<version>2.0-SNAPSHOT</version>")
    assert repo.put(d + "maven-metadata.xml", bad).status_code == 400
    assert repo.put(d + "maven-metadata.xml", meta).status_code == 200
    assert repo.versions("app") == {"1.0-SNAPSHOT": "Published"}

    root = ET.fromstring(repo.get(d + "maven-metadata.xml").text)
    assert root.findtext("version") == "1.0-SNAPSHOT"
    assert root.findtext("versioning/snapshot/buildNumber") == "2"  # from the stored builds, not the upload
    assert root.findtext("versioning/snapshot/timestamp") == "20240102.111111"
    snapshot_versions = {(sv.findtext("classifier") or "", sv.findtext("extension")): sv.findtext("value")
                         for sv in root.findall("versioning/snapshotVersions/snapshotVersion")}
    assert snapshot_versions == {("", "jar"): b2, ("", "pom"): b2, ("sources", "jar"): b1}
    assert repo.get(d + f"app-{b1}-sources.jar").content == f"app-{b1}-sources.jar".encode()
    assert _meta_versions(repo.get(f"{GP}/app/maven-metadata.xml").text) == ["1.0-SNAPSHOT"]

    # Unlisted: gone from the artifact-level list, still resolvable as exactly 1.0-SNAPSHOT.
    repo.set_status("app", ["1.0-SNAPSHOT"], "Unlisted")
    assert repo.get(f"{GP}/app/maven-metadata.xml").status_code == 404
    assert repo.get(d + "maven-metadata.xml").status_code == 200


def test_etags_304_and_head(repo: Repo):
    repo.publish("app", "1.0", {"app-1.0.jar": b"x" * 1000})
    path = f"{GP}/app/maven-metadata.xml"
    first = repo.get(path)
    etag = first.headers["etag"]
    assert repo.get(path, **{"If-None-Match": etag}).status_code == 304
    head = httpx.head(repo.ep + path, auth=repo.auth)
    assert head.status_code == 200 and head.content == b"" and head.headers["content-length"] == str(len(first.content))
    jar = repo.get(f"{GP}/app/1.0/app-1.0.jar")
    assert repo.get(f"{GP}/app/1.0/app-1.0.jar", **{"If-None-Match": jar.headers["etag"]}).status_code == 304
    head = httpx.head(repo.ep + f"{GP}/app/1.0/app-1.0.jar", auth=repo.auth)
    assert head.status_code == 200 and head.headers["content-length"] == "1000" and head.content == b""
    repo.publish("app", "1.1", {"app-1.1.jar": b"y"})
    again = repo.get(path, **{"If-None-Match": etag})
    assert again.status_code == 200 and again.headers["etag"] != etag and _meta_versions(again.text) == ["1.0", "1.1"]


# ---- POM facts -----------------------------------------------------------------------------------

POM = b"""<?xml version="1.0"?>
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>com.acme</groupId><artifactId>app</artifactId><version>1.0</version>
  <packaging>bundle</packaging><name>Acme App</name><description>Does acme things</description>
  <url>https://acme.example/app</url>
  <licenses><license><name>Apache-2.0</name><url>https://www.apache.org/licenses/LICENSE-2.0</url></license></licenses>
  <scm><url>https://git.acme.example/app</url></scm>
  <properties><lib.version>2.5</lib.version></properties>
  <dependencyManagement><dependencies><dependency><groupId>x</groupId><artifactId>managed</artifactId>
    <version>1</version></dependency></dependencies></dependencyManagement>
  <dependencies>
    <dependency><groupId>com.acme</groupId><artifactId>core</artifactId><version>${project.version}</version></dependency>
    <dependency><groupId>org.lib</groupId><artifactId>lib</artifactId><version>${lib.version}</version>
      <scope>runtime</scope></dependency>
    <dependency><groupId>junit</groupId><artifactId>junit</artifactId><scope>test</scope></dependency>
  </dependencies>
</project>"""


def test_pom_facts_reach_the_control_plane(repo: Repo):
    repo.publish("app", "1.0", {"app-1.0.pom": POM, "app-1.0.jar": b"j"})
    c = repo.server.boto()
    kw = dict(domain=repo.domain, repository="libs", format="maven", namespace=G, package="app", packageVersion="1.0")
    desc = c.describe_package_version(**kw)["packageVersion"]
    assert desc["summary"] == "Does acme things"
    assert desc["homePage"] == "https://acme.example/app"
    assert desc["sourceCodeRepository"] == "https://git.acme.example/app"
    assert desc["licenses"] == [{"name": "Apache-2.0", "url": "https://www.apache.org/licenses/LICENSE-2.0"}]
    deps = c.list_package_version_dependencies(**kw)["dependencies"]
    assert deps == [
        {"namespace": "com.acme", "package": "core", "dependencyType": "compile", "versionRequirement": "1.0"},
        {"namespace": "org.lib", "package": "lib", "dependencyType": "runtime", "versionRequirement": "2.5"},
        {"namespace": "junit", "package": "junit", "dependencyType": "test"},
    ]
    # A POM with an external entity is refused: nothing of it is resolved, nothing is kept.
    evil = POM.replace(b'<?xml version="1.0"?>', b'<?xml version="1.0"?><!DOCTYPE project [<!ENTITY x SYSTEM '
                       b'"file:///etc/passwd">]>').replace(b"Does acme things", b"&x;")
    resp = repo.put(f"{GP}/app/1.1/app-1.1.pom", evil.replace(b"<version>1.0</version>", b"<version>1.1</version>"))
    assert resp.status_code == 400 and "DTD" in resp.text and "root:" not in resp.text
    assert repo.versions("app") == {"1.0": "Published"}


# ---- auth ----------------------------------------------------------------------------------------

def test_tokens_and_permissions(server, repo: Repo, unique):
    jar = f"{GP}/app/1.0/app-1.0.jar"
    anon = httpx.put(repo.ep + jar, content=b"x")
    assert anon.status_code == 401 and anon.headers["www-authenticate"] == 'Basic realm="arca"'
    assert httpx.put(repo.ep + jar, content=b"x", auth=("aws", "bogus")).status_code == 401
    assert repo.packages() == []

    name = f"reader{unique}"
    key = server.new_user(name)
    arn = f"arn:aws:iam::000000000000:user/{name}"
    c = server.boto()
    stmt = lambda actions: {"Effect": "Allow", "Principal": {"AWS": arn}, "Action": actions, "Resource": "*"}  # noqa
    c.put_domain_permissions_policy(domain=repo.domain, policyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [stmt("codeartifact:GetAuthorizationToken")]}))
    token = server.token(repo.domain, key=key)
    assert httpx.get(repo.ep + jar, auth=("aws", token)).status_code == 403  # no read permission yet
    c.put_repository_permissions_policy(domain=repo.domain, repository="libs", policyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [stmt(["codeartifact:ReadFromRepository"])]}))
    repo.publish("app", "1.0", {"app-1.0.jar": b"x"})
    assert httpx.get(repo.ep + jar, auth=("aws", token)).content == b"x"
    assert httpx.get(repo.ep + f"{GP}/app/maven-metadata.xml", auth=("aws", token)).status_code == 200
    resp = httpx.put(repo.ep + f"{GP}/app/1.1/app-1.1.jar", content=b"y", auth=("aws", token),
                     headers={"Expect": "100-continue"})
    assert resp.status_code == 403 and resp.headers["connection"] == "close"
    assert repo.versions("app") == {"1.0": "Published"}
