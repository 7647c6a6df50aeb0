"""Package, version and asset operations of the control plane."""

from __future__ import annotations

from app.api.context import OpContext, package_at, page
from app.services import catalog, packages


def list_packages(ctx: OpContext) -> dict:
    max_results, cursor = page(ctx)
    return catalog.list_packages(
        ctx.arca, ctx.principal, ctx["domain"], ctx["repository"], fmt=ctx.get("format"),
        namespace=ctx.get("namespace"), prefix=ctx.get("packagePrefix"), publish=ctx.get("publish"),
        upstream=ctx.get("upstream"), max_results=max_results, next_token=cursor, owner=ctx.get("domainOwner"))


def describe_package(ctx: OpContext) -> dict:
    return {"package": catalog.describe_package(ctx.arca, ctx.principal, package_at(ctx))}


def delete_package(ctx: OpContext) -> dict:
    return {"deletedPackage": packages.delete_package(ctx.arca, ctx.principal, package_at(ctx))}


def put_package_origin_configuration(ctx: OpContext) -> dict:
    restrictions = ctx["restrictions"]
    return {"originConfiguration": {"restrictions": packages.put_origin_configuration(
        ctx.arca, ctx.principal, package_at(ctx), restrictions["publish"], restrictions["upstream"])}}


def list_package_versions(ctx: OpContext) -> dict:
    max_results, cursor = page(ctx)
    return catalog.list_package_versions(
        ctx.arca, ctx.principal, package_at(ctx), status=ctx.get("status"), origin_type=ctx.get("originType"),
        sort_by=ctx.get("sortBy"), max_results=max_results, next_token=cursor)


def describe_package_version(ctx: OpContext) -> dict:
    return {"packageVersion": catalog.describe_package_version(ctx.arca, ctx.principal, package_at(ctx),
                                                               ctx["packageVersion"])}


def list_package_version_assets(ctx: OpContext) -> dict:
    return catalog.list_package_version_assets(ctx.arca, ctx.principal, package_at(ctx), ctx["packageVersion"],
                                               *page(ctx))


def get_package_version_readme(ctx: OpContext) -> dict:
    return catalog.package_version_readme(ctx.arca, ctx.principal, package_at(ctx), ctx["packageVersion"])


def list_package_version_dependencies(ctx: OpContext) -> dict:
    return catalog.package_version_dependencies(ctx.arca, ctx.principal, package_at(ctx), ctx["packageVersion"])


def asset_for_download(ctx: OpContext) -> catalog.AssetDownload:
    """GetPackageVersionAsset: the asset the router streams."""
    return catalog.asset_for_download(ctx.arca, ctx.principal, package_at(ctx), ctx["packageVersion"],
                                      ctx["asset"], ctx.get("packageVersionRevision"))


def update_package_versions_status(ctx: OpContext) -> dict:
    return packages.update_versions_status(ctx.arca, ctx.principal, package_at(ctx), ctx["versions"],
                                           ctx["targetStatus"], ctx.get("expectedStatus"),
                                           ctx.get("versionRevisions"))


def dispose_package_versions(ctx: OpContext) -> dict:
    return packages.dispose_versions(ctx.arca, ctx.principal, package_at(ctx), ctx["versions"],
                                     ctx.get("expectedStatus"), ctx.get("versionRevisions"))


def delete_package_versions(ctx: OpContext) -> dict:
    return packages.delete_versions(ctx.arca, ctx.principal, package_at(ctx), ctx["versions"],
                                    ctx.get("expectedStatus"))
