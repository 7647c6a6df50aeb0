"""Per-request facts (request id, principal, resource) in a ContextVar.

The middleware sets a fresh RequestInfo; authentication fills in the principal; worker threads
(run_in_threadpool copies the context) see the same object, so the audit hook that runs inside a
DB flush knows who made the change."""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass, field


@dataclass
class RequestInfo:
    request_id: str = ""
    source_ip: str | None = None
    secure_transport: bool | None = None  # the request came over TLS (aws:SecureTransport)
    principal: str | None = None
    plane: str = "other"  # control | data | ui | other
    operation: str | None = None
    domain: str | None = None
    repository: str | None = None
    format: str | None = None
    extra: dict = field(default_factory=dict)


current: ContextVar[RequestInfo | None] = ContextVar("arca_request", default=None)


def info() -> RequestInfo | None:
    return current.get()


def note(**fields) -> None:
    """Record facts about the current request (no-op outside a request)."""
    ri = current.get()
    if ri is None:
        return
    for k, v in fields.items():
        setattr(ri, k, v)
