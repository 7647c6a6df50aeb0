"""What every data-plane request shares: token auth, domain/repository lookup, permission
checks, and the one mapping of ArcaError to an HTTP response (per-format body style)."""

from __future__ import annotations

import base64
import binascii
import importlib
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from sqlalchemy import select
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import (FileResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response,
                                 StreamingResponse)

from app.db.models import Domain, Repository
from app.domain.errors import ArcaError, NotFound, StorageUnavailable, Unauthenticated
from app.http_protocol import reason_phrase
from app.observability import metrics
from app.observability.context import note
from app.services import authz, identity
from app.services.context import Arca, Principal

FORMAT_MODULES = {"maven": "app.formats.maven", "pypi": "app.formats.pypi", "npm": "app.formats.npm"}
WWW_AUTHENTICATE = {"WWW-Authenticate": 'Basic realm="arca"'}
_REPO_TTL = 2.0


@dataclass(frozen=True)
class RepoRef:
    """A detached, cacheable view of a domain + repository."""

    domain_id: int
    domain: str
    repository_id: int
    repository: str
    external_connection: str | None


@dataclass
class DataPlane:
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
    def base_url(self) -> str:
        """This repository's endpoint as the client reached it (same host:port, so npm sends its token)."""
        host = self.request.headers.get("host") or self.request.url.netloc
        return f"{self.request.url.scheme}://{host}/{self.repo.domain}/{self.format}/{self.repo.repository}/"

    async def require(self, action: str) -> None:
        await run_in_threadpool(check_permission, self.arca, self.principal, action, self.repo)

    def require_sync(self, s, action: str) -> None:
        d = s.get(Domain, self.repo.domain_id)
        r = s.get(Repository, self.repo.repository_id)
        authz.require(self.arca, s, self.principal, action, d, r)


def check_permission(arca: Arca, principal: Principal, action: str, ref: RepoRef) -> None:
    if principal.is_admin:
        return
    with arca.db.read() as s:
        d = s.get(Domain, ref.domain_id)
        r = s.get(Repository, ref.repository_id)
        authz.require(arca, s, principal, action, d, r)


_MISS = object()


def _cached_repo(arca: Arca, domain: str, repository: str):
    hit = arca.caches.setdefault("repos", {}).get((domain, repository))
    return hit[1] if hit and hit[0] > time.monotonic() else _MISS


def _lookup_repo(arca: Arca, domain: str, repository: str) -> RepoRef | None | bool:
    """RepoRef, or False when the domain is unknown, None when only the repository is."""
    cache = arca.caches.setdefault("repos", {})
    hit = cache.get((domain, repository))
    if hit and hit[0] > time.monotonic():
        return hit[1]
    with arca.db.read() as s:
        d = s.scalar(select(Domain).where(Domain.name == domain))
        if d is None:
            value: RepoRef | None | bool = False
        else:
            r = s.scalar(select(Repository).where(Repository.domain_id == d.id, Repository.name == repository))
            value = None if r is None else RepoRef(d.id, d.name, r.id, r.name, r.external_connection)
    cache[(domain, repository)] = (time.monotonic() + _REPO_TTL, value)
    return value


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


def authenticate_token(arca: Arca, token: str | None, domain: str) -> Principal:
    if not token:
        raise Unauthenticated("Authentication required: send Basic aws:TOKEN or Bearer TOKEN")
    claims = arca.signer.verify(token, domain=domain)
    principal = identity.principal_by_id(arca, claims.user_id)
    if principal is None:
        raise Unauthenticated("The principal of this token no longer exists")
    return principal


def blob_response(arca: Arca, sha256: str, *, media_type: str, headers: dict | None = None,
                  filename: str | None = None, size: int | None = None, method: str = "GET") -> Response:
    """Serve a stored blob: a redirect to a presigned URL (S3 with ARCA_S3_PRESIGNED_DOWNLOADS=1),
    sendfile from the disk, or a stream; never the whole body in memory. HEAD gets the headers only."""
    headers = dict(headers or {})
    if arca.settings.s3_presigned_downloads and method == "GET":
        presign = getattr(arca.blobs, "presigned_url", None)
        url = presign(sha256, filename) if presign else None
        if url:
            return RedirectResponse(url, status_code=302, headers=headers)
    path = arca.blobs.local_path(sha256)
    if path is not None and path.is_file():
        return FileResponse(path, media_type=media_type, headers=headers)
    if size is None:
        found = arca.blobs.stat(sha256) if hasattr(arca.blobs, "stat") else None
        size = found[0] if found else None
    if size is not None:
        headers["Content-Length"] = str(size)
    if method == "HEAD":
        return Response(headers=headers, media_type=media_type)
    return StreamingResponse(arca.blobs.open_chunks(sha256), media_type=media_type, headers=headers)


def error_response(fmt: str, exc: ArcaError) -> Response:
    """npm: JSON {"error": ...}; others: the reason as text. The reason also becomes the status
    line's reason phrase (app.http_protocol), which is all twine prints without --verbose."""
    headers = dict(WWW_AUTHENTICATE) if exc.status == 401 else {}
    headers["X-Reason-Phrase"] = reason_phrase(exc.message)
    if fmt == "npm":
        return JSONResponse({"error": exc.message}, status_code=exc.status, headers=headers)
    return PlainTextResponse(exc.message + "\n", status_code=exc.status, headers=headers)


async def data_plane(request: Request) -> Response:
    arca: Arca = request.app.state.arca
    raw = (request.scope.get("raw_path") or request.url.path.encode()).decode("latin-1").split("?", 1)[0]
    parts = raw.split("/", 4)  # ['', domain, format, repository, rest]
    domain, fmt, repository = (unquote(p) for p in parts[1:4])
    rest = parts[4] if len(parts) > 4 else ""
    try:
        ref = _cached_repo(arca, domain, repository)
        if ref is _MISS:  # only a cache miss pays a thread hop for the database
            ref = await run_in_threadpool(_lookup_repo, arca, domain, repository)
        if ref is False:
            raise NotFound(f"Domain {domain} does not exist")
        token = credentials(request)
        claims = arca.signer.verify(token, domain=domain) if token else None
        principal = identity.cached_principal(arca, claims.user_id) if claims else None
        if principal is None:
            principal = await run_in_threadpool(authenticate_token, arca, token, domain)
        note(principal=principal.arn)
        if ref is None:
            raise NotFound(f"Repository {repository} does not exist in domain {domain}")
        if fmt not in FORMAT_MODULES:
            raise NotFound(f"Unknown format {fmt!r}: use maven, pypi or npm")
        dp = DataPlane(request, arca, principal, ref, fmt, rest)
        try:
            module = importlib.import_module(FORMAT_MODULES[fmt])
        except ModuleNotFoundError:
            module = None
        if rest == "" and request.method in ("GET", "HEAD") and not getattr(module, "HANDLES_ROOT", False):
            await dp.require(authz.READ)
            return JSONResponse({"domain": ref.domain, "repository": ref.repository, "format": fmt,
                                 "principal": principal.arn})
        if module is None:
            raise NotFound(f"The {fmt} format is not available on this server")
        return await module.handle(dp)
    except ArcaError as exc:
        if isinstance(exc, StorageUnavailable):
            metrics.BLOB_ERRORS.labels(arca.settings.blob_store.split(":", 1)[0]).inc()
        response = error_response(fmt, exc)
        if request.method not in ("GET", "HEAD", "OPTIONS"):
            # The body may be unread (Expect: 100-continue clients never send it after a final
            # status): close, or uvicorn parses the next request as that body and it hangs.
            response.headers["Connection"] = "close"
        return response


