"""PublishPackageVersion (generic packages, one streamed asset per call) and CopyPackageVersions."""

from __future__ import annotations

import re
from typing import AsyncIterator

from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from app.api.context import OpContext
from app.api.ops_packages import coords
from app.db.models import Asset, Blob, DistTag, Domain, Package, PackageVersion, Repository, RepositoryUpstream
from app.domain.errors import Conflict, NotFound, QuotaExceeded, ValidationError
from app.domain.names import check_coordinate
from app.services import authz, domains, package_groups, packages as pk
from app.storage.base import BlobInfo

SHA256_RE = re.compile(r"[0-9a-f]{64}")
MAX_ASSETS_PER_VERSION = 150
COPYABLE = (pk.PUBLISHED, pk.UNLISTED, pk.ARCHIVED)


# ---- PublishPackageVersion -----------------------------------------------------------------------

def _asset_name(value: str | None) -> str:
    if not value or len(value) > 255 or any(not c.isprintable() for c in value):
        raise ValidationError(f"Invalid asset name {value!r}: 1-255 characters, no control characters")
    return value


def _publish_target(ctx: OpContext):
    """Validate the request and check everything that does not need the bytes, so a refused upload
    is refused before anything is stored."""
    c = coords(ctx)
    if c.format != "generic":
        raise ValidationError(f"PublishPackageVersion supports only the generic format, not {c.format}")
    version = check_coordinate("version", ctx.q("version", required=True))
    asset = _asset_name(ctx.q("asset", required=True))
    sha256 = (ctx.headers.get("x-amz-content-sha256") or "").lower()
    if not SHA256_RE.fullmatch(sha256):
        raise ValidationError("assetSHA256 (header x-amz-content-sha256) must be the hex SHA-256 of the asset")
    unfinished = (ctx.q("unfinished") or "").lower() == "true"
    with ctx.arca.db.read() as s:
        d, r = _repo(ctx, s, "codeartifact:PublishPackageVersion")
        package_groups.check_publish_allowed(s, d, r, c.format, c.namespace, c.name)
        _check_version_open(s, r, c, version, asset, sha256)
    return c, version, asset, sha256, unfinished


def _repo(ctx: OpContext, s, action: str, key: str = "repository") -> tuple[Domain, Repository]:
    domains.check_owner(ctx.arca, ctx.q("domain-owner"))
    d = domains.get_domain(s, ctx.q("domain", required=True))
    r = domains.get_repository(s, d, ctx.q(key, required=True))
    authz.require(ctx.arca, s, ctx.principal, action, d, r)
    return d, r


def _check_version_open(s, r: Repository, c: pk.Coordinates, version: str, asset: str, sha256: str) -> None:
    """Assets can be added only while a version is Unfinished; re-sending an identical asset is fine."""
    p = pk.find_package(s, r, c)
    v = pk.find_version(s, p, version) if p is not None else None
    if v is None or v.status == pk.UNFINISHED:
        if v is not None and pk.find_asset(s, v, asset) is None and s.scalar(
                select(Asset.id).where(Asset.package_version_id == v.id).offset(MAX_ASSETS_PER_VERSION - 1)
                .limit(1)) is not None:
            raise QuotaExceeded(f"A package version can have at most {MAX_ASSETS_PER_VERSION} assets",
                                resource_id=version, resource_type="package-version")
        return
    a = pk.find_asset(s, v, asset)
    if a is not None and a.blob.sha256 == sha256:
        return
    raise Conflict(f"Version {version} of {c.label()} is {v.status}; assets can be added only to an "
                   "Unfinished version", resource_id=version, resource_type="package-version")


async def publish_package_version(ctx: OpContext, body: AsyncIterator[bytes]) -> dict:
    c, version, asset, sha256, unfinished = await run_in_threadpool(_publish_target, ctx)
    info = await ctx.arca.blobs.put_stream(body, limit=ctx.arca.settings.max_upload_bytes,
                                           expected={"sha256": sha256})
    return await run_in_threadpool(_record, ctx, c, version, asset, info, unfinished)


def _record(ctx: OpContext, c: pk.Coordinates, version: str, asset: str, info: BlobInfo, unfinished: bool) -> dict:
    with ctx.arca.db.session() as s:
        d, r = _repo(ctx, s, "codeartifact:PublishPackageVersion")
        package_groups.check_publish_allowed(s, d, r, c.format, c.namespace, c.name)
        p = pk.get_or_create_package(s, r, c)
        pk.bump(s, p)  # serialises concurrent publishers of this package
        _check_version_open(s, r, c, version, asset, info.sha256)
        v, _created = pk.get_or_create_version(s, p, version, status=pk.UNFINISHED, entry_point=r.name)
        a, _new = pk.put_asset(s, d, v, asset, info)
        if not unfinished and v.status == pk.UNFINISHED:
            pk.set_status(s, p, v, pk.PUBLISHED)
        out = {"format": c.format, "package": c.name, "version": v.version, "versionRevision": v.revision,
               "status": v.status, "asset": {"name": a.name, "size": info.size, "hashes": info.hashes()}}
        if c.namespace:
            out["namespace"] = c.namespace
        return out


# ---- CopyPackageVersions -------------------------------------------------------------------------

def _search_order(s, start: Repository) -> list[Repository]:
    """The source repository, then its upstreams depth-first in priority order (each once)."""
    out, seen = [], set()

    def walk(repo: Repository) -> None:
        if repo.id in seen:
            return
        seen.add(repo.id)
        out.append(repo)
        for (uid,) in s.execute(select(RepositoryUpstream.upstream_id).where(
                RepositoryUpstream.repository_id == repo.id).order_by(RepositoryUpstream.position)):
            walk(s.get(Repository, uid))

    walk(start)
    return out


def copy_package_versions(ctx: OpContext) -> dict:
    versions, revisions = ctx.b("versions"), ctx.b("versionRevisions")
    if bool(versions) == bool(revisions):
        raise ValidationError("Specify exactly one of versions or versionRevisions")
    names = list(versions or revisions)
    if len(names) > 100:
        raise ValidationError("At most 100 versions per call")
    overwrite = bool(ctx.b("allowOverwrite"))
    from_upstream = bool(ctx.b("includeFromUpstream"))
    c = coords(ctx)
    with ctx.arca.db.session() as s:
        d, src = _repo(ctx, s, "codeartifact:ReadFromRepository", "source-repository")
        _d, dst = _repo(ctx, s, "codeartifact:CopyPackageVersions", "destination-repository")
        if src.id == dst.id:
            raise ValidationError("sourceRepository and destinationRepository must differ")
        sources = [(repo, pkg) for repo in (_search_order(s, src) if from_upstream else [src])
                   if (pkg := pk.find_package(s, repo, c)) is not None]
        if not sources:
            raise NotFound(f"Package {c.label()} ({c.format}) does not exist in repository {src.name}"
                           + (" or its upstreams" if from_upstream else ""),
                           resource_id=c.name, resource_type="package")
        package_groups.check_publish_allowed(s, d, dst, c.format, c.namespace, c.name)
        dpkg = pk.get_or_create_package(s, dst, c, sources[0][1].display_name)
        if not dpkg.attributes and sources[0][1].attributes:
            dpkg.attributes = dict(sources[0][1].attributes)
        ok, failed = {}, {}
        for name in names:
            found = next(((repo, v) for repo, pkg in sources
                          if (v := pk.find_version(s, pkg, name)) is not None and v.status != pk.DELETED), None)
            if found is None:
                failed[name] = _fail("NOT_FOUND", f"Version {name} not found in {src.name}"
                                     + (" or its upstreams" if from_upstream else ""))
                continue
            repo, v = found
            if revisions and revisions.get(name) != v.revision:
                failed[name] = _fail("MISMATCHED_REVISION", f"Version {name} has revision {v.revision}")
            elif v.status not in COPYABLE:
                failed[name] = _fail("NOT_ALLOWED", f"Version {name} is {v.status} and cannot be copied")
            else:
                err = _copy_one(s, d, dst, dpkg, repo, v, overwrite)
                if err:
                    failed[name] = err
                else:
                    dv = pk.find_version(s, dpkg, name)
                    ok[name] = {"revision": dv.revision, "status": dv.status}
        if ok:
            pk.bump(s, dpkg)
        return {"successfulVersions": ok, "failedVersions": failed}


def _fail(code: str, msg: str) -> dict:
    return {"errorCode": code, "errorMessage": msg}


def _copy_one(s, d: Domain, dst: Repository, dpkg: Package, src_repo: Repository, v: PackageVersion,
              overwrite: bool) -> dict | None:
    existing = pk.find_version(s, dpkg, v.version)
    if existing is not None and not overwrite:
        return _fail("ALREADY_EXISTS", f"Version {v.version} already exists in {dst.name}")
    if existing is not None:
        s.execute(Asset.__table__.delete().where(Asset.package_version_id == existing.id))
        dv = existing
        dv.status, dv.summary, dv.attributes = v.status, v.summary, dict(v.attributes or {})
        dv.origin_type, dv.domain_entry_point = v.origin_type, v.domain_entry_point or src_repo.name
        dv.published_time = v.published_time
    else:
        dv, _ = pk.get_or_create_version(s, dpkg, v.version, status=v.status, origin_type=v.origin_type,
                                         entry_point=v.domain_entry_point or src_repo.name, summary=v.summary,
                                         attributes=dict(v.attributes or {}))
        dv.published_time = v.published_time
    for a in pk.list_assets(s, v):
        b: Blob = a.blob
        pk.put_asset(s, d, dv, a.name, BlobInfo(b.sha256, b.sha1, b.md5, b.sha512, b.size), mutable=True,
                     attributes=dict(a.attributes or {}))
    dv.revision = pk.new_revision()
    if dpkg.format == "npm" and dv.status == pk.PUBLISHED and s.get(DistTag, (dpkg.id, "latest")) is None:
        s.add(DistTag(package_id=dpkg.id, tag="latest", version=dv.version))
    s.flush()
    return None
