"""SigV4 authentication of control-plane requests."""

from __future__ import annotations

import hashlib

from starlette.requests import Request

from app.auth.sigv4 import SigV4Error, verify
from app.services import identity
from app.services.context import Arca, Principal


def authenticate(arca: Arca, request: Request, body: bytes | None) -> Principal:
    """The principal of a correctly signed request whose signature covers `body`, the bytes received.
    `body` None: the body streams after this (PublishPackageVersion); the signature then covers the
    signed x-amz-content-sha256, which the handler checks against the bytes as it stores them."""
    headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in request.scope["headers"]}
    found: dict = {}

    def lookup(key_id: str):
        hit = identity.lookup_key(arca, key_id)
        if hit is None:
            return None
        found["principal"] = hit[1]
        return hit[0]

    raw_path = request.scope.get("raw_path") or request.url.path.encode()
    verify(method=request.method, raw_path=raw_path.decode("latin-1"),
           query_string=request.scope.get("query_string", b"").decode("latin-1"),
           headers=headers, body_sha256=None if body is None else hashlib.sha256(body).hexdigest(),
           lookup_secret=lookup,
           region=arca.settings.region)
    return found["principal"]


__all__ = ["authenticate", "SigV4Error"]
