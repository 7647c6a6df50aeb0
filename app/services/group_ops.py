"""The ten package-group operations of the control plane, each one transaction. The rules
(patterns, hierarchy, effective modes) are in app/services/package_groups.py."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db.models import Domain, Package, Repository
from app.domain.coords import Coordinates
from app.services import authz, package_groups as pg
from app.services.context import Arca, Principal
from app.services.domains import domain_for, owned_domain
from app.services.paging import page_of
from app.services.rows import put_tags

KEEP = object()  # UpdatePackageGroup: a field the request leaves out stays as it is


def _require(arca: Arca, s: Session, principal: Principal, action: str, d: Domain, pattern: str) -> None:
    """The caller may do `action` on the group `pattern` (whether it exists or not)."""
    authz.require(arca, s, principal, action, d, resource_arn=pg.group_arn(arca.region, arca.account, d.name, pattern))


def _pattern_in(arca: Arca, s: Session, principal: Principal, action: str, domain: str, pattern: str,
                owner: str | None) -> tuple[Domain, pg.Pattern]:
    """The domain and the parsed pattern an operation names, after the caller's permission on it."""
    d = owned_domain(arca, s, domain, owner)
    p = pg.parse_pattern(pattern)
    _require(arca, s, principal, action, d, p.text)
    return d, p


def _group(arca: Arca, s: Session, principal: Principal, action: str, domain: str, pattern: str,
           owner: str | None) -> tuple[pg.Groups, pg.Group]:
    """The domain's groups and the existing group `pattern`, after the caller's permission on it."""
    d, p = _pattern_in(arca, s, principal, action, domain, pattern, owner)
    groups = pg.Groups.load(s, d)
    return groups, groups.get(p.text)


def create_group(arca: Arca, principal: Principal, domain: str, pattern: str, description: str | None = None,
                 contact_info: str | None = None, tags: list | None = None, owner: str | None = None) -> dict:
    with arca.db.session() as s:
        d, p = _pattern_in(arca, s, principal, "codeartifact:CreatePackageGroup", domain, pattern, owner)
        pg.create(s, d, p.text, description, contact_info)
        put_tags(s, pg.group_arn(arca.region, arca.account, d.name, p.text), tags)
        s.flush()
        groups = pg.Groups.load(s, d)
        return pg.description(arca, groups, groups.get(p.text))


def describe_group(arca: Arca, principal: Principal, domain: str, pattern: str, owner: str | None = None) -> dict:
    with arca.db.read() as s:
        groups, g = _group(arca, s, principal, "codeartifact:DescribePackageGroup", domain, pattern, owner)
        return pg.description(arca, groups, g)


def update_group(arca: Arca, principal: Principal, domain: str, pattern: str, *, description=KEEP,
                 contact_info=KEEP, owner: str | None = None) -> dict:
    with arca.db.session() as s:
        groups, g = _group(arca, s, principal, "codeartifact:UpdatePackageGroup", domain, pattern, owner)
        row = pg.materialize(s, groups, g)
        if description is not KEEP:
            row.description = description or None
        if contact_info is not KEEP:
            row.contact_info = contact_info or None
        s.flush()
        return pg.description(arca, groups, g)


def update_origin_configuration(arca: Arca, principal: Principal, domain: str, pattern: str,
                                restrictions: dict | None, add: list | None, remove: list | None,
                                owner: str | None = None) -> dict:
    with arca.db.session() as s:
        groups, g = _group(arca, s, principal, "codeartifact:UpdatePackageGroupOriginConfiguration", domain,
                           pattern, owner)
        updates = pg.update_origin(s, groups, g, restrictions, add, remove)
        return {"packageGroup": pg.description(arca, groups, g), "allowedRepositoryUpdates": updates}


def delete_group(arca: Arca, principal: Principal, domain: str, pattern: str, owner: str | None = None) -> dict:
    with arca.db.session() as s:
        groups, g = _group(arca, s, principal, "codeartifact:DeletePackageGroup", domain, pattern, owner)
        return pg.delete(arca, s, groups, g)


def list_groups(arca: Arca, principal: Principal, domain: str, prefix: str | None = None, max_results=None,
                next_token: str | None = None, owner: str | None = None) -> dict:
    with arca.db.read() as s:
        d = domain_for(arca, s, principal, "codeartifact:ListPackageGroups", domain, owner)
        groups = pg.Groups.load(s, d)
        items = [pg.description(arca, groups, g) for g in groups.sorted() if not prefix or g.text.startswith(prefix)]
    return page_of(items, "packageGroups", max_results, next_token)


def list_sub_groups(arca: Arca, principal: Principal, domain: str, pattern: str, max_results=None,
                    next_token: str | None = None, owner: str | None = None) -> dict:
    with arca.db.read() as s:
        groups, g = _group(arca, s, principal, "codeartifact:ListSubPackageGroups", domain, pattern, owner)
        items = [pg.description(arca, groups, c) for c in groups.children(g)]
    return page_of(items, "packageGroups", max_results, next_token)


def list_allowed_repositories(arca: Arca, principal: Principal, domain: str, pattern: str, restriction_type: str,
                              max_results=None, next_token: str | None = None, owner: str | None = None) -> dict:
    with arca.db.read() as s:
        _groups, g = _group(arca, s, principal, "codeartifact:ListAllowedRepositoriesForGroup", domain, pattern,
                            owner)
        items = g.allowed(restriction_type)
    return page_of(items, "allowedRepositories", max_results, next_token)


def list_associated_packages(arca: Arca, principal: Principal, domain: str, pattern: str, preview: bool = False,
                             max_results=None, next_token: str | None = None, owner: str | None = None) -> dict:
    """Packages (of every repository in the domain) whose most specific group is this one. With
    `preview` the group need not exist: the answer is what would be associated if it did."""
    with arca.db.read() as s:
        d, p = _pattern_in(arca, s, principal, "codeartifact:ListAssociatedPackages", domain, pattern, owner)
        groups = pg.Groups.load(s, d)
        if preview and p.text not in groups.by_text:
            groups.by_text[p.text] = pg.Group(p, None, d.created_at)
        target = groups.get(p.text)
        q = (select(Package.format, Package.namespace, Package.name).distinct()
             .join(Repository, Repository.id == Package.repository_id).where(Repository.domain_id == d.id))
        if p.format:
            q = q.where(Package.format == p.format)
        items = []
        for fmt, ns, name in s.execute(q.order_by(Package.format, Package.namespace, Package.name)).all():
            g, strength = groups.associated(fmt, ns or "", name)
            if g.text == target.text:
                item = {"format": fmt, "package": name, "associationType": strength}
                if ns:
                    item["namespace"] = ns
                items.append(item)
    return page_of(items, "packages", max_results, next_token)


def associated_group(arca: Arca, principal: Principal, domain: str, coords: Coordinates,
                     owner: str | None = None) -> dict:
    """GetAssociatedPackageGroup: the most specific group of a package, and how strongly it matches."""
    with arca.db.read() as s:
        d = owned_domain(arca, s, domain, owner)
        groups = pg.Groups.load(s, d)
        g, strength = groups.associated(coords.format, coords.namespace, coords.name)
        _require(arca, s, principal, "codeartifact:GetAssociatedPackageGroup", d, g.text)
        return {"packageGroup": pg.description(arca, groups, g), "associationType": strength}
