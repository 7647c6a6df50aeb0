"""The npm registry API under /{domain}/npm/{repository}/ (what npm 11 uses, see docs/npm.md).

Routing and the thin endpoints live here; naming rules are in npm_names, rendering and its
cache in npm_packument, the publish body and its checks in npm_publish, and the writes in
npm_store. Rows are written only through app.services.packages."""

from __future__ import annotations

from urllib.parse import unquote

from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, Response

from app.domain.errors import ArcaError, NotFound, ValidationError
from app.formats import npm_names, npm_packument as pm, npm_store as store
from app.formats.http import blob_response
from app.formats.npm_body import BodyReader
from app.services import authz
from app.upstream import npm as upstream
from app.upstream.chain import active as upstream_active

HANDLES_ROOT = False
JSON_LIMIT = 1024 * 1024  # dist-tag bodies and the like


async def handle(dp) -> Response:
    reader = BodyReader(dp.request)
    try:
        return await _route(dp, reader)
    except ArcaError:
        # Answer only after the client has sent its body, or it may see a reset, not our reason.
        await reader.drain()
        raise


async def _route(dp, reader: BodyReader) -> Response:
    method = dp.request.method
    segs = dp.raw_rest.split("/")
    if segs and segs[-1] == "" and len(segs) > 1:
        segs.pop()
    if segs[0] == "-":
        return await _special(dp, reader, segs[1:], method)
    name, rest = parse_name(segs)
    if not rest:
        if method in ("GET", "HEAD"):
            return await get_packument(dp, name)
        if method == "PUT":
            return await store.put_package(dp, reader, name, rev=None)
    elif rest[0] == "-rev" and len(rest) == 2:
        if method == "PUT":
            return await store.put_package(dp, reader, name, rev=unquote(rest[1]))
        if method == "DELETE":
            return await store.delete_package(dp, name, unquote(rest[1]))
    elif rest[0] == "-" and len(rest) == 2 and method in ("GET", "HEAD"):
        return await get_tarball(dp, name, unquote(rest[1]))
    elif rest[0] == "-" and len(rest) == 4 and rest[2] == "-rev" and method == "DELETE":
        return await store.delete_tarball(dp, name, unquote(rest[1]))
    elif len(rest) == 1 and method in ("GET", "HEAD"):
        return await get_version(dp, name, unquote(rest[0]))
    raise NotFound(f"No npm registry endpoint for {method} /{dp.raw_rest}")


async def _special(dp, reader: BodyReader, segs: list[str], method: str) -> Response:
    if segs == ["ping"]:
        await dp.require(authz.READ)
        return JSONResponse({})
    if segs == ["whoami"]:
        # The principal behind the token (CodeArtifact's data plane knows only the token; npm
        # shows this string after `npm whoami`).
        return JSONResponse({"username": dp.principal.name})
    if len(segs) >= 3 and segs[0] == "package":
        name, rest = parse_name(segs[1:])
        if rest and rest[0] == "dist-tags" and len(rest) <= 2:
            tag = unquote(rest[1]) if len(rest) == 2 else None
            if method == "GET" and tag is None:
                return JSONResponse(await store.read_tags(dp, name))
            if method in ("PUT", "POST") and tag is not None:
                body = await reader.read_json(JSON_LIMIT)
                return JSONResponse(await store.set_tag(dp, name, tag, body), status_code=201)
            if method == "DELETE" and tag is not None:
                return JSONResponse(await store.remove_tag(dp, name, tag))
    raise NotFound(f"No npm registry endpoint for {method} /{dp.raw_rest}")


def parse_name(segs: list[str]) -> tuple[str, list[str]]:
    """['@scope%2fname', ...] or ['@scope', 'name', ...] or ['name', ...] → (name, rest)."""
    first = unquote(segs[0])
    if not first:
        raise NotFound("No package name in the path")
    if first.startswith("@") and "/" not in first:
        if len(segs) < 2:
            raise ValidationError(f"Invalid package name {first!r}: a scope needs a name after it")
        return f"{first}/{unquote(segs[1])}", segs[2:]
    return first, segs[1:]


# ---- reads -------------------------------------------------------------------------------------

def _cache(dp) -> pm.RenderCache:
    cache = dp.arca.caches.get("npm_packuments")
    if cache is None:
        cache = dp.arca.caches.setdefault("npm_packuments", pm.RenderCache())
    return cache


async def get_packument(dp, name: str) -> Response:
    scope, bare = store.coords_of(name)
    kind = "corgi" if pm.wants_corgi(dp.request.headers.get("accept")) else "full"
    base_url = dp.base_url
    cache = _cache(dp)
    # `?write=true` (npm deprecate/unpublish) wants this repository's own document and its _rev.
    if dp.request.query_params.get("write") != "true" and await upstream_active(dp):
        return conditional(dp, await upstream.merged(dp, scope, bare, kind))

    def work() -> pm.Rendered:
        with dp.arca.db.read() as s:
            store.authorize(dp, s, authz.READ)
            pkg_id, revision = store.package_revision(s, dp, scope, bare)
            key = (pkg_id, kind, base_url)
            hit = cache.get(key, revision)
            if hit is not None:
                return hit
            view = pm.load_view(s, store.package_row(s, pkg_id))
        if not view.versions:
            raise NotFound(f"{name} has no published versions in this repository")
        out = pm.render(view, kind, base_url)
        cache.put(key, out)
        return out

    rendered = await run_in_threadpool(work)
    return conditional(dp, rendered)


def conditional(dp, r: pm.Rendered) -> Response:
    """ETag/304 and gzip for a rendered packument."""
    gz = "gzip" in (dp.request.headers.get("accept-encoding") or "")
    etag = r.etag[:-1] + '-gz"' if gz else r.etag
    headers = {"ETag": etag, "Vary": "Accept, Accept-Encoding", "Cache-Control": "no-cache"}
    inm = dp.request.headers.get("if-none-match")
    if inm and (etag in inm or inm.strip() == "*"):
        return Response(status_code=304, headers=headers)
    if gz:
        headers["Content-Encoding"] = "gzip"
        return Response(r.gz, media_type=r.media_type, headers=headers)
    return Response(r.body, media_type=r.media_type, headers=headers)


async def get_version(dp, name: str, spec: str) -> Response:
    scope, bare = store.coords_of(name)
    base_url = dp.base_url

    def work() -> dict:
        with dp.arca.db.read() as s:
            store.authorize(dp, s, authz.READ)
            pkg_id, _rev = store.package_revision(s, dp, scope, bare)
            view = pm.load_view(s, store.package_row(s, pkg_id), statuses=store.DOWNLOADABLE)
        published = [r.version for r in view.versions if r.status == store.PUBLISHED]
        version = spec if npm_names.is_semver(spec) else pm.effective_tags(view.tag_rows, published).get(spec)
        row = next((r for r in view.versions if r.version == version), None)
        if row is None:
            raise NotFound(f"{name}@{spec} is not in this repository")
        return pm.version_doc(name, row, base_url)

    return JSONResponse(await run_in_threadpool(work))


async def get_tarball(dp, name: str, filename: str) -> Response:
    scope, bare = store.coords_of(name)
    if not (filename.startswith(f"{bare}-") and filename.endswith(".tgz")):
        raise NotFound(f"{filename} is not a tarball of {name}")
    version = filename[len(bare) + 1:-4]
    if not npm_names.is_semver(version):
        raise NotFound(f"{filename} is not a tarball of {name}")

    def work():
        with dp.arca.db.read() as s:
            store.authorize(dp, s, authz.READ)
            return store.tarball_blob(s, dp, scope, bare, version, filename)

    try:
        sha256, size = await run_in_threadpool(work)
    except NotFound:
        if not await upstream_active(dp):
            raise
        sha256, size = await upstream.locate_tarball(dp, scope, bare, version, filename)
    headers = {"Cache-Control": "private, max-age=31536000, immutable", "ETag": f'"{sha256}"'}
    return blob_response(dp.arca, sha256, media_type="application/octet-stream", headers=headers,
                         filename=filename, size=size, method=dp.request.method)

