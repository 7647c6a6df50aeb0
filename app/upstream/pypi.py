"""PyPI through upstreams and the `public:pypi` external connection.

A project page of a repository with upstreams or a connection merges, per version, the first
place in the resolution order that has it (own Published files, then upstreams depth-first,
then a repository's remote index). A file not held anywhere in the chain is fetched from where
the remote index says (only under the connection's URL), verified against its `#sha256`, and
stored as an EXTERNAL version in the repository that holds the connection."""

from __future__ import annotations

import json
from dataclasses import replace
from html.parser import HTMLParser
from urllib.parse import unquote, urljoin, urlsplit

from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from app.db.models import Asset, Blob, Package, PackageVersion
from app.domain.errors import AccessDenied, NotFound, UpstreamUnavailable, ValidationError
from app.formats import pypi_dists as dists
from app.formats import pypi_simple as simple
from app.services import authz
from app.services import packages as pk
from app.services.package_groups import check_upstream_allowed
from app.upstream import chain, remote

CONNECTIONS = ("public:pypi",)
ACCEPT = (f"{simple.JSON_V1}, {simple.HTML_V1};q=0.2, text/html;q=0.1")


def uses_upstreams(dp) -> bool:
    with dp.arca.db.read() as s:
        return chain.has_upstreams(dp.arca, s, dp.repo.domain_id, dp.repo.repository_id)


# ---- parsing a remote project page -------------------------------------------------------------

class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.links: list[dict] = []

    def handle_starttag(self, tag, attrs):
        if tag == "a":
            self.links.append({k: (v if v is not None else "") for k, v in attrs})


def parse_page(resp, project: str, prefixes: list[str]) -> list[dict]:
    """Files of a PEP 691 JSON or PEP 503 HTML page: absolute URL (allowed ones only), sha256,
    requires-python, yanked. Files without a sha256, of another project, or with bad names are dropped."""
    page_url = str(resp.url)
    ctype = resp.headers.get("content-type", "")
    raw: list[dict] = []
    if "json" in ctype:
        doc = json.loads(resp.content)
        for f in doc.get("files") or []:
            if not isinstance(f, dict):
                continue
            raw.append({"filename": f.get("filename"), "href": f.get("url") or "",
                        "sha256": (f.get("hashes") or {}).get("sha256"),
                        "requires_python": f.get("requires-python"), "yanked": f.get("yanked") or False,
                        "size": f.get("size"), "upload_time": f.get("upload-time")})
    else:
        p = _Links()
        p.feed(resp.text)
        for a in p.links:
            href = a.get("href") or ""
            path, _, frag = href.partition("#")
            sha = frag[len("sha256="):] if frag.startswith("sha256=") else None
            yanked = a.get("data-yanked")
            raw.append({"filename": unquote(urlsplit(path).path.rsplit("/", 1)[-1]), "href": path, "sha256": sha,
                        "requires_python": a.get("data-requires-python") or None,
                        "yanked": (yanked or True) if yanked is not None else False,
                        "size": None, "upload_time": None})
    out = []
    for f in raw:
        try:
            dist = dists.parse_filename(f["filename"] or "")
        except ValidationError:
            continue
        sha = (f["sha256"] or "").lower()
        if dist.name != project or len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha):
            continue
        url = urljoin(page_url, f["href"].split("#", 1)[0])
        if not remote.is_allowed(url, prefixes):
            continue
        out.append({"filename": dist.filename, "version": str(dist.version), "url": url, "sha256": sha,
                    "requires_python": f["requires_python"] if isinstance(f["requires_python"], str) else None,
                    "yanked": f["yanked"] if isinstance(f["yanked"], (str, bool)) else False,
                    "size": f["size"] if isinstance(f["size"], int) else None,
                    "upload_time": f["upload_time"] if isinstance(f["upload_time"], str) else None})
    return out


async def remote_files(dp, node: chain.Node, project: str) -> list[dict] | None:
    arca = dp.arca
    base = remote.base_url(arca, node.external)
    prefixes = remote.allowed_prefixes(arca, node.external)
    return await remote.metadata(
        arca, repository_id=node.repository_id, connection=node.external, fmt="pypi", namespace="",
        name=project, display=None, url=urljoin(base, f"{project}/"), accept=ACCEPT,
        parse=lambda resp: parse_page(resp, project, prefixes))


# ---- the merged page ---------------------------------------------------------------------------

def _local_plan(dp, project: str):
    """The resolution order and, per repository, its Published rows and every version it holds."""
    with dp.arca.db.read() as s:
        if not dp.principal.is_admin:
            dp.require_sync(s, authz.READ)
        nodes = chain.order(dp.arca, s, dp.repo.domain_id, dp.repo.repository_id, "pypi", "", project,
                            supported=CONNECTIONS)
        local: dict[int, tuple[list, set]] = {}
        for n in nodes:
            if n.external or n.repository_id in local:
                continue
            pid = s.scalar(select(Package.id).where(Package.repository_id == n.repository_id,
                                                    Package.format == "pypi", Package.namespace == "",
                                                    Package.name == project))
            if pid is None:
                local[n.repository_id] = ([], set())
                continue
            held = set(s.scalars(select(PackageVersion.version).where(PackageVersion.package_id == pid)))
            local[n.repository_id] = (simple.project_rows(s, pid), held)
        return nodes, local


async def merged_rows(dp, project: str) -> list[simple.FileRow]:
    nodes, local = await run_in_threadpool(_local_plan, dp, project)
    seen: set[str] = set()
    out: list[simple.FileRow] = []
    failures: list[str] = []
    for n in nodes:
        if n.external is None:
            rows = local[n.repository_id][0]
            fresh = [r for r in rows if r.version not in seen]
            out += fresh
            seen |= {r.version for r in fresh}
            continue
        try:
            files = await remote_files(dp, n, project)
        except UpstreamUnavailable as exc:
            failures.append(exc.message)
            continue
        held = local.get(n.repository_id, ([], set()))[1]
        added = set()
        for f in files or []:
            if f["version"] in seen or f["version"] in held:
                continue
            added.add(f["version"])
            out.append(simple.FileRow(f["version"], f["filename"], f["sha256"], f["size"], f["requires_python"],
                                      None, f["upload_time"], f["yanked"]))
        seen |= added
    if not out:
        if failures:
            raise UpstreamUnavailable(failures[0])
        raise NotFound(f"No project {project!r} in repository {dp.repo.repository} or its upstreams")
    out.sort(key=lambda r: (simple._version_key(r.version), r.filename))
    return out


# ---- files -------------------------------------------------------------------------------------

def _find_local(dp, nodes: list[chain.Node], project: str, filename: str):
    with dp.arca.db.read() as s:
        for n in nodes:
            if n.external:
                continue
            row = s.execute(
                select(Blob.sha256, Asset.attributes, PackageVersion.status)
                .join(Asset, Asset.blob_id == Blob.id)
                .join(PackageVersion, PackageVersion.id == Asset.package_version_id)
                .join(Package, Package.id == PackageVersion.package_id)
                .where(Package.repository_id == n.repository_id, Package.format == "pypi",
                       Package.namespace == "", Package.name == project, Asset.name == filename)).first()
            if row is not None and row.status in pk.DOWNLOADABLE:
                return row
    return None


def _nodes(dp, project: str) -> list[chain.Node]:
    with dp.arca.db.read() as s:
        if not dp.principal.is_admin:
            dp.require_sync(s, authz.READ)
        return chain.order(dp.arca, s, dp.repo.domain_id, dp.repo.repository_id, "pypi", "", project,
                           supported=CONNECTIONS)


async def locate(dp, project: str, filename: str, metadata: bool) -> tuple[str, dict]:
    """(sha256 of the file, asset attributes) found through the chain, importing it from a remote
    index when nobody holds it."""
    nodes = await run_in_threadpool(_nodes, dp, project)
    row = await run_in_threadpool(_find_local, dp, nodes, project, filename)
    if row is not None:
        return row.sha256, row.attributes or {}
    if metadata:
        raise NotFound(f"No core metadata is recorded for {filename}")
    failures = []
    for n in nodes:
        if not n.external:
            continue
        try:
            files = await remote_files(dp, n, project)
        except UpstreamUnavailable as exc:
            failures.append(exc)
            continue
        match = next((f for f in files or [] if f["filename"] == filename), None)
        if match is None:
            continue
        return await remote.single_flight(dp.arca, ("pypi-file", n.repository_id, filename),
                                          lambda n=n, match=match: _import(dp, n, project, match))
    if failures:
        raise failures[0]
    raise NotFound(f"No file {filename!r} for project {project!r} in repository {dp.repo.repository} "
                   "or its upstreams")


async def _import(dp, node: chain.Node, project: str, f: dict) -> tuple[str, dict]:
    arca = dp.arca
    dist = dists.parse_filename(f["filename"])
    # Raced by another request (or node) that already stored it?
    row = await run_in_threadpool(_find_local, dp, [replace(node, external=None)], project, f["filename"])
    if row is not None:
        return row.sha256, row.attributes or {}
    await run_in_threadpool(_check_version_open, arca, node, project, f["version"])
    info = await remote.fetch_to_blob(arca, node.external, f["url"], {"sha256": f["sha256"]},
                                      limit=arca.settings.max_upload_bytes)
    core = meta_info = None
    path = arca.blobs.local_path(info.sha256)
    try:
        if path is None:
            import tempfile
            with tempfile.NamedTemporaryFile(suffix=dist.filename) as tmp:
                tmp.write(await run_in_threadpool(arca.blobs.read_bytes, info.sha256))
                tmp.flush()
                data = await run_in_threadpool(dists.read_core_metadata, tmp.name, dist)
        else:
            data = await run_in_threadpool(dists.read_core_metadata, path, dist)
        core = dists.parse_core_metadata(data, dist.filename)
        meta_info = await run_in_threadpool(arca.blobs.put_bytes, data)
    except (ValidationError, OSError, ValueError):
        core = meta_info = None  # still a valid file to serve; no PEP 658 metadata for it
    attrs = {"filetype": "bdist_wheel" if dist.kind == "wheel" else "sdist", "origin_url": f["url"]}
    if meta_info is not None:
        attrs["metadata_sha256"] = meta_info.sha256
        attrs["metadata_size"] = meta_info.size
    rp = (core.requires_python if core else None) or f["requires_python"]
    if rp:
        attrs["requires_python"] = rp
    await run_in_threadpool(_store, arca, node, dist, f["version"], info, meta_info, core, attrs)
    return info.sha256, attrs


def _check_version_open(arca, node, project, version) -> None:
    with arca.db.read() as s:
        pid = s.scalar(select(Package.id).where(Package.repository_id == node.repository_id,
                                                Package.format == "pypi", Package.namespace == "",
                                                Package.name == project))
        if pid is None:
            return
        status = s.scalar(select(PackageVersion.status).where(PackageVersion.package_id == pid,
                                                              PackageVersion.version == version))
        if status is not None and status not in pk.DOWNLOADABLE:
            raise NotFound(f"Version {version} of {project} is {status} in repository {node.repository}")


def _store(arca, node, dist, version, info, meta_info, core, attrs) -> None:
    from app.db.models import Domain, Repository
    with arca.db.session() as s:
        domain = s.get(Domain, s.get(Repository, node.repository_id).domain_id)
        repo = s.get(Repository, node.repository_id)
        try:
            check_upstream_allowed(s, domain, repo, "pypi", "", dist.name, external=True)
        except AccessDenied as exc:
            raise NotFound(exc.message) from None
        pkg = pk.get_or_create_package(s, repo, pk.Coordinates("pypi", "", dist.name),
                                       core.name if core else dist.name)
        pk.bump(s, pkg)
        vattrs = dict(core.attributes) if core else {}
        ver, _ = pk.get_or_create_version(s, pkg, version, status=pk.PUBLISHED, origin_type="EXTERNAL",
                                          entry_point=node.external, summary=core.summary if core else None,
                                          attributes=vattrs)
        if ver.status not in pk.DOWNLOADABLE:
            raise NotFound(f"Version {version} of {dist.name} is {ver.status} in repository {repo.name}")
        if meta_info is not None:
            pk.blob_row(s, domain.id, meta_info)
        pk.put_asset(s, domain, ver, dist.filename, info, attributes=attrs)
