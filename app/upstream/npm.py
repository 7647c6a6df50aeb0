"""npm through upstreams and the `public:npmjs` external connection.

The packument of a repository with upstreams or a connection merges versions (first place in
the resolution order that has a version wins; dist-tags likewise per tag), with every
`dist.tarball` pointing at this repository. A tarball held nowhere in the chain is fetched from
the remote's `dist.tarball` (only under the connection's URL), verified against `dist.integrity`
(or `dist.shasum`), and stored as an EXTERNAL version in the repository holding the connection."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from urllib.parse import quote

from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from app.db.models import Asset, Blob, Domain, Package, PackageVersion, Repository
from app.domain.errors import AccessDenied, NotFound, UpstreamUnavailable
from app.formats import npm_names
from app.formats import npm_packument as pm
from app.services import authz
from app.services import packages as pk
from app.services.package_groups import check_upstream_allowed
from app.upstream import chain, remote

CONNECTIONS = ("public:npmjs",)


def uses_upstreams(dp) -> bool:
    with dp.arca.db.read() as s:
        return chain.has_upstreams(dp.arca, s, dp.repo.domain_id, dp.repo.repository_id)


def _expected(dist: dict) -> dict | None:
    integ = dist.get("integrity")
    if isinstance(integ, str):
        for part in integ.split():
            algo, _, b64 = part.partition("-")
            if algo == "sha512":
                try:
                    return {"sha512": base64.b64decode(b64, validate=True).hex()}
                except (binascii.Error, ValueError):
                    return None
    shasum = dist.get("shasum")
    if isinstance(shasum, str) and len(shasum) == 40:
        return {"sha1": shasum.lower()}
    return None


def parse_packument(resp, name: str, prefixes: list[str]) -> dict:
    doc = json.loads(resp.content)
    versions = {}
    for v, m in (doc.get("versions") or {}).items():
        if not isinstance(m, dict) or not npm_names.is_semver(v):
            continue
        dist = m.get("dist") if isinstance(m.get("dist"), dict) else {}
        url = dist.get("tarball")
        if not isinstance(url, str) or not remote.is_allowed(url, prefixes) or _expected(dist) is None:
            continue
        versions[v] = {k: val for k, val in m.items() if k not in ("readme", "_attachments")}
    tags = {t: v for t, v in (doc.get("dist-tags") or {}).items() if isinstance(v, str) and v in versions}
    times = {v: t for v, t in (doc.get("time") or {}).items() if v in versions and isinstance(t, str)}
    return {"name": name, "dist-tags": tags, "versions": versions, "time": times}


async def remote_packument(dp, node: chain.Node, scope: str, bare: str) -> dict | None:
    name = npm_names.full_name(scope, bare)
    base = remote.base_url(dp.arca, node.external)
    prefixes = remote.allowed_prefixes(dp.arca, node.external)
    return await remote.metadata(
        dp.arca, repository_id=node.repository_id, connection=node.external, fmt="npm", namespace=scope,
        name=bare, display=name, url=base + quote(name, safe="@"), accept="application/json",
        parse=lambda resp: parse_packument(resp, name, prefixes))


# ---- the merged packument ----------------------------------------------------------------------

def _plan(dp, scope: str, bare: str):
    with dp.arca.db.read() as s:
        if not dp.principal.is_admin:
            dp.require_sync(s, authz.READ)
        nodes = chain.order(dp.arca, s, dp.repo.domain_id, dp.repo.repository_id, "npm", scope, bare,
                            supported=CONNECTIONS)
        local = {}
        for n in nodes:
            if n.external or n.repository_id in local:
                continue
            pkg = s.scalar(select(Package).where(Package.repository_id == n.repository_id, Package.format == "npm",
                                                 Package.namespace == scope, Package.name == bare))
            if pkg is None:
                local[n.repository_id] = (None, set())
                continue
            held = set(s.scalars(select(PackageVersion.version).where(PackageVersion.package_id == pkg.id)))
            local[n.repository_id] = (pm.load_view(s, pkg), held)
        return nodes, local


async def merged(dp, scope: str, bare: str, kind: str) -> pm.Rendered:
    name = npm_names.full_name(scope, bare)
    base_url = dp.base_url
    nodes, local = await run_in_threadpool(_plan, dp, scope, bare)
    versions: dict[str, dict] = {}
    times: dict[str, str] = {}
    tags: dict[str, str] = {}
    top: dict = {}
    failures = []
    for n in nodes:
        if n.external is None:
            view = local[n.repository_id][0]
            if view is None:
                continue
            for r in view.versions:
                if r.version not in versions:
                    versions[r.version] = pm.version_doc(name, r, base_url)
                    times[r.version] = pm.iso(r.published)
            for t, v in view.tags().items():
                tags.setdefault(t, v)
            continue
        try:
            doc = await remote_packument(dp, n, scope, bare)
        except UpstreamUnavailable as exc:
            failures.append(exc.message)
            continue
        if not doc:
            continue
        held = local.get(n.repository_id, (None, set()))[1]
        for v, m in doc["versions"].items():
            if v in versions or v in held:
                continue
            m = dict(m)
            m["dist"] = {**m["dist"], "tarball": base_url + pm.tarball_path(name, v)}
            versions[v] = m
            if v in doc["time"]:
                times[v] = doc["time"][v]
        for t, v in doc["dist-tags"].items():
            tags.setdefault(t, v)
    if not versions:
        if failures:
            raise UpstreamUnavailable(failures[0])
        raise NotFound(f"{name} is not in this repository or its upstreams")
    order = sorted(versions, key=npm_names.semver_key)
    versions = {v: versions[v] for v in order}
    tags = pm.effective_tags({t: v for t, v in tags.items() if v in versions}, order)
    if kind == "corgi":
        out = {"name": name, "dist-tags": tags,
               "versions": {v: {k: m[k] for k in pm.CORGI_VERSION_FIELDS if k in m} for v, m in versions.items()}}
        media = pm.CORGI
    else:
        latest = versions.get(tags.get("latest"), {})
        top = {k: latest[k] for k in pm.TOP_FIELDS if k in latest}
        out = {"_id": name, "name": name, **top, "dist-tags": tags, "versions": versions, "time": times}
        media = "application/json"
    body = json.dumps(out, separators=(",", ":"), ensure_ascii=False).encode()
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    return pm.Rendered(0, body, etag, media)


# ---- tarballs ----------------------------------------------------------------------------------

def _find_local(dp, nodes, scope, bare, version, filename):
    with dp.arca.db.read() as s:
        for n in nodes:
            if n.external:
                continue
            row = s.execute(
                select(Blob.sha256, Blob.size)
                .join(Asset, Asset.blob_id == Blob.id)
                .join(PackageVersion, PackageVersion.id == Asset.package_version_id)
                .join(Package, Package.id == PackageVersion.package_id)
                .where(Package.repository_id == n.repository_id, Package.format == "npm",
                       Package.namespace == scope, Package.name == bare, PackageVersion.version == version,
                       PackageVersion.status.in_(pk.DOWNLOADABLE), Asset.name == filename)).first()
            if row is not None:
                return row[0], row[1]
    return None


def _nodes(dp, scope, bare):
    with dp.arca.db.read() as s:
        if not dp.principal.is_admin:
            dp.require_sync(s, authz.READ)
        return chain.order(dp.arca, s, dp.repo.domain_id, dp.repo.repository_id, "npm", scope, bare,
                           supported=CONNECTIONS)


async def locate_tarball(dp, scope: str, bare: str, version: str, filename: str) -> tuple[str, int]:
    nodes = await run_in_threadpool(_nodes, dp, scope, bare)
    hit = await run_in_threadpool(_find_local, dp, nodes, scope, bare, version, filename)
    if hit:
        return hit
    failures = []
    for n in nodes:
        if not n.external:
            continue
        try:
            doc = await remote_packument(dp, n, scope, bare)
        except UpstreamUnavailable as exc:
            failures.append(exc)
            continue
        manifest = (doc or {}).get("versions", {}).get(version)
        if manifest is None:
            continue
        return await remote.single_flight(dp.arca, ("npm-tarball", n.repository_id, scope, bare, version),
                                          lambda n=n, m=manifest: _import(dp, n, scope, bare, version, filename, m))
    if failures:
        raise failures[0]
    raise NotFound(f"{filename} is not in this repository or its upstreams")


async def _import(dp, node, scope, bare, version, filename, manifest) -> tuple[str, int]:
    from dataclasses import replace
    hit = await run_in_threadpool(_find_local, dp, [replace(node, external=None)], scope, bare, version, filename)
    if hit:
        return hit
    await run_in_threadpool(_check_open, dp.arca, node, scope, bare, version)
    info = await remote.fetch_to_blob(dp.arca, node.external, manifest["dist"]["tarball"],
                                      _expected(manifest["dist"]), limit=dp.arca.settings.max_upload_bytes)
    await run_in_threadpool(_store, dp.arca, node, scope, bare, version, filename, manifest, info)
    return info.sha256, info.size


def _check_open(arca, node, scope, bare, version) -> None:
    with arca.db.read() as s:
        status = s.scalar(select(PackageVersion.status).join(Package, Package.id == PackageVersion.package_id)
                          .where(Package.repository_id == node.repository_id, Package.format == "npm",
                                 Package.namespace == scope, Package.name == bare,
                                 PackageVersion.version == version))
        if status is not None and status not in pk.DOWNLOADABLE:
            raise NotFound(f"Version {version} is {status} in repository {node.repository}")


def _store(arca, node, scope, bare, version, filename, manifest, info) -> None:
    from app.formats.npm_store import version_attributes
    name = npm_names.full_name(scope, bare)
    with arca.db.session() as s:
        repo = s.get(Repository, node.repository_id)
        domain = s.get(Domain, repo.domain_id)
        try:
            check_upstream_allowed(s, domain, repo, "npm", scope, bare, external=True)
        except AccessDenied as exc:
            raise NotFound(exc.message) from None
        pkg = pk.get_or_create_package(s, repo, pk.Coordinates("npm", scope, bare), name)
        pk.bump(s, pkg)
        desc = manifest.get("description") if isinstance(manifest.get("description"), str) else None
        ver, _ = pk.get_or_create_version(s, pkg, version, status=pk.PUBLISHED, origin_type="EXTERNAL",
                                          entry_point=node.external, summary=desc,
                                          attributes=version_attributes(name, manifest, ""))
        if ver.status not in pk.DOWNLOADABLE:
            raise NotFound(f"Version {version} of {name} is {ver.status} in repository {repo.name}")
        pk.put_asset(s, domain, ver, filename, info)
