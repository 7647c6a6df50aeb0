"""Maven 2 layout: GET/HEAD/PUT of artifacts, checksum sidecars and maven-metadata.xml.

Rows: Package(namespace=groupId, name=artifactId); PackageVersion = the version directory
(`1.0.0`, or `1.0.1-SNAPSHOT` whose timestamped builds are its assets); Asset = file name.
A PUT file makes its version `Unfinished`; maven-metadata.xml that lists the version (what
`mvn deploy` sends last) or UpdatePackageVersionsStatus publishes it. maven-metadata.xml is
always rendered from Published rows; uploaded copies only trigger publishing."""

from __future__ import annotations

import hashlib

from sqlalchemy import bindparam, select
from starlette.concurrency import run_in_threadpool
from starlette.responses import FileResponse, Response

from app.db.models import Asset, Blob, Domain, Package, PackageVersion, Repository
from app.domain.errors import ArcaError, Conflict, NotFound, PayloadTooLarge, ValidationError
from app.formats.http import DataPlane, blob_response, error_response
from app.formats.maven_metadata import MAX_DOCUMENT, parse_metadata, parse_pom, render_artifact, render_snapshot
from app.formats.maven_paths import CHECKSUMS, HEX_LEN, NotInLayout, MavenPath, parse_filename, parse_path
from app.services import authz, packages as pk
from app.upstream import maven as upstream
from app.upstream.chain import active as upstream_active

FORMAT = "maven"
CACHE_KEY = "maven-metadata"
CACHE_MAX = 4096
SMALL_FILE = 256 * 1024  # served from memory; larger files go out through FileResponse/streaming
MEDIA_TYPES = {"jar": "application/java-archive", "pom": "text/xml", "xml": "text/xml", "war": "application/java-archive"}
HASH_NAMES = {"sha1": "SHA-1", "md5": "MD5", "sha256": "SHA-256", "sha512": "SHA-512"}


async def handle(dp: DataPlane) -> Response:
    method = dp.request.method
    if method not in ("GET", "HEAD", "PUT"):
        return Response(f"{method} is not supported on a Maven repository; use GET, HEAD or PUT\n",
                        status_code=405, headers={"Allow": "GET, HEAD, PUT"}, media_type="text/plain")
    if method == "PUT":
        try:
            return await _put(dp, parse_path(dp.raw_rest))
        except ArcaError as exc:
            # The body may be unread (Expect: 100-continue clients such as Maven never send it
            # after a final status): close, or the next request on this connection is parsed as
            # the rest of that body and hangs.
            response = error_response(FORMAT, exc)
            response.headers["Connection"] = "close"
            return response
    try:
        mp = parse_path(dp.raw_rest)
    except NotInLayout as exc:
        raise NotFound(exc.message) from None  # a client probing for something this layout cannot hold
    if mp.kind == "file":
        return await _get_file(dp, mp)
    return await _get_metadata(dp, mp)


def _coords(mp: MavenPath) -> pk.Coordinates:
    return pk.Coordinates(FORMAT, mp.group_id, mp.artifact_id)


def _rows(s, dp: DataPlane) -> tuple[Domain, Repository]:
    return s.get(Domain, dp.repo.domain_id), s.get(Repository, dp.repo.repository_id)


# ---- downloads -----------------------------------------------------------------------------------

class _FileResponse(FileResponse):
    chunk_size = 1024 * 1024  # 16x fewer thread hops than the default 64 KiB on large downloads


# Hot paths: one prebuilt Core query each (column rows, no ORM objects), compiled once.
_PACKAGE = (Package.repository_id == bindparam("repo"), Package.format == FORMAT,
            Package.namespace == bindparam("group"), Package.name == bindparam("artifact"))
FILE_QUERY = (select(Blob.sha256, Blob.sha1, Blob.md5, Blob.sha512, Blob.size, PackageVersion.status)
              .join_from(Package, PackageVersion, PackageVersion.package_id == Package.id)
              .join(Asset, Asset.package_version_id == PackageVersion.id)
              .join(Blob, Blob.id == Asset.blob_id)
              .where(*_PACKAGE, PackageVersion.version == bindparam("version"), Asset.name == bindparam("file")))
PACKAGE_QUERY = select(Package.id, Package.revision, Package.updated_at).where(*_PACKAGE)


def _params(dp: DataPlane, mp: MavenPath, **more) -> dict:
    return {"repo": dp.repo.repository_id, "group": mp.group_id, "artifact": mp.artifact_id, **more}


def _lookup_file(dp: DataPlane, mp: MavenPath, with_body: bool = False):
    """The blob row of a downloadable file, and its bytes when small (one thread hop instead of
    FileResponse's stat/open/read/close)."""
    with dp.arca.db.read() as s:
        if not dp.principal.is_admin:
            dp.require_sync(s, authz.READ)
        row = s.execute(FILE_QUERY, _params(dp, mp, version=mp.version, file=mp.filename)).first()
    if row is None or row.status not in pk.DOWNLOADABLE:
        raise NotFound(f"{mp.filename} not found in {mp.group_id}:{mp.artifact_id}:{mp.version}")
    body = None
    if with_body and row.size <= SMALL_FILE:
        body = b"".join(dp.arca.blobs.open_chunks(row.sha256))
    return row, body


async def _get_file(dp: DataPlane, mp: MavenPath) -> Response:
    wants_body = dp.request.method == "GET" and not mp.checksum and not dp.request.headers.get("range")
    try:
        blob, body = await run_in_threadpool(_lookup_file, dp, mp, wants_body)
    except NotFound:
        if not await upstream_active(dp):
            raise
        blob, body = await upstream.locate_file(dp, mp), None
    etag = f'"{blob.sha256}"'
    if mp.checksum:
        return _text_response(dp, getattr(blob, CHECKSUMS[mp.checksum]), f'"{mp.checksum}-{blob.sha256}"')
    if _not_modified(dp, etag):
        return Response(status_code=304, headers={"ETag": etag})
    ext = mp.filename.rsplit(".", 1)[-1]
    headers = {"ETag": etag, "X-Checksum-Sha1": blob.sha1}
    media = MEDIA_TYPES.get(ext, "application/octet-stream")
    if body is not None:
        return Response(body, media_type=media, headers=headers)
    path = dp.arca.blobs.local_path(blob.sha256)
    if path is not None and path.is_file():
        return _FileResponse(path, media_type=media, headers=headers)
    return blob_response(dp.arca, blob.sha256, media_type=media, headers=headers, filename=mp.filename,
                         size=blob.size, method=dp.request.method)


def _not_modified(dp: DataPlane, etag: str) -> bool:
    inm = dp.request.headers.get("if-none-match")
    return bool(inm) and (inm.strip() == "*" or etag in [t.strip() for t in inm.split(",")])


def _text_response(dp: DataPlane, text: str, etag: str) -> Response:
    if _not_modified(dp, etag):
        return Response(status_code=304, headers={"ETag": etag})
    return Response(text, media_type="text/plain", headers={"ETag": etag})


def _metadata_doc(dp: DataPlane, mp: MavenPath) -> tuple[bytes, dict, str]:
    """(body, {alg: hex}, etag) of a rendered maven-metadata.xml, cached per package revision."""
    cache: dict = dp.arca.caches.setdefault(CACHE_KEY, {})
    with dp.arca.db.read() as s:
        if not dp.principal.is_admin:
            dp.require_sync(s, authz.READ)
        pkg = s.execute(PACKAGE_QUERY, _params(dp, mp)).first()
        if pkg is None:
            raise NotFound(f"No Maven package {mp.group_id}:{mp.artifact_id} in repository {dp.repo.repository}")
        key = (pkg.id, pkg.revision, mp.version)
        hit = cache.get(key)
        if hit is not None:
            return hit
        if mp.kind == "metadata":
            versions = list(s.scalars(select(PackageVersion.version).where(
                PackageVersion.package_id == pkg.id, PackageVersion.status == pk.PUBLISHED)))
            if not versions:
                raise NotFound(f"{mp.group_id}:{mp.artifact_id} has no published versions")
            body = render_artifact(mp.group_id, mp.artifact_id, versions, pkg.updated_at)
        else:
            # Unlisted snapshots keep their version-level metadata: it is how an exact
            # `X-SNAPSHOT` dependency is resolved.
            ver = s.execute(select(PackageVersion.id, PackageVersion.status).where(
                PackageVersion.package_id == pkg.id, PackageVersion.version == mp.version)).first()
            if ver is None or ver.status not in pk.DOWNLOADABLE:
                raise NotFound(f"{mp.group_id}:{mp.artifact_id}:{mp.version} is not published")
            files = [tuple(r) for r in s.execute(select(Asset.name, Asset.created_at).where(
                Asset.package_version_id == ver.id))]
            body = render_snapshot(mp.group_id, mp.artifact_id, mp.version, files)
    sums = {alg: hashlib.new(alg, body).hexdigest() for alg in CHECKSUMS}
    value = (body, sums, f'"m{key[0]}.{key[1]}"')
    if len(cache) >= CACHE_MAX:
        for old in list(cache)[: CACHE_MAX // 2]:
            cache.pop(old, None)
    cache[key] = value
    return value


async def _get_metadata(dp: DataPlane, mp: MavenPath) -> Response:
    if mp.kind == "metadata" and await upstream_active(dp):
        body, sums, etag = await upstream.metadata_doc(dp, mp)  # merged with upstreams and the remote
    else:
        body, sums, etag = await run_in_threadpool(_metadata_doc, dp, mp)
    if mp.checksum:
        return _text_response(dp, sums[mp.checksum], etag[:-1] + f'.{mp.checksum}"')
    if _not_modified(dp, etag):
        return Response(status_code=304, headers={"ETag": etag})
    return Response(body, media_type="text/xml", headers={"ETag": etag, "Cache-Control": "no-cache"})


# ---- uploads -------------------------------------------------------------------------------------

async def _read_body(dp: DataPlane, limit: int, what: str) -> bytes:
    _check_length(dp, limit, what)
    buf = bytearray()
    async for chunk in dp.request.stream():
        buf += chunk
        if len(buf) > limit:
            raise PayloadTooLarge(f"{what} is larger than {limit} bytes")
    return bytes(buf)


def _check_length(dp: DataPlane, limit: int, what: str) -> None:
    declared = dp.request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"{what} is larger than {limit} bytes")


async def _put(dp: DataPlane, mp: MavenPath) -> Response:
    if not dp.principal.is_admin:
        await dp.require(authz.PUBLISH)
    if mp.kind != "file":
        body = await _read_body(dp, MAX_DOCUMENT if not mp.checksum else 1024, "maven-metadata.xml")
        if mp.checksum:
            return Response(status_code=200)  # metadata is rendered, so are its checksums
        await run_in_threadpool(_publish_listed, dp, mp, body)
        return Response(status_code=200)
    if mp.checksum:
        body = await _read_body(dp, 1024, "A checksum file")
        await run_in_threadpool(_verify_sidecar, dp, mp, body)
        return Response(status_code=200)
    limit = dp.arca.settings.max_upload_bytes
    _check_length(dp, limit, mp.filename)
    info = await dp.arca.blobs.put_stream(dp.request.stream(), limit=limit)
    pom = None
    if parse_filename(mp.artifact_id, mp.version, mp.filename).is_main_pom and info.size <= MAX_DOCUMENT:
        pom = parse_pom(await run_in_threadpool(_read_blob, dp, info.sha256))
    created = await run_in_threadpool(_store_file, dp, mp, info, pom)
    return Response(status_code=201 if created else 200)


def _read_blob(dp: DataPlane, sha256: str) -> bytes:
    return b"".join(dp.arca.blobs.open_chunks(sha256))


def _store_file(dp: DataPlane, mp: MavenPath, info, pom: tuple | None) -> bool:
    with dp.arca.db.session() as s:
        domain, repo = _rows(s, dp)
        pkg = pk.package_for_publish(s, domain, repo, _coords(mp))
        pk.bump(s, pkg)  # first: it row-locks the package, so writers of one package queue here
        ver, _new = pk.get_or_create_version(s, pkg, mp.version, status=pk.UNFINISHED)
        if ver.status not in (pk.UNFINISHED, pk.PUBLISHED, pk.UNLISTED):
            raise Conflict(f"{mp.group_id}:{mp.artifact_id}:{mp.version} is {ver.status}; files cannot be "
                           "added to it", resource_id=mp.version, resource_type="package-version")
        existing = pk.find_asset(s, ver, mp.filename)
        # Releases are write-once even while Unfinished: of two racing uploads of one file
        # with different bytes exactly one wins. SNAPSHOT versions are mutable.
        if existing is not None and existing.blob.sha256 != info.sha256 and not mp.is_snapshot:
            raise Conflict(f"{mp.filename} already exists in {mp.group_id}:{mp.artifact_id}:{mp.version} with "
                           "different content; release files are immutable", resource_id=mp.filename,
                           resource_type="asset")
        _asset, created = pk.put_asset(s, domain, ver, mp.filename, info, mutable=mp.is_snapshot)
        if pom is not None:
            summary, attrs = pom
            ver.summary = summary
            ver.attributes = {**(ver.attributes or {}), **attrs}
        return created


def _verify_sidecar(dp: DataPlane, mp: MavenPath, body: bytes) -> None:
    text = body.decode("ascii", errors="replace").strip()
    value = text.split()[0].lower() if text else ""
    if len(value) != HEX_LEN[mp.checksum] or any(c not in "0123456789abcdef" for c in value):
        raise ValidationError(f"{mp.filename}.{mp.checksum} does not hold a {HASH_NAMES[mp.checksum]} checksum")
    with dp.arca.db.read() as s:
        repo = s.get(Repository, dp.repo.repository_id)
        pkg = pk.find_package(s, repo, _coords(mp))
        ver = pk.find_version(s, pkg, mp.version) if pkg else None
        asset = pk.find_asset(s, ver, mp.filename) if ver else None
        if asset is None:
            raise NotFound(f"Upload {mp.filename} before its checksum: there is no such file in "
                           f"{mp.group_id}:{mp.artifact_id}:{mp.version}")
        have = getattr(asset.blob, CHECKSUMS[mp.checksum])
    if have != value:
        raise ValidationError(f"{HASH_NAMES[mp.checksum]} mismatch for {mp.filename}: the client sent {value} "
                              f"but the stored file hashes to {have}")


def _publish_listed(dp: DataPlane, mp: MavenPath, body: bytes) -> None:
    """Uploaded maven-metadata.xml: publish the Unfinished versions it lists (artifact level) or
    the snapshot version it describes (version level). Nothing of it is stored."""
    md = parse_metadata(body)
    for name, want, have in (("groupId", mp.group_id, md.group_id), ("artifactId", mp.artifact_id, md.artifact_id),
                             ("version", mp.version, md.version if mp.kind == "snapshot-metadata" else None)):
        if have is not None and want is not None and have != want:
            raise ValidationError(f"maven-metadata.xml names {name} {have!r} but the path says {want!r}")
    listed = [mp.version] if mp.kind == "snapshot-metadata" else md.versions
    if not listed:
        return
    with dp.arca.db.session() as s:
        _domain, repo = _rows(s, dp)
        pkg = pk.find_package(s, repo, _coords(mp))
        if pkg is None:
            return
        for v in s.scalars(select(PackageVersion).where(PackageVersion.package_id == pkg.id,
                                                        PackageVersion.version.in_(listed[:1000]),
                                                        PackageVersion.status == pk.UNFINISHED)):
            pk.set_status(s, pkg, v, pk.PUBLISHED)
