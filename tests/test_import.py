"""`arca admin import` from the registries teams leave: a real pypiserver's folder and the same
pypiserver over HTTP, a real Verdaccio's storage folder (made by publishing to it with npm) and the
same Verdaccio over HTTP, a `~/.m2`-style directory; then the real clients install from Arca. Bad
files are listed, not imported; a second run imports nothing; an interrupted run, run again, ends
with every file exactly once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from datetime import datetime, timezone
from pathlib import Path

import httpx
import pytest

from tests.npm_support import write_consumer, write_npmrc
from tests.pypi_support import PY, index_url, make_sdist, make_wheel, metadata_text, pip_cmd, run, twine_upload, \
    wheel_bytes
from tests.support.checks import stored_versions
from tests.support.server import ARCA, clean_env, require_tool, start_server
from tests.test_cleanup import sql
from tests.upstream_support import Verdaccio, start_pypiserver

UPLOADED = datetime(2024, 3, 1, 12, 0, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = start_server(tmp_path_factory.mktemp("arca"), env={"ARCA_CLEANUP_INTERVAL": "0"})
    yield srv
    srv.stop()


def arca_import(server, domain, repo, kind, source, *extra, check=True, stdin=None) -> tuple[list[dict], dict, int]:
    proc = subprocess.run([ARCA, "admin", "import", "--domain", domain, "--repository", repo, "--from", kind,
                           str(source), *extra], env=server.env, cwd=server.root, capture_output=True, text=True,
                          timeout=600, input=stdin)
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    if check:
        assert proc.returncode in (0, 2) and lines, proc.stdout + proc.stderr
    return lines[:-1], lines[-1] if lines else {}, proc.returncode


def results(items: list[dict]) -> dict[str, str]:
    return {i["file"]: i["result"] for i in items}


# ---- PyPI: a pypiserver folder, then the same pypiserver over HTTP ---------------------------------------

@pytest.fixture(scope="module")
def pypiserver(tmp_path_factory):
    root = tmp_path_factory.mktemp("pypiserver")
    (root / "packages").mkdir()
    srv = start_pypiserver(root / "packages", root / "pypiserver.log")
    dist = root / "dist"
    files = [make_wheel(dist, "imp-alpha", "1.0"), make_wheel(dist, "imp-alpha", "1.1"),
             make_sdist(dist, "imp-alpha", "1.1"), make_wheel(dist, "imp-beta", "0.3")]
    twine_upload(srv.url + "/", "unused", files)  # pypiserver -a . -P .: uploads need no password
    yield srv, root / "packages"
    srv.stop()


def test_pypi_dir_from_a_pypiserver_folder_then_pip_installs(server, domain, pypiserver, tmp_path):
    _srv, folder = pypiserver
    server.boto().create_repository(domain=domain, repository="py")
    stored = sorted(p.name for p in folder.iterdir())
    assert len(stored) == 4, stored
    for p in folder.iterdir():
        os.utime(p, (UPLOADED.timestamp(), UPLOADED.timestamp()))
    src = tmp_path / "src"
    src.mkdir()
    for p in folder.iterdir():
        (src / p.name).write_bytes(p.read_bytes())
        os.utime(src / p.name, (UPLOADED.timestamp(), UPLOADED.timestamp()))
    # Bad files beside them: listed, never imported.
    (src / "imp_gamma-1.0-py3-none-any.whl").write_bytes(b"not a zip")
    (src / "imp_delta-2.0-py3-none-any.whl").write_bytes(wheel_bytes("imp-delta", "2.0", metadata=metadata_text("imp-epsilon", "2.0")))
    (src / "notes.exe").write_bytes(b"MZ")

    items, summary, code = arca_import(server, domain, "py", "pypi-dir", src)
    assert code == 2  # some files were not imported
    assert summary["imported"] == 4 and summary["invalid"] == 3 and summary["bytesImported"] > 0
    bad = {p["file"]: p["reason"] for p in summary["problems"]}
    assert set(bad) == {"imp_gamma-1.0-py3-none-any.whl", "imp_delta-2.0-py3-none-any.whl", "notes.exe"}
    assert "says Name: imp-epsilon" in bad["imp_delta-2.0-py3-none-any.whl"]
    assert sorted(stored_versions(server.boto(), domain=domain, repository="py", format="pypi",
                                  package="imp-alpha")) == ["1.0", "1.1"]
    rows = sql(server, """SELECT v.version, v.status, v.origin_type, v.published_time FROM package_versions v
                          JOIN packages p ON p.id = v.package_id JOIN repositories r ON r.id = p.repository_id
                          JOIN domains d ON d.id = r.domain_id WHERE d.name = :d""", d=domain)
    assert {(v, s, o) for v, s, o, _t in rows} == {("1.0", "Published", "INTERNAL"), ("1.1", "Published", "INTERNAL"),
                                                   ("0.3", "Published", "INTERNAL")}
    for *_x, t in rows:  # the folder's upload times are the publish times
        when = t if isinstance(t, datetime) else datetime.fromisoformat(str(t))
        assert when.replace(tzinfo=timezone.utc) == UPLOADED

    again = arca_import(server, domain, "py", "pypi-dir", src)[1]
    assert again["imported"] == 0 and again["present"] == 4

    url = index_url(server, domain, "py", server.token(domain))
    run(pip_cmd(PY, "install", "--target", str(tmp_path / "site"), "--index-url", url, "imp-alpha==1.1",
                "imp-beta"), env=clean_env())
    assert (tmp_path / "site" / "imp_alpha").is_dir() and (tmp_path / "site" / "imp_beta").is_dir()


def test_pypi_index_over_http_from_a_running_pypiserver(server, domain, pypiserver, tmp_path):
    srv, _folder = pypiserver
    server.boto().create_repository(domain=domain, repository="mirror")
    items, summary, code = arca_import(server, domain, "mirror", "pypi-index", srv.url + "/simple/")
    assert code == 0 and summary["imported"] == 4 and summary["invalid"] == 0, summary
    assert arca_import(server, domain, "mirror", "pypi-index", srv.url + "/simple/")[1]["present"] == 4
    url = index_url(server, domain, "mirror", server.token(domain))
    run(pip_cmd(PY, "install", "--target", str(tmp_path / "site"), "--index-url", url, "imp-alpha==1.0"),
        env=clean_env())


# ---- npm: a Verdaccio storage folder, then the same Verdaccio over HTTP ----------------------------------

@pytest.fixture(scope="module")
def verdaccio(tmp_path_factory):
    v = Verdaccio(tmp_path_factory.mktemp("verdaccio"))
    v.publish("imp-left", "1.0.0")
    v.publish("imp-left", "1.1.0")
    v.publish("@impscope/right", "2.0.0", deps={"imp-left": "^1.0.0"})
    yield v
    v.stop()


def _npm(server, domain, repo, root: Path, *args, check=True):
    npmrc = root / ".npmrc"
    write_npmrc(npmrc, server.endpoint(domain, "npm", repo), server.token(domain))
    proc = subprocess.run([require_tool("npm"), *args], cwd=root, capture_output=True, text=True, timeout=180,
                          env=clean_env(npm_config_userconfig=str(npmrc), npm_config_cache=str(root / "cache"),
                                        npm_config_update_notifier="false"))
    assert proc.returncode == 0 or not check, proc.stdout + proc.stderr
    return proc


def test_verdaccio_storage_folder_then_npm_installs(server, domain, verdaccio, tmp_path):
    server.boto().create_repository(domain=domain, repository="js")
    src = tmp_path / "storage"
    subprocess.run(["cp", "-a", str(verdaccio.root / "storage"), str(src)], check=True)
    # A tarball whose bytes no longer match its packument's integrity: listed, not imported.
    bad = tmp_path / "bad"
    (bad / "imp-broken").mkdir(parents=True)
    doc = json.loads((src / "imp-left" / "package.json").read_text())
    doc["name"] = "imp-broken"
    doc["versions"] = {"1.0.0": {**doc["versions"]["1.0.0"], "name": "imp-broken"}}
    doc["dist-tags"] = {"latest": "1.0.0"}
    (bad / "imp-broken" / "package.json").write_text(json.dumps(doc))
    (bad / "imp-broken" / "imp-broken-1.0.0.tgz").write_bytes((src / "imp-left" / "imp-left-1.0.0.tgz").read_bytes()
                                                              + b"tampered")
    times = json.loads((src / "imp-left" / "package.json").read_text())["time"]

    items, summary, code = arca_import(server, domain, "js", "verdaccio-storage", src)
    assert code == 0 and summary["imported"] == 3 and summary["invalid"] == 0, summary
    _items, bad_summary, code = arca_import(server, domain, "js", "verdaccio-storage", bad)
    assert code == 2 and bad_summary["invalid"] == 1
    assert "the source says sha" in bad_summary["problems"][0]["reason"]

    with httpx.Client(auth=("aws", server.token(domain)), timeout=30) as c:
        doc = c.get(server.endpoint(domain, "npm", "js") + "imp-left").json()
    assert doc["dist-tags"] == {"latest": "1.1.0"}
    assert doc["time"]["1.0.0"][:19] == times["1.0.0"][:19]  # Verdaccio's publish times kept
    consumer = write_consumer(tmp_path / "consumer", {"@impscope/right": "2.0.0"})
    _npm(server, domain, "js", consumer, "install")
    assert json.loads((consumer / "node_modules" / "imp-left" / "package.json").read_text())["version"] == "1.1.0"
    assert arca_import(server, domain, "js", "verdaccio-storage", src)[1]["present"] == 3


def test_npm_registry_over_http_from_a_running_verdaccio(server, domain, verdaccio, tmp_path):
    server.boto().create_repository(domain=domain, repository="js")
    token = verdaccio.token
    items, summary, code = arca_import(server, domain, "js", "npm-registry", verdaccio.url, "--token-stdin",
                                       stdin=token + "\n")
    assert code == 0 and summary["imported"] == 3, summary
    consumer = write_consumer(tmp_path / "consumer", {"imp-left": "1.0.0"})
    _npm(server, domain, "js", consumer, "install")


# ---- Maven: a ~/.m2-style directory ------------------------------------------------------------------------

def _pom(group: str, artifact: str, version: str) -> bytes:
    return (f"<project><modelVersion>4.0.0</modelVersion><groupId>{group}</groupId><artifactId>{artifact}"
            f"</artifactId><version>{version}</version><name>{artifact} imported</name></project>").encode()


def _m2(root: Path) -> Path:
    import hashlib

    repo = root / "repository"
    for version in ("1.0", "1.1"):
        d = repo / "com" / "acme" / "imp" / "lib" / version
        d.mkdir(parents=True)
        (d / f"lib-{version}.pom").write_bytes(_pom("com.acme.imp", "lib", version))
        (d / f"lib-{version}.jar").write_bytes(b"PK\x03\x04 jar " + version.encode())
        for f in list(d.iterdir()):
            (d / (f.name + ".sha1")).write_text(hashlib.sha1(f.read_bytes()).hexdigest() + "\n")
        (d / "_remote.repositories").write_text("#NOTE: This is a Maven Resolver internal implementation file\n")
        (d / f"lib-{version}.jar.lastUpdated").write_text("x")
    (repo / "com" / "acme" / "imp" / "lib" / "maven-metadata-central.xml").write_text("<metadata/>")
    bad = repo / "com" / "acme" / "imp" / "bad" / "2.0"
    bad.mkdir(parents=True)
    (bad / "bad-2.0.jar").write_bytes(b"PK\x03\x04 bad")
    (bad / "bad-2.0.jar.sha1").write_text("0" * 40)  # does not match
    (bad / "bad-2.0.pom").write_bytes(_pom("com.acme.other", "bad", "2.0"))  # coordinates disagree
    (bad / "other-2.0.jar").write_bytes(b"PK")  # not a file of this artifact
    return repo


def test_maven_dir_from_an_m2_repository_then_clients_download(server, domain, tmp_path):
    server.boto().create_repository(domain=domain, repository="mvn")
    repo = _m2(tmp_path / "m2")
    items, summary, code = arca_import(server, domain, "mvn", "maven-dir", repo)
    assert code == 2 and summary["imported"] == 4, summary
    bad = {p["file"].rsplit("/", 1)[-1]: p["reason"] for p in summary["problems"]}
    assert set(bad) == {"bad-2.0.jar", "bad-2.0.pom", "other-2.0.jar"}, bad
    assert "sha1" in bad["bad-2.0.jar"] and "com.acme.other" in bad["bad-2.0.pom"]
    assert sorted(stored_versions(server.boto(), domain=domain, repository="mvn", format="maven",
                                  namespace="com.acme.imp", package="lib")) == ["1.0", "1.1"]
    base = server.endpoint(domain, "maven", "mvn") + "com/acme/imp/lib/"
    curl = require_tool("curl")
    token = server.token(domain)
    meta = subprocess.run([curl, "-sSf", "-u", f"aws:{token}", base + "maven-metadata.xml"], capture_output=True,
                          text=True, timeout=60, env=clean_env())
    assert meta.returncode == 0 and "<version>1.0</version>" in meta.stdout and "<release>1.1</release>" in meta.stdout
    jar = subprocess.run([curl, "-sSf", "-u", f"aws:{token}", base + "1.1/lib-1.1.jar"], capture_output=True,
                         timeout=60, env=clean_env())
    assert jar.stdout == b"PK\x03\x04 jar 1.1"
    assert arca_import(server, domain, "mvn", "maven-dir", repo)[1]["present"] == 4


# ---- interrupted and re-run ---------------------------------------------------------------------------------

def test_an_interrupted_import_run_again_ends_with_every_file_once(server, domain, tmp_path):
    server.boto().create_repository(domain=domain, repository="py")
    src = tmp_path / "many"
    for i in range(12):
        make_wheel(src, f"imp-many-{i}", "1.0")
    proc = subprocess.Popen([ARCA, "admin", "import", "--domain", domain, "--repository", "py", "--from",
                             "pypi-dir", str(src)], env=server.env, cwd=server.root, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True, start_new_session=True)
    first = proc.stdout.readline()  # one file is in; stop it hard in the middle of the rest
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(30)
    assert json.loads(first)["result"] == "imported"
    _items, summary, code = arca_import(server, domain, "py", "pypi-dir", src)
    assert code == 0 and summary["imported"] + summary["present"] == 12
    assert summary["present"] >= 1
    counts = sql(server, """SELECT p.name, COUNT(a.id) FROM packages p JOIN repositories r ON r.id = p.repository_id
                 JOIN domains d ON d.id = r.domain_id JOIN package_versions v ON v.package_id = p.id
                 JOIN assets a ON a.package_version_id = v.id WHERE d.name = :d GROUP BY p.name""", d=domain)
    assert sorted(counts) == sorted((f"imp-many-{i}", 1) for i in range(12))
