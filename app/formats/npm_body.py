"""Reading request bodies in bounded chunks straight from the ASGI receive channel.

Starlette's `request.stream()` cannot be resumed once left, but a refused request should still
be read to its end (within reason) before we answer: a server that closes a socket with unread
bytes makes the kernel send a reset, and the client then reports "connection reset" instead
of our 413 or 400."""

from __future__ import annotations

import json
from typing import AsyncIterator

from starlette.requests import ClientDisconnect, Request

from app.domain.errors import PayloadTooLarge, ValidationError

DRAIN_LIMIT = 64 * 1024 * 1024


class BodyReader:
    def __init__(self, request: Request):
        self.request = request
        self.done = request.method in ("GET", "HEAD", "DELETE") and not request.headers.get("content-length")
        self.received = 0

    def declared_length(self) -> int | None:
        raw = self.request.headers.get("content-length")
        try:
            return int(raw) if raw is not None else None
        except ValueError:
            raise ValidationError("Invalid Content-Length header") from None

    async def chunks(self) -> AsyncIterator[bytes]:
        while not self.done:
            msg = await self.request.receive()
            if msg["type"] == "http.disconnect":
                self.done = True
                raise ClientDisconnect()
            body = msg.get("body", b"")
            self.received += len(body)
            if not msg.get("more_body", False):
                self.done = True
            if body:
                yield body

    async def read_json(self, limit: int):
        if (self.declared_length() or 0) > limit:
            raise PayloadTooLarge(f"The request body is larger than {limit} bytes")
        data = bytearray()
        async for chunk in self.chunks():
            data += chunk
            if len(data) > limit:
                raise PayloadTooLarge(f"The request body is larger than {limit} bytes")
        try:
            return json.loads(bytes(data))
        except (ValueError, UnicodeDecodeError):
            raise ValidationError("The request body is not valid JSON") from None

    async def drain(self, limit: int = DRAIN_LIMIT) -> None:
        """Discard the rest of the body, up to `limit` bytes (beyond that the connection closes)."""
        declared = self.declared_length() if not self.done else None
        if declared is not None and declared - self.received > limit:
            return
        drained = 0
        try:
            async for chunk in self.chunks():
                drained += len(chunk)
                if drained > limit:
                    return
        except (ClientDisconnect, ValidationError):
            return
