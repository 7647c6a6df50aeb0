"""What every data-plane request shares: token authentication, the repository lookup, dispatch to
the format, conditional GETs, bounded body reads, serving blobs, and the one mapping of ArcaError
to an HTTP response (npm answers errors as JSON, the others as text)."""

from __future__ import annotations

import base64
import binascii
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, AsyncIterator, Callable
from urllib.parse import unquote

from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import FileResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response, \
    StreamingResponse

from app.domain.errors import ArcaError, NotFound, PayloadTooLarge, StorageUnavailable, Unauthenticated, \
    ValidationError
from app.domain.status import PUBLISHED
from app.domain.views import FileRow
from app.formats.base import Format
from app.http_protocol import reason_phrase
from app.observability import metrics
from app.observability.context import note
from app.services import identity, resolve
from app.services.caches import MISS
from app.services.context import Arca, Principal, RepoRef

WWW_AUTHENTICATE = {"WWW-Authenticate": 'Basic realm="arca"'}
# Whatever a repository serves (a POM that is XHTML with a script, a README, an error page), a
# browser must neither sniff it into something it renders nor run anything in it on this origin.
INERT = {"X-Content-Type-Options": "nosniff", "Content-Security-Policy": "sandbox"}
_INERT_RAW = [(k.lower().encode(), v.encode()) for k, v in INERT.items()]
_INERT_NAMES = {k for k, _ in _INERT_RAW}
DRAIN_LIMIT = 64 * 1024 * 1024


@dataclass
class DataPlane:
    """One data-plane request: who asks, which repository, the path below it."""

    request: Request
    arca: Arca
    principal: Principal
    repo: RepoRef
    format: str
    raw_rest: str  # path after /{domain}/{format}/{repository}/, still percent-encoded
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def rest(self) -> str:
        return unquote(self.raw_rest)

    @property
    def method(self) -> str:
        return self.request.method

    @property
    def base_url(self) -> str:
        """This repository's endpoint as the client reached it (same host:port, so npm sends its token)."""
        host = self.request.headers.get("host") or self.request.url.netloc
        return f"{self.request.url.scheme}://{host}/{self.repo.domain}/{self.format}/{self.repo.repository}/"

    async def run(self, fn: Callable, *args, **kwargs):
        """Call a (blocking) service function in a worker thread."""
        return await run_in_threadpool(fn, *args, **kwargs)


# ---- authentication ----------------------------------------------------------------------------

def credentials(request: Request) -> str | None:
    """The token from `Basic aws:TOKEN` or `Bearer TOKEN`."""
    header = request.headers.get("authorization")
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    scheme = scheme.lower()
    if scheme == "bearer":
        return value.strip() or None
    if scheme == "basic":
        try:
            user, _, token = base64.b64decode(value.strip(), validate=True).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            raise Unauthenticated("Malformed Basic credentials") from None
        if user != "aws":
            raise Unauthenticated("The user name must be 'aws' and the password an authorization token")
        return token or None
    raise Unauthenticated(f"Unsupported authorization scheme {scheme!r}; use Basic aws:TOKEN or Bearer TOKEN")


async def _principal(arca: Arca, request: Request, domain: str) -> Principal:
    token = credentials(request)
    if not token:
        raise Unauthenticated("Authentication required: send Basic aws:TOKEN or Bearer TOKEN")
    claims = arca.signer.verify(token, domain=domain)
    # Whether the token still lives (its key active, its user there, not revoked since) comes from
    # the per-process caches; only a cache miss pays a thread hop for the database.
    principal = identity.token_principal(arca, claims, cached_only=True)
    if principal is MISS:
        principal = await run_in_threadpool(identity.token_principal, arca, claims)
    return principal


# ---- conditional requests and bodies ------------------------------------------------------------

def not_modified(request: Request, etag: str) -> bool:
    """If-None-Match matches `etag` (weak comparison, RFC 9110 13.1.2)."""
    header = request.headers.get("if-none-match")
    if not header:
        return False
    tags = {t.strip().removeprefix("W/") for t in header.split(",")}
    return "*" in tags or etag.removeprefix("W/") in tags


def wants_gzip(request: Request) -> bool:
    for item in request.headers.get("accept-encoding", "").split(","):
        coding, _, params = item.strip().partition(";")
        if coding.strip().lower() == "gzip" and params.replace(" ", "").lower() not in ("q=0", "q=0.0"):
            return True
    return False


def check_length(request: Request, limit: int, what: str) -> None:
    """PayloadTooLarge at once when the declared Content-Length is over `limit`."""
    declared = request.headers.get("content-length")
    if declared is None:
        return
    if not declared.isdigit():
        raise ValidationError("Invalid Content-Length header")
    if int(declared) > limit:
        raise PayloadTooLarge(f"{what} is larger than {limit} bytes")


class BodyReader:
    """A request body in bounded chunks, straight from the ASGI receive channel.

    Starlette's `request.stream()` cannot be resumed once left, but a refused request should still
    be read to its end (within reason) before we answer: a server that closes a socket with unread
    bytes makes the kernel send a reset, and the client then reports "connection reset" instead
    of our 413 or 400."""

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

    async def read(self, limit: int, what: str = "The request body") -> bytes:
        """The whole body, refused with 413 past `limit` bytes (declared or received)."""
        if (self.declared_length() or 0) > limit:
            raise PayloadTooLarge(f"{what} is larger than {limit} bytes")
        data = bytearray()
        async for chunk in self.chunks():
            data += chunk
            if len(data) > limit:
                raise PayloadTooLarge(f"{what} is larger than {limit} bytes")
        return bytes(data)

    async def read_json(self, limit: int):
        data = await self.read(limit)
        try:
            return json.loads(data)
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


# ---- serving files ------------------------------------------------------------------------------

# A file this small is read in the lookup's thread hop and answered from its bytes (kept with the
# answer in the response cache, within its byte bound): cheaper than a sendfile or a stream.
SMALL_FILE = 256 * 1024
IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"


@dataclass(frozen=True)
class Located:
    """Where a file's bytes are, found in the worker thread that looked the file up (so serving it
    costs no further thread hop): a local path and its stat, a presigned URL, or the bytes of a
    small remote blob."""

    sha256: str
    size: int | None
    published: bool
    path: Path | None = None
    stat: os.stat_result | None = None
    redirect: str | None = None
    body: bytes | None = None
    version_id: int | None = None  # whose download time a repeat answered from memory notes


def locate(dp: DataPlane, row: FileRow, *, sha256: str | None = None, size: int | None = None,
           filename: str | None = None) -> Located:
    """Blocking (a stat, maybe an S3 HEAD or a small read): call it from the lookup's thread.
    `sha256`/`size` name another blob of the file (PyPI's core metadata)."""
    arca = dp.arca
    sha256, size = sha256 or row.sha256, row.size if size is None else size
    published = row.status == PUBLISHED
    if arca.settings.s3_presigned_downloads and dp.method == "GET":
        url = arca.blobs.presigned_url(sha256, filename)
        if url:
            return Located(sha256, size, published, redirect=url, version_id=row.version_id)
    path = arca.blobs.local_path(sha256)
    if path is not None:
        try:
            stat = os.stat(path)
        except FileNotFoundError:
            pass
        else:
            size = stat.st_size
            if not _small(dp, size) or arca.settings.accel_redirect:  # sendfile, or the proxy sends it
                return Located(sha256, size, published, path=path, stat=stat, version_id=row.version_id)
    if size is None:
        found = arca.blobs.stat(sha256)
        size = found.size if found else None
    if _small(dp, size):  # the bytes themselves: their length is the answer's Content-Length
        body = arca.blobs.read_bytes(sha256)
        return Located(sha256, len(body), published, body=body, version_id=row.version_id)
    return Located(sha256, size, published, version_id=row.version_id)


def _small(dp: DataPlane, size: int | None) -> bool:
    return size is not None and size <= SMALL_FILE and dp.method == "GET"


def send_file(dp: DataPlane, loc: Located, *, media_type: str, mutable: bool = False,
              headers: dict | None = None) -> Response:
    """The one download response of every format, on the event loop (kept for the response cache
    unless it is a presigned URL, which expires): ETag and 304, caching (a
    Published file that can never change may be cached by anyone for a year; anything else is
    revalidated), then a redirect to the store, X-Accel-Redirect to a proxy in front
    (ARCA_ACCEL_REDIRECT), zero-copy sendfile from the disk (HEAD and Range by FileResponse), or
    a stream. Never the whole of a large body in memory."""
    if loc.redirect is None:
        dp.extra["file"] = _FileAnswer(loc, media_type, mutable, headers)
    return _send_file(dp, loc, media_type, mutable, headers)


def _send_file(dp: DataPlane, loc: Located, media_type: str, mutable: bool, headers: dict | None) -> Response:
    etag = f'"{loc.sha256}"'
    headers = {**(headers or {}), "ETag": etag,
               "Cache-Control": IMMUTABLE if loc.published and not mutable else REVALIDATE}
    if not_modified(dp.request, etag):
        return Response(status_code=304, headers=headers)
    if loc.redirect is not None:
        return RedirectResponse(loc.redirect, status_code=302, headers=headers)
    if loc.path is not None:
        accel = dp.arca.settings.accel_redirect
        if accel:  # the proxy sends the file (HEAD and Range too); we only said who may have it
            headers["X-Accel-Redirect"] = accel + dp.arca.blobs.local_name(loc.sha256)
            return Response(headers=headers, media_type=media_type)
        return FileResponse(loc.path, media_type=media_type, headers=headers, stat_result=loc.stat)
    if loc.size is not None:
        headers["Content-Length"] = str(loc.size)
    headers["Accept-Ranges"] = "bytes"
    span = byte_range(dp.request.headers.get("range"), loc.size) if loc.size is not None else None
    if span == "unsatisfiable":
        return Response(status_code=416, headers={"Content-Range": f"bytes */{loc.size}"})
    status = 200
    if span is not None:
        start, end = span
        status, headers["Content-Length"] = 206, str(end - start)
        headers["Content-Range"] = f"bytes {start}-{end - 1}/{loc.size}"
    if dp.method == "HEAD":
        return Response(status_code=status, headers=headers, media_type=media_type)
    if loc.body is not None:
        body = loc.body if span is None else loc.body[span[0]:span[1]]
        return Response(body, status_code=status, media_type=media_type, headers=headers)
    chunks = dp.arca.blobs.open_chunks(loc.sha256, *(span or (0, None)))
    return StreamingResponse(chunks, status_code=status, media_type=media_type, headers=headers)


# ---- the response cache ---------------------------------------------------------------------------

VARYING = ("host", "accept", "accept-encoding")  # request headers a data-plane answer depends on
KEPT = (Response, JSONResponse, PlainTextResponse)  # responses whose whole body is at hand
CONDITIONAL = (b"etag", b"cache-control", b"vary")  # what a 304 repeats


@dataclass(frozen=True)
class _FileAnswer:
    loc: Located
    media_type: str
    mutable: bool
    headers: dict | None

    @property
    def size(self) -> int:
        return 512 + len(self.loc.body or b"")

    def replay(self, dp: DataPlane) -> Response:
        dp.arca.downloads.note(self.loc.version_id)  # a download still counts for the cleanup rules
        return _send_file(dp, self.loc, self.media_type, self.mutable, self.headers)


@dataclass(frozen=True)
class _DocumentAnswer:
    status: int
    body: bytes
    raw_headers: tuple
    etag: str | None

    @property
    def size(self) -> int:
        return 512 + len(self.body)

    def replay(self, dp: DataPlane) -> Response:
        if self.etag is not None and not_modified(dp.request, self.etag):
            return Response(status_code=304,
                            headers={k.decode(): v.decode() for k, v in self.raw_headers if k in CONDITIONAL})
        response = Response(self.body, status_code=self.status)
        response.raw_headers = list(self.raw_headers)
        return response


def _answer_key(request: Request, principal: Principal, ref: RepoRef, fmt: str, rest: str):
    """What a GET's answer depends on besides the database: who asks, where, and how."""
    if request.method not in ("GET", "HEAD") or (fmt == "npm" and rest.startswith("-/")):
        return None
    headers = request.headers
    scope = request.scope
    return (principal.user_id, ref.repository_id, fmt, request.method, scope["scheme"], rest,
            scope["query_string"], *(headers.get(h) for h in VARYING))


async def _kept(dp: DataPlane, response: Response):
    """The answer to keep for later requests, or None. Only a repository that reads through nothing
    is answered from memory: a remote may change without a commit here."""
    if response.status_code not in (200, 206, 304) or await reads_through(dp):
        return None
    found = dp.extra.get("file")
    if found is not None:
        return found
    if type(response) in KEPT and response.status_code == 200:
        etag = response.headers.get("etag")
        return _DocumentAnswer(200, bytes(response.body), tuple(response.raw_headers), etag)
    return None


def byte_range(header: str | None, size: int):
    """(start, end) of a single `Range: bytes=...` (RFC 9110 14.1.2), "unsatisfiable", or None to
    send the whole file (no header, several ranges, or one this server does not understand)."""
    if not header or "," in header:
        return None
    unit, _, spec = header.partition("=")
    first, sep, last = spec.strip().partition("-")
    if unit.strip().lower() != "bytes" or not sep or not (first + last).isdigit() or not (first or last):
        return None
    if not first:  # the last N bytes
        start, end = max(size - int(last), 0), size
    else:
        if last and int(last) < int(first):
            return None  # not a valid range: ignored
        start, end = int(first), min(int(last) + 1, size) if last else size
    if start >= size or start >= end:
        return "unsatisfiable"
    return start, end


# ---- errors ------------------------------------------------------------------------------------

def error_response(fmt: str, exc: ArcaError) -> Response:
    """npm: JSON {"error": ...}; others: the reason as text. The reason also becomes the status
    line's reason phrase (app.http_protocol), which is all twine prints without --verbose."""
    headers = dict(WWW_AUTHENTICATE) if exc.status == 401 else {}
    if exc.retry_after:
        headers["Retry-After"] = str(exc.retry_after)
    headers["X-Reason-Phrase"] = reason_phrase(exc.message)
    if fmt == "npm":
        return JSONResponse({"error": exc.message}, status_code=exc.status, headers=headers)
    return PlainTextResponse(exc.message + "\n", status_code=exc.status, headers=headers)


# ---- dispatch ------------------------------------------------------------------------------------

def data_plane(formats: dict[str, Format]):
    """The endpoint for /{domain}/{format}/{repository}/..., dispatching to `formats`."""

    async def endpoint(request: Request) -> Response:
        response = await _dispatch(request)
        # Raw, replacing any a handler set: no Headers object built per answer.
        response.raw_headers = [*(h for h in response.raw_headers if h[0] not in _INERT_NAMES), *_INERT_RAW]
        return response

    async def _dispatch(request: Request) -> Response:
        arca: Arca = request.app.state.arca
        raw = (request.scope.get("raw_path") or request.url.path.encode()).decode("latin-1").split("?", 1)[0]
        parts = raw.split("/", 4)  # ['', domain, format, repository, rest]
        domain, fmt, repository = (unquote(p) for p in parts[1:4])
        rest = parts[4] if len(parts) > 4 else ""
        try:
            # Credentials first: before they are checked nothing tells whether the domain or
            # the repository exists (a token is only ever valid for its own domain).
            principal = await _principal(arca, request, domain)
            note(principal=principal.arn)
            ref = resolve.cached_repository(arca, domain, repository)
            if ref is MISS:  # only a cache miss pays a thread hop for the database
                ref = await run_in_threadpool(resolve.lookup_repository, arca, domain, repository)
            if ref is False:
                raise NotFound(f"Domain {domain} does not exist")
            if ref is None:
                raise NotFound(f"Repository {repository} does not exist in domain {domain}")
            handler = formats.get(fmt)
            if handler is None:
                raise NotFound(f"Unknown format {fmt!r}: use {', '.join(sorted(formats))}")
            dp = DataPlane(request, arca, principal, ref, fmt, rest)
            if rest == "" and request.method in ("GET", "HEAD") and not handler.handles_root:
                await run_in_threadpool(resolve.check_permission, arca, principal, resolve.READ, ref)
                return JSONResponse({"domain": ref.domain, "repository": ref.repository, "format": fmt,
                                     "principal": principal.arn})
            key = _answer_key(request, principal, ref, fmt, rest)
            token = None if key is None else resolve.change_token(arca)
            if token is not None:  # nothing committed since this answer was made: no database access
                hit = arca.caches.responses.get(key, token)
                if hit is not MISS:
                    metrics.ANSWERS_FROM_MEMORY.labels(fmt).inc()
                    return hit.replay(dp)
            response = await handler.handle(dp)
            if token is not None:
                kept = await _kept(dp, response)
                if kept is not None:
                    arca.caches.responses.put(key, kept, token)
            return response
        except ArcaError as exc:
            if isinstance(exc, StorageUnavailable):
                metrics.BLOB_ERRORS.labels(arca.settings.blob_store.split(":", 1)[0]).inc()
            response = error_response(fmt, exc)
            if request.method not in ("GET", "HEAD", "OPTIONS"):
                # The body may be unread (Expect: 100-continue clients such as Maven never send it
                # after a final status): close, or uvicorn parses the next request as that body and
                # it hangs.
                response.headers["Connection"] = "close"
            return response

    return endpoint


async def reads_through(dp: DataPlane) -> bool:
    """Does the repository read through upstreams or an external connection? (Answered from the
    cached graph on the event loop when it can be.)"""
    value = resolve.cached_reads_through(dp.arca, dp.repo)
    if value is None:
        value = await run_in_threadpool(resolve.reads_through, dp.arca, dp.repo)
    return value
