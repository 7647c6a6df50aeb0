"""Each worker answers repeated data-plane GETs from memory (issue 19 item 3) and never serves what a
commit has changed: against `arca serve --workers 2` (SQLite, or PostgreSQL with
ARCA_TEST_DATABASE_URL), index documents and files are answered from memory once warm (the
answers counter moves), and after a publish, a delete or a status change every following request,
whichever worker takes it, sees the change at once: pip, npm and plain HTTP. The same across two
nodes: tests/test_two_nodes.py."""

from __future__ import annotations

import json
import subprocess
import sys

import httpx
import pytest

from tests.npm_support import Registry, write_npmrc
from tests.pypi_support import index_url, make_wheel, pip_cmd, twine_upload
from tests.support.server import clean_env, start_server

SPREAD = 12  # new connections per check: both workers take some


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    srv = start_server(tmp_path_factory.mktemp("hot"), workers=2)
    yield srv
    srv.stop()


def _spread(url: str, token: str, **headers) -> list[httpx.Response]:
    """The same GET on new connections (each may land on either worker)."""
    return [httpx.get(url, auth=("aws", token), headers=headers) for _ in range(SPREAD)]


def _warm(srv, url: str, token: str, **headers) -> list[httpx.Response]:
    """GETs until the answer came from memory (a positive signal), so what follows tests a warm cache."""
    before = srv.answers_from_memory()
    got = _spread(url, token, **headers)
    assert srv.answers_from_memory() > before, "the repeated GETs were never answered from memory"
    return got


def _pip_download(srv, domain: str, token: str, spec: str, dest) -> subprocess.CompletedProcess:
    return subprocess.run(pip_cmd(sys.executable, "download", "--no-deps", "-d", str(dest), "--index-url",
                                  index_url(srv, domain, "py", token), spec),
                          env=clean_env(), capture_output=True, text=True, timeout=300)


def test_a_pypi_page_and_its_files_follow_every_change(node, tmp_path):
    node.create_repo("hot", "py")
    token = node.token("hot")
    endpoint = node.endpoint("hot", "pypi", "py")
    twine_upload(endpoint, token, [make_wheel(tmp_path, "hotpkg", "1.0")])
    page = endpoint + "simple/hotpkg/"
    assert all("hotpkg-1.0-" in r.text for r in _warm(node, page, token))

    twine_upload(endpoint, token, [make_wheel(tmp_path, "hotpkg", "1.1")])
    assert all("hotpkg-1.1-" in r.text for r in _spread(page, token))  # every worker, at once
    assert _pip_download(node, "hot", token, "hotpkg==1.1", tmp_path / "d1").returncode == 0
    wheel = endpoint + "simple/hotpkg/hotpkg-1.1-py3-none-any.whl"
    assert all(r.status_code == 200 for r in _warm(node, wheel, token))
    etag = httpx.get(wheel, auth=("aws", token)).headers["etag"]
    assert all(r.status_code == 304 for r in _spread(wheel, token, **{"If-None-Match": etag}))

    c = node.boto()
    c.delete_package_versions(domain="hot", repository="py", format="pypi", package="hotpkg", versions=["1.1"])
    assert all("hotpkg-1.1-" not in r.text and "hotpkg-1.0-" in r.text for r in _spread(page, token))
    assert all(r.status_code == 404 for r in _spread(wheel, token))
    gone = _pip_download(node, "hot", token, "hotpkg==1.1", tmp_path / "d2")
    assert gone.returncode != 0 and "No matching distribution" in gone.stderr

    # Unlisted: PyPI lists it as yanked (PEP 592), at once on every worker
    c.update_package_versions_status(domain="hot", repository="py", format="pypi", package="hotpkg",
                                     versions=["1.0"], targetStatus="Unlisted")
    assert all('data-yanked="Unlisted"' in r.text for r in _spread(page, token))


def test_an_npm_packument_follows_publish_and_unlist(node, tmp_path):
    node.create_repo("hotn", "js")
    token = node.token("hotn")
    reg = Registry(node, "hotn", "js", token, tmp_path)
    write_npmrc(reg.npmrc, reg.url, token)
    reg.publish("hot-lib", "1.0.0")
    url = reg.url + "hot-lib"
    assert all(r.json()["dist-tags"]["latest"] == "1.0.0" for r in _warm(node, url, token))

    reg.publish("hot-lib", "1.0.1")
    assert all(r.json()["dist-tags"]["latest"] == "1.0.1" for r in _spread(url, token))
    assert reg.npm_json("view", "hot-lib", "version") == "1.0.1"

    node.boto().update_package_versions_status(domain="hotn", repository="js", format="npm", package="hot-lib",
                                               versions=["1.0.1"], targetStatus="Unlisted")
    assert all("1.0.1" not in r.json()["versions"] for r in _spread(url, token))
    assert reg.npm_json("view", "hot-lib", "version") == "1.0.0"


def test_an_answer_kept_for_one_caller_is_not_given_to_another(node, tmp_path):
    node.create_repo("hotp", "py")
    name = f"outsider{tmp_path.name[-8:].replace('_', '')}"
    arn = f"arn:aws:iam::000000000000:user/{name}"
    key = node.new_user(name)
    c = node.boto()
    stmt = lambda actions: {"Effect": "Allow", "Principal": {"AWS": arn}, "Action": actions, "Resource": "*"}  # noqa
    c.put_domain_permissions_policy(domain="hotp", policyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [stmt("codeartifact:GetAuthorizationToken")]}))
    outsider = node.token("hotp", key=key)
    admin = node.token("hotp")
    endpoint = node.endpoint("hotp", "pypi", "py")
    twine_upload(endpoint, admin, [make_wheel(tmp_path, "private-pkg", "1.0")])
    wheel = endpoint + "simple/private-pkg/private_pkg-1.0-py3-none-any.whl"

    # nothing is committed between the admin's answers and the outsider's requests
    assert all(r.status_code == 200 for r in _warm(node, wheel, admin))
    assert [r.status_code for r in _spread(wheel, outsider)] == [403] * SPREAD

    c.put_repository_permissions_policy(domain="hotp", repository="py", policyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [stmt(["codeartifact:ReadFromRepository"])]}))
    assert [r.status_code for r in _spread(wheel, outsider)] == [200] * SPREAD  # the grant, at once
