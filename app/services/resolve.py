"""Lookups that read paths share: the repository a request addresses, a file by its coordinates,
rendered package documents cached per package revision, and the resolution order through
upstream repositories and external connections (the repository itself, then its upstreams
depth-first in order, then the external connection; first hit wins).

Every function that serves a caller checks `codeartifact:ReadFromRepository` in the same
transaction as the read."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Callable, Hashable

from sqlalchemy import bindparam, exists, or_, select, true
from sqlalchemy.orm import Session

from app.db.models import Asset, Blob, DistTag, Domain, Package, PackageVersion, Repository, RepositoryUpstream
from app.domain.connections import Connection
from app.domain.coords import Coordinates
from app.domain.errors import AccessDenied, NotFound
from app.domain.status import DOWNLOADABLE, PUBLISHED
from app.domain.views import FileRow, IndexFile, PackageState, PackageView, VersionRow
from app.services import authz, connections, origins
from app.services.caches import MISS, Cache
from app.services.context import Arca, Principal, RepoRef
from app.services.origins import check_upstream_allowed
from app.services.rows import display_name

READ = authz.READ


# ---- the repository of a request ------------------------------------------------------------------

def cached_repository(arca: Arca, domain: str, repository: str) -> Any:
    """RepoRef, None (no such repository), False (no such domain), or MISS: no database access."""
    return arca.caches.repositories.get((domain, repository))


def lookup_repository(arca: Arca, domain: str, repository: str) -> RepoRef | None | bool:
    """RepoRef, or False when the domain is unknown, None when only the repository is."""
    hit = cached_repository(arca, domain, repository)
    if hit is not MISS:
        return hit
    with arca.db.read() as s:
        d = s.scalar(select(Domain).where(Domain.name == domain))
        if d is None:
            value: RepoRef | None | bool = False
        else:
            r = s.scalar(select(Repository).where(Repository.domain_id == d.id, Repository.name == repository))
            value = None if r is None else RepoRef(d.id, d.name, r.id, r.name, r.external_connection)
    return arca.caches.repositories.put((domain, repository), value)


def check_permission(arca: Arca, principal: Principal, action: str, ref: RepoRef) -> None:
    """AccessDenied unless `principal` may do `action` in the repository (admins: no lookup)."""
    if principal.is_admin:
        return
    with arca.db.read() as s:
        authz.require_ref(arca, s, principal, action, ref)


# ---- files --------------------------------------------------------------------------------------------

_PACKAGE = (Package.repository_id == bindparam("repo"), Package.format == bindparam("fmt"),
            Package.namespace == bindparam("ns"), Package.name == bindparam("name"))
# Hot paths: prebuilt Core queries (column rows, no ORM objects), compiled once.
_FILE = (select(Blob.sha256, Blob.sha1, Blob.md5, Blob.sha512, Blob.size, PackageVersion.status, Asset.attributes,
                PackageVersion.version, PackageVersion.id.label("version_id"))
         .join_from(Package, PackageVersion, PackageVersion.package_id == Package.id)
         .join(Asset, Asset.package_version_id == PackageVersion.id)
         .join(Blob, Blob.id == Asset.blob_id))
_FILE_IN_VERSION = _FILE.where(*_PACKAGE, PackageVersion.version == bindparam("version"),
                               Asset.name == bindparam("file"))
_FILE_BY_NAME = _FILE.where(*_PACKAGE, Asset.name == bindparam("file"))
_STATE = select(Package.id, Package.revision, Package.updated_at).where(*_PACKAGE)


def _params(repository_id: int, c: Coordinates, **more) -> dict:
    return {"repo": repository_id, "fmt": c.format, "ns": c.namespace or "", "name": c.name, **more}


def find_file(s: Session, repository_id: int, c: Coordinates, version: str | None, name: str) -> FileRow | None:
    """The file `name` of `version` (None: of whichever version holds it, for formats whose file
    names carry the version), in any status."""
    if version is None:
        row = s.execute(_FILE_BY_NAME, _params(repository_id, c, file=name)).first()
    else:
        row = s.execute(_FILE_IN_VERSION, _params(repository_id, c, version=version, file=name)).first()
    if row is None:
        return None
    return FileRow(row.sha256, row.sha1, row.md5, row.sha512, row.size, row.status, row.attributes or {},
                   row.version, row.version_id)


def readable_file(arca: Arca, principal: Principal, ref: RepoRef, c: Coordinates, version: str | None,
                  name: str) -> FileRow | None:
    """A downloadable file of the repository itself (READ checked), or None."""
    with arca.db.read() as s:
        authz.require_ref(arca, s, principal, READ, ref)
        row = find_file(s, ref.repository_id, c, version, name)
    if row is None or row.status not in DOWNLOADABLE:
        return None
    arca.downloads.note(row.version_id)
    return row


def stored_file(arca: Arca, ref: RepoRef, c: Coordinates, version: str | None, name: str) -> FileRow | None:
    """The file whatever its version's status (a publisher's own view: checksum uploads)."""
    with arca.db.read() as s:
        return find_file(s, ref.repository_id, c, version, name)


def first_file(arca: Arca, repository_ids: list[int], c: Coordinates, version: str | None,
               name: str) -> FileRow | None:
    """The first downloadable copy of a file in these repositories, in this order."""
    with arca.db.read() as s:
        for rid in repository_ids:
            row = find_file(s, rid, c, version, name)
            if row is not None and row.status in DOWNLOADABLE:
                arca.downloads.note(row.version_id)
                return row
    return None


def chain_file(arca: Arca, chain: "Chain", c: Coordinates, version: str | None, name: str) -> FileRow | None:
    """The first downloadable copy of a file in the repositories of a chain, in order, leaving out
    versions a repository may not serve through it (`Local.hidden`)."""
    with arca.db.read() as s:
        for rid in chain.repository_ids():
            row = find_file(s, rid, c, version, name)
            local = chain.local.get(rid)
            if row is None or row.status not in DOWNLOADABLE or (local is not None and row.version in local.hidden):
                continue
            return row
    return None


def version_status(arca: Arca, repository_id: int, c: Coordinates, version: str) -> str | None:
    with arca.db.read() as s:
        return s.scalar(select(PackageVersion.status).join(Package, Package.id == PackageVersion.package_id)
                        .where(*_PACKAGE, PackageVersion.version == version), _params(repository_id, c))


# ---- package documents, rendered once per revision ----------------------------------------------------

def package_state(s: Session, repository_id: int, c: Coordinates) -> PackageState | None:
    row = s.execute(_STATE, _params(repository_id, c)).first()
    return None if row is None else PackageState(row.id, row.revision, row.updated_at)


def document(arca: Arca, principal: Principal, ref: RepoRef, c: Coordinates, *, cache: Cache, variant: Any,
             load: Callable[[Session, PackageState], Any], render: Callable[[Any], Any],
             missing: str) -> tuple[PackageState, Any]:
    """(state, rendering) of a package document: READ is checked and the package's revision read in
    one transaction; the rendering cached for that revision is returned, else `load` reads the
    view (in the same transaction) and the pure `render` makes it. NotFound(`missing`) when the
    repository has no such package."""
    with arca.db.read() as s:
        authz.require_ref(arca, s, principal, READ, ref)
        state = package_state(s, ref.repository_id, c)
        if state is None:
            raise NotFound(missing)
        hit = cache.get((state.id, variant), state.revision)
        if hit is not MISS:
            return state, hit
        view = load(s, state)
    return state, cache.put((state.id, variant), render(view), state.revision)


def published_versions(s: Session, state: PackageState) -> list[str]:
    return list(s.scalars(select(PackageVersion.version).where(
        PackageVersion.package_id == state.id, PackageVersion.status == PUBLISHED)))


def published_version_times(s: Session, state: PackageState) -> list[tuple[str, Any]]:
    """(version, last change) of every Published version."""
    return [tuple(r) for r in s.execute(select(PackageVersion.version, PackageVersion.updated_at).where(
        PackageVersion.package_id == state.id, PackageVersion.status == PUBLISHED))]


def version_files(s: Session, state: PackageState, version: str) -> list[tuple[str, Any]] | None:
    """(file name, stored at) of a downloadable version's files; None when it is not downloadable."""
    ver = s.execute(select(PackageVersion.id, PackageVersion.status).where(
        PackageVersion.package_id == state.id, PackageVersion.version == version)).first()
    if ver is None or ver.status not in DOWNLOADABLE:
        return None
    return [tuple(r) for r in s.execute(select(Asset.name, Asset.created_at).where(
        Asset.package_version_id == ver.id))]


def index_files(s: Session, state: PackageState, statuses: tuple[str, ...] = (PUBLISHED,)) -> list[IndexFile]:
    """Every file of the package's versions in `statuses`, in one indexed query."""
    q = (select(PackageVersion.version, PackageVersion.status, Asset.name, Asset.attributes, Asset.created_at,
                Blob.sha256, Blob.size)
         .join(Asset, Asset.package_version_id == PackageVersion.id)
         .join(Blob, Blob.id == Asset.blob_id)
         .where(PackageVersion.package_id == state.id, PackageVersion.status.in_(statuses)))
    return [IndexFile(v, name, sha256, size, created, attrs or {}, status)
            for v, status, name, attrs, created, sha256, size in s.execute(q)]


def downloadable_files(s: Session, state: PackageState) -> list[IndexFile]:
    """Every file of the package's Published and Unlisted versions (PyPI lists Unlisted ones as
    yanked, PEP 592)."""
    return index_files(s, state, DOWNLOADABLE)


def package_view(s: Session, state: PackageState, statuses: tuple[str, ...] = (PUBLISHED,)) -> PackageView:
    """The versions (with their one file's digests) and dist-tags of a package."""
    pkg = s.get(Package, state.id)
    q = (select(PackageVersion.version, PackageVersion.status, PackageVersion.published_time,
                PackageVersion.created_at, PackageVersion.attributes, Blob.sha512, Blob.sha1)
         .select_from(PackageVersion)
         .outerjoin(Asset, Asset.package_version_id == PackageVersion.id)
         .outerjoin(Blob, Blob.id == Asset.blob_id)
         .where(PackageVersion.package_id == pkg.id, PackageVersion.status.in_(statuses)))
    rows = [VersionRow(r.version, r.status, r.published_time or r.created_at, r.attributes or {}, r.sha512, r.sha1)
            for r in s.execute(q)]
    tags = dict(s.execute(select(DistTag.tag, DistTag.version).where(DistTag.package_id == pkg.id)).all())
    return PackageView(pkg.id, display_name(pkg), pkg.revision, pkg.created_at, pkg.updated_at, rows, tags)


def read_view(arca: Arca, principal: Principal, ref: RepoRef, c: Coordinates, *,
              load: Callable[[Session, PackageState], Any], missing: str) -> Any:
    """`load`'s view of a package, uncached (READ checked; NotFound(`missing`) without the package)."""
    with arca.db.read() as s:
        authz.require_ref(arca, s, principal, READ, ref)
        state = package_state(s, ref.repository_id, c)
        if state is None:
            raise NotFound(missing)
        return load(s, state)


def project_names(arca: Arca, principal: Principal, ref: RepoRef, fmt: str) -> list[tuple[str, str]]:
    """(name, display name) of every package of `fmt` with at least one Published version in the
    repository and, when it reads through upstreams, in every repository it reaches (the remote
    behind an external connection counts with what was retained from it)."""
    published = exists().where(PackageVersion.package_id == Package.id, PackageVersion.status == PUBLISHED)
    with arca.db.read() as s:
        authz.require_ref(arca, s, principal, READ, ref)
        ids = reachable(arca, s, ref)
        q = (select(Package.name, Package.display_name)
             .where(Package.repository_id.in_(ids), Package.format == fmt, published)
             .order_by(Package.name))
        names: dict[str, str] = {}
        for n, d in s.execute(q):
            names.setdefault(n, d or n)
        return list(names.items())


def packages_under(arca: Arca, principal: Principal, ref: RepoRef, fmt: str,
                   namespace: str) -> list[tuple[str, str]]:
    """(namespace, name) of every package of `fmt` with a Published version whose namespace is
    `namespace` or lies below it (`namespace` + "." ...), in the repository and every repository
    it reads through (directory listings)."""
    published = exists().where(PackageVersion.package_id == Package.id, PackageVersion.status == PUBLISHED)
    below = Package.namespace.startswith(namespace + ".", autoescape=True) if namespace else true()
    with arca.db.read() as s:
        authz.require_ref(arca, s, principal, READ, ref)
        q = (select(Package.namespace, Package.name).distinct()
             .where(Package.repository_id.in_(reachable(arca, s, ref)), Package.format == fmt, published,
                    or_(Package.namespace == namespace, below)))
        return [tuple(r) for r in s.execute(q)]


# ---- upstreams --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class RepoNode:
    name: str
    external_connection: str | None
    upstreams: tuple[int, ...]


@dataclass(frozen=True)
class Node:
    """One place to look: a repository's own versions (`external` None), or the external
    connection `external` of repository `repository_id` (retained copies go there), fetched
    through `connection`."""

    repository_id: int
    repository: str
    external: str | None = None
    depth: int = 0
    connection: Connection | None = None
    # A repository whose versions retained from remotes are not served through this order
    # (dependency-confusion protection): only what was published to it counts.
    hide_external: bool = False


def graph(arca: Arca, s: Session, domain_id: int, need: int | None = None) -> dict[int, RepoNode]:
    """Every repository of the domain with its ordered upstream ids (cached briefly per process;
    a repository missing from the cached copy, e.g. just created, reloads it)."""
    hit = arca.caches.graphs.get(domain_id)
    if hit is not MISS and (need is None or need in hit):
        return hit
    repos = {rid: (name, ext) for rid, name, ext in s.execute(
        select(Repository.id, Repository.name, Repository.external_connection)
        .where(Repository.domain_id == domain_id))}
    ups: dict[int, list[int]] = {rid: [] for rid in repos}
    for rid, uid in s.execute(
            select(RepositoryUpstream.repository_id, RepositoryUpstream.upstream_id)
            .join(Repository, Repository.id == RepositoryUpstream.repository_id)
            .where(Repository.domain_id == domain_id).order_by(RepositoryUpstream.repository_id,
                                                                 RepositoryUpstream.position)):
        ups.setdefault(rid, []).append(uid)
    value = {rid: RepoNode(name, ext, tuple(ups.get(rid, ()))) for rid, (name, ext) in repos.items()}
    return arca.caches.graphs.put(domain_id, value)


def reachable(arca: Arca, s: Session, ref: RepoRef) -> list[int]:
    """The repository and every repository it reads through, depth-first (no package's origin
    controls applied: for listings of names)."""
    g = graph(arca, s, ref.domain_id, ref.repository_id)
    out: list[int] = []

    def visit(rid: int) -> None:
        out.append(rid)
        for uid in g[rid].upstreams if rid in g else ():
            if uid not in out:
                visit(uid)

    visit(ref.repository_id)
    return out


def change_token(arca: Arca) -> Hashable | None:
    """What validates the data plane's response cache: it changes whenever anything may have been
    committed on any node; None when this process cannot tell (db/changes.py)."""
    return arca.db.changes.token()


def cached_reads_through(arca: Arca, ref: RepoRef) -> bool | None:
    """Does the repository read through upstreams or a connection? None when the cached graph
    cannot tell (no database access)."""
    hit = arca.caches.graphs.get(ref.domain_id)
    if hit is MISS or ref.repository_id not in hit:
        return None
    info = hit[ref.repository_id]
    return bool(info.upstreams or info.external_connection)


def reads_through(arca: Arca, ref: RepoRef) -> bool:
    value = cached_reads_through(arca, ref)
    if value is None:
        with arca.db.read() as s:
            info = graph(arca, s, ref.domain_id, ref.repository_id).get(ref.repository_id)
            value = bool(info and (info.upstreams or info.external_connection))
    return value


def order(arca: Arca, s: Session, domain_id: int, repository_id: int, c: Coordinates,
          blocked: list[str] | None = None) -> list[Node]:
    """The places to look for one package, first hit wins. A repository's upstreams (and its
    external connection) are skipped when its origin controls or package groups block taking
    this package from there; an external connection of another format than the package's, or
    without a URL, is skipped too; and so is every external connection when the package is
    published internally anywhere in the order (dependency-confusion protection), unless allowed
    explicitly. The reasons for the latter go to `blocked`."""
    g = graph(arca, s, domain_id, repository_id)
    out: list[Node] = []
    paths: dict[int, list[int]] = {}  # index of an external node in `out` -> repository ids down to it
    seen: set[int] = set()
    stack: list[int] = []
    domain_row = s.get(Domain, domain_id)
    repo_rows: dict[int, Repository] = {}

    def row(rid: int) -> Repository:
        return repo_rows.get(rid) or repo_rows.setdefault(rid, s.get(Repository, rid))

    def allowed(rid: int, external: bool) -> bool:
        try:
            check_upstream_allowed(s, domain_row, row(rid), c.format, c.namespace, c.name, external=external)
        except AccessDenied:
            return False
        return True

    def visit(rid: int, depth: int) -> None:
        seen.add(rid)
        info = g.get(rid)
        if info is None:
            return
        stack.append(rid)
        out.append(Node(rid, info.name, None, depth))
        if info.upstreams and allowed(rid, False):
            for uid in info.upstreams:
                if uid not in seen:
                    visit(uid, depth + 1)
        conn = connections.lookup(arca, s, info.external_connection)
        if conn is not None and conn.format == c.format and allowed(rid, True):
            paths[len(out)] = list(stack)
            out.append(Node(rid, info.name, conn.name, depth, conn))
        stack.pop()

    visit(repository_id, 0)
    repos = [n.repository_id for n in out if n.external is None]
    if (paths or len(repos) > 1) and origins.protection_on(domain_row):
        holders = origins.internal_holders(s, repos, c.format, c.namespace, c.name)
        if holders:
            _protect(s, domain_row, out, paths, [row(h).name for h in holders], row, c, g[repository_id].name,
                     blocked)
    return out


def _protect(s: Session, domain_row: Domain, out: list[Node], paths: dict[int, list[int]], holders: list[str],
             row: Callable[[int], Repository], c: Coordinates, asked: str, blocked: list[str] | None) -> None:
    """The package is published internally in `holders`: drop every external connection of the
    order, and hide every repository's retained external versions, except along a path someone
    allowed explicitly."""
    allowed: set[int] = set()
    for i, path in sorted(paths.items(), reverse=True):
        if origins.external_explicitly_allowed(s, domain_row, [row(r) for r in path], c.format, c.namespace, c.name):
            allowed.add(out[i].repository_id)
            continue
        if blocked is not None and not blocked:
            blocked.append(origins.confusion_reason(c.format, c.namespace, c.name, holders, asked))
        del out[i]
    for i, n in enumerate(out):
        if n.external is None and n.repository_id not in allowed:
            out[i] = replace(n, hide_external=True)


@dataclass
class Local:
    """What one repository of a chain holds of a package: its view (from `load`), every version it
    has in any status (a version it holds is never taken from its remote as a new version), and
    which of them were retained from its external connection (origin EXTERNAL: the remote's
    other files of such a version may still join it)."""

    view: Any
    held: set[str]
    retained: set[str] = field(default_factory=set)
    hidden: set[str] = field(default_factory=set)  # retained versions not served through this order


@dataclass
class Chain:
    nodes: list[Node]
    local: dict[int, Local]
    blocked: list[str] = field(default_factory=list)  # why an external connection was left out

    def missing(self, message: str) -> str:
        """A not-found message, with the reason an external connection was not asked."""
        return f"{message}. {self.blocked[0]}" if self.blocked else message

    def repository_ids(self) -> list[int]:
        return [n.repository_id for n in self.nodes if n.external is None]

    def held_before(self, node: Node, version: str) -> str | None:
        """The repository ahead of `node` in the order that holds `version` (other than `node`'s
        own retained copy, which a remote file may join), or None."""
        for n in self.nodes:
            if n is node:
                return None
            local = self.local.get(n.repository_id)
            if n.external is None and local is not None and version in local.held:
                if n.repository_id == node.repository_id and version in local.retained:
                    continue
                return n.repository
        return None


def no_view(s: Session, state: PackageState) -> None:
    """A `load` for callers that need only what each repository holds."""
    return None


def chain(arca: Arca, principal: Principal, ref: RepoRef, c: Coordinates, *,
          load: Callable[[Session, PackageState], Any] | None = None) -> Chain:
    """The resolution order for a package (READ checked) and, with `load`, each repository's view
    of it (None where it has no such package) and the versions it holds."""
    with arca.db.read() as s:
        authz.require_ref(arca, s, principal, READ, ref)
        blocked: list[str] = []
        nodes = order(arca, s, ref.domain_id, ref.repository_id, c, blocked)
        local: dict[int, Local] = {}
        if load is not None:
            for n in nodes:
                if n.external or n.repository_id in local:
                    continue
                state = package_state(s, n.repository_id, c)
                if state is None:
                    local[n.repository_id] = Local(None, set())
                    continue
                kinds = dict(s.execute(select(PackageVersion.version, PackageVersion.origin_type)
                                       .where(PackageVersion.package_id == state.id)).all())
                retained = {v for v, o in kinds.items() if o == "EXTERNAL"}
                local[n.repository_id] = Local(load(s, state), set(kinds), retained,
                                               retained if n.hide_external else set())
        return Chain(nodes, local, blocked)
