"""OIDC issuers' signing keys: fetched over HTTP (discovery document, then `jwks_uri`), cached per
process, refetched when a token names a `kid` the cache lacks (at most every
ARCA_OIDC_JWKS_MIN_REFRESH seconds per issuer, so tokens with made-up kids cannot make Arca hammer
an issuer) and after ARCA_OIDC_JWKS_MAX_AGE. Every fetch has the upstream timeout and a size bound;
only https URLs are fetched, and http ones on the loopback interface (a test or a local issuer)."""

from __future__ import annotations

import ipaddress
import json
import logging
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from app.auth.webidentity import TokenRefused, WebIdentity, verify
from app.domain.errors import ExpiredToken, IdpCommunicationError, InvalidIdentityToken, ValidationError
from app.services.caches import MISS
from app.services.context import Arca

log = logging.getLogger("arca.oidc")
MAX_DOCUMENT = 1024 * 1024
_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()


@dataclass(frozen=True)
class _Keys:
    keys: dict
    fetched: float


def check_url(url: str, what: str = "The OpenID Connect provider URL") -> None:
    """https, or http to a loopback address; no credentials, query or fragment."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
    except ValueError:
        raise ValidationError(f"{what} {url!r} is not a URL") from None
    if parts.username or parts.password or parts.query or parts.fragment or not host:
        raise ValidationError(f"{what} {url!r} must be https://HOST[/PATH] without credentials, query or fragment")
    if parts.scheme == "https":
        return
    if parts.scheme == "http" and _loopback(host):
        return
    raise ValidationError(f"{what} {url!r} must use https (http only on the loopback interface)")


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _get_json(arca: Arca, url: str) -> dict:
    check_url(url, "URL")
    try:
        with httpx.Client(timeout=arca.settings.upstream_timeout, follow_redirects=False) as client:
            with client.stream("GET", url, headers={"Accept": "application/json"}) as resp:
                if resp.status_code != 200:
                    raise IdpCommunicationError(f"{url} answered HTTP {resp.status_code}")
                body = b""
                for chunk in resp.iter_bytes():
                    body += chunk
                    if len(body) > MAX_DOCUMENT:
                        raise IdpCommunicationError(f"{url} sent more than {MAX_DOCUMENT} bytes")
    except httpx.HTTPError as exc:
        raise IdpCommunicationError(f"{url} could not be fetched ({type(exc).__name__}: {exc})") from None
    try:
        doc = json.loads(body)
    except ValueError:
        raise IdpCommunicationError(f"{url} did not answer JSON") from None
    if not isinstance(doc, dict):
        raise IdpCommunicationError(f"{url} did not answer a JSON object")
    return doc


def _fetch_keys(arca: Arca, issuer: str) -> dict:
    config = _get_json(arca, issuer.rstrip("/") + "/.well-known/openid-configuration")
    if config.get("issuer", issuer).rstrip("/") != issuer.rstrip("/"):
        raise IdpCommunicationError(f"the discovery document of {issuer} names another issuer {config.get('issuer')!r}")
    uri = config.get("jwks_uri")
    if not isinstance(uri, str):
        raise IdpCommunicationError(f"the discovery document of {issuer} has no jwks_uri")
    keys = _get_json(arca, uri)
    if not isinstance(keys.get("keys"), list):
        raise IdpCommunicationError(f"{uri} is not a JSON Web Key Set")
    return keys


def issuer_keys(arca: Arca, issuer: str, refresh: bool = False) -> dict:
    """The issuer's key set, from the cache when fresh enough. `refresh`: a token named a kid the
    cached set lacks. One fetch per issuer at a time (concurrent callers wait for it)."""
    with _locks_guard:
        lock = _locks.setdefault(issuer, threading.Lock())
    with lock:
        hit = arca.caches.jwks.get(issuer)
        now = time.monotonic()
        if hit is not MISS:
            age = now - hit.fetched
            if age < (arca.settings.oidc_jwks_min_refresh if refresh else arca.settings.oidc_jwks_max_age):
                return hit.keys
        try:
            keys = _fetch_keys(arca, issuer)
        except IdpCommunicationError as exc:
            if hit is not MISS:  # the issuer is down: the keys we had still verify what they verified
                log.warning("keeping the cached keys of %s: %s", issuer, exc.message)
                return hit.keys
            raise
        arca.caches.jwks.put(issuer, _Keys(keys, now))
        return keys


def verify_token(arca: Arca, token: str, issuer: str, audiences: tuple[str, ...]) -> WebIdentity:
    """The token's verified identity, or InvalidIdentityToken / ExpiredToken saying why not."""
    try:
        try:
            return verify(token, keys=issuer_keys(arca, issuer), issuer=issuer, audiences=audiences, now=time.time())
        except TokenRefused as exc:
            if exc.kind != "unknown-key":
                raise
            return verify(token, keys=issuer_keys(arca, issuer, refresh=True), issuer=issuer, audiences=audiences,
                          now=time.time())
    except TokenRefused as exc:
        if exc.kind == "expired":
            raise ExpiredToken(exc.message.capitalize()) from None
        raise InvalidIdentityToken(exc.message[0].upper() + exc.message[1:]) from None
