"""PyPI repositories: twine's legacy upload, the simple index (PEP 503/691/658/700/714), downloads.

URLs under `/{domain}/pypi/{repository}/`:
  POST  ``                               twine upload (also `legacy/`)
  GET   `simple/`                        all projects with a Published version
  GET   `simple/{project}/`              the project page (HTML or JSON by Accept)
  GET   `simple/{project}/{file}`        a distribution file (Published or Unlisted versions)
  GET   `simple/{project}/{file}.metadata`  its core metadata (PEP 658)
Links in the pages are relative, so a page is the same whatever host name the client used."""

from __future__ import annotations

import hashlib
from urllib.parse import unquote

from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect
from starlette.responses import PlainTextResponse, RedirectResponse, Response

from app.domain.coords import Coordinates
from app.domain.errors import NotFound, PayloadTooLarge, ValidationError
from app.domain.pep503 import normalize
from app.domain.status import CLOSED, STATUSES
from app.formats.base import Format
from app.formats.http import DataPlane, blob_response, not_modified, reads_through, wants_gzip
from app.formats.pypi import dists, simple
from app.formats.pypi.upload import FORM_FIELDS_MAX, Form, FormReader, check_archive, check_attestations, \
    check_form, file_attributes, provenance_object
from app.services import publish, resolve
from app.upstream import pypi as upstream

READ_METHODS = ("GET", "HEAD")
VARY = "Accept, Accept-Encoding"
INDEX_CACHE_CONTROL = "private, max-age=0, must-revalidate"
# twine upload publishes at once; files may join a version until it is Archived, Disposed or Deleted.
RULES = publish.Rules(initial_status="Published", open_statuses=tuple(s for s in STATUSES if s not in CLOSED),
                      version_key=dists.version_key, file_key=dists.file_key)


def _coords(project: str) -> Coordinates:
    return Coordinates("pypi", "", project)


async def handle(dp: DataPlane) -> Response:
    # Errors are rendered by app.formats.http (with the reason in the status line, for twine).
    parts = [unquote(p) for p in dp.raw_rest.split("/")]
    method = dp.method
    if parts in ([""], ["legacy"], ["legacy", ""]):
        if method != "POST":
            return _not_allowed("POST")
        return await upload(dp)
    if parts[0] == "integrity" and len(parts) == 5 and parts[4] == "provenance" and method in READ_METHODS:
        return await provenance(dp, normalize(parts[1]), parts[3])
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


PYPI = Format("pypi", handle)


def _not_allowed(allow: str) -> Response:
    return PlainTextResponse(f"Method not allowed here; use {allow}\n", status_code=405, headers={"Allow": allow})


def _redirect(dp: DataPlane, rest: str) -> Response:
    query = dp.request.url.query
    location = f"/{dp.repo.domain}/pypi/{dp.repo.repository}/{rest}" + (f"?{query}" if query else "")
    return RedirectResponse(location, status_code=301)


# ---- index pages -------------------------------------------------------------------------------

def _page_response(dp: DataPlane, media: str, body: bytes | None, etag: str, gz: bool) -> Response:
    headers = {"ETag": etag, "Vary": VARY, "Cache-Control": INDEX_CACHE_CONTROL}
    if not_modified(dp.request, etag):
        return Response(status_code=304, headers=headers)
    if gz:
        headers["Content-Encoding"] = "gzip"
    return Response(body, media_type=simple.content_type(media), headers=headers)


def _media(dp: DataPlane) -> str:
    return simple.negotiate(dp.request.headers.get("accept"), dp.request.query_params.get("format"))


async def project_index(dp: DataPlane, project: str) -> Response:
    media = _media(dp)
    gz = wants_gzip(dp.request)
    if await reads_through(dp):
        return await _merged_index(dp, project, media, gz)

    def load() -> tuple[str, bytes | None]:
        state, variants = resolve.document(
            dp.arca, dp.principal, dp.repo, _coords(project), cache=dp.arca.caches.pypi_pages, variant=None,
            load=resolve.downloadable_files,
            render=lambda files: simple.Variants(project, simple.project_rows(files)),
            missing=f"No project {project!r} in repository {dp.repo.repository}")
        if variants.empty:
            raise NotFound(f"Project {project!r} has no published versions in repository {dp.repo.repository}")
        etag = simple.etag_of(state.id, state.revision, state.updated_at, media, gz)
        return etag, None if not_modified(dp.request, etag) else variants.body(media, gz)

    etag, body = await dp.run(load)
    return _page_response(dp, media, body, etag, gz)


async def _merged_index(dp: DataPlane, project: str, media: str, gz: bool) -> Response:
    """The page of a repository with upstreams or an external connection: own, upstream and remote
    versions merged (first hit per version wins); the ETag is the hash of the body."""
    rows = await upstream.merged_rows(dp, project)
    plain = simple.render_project(project, rows, media)
    body, gz = simple.compressed(plain, gz)
    etag = simple.etag_of(hashlib.sha256(plain).hexdigest(), media, gz)
    return _page_response(dp, media, body, etag, gz)


async def root_index(dp: DataPlane) -> Response:
    media = _media(dp)
    names = await dp.run(resolve.project_names, dp.arca, dp.principal, dp.repo, "pypi")
    plain = simple.render_root(names, media)
    body, gz = simple.compressed(plain, wants_gzip(dp.request))
    etag = simple.etag_of(hashlib.sha256(plain).hexdigest(), media, gz)
    return _page_response(dp, media, body, etag, gz)


# ---- files -------------------------------------------------------------------------------------

async def download(dp: DataPlane, project: str, filename: str) -> Response:
    metadata = filename.endswith(".metadata")
    asset_name = filename[: -len(".metadata")] if metadata else filename
    row = await dp.run(resolve.readable_file, dp.arca, dp.principal, dp.repo, _coords(project), None, asset_name)
    if row is None:
        if not await reads_through(dp):
            raise NotFound(f"No file {filename!r} for project {project!r} in repository {dp.repo.repository}")
        row = await upstream.locate(dp, project, asset_name, metadata)
    sha256, size = row.sha256, row.size
    if metadata:
        sha256, size = row.attributes.get("metadata_sha256"), row.attributes.get("metadata_size")
        if not sha256:
            raise NotFound(f"No core metadata is recorded for {asset_name}")
    headers = {"ETag": f'"{sha256}"', "Cache-Control": "private, max-age=31536000, immutable"}
    return await dp.run(blob_response, dp, sha256, media_type="application/octet-stream", headers=headers,
                        filename=filename, size=size)


async def provenance(dp: DataPlane, project: str, filename: str) -> Response:
    """The Integrity API (PEP 740): `integrity/{project}/{version}/{filename}/provenance`."""
    row = await dp.run(resolve.readable_file, dp.arca, dp.principal, dp.repo, _coords(project), None, filename)
    sha256 = row.attributes.get("provenance_sha256") if row is not None else None
    if not sha256:
        raise NotFound(f"No provenance is recorded for {filename!r} of project {project!r}")
    headers = {"ETag": f'"{sha256}"', "Cache-Control": "private, max-age=31536000, immutable"}
    return await dp.run(blob_response, dp, sha256, media_type=simple.INTEGRITY_V1, headers=headers,
                        filename=f"{filename}.provenance", size=row.attributes.get("provenance_size"))


# ---- uploads -----------------------------------------------------------------------------------

async def read_form(dp: DataPlane) -> Form:
    """Parse the request body, the file part staged beside the blob store; on any error the staged
    file is removed."""
    request = dp.request
    ctype, params = parse_options_header(request.headers.get("content-type", ""))
    if ctype != b"multipart/form-data" or not params.get(b"boundary"):
        raise ValidationError("An upload is a multipart/form-data POST (the legacy upload API that twine uses)")
    limit = dp.arca.settings.max_upload_bytes
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit + FORM_FIELDS_MAX:
        raise PayloadTooLarge(f"Upload is larger than the limit of {limit} bytes")
    reader = FormReader(dp.arca.blobs.new_temp(), limit)
    parser = MultipartParser(params[b"boundary"], reader.callbacks())
    try:
        async for chunk in request.stream():
            if chunk:
                parser.write(chunk)
        parser.finalize()
        if not reader.ended:
            raise ValidationError("The multipart body ended early")
    except ClientDisconnect:
        reader.close()
        reader.form.discard()
        raise ValidationError("The client disconnected during the upload") from None
    except Exception as exc:
        reader.close()
        reader.form.discard()
        if isinstance(exc, (ValidationError, PayloadTooLarge)):
            raise
        raise ValidationError(f"Malformed multipart body: {exc}") from None
    finally:
        reader.close()
    return reader.form


async def upload(dp: DataPlane) -> Response:
    """One `file_upload`: refused before anything is kept, else the blob, then the rows."""
    await dp.run(publish.check_permission, dp.arca, dp.principal, dp.repo)
    form = await read_form(dp)
    try:
        dist, version = check_form(form)
        attestations = check_attestations(form, dist.filename)
        coords = _coords(dist.name)
        identical = await dp.run(publish.preflight, dp.arca, dp.principal, dp.repo, coords, rules=RULES,
                                 version=version, name=dist.filename, sha256=form.info.sha256)
        if identical:
            return PlainTextResponse(f"{dist.filename} is already stored with identical content\n")
        checked = await dp.run(check_archive, form, dist, version)
        spool, form.spool = form.spool, None
        info = await dp.run(dp.arca.blobs.commit_file, spool, {"sha256": form.info.sha256})
        meta = await dp.run(dp.arca.blobs.put_bytes, checked.metadata)
        extra = (meta,)
        prov = None
        if attestations:
            prov = await dp.run(dp.arca.blobs.put_bytes, provenance_object(attestations, dp.principal.name))
            extra += (prov,)
        f = publish.File(coords, version, dist.filename, info, display_name=checked.core.name,
                         summary=checked.core.summary, version_attributes=dict(checked.core.attributes),
                         attributes=file_attributes(checked, form, meta.sha256, meta.size, prov), extra_blobs=extra)
        added = await dp.run(publish.add_file, dp.arca, dp.principal, dp.repo, f, RULES)
    finally:
        form.discard()
    if added.created:
        return PlainTextResponse(f"Stored {dist.filename} ({dist.name} {version})\n")
    return PlainTextResponse(f"{dist.filename} is already stored with identical content\n")
