"""SigV4 failures, bad names, duplicates and missing resources through boto3: the right error types,
and nothing changed."""

from __future__ import annotations

import datetime as dt

import botocore.auth
import httpx
import pytest
from botocore.exceptions import ClientError


def _code(exc: pytest.ExceptionInfo) -> str:
    return exc.value.response["Error"]["Code"]


def _domain_exists(server, name: str) -> bool:
    return name in [d["name"] for d in server.boto().list_domains()["domains"]]


def test_wrong_secret(server, unique):
    key = dict(server.access_key, SecretAccessKey="wrong" + server.access_key["SecretAccessKey"][5:])
    with pytest.raises(ClientError) as exc:
        server.boto(key).create_domain(domain=f"ws{unique}")
    assert _code(exc) == "InvalidSignatureException"
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert not _domain_exists(server, f"ws{unique}")


def test_unknown_access_key(server, unique):
    key = {"AccessKeyId": "AKIANOSUCHKEY0000000", "SecretAccessKey": "x" * 40}
    with pytest.raises(ClientError) as exc:
        server.boto(key).create_domain(domain=f"uk{unique}")
    assert _code(exc) == "UnrecognizedClientException"
    assert not _domain_exists(server, f"uk{unique}")


def test_stale_date(server, unique, monkeypatch):
    real = dt.datetime

    class Stale(real):
        @classmethod
        def utcnow(cls):
            return real.utcnow() - dt.timedelta(minutes=20)

        @classmethod
        def now(cls, tz=None):
            return real.now(tz) - dt.timedelta(minutes=20)

    client = server.boto()
    monkeypatch.setattr(botocore.auth.datetime, "datetime", Stale)
    with pytest.raises(ClientError) as exc:
        client.create_domain(domain=f"st{unique}")
    monkeypatch.undo()
    assert _code(exc) == "InvalidSignatureException"
    assert "Signature expired" in str(exc.value)
    assert not _domain_exists(server, f"st{unique}")


def test_missing_signature(server, unique):
    resp = httpx.post(f"{server.url}/v1/domain?domain=ms{unique}")
    assert resp.status_code == 403
    assert resp.headers["x-amzn-errortype"] == "MissingAuthenticationTokenException"
    assert not _domain_exists(server, f"ms{unique}")


def test_tampered_query_after_signing(server, unique):
    """A signature covers the query: changing ?domain= afterwards is refused."""
    client = server.boto()
    seen = {}

    def tamper(request, **_):
        seen["url"] = request.url
        request.url = request.url.replace(f"domain=tq{unique}", f"domain=tx{unique}")

    client.meta.events.register_last("before-send.codeartifact.CreateDomain", tamper)
    with pytest.raises(ClientError) as exc:
        client.create_domain(domain=f"tq{unique}")
    assert "tq" in seen["url"]
    assert _code(exc) == "InvalidSignatureException"
    assert not _domain_exists(server, f"tx{unique}")


@pytest.mark.parametrize("name", ["Upper", "has_underscore", "-lead", "trail-", "1digit", "a" * 51, "v1", "ui"])
def test_bad_domain_names(server, name):
    with pytest.raises(ClientError) as exc:
        server.boto().create_domain(domain=name)
    assert _code(exc) == "ValidationException"
    assert not _domain_exists(server, name)


@pytest.mark.parametrize("name", ["-lead", "has space", "a/b", "x" * 101, "ü-repo"])
def test_bad_repository_names(server, domain, name):
    c = server.boto()
    with pytest.raises(ClientError) as exc:
        c.create_repository(domain=domain, repository=name)
    assert _code(exc) == "ValidationException"
    assert c.list_repositories_in_domain(domain=domain)["repositories"] == []


def test_duplicates_are_conflicts(server, domain):
    c = server.boto()
    with pytest.raises(c.exceptions.ConflictException):
        c.create_domain(domain=domain)
    c.create_repository(domain=domain, repository="dup")
    with pytest.raises(c.exceptions.ConflictException):
        c.create_repository(domain=domain, repository="dup", description="second")
    assert c.describe_repository(domain=domain, repository="dup")["repository"]["description"] == ""


def test_missing_resources(server, domain):
    c = server.boto()
    with pytest.raises(c.exceptions.ResourceNotFoundException) as exc:
        c.describe_domain(domain="nosuchdomain")
    assert exc.value.response["resourceType"] == "domain"
    assert exc.value.response["resourceId"] == "nosuchdomain"
    with pytest.raises(c.exceptions.ResourceNotFoundException):
        c.describe_repository(domain=domain, repository="nosuch")
    with pytest.raises(c.exceptions.ResourceNotFoundException):
        c.delete_repository(domain=domain, repository="nosuch")
    with pytest.raises(c.exceptions.ResourceNotFoundException):
        c.get_authorization_token(domain="nosuchdomain")
    with pytest.raises(c.exceptions.ResourceNotFoundException):
        c.get_repository_endpoint(domain=domain, repository="nosuch", format="npm")


def test_non_admin_cannot_create_domains_or_read_others(server, domain, unique):
    key = server.new_user(f"dev{unique}")
    c = server.boto(key)
    with pytest.raises(c.exceptions.AccessDeniedException):
        c.create_domain(domain=f"na{unique}")
    with pytest.raises(c.exceptions.AccessDeniedException):
        c.get_authorization_token(domain=domain)
    assert not _domain_exists(server, f"na{unique}")


def test_paging_over_repositories(server, domain):
    c = server.boto()
    for i in range(5):
        c.create_repository(domain=domain, repository=f"r{i}")
    first = c.list_repositories_in_domain(domain=domain, maxResults=2)
    assert [r["name"] for r in first["repositories"]] == ["r0", "r1"] and first["nextToken"]
    names = [r["name"] for page in c.get_paginator("list_repositories_in_domain").paginate(
        domain=domain, PaginationConfig={"PageSize": 2}) for r in page["repositories"]]
    assert names == [f"r{i}" for i in range(5)]
