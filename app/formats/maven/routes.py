"""Maven 2 layout: GET/HEAD/PUT of artifacts, checksum sidecars and maven-metadata.xml.

Rows: Package(namespace=groupId, name=artifactId); PackageVersion = the version directory
(`1.0.0`, or `1.0.1-SNAPSHOT` whose timestamped builds are its assets); Asset = file name.
A PUT file makes its version `Unfinished`; maven-metadata.xml that lists the version (what
`mvn deploy` sends last) or UpdatePackageVersionsStatus publishes it. maven-metadata.xml is
always rendered from Published rows; uploaded copies only trigger publishing."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from datetime import datetime, timezone
from typing import AsyncIterator

from starlette.responses import Response

from app.domain.errors import NotFound, ValidationError
from app.domain.status import PUBLISHED, UNFINISHED, UNLISTED
from app.domain.views import FileRow
from app.formats.base import Format
from app.formats.http import BodyReader, DataPlane, blob_response, check_length, not_modified, reads_through
from app.formats.maven.metadata import MAX_DOCUMENT, check_pom, checksums, parse_metadata, render_artifact, \
    render_snapshot
from app.formats.maven.listing import render_listing
from app.formats.maven.paths import CHECKSUMS, NON_EMPTY, NotInLayout, MavenPath, check_build, \
    parse_checksum, parse_directory, parse_filename, parse_path
from app.services import publish, resolve
from app.upstream import maven as upstream

SMALL_FILE = 256 * 1024  # served from memory; larger files go out through FileResponse/streaming
MEDIA_TYPES = {"jar": "application/java-archive", "pom": "text/xml", "xml": "text/xml", "war": "application/java-archive"}
# Releases are write-once even while Unfinished: of two racing uploads of one file with
# different bytes exactly one wins. SNAPSHOT versions are mutable (each deploy adds a build).
# Parallel deploys (Maven 3.9/4) may send a checksum, or maven-metadata.xml, before its file.
RELEASE = publish.Rules(initial_status=UNFINISHED, open_statuses=(UNFINISHED, PUBLISHED, UNLISTED),
                        held_uploads=True)
SNAPSHOT = replace(RELEASE, replace=publish.ALWAYS)


async def handle(dp: DataPlane) -> Response:
    if dp.method not in ("GET", "HEAD", "PUT"):
        return Response(f"{dp.method} is not supported on a Maven repository; use GET, HEAD or PUT\n",
                        status_code=405, headers={"Allow": "GET, HEAD, PUT"}, media_type="text/plain")
    if dp.method == "PUT":
        return await _put(dp, parse_path(dp.raw_rest))
    if dp.raw_rest.endswith("/"):
        return await _get_listing(dp)
    try:
        mp = parse_path(dp.raw_rest)
    except NotInLayout as exc:
        raise NotFound(exc.message) from None  # a client probing for something this layout cannot hold
    if mp.kind == "file":
        return await _get_file(dp, mp)
    return await _get_metadata(dp, mp)


MAVEN = Format("maven", handle)


# ---- downloads -----------------------------------------------------------------------------------

def _lookup_file(dp: DataPlane, mp: MavenPath, with_body: bool) -> tuple[FileRow | None, bytes | None]:
    """The repository's own downloadable file, and its bytes when small (one thread hop instead of
    FileResponse's stat/open/read/close)."""
    row = resolve.readable_file(dp.arca, dp.principal, dp.repo, mp.coords, mp.version, mp.filename)
    body = None
    if row is not None and with_body and row.size <= SMALL_FILE:
        body = dp.arca.blobs.read_bytes(row.sha256)
    return row, body


async def _get_file(dp: DataPlane, mp: MavenPath) -> Response:
    wants_body = dp.method == "GET" and not mp.checksum and not dp.request.headers.get("range")
    row, body = await dp.run(_lookup_file, dp, mp, wants_body)
    if row is None:
        if not await reads_through(dp):
            raise NotFound(f"{mp.filename} not found in {mp.group_id}:{mp.artifact_id}:{mp.version}")
        row = await upstream.locate_file(dp, mp)
    etag = f'"{row.sha256}"'
    if mp.checksum:
        return _text_response(dp, getattr(row, CHECKSUMS[mp.checksum]), f'"{mp.checksum}-{row.sha256}"')
    if not_modified(dp.request, etag):
        return Response(status_code=304, headers={"ETag": etag})
    ext = mp.filename.rsplit(".", 1)[-1]
    headers = {"ETag": etag, "X-Checksum-Sha1": row.sha1}
    media = MEDIA_TYPES.get(ext, "application/octet-stream")
    if body is not None:
        return Response(body, media_type=media, headers=headers)
    return await dp.run(blob_response, dp, row.sha256, media_type=media, headers=headers, filename=mp.filename,
                        size=row.size)


def _text_response(dp: DataPlane, text: str, etag: str) -> Response:
    if not_modified(dp.request, etag):
        return Response(status_code=304, headers={"ETag": etag})
    return Response(text, media_type="text/plain", headers={"ETag": etag})


def _metadata(dp: DataPlane, mp: MavenPath) -> tuple[bytes, dict, str]:
    """(body, {alg: hex}, etag) of maven-metadata.xml rendered from this repository's rows, cached
    per package revision."""
    if mp.kind == "metadata":
        def load(s, state):
            return resolve.published_versions(s, state), state.updated_at

        def render(view) -> tuple[bytes, dict]:
            versions, updated = view
            if not versions:
                raise NotFound(f"{mp.group_id}:{mp.artifact_id} has no published versions")
            body = render_artifact(mp.group_id, mp.artifact_id, versions, updated)
            return body, checksums(body)
    else:
        # Unlisted snapshots keep their version-level metadata: it is how an exact `X-SNAPSHOT`
        # dependency is resolved.
        def load(s, state):
            return resolve.version_files(s, state, mp.version)

        def render(files) -> tuple[bytes, dict]:
            if files is None:
                raise NotFound(f"{mp.group_id}:{mp.artifact_id}:{mp.version} is not published")
            body = render_snapshot(mp.group_id, mp.artifact_id, mp.version, files)
            return body, checksums(body)

    state, (body, sums) = resolve.document(
        dp.arca, dp.principal, dp.repo, mp.coords, cache=dp.arca.caches.maven_metadata, variant=mp.version,
        load=load, render=render,
        missing=f"No Maven package {mp.group_id}:{mp.artifact_id} in repository {dp.repo.repository}")
    return body, sums, f'"m{state.id}.{state.revision}"'


async def _get_listing(dp: DataPlane) -> Response:
    """A directory: the HTML listing Maven Central and Nexus serve (merged through upstreams)."""
    try:
        segs = parse_directory(dp.raw_rest)
    except NotInLayout as exc:
        raise NotFound(exc.message) from None
    body = render_listing("/" + "/".join(segs) + "/", await upstream.listing(dp, segs))
    etag = '"d' + hashlib.sha256(body).hexdigest()[:24] + '"'
    if not_modified(dp.request, etag):
        return Response(status_code=304, headers={"ETag": etag})
    return Response(body, media_type="text/html", headers={"ETag": etag, "Cache-Control": "no-cache"})


async def _get_metadata(dp: DataPlane, mp: MavenPath) -> Response:
    through = await reads_through(dp)
    if mp.kind == "metadata" and through:
        body, sums, etag = await upstream.metadata_doc(dp, mp)  # merged with upstreams and the remote
    elif mp.kind == "snapshot-metadata" and through:
        body, sums, etag = await upstream.snapshot_metadata_doc(dp, mp)
    else:
        body, sums, etag = await dp.run(_metadata, dp, mp)
    if mp.checksum:
        return _text_response(dp, sums[mp.checksum], etag[:-1] + f'.{mp.checksum}"')
    if not_modified(dp.request, etag):
        return Response(status_code=304, headers={"ETag": etag})
    return Response(body, media_type="text/xml", headers={"ETag": etag, "Cache-Control": "no-cache"})


# ---- uploads -------------------------------------------------------------------------------------

async def _put(dp: DataPlane, mp: MavenPath) -> Response:
    rules = SNAPSHOT if mp.is_snapshot else RELEASE
    name = mp.filename if mp.kind == "file" and not mp.checksum else None
    await dp.run(publish.preflight, dp.arca, dp.principal, dp.repo, mp.coords, rules=rules,
                 version=mp.version if mp.kind == "file" else None, name=name)
    body = BodyReader(dp.request)
    if mp.kind != "file":
        data = await body.read(MAX_DOCUMENT if not mp.checksum else 1024, "maven-metadata.xml")
        if not mp.checksum:  # metadata is rendered, so are its checksums: those uploads change nothing
            await dp.run(_publish_listed, dp, mp, data)
        return Response(status_code=200)
    if mp.checksum:
        data = await body.read(1024, "A checksum file")
        value = parse_checksum(data, mp.checksum, mp.filename)
        held = await dp.run(publish.check_checksum, dp.arca, dp.principal, dp.repo, mp.coords, mp.version,
                            mp.filename, CHECKSUMS[mp.checksum], value)
        return Response(status_code=202 if held else 200)
    fn = parse_filename(mp.artifact_id, mp.version, mp.filename)
    check_build(fn, mp.filename, datetime.now(timezone.utc))
    summary, attrs = None, None
    if fn.is_main_pom:
        # A POM is checked before anything of it is kept: its own coordinates must be the path's.
        data = await body.read(MAX_DOCUMENT, f"The POM {mp.filename}")
        if not data:
            raise ValidationError(f"{mp.filename} is empty")
        summary, attrs = check_pom(data, mp.group_id, mp.artifact_id, mp.version)
        info = await dp.run(dp.arca.blobs.put_bytes, data)
    else:
        limit = dp.arca.settings.max_upload_bytes
        check_length(dp.request, limit, mp.filename)
        chunks = _non_empty(body.chunks(), mp.filename) if fn.extension in NON_EMPTY else body.chunks()
        info = await dp.arca.blobs.put_stream(chunks, limit=limit)
    added = await dp.run(publish.add_file, dp.arca, dp.principal, dp.repo,
                         publish.File(mp.coords, mp.version, mp.filename, info, summary=summary,
                                      version_attributes=attrs), rules)
    return Response(status_code=201 if added.created else 200)


async def _non_empty(chunks: AsyncIterator[bytes], filename: str) -> AsyncIterator[bytes]:
    """The body, refused at its end when it was empty (the blob store then keeps nothing)."""
    size = 0
    async for chunk in chunks:
        size += len(chunk)
        yield chunk
    if size == 0:
        raise ValidationError(f"{filename} is empty")


def _publish_listed(dp: DataPlane, mp: MavenPath, body: bytes) -> None:
    """Uploaded maven-metadata.xml: publish the Unfinished versions it lists (artifact level) or
    the snapshot version it describes (version level). Nothing of it is stored."""
    md = parse_metadata(body)
    for name, want, have in (("groupId", mp.group_id, md.group_id), ("artifactId", mp.artifact_id, md.artifact_id),
                             ("version", mp.version, md.version if mp.kind == "snapshot-metadata" else None)):
        if have is not None and want is not None and have != want:
            raise ValidationError(f"maven-metadata.xml names {name} {have!r} but the path says {want!r}")
    listed = [mp.version] if mp.kind == "snapshot-metadata" else md.versions
    # The version the deploy is about may have no file here yet (parallel PUTs): it is published
    # when its first file comes.
    newest = [mp.version] if mp.kind == "snapshot-metadata" else md.newest
    publish.publish_listed(dp.arca, dp.principal, dp.repo, mp.coords, listed, hold=newest)
