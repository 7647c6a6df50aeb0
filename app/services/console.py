"""What the web console's pages show, and its version actions.

Each page function opens one read transaction, checks that the signed-in principal may see what
it asks for, and returns plain dicts for the templates. Every list is one page of rows
(LIMIT/OFFSET on an indexed order) plus, for that page only, grouped aggregate queries; nothing
loads a whole repository or all versions of a package.

The console's changes are the control plane's use cases (`packages.update_versions_status`,
`dispose_versions`, `delete_versions`, `put_origin_configuration`), called after the console's
own view check, so a change needs both the right to see the package and the API action."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.db.models import Asset, Blob, Domain, Package, PackageVersion, Repository
from app.domain.errors import AccessDenied, ValidationError
from app.domain.pep503 import normalize as pep503
from app.domain.status import ARCHIVED, DISPOSED, PUBLISHED, UNFINISHED, UNLISTED
from app.services import authz, catalog, cleanup, domains as dm, packages, rows
from app.services.context import Arca, Principal
from app.services.packages import PackageAt

PAGE_SIZE = 50
FORMATS = ("maven", "npm", "pypi", "generic", "nuget", "ruby", "cargo", "swift")

# Seeing something in the console needs the API action that shows it, or the right to read the
# repository's contents (which exposes the same facts through the data plane's indexes).
VIEW_DOMAIN = ("codeartifact:DescribeDomain", "codeartifact:ListRepositoriesInDomain")
VIEW_REPOSITORY = ("codeartifact:DescribeRepository", authz.READ)
VIEW_PACKAGES = ("codeartifact:ListPackages", authz.READ)
VIEW_VERSIONS = ("codeartifact:ListPackageVersions", authz.READ)
VIEW_VERSION = ("codeartifact:DescribePackageVersion", authz.READ)
GET_TOKEN = "codeartifact:GetAuthorizationToken"
PUT_ORIGIN = "codeartifact:PutPackageOriginConfiguration"
UPDATE_STATUS = "codeartifact:UpdatePackageVersionsStatus"
DISPOSE = "codeartifact:DisposePackageVersions"

# Console action -> (API action, target status of UpdatePackageVersionsStatus or None)
ACTIONS = {
    "publish": (UPDATE_STATUS, PUBLISHED),
    "restore": (UPDATE_STATUS, PUBLISHED),
    "unlist": (UPDATE_STATUS, UNLISTED),
    "archive": (UPDATE_STATUS, ARCHIVED),
    "dispose": (DISPOSE, None),
    "delete": (packages.DELETE_VERSIONS, None),
}
# Which actions make sense from which status (the service enforces the rest).
OFFERED = {
    UNFINISHED: ("publish", "unlist", "archive", "dispose", "delete"),
    PUBLISHED: ("unlist", "archive", "dispose", "delete"),
    UNLISTED: ("restore", "archive", "dispose", "delete"),
    ARCHIVED: ("restore", "unlist", "dispose", "delete"),
    DISPOSED: ("delete",),
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
    """A page number as a request gives it (text, or None for the first page). Each page function
    reads it after its permission check, so a refusal does not depend on it."""
    try:
        n = int(raw or 1)
    except ValueError:
        raise ValidationError("page must be a positive integer") from None
    if not 1 <= n <= 1_000_000:
        raise ValidationError("page must be a positive integer")
    return n


def api_action(action: str) -> str:
    """The control-plane action behind a console action (ValidationError for an unknown one)."""
    if action not in ACTIONS:
        raise ValidationError(f"Unknown action {action!r}")
    return ACTIONS[action][0]


# ---- who may see what -------------------------------------------------------------------------------

def _allowed_any(arca: Arca, s: Session, principal: Principal, actions, d: Domain,
                 r: Repository | None = None) -> bool:
    return any(authz.is_allowed(arca, s, principal, a, d, r) for a in actions)


def _domain_visible(arca: Arca, s: Session, principal: Principal, d: Domain) -> bool:
    if _allowed_any(arca, s, principal, VIEW_DOMAIN, d):
        return True
    repos = s.scalars(select(Repository).where(Repository.domain_id == d.id).order_by(Repository.name).limit(200))
    return any(_allowed_any(arca, s, principal, VIEW_REPOSITORY, d, r) for r in repos)


def _domain(arca: Arca, s: Session, principal: Principal, domain: str) -> Domain:
    """The domain row, when the principal may see the domain or one of its repositories."""
    d = dm.get_domain(s, domain)
    if not _domain_visible(arca, s, principal, d):
        raise AccessDenied(f"You ({principal.name}) may not view domain {d.name}")
    return d


def _repository(arca: Arca, s: Session, principal: Principal, domain: str, repository: str,
                actions) -> tuple[Domain, Repository]:
    """(domain row, repository row) when the principal may do one of `actions` there."""
    d = dm.get_domain(s, domain)
    r = dm.get_repository(s, d, repository)
    if not _allowed_any(arca, s, principal, actions, d, r):
        raise AccessDenied(f"You ({principal.name}) may not view {d.name}/{r.name}: it needs {' or '.join(actions)}")
    return d, r


def _package(arca: Arca, s: Session, principal: Principal, at: PackageAt,
             actions) -> tuple[Domain, Repository, Package]:
    d, r = _repository(arca, s, principal, at.domain, at.repository, actions)
    if at.coords.format not in FORMATS:
        raise ValidationError(f"Unknown format {at.coords.format!r}")
    return d, r, rows.get_package(s, r, at.coords)


# ---- domains and repositories -------------------------------------------------------------------------

def domains_page(arca: Arca, principal: Principal, page: str | None) -> dict:
    pager = Pager(page_number(page), PAGE_SIZE, None, False)
    with arca.db.read() as s:
        found = list(s.scalars(select(Domain).order_by(Domain.name).offset(pager.offset).limit(PAGE_SIZE + 1)))
        pager.has_next = len(found) > PAGE_SIZE
        visible = [d for d in found[:PAGE_SIZE] if _domain_visible(arca, s, principal, d)]
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


def repositories_page(arca: Arca, principal: Principal, domain: str, page: str | None) -> dict:
    """The repositories of a domain the principal may see, with their facts."""
    with arca.db.read() as s:
        d = _domain(arca, s, principal, domain)
        pager = Pager(page_number(page), PAGE_SIZE, None, False)
        found = list(s.scalars(select(Repository).where(Repository.domain_id == d.id).order_by(Repository.name)
                               .offset(pager.offset).limit(PAGE_SIZE + 1)))
        pager.has_next = len(found) > PAGE_SIZE
        visible = [r for r in found[:PAGE_SIZE] if _allowed_any(arca, s, principal, VIEW_REPOSITORY, d, r)]
        counts, sizes = _repo_stats(s, [r.id for r in visible])
        repos = []
        for r in visible:
            desc = dm.repository_description(arca, s, d, r)
            repos.append({"name": r.name, "description": desc["description"],
                          "upstreams": [u["repositoryName"] for u in desc["upstreams"]],
                          "external": desc["externalConnections"], "packages": counts.get(r.id, 0),
                          "size": sizes.get(r.id, 0), "created": r.created_at})
        can_token = authz.is_allowed(arca, s, principal, GET_TOKEN, d)
    return {"repositories": repos, "pager": pager, "can_token": can_token}


def _repository_header(arca: Arca, s: Session, d: Domain, r: Repository) -> dict:
    desc = dm.repository_description(arca, s, d, r)
    counts, sizes = _repo_stats(s, [r.id])
    return {"name": r.name, "description": desc["description"], "arn": desc["arn"],
            "upstreams": [u["repositoryName"] for u in desc["upstreams"]], "external": desc["externalConnections"],
            "packages": counts.get(r.id, 0), "size": sizes.get(r.id, 0), "cleanup": cleanup.summary_lines(s, d, r)}


def connect_page(arca: Arca, principal: Principal, domain: str, repository: str) -> dict:
    """The repository's header, and whether the principal may get a token for its domain."""
    with arca.db.read() as s:
        d, r = _repository(arca, s, principal, domain, repository, VIEW_REPOSITORY)
        return {"repo": _repository_header(arca, s, d, r),
                "can_token": authz.is_allowed(arca, s, principal, GET_TOKEN, d)}


# ---- packages -----------------------------------------------------------------------------------------

def _filters(q, fmt: str | None, namespace: str | None, prefix: str | None):
    if fmt:
        if fmt not in FORMATS:
            raise ValidationError(f"Unknown format {fmt!r}")
        q = q.where(Package.format == fmt)
    if namespace:
        q = q.where(Package.namespace.startswith(namespace.lstrip("@"), autoescape=True))
    if prefix:
        if fmt == "pypi":
            prefix = pep503(prefix)
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


def _package_row(p: Package, extra: dict | None) -> dict:
    return {"format": p.format, "namespace": p.namespace, "name": p.name, "display": rows.display_name(p),
            "updated": p.updated_at, "versions": (extra or {}).get("count", 0),
            "latest": (extra or {}).get("latest"), "latest_status": (extra or {}).get("status")}


def repository_page(arca: Arca, principal: Principal, domain: str, repository: str, fmt: str | None,
                    namespace: str | None, prefix: str | None, page: str | None) -> dict:
    """The repository's header and one page of its packages, filtered."""
    with arca.db.read() as s:
        d, r = _repository(arca, s, principal, domain, repository, VIEW_PACKAGES)
        header = _repository_header(arca, s, d, r)
        number = page_number(page)
        base = _filters(select(Package).where(Package.repository_id == r.id), fmt, namespace, prefix)
        total = s.scalar(_filters(select(func.count()).select_from(Package).where(Package.repository_id == r.id),
                                  fmt, namespace, prefix))
        pager = Pager(number, PAGE_SIZE, total, False)
        found = list(s.scalars(base.order_by(Package.format, Package.namespace, Package.name)
                               .offset(pager.offset).limit(PAGE_SIZE + 1)))
        pager.has_next = len(found) > PAGE_SIZE
        found = found[:PAGE_SIZE]
        extra = _latest(s, [p.id for p in found])
        return {"repo": header, "packages": [_package_row(p, extra.get(p.id)) for p in found], "pager": pager}


def search_page(arca: Arca, principal: Principal, domain: str, query: str, page: str | None) -> dict:
    """Packages whose name contains `query` (case-insensitive), in the repositories the user may see."""
    with arca.db.read() as s:
        d = _domain(arca, s, principal, domain)
        pager = Pager(page_number(page), PAGE_SIZE, None, False)
        repos = list(s.scalars(select(Repository).where(Repository.domain_id == d.id).order_by(Repository.name)))
        visible = {r.id: r.name for r in repos if _allowed_any(arca, s, principal, VIEW_PACKAGES, d, r)}
        if not query or not visible:
            return {"results": [], "pager": pager}
        q = (select(Package).where(Package.repository_id.in_(list(visible)))
             .where(func.lower(Package.name).contains(query.lower().lstrip("@"), autoescape=True))
             .order_by(Package.name, Package.format, Package.namespace, Package.repository_id))
        found = list(s.scalars(q.offset(pager.offset).limit(PAGE_SIZE + 1)))
        pager.has_next = len(found) > PAGE_SIZE
        found = found[:PAGE_SIZE]
        extra = _latest(s, [p.id for p in found])
        return {"results": [{**_package_row(p, extra.get(p.id)), "repository": visible[p.repository_id]}
                            for p in found], "pager": pager}


def versions_page(arca: Arca, principal: Principal, at: PackageAt, page: str | None) -> dict:
    """A package: its facts, origin controls and one page of versions, newest first."""
    with arca.db.read() as s:
        d, r, p = _package(arca, s, principal, at, VIEW_VERSIONS)
        number = page_number(page)
        base = select(PackageVersion).where(PackageVersion.package_id == p.id)
        total = s.scalar(select(func.count()).select_from(PackageVersion).where(PackageVersion.package_id == p.id))
        pager = Pager(number, PAGE_SIZE, total, False)
        found = list(s.scalars(base.order_by(PackageVersion.id.desc()).offset(pager.offset).limit(PAGE_SIZE + 1)))
        pager.has_next = len(found) > PAGE_SIZE
        summary = catalog.package_summary(s, p)
        return {
            "package": _package_row(p, None),
            "versions": [{"version": v.version, "status": v.status, "origin": v.origin_type,
                          "published": v.published_time, "created": v.created_at} for v in found[:PAGE_SIZE]],
            "pager": pager,
            "origin": summary["originConfiguration"]["restrictions"],
            "origin_explicit": bool(p.origin_publish or p.origin_upstream),
            "default_version": catalog.default_display_version(s, p),
            "can_origin": authz.is_allowed(arca, s, principal, PUT_ORIGIN, d, r),
        }


def version_page(arca: Arca, principal: Principal, at: PackageAt, version: str) -> dict:
    """One version: description, assets, dependencies, readme, and the actions the principal may take."""
    with arca.db.read() as s:
        d, r, p = _package(arca, s, principal, at, VIEW_VERSION)
        v = rows.get_version(s, p, version)
        desc = catalog.version_description(r, p, v)
        attrs = v.attributes or {}
        assets = [catalog.asset_summary(a) for a in rows.list_assets(s, v)]
        deps = attrs.get("dependencies") or []
        readme = attrs.get("readme") or ""
        offered = [a for a in OFFERED.get(v.status, ())
                   if authz.is_allowed(arca, s, principal, ACTIONS[a][0], d, r)]
        return {"package": _package_row(p, None), "version": desc, "status": v.status,
                "published": v.published_time, "created": v.created_at,
                "assets": assets, "dependencies": deps if isinstance(deps, list) else [],
                "readme": readme if isinstance(readme, str) else "", "actions": offered,
                "readme_content_type": attrs.get("readme_content_type") if isinstance(
                    attrs.get("readme_content_type"), str) else None,
                "licenses": desc.get("licenses") or []}


# ---- changes: the control plane's use cases, after the console's view check ----------------------------

def _require_package(arca: Arca, principal: Principal, at: PackageAt, actions) -> None:
    with arca.db.read() as s:
        _package(arca, s, principal, at, actions)


def change_version(arca: Arca, principal: Principal, at: PackageAt, version: str, action: str) -> dict:
    """Run a console action on one version; the batch result of the API call it stands for."""
    operation, target = api_action(action), ACTIONS[action][1]
    _require_package(arca, principal, at, VIEW_VERSION)
    if operation == UPDATE_STATUS:
        return packages.update_versions_status(arca, principal, at, [version], target)
    if operation == DISPOSE:
        return packages.dispose_versions(arca, principal, at, [version])
    return packages.delete_versions(arca, principal, at, [version])


def put_origin(arca: Arca, principal: Principal, at: PackageAt, publish: str, upstream: str) -> dict:
    """The origin controls of a package the principal can see (PutPackageOriginConfiguration)."""
    _require_package(arca, principal, at, VIEW_VERSIONS)
    return packages.put_origin_configuration(arca, principal, at, publish, upstream)
