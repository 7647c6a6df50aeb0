"""Credentials sent to a private remote: Basic, Bearer, or a CodeArtifact-style domain token that
Arca gets itself with stored AWS-style keys (GetAuthorizationToken, SigV4-signed) and renews
`ARCA_UPSTREAM_TOKEN_REFRESH_SECONDS` (600) before it expires, or at once when the remote stops
accepting it.

Secrets appear in request headers only: never in an error message, a log line or a repr."""

from __future__ import annotations

import base64
import json
import time
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING
from urllib.parse import urlencode

import httpx

from app.domain.connections import Connection, Credentials
from app.domain.errors import UpstreamUnavailable

if TYPE_CHECKING:
    from app.upstream.remote import Remotes

TOKEN_PATH = "/v1/authorization-token"


def renewable(connection: Connection) -> bool:
    return connection.credentials is not None and connection.credentials.type == "CODEARTIFACT_TOKEN"


def _key(c: Credentials) -> tuple:
    return (c.access_key_id, c.endpoint_url, c.domain, c.domain_owner, c.region, c.duration_seconds)


def forget(remotes: "Remotes", connection: Connection) -> None:
    remotes.tokens.pop((connection.name, _key(connection.credentials)), None)


async def headers(remotes: "Remotes", connection: Connection) -> dict:
    c = connection.credentials
    if c is None or c.type == "NONE":
        return {}
    if c.type == "BASIC":
        pair = f"{c.username or ''}:{c.secret}".encode()
        return {"Authorization": "Basic " + base64.b64encode(pair).decode()}
    if c.type == "BEARER":
        return {"Authorization": f"Bearer {c.secret}"}
    if c.type == "UNREADABLE":
        raise UpstreamUnavailable(f"The credentials of external connection {connection.name} cannot be read with this "
                                  "server key (was it rotated?); store them again with update-external-connection")
    token = await _token(remotes, connection)
    if connection.format == "npm":  # npm's own way; the PyPI and Maven clients send Basic aws:TOKEN
        return {"Authorization": f"Bearer {token}"}
    return {"Authorization": "Basic " + base64.b64encode(f"aws:{token}".encode()).decode()}


async def _token(remotes: "Remotes", connection: Connection) -> str:
    key = (connection.name, _key(connection.credentials))
    hit = remotes.tokens.get(key)
    if hit is not None and hit[1] > time.monotonic():
        return hit[0]

    async def fetch() -> str:
        token, lifetime = await _fetch_token(remotes, connection)
        remotes.tokens[key] = (token, time.monotonic() + lifetime - remotes.settings.upstream_token_refresh)
        return token

    return await remotes.single_flight(("token",) + key, fetch)


def _signed(c: Credentials) -> tuple[str, dict, bytes]:
    """(url, headers, body) of a SigV4-signed GetAuthorizationToken request."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials as AwsCredentials

    query = {"domain": c.domain}
    if c.domain_owner:
        query["domain-owner"] = c.domain_owner
    if c.duration_seconds:
        query["duration"] = str(c.duration_seconds)
    url = c.endpoint_url.rstrip("/") + TOKEN_PATH + "?" + urlencode(query)
    req = AWSRequest(method="POST", url=url, data=b"", headers={"Content-Type": "application/json"})
    SigV4Auth(AwsCredentials(c.access_key_id, c.secret), "codeartifact", c.region or "us-east-1").add_auth(req)
    return url, dict(req.headers.items()), b""


async def _fetch_token(remotes: "Remotes", connection: Connection) -> tuple[str, float]:
    """(token, seconds it lives) from the remote's GetAuthorizationToken."""
    c = connection.credentials
    name = connection.name
    await remotes.check_breaker(name)
    url, sent, body = _signed(c)
    where = c.endpoint_url
    try:
        resp = await remotes._client().post(url, headers=sent, content=body)
    except httpx.HTTPError as exc:
        await remotes.failed(name)
        raise UpstreamUnavailable(f"External connection {name} could not get an authorization token from "
                                  f"{where}: {type(exc).__name__}") from None
    if resp.status_code >= 500:
        await remotes.failed(name)
    if resp.status_code != 200:
        code = resp.headers.get("x-amzn-errortype", "").split(":")[0] or str(resp.status_code)
        raise UpstreamUnavailable(f"External connection {name} could not get an authorization token from "
                                  f"{where} for domain {c.domain}: {code}")
    try:
        doc = json.loads(resp.content)
        token, expiration = doc["authorizationToken"], float(doc["expiration"])
    except (ValueError, KeyError, TypeError):
        raise UpstreamUnavailable(f"External connection {name}: {where} answered GetAuthorizationToken with "
                                  "something that is not a token") from None
    # The lifetime by the remote's own clock (its Date header), so a skewed clock here does not matter.
    now = time.time()
    try:
        now = parsedate_to_datetime(resp.headers["date"]).timestamp()
    except (KeyError, TypeError, ValueError):
        pass
    return token, max(expiration - now, 0.0)
