"""One structured log line per request, X-Request-Id, and request metrics (pure ASGI, so streaming
bodies pass through untouched). Never logs credentials: only the path, not headers or the query."""

from __future__ import annotations

import logging
import re
import time
import uuid

from app.observability import metrics
from app.observability.context import RequestInfo, current

log = logging.getLogger("arca.request")
_REQUEST_ID_RE = re.compile(r"[A-Za-z0-9._\-]{1,64}")
RESERVED = {"v1": "control", "ui": "ui", "static": "ui", "healthz": "health", "readyz": "health", "metrics": "metrics"}


def _plane(path: str) -> tuple[str, str | None, str | None, str | None]:
    parts = path.split("/", 5)
    first = parts[1] if len(parts) > 1 else ""
    if first in RESERVED or not first:
        return RESERVED.get(first, "other"), None, None, None
    if len(parts) >= 4:
        return "data", parts[1], parts[3], parts[2]
    return "other", None, None, None


class RequestLogMiddleware:
    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        rid = headers.get(b"x-request-id", b"").decode("latin-1")
        if not _REQUEST_ID_RE.fullmatch(rid):
            rid = uuid.uuid4().hex
        path = scope.get("path", "")
        plane, domain, repository, fmt = _plane(path)
        client = scope.get("client")
        # The client's address and scheme: the socket's, or what a trusted reverse proxy forwarded
        # (uvicorn rewrote the scope; ARCA_FORWARDED_ALLOW_IPS names whom to believe).
        ri = RequestInfo(request_id=rid, source_ip=client[0] if client else None,
                         secure_transport=scope.get("scheme") in ("https", "wss"), plane=plane,
                         domain=domain, repository=repository, format=fmt)
        token = current.set(ri)
        start = time.perf_counter()
        state = {"status": 500, "out": 0, "in": 0}

        async def counting_receive():
            message = await receive()
            if message["type"] == "http.request":
                state["in"] += len(message.get("body", b""))
            return message

        async def tagging_send(message):
            if message["type"] == "http.response.start":
                state["status"] = message["status"]
                message.setdefault("headers", [])
                message["headers"] = list(message["headers"]) + [(b"x-request-id", rid.encode())]
                length = next((v for k, v in message["headers"] if k.lower() == b"content-length"), b"0")
                state["length"] = int(length) if length.isdigit() else 0
            elif message["type"] == "http.response.body":
                state["out"] += len(message.get("body", b""))
            elif message["type"] == "http.response.pathsend":  # a file sent zero-copy: all of it
                state["out"] += state.get("length", 0)
            await send(message)

        try:
            await self.app(scope, counting_receive, tagging_send)
        finally:
            current.reset(token)
            duration = time.perf_counter() - start
            self._record(scope, ri, state, duration)

    def _record(self, scope, ri: RequestInfo, state: dict, duration: float) -> None:
        fmt = ri.format or "-"
        metrics.REQUESTS.labels(ri.plane, fmt, scope["method"], str(state["status"])).inc()
        metrics.LATENCY.labels(ri.plane, fmt).observe(duration)
        if state["in"]:
            metrics.BYTES_IN.labels(ri.plane, fmt).inc(state["in"])
        if state["out"]:
            metrics.BYTES_OUT.labels(ri.plane, fmt).inc(state["out"])
        if ri.plane in ("health", "metrics") and state["status"] < 400:
            return
        fields = {"request_id": ri.request_id, "method": scope["method"], "path": scope.get("path", ""),
                  "status": state["status"], "bytes_in": state["in"], "bytes_out": state["out"],
                  "duration_ms": round(duration * 1000, 2), "remote": ri.source_ip, "plane": ri.plane,
                  "principal": ri.principal, "domain": ri.domain, "repository": ri.repository,
                  "format": ri.format, "operation": ri.operation}
        # The JSON formatter writes the fields (app/observability/logs.py); a text line the message.
        log.info('%s "%s %s" %s %sB in %sB out %.1fms id=%s principal=%s op=%s', ri.source_ip,
                 scope["method"], fields["path"], state["status"], state["in"], state["out"],
                 fields["duration_ms"], ri.request_id, ri.principal or "-", ri.operation or "-",
                 extra={"fields": {"event": "request", **fields}})
