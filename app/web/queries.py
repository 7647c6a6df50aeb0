"""What the console's pages show, read through the same services as the control plane.

Every list is one page of rows (LIMIT/OFFSET on an indexed order) plus, for that page only,
grouped aggregate queries; nothing loads a whole repository or all versions of a package.
Functions here take an open session and return plain dicts for the templates."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.db.models import Asset, Blob, Domain, Package, PackageVersion, Repository
from app.domain.errors import AccessDenied, ValidationError
from app.domain.coords import Coordinates
from app.domain.status import ARCHIVED, DISPOSED, PUBLISHED, UNFINISHED, UNLISTED
from app.services.origins import check_modes
from app.services import authz, catalog, domains as dm, packages, rows as pk
from app.services.context import Arca, Principal

PAGE_SIZE = 50
FORMATS = ("maven", "npm", "pypi", "generic", "nuget", "ruby", "cargo", "swift")

# Seeing something in the console needs the API action that shows it, or the right to read the
# repository's contents (which exposes the same facts through the data plane's indexes).
VIEW_DOMAIN = ("codeartifact:DescribeDomain", "codeartifact:ListRepositoriesInDomain")
VIEW_REPOSITORY = ("codeartifact:DescribeRepository", authz.READ)
VIEW_PACKAGES = ("codeartifact:ListPackages", authz.READ)
VIEW_VERSIONS = ("codeartifact:ListPackageVersions", authz.READ)
VIEW_VERSION = ("codeartifact:DescribePackageVersion", authz.READ)

# Console action -> (API action, the service call's target status or None, label, past tense)
ACTIONS = {
    "publish": ("codeartifact:UpdatePackageVersionsStatus", PUBLISHED, "Publish", "published"),
    "restore": ("codeartifact:UpdatePackageVersionsStatus", PUBLISHED, "Restore", "restored to Published"),
    "unlist": ("codeartifact:UpdatePackageVersionsStatus", UNLISTED, "Unlist", "unlisted"),
    "archive": ("codeartifact:UpdatePackageVersionsStatus", ARCHIVED, "Archive", "archived"),
    "dispose": ("codeartifact:DisposePackageVersions", None, "Dispose", "disposed (assets deleted)"),
    "delete": ("codeartifact:DeletePackageVersions", None, "Delete", "deleted"),
}
# Which actions make sense from which status (the service enforces the rest).
OFFERED = {
    UNFINISHED: ("publish", "unlist", "archive", "dispose", "delete"),
    PUBLISHED: ("unlist", "archive", "dispose", "delete"),
    UNLISTED: ("restore", "archive", "dispose", "delete"),
    ARCHIVED: ("restore", "unlist", "dispose", "delete"),
    DISPOSED: ("delete",),
}
CONFIRM_TEXT = {
    "publish": "Consumers will see this version in indexes and metadata and can download it.",
    "restore": "The version becomes Published again: listed and downloadable.",
    "unlist": "The version disappears from indexes and metadata; exact downloads keep working.",
    "archive": "The version disappears and its files are no longer served. You can restore it later.",
    "dispose": "The version's files are deleted; the version stays as a Disposed record. This cannot be undone.",
    "delete": "The version and its files are removed completely. This cannot be undone.",
}


@dataclass
class Pager:
    page: int
    size: int
    total: int | None
    has_next: bool

    @property
    def pages(self) -> int | None:
        return None if self.total is None else max(1, -(-self.total // self.size))

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.size


def page_number(raw: str | None) -> int:
    try:
        n = int(raw or 1)
    except ValueError:
        raise ValidationError("page must be a positive integer") from None
    if not 1 <= n <= 1_000_000:
        raise ValidationError("page must be a positive integer")
    return n


def allowed_any(arca: Arca, s: Session, principal: Principal, actions, d: Domain,
                r: Repository | None = None) -> bool:
    return any(authz.is_allowed(arca, s, principal, a, d, r) for a in actions)


def require_any(arca: Arca, s: Session, principal: Principal, actions, d: Domain, r: Repository | None = None):
    if not allowed_any(arca, s, principal, actions, d, r):
        target = f"{d.name}/{r.name}" if r is not None else d.name
        raise AccessDenied(f"You ({principal.name}) may not view {target}: it needs {' or '.join(actions)}")


def domain_visible(arca: Arca, s: Session, principal: Principal, d: Domain) -> bool:
    if allowed_any(arca, s, principal, VIEW_DOMAIN, d):
        return True
    repos = s.scalars(select(Repository).where(Repository.domain_id == d.id).order_by(Repository.name).limit(200))
    return any(allowed_any(arca, s, principal, VIEW_REPOSITORY, d, r) for r in repos)


def lookup(arca: Arca, s: Session, principal: Principal, domain: str, repo: str | None, actions):
    """(domain row, repository row or None), after the permission check. Unknown names -> NotFound."""
    d = dm.get_domain(s, domain)
    r = dm.get_repository(s, d, repo) if repo is not None else None
    if r is None:
        if not domain_visible(arca, s, principal, d):
            raise AccessDenied(f"You ({principal.name}) may not view domain {d.name}")
    else:
        require_any(arca, s, principal, actions, d, r)
    return d, r


# ---- domains and repositories ---------------------------------------------------------------------

def domains_page(arca: Arca, s: Session, principal: Principal, page: int) -> dict:
    pager = Pager(page, PAGE_SIZE, None, False)
    rows = list(s.scalars(select(Domain).order_by(Domain.name).offset(pager.offset).limit(PAGE_SIZE + 1)))
    pager.has_next = len(rows) > PAGE_SIZE
    visible = [d for d in rows[:PAGE_SIZE] if domain_visible(arca, s, principal, d)]
    ids = [d.id for d in visible]
    counts = dict(s.execute(select(Repository.domain_id, func.count()).where(Repository.domain_id.in_(ids))
                            .group_by(Repository.domain_id)).all()) if ids else {}
    sizes = dict(s.execute(select(Blob.domain_id, func.sum(Blob.size)).where(Blob.domain_id.in_(ids))
                           .group_by(Blob.domain_id)).all()) if ids else {}
    return {"domains": [{"name": d.name, "created": d.created_at, "repositories": counts.get(d.id, 0),
                         "size": int(sizes.get(d.id) or 0)} for d in visible], "pager": pager}


def _repo_stats(s: Session, ids: list[int]) -> tuple[dict, dict]:
    if not ids:
        return {}, {}
    counts = dict(s.execute(select(Package.repository_id, func.count()).where(Package.repository_id.in_(ids))
                            .group_by(Package.repository_id)).all())
    # Storage used: each distinct blob referenced by the repository's assets, counted once.
    used = (select(Package.repository_id.label("rid"), Asset.blob_id.label("bid"))
            .select_from(Asset).join(PackageVersion, PackageVersion.id == Asset.package_version_id)
            .join(Package, Package.id == PackageVersion.package_id).where(Package.repository_id.in_(ids))
            .distinct().subquery())
    sizes = dict(s.execute(select(used.c.rid, func.sum(Blob.size)).join(Blob, Blob.id == used.c.bid)
                           .group_by(used.c.rid)).all())
    return counts, {k: int(v or 0) for k, v in sizes.items()}


def repositories_page(arca: Arca, s: Session, principal: Principal, d: Domain, page: int) -> dict:
    pager = Pager(page, PAGE_SIZE, None, False)
    rows = list(s.scalars(select(Repository).where(Repository.domain_id == d.id).order_by(Repository.name)
                          .offset(pager.offset).limit(PAGE_SIZE + 1)))
    pager.has_next = len(rows) > PAGE_SIZE
    visible = [r for r in rows[:PAGE_SIZE] if allowed_any(arca, s, principal, VIEW_REPOSITORY, d, r)]
    counts, sizes = _repo_stats(s, [r.id for r in visible])
    repos = []
    for r in visible:
        desc = dm.repository_description(arca, s, d, r)
        repos.append({"name": r.name, "description": desc["description"],
                      "upstreams": [u["repositoryName"] for u in desc["upstreams"]],
                      "external": desc["externalConnections"], "packages": counts.get(r.id, 0),
                      "size": sizes.get(r.id, 0), "created": r.created_at})
    can_token = authz.is_allowed(arca, s, principal, "codeartifact:GetAuthorizationToken", d)
    return {"repositories": repos, "pager": pager, "can_token": can_token}


def repository_header(arca: Arca, s: Session, d: Domain, r: Repository) -> dict:
    desc = dm.repository_description(arca, s, d, r)
    counts, sizes = _repo_stats(s, [r.id])
    return {"name": r.name, "description": desc["description"], "arn": desc["arn"],
            "upstreams": [u["repositoryName"] for u in desc["upstreams"]], "external": desc["externalConnections"],
            "packages": counts.get(r.id, 0), "size": sizes.get(r.id, 0)}


# ---- packages ---------------------------------------------------------------------------------------

def _filters(q, fmt: str | None, namespace: str | None, prefix: str | None):
    if fmt:
        if fmt not in FORMATS:
            raise ValidationError(f"Unknown format {fmt!r}")
        q = q.where(Package.format == fmt)
    if namespace:
        q = q.where(Package.namespace.startswith(namespace.lstrip("@"), autoescape=True))
    if prefix:
        if fmt == "pypi":
            from app.domain.pep503 import normalize

            prefix = normalize(prefix)
        q = q.where(Package.name.startswith(prefix, autoescape=True))
    return q


def _latest(s: Session, ids: list[int]) -> dict[int, dict]:
    """For one page of packages: version count and the newest version (by creation)."""
    if not ids:
        return {}
    agg = s.execute(select(PackageVersion.package_id, func.count(), func.max(PackageVersion.id))
                    .where(PackageVersion.package_id.in_(ids)).group_by(PackageVersion.package_id)).all()
    newest = {v.id: v for v in s.scalars(select(PackageVersion).where(PackageVersion.id.in_([m for _, _, m in agg])))}
    return {pid: {"count": n, "latest": newest[m].version, "status": newest[m].status} for pid, n, m in agg}


def package_row(p: Package, extra: dict | None) -> dict:
    return {"format": p.format, "namespace": p.namespace, "name": p.name, "display": pk.display_name(p),
            "updated": p.updated_at, "versions": (extra or {}).get("count", 0),
            "latest": (extra or {}).get("latest"), "latest_status": (extra or {}).get("status")}


def packages_page(s: Session, r: Repository, fmt: str | None, namespace: str | None, prefix: str | None,
                  page: int) -> dict:
    base = _filters(select(Package).where(Package.repository_id == r.id), fmt, namespace, prefix)
    total = s.scalar(_filters(select(func.count()).select_from(Package).where(Package.repository_id == r.id),
                              fmt, namespace, prefix))
    pager = Pager(page, PAGE_SIZE, total, False)
    rows = list(s.scalars(base.order_by(Package.format, Package.namespace, Package.name)
                          .offset(pager.offset).limit(PAGE_SIZE + 1)))
    pager.has_next = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    extra = _latest(s, [p.id for p in rows])
    return {"packages": [package_row(p, extra.get(p.id)) for p in rows], "pager": pager}


def search_page(arca: Arca, s: Session, principal: Principal, d: Domain, query: str, page: int) -> dict:
    """Packages whose name contains `query` (case-insensitive), in the repositories the user may see."""
    repos = list(s.scalars(select(Repository).where(Repository.domain_id == d.id).order_by(Repository.name)))
    visible = {r.id: r.name for r in repos if allowed_any(arca, s, principal, VIEW_PACKAGES, d, r)}
    pager = Pager(page, PAGE_SIZE, None, False)
    if not query or not visible:
        return {"results": [], "pager": pager}
    q = (select(Package).where(Package.repository_id.in_(list(visible)))
         .where(func.lower(Package.name).contains(query.lower().lstrip("@"), autoescape=True))
         .order_by(Package.name, Package.format, Package.namespace, Package.repository_id))
    rows = list(s.scalars(q.offset(pager.offset).limit(PAGE_SIZE + 1)))
    pager.has_next = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    extra = _latest(s, [p.id for p in rows])
    return {"results": [{**package_row(p, extra.get(p.id)), "repository": visible[p.repository_id]} for p in rows],
            "pager": pager}


def get_package(s: Session, r: Repository, fmt: str, namespace: str, name: str) -> Package:
    if fmt not in FORMATS:
        raise ValidationError(f"Unknown format {fmt!r}")
    return pk.get_package(s, r, Coordinates(fmt, namespace or "", name))


def versions_page(arca: Arca, s: Session, principal: Principal, d: Domain, r: Repository, p: Package,
                  page: int) -> dict:
    base = select(PackageVersion).where(PackageVersion.package_id == p.id)
    total = s.scalar(select(func.count()).select_from(PackageVersion).where(PackageVersion.package_id == p.id))
    pager = Pager(page, PAGE_SIZE, total, False)
    rows = list(s.scalars(base.order_by(PackageVersion.id.desc()).offset(pager.offset).limit(PAGE_SIZE + 1)))
    pager.has_next = len(rows) > PAGE_SIZE
    summary = catalog.package_summary(s, p)
    return {
        "package": package_row(p, None),
        "versions": [{"version": v.version, "status": v.status, "origin": v.origin_type,
                      "published": v.published_time, "created": v.created_at} for v in rows[:PAGE_SIZE]],
        "pager": pager,
        "origin": summary["originConfiguration"]["restrictions"],
        "origin_explicit": bool(p.origin_publish or p.origin_upstream),
        "default_version": catalog.default_display_version(s, p),
        "can_origin": authz.is_allowed(arca, s, principal, "codeartifact:PutPackageOriginConfiguration", d, r),
    }


def version_page(arca: Arca, s: Session, principal: Principal, d: Domain, r: Repository, p: Package,
                 version: str) -> dict:
    v = pk.get_version(s, p, version)
    desc = catalog.version_description(r, p, v)
    attrs = v.attributes or {}
    assets = [catalog.asset_summary(a) for a in pk.list_assets(s, v)]
    deps = attrs.get("dependencies") or []
    readme = attrs.get("readme") or ""
    offered = [a for a in OFFERED.get(v.status, ())
               if authz.is_allowed(arca, s, principal, ACTIONS[a][0], d, r)]
    return {"package": package_row(p, None), "version": desc, "status": v.status,
            "published": v.published_time, "created": v.created_at,
            "assets": assets, "dependencies": deps if isinstance(deps, list) else [],
            "readme": readme if isinstance(readme, str) else "", "actions": offered,
            "licenses": desc.get("licenses") or []}


# ---- changes (the control plane's service calls) ------------------------------------------------------

def act(arca: Arca, s: Session, principal: Principal, d: Domain, r: Repository, p: Package, version: str,
        action: str) -> dict:
    """Run a console action through the same service function as the API; raise on refusal."""
    if action not in ACTIONS:
        raise ValidationError(f"Unknown action {action!r}")
    api_action, target, _label, _done = ACTIONS[action]
    authz.require(arca, s, principal, api_action, d, r)
    if api_action == "codeartifact:UpdatePackageVersionsStatus":
        out = packages.change_status(s, p, [version], target)
    elif api_action == "codeartifact:DisposePackageVersions":
        out = packages.dispose(s, p, [version])
    else:
        out = packages.remove(s, p, [version])
    return out


def set_origin(arca: Arca, s: Session, principal: Principal, d: Domain, r: Repository, p: Package,
               publish: str, upstream: str) -> None:
    """PutPackageOriginConfiguration, as the control plane does it."""
    authz.require(arca, s, principal, "codeartifact:PutPackageOriginConfiguration", d, r)
    check_modes(publish, upstream)
    p.origin_publish, p.origin_upstream = publish, upstream
    pk.bump(s, p)
