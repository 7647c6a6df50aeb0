"""Searching a repository's packages by text (npm search), and where the repository reads through.

`scope` is the places a repository's readers see: the repository, then its upstreams depth-first
in order, each repository once, and the external connections met on the way (in that order).
`search_packages` finds the packages of one format in those repositories whose name, scope,
description or manifest mentions every word, with each package's current version (the version
its `latest` dist-tag names, else the newest published); the format ranks and renders them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import String, and_, cast, exists, or_, select

from app.db.models import DistTag, Package, PackageVersion
from app.domain.connections import Connection
from app.domain.status import PUBLISHED
from app.services import authz, connections, resolve
from app.services.context import Arca, Principal, RepoRef

MAX_CANDIDATES = 1000  # packages ranked per search; a search box, not a bulk export
MAX_WORDS = 10


@dataclass(frozen=True)
class Scope:
    repository_ids: tuple[int, ...]
    externals: tuple[tuple[int, Connection], ...]  # (repository holding it, the connection), of one format


@dataclass(frozen=True)
class Hit:
    namespace: str
    name: str
    version: str
    summary: str | None
    published: datetime | None
    attributes: dict[str, Any] = field(default_factory=dict)


def scope(arca: Arca, principal: Principal, ref: RepoRef, fmt: str) -> Scope:
    """Where the repository reads through, and its external connections that serve `fmt` (READ
    checked on the repository, as for every read)."""
    with arca.db.read() as s:
        authz.require_ref(arca, s, principal, resolve.READ, ref)
        graph = resolve.graph(arca, s, ref.domain_id, ref.repository_id)
        repos: list[int] = []
        externals: list[tuple[int, Connection]] = []

        def visit(rid: int) -> None:
            if rid in repos or rid not in graph:
                return
            repos.append(rid)
            node = graph[rid]
            conn = connections.lookup(arca, s, node.external_connection)
            if conn is not None and conn.format == fmt:
                externals.append((rid, conn))
            for up in node.upstreams:
                visit(up)

        visit(ref.repository_id)
        return Scope(tuple(repos), tuple(externals))


def _like(word: str) -> str:
    return "%" + word.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def search_packages(arca: Arca, principal: Principal, ref: RepoRef, fmt: str, words: list[str],
                    where: Scope | None = None) -> list[Hit]:
    """Packages of `fmt` with a Published version, in the repositories the repository reads through,
    that mention every word; one Hit per package name (the first repository in the order wins)."""
    where = where or scope(arca, principal, ref, fmt)
    words = [w for w in words if w][:MAX_WORDS]
    with arca.db.read() as s:
        matches = []
        for w in words:
            like = _like(w)
            mentions = exists().where(PackageVersion.package_id == Package.id, PackageVersion.status == PUBLISHED,
                                      or_(PackageVersion.summary.ilike(like, escape="\\"),
                                          cast(PackageVersion.attributes, String).ilike(like, escape="\\")))
            matches.append(or_(Package.name.ilike(like, escape="\\"), Package.namespace.ilike(like, escape="\\"),
                               mentions))
        published = exists().where(PackageVersion.package_id == Package.id, PackageVersion.status == PUBLISHED)
        rows = s.execute(select(Package.id, Package.repository_id, Package.namespace, Package.name)
                         .where(Package.repository_id.in_(where.repository_ids), Package.format == fmt,
                                published, and_(*matches))
                         .order_by(Package.namespace, Package.name).limit(MAX_CANDIDATES * 2)).all()
        rank = {rid: i for i, rid in enumerate(where.repository_ids)}
        first: dict[tuple[str, str], int] = {}
        for pid, rid, ns, name in sorted(rows, key=lambda r: rank[r.repository_id]):
            first.setdefault((ns, name), pid)
        chosen = list(first.values())[:MAX_CANDIDATES]
        return _current_versions(s, chosen)


def _current_versions(s, package_ids: list[int]) -> list[Hit]:
    """Each package's current version: the one `latest` names when it is Published, else the newest
    published. Columns first; manifests only for the chosen versions."""
    if not package_ids:
        return []
    latest = dict(s.execute(select(DistTag.package_id, DistTag.version)
                            .where(DistTag.package_id.in_(package_ids), DistTag.tag == "latest")).all())
    best: dict[int, tuple] = {}
    for vid, pid, version, when in s.execute(
            select(PackageVersion.id, PackageVersion.package_id, PackageVersion.version,
                   PackageVersion.published_time).where(PackageVersion.package_id.in_(package_ids),
                                                        PackageVersion.status == PUBLISHED)):
        key = (version == latest.get(pid), when.timestamp() if when else 0.0, vid)
        if pid not in best or key > best[pid][0]:
            best[pid] = (key, vid)
    names = {pid: (ns, name) for pid, ns, name in s.execute(
        select(Package.id, Package.namespace, Package.name).where(Package.id.in_(package_ids))).all()}
    chosen = s.scalars(select(PackageVersion).where(PackageVersion.id.in_([vid for _k, vid in best.values()])))
    return [Hit(names[v.package_id][0], names[v.package_id][1], v.version, v.summary, v.published_time,
                dict(v.attributes or {})) for v in chosen]
