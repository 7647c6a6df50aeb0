"""Issue 14, data plane: nothing is told before authentication (the same 401 whether the domain or
repository exists or not), and whatever a repository serves is inert in a browser (nosniff and a
sandboxing Content-Security-Policy on every answer)."""

from __future__ import annotations

import httpx
import pytest

from tests.npm_support import make_tarball, publish_body
from tests.pypi_support import form_for, raw_upload, wheel_bytes, wheel_filename

# A POM with the right coordinates that a browser would still render as XML with an XHTML script
# in it, which would run on Arca's origin.
EVIL_POM = b"""<?xml version="1.0"?>
<project xmlns="http://maven.apache.org/POM/4.0.0" xmlns:h="http://www.w3.org/1999/xhtml">
  <modelVersion>4.0.0</modelVersion><groupId>com.evil</groupId><artifactId>page</artifactId><version>1.0</version>
  <description><h:script>document.title='pwned'</h:script></description>
</project>
"""


@pytest.fixture(scope="module")
def repo(server):
    server.create_repo("trust", "libs")
    server.create_repo("trust2", "libs")
    return "trust", "libs"


def _answer(resp: httpx.Response, *names: str) -> tuple:
    """What a caller learns: status, challenge, body (the names it sent itself masked)."""
    body = resp.content
    for name in names:
        body = body.replace(name.encode(), b"NAME")
    return resp.status_code, resp.headers.get("www-authenticate"), body


@pytest.mark.parametrize("fmt, path", [
    ("maven", "com/acme/lib/1.0/lib-1.0.jar"),
    ("maven", "com/acme/lib/maven-metadata.xml"),
    ("npm", "left-pad"),
    ("pypi", "simple/requests/"),
    ("pypi", ""),
])
def test_unauthenticated_requests_cannot_tell_what_exists(server, repo, fmt, path):
    other_domain = server.token("trust")  # valid, but for this domain only
    probes = {
        "existing repository": f"{server.url}/trust/{fmt}/libs/{path}",
        "unknown repository": f"{server.url}/trust/{fmt}/nosuchrepo/{path}",
        "unknown domain": f"{server.url}/nosuchdomain/{fmt}/libs/{path}",
    }
    for creds in (None, ("aws", "garbage"), ("aws", "")):
        answers = {what: _answer(httpx.get(url, auth=creds), "nosuchdomain", "nosuchrepo", "trust")
                   for what, url in probes.items()}
        assert len(set(answers.values())) == 1, answers
        status, challenge, _ = answers["existing repository"]
        assert status == 401 and challenge == 'Basic realm="arca"'
    # a token of one domain says nothing about another domain, existing or not
    a = _answer(httpx.get(f"{server.url}/trust2/{fmt}/libs/{path}", auth=("aws", other_domain)), "trust2")
    b = _answer(httpx.get(f"{server.url}/nosuchdomain2/{fmt}/libs/{path}", auth=("aws", other_domain)),
                "nosuchdomain2")
    assert a == b and a[0] == 401


def test_an_authenticated_caller_learns_what_is_missing(server, repo):
    token = server.token("trust")
    missing = httpx.get(f"{server.url}/trust/maven/nosuchrepo/x", auth=("aws", token))
    assert missing.status_code == 404 and "nosuchrepo" in missing.text


def _inert(resp: httpx.Response) -> None:
    assert resp.headers.get("x-content-type-options") == "nosniff", resp.headers
    assert resp.headers.get("content-security-policy") == "sandbox", resp.headers


def test_a_published_xhtml_pom_is_served_inert(server, repo):
    token = server.token("trust")
    base = server.endpoint("trust", "maven", "libs")
    put = httpx.put(base + "com/evil/page/1.0/page-1.0.pom", content=EVIL_POM, auth=("aws", token))
    assert put.status_code in (200, 201), put.text
    server.boto().update_package_versions_status(domain="trust", repository="libs", format="maven",
                                                 namespace="com.evil", package="page", versions=["1.0"],
                                                 targetStatus="Published")
    got = httpx.get(base + "com/evil/page/1.0/page-1.0.pom", auth=("aws", token))
    assert got.status_code == 200 and got.content == EVIL_POM
    _inert(got)
    _inert(httpx.get(base + "com/evil/page/1.0/page-1.0.pom.sha1", auth=("aws", token)))
    _inert(httpx.get(base + "com/evil/page/1.0/nothing-here.jar", auth=("aws", token)))  # errors too
    _inert(httpx.get(base + "x"))  # and the challenge


def test_pypi_and_npm_answers_are_inert(server, repo):
    token = server.token("trust")
    server.create_repo("trust", "py")
    server.create_repo("trust", "js")
    py = server.endpoint("trust", "pypi", "py")
    wheel = wheel_bytes("inert-demo", "1.0")
    up = raw_upload(py, token, form_for("inert-demo", "1.0", wheel), wheel_filename("inert-demo", "1.0"), wheel)
    assert up.status_code == 200, up.text
    for url in (py + "simple/", py + "simple/inert-demo/", py + f"simple/inert-demo/{wheel_filename('inert-demo', '1.0')}"):
        resp = httpx.get(url, auth=("aws", token))
        assert resp.status_code == 200, url
        _inert(resp)
    js = server.endpoint("trust", "npm", "js")
    body = publish_body("inert-pkg", "1.0.0", make_tarball("inert-pkg", "1.0.0"))
    pub = httpx.put(js + "inert-pkg", json=body, headers={"Authorization": f"Bearer {token}"})
    assert pub.status_code == 201, pub.text
    for url in (js + "inert-pkg", js + "inert-pkg/-/inert-pkg-1.0.0.tgz"):
        resp = httpx.get(url, headers={"Authorization": f"Bearer {token}"})
        assert resp.status_code == 200, url
        _inert(resp)
