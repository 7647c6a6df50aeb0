"""Maven through upstreams and the `public:maven-central` external connection.

A file not held by the repository is looked up in the resolution order; behind an external
connection, a request for one file of a release version imports its pom and jar (each verified
against the remote's `.sha1`) as one EXTERNAL version of the repository holding the connection.
Artifact-level maven-metadata.xml merges the Published versions of every repository in the
order with the remote's list (retained in the database, so it survives the remote)."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from datetime import datetime, timezone

from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from app.db.models import Domain, Package, PackageVersion, Repository
from app.domain.errors import AccessDenied, ArcaError, NotFound, UpstreamUnavailable
from app.formats.maven_metadata import parse_metadata, render_artifact
from app.formats.maven_paths import CHECKSUMS, parse_filename
from app.services import authz
from app.services import packages as pk
from app.services.package_groups import check_upstream_allowed
from app.upstream import chain, remote

CONNECTIONS = ("public:maven-central",)


def uses_upstreams(dp) -> bool:
    with dp.arca.db.read() as s:
        return chain.has_upstreams(dp.arca, s, dp.repo.domain_id, dp.repo.repository_id)


def _nodes(dp, mp):
    with dp.arca.db.read() as s:
        if not dp.principal.is_admin:
            dp.require_sync(s, authz.READ)
        return chain.order(dp.arca, s, dp.repo.domain_id, dp.repo.repository_id, "maven", mp.group_id,
                           mp.artifact_id, supported=CONNECTIONS)


def _find_local(dp, nodes, mp, filename=None):
    from app.formats.maven import FILE_QUERY
    with dp.arca.db.read() as s:
        for n in nodes:
            if n.external:
                continue
            row = s.execute(FILE_QUERY, {"repo": n.repository_id, "group": mp.group_id, "artifact": mp.artifact_id,
                                         "version": mp.version, "file": filename or mp.filename}).first()
            if row is not None and row.status in pk.DOWNLOADABLE:
                return row
    return None


def _path(mp, filename: str) -> str:
    return f"{mp.group_id.replace('.', '/')}/{mp.artifact_id}/{mp.version}/{filename}"


async def locate_file(dp, mp):
    """The blob row (sha256, sha1, md5, sha512, size, status) of `mp.filename` through the chain."""
    nodes = await run_in_threadpool(_nodes, dp, mp)
    row = await run_in_threadpool(_find_local, dp, nodes, mp)
    if row is not None:
        return row
    failures = []
    for n in nodes:
        if not n.external or mp.is_snapshot:
            continue
        try:
            await remote.single_flight(dp.arca, ("maven", n.repository_id, mp.group_id, mp.artifact_id, mp.version),
                                       lambda n=n: _import(dp, n, mp))
        except UpstreamUnavailable as exc:
            failures.append(exc)
            continue
        except NotFound:
            continue
        row = await run_in_threadpool(_find_local, dp, [replace(n, external=None)], mp)
        if row is not None:
            return row
    if failures:
        raise failures[0]
    raise NotFound(f"{mp.filename} not found in {mp.group_id}:{mp.artifact_id}:{mp.version} or its upstreams")


async def _fetch_sha1(arca, connection: str, url: str) -> str | None:
    resp = await remote.remotes(arca).request(arca, connection, url + ".sha1")
    try:
        await resp.aread()
    finally:
        await resp.aclose()
    if resp.status_code != 200:
        return None
    value = resp.text.strip().split()[0].lower() if resp.text.strip() else ""
    if len(value) != 40 or any(c not in "0123456789abcdef" for c in value):
        raise UpstreamUnavailable(f"{url}.sha1 from {connection} does not hold a SHA-1 checksum")
    return value


async def _import(dp, node, mp) -> None:
    arca = dp.arca
    await run_in_threadpool(_check_open, arca, node, mp)
    base = remote.base_url(arca, node.external)
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
        if await run_in_threadpool(_find_local, dp, [replace(node, external=None)], mp, filename):
            continue
        url = base + _path(mp, filename)
        sha1 = await _fetch_sha1(arca, node.external, url)
        if sha1 is None:
            if i == 0:
                # No checksum: nothing to verify against, so nothing is taken (also a missing file).
                raise NotFound(f"{filename} (with its .sha1) is not available from {node.external}")
            continue
        info = await remote.fetch_to_blob(arca, node.external, url, {"sha1": sha1},
                                          limit=arca.settings.max_upload_bytes)
        stored.append((filename, info))
    pom = None
    for filename, info in stored:
        if filename == f"{main}.pom" and info.size <= 1024 * 1024:
            from app.formats.maven_metadata import parse_pom
            try:
                pom = parse_pom(await run_in_threadpool(arca.blobs.read_bytes, info.sha256))
            except ArcaError:
                pom = None
    if stored:
        await run_in_threadpool(_store, arca, node, mp, stored, pom)


def _check_open(arca, node, mp) -> None:
    with arca.db.read() as s:
        status = s.scalar(select(PackageVersion.status).join(Package, Package.id == PackageVersion.package_id)
                          .where(Package.repository_id == node.repository_id, Package.format == "maven",
                                 Package.namespace == mp.group_id, Package.name == mp.artifact_id,
                                 PackageVersion.version == mp.version))
        if status is not None and status not in pk.DOWNLOADABLE:
            raise NotFound(f"{mp.group_id}:{mp.artifact_id}:{mp.version} is {status} in repository {node.repository}")


def _store(arca, node, mp, stored, pom) -> None:
    with arca.db.session() as s:
        repo = s.get(Repository, node.repository_id)
        domain = s.get(Domain, repo.domain_id)
        try:
            check_upstream_allowed(s, domain, repo, "maven", mp.group_id, mp.artifact_id, external=True)
        except AccessDenied as exc:
            raise NotFound(exc.message) from None
        pkg = pk.get_or_create_package(s, repo, pk.Coordinates("maven", mp.group_id, mp.artifact_id))
        pk.bump(s, pkg)
        summary, attrs = pom if pom else (None, {})
        ver, _ = pk.get_or_create_version(s, pkg, mp.version, status=pk.PUBLISHED, origin_type="EXTERNAL",
                                          entry_point=node.external, summary=summary, attributes=attrs)
        if ver.status not in pk.DOWNLOADABLE:
            raise NotFound(f"{mp.group_id}:{mp.artifact_id}:{mp.version} is {ver.status} in {repo.name}")
        for filename, info in stored:
            pk.put_asset(s, domain, ver, filename, info)


# ---- merged maven-metadata.xml -----------------------------------------------------------------

def _local_versions(dp, mp):
    with dp.arca.db.read() as s:
        if not dp.principal.is_admin:
            dp.require_sync(s, authz.READ)
        nodes = chain.order(dp.arca, s, dp.repo.domain_id, dp.repo.repository_id, "maven", mp.group_id,
                            mp.artifact_id, supported=CONNECTIONS)
        versions: set[str] = set()
        latest = None
        for n in nodes:
            if n.external:
                continue
            pid = s.scalar(select(Package.id).where(
                Package.repository_id == n.repository_id, Package.format == "maven",
                Package.namespace == mp.group_id, Package.name == mp.artifact_id))
            if pid is None:
                continue
            # lastUpdated from the versions themselves: stable while they are (checksums match)
            for v, when in s.execute(select(PackageVersion.version, PackageVersion.updated_at).where(
                    PackageVersion.package_id == pid, PackageVersion.status == pk.PUBLISHED)):
                versions.add(v)
                latest = max(latest, when) if latest else when
        return nodes, versions, latest


def _parse_remote_metadata(resp) -> dict:
    try:
        return {"versions": parse_metadata(resp.content).versions}
    except ArcaError:
        return {"versions": []}


async def metadata_doc(dp, mp) -> tuple[bytes, dict, str]:
    nodes, versions, latest = await run_in_threadpool(_local_versions, dp, mp)
    failures = []
    for n in nodes:
        if not n.external:
            continue
        url = remote.base_url(dp.arca, n.external) + f"{mp.group_id.replace('.', '/')}/{mp.artifact_id}/maven-metadata.xml"
        try:
            data = await remote.metadata(dp.arca, repository_id=n.repository_id, connection=n.external,
                                         fmt="maven", namespace=mp.group_id, name=mp.artifact_id, display=None,
                                         url=url, accept="application/xml, text/xml, */*",
                                         parse=_parse_remote_metadata)
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
    sums = {alg: hashlib.new(alg, body).hexdigest() for alg in CHECKSUMS}
    return body, sums, '"u' + hashlib.sha256(body).hexdigest()[:24] + '"'
