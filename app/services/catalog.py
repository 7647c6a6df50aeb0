"""Read views of packages, versions and assets for the control plane and the console: the
CodeArtifact response shapes (PackageSummary, PackageVersionDescription, AssetSummary, ...), and
the control plane's package reads (ListPackages, DescribePackage, ListPackageVersions,
DescribePackageVersion, ListPackageVersionAssets, the readme, the dependencies, and the asset that
GetPackageVersionAsset streams), each in its own read transaction."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db.models import Asset, DistTag, Package, PackageVersion, Repository
from app.domain.errors import NotFound
from app.domain.names import check_coordinate
from app.domain.pep503 import normalize as pep503
from app.domain.status import ARCHIVED, DELETED, DISPOSED, PUBLISHED
from app.services import rows
from app.services.context import Arca, PackageAt, Principal
from app.services.domains import package_for, repository_for
from app.services.origins import restrictions_of
from app.services.paging import page_args, with_cursor, with_next_token


def _with_namespace(out: dict, p: Package) -> dict:
    if p.namespace:
        out["namespace"] = p.namespace
    return out


def package_summary(s: Session, pkg: Package) -> dict:
    return _with_namespace({"format": pkg.format, "package": pkg.name,
                            "originConfiguration": {"restrictions": restrictions_of(s, pkg)}}, pkg)


def version_origin(repo: Repository, v: PackageVersion) -> dict:
    if v.origin_type == "EXTERNAL":
        point = {"externalConnectionName": v.domain_entry_point or ""}
    else:
        point = {"repositoryName": v.domain_entry_point or repo.name}
    return {"domainEntryPoint": point, "originType": v.origin_type}


def version_description(repo: Repository, pkg: Package, v: PackageVersion) -> dict:
    a = v.attributes or {}
    out = _with_namespace({"format": pkg.format, "packageName": pkg.name, "displayName": rows.display_name(pkg),
                           "version": v.version, "revision": v.revision, "status": v.status,
                           "origin": version_origin(repo, v)}, pkg)
    if v.summary:
        out["summary"] = v.summary
    for key in ("homePage", "sourceCodeRepository"):
        if a.get(key):
            out[key] = a[key]
    if a.get("licenses"):
        out["licenses"] = a["licenses"]
    if v.published_time:
        out["publishedTime"] = v.published_time
    return out


def asset_summary(a: Asset) -> dict:
    b = a.blob
    return {"name": a.name, "size": b.size,
            "hashes": {"MD5": b.md5, "SHA-1": b.sha1, "SHA-256": b.sha256, "SHA-512": b.sha512}}


def version_summary(repo: Repository, v: PackageVersion) -> dict:
    return {"version": v.version, "revision": v.revision, "status": v.status, "origin": version_origin(repo, v)}


def default_display_version(s: Session, p: Package) -> str | None:
    """npm: the `latest` dist-tag; otherwise the most recently published version."""
    if p.format == "npm":
        tag = s.scalar(select(DistTag.version).where(DistTag.package_id == p.id, DistTag.tag == "latest"))
        if tag:
            return tag
    return s.scalar(select(PackageVersion.version).where(PackageVersion.package_id == p.id,
                                                         PackageVersion.status == PUBLISHED)
                    .order_by(PackageVersion.published_time.desc(), PackageVersion.id.desc()).limit(1))


# ---- the control plane's reads -------------------------------------------------------------------

def list_packages(arca: Arca, principal: Principal, domain: str, repository: str, *, fmt: str | None = None,
                  namespace: str | None = None, prefix: str | None = None, publish: str | None = None,
                  upstream: str | None = None, max_results: int | None = None, next_token: str | None = None,
                  owner: str | None = None) -> dict:
    """ListPackages: `namespace` and `prefix` match the start; `publish`/`upstream` filter by the
    origin restrictions."""
    limit, offset = page_args(max_results, next_token)
    with arca.db.read() as s:
        _d, r = repository_for(arca, s, principal, "codeartifact:ListPackages", domain, repository, owner)
        q = select(Package).where(Package.repository_id == r.id)
        if fmt:
            q = q.where(Package.format == fmt)
        if namespace:
            q = q.where(Package.namespace.startswith(namespace.lstrip("@"), autoescape=True))
        if prefix:
            q = q.where(Package.name.startswith(pep503(prefix) if fmt == "pypi" else prefix, autoescape=True))
        # A package record made only by PutPackageOriginConfiguration is listed too (CodeArtifact does).
        q = q.order_by(Package.format, Package.namespace, Package.name, Package.id)
        wanted = {k: v for k, v in (("publish", publish), ("upstream", upstream)) if v}
        summaries, next_offset = _filtered_page(
            s, q, lambda p: package_summary(s, p),
            lambda x: all(x["originConfiguration"]["restrictions"][k] == v for k, v in wanted.items()),
            offset, limit)
        return with_cursor({"packages": summaries}, next_offset)


def _filtered_page(s: Session, q, render, keep, offset: int, limit: int) -> tuple[list, int | None]:
    """Up to `limit` rendered rows of `q` from row `offset` on that `keep` accepts, and the row
    offset of the next page (None when no row after them is accepted). Filtering before the page is
    cut keeps pages full while more match (origin restrictions are computed, not columns)."""
    out, position, batch = [], offset, max(limit + 1, 100)
    while True:
        rows_ = list(s.scalars(q.offset(position).limit(batch)))
        for i, row in enumerate(rows_):
            item = render(row)
            if keep(item):
                if len(out) == limit:
                    return out, position + i
                out.append(item)
        if len(rows_) < batch:
            return out, None
        position += batch


def describe_package(arca: Arca, principal: Principal, at: PackageAt) -> dict:
    """PackageDescription: the summary with `name` for `package`."""
    with arca.db.read() as s:
        _r, p = package_for(arca, s, principal, "codeartifact:DescribePackage", at)
        summary = package_summary(s, p)
        summary["name"] = summary.pop("package")
        return summary


def list_package_versions(arca: Arca, principal: Principal, at: PackageAt, *, status: str | None = None,
                          origin_type: str | None = None, sort_by: str | None = None, max_results=None,
                          next_token: str | None = None) -> dict:
    limit, offset = page_args(max_results, next_token)
    with arca.db.read() as s:
        r, p = package_for(arca, s, principal, "codeartifact:ListPackageVersions", at)
        q = select(PackageVersion).where(PackageVersion.package_id == p.id)
        if status:
            q = q.where(PackageVersion.status == status)
        if origin_type:
            q = q.where(PackageVersion.origin_type == origin_type)
        order = (PackageVersion.published_time, PackageVersion.id) if sort_by == "PUBLISHED_TIME" \
            else (PackageVersion.id,)
        found = list(s.scalars(q.order_by(*order).offset(offset).limit(limit + 1)))
        out = _with_namespace({"format": p.format, "package": p.name,
                               "versions": [version_summary(r, v) for v in found[:limit]]}, p)
        default = default_display_version(s, p)
        if default:
            out["defaultDisplayVersion"] = default
        return with_next_token(out, offset, limit, len(found))


def _version_at(arca: Arca, s: Session, principal: Principal, action: str, at: PackageAt,
                version: str) -> tuple[Repository, Package, PackageVersion]:
    """The version an operation names (a Deleted version does not exist for it)."""
    r, p = package_for(arca, s, principal, action, at)
    v = rows.get_version(s, p, check_coordinate("version", version))
    if v.status == DELETED:
        raise NotFound(f"Version {v.version} was deleted", resource_id=v.version, resource_type="package-version")
    return r, p, v


def _of_version(p: Package, v: PackageVersion, **fields) -> dict:
    """The head every per-version response starts with."""
    return _with_namespace({"format": p.format, "package": p.name, "version": v.version,
                            "versionRevision": v.revision, **fields}, p)


def describe_package_version(arca: Arca, principal: Principal, at: PackageAt, version: str) -> dict:
    with arca.db.read() as s:
        r, p, v = _version_at(arca, s, principal, "codeartifact:DescribePackageVersion", at, version)
        return version_description(r, p, v)


def list_package_version_assets(arca: Arca, principal: Principal, at: PackageAt, version: str,
                                max_results=None, next_token: str | None = None) -> dict:
    limit, offset = page_args(max_results, next_token)
    with arca.db.read() as s:
        _r, p, v = _version_at(arca, s, principal, "codeartifact:ListPackageVersionAssets", at, version)
        found = list(s.scalars(select(Asset).where(Asset.package_version_id == v.id).order_by(Asset.name)
                               .offset(offset).limit(limit + 1)))
        out = _of_version(p, v, assets=[asset_summary(a) for a in found[:limit]])
        return with_next_token(out, offset, limit, len(found))


def package_version_readme(arca: Arca, principal: Principal, at: PackageAt, version: str) -> dict:
    with arca.db.read() as s:
        _r, p, v = _version_at(arca, s, principal, "codeartifact:GetPackageVersionReadme", at, version)
        return _of_version(p, v, readme=(v.attributes or {}).get("readme", ""))


def package_version_dependencies(arca: Arca, principal: Principal, at: PackageAt, version: str) -> dict:
    with arca.db.read() as s:
        _r, p, v = _version_at(arca, s, principal, "codeartifact:ListPackageVersionDependencies", at, version)
        return _of_version(p, v, dependencies=(v.attributes or {}).get("dependencies", []))


@dataclass(frozen=True)
class AssetDownload:
    """What GetPackageVersionAsset streams: the blob, and the names its response headers carry."""

    name: str
    version: str
    version_revision: str
    sha256: str
    size: int


def asset_for_download(arca: Arca, principal: Principal, at: PackageAt, version: str, asset: str,
                       revision: str | None = None) -> AssetDownload:
    """The asset of a version that serves its files (not Archived or Disposed), at `revision` when given."""
    with arca.db.read() as s:
        _r, _p, v = _version_at(arca, s, principal, "codeartifact:ReadFromRepository", at, version)
        if revision and revision != v.revision:
            raise NotFound(f"Version {v.version} has no revision {revision}", resource_id=revision,
                           resource_type="package-version")
        if v.status in (ARCHIVED, DISPOSED):
            raise NotFound(f"Version {v.version} is {v.status}; its assets are not served",
                           resource_id=v.version, resource_type="package-version")
        name = check_coordinate("asset", asset)
        a = rows.find_asset(s, v, name) if name else None
        if a is None:
            raise NotFound(f"Asset {name} does not exist in version {v.version}", resource_id=name,
                           resource_type="asset")
        return AssetDownload(a.name, v.version, v.revision, a.blob.sha256, a.blob.size)
