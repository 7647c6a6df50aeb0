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
