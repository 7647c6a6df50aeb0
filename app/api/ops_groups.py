"""The ten package-group operations (use cases in app/services/group_ops.py)."""

from __future__ import annotations

from app.api.context import OpContext, coords, page
from app.services import group_ops


def create_package_group(ctx: OpContext) -> dict:
    return {"packageGroup": group_ops.create_group(
        ctx.arca, ctx.principal, ctx.q("domain", required=True), ctx.b("packageGroup", required=True),
        ctx.b("description"), ctx.b("contactInfo"), ctx.b("tags"), ctx.q("domain-owner"))}


def describe_package_group(ctx: OpContext) -> dict:
    return {"packageGroup": group_ops.describe_group(
        ctx.arca, ctx.principal, ctx.q("domain", required=True), ctx.q("package-group", required=True),
        ctx.q("domain-owner"))}


def update_package_group(ctx: OpContext) -> dict:
    return {"packageGroup": group_ops.update_group(
        ctx.arca, ctx.principal, ctx.q("domain", required=True), ctx.b("packageGroup", required=True),
        description=ctx.body.get("description", group_ops.KEEP),
        contact_info=ctx.body.get("contactInfo", group_ops.KEEP), owner=ctx.q("domain-owner"))}


def update_package_group_origin_configuration(ctx: OpContext) -> dict:
    return group_ops.update_origin_configuration(
        ctx.arca, ctx.principal, ctx.q("domain", required=True), ctx.q("package-group", required=True),
        ctx.b("restrictions"), ctx.b("addAllowedRepositories"), ctx.b("removeAllowedRepositories"),
        ctx.q("domain-owner"))


def delete_package_group(ctx: OpContext) -> dict:
    return {"packageGroup": group_ops.delete_group(
        ctx.arca, ctx.principal, ctx.q("domain", required=True), ctx.q("package-group", required=True),
        ctx.q("domain-owner"))}


def list_package_groups(ctx: OpContext) -> dict:
    return group_ops.list_groups(ctx.arca, ctx.principal, ctx.q("domain", required=True), ctx.q("prefix"),
                                 *page(ctx), owner=ctx.q("domain-owner"))


def list_sub_package_groups(ctx: OpContext) -> dict:
    return group_ops.list_sub_groups(ctx.arca, ctx.principal, ctx.q("domain", required=True),
                                     ctx.q("package-group", required=True), *page(ctx), owner=ctx.q("domain-owner"))


def list_allowed_repositories_for_group(ctx: OpContext) -> dict:
    restriction_type = ctx.q("originRestrictionType", required=True)
    return group_ops.list_allowed_repositories(
        ctx.arca, ctx.principal, ctx.q("domain", required=True), ctx.q("package-group", required=True),
        restriction_type, *page(ctx), owner=ctx.q("domain-owner"))


def list_associated_packages(ctx: OpContext) -> dict:
    return group_ops.list_associated_packages(
        ctx.arca, ctx.principal, ctx.q("domain", required=True), ctx.q("package-group", required=True),
        (ctx.q("preview") or "").lower() == "true", *page(ctx), owner=ctx.q("domain-owner"))


def get_associated_package_group(ctx: OpContext) -> dict:
    c = coords(ctx)
    return group_ops.associated_group(ctx.arca, ctx.principal, ctx.q("domain", required=True), c,
                                      ctx.q("domain-owner"))
