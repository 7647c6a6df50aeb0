"""The npm registry API under /{domain}/npm/{repository}/ (what npm 11 uses, see docs/npm.md).

Naming rules are in names, rendering in packument, the publish body and its checks in
publish_body, what a manifest records in manifest; every change goes through the services."""

from __future__ import annotations

from urllib.parse import unquote

import json
from datetime import datetime, timezone

from starlette.responses import JSONResponse, Response

from app.domain.coords import Coordinates
from app.domain import sigstore
from app.domain.errors import ArcaError, NotFound, NotSupported, PayloadTooLarge, ValidationError
from app.domain.status import DOWNLOADABLE, PUBLISHED
from app.domain.views import PackageView, document_rev
from app.formats.base import Format
from app.formats.http import BodyReader, DataPlane, blob_response, not_modified, reads_through
from app.formats.npm import audit, names as npm_names, packument as pm, publish_body as pub, search as npm_search
from app.formats.npm.manifest import version_attributes
from app.services import packages, publish, resolve, search
from app.upstream import npm as upstream

JSON_LIMIT = 1024 * 1024  # dist-tag bodies and the like
# npm publish: each version once, Published at once.
RULES = publish.Rules(initial_status=PUBLISHED, open_statuses=(), new_version=True)


async def handle(dp: DataPlane) -> Response:
    reader = BodyReader(dp.request)
    try:
        return await _route(dp, reader)
    except ArcaError:
        # Answer only after the client has sent its body, or it may see a reset, not our reason.
        await reader.drain()
        raise


NPM = Format("npm", handle)


async def _route(dp: DataPlane, reader: BodyReader) -> Response:
    method = dp.method
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
            return await put_package(dp, reader, name, rev=None)
    elif rest[0] == "-rev" and len(rest) == 2:
        if method == "PUT":
            return await put_package(dp, reader, name, rev=unquote(rest[1]))
        if method == "DELETE":
            await dp.run(packages.unpublish_package, dp.arca, dp.principal, dp.repo, coords_of(name),
                         unquote(rest[1]))
            return JSONResponse({"ok": "deleted package", "id": name})
    elif rest[0] == "-" and len(rest) == 2 and method in ("GET", "HEAD"):
        return await get_tarball(dp, name, unquote(rest[1]))
    elif rest[0] == "-" and len(rest) == 4 and rest[2] == "-rev" and method == "DELETE":
        return await delete_tarball(dp, name, unquote(rest[1]))
    elif len(rest) == 1 and method in ("GET", "HEAD"):
        return await get_version(dp, name, unquote(rest[0]))
    raise NotFound(f"No npm registry endpoint for {method} /{dp.raw_rest}")


async def _special(dp: DataPlane, reader: BodyReader, segs: list[str], method: str) -> Response:
    if segs == ["ping"]:
        await dp.run(resolve.check_permission, dp.arca, dp.principal, resolve.READ, dp.repo)
        return JSONResponse({})
    if segs == ["v1", "search"] and method in ("GET", "HEAD"):
        return JSONResponse(await search_packages(dp))
    if "/".join(["-", *segs]) in (audit.BULK, audit.QUICK) and method == "POST":
        return JSONResponse(await forward_audit(dp, reader, "/".join(["-", *segs])))
    if segs[:3] == ["npm", "v1", "attestations"] and len(segs) > 3 and method in ("GET", "HEAD"):
        return JSONResponse(await get_attestations(dp, unquote("/".join(segs[3:]))))
    if segs == ["whoami"]:
        # The principal behind the token (CodeArtifact's data plane knows only the token; npm
        # shows this string after `npm whoami`).
        return JSONResponse({"username": dp.principal.name})
    if len(segs) >= 3 and segs[0] == "package":
        name, rest = parse_name(segs[1:])
        if rest and rest[0] == "dist-tags" and len(rest) <= 2:
            tag = unquote(rest[1]) if len(rest) == 2 else None
            if method == "GET" and tag is None:
                return JSONResponse(pm.visible_tags(await _view(dp, name, (PUBLISHED,))))
            if method in ("PUT", "POST") and tag is not None:
                body = await reader.read_json(JSON_LIMIT)
                return JSONResponse(await set_tag(dp, name, tag, body), status_code=201)
            if method == "DELETE" and tag is not None:
                coords = coords_of(name)
                view = await dp.run(packages.remove_dist_tag, dp.arca, dp.principal, dp.repo, coords, tag)
                return JSONResponse(pm.visible_tags(view))
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


def coords_of(name: str) -> Coordinates:
    scope, bare = npm_names.split_name(name)
    return Coordinates("npm", scope, bare)


def _missing(name: str) -> str:
    return f"{name} is not in this repository"


# ---- reads -------------------------------------------------------------------------------------

async def _view(dp: DataPlane, name: str, statuses: tuple[str, ...]) -> PackageView:
    return await dp.run(resolve.read_view, dp.arca, dp.principal, dp.repo, coords_of(name),
                        load=lambda s, state: resolve.package_view(s, state, statuses), missing=_missing(name))


async def get_packument(dp: DataPlane, name: str) -> Response:
    coords = coords_of(name)
    kind = "corgi" if pm.wants_corgi(dp.request.headers.get("accept")) else "full"
    base_url = dp.base_url
    # `?write=true` (npm deprecate/unpublish) wants this repository's own document and its _rev.
    if dp.request.query_params.get("write") != "true" and await reads_through(dp):
        return conditional(dp, await upstream.merged(dp, coords, kind))

    def render(view: PackageView) -> pm.Rendered:
        if not view.versions:
            raise NotFound(f"{name} has no published versions in this repository")
        return pm.render(view, kind, base_url)

    _state, rendered = await dp.run(
        resolve.document, dp.arca, dp.principal, dp.repo, coords, cache=dp.arca.caches.packuments,
        variant=(kind, base_url), load=resolve.package_view, render=render, missing=_missing(name))
    return conditional(dp, rendered)


def conditional(dp: DataPlane, r: pm.Rendered) -> Response:
    """ETag/304 and gzip for a rendered packument."""
    gz = "gzip" in (dp.request.headers.get("accept-encoding") or "")
    etag = r.etag[:-1] + '-gz"' if gz else r.etag
    headers = {"ETag": etag, "Vary": "Accept, Accept-Encoding", "Cache-Control": "no-cache"}
    if not_modified(dp.request, etag):
        return Response(status_code=304, headers=headers)
    if gz:
        headers["Content-Encoding"] = "gzip"
        return Response(r.gz, media_type=r.media_type, headers=headers)
    return Response(r.body, media_type=r.media_type, headers=headers)


async def get_version(dp: DataPlane, name: str, spec: str) -> Response:
    if await reads_through(dp):
        return JSONResponse(await upstream.merged_version(dp, coords_of(name), spec))
    view = await _view(dp, name, DOWNLOADABLE)
    published = [r.version for r in view.versions if r.status == PUBLISHED]
    version = spec if npm_names.is_semver(spec) else pm.effective_tags(view.tag_rows, published).get(spec)
    row = next((r for r in view.versions if r.version == version), None)
    if row is None:
        raise NotFound(f"{name}@{spec} is not in this repository")
    return JSONResponse(pm.version_doc(name, row, dp.base_url))


def tarball_version(coords: Coordinates, filename: str) -> str:
    """The version a tarball file name `{bare}-{version}.tgz` is of, '' when it is no such name."""
    bare = coords.name
    return filename[len(bare) + 1:-4] if filename.startswith(f"{bare}-") and filename.endswith(".tgz") else ""


async def get_tarball(dp: DataPlane, name: str, filename: str) -> Response:
    coords = coords_of(name)
    version = tarball_version(coords, filename)
    if not npm_names.is_semver(version):
        raise NotFound(f"{filename} is not a tarball of {name}")
    row = await dp.run(resolve.readable_file, dp.arca, dp.principal, dp.repo, coords, version, filename)
    if row is None:
        if not await reads_through(dp):
            raise NotFound(f"{filename} is not in this repository")
        row = await upstream.locate_tarball(dp, coords, version, filename)
    headers = {"Cache-Control": "private, max-age=31536000, immutable", "ETag": f'"{row.sha256}"'}
    return await dp.run(blob_response, dp, row.sha256, media_type="application/octet-stream", headers=headers,
                        filename=filename, size=row.size)


async def search_packages(dp: DataPlane) -> dict:
    """npm search over this repository and its upstreams, merged with the first npm external
    connection's answer when the repository reads through one (a remote that fails adds nothing)."""
    q = npm_search.parse_query(dp.request.query_params)
    where = await dp.run(search.scope, dp.arca, dp.principal, dp.repo, "npm")
    hits = await dp.run(search.search_packages, dp.arca, dp.principal, dp.repo, "npm", list(q.words), where)
    local = [o for o in (npm_search.local_object(q.words, h.namespace, h.name, h.version, h.summary, h.published,
                                                 h.attributes) for h in hits) if o is not None]
    remote, remote_total = [], 0
    for _rid, connection in where.externals[:1]:
        remote, remote_total = await upstream.remote_search(dp, connection, q)
    return npm_search.render(local, remote, remote_total, q, datetime.now(timezone.utc))


async def forward_audit(dp: DataPlane, reader: BodyReader, path: str) -> dict:
    """npm audit: the advisories are the external connection's registry's (Arca keeps no advisory
    database); a repository that reads through no npm registry says so (501) instead of "no
    vulnerabilities"."""
    where = await dp.run(search.scope, dp.arca, dp.principal, dp.repo, "npm")
    body = audit.read_body(await reader.read(audit.MAX_BODY, "The audit request"),
                           dp.request.headers.get("content-encoding"), path)
    if not where.externals:
        raise NotSupported(f"npm audit needs a registry with security advisories: repository {dp.repo.repository} "
                           "has no external connection to an npm registry such as public:npmjs (nor has any of its "
                           "upstreams), so Arca cannot audit. Associate one (associate-external-connection) or run "
                           "npm audit with --registry pointing at a registry that has advisories")
    return await upstream.remote_audit(dp, where.externals[0][1], path, body)


async def get_attestations(dp: DataPlane, spec: str) -> dict:
    """`-/npm/v1/attestations/NAME@VERSION`: the provenance bundle stored with the version."""
    name, _, version = spec.rpartition("@")
    if not name or not npm_names.is_semver(version):
        raise NotFound(f"No attestations for {spec!r}: expected NAME@VERSION")
    view = await _view(dp, name, DOWNLOADABLE)
    row = next((r for r in view.versions if r.version == version), None)
    provenance = row.attributes.get("provenance") if row is not None else None
    if not isinstance(provenance, dict) or not provenance.get("sha256"):
        raise NotFound(f"{name}@{version} has no attestations in this repository")
    raw = await dp.run(dp.arca.blobs.read_bytes, provenance["sha256"])
    return pm.attestations_doc(json.loads(raw), provenance["predicateType"])


# ---- writes ------------------------------------------------------------------------------------

async def put_package(dp: DataPlane, reader: BodyReader, name: str, rev: str | None) -> Response:
    """PUT /{name}: a publish (one tarball in _attachments) or, without attachments, a document
    update (npm deprecate); PUT /{name}/-rev/{rev}: npm unpublish of versions."""
    coords = coords_of(name)
    await dp.run(publish.check_permission, dp.arca, dp.principal, dp.repo)
    limit = dp.arca.settings.npm_max_publish_bytes
    if (reader.declared_length() or 0) > limit:
        raise PayloadTooLarge(f"The publish body ({reader.declared_length()} bytes) is larger than this "
                              f"registry's limit of {limit} bytes (ARCA_NPM_MAX_PUBLISH_BYTES)")
    scanner = pub.BodyScanner(limit=limit, temp_path_factory=dp.arca.blobs.new_temp)
    try:
        async for chunk in reader.chunks():
            scanner.feed(chunk)
        doc = scanner.finish()
        for key in ("name", "_id"):
            if key in doc and doc[key] != name:
                raise ValidationError(f"The body's {key} {doc[key]!r} does not match the URL's package {name!r}")
        if scanner.attachments or doc.get("_attachments"):
            return await _publish(dp, coords, name, doc, scanner.attachments)
        versions = doc.get("versions")
        if not isinstance(versions, dict):
            raise ValidationError("The body must carry the package's 'versions'")
        change = packages.DocumentUpdate(versions, doc.get("dist-tags"), rev)
        pkg_id, revision, removed = await dp.run(packages.update_document, dp.arca, dp.principal, dp.repo,
                                                 coords, change)
        return JSONResponse({"ok": "updated package", "id": name, "rev": document_rev(pkg_id, revision),
                             "removed": removed})
    finally:
        scanner.cleanup()


async def _publish(dp: DataPlane, coords: Coordinates, name: str, doc: dict, attachments) -> Response:
    p = pub.check_publish(doc, name, attachments)
    digests = pub.check_digests(p.attachment, p.expected)
    await dp.run(publish.preflight, dp.arca, dp.principal, dp.repo, coords, rules=RULES, version=p.version)
    await dp.run(pub.check_tarball, p.attachment.path, name, p.version, dp.arca.settings.npm_max_unpacked_bytes)
    provenance, extra = None, ()
    if p.provenance is not None:  # npm publish --provenance: a Sigstore bundle for this very tarball
        checked = sigstore.check_bundle(p.provenance, pm.purl(name, p.version), digests["sha512"])
        bundle = await dp.run(dp.arca.blobs.put_bytes, p.provenance.encode())
        provenance, extra = {"predicateType": checked.predicate_type, "sha256": bundle.sha256,
                             "size": bundle.size}, (bundle,)
    info = await dp.run(dp.arca.blobs.commit_file, p.attachment.path, digests)
    readme = p.manifest.get("readme") or doc.get("readme") or ""
    summary = p.manifest.get("description") if isinstance(p.manifest.get("description"), str) else None
    f = publish.File(coords, p.version, f"{coords.name}-{p.version}.tgz", info, display_name=name, summary=summary,
                     version_attributes=version_attributes(name, p.manifest, readme, provenance), tags=dict(p.tags),
                     extra_blobs=extra)
    added = await dp.run(publish.add_file, dp.arca, dp.principal, dp.repo, f, RULES)
    return JSONResponse({"ok": "created new package version", "success": True, "id": name,
                         "rev": document_rev(added.package_id, added.package_revision)}, status_code=201)


async def set_tag(dp: DataPlane, name: str, tag: str, version) -> dict:
    coords = coords_of(name)
    npm_names.check_tag(tag)
    if not isinstance(version, str):
        raise ValidationError('The body must be the version as a JSON string, e.g. "1.2.3"')
    npm_names.check_version(version)
    view = await dp.run(packages.set_dist_tag, dp.arca, dp.principal, dp.repo, coords, tag, version)
    return pm.visible_tags(view)


async def delete_tarball(dp: DataPlane, name: str, filename: str) -> Response:
    coords = coords_of(name)
    version = tarball_version(coords, filename)
    await dp.run(packages.unpublish_version, dp.arca, dp.principal, dp.repo, coords, version)
    # Already gone (npm's unpublish removes the version first): success, as CouchDB did.
    return JSONResponse({"ok": "deleted tarball", "id": name})
