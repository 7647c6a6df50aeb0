"""Resolution order through upstream repositories and external connections.

Computed from the `RepositoryUpstream` rows of the domain (kept per process for a couple of
seconds, like the repository lookup of the data plane), then filtered per package by the origin
controls (`check_upstream_allowed`) of the repository that would take the package from upstream."""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy import select

from app.db.models import Domain, Repository, RepositoryUpstream
from app.domain.errors import AccessDenied
from app.services.package_groups import check_upstream_allowed

GRAPH_TTL = 2.0


@dataclass(frozen=True)
class Node:
    """One place to look: a repository's own versions (`external` None), or the external
    connection `external` of repository `repository_id` (retained copies go there)."""

    repository_id: int
    repository: str
    external: str | None = None
    depth: int = 0


@dataclass(frozen=True)
class RepoInfo:
    name: str
    external_connection: str | None
    upstreams: tuple[int, ...]


def graph(arca, s, domain_id: int, need: int | None = None) -> dict[int, RepoInfo]:
    """Every repository of the domain with its ordered upstream ids (cached briefly per process;
    a repository missing from the cached copy, e.g. just created, reloads it)."""
    cache = arca.caches.setdefault("upstream_graph", {})
    hit = cache.get(domain_id)
    if hit and hit[0] > time.monotonic() and (need is None or need in hit[1]):
        return hit[1]
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
    value = {rid: RepoInfo(name, ext, tuple(ups.get(rid, ()))) for rid, (name, ext) in repos.items()}
    cache[domain_id] = (time.monotonic() + GRAPH_TTL, value)
    return value


def cached_has_upstreams(arca, domain_id: int, repository_id: int) -> bool | None:
    """From the per-process graph without touching the database; None when not cached."""
    hit = arca.caches.get("upstream_graph", {}).get(domain_id)
    if not hit or hit[0] <= time.monotonic():
        return None
    info = hit[1].get(repository_id)
    if info is None:
        return None
    return bool(info.upstreams or info.external_connection)


async def active(dp) -> bool:
    """Does the data-plane request's repository read through upstreams or a connection?"""
    value = cached_has_upstreams(dp.arca, dp.repo.domain_id, dp.repo.repository_id)
    if value is None:
        from starlette.concurrency import run_in_threadpool

        def load() -> bool:
            with dp.arca.db.read() as s:
                return has_upstreams(dp.arca, s, dp.repo.domain_id, dp.repo.repository_id)

        value = await run_in_threadpool(load)
    return value


def has_upstreams(arca, s, domain_id: int, repository_id: int) -> bool:
    info = graph(arca, s, domain_id, repository_id).get(repository_id)
    return bool(info and (info.upstreams or info.external_connection))


def order(arca, s, domain_id: int, repository_id: int, fmt: str, namespace: str | None, name: str,
          *, supported: tuple[str, ...] = ()) -> list[Node]:
    """The places to look for one package, first hit wins. A repository's upstreams (and its
    external connection) are skipped when its origin controls or package groups block taking
    this package from there; `supported` lists the external connections this format can use."""
    g = graph(arca, s, domain_id, repository_id)
    out: list[Node] = []
    seen: set[int] = set()
    domain_row = None
    repo_rows: dict[int, Repository] = {}

    def allowed(rid: int, external: bool) -> bool:
        nonlocal domain_row
        if domain_row is None:
            domain_row = s.get(Domain, domain_id)
        row = repo_rows.get(rid) or repo_rows.setdefault(rid, s.get(Repository, rid))
        try:
            check_upstream_allowed(s, domain_row, row, fmt, namespace, name, external=external)
        except AccessDenied:
            return False
        return True

    def visit(rid: int, depth: int) -> None:
        seen.add(rid)
        info = g.get(rid)
        if info is None:
            return
        out.append(Node(rid, info.name, None, depth))
        if info.upstreams and allowed(rid, False):
            for uid in info.upstreams:
                if uid not in seen:
                    visit(uid, depth + 1)
        ext = info.external_connection
        if ext and (not supported or ext in supported) and allowed(rid, True):
            out.append(Node(rid, info.name, ext, depth))

    visit(repository_id, 0)
    return out
