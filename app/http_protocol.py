"""uvicorn's h11 protocol with a per-response reason phrase and request-reading timeouts.

- Clients such as twine print only the status line ("HTTPError: 400 Bad Request from URL"), so the
  reason an error response carries in its `X-Reason-Phrase` header becomes the status line's
  reason phrase (and the header itself is dropped).
- A client that stops sending is dropped: the request's headers must be complete within
  ARCA_REQUEST_HEADER_TIMEOUT seconds of the connection (or of the request's first byte), and a
  body may pause for at most ARCA_REQUEST_BODY_TIMEOUT seconds between chunks (time the server
  itself holds off reading, or a client waits for its 100 Continue, does not count). Stalled
  connections then cost nothing but their socket: others are answered meanwhile."""

from __future__ import annotations

import asyncio
import logging

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from app.config import get_settings

HEADER = b"x-reason-phrase"
log = logging.getLogger("arca.http")


class _ReasonConnection(h11.Connection):
    def send(self, event):
        if type(event) is h11.Response:
            reason = next((v for n, v in event.headers if n.lower() == HEADER), None)
            if reason is not None:
                headers = [(n, v) for n, v in event.headers if n.lower() != HEADER]
                event = h11.Response(status_code=event.status_code, headers=headers, reason=reason,
                                     http_version=event.http_version)
        return super().send(event)


class ReasonPhraseH11Protocol(H11Protocol):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.conn.__class__ = _ReasonConnection
        settings = get_settings()
        self.header_timeout = settings.request_header_timeout
        self.body_timeout = settings.request_body_timeout
        self._header_timer: asyncio.TimerHandle | None = None
        self._body_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._header_timer = self.loop.call_later(self.header_timeout, self._stalled, "headers")

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._watch()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._watch()

    def connection_lost(self, exc) -> None:
        self._cancel()
        super().connection_lost(exc)

    def _watch(self) -> None:
        """Arm the timer that fits where the request stands."""
        state = self.conn.their_state
        if state is h11.IDLE and self.conn.our_state is h11.IDLE:
            # between requests (uvicorn's keep-alive timer) or within one's headers: a deadline
            # from the first byte that is not pushed back by more bytes (a trickle is a stall)
            if self._header_timer is None and self.conn.trailing_data[0]:
                self._header_timer = self.loop.call_later(self.header_timeout, self._stalled, "headers")
            self._cancel_body()
        elif state is h11.SEND_BODY:
            self._cancel_headers()
            self._cancel_body()
            self._body_timer = self.loop.call_later(self.body_timeout, self._stalled, "body")
        else:
            self._cancel()

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

    def _cancel(self) -> None:
        self._cancel_headers()
        self._cancel_body()


def reason_phrase(message: str, limit: int = 300) -> str:
    """A status-line-safe one-liner: printable latin-1, no CR/LF."""
    text = " ".join(message.split())
    text = "".join(c if 32 <= ord(c) < 127 else "?" for c in text)
    return text[:limit].rstrip()  # cut at a space, it would end in one: h11 refuses that header value
