"""Token rules on the data plane: Basic aws:TOKEN and Bearer, 401 + WWW-Authenticate otherwise."""

from __future__ import annotations

import base64
import time

import httpx
import pytest

from app.auth.tokens import TokenSigner
from tests.pypi_support import wait_for
from tests.support.server import start_server


@pytest.fixture(scope="module")
def repo(server):
    server.create_repo("authz", "libs")
    server.create_repo("other", "libs")
    return server.endpoint("authz", "maven", "libs")


def _secret(server) -> str:
    return (server.root / "storage" / "secret.key").read_text().strip()


def _assert_401(resp: httpx.Response) -> None:
    assert resp.status_code == 401, resp.text
    assert resp.headers["www-authenticate"] == 'Basic realm="arca"'


def test_basic_and_bearer_accepted(server, repo):
    token = server.token("authz")
    assert httpx.get(repo, auth=("aws", token)).status_code == 200
    assert httpx.get(repo, headers={"Authorization": f"Bearer {token}"}).status_code == 200


def test_missing_token_is_challenged(server, repo):
    _assert_401(httpx.get(repo))
    _assert_401(httpx.put(repo + "com/acme/a/1.0/a-1.0.jar", content=b"x"))


def test_invalid_and_tampered_tokens(server, repo):
    _assert_401(httpx.get(repo, auth=("aws", "not-a-token")))
    token = server.token("authz")
    i = len(token) // 2
    tampered = token[:i] + ("A" if token[i] != "A" else "B") + token[i + 1:]
    _assert_401(httpx.get(repo, auth=("aws", tampered)))
    _assert_401(httpx.get(repo, headers={"Authorization": "Basic !!!notbase64"}))
    _assert_401(httpx.get(repo, headers={"Authorization": "Digest abc"}))


def test_wrong_username_in_basic(server, repo):
    token = server.token("authz")
    _assert_401(httpx.get(repo, auth=("admin", token)))
    raw = base64.b64encode(f"aws:{token}".encode()).decode()
    assert httpx.get(repo, headers={"Authorization": f"Basic {raw}"}).status_code == 200


def test_token_of_another_domain(server, repo):
    other = server.token("other")
    _assert_401(httpx.get(repo, auth=("aws", other)))
    assert httpx.get(server.endpoint("other", "maven", "libs"), auth=("aws", other)).status_code == 200


def test_expired_token(server, repo):
    signer = TokenSigner(_secret(server))
    admin_id = 1
    expired = signer.issue(user_id=admin_id, user_name="admin", domain="authz", expires_at=time.time() - 1)
    resp = httpx.get(repo, auth=("aws", expired))
    _assert_401(resp)
    assert "expired" in resp.text
    # the same claims with a future expiry are accepted: only the expiry differs
    fresh = signer.issue(user_id=admin_id, user_name="admin", domain="authz", expires_at=time.time() + 60)
    assert httpx.get(repo, auth=("aws", fresh)).status_code == 200
    # A token the server has already checked (and remembers as well signed) is still refused once it expires.
    brief = signer.issue(user_id=admin_id, user_name="admin", domain="authz", expires_at=time.time() + 10)
    assert httpx.get(repo, auth=("aws", brief)).status_code == 200
    assert wait_for(lambda: httpx.get(repo, auth=("aws", brief)).status_code == 401, timeout=60)
    assert "expired" in httpx.get(repo, auth=("aws", brief)).text


def test_unknown_repository_is_404_unknown_domain_is_not_this_tokens(server, repo):
    token = server.token("authz")
    assert httpx.get(f"{server.url}/authz/maven/nosuchrepo/", auth=("aws", token)).status_code == 404
    # a token is valid for its own domain only: whether another domain exists is not told
    _assert_401(httpx.get(f"{server.url}/nosuchdomain/maven/libs/", auth=("aws", token)))


def test_health_endpoints(server):
    assert httpx.get(server.url + "/healthz").status_code == 200
    ready = httpx.get(server.url + "/readyz")
    assert ready.status_code == 200 and ready.json()["ready"] is True


def test_signing_key_rotation_revokes_tokens(tmp_path):
    srv = start_server(tmp_path / "rot", env={"ARCA_SECRET_KEY": "first-key-" + "x" * 40})
    try:
        srv.create_repo("rot", "libs")
        url = srv.endpoint("rot", "maven", "libs")
        token = srv.token("rot")
        assert httpx.get(url, auth=("aws", token)).status_code == 200
        srv.stop()
        # the documented rotation: the new key, and the old one kept to open the sealed access key secrets
        srv.env["ARCA_SECRET_KEY"] = "second-key-" + "y" * 40
        srv.env["ARCA_SECRET_KEY_PREVIOUS"] = "first-key-" + "x" * 40
        srv.start()
        _assert_401(httpx.get(url, auth=("aws", token)))
        assert httpx.get(url, auth=("aws", srv.token("rot"))).status_code == 200
    finally:
        srv.stop()
