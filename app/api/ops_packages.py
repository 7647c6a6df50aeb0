"""Package, version and asset operations of the control plane."""

from __future__ import annotations

from app.api.context import OpContext, package_at, page
from app.services import catalog, packages


def list_packages(ctx: OpContext) -> dict:
    max_results, token = page(ctx)
    return catalog.list_packages(
        ctx.arca, ctx.principal, ctx.q("domain", required=True), ctx.q("repository", required=True),
        fmt=ctx.q("format"), namespace=ctx.q("namespace"), prefix=ctx.q("package-prefix"), publish=ctx.q("publish"),
        upstream=ctx.q("upstream"), max_results=max_results, next_token=token, owner=ctx.q("domain-owner"))


def describe_package(ctx: OpContext) -> dict:
    return {"package": catalog.describe_package(ctx.arca, ctx.principal, package_at(ctx))}


def delete_package(ctx: OpContext) -> dict:
    return {"deletedPackage": packages.delete_package(ctx.arca, ctx.principal, package_at(ctx))}


def put_package_origin_configuration(ctx: OpContext) -> dict:
    restrictions = ctx.b("restrictions", required=True)
    return {"originConfiguration": {"restrictions": packages.put_origin_configuration(
        ctx.arca, ctx.principal, package_at(ctx), restrictions.get("publish"), restrictions.get("upstream"))}}


def list_package_versions(ctx: OpContext) -> dict:
    max_results, token = page(ctx)
    return catalog.list_package_versions(
        ctx.arca, ctx.principal, package_at(ctx), status=ctx.q("status"), origin_type=ctx.q("originType"),
        sort_by=ctx.q("sortBy"), max_results=max_results, next_token=token)


def describe_package_version(ctx: OpContext) -> dict:
    return {"packageVersion": catalog.describe_package_version(ctx.arca, ctx.principal, package_at(ctx),
                                                               ctx.q("version", required=True))}


def list_package_version_assets(ctx: OpContext) -> dict:
    max_results, token = page(ctx)
    return catalog.list_package_version_assets(ctx.arca, ctx.principal, package_at(ctx),
                                               ctx.q("version", required=True), max_results, token)


def get_package_version_readme(ctx: OpContext) -> dict:
    return catalog.package_version_readme(ctx.arca, ctx.principal, package_at(ctx), ctx.q("version", required=True))


def list_package_version_dependencies(ctx: OpContext) -> dict:
    return catalog.package_version_dependencies(ctx.arca, ctx.principal, package_at(ctx),
                                                ctx.q("version", required=True))


def asset_for_download(ctx: OpContext) -> catalog.AssetDownload:
    """GetPackageVersionAsset: the asset the router streams."""
    return catalog.asset_for_download(ctx.arca, ctx.principal, package_at(ctx), ctx.q("version", required=True),
                                      ctx.q("asset", required=True), ctx.q("revision"))


def update_package_versions_status(ctx: OpContext) -> dict:
    return packages.update_versions_status(ctx.arca, ctx.principal, package_at(ctx), ctx.b("versions"),
                                           ctx.b("targetStatus", required=True), ctx.b("expectedStatus"),
                                           ctx.b("versionRevisions"))


def dispose_package_versions(ctx: OpContext) -> dict:
    return packages.dispose_versions(ctx.arca, ctx.principal, package_at(ctx), ctx.b("versions"),
                                     ctx.b("expectedStatus"), ctx.b("versionRevisions"))


def delete_package_versions(ctx: OpContext) -> dict:
    return packages.delete_versions(ctx.arca, ctx.principal, package_at(ctx), ctx.b("versions"),
                                    ctx.b("expectedStatus"))
