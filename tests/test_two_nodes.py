"""Scale-out, proven: two `arca serve` processes share one PostgreSQL and one S3 bucket (moto).
Concurrent publishes through both nodes all land and every node sees all of them (a worker's
answers from memory follow another node's commits within milliseconds, through PostgreSQL's
notifications); racing the same version yields exactly one success and one 409; `arca admin fsck`
stays clean."""

from __future__ import annotations

import io
import json
import os
import shutil
import threading
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.maven_support import Mvn
from tests.npm_support import Registry, make_tarball, publish_body, write_npmrc
from tests.pypi_support import make_wheel, raw_upload, form_for, twine_upload, wait_for, wheel_bytes, wheel_filename
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
    """Node B answers the page from each worker's memory once warm; a publish, a status change and a
    delete on node A reach it through PostgreSQL's notifications (milliseconds: waited for as a
    positive signal, never slept on), and the file of a deleted version stops being served."""
    a, b, token = _pair(nodes, "cache")
    wheel = make_wheel(tmp_path, "cached", "1.0")
    twine_upload(a.endpoint("cache", "pypi", "repo"), token, [wheel])
    page_url = b.endpoint("cache", "pypi", "repo") + "simple/cached/"
    file_url = page_url + "cached-1.1-py3-none-any.whl"

    def page() -> str:
        return httpx.get(page_url, auth=("aws", token)).text

    before = b.answers_from_memory()
    assert all("cached-1.0" in page() for _ in range(6))
    assert b.answers_from_memory() > before  # B answered from memory: what follows tests a warm cache
    twine_upload(a.endpoint("cache", "pypi", "repo"), token, [make_wheel(tmp_path, "cached", "1.1")])
    assert wait_for(lambda: "cached-1.1" in page()), "node B never saw node A's publish"
    assert all(httpx.get(file_url, auth=("aws", token)).status_code == 200 for _ in range(6))
    c = a.boto()
    c.update_package_versions_status(domain="cache", repository="repo", format="pypi", package="cached",
                                     versions=["1.0"], targetStatus="Archived")
    assert wait_for(lambda: "cached-1.0-" not in page()), "node B kept serving an Archived version"
    c.delete_package_versions(domain="cache", repository="repo", format="pypi", package="cached", versions=["1.1"])
    assert wait_for(lambda: httpx.get(file_url, auth=("aws", token)).status_code == 404), \
        "node B kept serving a deleted file"
    assert "cached-1.1" not in page()


def _until_refused(url: str, token: str, limit: float = 30.0) -> httpx.Response:
    """GET until the token is refused; the limit only ends a failing test (the caches alone would
    take 5 s; the revocation epoch is polled every second)."""
    deadline = time.monotonic() + limit
    while True:
        resp = httpx.get(url, auth=("aws", token))
        if resp.status_code != 200 or time.monotonic() > deadline:
            return resp
        time.sleep(0.05)


def test_revocations_on_one_node_end_tokens_on_the_other(nodes):
    """Issue 15 item 5: `arca admin revoke-tokens` on one node's host, and a key deactivated through
    the other node, end tokens on both: each node drops its cached credentials when the shared
    revocation epoch moves, and authenticates the next request from the database."""
    import boto3

    a, b = nodes
    a.create_repo("rvk", "repo")
    admin_token = a.token("rvk")
    path = "com/acme/rv/1.0/rv-1.0.jar"
    put = httpx.put(a.endpoint("rvk", "maven", "repo") + path, content=b"rv", auth=("aws", admin_token))
    assert put.status_code == 201
    a.boto().update_package_versions_status(domain="rvk", repository="repo", format="maven", namespace="com.acme",
                                            package="rv", versions=["1.0"], targetStatus="Published")
    key = a.new_user("rvk-user")
    iam = boto3.client("iam", endpoint_url=a.url, region_name="us-east-1",
                       aws_access_key_id=a.access_key["AccessKeyId"],
                       aws_secret_access_key=a.access_key["SecretAccessKey"])
    iam.put_user_policy(UserName="rvk-user", PolicyName="all", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "codeartifact:*", "Resource": "*"}]}))
    token = a.token("rvk", key=key)
    on_b = b.endpoint("rvk", "maven", "repo") + path
    assert httpx.get(on_b, auth=("aws", token)).status_code == 200  # b has the credential cached now
    a.admin("revoke-tokens", "rvk-user")
    resp = _until_refused(on_b, token)
    assert resp.status_code == 401 and "revoked" in resp.text
    fresh = b.token("rvk", key=key)
    assert httpx.get(on_b, auth=("aws", fresh)).status_code == 200
    iam.update_access_key(UserName="rvk-user", AccessKeyId=key["AccessKeyId"], Status="Inactive")  # through a
    resp = _until_refused(on_b, fresh)
    assert resp.status_code == 401 and "no longer active" in resp.text
    assert httpx.get(on_b, auth=("aws", admin_token)).status_code == 200  # nobody else's tokens


def test_fsck_clean_after_everything(nodes):
    a, b = nodes
    proc = a.admin("fsck", check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads(proc.stdout)
    assert report["ok"] is True
