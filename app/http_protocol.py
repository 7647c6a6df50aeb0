"""uvicorn's httptools protocol with a per-response reason phrase and request-reading timeouts.

- Clients such as twine print only the status line ("HTTPError: 400 Bad Request from URL"), so the
  reason an error response carries in its `X-Reason-Phrase` header becomes the status line's
  reason phrase (and the header itself is dropped).
- Files go out zero-copy: the protocol offers ASGI's `http.response.pathsend` extension, which
  Starlette's FileResponse (the disk store's downloads) then uses instead of reading the file
  through Python in chunks, and the kernel copies it to the socket with sendfile(2).
- A client that stops sending is dropped: the request's headers must be complete within
  ARCA_REQUEST_HEADER_TIMEOUT seconds of the connection (or of the request's first byte), and a
  body may pause for at most ARCA_REQUEST_BODY_TIMEOUT seconds between chunks (time the server
  itself holds off reading, or a client waits for its 100 Continue, does not count). Stalled
  connections then cost nothing but their socket: others are answered meanwhile.

httptools (llhttp, in C) parses requests several times faster than h11 in pure Python, which is
most of what a small GET costs the server; uvicorn runs it on uvloop when that is installed."""

from __future__ import annotations

import asyncio
import logging
import os

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol, RequestResponseCycle

from app.config import get_settings

HEADER = b"x-reason-phrase"
log = logging.getLogger("arca.http")


class _StatusLine:
    """The transport as one response's head is written: its first line gets the reason phrase."""

    def __init__(self, transport: asyncio.Transport, status: int, reason: bytes):
        self.transport, self.status, self.reason = transport, status, reason

    def write(self, data: bytes) -> None:
        standard = STATUS_LINE[self.status]
        if data.startswith(standard):
            data = b"HTTP/1.1 %d %s\r\n" % (self.status, self.reason) + data[len(standard):]
        self.transport.write(data)

    def __getattr__(self, name: str):
        return getattr(self.transport, name)


class _Cycle(RequestResponseCycle):
    async def send(self, message) -> None:
        if message["type"] == "http.response.pathsend":
            return await self._send_path(message["path"])
        if message["type"] != "http.response.start" or self.response_started:
            return await super().send(message)
        headers = list(message.get("headers", ()))
        reason = next((v for n, v in headers if n.lower() == HEADER), None)
        if reason is None:
            return await super().send(message)
        message = {**message, "headers": [(n, v) for n, v in headers if n.lower() != HEADER]}
        transport = self.transport
        self.transport = _StatusLine(transport, message["status"], reason)  # type: ignore[assignment]
        try:
            await super().send(message)
        finally:
            self.transport = transport

    async def _send_path(self, path: str) -> None:
        """The body is the file at `path` (its Content-Length already sent): sendfile(2) from the
        page cache to the socket, waiting for the socket on the event loop (never in a thread, so a
        client that reads slowly holds nothing but its connection)."""
        if not self.response_started or self.response_complete:
            raise RuntimeError("http.response.pathsend needs a started, unfinished response")
        sock = self.transport.get_extra_info("socket")
        with open(path, "rb") as fh:
            if self.disconnected:
                return
            if sock is None or self.chunked_encoding:  # not a plain TCP socket: through the transport
                while chunk := fh.read(1024 * 1024):
                    await super().send({"type": "http.response.body", "body": chunk, "more_body": True})
                return await super().send({"type": "http.response.body", "body": b"", "more_body": False})
            # uvloop refuses to watch a transport's own descriptor: watch a duplicate of it, once the
            # transport has nothing of its own left to write (the head of this response).
            fd = os.dup(sock.fileno())
            try:
                while self.transport.get_write_buffer_size() and not self.transport.is_closing():
                    await _writable(fd)
                    await asyncio.sleep(0)
                sent = await _sendfile(fd, fh.fileno(), self.expected_content_length)
            finally:
                os.close(fd)
        if sent is None or sent != self.expected_content_length:
            # the client went away, or the file was shorter than announced: end the connection
            self.disconnected = True
            self.transport.close()
            self.response_complete = True
            self.message_event.set()
            return
        self.expected_content_length = 0
        await super().send({"type": "http.response.body", "body": b"", "more_body": False})


async def _writable(fd: int) -> None:
    loop = asyncio.get_running_loop()
    ready = loop.create_future()
    loop.add_writer(fd, lambda: ready.done() or ready.set_result(None))
    try:
        await ready
    finally:
        loop.remove_writer(fd)


async def _sendfile(sock_fd: int, file_fd: int, count: int) -> int | None:
    """Bytes of the file sent to the (non-blocking) socket, up to `count`; None when the peer is gone."""
    offset = 0
    while offset < count:
        try:
            n = os.sendfile(sock_fd, file_fd, offset, count - offset)
        except BlockingIOError:
            await _writable(sock_fd)
            continue
        except OSError:
            return None
        if n == 0:
            break
        offset += n
    return offset


class ReasonPhraseProtocol(HttpToolsProtocol):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        settings = get_settings()
        self.header_timeout = settings.request_header_timeout
        self.body_timeout = settings.request_body_timeout
        self._header_timer: asyncio.TimerHandle | None = None
        self._body_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._header_timer = self.loop.call_later(self.header_timeout, self._stalled, "headers")

    def connection_lost(self, exc) -> None:
        self._cancel_headers()
        self._cancel_body()
        super().connection_lost(exc)

    # Parser callbacks: a deadline for the headers from the request's first byte (not pushed back
    # by more bytes: a trickle is a stall), then one for each pause in the body.
    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.scope["extensions"] = {"http.response.pathsend": {}}
        if self._header_timer is None:
            self._header_timer = self.loop.call_later(self.header_timeout, self._stalled, "headers")

    def on_headers_complete(self) -> None:
        self._cancel_headers()
        super().on_headers_complete()
        if self.cycle is not None and type(self.cycle) is RequestResponseCycle:
            self.cycle.__class__ = _Cycle  # its task has not run yet: every send goes through ours
        self._arm_body()

    def on_body(self, body: bytes) -> None:
        super().on_body(body)
        self._arm_body()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._cancel_body()

    def _arm_body(self) -> None:
        self._cancel_body()
        self._body_timer = self.loop.call_later(self.body_timeout, self._stalled, "body")

    def _stalled(self, what: str) -> None:
        if what == "headers":
            self._header_timer = None
        else:
            self._body_timer = None
            cycle = self.cycle
            if self.flow.read_paused or (cycle is not None and cycle.waiting_for_100_continue):
                # the wait is ours, not the client's: look again later
                self._body_timer = self.loop.call_later(self.body_timeout, self._stalled, "body")
                return
        if not self.transport.is_closing():
            log.info("dropping %s: no complete request %s within the timeout", self.client, what)
            self.transport.close()

    def _cancel_headers(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _cancel_body(self) -> None:
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None


def reason_phrase(message: str, limit: int = 300) -> str:
    """A status-line-safe one-liner: printable latin-1, no CR/LF."""
    text = " ".join(message.split())
    text = "".join(c if 32 <= ord(c) < 127 else "?" for c in text)
    return text[:limit].rstrip()  # cut at a space, it would end in one: h11 refuses that header value
