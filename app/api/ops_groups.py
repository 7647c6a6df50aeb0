"""The ten package-group operations (rules in app/services/package_groups.py)."""

from __future__ import annotations

from sqlalchemy import select

from app.api.context import OpContext, page
from app.api.context import coords
from app.db.models import Domain, Package, Repository, Tag
from app.domain.errors import ValidationError
from app.services import authz, domains, package_groups as pg
from app.services.paging import next_token, page_args


def _domain(ctx: OpContext, s) -> Domain:
    domains.check_owner(ctx.arca, ctx.q("domain-owner"))
    return domains.get_domain(s, ctx.q("domain", required=True))


def _require(ctx: OpContext, s, d: Domain, action: str, pattern: str | None = None) -> None:
    arn = pg.group_arn(ctx.arca.region, ctx.arca.account, d.name, pattern) if pattern else None
    authz.require(ctx.arca, s, ctx.principal, action, d, resource_arn=arn)


def _group(ctx: OpContext, s, action: str, text: str | None) -> tuple[pg.Groups, pg.Group]:
    d = _domain(ctx, s)
    p = pg.parse_pattern(text)
    _require(ctx, s, d, action, p.text)
    groups = pg.Groups.load(s, d)
    return groups, groups.get(p.text)


def _paged(items: list, key: str, ctx: OpContext) -> dict:
    limit, offset = page_args(*page(ctx))
    out = {key: items[offset:offset + limit]}
    token = next_token(offset, limit, len(items[offset:offset + limit + 1]))
    if token:
        out["nextToken"] = token
    return out


def create_package_group(ctx: OpContext) -> dict:
    tags = ctx.b("tags") or []
    with ctx.arca.db.session() as s:
        d = _domain(ctx, s)
        p = pg.parse_pattern(ctx.b("packageGroup", required=True))
        _require(ctx, s, d, "codeartifact:CreatePackageGroup", p.text)
        pg.create(s, d, p.text, ctx.b("description"), ctx.b("contactInfo"))
        arn = pg.group_arn(ctx.arca.region, ctx.arca.account, d.name, p.text)
        for t in tags:
            s.merge(Tag(resource_arn=arn, key=t["key"], value=t["value"]))
        s.flush()
        groups = pg.Groups.load(s, d)
        return {"packageGroup": pg.description(ctx.arca, groups, groups.get(p.text))}


def describe_package_group(ctx: OpContext) -> dict:
    with ctx.arca.db.read() as s:
        groups, g = _group(ctx, s, "codeartifact:DescribePackageGroup", ctx.q("package-group", required=True))
        return {"packageGroup": pg.description(ctx.arca, groups, g)}


def update_package_group(ctx: OpContext) -> dict:
    with ctx.arca.db.session() as s:
        groups, g = _group(ctx, s, "codeartifact:UpdatePackageGroup", ctx.b("packageGroup", required=True))
        row = pg.materialize(s, groups, g)
        if "description" in ctx.body:
            row.description = pg._check_text("description", ctx.b("description")) or None
        if "contactInfo" in ctx.body:
            row.contact_info = pg._check_text("contactInfo", ctx.b("contactInfo")) or None
        s.flush()
        return {"packageGroup": pg.description(ctx.arca, groups, g)}


def update_package_group_origin_configuration(ctx: OpContext) -> dict:
    with ctx.arca.db.session() as s:
        groups, g = _group(ctx, s, "codeartifact:UpdatePackageGroupOriginConfiguration",
                           ctx.q("package-group", required=True))
        updates = pg.update_origin(s, groups, g, ctx.b("restrictions"), ctx.b("addAllowedRepositories"),
                                   ctx.b("removeAllowedRepositories"))
        return {"packageGroup": pg.description(ctx.arca, groups, g), "allowedRepositoryUpdates": updates}


def delete_package_group(ctx: OpContext) -> dict:
    with ctx.arca.db.session() as s:
        groups, g = _group(ctx, s, "codeartifact:DeletePackageGroup", ctx.q("package-group", required=True))
        return {"packageGroup": pg.delete(ctx.arca, s, groups, g)}


def list_package_groups(ctx: OpContext) -> dict:
    prefix = ctx.q("prefix")
    with ctx.arca.db.read() as s:
        d = _domain(ctx, s)
        _require(ctx, s, d, "codeartifact:ListPackageGroups")
        groups = pg.Groups.load(s, d)
        items = [pg.description(ctx.arca, groups, g) for g in groups.sorted()
                 if not prefix or g.text.startswith(prefix)]
    return _paged(items, "packageGroups", ctx)


def list_sub_package_groups(ctx: OpContext) -> dict:
    with ctx.arca.db.read() as s:
        groups, g = _group(ctx, s, "codeartifact:ListSubPackageGroups", ctx.q("package-group", required=True))
        items = [pg.description(ctx.arca, groups, c) for c in groups.children(g)]
    return _paged(items, "packageGroups", ctx)


def list_allowed_repositories_for_group(ctx: OpContext) -> dict:
    rtype = ctx.q("originRestrictionType", required=True)
    if rtype not in pg.TYPES:
        raise ValidationError(f"originRestrictionType must be one of {', '.join(pg.TYPES)}")
    with ctx.arca.db.read() as s:
        _groups, g = _group(ctx, s, "codeartifact:ListAllowedRepositoriesForGroup",
                            ctx.q("package-group", required=True))
        items = g.allowed(rtype)
    return _paged(items, "allowedRepositories", ctx)


def list_associated_packages(ctx: OpContext) -> dict:
    """Packages (of every repository in the domain) whose most specific group is this one. With
    `preview=true` the group need not exist: the answer is what would be associated if it did."""
    preview = (ctx.q("preview") or "").lower() == "true"
    with ctx.arca.db.read() as s:
        d = _domain(ctx, s)
        p = pg.parse_pattern(ctx.q("package-group", required=True))
        _require(ctx, s, d, "codeartifact:ListAssociatedPackages", p.text)
        groups = pg.Groups.load(s, d)
        if preview and p.text not in groups.by_text:
            groups.by_text[p.text] = pg.Group(p, None, d.created_at)
        target = groups.get(p.text)
        q = (select(Package.format, Package.namespace, Package.name).distinct()
             .join(Repository, Repository.id == Package.repository_id).where(Repository.domain_id == d.id))
        if p.format:
            q = q.where(Package.format == p.format)
        rows = s.execute(q.order_by(Package.format, Package.namespace, Package.name)).all()
        items = []
        for fmt, ns, name in rows:
            g, strength = groups.associated(fmt, ns or "", name)
            if g.text == target.text:
                item = {"format": fmt, "package": name, "associationType": strength}
                if ns:
                    item["namespace"] = ns
                items.append(item)
    return _paged(items, "packages", ctx)


def get_associated_package_group(ctx: OpContext) -> dict:
    c = coords(ctx)
    with ctx.arca.db.read() as s:
        d = _domain(ctx, s)
        groups = pg.Groups.load(s, d)
        g, strength = groups.associated(c.format, c.namespace, c.name)
        _require(ctx, s, d, "codeartifact:GetAssociatedPackageGroup", g.text)
        return {"packageGroup": pg.description(ctx.arca, groups, g), "associationType": strength}
