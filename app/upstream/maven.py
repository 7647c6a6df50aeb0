"""Maven through upstreams and Maven external connections (public:maven-central and the other
Maven public:* connections, custom ones).

A file not held by the repository is looked up in the resolution order; behind an external
connection, a request for one file of a version imports it with its pom and jar (each verified
against the remote's `.sha1`) into one EXTERNAL version of the repository holding the
connection; other files of that version (classifiers, .module, .asc) join it on demand. SNAPSHOT
builds are taken by their timestamped names only. Artifact-level maven-metadata.xml merges the
Published versions of every repository in the order with the remote's list, SNAPSHOT metadata
comes from the first place that has the SNAPSHOT, and directory listings merge the same way
(remote documents are retained in the database, so they survive the remote)."""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone

from app.domain.connections import Connection
from app.domain.errors import ArcaError, NotFound, UpstreamUnavailable
from app.domain.views import FileRow
from app.formats.http import DataPlane
from app.formats.maven.listing import version_files
from app.formats.maven.metadata import checksums, parse_metadata, parse_pom, render_artifact, render_snapshot
from app.formats.maven.paths import METADATA, SNAPSHOT, MavenPath, parse_checksum, parse_filename
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
        if mp.is_snapshot and _build_of(mp) is None:
            return None  # `X-SNAPSHOT.jar` changes with every deploy: only timestamped builds are retained
        if chain.held_before(n, mp.version):
            return None  # a version another repository holds is that repository's, file by file
        # One import per version at a time (it takes the pom and jar along); a request for
        # another file of the version that shared it imports that file after it.
        for _attempt in range(2):
            await dp.arca.remotes.flight(("maven", n.repository_id, mp.group_id, mp.artifact_id, mp.version),
                                         lambda: _import(dp, n, mp))
            if await dp.run(resolve.first_file, dp.arca, [n.repository_id], mp.coords, mp.version, mp.filename):
                break
        return True

    async def take(n: Node, _imported: bool) -> FileRow | None:
        return await dp.run(resolve.first_file, dp.arca, [n.repository_id], mp.coords, mp.version, mp.filename)

    return await first_remote(chain.nodes, find, take, chain.missing(
        f"{mp.filename} not found in {mp.group_id}:{mp.artifact_id}:{mp.version} or its upstreams"))


def _build_of(mp: MavenPath) -> str | None:
    """`1.0-20240101.120000-3` for a timestamped SNAPSHOT build file, else None."""
    try:
        fn = parse_filename(mp.artifact_id, mp.version, mp.filename)
    except ArcaError:
        return None
    if fn.timestamp is None:
        return None
    return f"{mp.version[: -len(SNAPSHOT)]}-{fn.timestamp}-{fn.build}"


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
    main = f"{mp.artifact_id}-{_build_of(mp) or mp.version}"
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


async def merged_versions(dp: DataPlane, mp: MavenPath) -> tuple[set[str], datetime | None]:
    """The versions of an artifact through the chain (Published ones of each repository and each
    remote's maven-metadata.xml), and the last change of the local ones."""
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
        raise NotFound(chain.missing(f"{mp.group_id}:{mp.artifact_id} has no published versions here or in its "
                                     "upstreams"))
    return versions, latest


async def metadata_doc(dp: DataPlane, mp: MavenPath) -> tuple[bytes, dict, str]:
    versions, latest = await merged_versions(dp, mp)
    body = render_artifact(mp.group_id, mp.artifact_id, sorted(versions),
                           latest or datetime(2000, 1, 1, tzinfo=timezone.utc))
    return body, checksums(body), '"u' + hashlib.sha256(body).hexdigest()[:24] + '"'


# ---- SNAPSHOT metadata (version level) -----------------------------------------------------------

def _parse_snapshot(version: str):
    def parse(resp) -> dict:
        try:
            md = parse_metadata(resp.content)
        except ArcaError as exc:
            raise BadDocument(f"a SNAPSHOT maven-metadata.xml Arca cannot read ({exc.message})") from None
        if md.version not in (None, version):
            raise BadDocument(f"the maven-metadata.xml of version {md.version}, not {version}")
        return {"xml": resp.content.decode("utf-8", errors="replace")}
    return parse


def _doc(body: bytes) -> tuple[bytes, dict, str]:
    return body, checksums(body), '"s' + hashlib.sha256(body).hexdigest()[:24] + '"'


async def snapshot_metadata_doc(dp: DataPlane, mp: MavenPath) -> tuple[bytes, dict, str]:
    """`{g}/{a}/{v}-SNAPSHOT/maven-metadata.xml` through the chain: the first place that has the
    SNAPSHOT; a copy retained from a remote yields to that remote's own (newer builds), and is
    what is served while the remote is down."""
    chain = await dp.run(resolve.chain, dp.arca, dp.principal, dp.repo, mp.coords,
                         load=lambda s, st: resolve.version_files(s, st, mp.version))
    connected = {n.repository_id for n in chain.nodes if n.external}
    fallback: dict[int, bytes] = {}
    failures = []
    for n in chain.nodes:
        local = chain.local.get(n.repository_id)
        if n.external is None:
            if local is None or local.view is None or mp.version in local.hidden:
                continue
            body = render_snapshot(mp.group_id, mp.artifact_id, mp.version, local.view)
            if mp.version in local.retained and n.repository_id in connected:
                fallback[n.repository_id] = body
                continue
            return _doc(body)
        url = n.connection.url + mp.file_path(METADATA)
        try:
            data = await retained.metadata(dp.arca, repository_id=n.repository_id, connection=n.connection,
                                           coords=mp.coords, display=None, url=url, document=mp.version,
                                           accept="application/xml, text/xml, */*",
                                           parse=_parse_snapshot(mp.version))
        except UpstreamUnavailable as exc:
            failures.append(exc)
            data = None
        if data:
            return _doc(data["xml"].encode())
        if n.repository_id in fallback:
            return _doc(fallback[n.repository_id])
    if failures:
        raise failures[0]
    raise NotFound(chain.missing(f"{mp.group_id}:{mp.artifact_id}:{mp.version} is not here or in its upstreams"))


# ---- directory listings ----------------------------------------------------------------------------

async def listing(dp: DataPlane, segs: list[str]) -> list[str]:
    """The entries of a directory of the layout through the chain: a version directory's files
    (a retained version's together with its remote's), an artifact directory's versions, and the
    groupId parts and artifactIds below a group path."""
    entries: set[str] = set()
    if len(segs) >= 3:
        entries |= set(await _version_dir(dp, MavenPath("file", ".".join(segs[:-2]), segs[-2], segs[-1])))
    if len(segs) >= 2:
        try:
            versions, _ = await merged_versions(dp, MavenPath("metadata", ".".join(segs[:-1]), segs[-1]))
            entries |= {v + "/" for v in versions} | {METADATA}
        except NotFound:
            pass
    group = ".".join(segs)
    for ns, name in await dp.run(resolve.packages_under, dp.arca, dp.principal, dp.repo, "maven", group):
        entries.add((name if ns == group else ns[len(group) + 1:].split(".", 1)[0]) + "/")
    if not entries:
        raise NotFound(f"No such directory {'/'.join(segs)}/ in repository {dp.repo.repository} or its upstreams")
    return sorted(entries)


async def _version_dir(dp: DataPlane, mp: MavenPath) -> list[str]:
    chain = await dp.run(resolve.chain, dp.arca, dp.principal, dp.repo, mp.coords,
                         load=lambda s, st: resolve.version_files(s, st, mp.version))
    connected = {n.repository_id for n in chain.nodes if n.external}
    mine: dict[int, list[str]] = {}
    for n in chain.nodes:
        local = chain.local.get(n.repository_id)
        if n.external is None:
            if local is None or local.view is None or mp.version in local.hidden:
                continue
            names = [name for name, _when in local.view] + ([METADATA] if mp.is_snapshot else [])
            if mp.version in local.retained and n.repository_id in connected:
                mine[n.repository_id] = names  # merged by file with what its remote lists
                continue
            return names
        if chain.held_before(n, mp.version):
            continue
        url = n.connection.url + mp.file_path("")
        try:
            data = await retained.metadata(dp.arca, repository_id=n.repository_id, connection=n.connection,
                                           coords=mp.coords, display=None, url=url, document=f"dir:{mp.version}",
                                           accept="text/html, */*",
                                           parse=lambda resp: {"files": version_files(resp.text, mp.artifact_id,
                                                                                      mp.version)})
        except UpstreamUnavailable:
            data = None
        files = (data or {}).get("files") or []
        if files or n.repository_id in mine:
            return sorted(set(files) | set(mine.get(n.repository_id, [])))
    return []
