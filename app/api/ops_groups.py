"""The ten package-group operations (use cases in app/services/group_ops.py)."""

from __future__ import annotations

from app.api.context import OpContext, coords, page
from app.services import group_ops


def create_package_group(ctx: OpContext) -> dict:
    return {"packageGroup": group_ops.create_group(
        ctx.arca, ctx.principal, ctx["domain"], ctx["packageGroup"], ctx.get("description"), ctx.get("contactInfo"),
        ctx.get("tags"), ctx.get("domainOwner"))}


def describe_package_group(ctx: OpContext) -> dict:
    return {"packageGroup": group_ops.describe_group(ctx.arca, ctx.principal, ctx["domain"], ctx["packageGroup"],
                                                     ctx.get("domainOwner"))}


def update_package_group(ctx: OpContext) -> dict:
    return {"packageGroup": group_ops.update_group(
        ctx.arca, ctx.principal, ctx["domain"], ctx["packageGroup"],
        description=ctx.get("description", group_ops.KEEP), contact_info=ctx.get("contactInfo", group_ops.KEEP),
        owner=ctx.get("domainOwner"))}


def update_package_group_origin_configuration(ctx: OpContext) -> dict:
    return group_ops.update_origin_configuration(
        ctx.arca, ctx.principal, ctx["domain"], ctx["packageGroup"], ctx.get("restrictions"),
        ctx.get("addAllowedRepositories"), ctx.get("removeAllowedRepositories"), ctx.get("domainOwner"))


def delete_package_group(ctx: OpContext) -> dict:
    return {"packageGroup": group_ops.delete_group(ctx.arca, ctx.principal, ctx["domain"], ctx["packageGroup"],
                                                   ctx.get("domainOwner"))}


def list_package_groups(ctx: OpContext) -> dict:
    return group_ops.list_groups(ctx.arca, ctx.principal, ctx["domain"], ctx.get("prefix"), *page(ctx),
                                 owner=ctx.get("domainOwner"))


def list_sub_package_groups(ctx: OpContext) -> dict:
    return group_ops.list_sub_groups(ctx.arca, ctx.principal, ctx["domain"], ctx["packageGroup"], *page(ctx),
                                     owner=ctx.get("domainOwner"))


def list_allowed_repositories_for_group(ctx: OpContext) -> dict:
    return group_ops.list_allowed_repositories(
        ctx.arca, ctx.principal, ctx["domain"], ctx["packageGroup"], ctx["originRestrictionType"], *page(ctx),
        owner=ctx.get("domainOwner"))


def list_associated_packages(ctx: OpContext) -> dict:
    return group_ops.list_associated_packages(
        ctx.arca, ctx.principal, ctx["domain"], ctx["packageGroup"], bool(ctx.get("preview")), *page(ctx),
        owner=ctx.get("domainOwner"))


def get_associated_package_group(ctx: OpContext) -> dict:
    return group_ops.associated_group(ctx.arca, ctx.principal, ctx["domain"], coords(ctx), ctx.get("domainOwner"))
