"""Walking the external connections of a resolution order: the first remote that has what is
asked for provides it; a remote that fails is remembered and reported only when no other could
answer (UpstreamUnavailable, 502), else the thing is simply not found (404)."""

from __future__ import annotations

from typing import Any, Awaitable, Callable, TypeVar

from app.domain.errors import NotFound, UpstreamUnavailable
from app.services.resolve import Node

T = TypeVar("T")


async def first_remote(nodes: list[Node], find: Callable[[Node], Awaitable[Any]],
                       take: Callable[[Node, Any], Awaitable[T | None]], missing: str) -> T:
    """For each external node in order: `find` what the remote lists (None or NotFound: not there;
    UpstreamUnavailable: remembered), then `take` it (None: not there after all; its errors are
    the answer); the first result wins."""
    failures: list[UpstreamUnavailable] = []
    for n in nodes:
        if not n.external:
            continue
        try:
            hit = await find(n)
        except UpstreamUnavailable as exc:
            failures.append(exc)
            continue
        except NotFound:
            continue
        if hit is None:
            continue
        got = await take(n, hit)
        if got is not None:
            return got
    if failures:
        raise failures[0]
    raise NotFound(missing)
