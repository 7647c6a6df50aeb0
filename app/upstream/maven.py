"""Maven through upstreams and the `public:maven-central` external connection.

A file not held by the repository is looked up in the resolution order; behind an external
connection, a request for one file of a release version imports its pom and jar (each verified
against the remote's `.sha1`) as one EXTERNAL version of the repository holding the connection.
Artifact-level maven-metadata.xml merges the Published versions of every repository in the
order with the remote's list (retained in the database, so it survives the remote)."""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone

from app.domain.connections import Connection
from app.domain.errors import ArcaError, NotFound, UpstreamUnavailable
from app.domain.views import FileRow
from app.formats.http import DataPlane
from app.formats.maven.metadata import checksums, parse_metadata, parse_pom, render_artifact
from app.formats.maven.paths import MavenPath, parse_checksum, parse_filename
from app.services import publish, resolve
from app.services.resolve import Node
from app.upstream import retained
from app.upstream.retained import BadDocument
from app.upstream.walk import first_remote

POM_LIMIT = 1024 * 1024


async def locate_file(dp: DataPlane, mp: MavenPath) -> FileRow:
    """`mp.filename` through the chain: the first repository holding it, else imported from the
    first external connection that has it."""
    chain = await dp.run(resolve.chain, dp.arca, dp.principal, dp.repo, mp.coords, load=resolve.no_view)
    row = await dp.run(resolve.chain_file, dp.arca, chain, mp.coords, mp.version, mp.filename)
    if row is not None:
        return row

    async def find(n: Node) -> bool | None:
        if mp.is_snapshot:
            return None  # SNAPSHOTs are never taken from a remote
        if chain.held_before(n, mp.version):
            return None  # a version another repository holds is that repository's, file by file
        await dp.arca.remotes.single_flight(("maven", n.repository_id, mp.group_id, mp.artifact_id, mp.version,
                                             mp.filename),
                                            lambda: _import(dp, n, mp))
        return True

    async def take(n: Node, _imported: bool) -> FileRow | None:
        return await dp.run(resolve.first_file, dp.arca, [n.repository_id], mp.coords, mp.version, mp.filename)

    return await first_remote(chain.nodes, find, take, chain.missing(
        f"{mp.filename} not found in {mp.group_id}:{mp.artifact_id}:{mp.version} or its upstreams"))


async def _fetch_sha1(dp: DataPlane, connection: Connection, url: str) -> str | None:
    resp = await dp.arca.remotes.read(connection, url + ".sha1")
    if resp.status_code != 200:
        return None
    try:
        return parse_checksum(resp.content, "sha1", url)
    except ArcaError:
        raise UpstreamUnavailable(f"{url}.sha1 from {connection.name} does not hold a SHA-1 checksum") from None


async def _import(dp: DataPlane, node: Node, mp: MavenPath) -> None:
    arca = dp.arca
    await dp.run(publish.check_import_open, arca, node.repository_id, mp.coords, mp.version)
    base = node.connection.url
    main = f"{mp.artifact_id}-{mp.version}"
    wanted = [mp.filename] + [f for f in (f"{main}.pom", f"{main}.jar") if f != mp.filename]
    stored = []
    for i, filename in enumerate(wanted):
        try:
            parse_filename(mp.artifact_id, mp.version, filename)
        except ArcaError:
            if i == 0:
                raise NotFound(f"{filename} is not a file of {mp.group_id}:{mp.artifact_id}:{mp.version}") from None
            continue
        if await dp.run(resolve.first_file, arca, [node.repository_id], mp.coords, mp.version, filename):
            continue
        url = base + mp.file_path(filename)
        sha1 = await _fetch_sha1(dp, node.connection, url)
        if sha1 is None:
            if i == 0:
                # No checksum: nothing to verify against, so nothing is taken (also a missing file).
                raise NotFound(f"{filename} (with its .sha1) is not available from {node.external}")
            continue
        info = await arca.remotes.fetch_to_blob(arca.blobs, node.connection, url, {"sha1": sha1},
                                                limit=arca.settings.max_upload_bytes)
        stored.append((filename, info))
    summary, attrs = None, {}
    for filename, info in stored:
        if filename == f"{main}.pom" and info.size <= POM_LIMIT:
            summary, attrs = parse_pom(await dp.run(arca.blobs.read_bytes, info.sha256))
    files = [publish.File(mp.coords, mp.version, filename, info, summary=summary, version_attributes=attrs)
             for filename, info in stored]
    await dp.run(publish.import_external, arca, node.repository_id, node.external, mp.coords, mp.version, files)


# ---- merged maven-metadata.xml -----------------------------------------------------------------

def _parse_remote_metadata(resp) -> dict:
    try:
        return {"versions": parse_metadata(resp.content).versions}
    except ArcaError as exc:
        raise BadDocument(f"a maven-metadata.xml Arca cannot read ({exc.message})") from None


async def metadata_doc(dp: DataPlane, mp: MavenPath) -> tuple[bytes, dict, str]:
    chain = await dp.run(resolve.chain, dp.arca, dp.principal, dp.repo, mp.coords,
                         load=resolve.published_version_times)
    versions: set[str] = set()
    latest = None
    for local in chain.local.values():
        # lastUpdated from the versions themselves: stable while they are (checksums match)
        for v, when in local.view or ():
            if v in local.hidden:
                continue
            versions.add(v)
            latest = max(latest, when) if latest else when
    failures = []
    for n in chain.nodes:
        if not n.external:
            continue
        url = n.connection.url + mp.metadata_path()
        try:
            data = await retained.metadata(dp.arca, repository_id=n.repository_id, connection=n.connection,
                                           coords=mp.coords, display=None, url=url,
                                           accept="application/xml, text/xml, */*", parse=_parse_remote_metadata)
        except UpstreamUnavailable as exc:
            failures.append(exc)
            continue
        versions |= set((data or {}).get("versions") or [])
    if not versions:
        if failures:
            raise failures[0]
        raise NotFound(f"{mp.group_id}:{mp.artifact_id} has no published versions here or in its upstreams")
    body = render_artifact(mp.group_id, mp.artifact_id, sorted(versions),
                           latest or datetime(2000, 1, 1, tzinfo=timezone.utc))
    return body, checksums(body), '"u' + hashlib.sha256(body).hexdigest()[:24] + '"'
