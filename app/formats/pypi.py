"""PyPI repositories: twine's legacy upload, the simple index (PEP 503/691/658/700/714), downloads.

URLs under `/{domain}/pypi/{repository}/`:
  POST  ``                               twine upload (also `legacy/`)
  GET   `simple/`                        all projects with a Published version
  GET   `simple/{project}/`              the project page (HTML or JSON by Accept)
  GET   `simple/{project}/{file}`        a distribution file (Published or Unlisted versions)
  GET   `simple/{project}/{file}.metadata`  its core metadata (PEP 658)
Links in the pages are relative, so a page is the same whatever host name the client used."""

from __future__ import annotations

import gzip
import hashlib
from urllib.parse import unquote

from sqlalchemy import select
from starlette.concurrency import run_in_threadpool
from starlette.responses import PlainTextResponse, RedirectResponse, Response

from app.db.models import Asset, Blob, Package, PackageVersion
from app.domain.errors import NotFound
from app.domain.pep503 import normalize
from app.formats import pypi_simple as simple
from app.formats import pypi_upload
from app.formats.http import blob_response
from app.services import authz
from app.services import packages as pk
from app.upstream import pypi as upstream
from app.upstream.chain import active as upstream_active

HANDLES_ROOT = False
READ_METHODS = ("GET", "HEAD")
VARY = "Accept, Accept-Encoding"
INDEX_CACHE_CONTROL = "private, max-age=0, must-revalidate"


async def handle(dp) -> Response:
    # Errors are rendered by app.formats.http (with the reason in the status line, for twine).
    return await _route(dp)


async def _route(dp) -> Response:
    parts = [unquote(p) for p in dp.raw_rest.split("/")]
    method = dp.request.method
    if parts in ([""], ["legacy"], ["legacy", ""]):
        if method != "POST":
            return _not_allowed("POST")
        status, message = await pypi_upload.upload(dp)
        return PlainTextResponse(message, status_code=status)
    if parts[0] != "simple":
        raise NotFound(f"No such PyPI resource {dp.rest!r}: the index is at simple/, uploads go to the "
                       "repository URL")
    if method not in READ_METHODS:
        return _not_allowed("GET, HEAD")
    if len(parts) == 1:
        return _redirect(dp, "simple/")
    if len(parts) == 2 and parts[1] == "":
        return await root_index(dp)
    project = parts[1]
    if len(parts) == 2:
        return _redirect(dp, f"simple/{normalize(project)}/")
    if len(parts) == 3 and parts[2] == "":
        if project != normalize(project):
            return _redirect(dp, f"simple/{normalize(project)}/")
        return await project_index(dp, project)
    if len(parts) == 3:
        return await download(dp, normalize(project), parts[2])
    raise NotFound(f"No such PyPI resource {dp.rest!r}")


def _not_allowed(allow: str) -> Response:
    return PlainTextResponse(f"Method not allowed here; use {allow}\n", status_code=405, headers={"Allow": allow})


def _redirect(dp, rest: str) -> Response:
    query = dp.request.url.query
    location = f"/{dp.repo.domain}/pypi/{dp.repo.repository}/{rest}" + (f"?{query}" if query else "")
    return RedirectResponse(location, status_code=301)


def _check_read(dp, s) -> None:
    if not dp.principal.is_admin:
        dp.require_sync(s, authz.READ)


# ---- index pages -------------------------------------------------------------------------------

def _wants_gzip(dp) -> bool:
    for item in dp.request.headers.get("accept-encoding", "").split(","):
        coding, _, params = item.strip().partition(";")
        if coding.strip().lower() == "gzip" and params.replace(" ", "").lower() not in ("q=0", "q=0.0"):
            return True
    return False


def _not_modified(dp, etag: str) -> bool:
    header = dp.request.headers.get("if-none-match")
    if not header:
        return False
    tags = {t.strip().removeprefix("W/") for t in header.split(",")}
    return "*" in tags or etag in tags


def _page_response(dp, media: str, body: bytes | None, etag: str, gz: bool) -> Response:
    headers = {"ETag": etag, "Vary": VARY, "Cache-Control": INDEX_CACHE_CONTROL}
    if _not_modified(dp, etag):
        return Response(status_code=304, headers=headers)
    if gz:
        headers["Content-Encoding"] = "gzip"
    return Response(body, media_type=simple.content_type(media), headers=headers)


def _media(dp) -> str:
    return simple.negotiate(dp.request.headers.get("accept"), dp.request.query_params.get("format"))


async def project_index(dp, project: str) -> Response:
    media = _media(dp)
    gz = _wants_gzip(dp)
    if await upstream_active(dp):
        return await _merged_index(dp, project, media, gz)
    cache = simple.page_cache(dp.arca)

    def load():
        with dp.arca.db.read() as s:
            _check_read(dp, s)
            row = s.execute(select(Package.id, Package.revision, Package.updated_at).where(
                Package.repository_id == dp.repo.repository_id, Package.format == "pypi",
                Package.namespace == "", Package.name == project)).first()
            if row is None:
                raise NotFound(f"No project {project!r} in repository {dp.repo.repository}")
            pid, revision, updated = row
            variants = cache.variants(pid, revision)
            if variants is None:
                rows = simple.project_rows(s, pid)

                def render(m: str, rows=rows) -> bytes:
                    if m == simple.JSON_V1:
                        return simple.render_project_json(project, rows)
                    return simple.render_project_html(project, rows)

                variants = cache.store(pid, revision, {"render": render, "empty": not rows})
        if variants["empty"]:
            raise NotFound(f"Project {project!r} has no published versions in repository {dp.repo.repository}")
        etag = simple.etag_of(pid, revision, updated, media, gz)
        body = None if _not_modified(dp, etag) else simple.body_for(variants, media, gz)
        return etag, body

    etag, body = await run_in_threadpool(load)
    return _page_response(dp, media, body, etag, gz)


async def _merged_index(dp, project: str, media: str, gz: bool) -> Response:
    """The page of a repository with upstreams or an external connection: own, upstream and remote
    versions merged (first hit per version wins); the ETag is the hash of the body."""
    rows = await upstream.merged_rows(dp, project)
    plain = simple.render_project_json(project, rows) if media == simple.JSON_V1 else \
        simple.render_project_html(project, rows)
    gz = gz and len(plain) >= simple.GZIP_MIN
    etag = simple.etag_of(hashlib.sha256(plain).hexdigest(), media, gz)
    body = gzip.compress(plain, mtime=0) if gz else plain
    return _page_response(dp, media, body, etag, gz)


async def root_index(dp) -> Response:
    media = _media(dp)
    gz = _wants_gzip(dp)

    def load():
        with dp.arca.db.read() as s:
            _check_read(dp, s)
            names = simple.project_names(s, dp.repo.repository_id)
        plain = simple.render_root_json(names) if media == simple.JSON_V1 else simple.render_root_html(names)
        etag = simple.etag_of(hashlib.sha256(plain).hexdigest(), media, gz)
        body = gzip.compress(plain, mtime=0) if gz and len(plain) >= simple.GZIP_MIN else plain
        return etag, body, gz and len(plain) >= simple.GZIP_MIN

    etag, body, gz = await run_in_threadpool(load)
    return _page_response(dp, media, body, etag, gz)


# ---- files -------------------------------------------------------------------------------------

async def download(dp, project: str, filename: str) -> Response:
    metadata = filename.endswith(".metadata")
    asset_name = filename[: -len(".metadata")] if metadata else filename

    def load():
        with dp.arca.db.read() as s:
            _check_read(dp, s)
            return s.execute(
                select(Blob.sha256, Blob.size, Asset.attributes, PackageVersion.status)
                .join(Asset, Asset.blob_id == Blob.id)
                .join(PackageVersion, PackageVersion.id == Asset.package_version_id)
                .join(Package, Package.id == PackageVersion.package_id)
                .where(Package.repository_id == dp.repo.repository_id, Package.format == "pypi",
                       Package.namespace == "", Package.name == project, Asset.name == asset_name)).first()

    row = await run_in_threadpool(load)
    if row is None or row.status not in pk.DOWNLOADABLE:
        if not await upstream_active(dp):
            raise NotFound(f"No file {filename!r} for project {project!r} in repository {dp.repo.repository}")
        sha256, attributes = await upstream.locate(dp, project, asset_name, metadata)
        if metadata:
            sha256 = attributes.get("metadata_sha256")
            if not sha256:
                raise NotFound(f"No core metadata is recorded for {asset_name}")
        return await _send_blob(dp, sha256, "application/octet-stream", filename)
    if metadata:
        sha256 = (row.attributes or {}).get("metadata_sha256")
        if not sha256:
            raise NotFound(f"No core metadata is recorded for {asset_name}")
        return await _send_blob(dp, sha256, "application/octet-stream", filename)
    return await _send_blob(dp, row.sha256, "application/octet-stream", filename, row.size)


async def _send_blob(dp, sha256: str, media_type: str, filename: str, size: int | None = None) -> Response:
    headers = {"ETag": f'"{sha256}"', "Cache-Control": "private, max-age=31536000, immutable"}
    return await run_in_threadpool(lambda: blob_response(dp.arca, sha256, media_type=media_type, headers=headers,
                                                         filename=filename, size=size, method=dp.request.method))


