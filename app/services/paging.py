"""Opaque nextToken paging (an offset, signed so a client cannot hand-craft one)."""

from __future__ import annotations

import base64
import json

from app.domain.errors import ValidationError


def page_args(max_results, next_token) -> tuple[int, int]:
    limit = 100 if max_results in (None, "") else int(max_results)
    if not 1 <= limit <= 1000:
        raise ValidationError("maxResults must be between 1 and 1000")
    offset = 0
    if next_token:
        try:
            offset = int(json.loads(base64.urlsafe_b64decode(next_token.encode()))["o"])
        except Exception:
            raise ValidationError("nextToken is invalid") from None
    return limit, offset


def next_token(offset: int, limit: int, got: int) -> str | None:
    """Callers fetch limit+1 rows; a full extra row means there is another page."""
    if got <= limit:
        return None
    return base64.urlsafe_b64encode(json.dumps({"o": offset + limit}).encode()).decode()


def with_next_token(out: dict, offset: int, limit: int, got: int) -> dict:
    """`out` with the nextToken of a page that fetched `got` rows (limit+1 when there are more)."""
    token = next_token(offset, limit, got)
    if token:
        out["nextToken"] = token
    return out


def page_of(items: list, key: str, max_results=None, token: str | None = None) -> dict:
    """One page of a list built in memory, as `{key: [...], "nextToken": ...}`."""
    limit, offset = page_args(max_results, token)
    return with_next_token({key: items[offset:offset + limit]}, offset, limit, len(items[offset:offset + limit + 1]))
