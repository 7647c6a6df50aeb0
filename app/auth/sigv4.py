"""AWS Signature Version 4 verification for the control plane (service `codeartifact`)."""

from __future__ import annotations

import hashlib
import hmac
import re
from datetime import datetime, timedelta, timezone
from typing import Callable, Mapping
from urllib.parse import quote, unquote

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
MAX_SKEW = timedelta(minutes=15)
PAYLOAD_HEADER = "x-amz-content-sha256"
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
_AUTH_RE = re.compile(
    r"AWS4-HMAC-SHA256\s+Credential=(?P<cred>[^,\s]+),\s*SignedHeaders=(?P<sh>[^,\s]+),\s*Signature=(?P<sig>[0-9a-f]{64})\s*$"
)


class SigV4Error(Exception):
    def __init__(self, code: str, message: str, status: int = 403):
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


def _uri_encode(s: str, safe: str = "-_.~") -> str:
    return quote(s, safe=safe)


def canonical_query(query_string: str) -> str:
    pairs = []
    for part in query_string.split("&") if query_string else []:
        if not part:
            continue
        k, _, v = part.partition("=")
        pairs.append((_uri_encode(unquote(k.replace("+", "%20"))), _uri_encode(unquote(v.replace("+", "%20")))))
    pairs.sort()
    return "&".join(f"{k}={v}" for k, v in pairs)


def canonical_path(raw_path: str) -> str:
    # botocore normalises nothing and encodes each segment once (non-S3 services encode twice,
    # but the raw path botocore sends is already encoded once: encode that again).
    return _uri_encode(raw_path or "/", safe="/-_.~")


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    k = _hmac(("AWS4" + secret).encode(), date)
    k = _hmac(k, region)
    k = _hmac(k, service)
    return _hmac(k, "aws4_request")


def _payload_line(headers: Mapping[str, str], signed: list[str], body_sha256: str | None) -> str:
    """The payload hash the signature must cover: the hash of the body actually received.

    The client may state it in x-amz-content-sha256, but only a header among the signed ones is a
    statement at all (an unsigned one could have been changed on the way, so it is ignored), and
    UNSIGNED-PAYLOAD states nothing: it is refused, as the signature would then cover no body.
    With `body_sha256` None the body is streamed and not read yet: the signed header must state its
    hash, which the caller checks while it reads (and stores nothing if the bytes differ)."""
    claimed = headers.get(PAYLOAD_HEADER) if PAYLOAD_HEADER in signed else None
    if claimed == UNSIGNED_PAYLOAD:
        raise SigV4Error("InvalidSignatureException",
                         "UNSIGNED-PAYLOAD is not accepted: the signature must cover the request body")
    if body_sha256 is not None:
        return claimed if claimed is not None else body_sha256
    if claimed is None:
        raise SigV4Error("InvalidSignatureException",
                         "This operation streams its body: sign an x-amz-content-sha256 header holding its SHA-256")
    # Signed, so it is the client's statement; one that is no SHA-256 is then refused as input (400)
    # before a byte of the body is read.
    return claimed


def verify(
    *,
    method: str,
    raw_path: str,
    query_string: str,
    headers: Mapping[str, str],
    body_sha256: str | None,
    lookup_secret: Callable[[str], str | None],
    service: str = "codeartifact",
    region: str | None = None,
    now: datetime | None = None,
) -> str:
    """Return the access key id of a correctly signed request, else raise SigV4Error.

    `headers` must have lower-case names. `body_sha256` is the hex SHA-256 of the body received,
    or None for a body that is streamed after authentication: then a signed x-amz-content-sha256
    is required, and the caller must check the body against it (see `_payload_line`)."""
    auth = headers.get("authorization")
    if not auth:
        raise SigV4Error("MissingAuthenticationTokenException", "Missing Authentication Token")
    m = _AUTH_RE.match(auth)
    if not m:
        raise SigV4Error("IncompleteSignatureException", "Authorization header is not a valid AWS4-HMAC-SHA256 signature", 400)
    cred = m["cred"].split("/")
    if len(cred) != 5 or cred[4] != "aws4_request":
        raise SigV4Error("IncompleteSignatureException", "Credential must be KEY/DATE/REGION/SERVICE/aws4_request", 400)
    key_id, date, req_region, req_service, _ = cred
    if req_service != service:
        raise SigV4Error("InvalidSignatureException", f"Credential should be scoped to correct service: '{service}'")
    if region and req_region != region:
        raise SigV4Error("InvalidSignatureException", f"Credential should be scoped to a valid region, not '{req_region}'")
    amz_date = headers.get("x-amz-date")
    if not amz_date:
        raise SigV4Error("IncompleteSignatureException", "X-Amz-Date header is required", 400)
    try:
        when = datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc)
    except ValueError:
        raise SigV4Error("IncompleteSignatureException", f"X-Amz-Date {amz_date!r} is not YYYYMMDDTHHMMSSZ", 400) from None
    now = now or datetime.now(timezone.utc)
    if abs(now - when) > MAX_SKEW:
        raise SigV4Error(
            "InvalidSignatureException",
            f"Signature expired: {amz_date} is now earlier or later than {now:%Y%m%dT%H%M%SZ} by more than 15 minutes",
        )
    if amz_date[:8] != date:
        raise SigV4Error("InvalidSignatureException", "Credential date does not match X-Amz-Date")
    secret = lookup_secret(key_id)
    if secret is None:
        raise SigV4Error("UnrecognizedClientException", "The security token included in the request is invalid.")
    signed = m["sh"].split(";")
    if "host" not in signed:
        raise SigV4Error("InvalidSignatureException", "The host header must be signed")
    payload_sha256 = _payload_line(headers, signed, body_sha256)
    canon_headers = "".join(f"{h}:{' '.join(headers.get(h, '').split())}\n" for h in signed)
    canonical = "\n".join(
        [method, canonical_path(raw_path), canonical_query(query_string), canon_headers, m["sh"], payload_sha256]
    )
    scope = f"{date}/{req_region}/{req_service}/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    expected = hmac.new(signing_key(secret, date, req_region, req_service), to_sign.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, m["sig"]):
        raise SigV4Error(
            "InvalidSignatureException",
            "The request signature we calculated does not match the signature you provided. "
            "Check your AWS Secret Access Key and signing method.",
        )
    if body_sha256 is not None and payload_sha256 != body_sha256:
        # Signed by the key's owner, but over other bytes than the ones that arrived.
        raise SigV4Error("XAmzContentSHA256Mismatch",
                         "The x-amz-content-sha256 header does not match the SHA-256 of the request body received",
                         400)
    return key_id
