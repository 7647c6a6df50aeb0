"""Origin controls on publishing, through the real data plane: a package's origin configuration
(publish=BLOCK) and its package group's PUBLISH restriction refuse uploads with 403 and a reason,
and nothing is stored."""

from __future__ import annotations

import httpx
import pytest

from tests.support.checks import stored_versions


@pytest.fixture
def maven_repo(server, unique):
    d = f"pr{unique}"
    server.create_repo(d, "libs")
    return d, server.token(d), server.endpoint(d, "maven", "libs")


def _versions(server, d, fmt, package, namespace=None):
    return stored_versions(server.boto(), domain=d, repository="libs", format=fmt, package=package,
                           namespace=namespace)


def test_maven_publish_blocked_by_origin_configuration(server, maven_repo):
    d, token, url = maven_repo
    server.boto().put_package_origin_configuration(
        domain=d, repository="libs", format="maven", namespace="com.acme", package="locked",
        restrictions={"publish": "BLOCK", "upstream": "ALLOW"})
    r = httpx.put(url + "com/acme/locked/1.0/locked-1.0.jar", content=b"jar", auth=("aws", token))
    assert r.status_code == 403 and "publish=BLOCK" in r.text
    assert _versions(server, d, "maven", "locked", "com.acme") == {}
    r = httpx.put(url + "com/acme/open/1.0/open-1.0.jar", content=b"jar", auth=("aws", token))
    assert r.status_code == 201, r.text


def test_maven_publish_blocked_by_package_group(server, maven_repo):
    d, token, url = maven_repo
    c = server.boto()
    c.create_package_group(domain=d, packageGroup="/maven/com.frozen/*")
    c.update_package_group_origin_configuration(domain=d, packageGroup="/maven/com.frozen/*",
                                                restrictions={"PUBLISH": "BLOCK"})
    r = httpx.put(url + "com/frozen/app/1.0/app-1.0.jar", content=b"jar", auth=("aws", token))
    assert r.status_code == 403 and "not allowed" in r.text
    assert _versions(server, d, "maven", "app", "com.frozen") == {}
