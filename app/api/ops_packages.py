"""Package, version and asset operations of the control plane."""

from __future__ import annotations

from sqlalchemy import select

from app.api.context import OpContext, page
from app.db.models import Asset, Domain, Package, PackageVersion, Repository
from app.domain.errors import NotFound, ValidationError
from app.domain.names import check_coordinate, check_format, check_status
from app.domain.coords import Coordinates
from app.domain.status import ARCHIVED, DELETED, DISPOSED
from app.services import authz, catalog, domains, packages, rows as pk
from app.services.paging import next_token, page_args

NAMESPACE_REQUIRED = ("maven", "swift", "generic")


def coords(ctx: OpContext) -> Coordinates:
    fmt = check_format(ctx.q("format", required=True))
    namespace = check_coordinate("namespace", ctx.q("namespace"), required=False) or ""
    name = check_coordinate("package", ctx.q("package", required=True))
    if fmt in NAMESPACE_REQUIRED and not namespace:
        raise ValidationError(f"namespace is required for {fmt} packages")
    if fmt == "pypi":
        from app.domain.pep503 import normalize

        name = normalize(name)
    if fmt == "npm":
        namespace = namespace.lstrip("@")
    return Coordinates(fmt, namespace, name)


def _repo(ctx: OpContext, s, action: str, repo_key: str = "repository") -> tuple[Domain, Repository]:
    domains.check_owner(ctx.arca, ctx.q("domain-owner"))
    d = domains.get_domain(s, ctx.q("domain", required=True))
    r = domains.get_repository(s, d, ctx.q(repo_key, required=True))
    authz.require(ctx.arca, s, ctx.principal, action, d, r)
    return d, r


def _package(ctx, s, action):
    d, r = _repo(ctx, s, action)
    c = coords(ctx)
    return d, r, pk.get_package(s, r, c)


def _version(ctx, s, action):
    d, r, p = _package(ctx, s, action)
    v = pk.get_version(s, p, check_coordinate("version", ctx.q("version", required=True)))
    if v.status == DELETED:
        raise NotFound(f"Version {v.version} was deleted", resource_id=v.version, resource_type="package-version")
    return d, r, p, v


def _with_page(out: dict, offset: int, limit: int, got: int) -> dict:
    token = next_token(offset, limit, got)
    if token:
        out["nextToken"] = token
    return out


def list_packages(ctx: OpContext) -> dict:
    limit, offset = page_args(*page(ctx))
    with ctx.arca.db.read() as s:
        _d, r = _repo(ctx, s, "codeartifact:ListPackages")
        q = select(Package).where(Package.repository_id == r.id)
        if ctx.q("format"):
            q = q.where(Package.format == check_format(ctx.q("format")))
        if ctx.q("namespace"):
            q = q.where(Package.namespace.startswith(ctx.q("namespace").lstrip("@"), autoescape=True))
        if ctx.q("package-prefix"):
            prefix = ctx.q("package-prefix")
            if ctx.q("format") == "pypi":
                from app.domain.pep503 import normalize

                prefix = normalize(prefix)
            q = q.where(Package.name.startswith(prefix, autoescape=True))
        # A package record made only by PutPackageOriginConfiguration is listed too (CodeArtifact does).
        rows = list(s.scalars(q.order_by(Package.format, Package.namespace, Package.name)
                              .offset(offset).limit(limit + 1)))
        summaries = [catalog.package_summary(s, p) for p in rows[:limit]]
        for key in ("publish", "upstream"):
            if ctx.q(key):
                summaries = [x for x in summaries if x["originConfiguration"]["restrictions"][key] == ctx.q(key)]
        return _with_page({"packages": summaries}, offset, limit, len(rows))


def describe_package(ctx: OpContext) -> dict:
    with ctx.arca.db.read() as s:
        _d, _r, p = _package(ctx, s, "codeartifact:DescribePackage")
        summary = catalog.package_summary(s, p)
        summary["name"] = summary.pop("package")
        return {"package": summary}


def delete_package(ctx: OpContext) -> dict:
    with ctx.arca.db.session() as s:
        _d, _r, p = _package(ctx, s, "codeartifact:DeletePackage")
        summary = catalog.package_summary(s, p)
        s.delete(p)
        return {"deletedPackage": summary}


def put_package_origin_configuration(ctx: OpContext) -> dict:
    restrictions = ctx.b("restrictions", required=True)
    at = packages.PackageAt(ctx.q("domain", required=True), ctx.q("repository", required=True), coords(ctx),
                            ctx.q("domain-owner"))
    return {"originConfiguration": {"restrictions": packages.put_origin_configuration(
        ctx.arca, ctx.principal, at, restrictions.get("publish"), restrictions.get("upstream"))}}


def list_package_versions(ctx: OpContext) -> dict:
    limit, offset = page_args(*page(ctx))
    with ctx.arca.db.read() as s:
        _d, r, p = _package(ctx, s, "codeartifact:ListPackageVersions")
        q = select(PackageVersion).where(PackageVersion.package_id == p.id)
        if ctx.q("status"):
            q = q.where(PackageVersion.status == check_status(ctx.q("status")))
        if ctx.q("originType"):
            q = q.where(PackageVersion.origin_type == ctx.q("originType"))
        order = (PackageVersion.published_time, PackageVersion.id) if ctx.q("sortBy") == "PUBLISHED_TIME" \
            else (PackageVersion.id,)
        rows = list(s.scalars(q.order_by(*order).offset(offset).limit(limit + 1)))
        out = {"format": p.format, "package": p.name,
               "versions": [catalog.version_summary(r, v) for v in rows[:limit]]}
        if p.namespace:
            out["namespace"] = p.namespace
        default = catalog.default_display_version(s, p)
        if default:
            out["defaultDisplayVersion"] = default
        return _with_page(out, offset, limit, len(rows))


def describe_package_version(ctx: OpContext) -> dict:
    with ctx.arca.db.read() as s:
        _d, r, p, v = _version(ctx, s, "codeartifact:DescribePackageVersion")
        return {"packageVersion": catalog.version_description(r, p, v)}


def list_package_version_assets(ctx: OpContext) -> dict:
    limit, offset = page_args(*page(ctx))
    with ctx.arca.db.read() as s:
        _d, _r, p, v = _version(ctx, s, "codeartifact:ListPackageVersionAssets")
        rows = list(s.scalars(select(Asset).where(Asset.package_version_id == v.id).order_by(Asset.name)
                              .offset(offset).limit(limit + 1)))
        out = {"format": p.format, "package": p.name, "version": v.version, "versionRevision": v.revision,
               "assets": [catalog.asset_summary(a) for a in rows[:limit]]}
        if p.namespace:
            out["namespace"] = p.namespace
        return _with_page(out, offset, limit, len(rows))


def get_package_version_readme(ctx: OpContext) -> dict:
    with ctx.arca.db.read() as s:
        _d, _r, p, v = _version(ctx, s, "codeartifact:GetPackageVersionReadme")
        out = {"format": p.format, "package": p.name, "version": v.version, "versionRevision": v.revision,
               "readme": (v.attributes or {}).get("readme", "")}
        if p.namespace:
            out["namespace"] = p.namespace
        return out


def list_package_version_dependencies(ctx: OpContext) -> dict:
    with ctx.arca.db.read() as s:
        _d, _r, p, v = _version(ctx, s, "codeartifact:ListPackageVersionDependencies")
        out = {"format": p.format, "package": p.name, "version": v.version, "versionRevision": v.revision,
               "dependencies": (v.attributes or {}).get("dependencies", [])}
        if p.namespace:
            out["namespace"] = p.namespace
        return out


def asset_for_download(ctx: OpContext):
    """(asset, version, package) for GetPackageVersionAsset; the caller streams the blob."""
    with ctx.arca.db.read() as s:
        _d, _r, p, v = _version(ctx, s, "codeartifact:ReadFromRepository")
        want_rev = ctx.q("revision")
        if want_rev and want_rev != v.revision:
            raise NotFound(f"Version {v.version} has no revision {want_rev}", resource_id=want_rev,
                           resource_type="package-version")
        if v.status in (ARCHIVED, DISPOSED):
            raise NotFound(f"Version {v.version} is {v.status}; its assets are not served",
                           resource_id=v.version, resource_type="package-version")
        name = check_coordinate("asset", ctx.q("asset", required=True))
        a = pk.find_asset(s, v, name) if name else None
        if a is None:
            raise NotFound(f"Asset {name} does not exist in version {v.version}", resource_id=name,
                           resource_type="asset")
        return a, v, p


def update_package_versions_status(ctx: OpContext) -> dict:
    with ctx.arca.db.session() as s:
        _d, _r, p = _package(ctx, s, "codeartifact:UpdatePackageVersionsStatus")
        return packages.change_status(s, p, ctx.b("versions"), ctx.b("targetStatus", required=True),
                                         ctx.b("expectedStatus"), ctx.b("versionRevisions"))


def dispose_package_versions(ctx: OpContext) -> dict:
    with ctx.arca.db.session() as s:
        _d, _r, p = _package(ctx, s, "codeartifact:DisposePackageVersions")
        return packages.dispose(s, p, ctx.b("versions"), ctx.b("expectedStatus"), ctx.b("versionRevisions"))


def delete_package_versions(ctx: OpContext) -> dict:
    with ctx.arca.db.session() as s:
        _d, _r, p = _package(ctx, s, "codeartifact:DeletePackageVersions")
        return packages.remove(s, p, ctx.b("versions"), ctx.b("expectedStatus"))


