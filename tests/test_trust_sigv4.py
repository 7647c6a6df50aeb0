"""Issue 14 item 4: SigV4 covers the body. The payload hash in the signature is the hash of the body
that arrived: a body changed or dropped after signing is refused, x-amz-content-sha256 vouches for a
body only when it is among the signed headers and is a real hash (never UNSIGNED-PAYLOAD), and
PublishPackageVersion, which streams its body, stores nothing unless the bytes have the signed
SHA-256. Each request here is signed by botocore's own SigV4Auth, then altered as an attacker on
the way would alter it, and sent over real HTTP."""

from __future__ import annotations

import hashlib
import json
from urllib.parse import urlencode

import httpx
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from tests.web_support import services



def _bodies(repo) -> tuple[bytes, bytes]:
    """(the asset the publisher signed, what an attacker sends instead): unique to the test's domain,
    as the blob store is shared by every test on the server."""
    return (f"the bytes the publisher signed in {repo['domain']}\n".encode(),
            f"the bytes an attacker sends instead in {repo['domain']}\n".encode())


def _sign(server, method: str, path: str, query: dict, body: bytes, headers: dict | None = None) -> tuple[str, dict]:
    """(url, headers) of a request signed with the admin's key, exactly as botocore signs it."""
    url = f"{server.url}{path}?{urlencode(query)}"
    req = AWSRequest(method=method, url=url, data=body, headers=dict(headers or {}))
    key = server.access_key
    SigV4Auth(Credentials(key["AccessKeyId"], key["SecretAccessKey"]), "codeartifact", "us-east-1").add_auth(req)
    return url, dict(req.headers.items())


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _error(resp: httpx.Response) -> tuple[int, str]:
    return resp.status_code, resp.headers.get("x-amzn-errortype") or resp.json().get("__type", "")


@pytest.fixture
def repo(server, domain):
    server.boto().create_repository(domain=domain, repository="libs", description="as created")
    return {"domain": domain, "repository": "libs"}


def _description(server, repo) -> str:
    return server.boto().describe_repository(**repo)["repository"]["description"]


SIGNED_BODY = json.dumps({"description": "signed by the admin"}).encode()
EVIL_BODY = json.dumps({"description": "changed on the way"}).encode()


def test_a_correctly_signed_request_still_works(server, repo):
    """The baseline for the refusals below: the same request, unaltered, is accepted, with or without
    a signed payload-hash header."""
    for headers in ({}, {"X-Amz-Content-SHA256": _sha(SIGNED_BODY)}):
        url, signed = _sign(server, "PUT", "/v1/repository", repo, SIGNED_BODY, headers)
        resp = httpx.put(url, content=SIGNED_BODY, headers=signed)
        assert resp.status_code == 200, resp.text
    assert _description(server, repo) == "signed by the admin"


def test_a_body_changed_after_signing_is_refused(server, repo):
    # botocore's way: no payload header, the signature covers the hash of the body
    url, signed = _sign(server, "PUT", "/v1/repository", repo, SIGNED_BODY)
    assert _error(httpx.put(url, content=EVIL_BODY, headers=signed)) == (403, "InvalidSignatureException")
    # with the hash in a signed x-amz-content-sha256: the header is genuine, the body is not
    url, signed = _sign(server, "PUT", "/v1/repository", repo, SIGNED_BODY,
                        {"X-Amz-Content-SHA256": _sha(SIGNED_BODY)})
    resp = httpx.put(url, content=EVIL_BODY, headers=signed)
    assert _error(resp) == (400, "XAmzContentSHA256Mismatch") and "does not match" in resp.text
    assert _description(server, repo) == "as created"


def test_a_body_dropped_after_signing_is_refused(server, repo):
    """A signed hash of a body vouches for that body, not for an empty one."""
    url, signed = _sign(server, "PUT", "/v1/repository", repo, SIGNED_BODY,
                        {"X-Amz-Content-SHA256": _sha(SIGNED_BODY)})
    assert _error(httpx.put(url, content=b"", headers=signed)) == (400, "XAmzContentSHA256Mismatch")
    assert _description(server, repo) == "as created"


def test_unsigned_payload_never_vouches_for_a_body(server, repo):
    for body in (EVIL_BODY, b""):
        url, signed = _sign(server, "PUT", "/v1/repository", repo, b"", {"X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD"})
        assert "x-amz-content-sha256" in signed["Authorization"]  # signed, and still not a statement about the body
        resp = httpx.put(url, content=body, headers=signed)
        assert _error(resp) == (403, "InvalidSignatureException") and "UNSIGNED-PAYLOAD" in resp.text
    assert _description(server, repo) == "as created"


def test_a_payload_hash_left_out_of_the_signed_headers_vouches_for_nothing(server, repo):
    """The attacker adds x-amz-content-sha256 after signing (it is not in SignedHeaders): whatever it
    says, the body received is what the signature must cover."""
    url, signed = _sign(server, "PUT", "/v1/repository", repo, SIGNED_BODY)
    assert "x-amz-content-sha256" not in signed["Authorization"]
    for body, claim in ((EVIL_BODY, _sha(SIGNED_BODY)), (b"", _sha(SIGNED_BODY)), (EVIL_BODY, _sha(EVIL_BODY)),
                        (EVIL_BODY, "UNSIGNED-PAYLOAD")):
        resp = httpx.put(url, content=body, headers={**signed, "X-Amz-Content-SHA256": claim})
        assert _error(resp) == (403, "InvalidSignatureException"), (body, claim, resp.text)
    assert _description(server, repo) == "as created"


# ---- PublishPackageVersion: the body streams into the blob store ------------------------------------

def _publish_query(repo, version: str) -> dict:
    return {**repo, "format": "generic", "namespace": "trust", "package": "sigv4", "version": version,
            "asset": "payload.bin"}


def _versions(server, repo) -> list[str]:
    c = server.boto()
    try:
        out = c.list_package_versions(**repo, format="generic", namespace="trust", package="sigv4")
    except c.exceptions.ResourceNotFoundException:
        return []
    return [v["version"] for v in out["versions"]]


def _stored(server, data: bytes) -> bool:
    return services(server).blobs.stat(_sha(data)) is not None


def test_publish_with_the_hash_of_other_bytes_stores_nothing(server, repo):
    ASSET, OTHER = _bodies(repo)
    query = _publish_query(repo, "1.0")
    # signed with the hash of ASSET, then OTHER is sent
    url, signed = _sign(server, "POST", "/v1/package/version/publish", query, ASSET,
                        {"X-Amz-Content-SHA256": _sha(ASSET)})
    resp = httpx.post(url, content=OTHER, headers=signed)
    assert resp.status_code == 400 and "sha256" in resp.text.lower(), resp.text
    # the hash of OTHER signed, with ASSET sent: refused the same way
    url, signed = _sign(server, "POST", "/v1/package/version/publish", query, OTHER,
                        {"X-Amz-Content-SHA256": _sha(OTHER)})
    assert httpx.post(url, content=ASSET, headers=signed).status_code == 400
    assert _versions(server, repo) == []
    assert not _stored(server, OTHER) and not _stored(server, ASSET)
    # the genuine request goes through (so the refusals above were about the bytes)
    url, signed = _sign(server, "POST", "/v1/package/version/publish", query, ASSET,
                        {"X-Amz-Content-SHA256": _sha(ASSET)})
    resp = httpx.post(url, content=ASSET, headers=signed)
    assert resp.status_code == 200, resp.text
    assert resp.json()["asset"]["hashes"]["SHA-256"] == _sha(ASSET)
    assert _versions(server, repo) == ["1.0"] and _stored(server, ASSET) and not _stored(server, OTHER)


def test_publish_needs_a_signed_real_payload_hash(server, repo):
    _asset, OTHER = _bodies(repo)
    query = _publish_query(repo, "2.0")
    # UNSIGNED-PAYLOAD, signed
    url, signed = _sign(server, "POST", "/v1/package/version/publish", query, OTHER,
                        {"X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD"})
    assert _error(httpx.post(url, content=OTHER, headers=signed)) == (403, "InvalidSignatureException")
    # the right hash, but added after signing (not among the signed headers)
    url, signed = _sign(server, "POST", "/v1/package/version/publish", query, OTHER)
    resp = httpx.post(url, content=OTHER, headers={**signed, "X-Amz-Content-SHA256": _sha(OTHER)})
    assert _error(resp) == (403, "InvalidSignatureException") and "x-amz-content-sha256" in resp.text
    # no hash at all
    assert _error(httpx.post(url, content=OTHER, headers=signed)) == (403, "InvalidSignatureException")
    assert _versions(server, repo) == [] and not _stored(server, OTHER)


def test_boto3_publish_and_download_still_work(server, repo):
    ASSET, _other = _bodies(repo)
    c = server.boto()
    out = c.publish_package_version(**repo, format="generic", namespace="trust", package="sigv4",
                                    packageVersion="3.0", assetName="payload.bin", assetContent=ASSET,
                                    assetSHA256=_sha(ASSET))
    assert out["status"] == "Published"
    got = c.get_package_version_asset(**repo, format="generic", namespace="trust", package="sigv4",
                                      packageVersion="3.0", asset="payload.bin")
    assert got["asset"].read() == ASSET
