"""Paging: services cut pages at an offset cursor; a client sees that cursor only sealed in a signed nextToken.

A service takes `(max_results, cursor)` and answers the cursor of the next page as `nextToken`. The
control plane opens a client's nextToken into a cursor before the handler runs and seals the cursor
it answers (PageTokens), so the offsets themselves never cross the wire. A sealed token is signed
with the server key (itsdangerous) and bound to its operation and to the listing's other inputs: a
forged token, one of another operation or listing, or one edited by a single character is a
ValidationException, and so is a signed one whose offset is out of range."""

from __future__ import annotations

import hashlib
import hmac
import json

from itsdangerous import BadSignature, URLSafeSerializer

from app.domain.errors import ValidationError

DEFAULT_LIMIT = 100
MAX_OFFSET = 10**9
_SALT = "arca.page-token.v1"


def _offset(cursor: str | None) -> int:
    if not cursor:
        return 0
    if not cursor.isascii() or not cursor.isdigit() or int(cursor) > MAX_OFFSET:
        raise ValidationError("nextToken is invalid")
    return int(cursor)


def page_args(max_results: int | None, cursor: str | None) -> tuple[int, int]:
    """(limit, offset) of a page. maxResults (1-1000) was checked against the model at the door."""
    limit = DEFAULT_LIMIT if max_results is None else int(max_results)
    return limit, _offset(cursor)


def with_cursor(out: dict, next_offset: int | None) -> dict:
    """`out` with the cursor of the page that starts at `next_offset` (None: this was the last page)."""
    if next_offset is not None:
        out["nextToken"] = str(next_offset)
    return out


def with_next_token(out: dict, offset: int, limit: int, got: int) -> dict:
    """`out` with the cursor after a page that fetched `got` rows (callers fetch limit+1: a full
    extra row means there is another page)."""
    return with_cursor(out, offset + limit if got > limit else None)


def page_of(items: list, key: str, max_results: int | None = None, cursor: str | None = None) -> dict:
    """One page of a list built in memory, as `{key: [...], "nextToken": ...}`."""
    limit, offset = page_args(max_results, cursor)
    return with_next_token({key: items[offset:offset + limit]}, offset, limit, len(items[offset:offset + limit + 1]))


def _listing_digest(listing: dict) -> str:
    text = json.dumps(listing, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


class PageTokens:
    """Seals cursors into nextTokens and opens them again (the control plane's side of paging)."""

    def __init__(self, secret_key: str):
        self._s = URLSafeSerializer(secret_key, salt=_SALT)

    def seal(self, operation: str, listing: dict, cursor: str) -> str:
        """The nextToken for `cursor` of `operation` called with `listing` (its inputs but the paging ones)."""
        return self._s.dumps({"op": operation, "l": _listing_digest(listing), "o": _offset(cursor)})

    def open(self, operation: str, listing: dict, token: str) -> str:
        """The cursor a nextToken carries; ValidationException unless this server sealed exactly this
        token for this operation and listing."""
        try:
            claims = self._s.loads(token)
            op, digest, offset = claims["op"], claims["l"], claims["o"]
        except (BadSignature, KeyError, TypeError, ValueError, UnicodeError):
            raise ValidationError("nextToken is invalid: it is not a token this server issued") from None
        # base64 leaves slack bits in a signature's last character: an edited token can still verify,
        # so it must also be the very text that sealing its claims gives.
        if not hmac.compare_digest(self._s.dumps(claims).encode(), token.encode()):
            raise ValidationError("nextToken is invalid: it is not a token this server issued")
        if op != operation:
            raise ValidationError(f"nextToken is invalid: it was issued for {op}, not {operation}")
        if digest != _listing_digest(listing):
            raise ValidationError("nextToken is invalid: it was issued for a listing with other parameters; "
                                  "send the same parameters as for the first page")
        if type(offset) is not int or not 0 <= offset <= MAX_OFFSET:
            raise ValidationError("nextToken is invalid: its position is out of range")
        return str(offset)
