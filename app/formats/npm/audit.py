"""npm audit's request bodies (`POST -/npm/v1/security/advisories/bulk`, and the older
`-/npm/v1/security/audits/quick`): read, bounded, and checked before they are forwarded.

npm sends the bulk body gzip-compressed (`Content-Encoding: gzip`): it is decompressed a bounded
piece at a time, so a small gzip bomb costs little, and forwarded as plain JSON."""

from __future__ import annotations

import json
import zlib

from app.domain.errors import PayloadTooLarge, ValidationError

MAX_BODY = 16 * 1024 * 1024  # as sent (compressed)
MAX_JSON = 64 * 1024 * 1024  # decompressed
BULK = "-/npm/v1/security/advisories/bulk"
QUICK = "-/npm/v1/security/audits/quick"


def _gunzip(data: bytes) -> bytes:
    z = zlib.decompressobj(16 + zlib.MAX_WBITS)
    out = bytearray()
    try:
        chunk = z.decompress(data, MAX_JSON + 1)
        out += chunk
        while z.unconsumed_tail and len(out) <= MAX_JSON:
            out += z.decompress(z.unconsumed_tail, MAX_JSON + 1 - len(out))
    except zlib.error:
        raise ValidationError("The audit request says Content-Encoding: gzip but is not gzip data") from None
    if len(out) > MAX_JSON:
        raise PayloadTooLarge(f"The audit request decompresses to more than {MAX_JSON} bytes")
    if not z.eof:
        raise ValidationError("The audit request's gzip data ends early")
    return bytes(out)


def read_body(data: bytes, content_encoding: str | None, path: str) -> bytes:
    """The audit document as plain JSON bytes to forward, or ValidationError with the reason."""
    encoding = (content_encoding or "").strip().lower()
    if encoding == "gzip":
        data = _gunzip(data)
    elif encoding not in ("", "identity"):
        raise ValidationError(f"Content-Encoding {encoding[:40]!r} is not supported (gzip or none)")
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise ValidationError("The audit request is not valid JSON") from None
    if not isinstance(doc, dict):
        raise ValidationError("The audit request must be a JSON object")
    if path == BULK and not all(isinstance(k, str) and isinstance(v, list) and all(isinstance(x, str) for x in v)
                                for k, v in doc.items()):
        raise ValidationError("The bulk advisory request must map package names to lists of versions")
    return json.dumps(doc, separators=(",", ":")).encode()
