"""SigV4 authentication of control-plane requests (CodeArtifact at /v1, IAM and STS at POST /)."""

from __future__ import annotations

import hashlib

from starlette.requests import Request

from app.auth.sigv4 import SigV4Error, verify
from app.services import iam, identity
from app.services.context import Arca, Principal


def authenticate(arca: Arca, request: Request, body: bytes | None, service: str = "codeartifact") -> Principal:
    """The principal of a correctly signed request whose signature covers `body`, the bytes received.
    `body` None: the body streams after this (PublishPackageVersion); the signature then covers the
    signed x-amz-content-sha256, which the handler checks against the bytes as it stores them.
    Temporary credentials (a role session's key) must come with their x-amz-security-token."""
    headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in request.scope["headers"]}
    found: dict = {}

    def lookup(key_id: str):
        cred = identity.lookup_key(arca, key_id)
        if cred is None:
            return None
        found["credential"] = cred
        return cred.secret

    raw_path = request.scope.get("raw_path") or request.url.path.encode()
    key_id = verify(method=request.method, raw_path=raw_path.decode("latin-1"),
                    query_string=request.scope.get("query_string", b"").decode("latin-1"),
                    headers=headers, body_sha256=None if body is None else hashlib.sha256(body).hexdigest(),
                    lookup_secret=lookup, service=service,
                    region=arca.settings.region if service == "codeartifact" else None)
    cred = found["credential"]
    if not identity.check_session_token(cred, headers.get("x-amz-security-token")):
        raise SigV4Error("UnrecognizedClientException", "The security token included in the request is invalid.")
    if cred.token_sha256 is None:
        iam.note_key_used(arca, key_id, service, _scope_region(headers.get("authorization", "")))
    return cred.principal


def _scope_region(authorization: str) -> str:
    parts = authorization.split("Credential=", 1)[-1].split(",", 1)[0].split("/")
    return parts[2] if len(parts) == 5 else "N/A"


def scope_service(authorization: str | None) -> str | None:
    """The service a SigV4 Authorization header is scoped to (`iam`, `sts`, `codeartifact`)."""
    if not authorization or "Credential=" not in authorization:
        return None
    parts = authorization.split("Credential=", 1)[1].split(",", 1)[0].split("/")
    return parts[3] if len(parts) == 5 else None


__all__ = ["authenticate", "scope_service", "SigV4Error"]
