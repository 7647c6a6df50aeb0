"""Scale-out, proven: two `arca serve` processes share one PostgreSQL and one S3 bucket (moto).
Concurrent publishes through both nodes all land and every node sees all of them at once; racing
the same version yields exactly one success and one 409; `arca admin fsck` stays clean."""

from __future__ import annotations

import io
import json
import os
import shutil
import threading
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.maven_support import Mvn
from tests.npm_support import Registry, make_tarball, publish_body, write_npmrc
from tests.pypi_support import make_wheel, raw_upload, form_for, twine_upload, wheel_bytes, wheel_filename
from tests.support.server import ArcaServer, fresh_database_url, shared_s3_env, start_server

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.cluster
N = int(os.environ.get("ARCA_TEST_TWO_NODE_N", "20"))


@pytest.fixture(scope="module")
def nodes(tmp_path_factory, pg_url):
    root = tmp_path_factory.mktemp("cluster")
    db = fresh_database_url(root)
    assert db.startswith("postgresql")
    env = {**shared_s3_env(), "ARCA_SECRET_KEY": "shared-cluster-key-" + "k" * 40}
    a = start_server(root / "a", env=env, database_url=db, log_level="info")
    b = ArcaServer(root=root / "b", env={**a.env, "ARCA_DATA_DIR": str(root / "b" / "storage")},
                   access_key=a.access_key, log_level="info")
    (root / "b").mkdir()
    try:
        b.start()
        yield a, b
    finally:
        b.stop()
        a.stop()


def _pair(nodes, domain):
    a, b = nodes
    a.create_repo(domain, "repo")
    token = a.token(domain)
    return a, b, token


def test_npm_publishes_through_both_nodes(nodes, tmp_path):
    a, b, token = _pair(nodes, "np")
    regs = []
    for i, node in enumerate((a, b)):
        reg = Registry(node, "np", "repo", token, tmp_path / f"n{i}")
        write_npmrc(reg.npmrc, reg.url, token)
        regs.append(reg)
    versions = [f"1.0.{i}" for i in range(N)]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda iv: regs[iv[0] % 2].publish("shared-lib", iv[1], tag=f"t{iv[0]}"),
                      enumerate(versions)))
    for node in (a, b):
        with httpx.Client(headers={"Authorization": f"Bearer {token}"}) as c:
            doc = c.get(node.endpoint("np", "npm", "repo") + "shared-lib", headers={"Accept": "application/json"}).json()
        assert sorted(doc["versions"]) == sorted(versions)


def test_twine_uploads_through_both_nodes(nodes, tmp_path):
    a, b, token = _pair(nodes, "py")
    wheels = [make_wheel(tmp_path, "shared-proj", f"2.{i}") for i in range(N)]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda iw: twine_upload((a, b)[iw[0] % 2].endpoint("py", "pypi", "repo"), token, [iw[1]]),
                      enumerate(wheels)))
    for node in (a, b):
        page = httpx.get(node.endpoint("py", "pypi", "repo") + "simple/shared-proj/", auth=("aws", token),
                         headers={"Accept": "application/vnd.pypi.simple.v1+json"}).json()
        assert sorted(f["filename"] for f in page["files"]) == sorted(w.name for w in wheels)


def _jar(text: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("META-INF/MANIFEST.MF", "Manifest-Version: 1.0\n")
        z.writestr("x.txt", text)
    return buf.getvalue()


def test_maven_deploys_through_both_nodes(nodes, mvn):
    """20 real `mvn deploy`s of one artifact, split over both nodes, four at a time (each build
    has its own local repository, as separate CI runners would)."""
    a, b, token = _pair(nodes, "mv")
    versions = [f"3.{i}.0" for i in range(N)]
    local = threading.local()
    copies = iter(range(100))
    lock = threading.Lock()

    def runner() -> Mvn:
        if not hasattr(local, "mvn"):
            with lock:
                n = next(copies)
            repo = mvn.work / f"repo-{n}"
            if not repo.exists():
                shutil.copytree(mvn.local_repo, repo, symlinks=True)
            local.mvn = Mvn(mvn.mvn, repo, mvn.work / f"w{n}")
        return local.mvn

    def deploy(iv):
        i, v = iv
        node = (a, b)[i % 2]
        url = node.endpoint("mv", "maven", "repo")
        m = runner()
        proj = m.project(f"shared-{v}", "com.acme.shared", "app", v, url)
        proj.write_class("com.acme.shared", "App", f'public static String v() {{ return "{v}"; }}')
        m.run(proj, "deploy", repo_url=url, token=token)

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(deploy, enumerate(versions)))
    statuses = {v["version"]: v["status"] for v in a.boto().list_package_versions(
        domain="mv", repository="repo", format="maven", namespace="com.acme.shared", package="app")["versions"]}
    assert statuses == {v: "Published" for v in versions}
    for node in (a, b):
        md = httpx.get(node.endpoint("mv", "maven", "repo") + "com/acme/shared/app/maven-metadata.xml",
                       auth=("aws", token)).text
        for v in versions:
            assert f"<version>{v}</version>" in md, (v, md)


def _race(fns) -> list:
    barrier = threading.Barrier(len(fns))

    def run(fn):
        barrier.wait()
        return fn()

    with ThreadPoolExecutor(len(fns)) as pool:
        return list(pool.map(run, fns))


def test_racing_the_same_version_one_wins(nodes):
    a, b, token = _pair(nodes, "race")
    # npm: two different tarballs of the same version
    for attempt in range(3):
        name, version = f"race-lib-{attempt}", "1.0.0"
        bodies = [publish_body(name, version, make_tarball(name, version, files={"index.js": f"// {n}".encode()}))
                  for n in range(2)]
        results = _race([lambda n=n, node=node: httpx.put(node.endpoint("race", "npm", "repo") + name,
                                                          json=bodies[n], headers={"Authorization": f"Bearer {token}"})
                         for n, node in enumerate((a, b))])
        assert sorted(r.status_code for r in results) == [201, 409], [r.text for r in results]
    # PyPI: the same file name with other bytes
    content = [wheel_bytes("race-proj", "1.0", module_source=f"X = {n}\n") for n in range(2)]
    fname = wheel_filename("race-proj", "1.0")
    results = _race([lambda n=n, node=node: raw_upload(node.endpoint("race", "pypi", "repo"), token,
                                                       form_for("race-proj", "1.0", content[n]), fname, content[n])
                     for n, node in enumerate((a, b))])
    codes = sorted(r.status_code for r in results)
    assert codes == [200, 409], codes  # twine's upload answers 200
    # Maven: the same release file with other bytes, then published
    url = "com/acme/race/app/1.0.0/app-1.0.0.jar"
    results = _race([lambda n=n, node=node: httpx.put(node.endpoint("race", "maven", "repo") + url,
                                                      content=_jar(f"body {n}"), auth=("aws", token))
                     for n, node in enumerate((a, b))])
    codes = sorted(r.status_code for r in results)
    assert codes == [201, 409], codes


def test_caches_never_outlive_a_change_on_the_other_node(nodes, tmp_path):
    a, b, token = _pair(nodes, "cache")
    wheel = make_wheel(tmp_path, "cached", "1.0")
    twine_upload(a.endpoint("cache", "pypi", "repo"), token, [wheel])
    page_url = b.endpoint("cache", "pypi", "repo") + "simple/cached/"
    first = httpx.get(page_url, auth=("aws", token))
    assert "cached-1.0" in first.text
    twine_upload(a.endpoint("cache", "pypi", "repo"), token, [make_wheel(tmp_path, "cached", "1.1")])
    assert "cached-1.1" in httpx.get(page_url, auth=("aws", token)).text  # at once, on the other node
    c = a.boto()
    c.update_package_versions_status(domain="cache", repository="repo", format="pypi", package="cached",
                                     versions=["1.0"], targetStatus="Archived")
    assert "cached-1.0-" not in httpx.get(page_url, auth=("aws", token)).text


def test_fsck_clean_after_everything(nodes):
    a, b = nodes
    proc = a.admin("fsck", check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads(proc.stdout)
    assert report["ok"] is True
