"""uvicorn's h11 protocol with a per-response reason phrase.

Clients such as twine print only the status line ("HTTPError: 400 Bad Request from URL"), so the
reason an error response carries in its `X-Reason-Phrase` header becomes the status line's reason
phrase (and the header itself is dropped)."""

from __future__ import annotations

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

HEADER = b"x-reason-phrase"


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


def reason_phrase(message: str, limit: int = 300) -> str:
    """A status-line-safe one-liner: printable latin-1, no CR/LF."""
    text = " ".join(message.split())
    text = "".join(c if 32 <= ord(c) < 127 else "?" for c in text)
    return text[:limit]
