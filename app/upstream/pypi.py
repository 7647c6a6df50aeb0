"""PyPI through upstreams and PyPI external connections.

A project page of a repository with upstreams or a connection merges, per version, the first
place in the resolution order that has it (own Published files, then upstreams depth-first,
then a repository's remote index), and by file within a version retained from a remote. A file
not held anywhere in the chain is fetched from where the remote index says (only under the
connection's URL), verified against its `#sha256`, and stored in the EXTERNAL version of the
repository that holds the connection."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from urllib.parse import unquote, urljoin, urlsplit

from app.domain.coords import Coordinates
from app.domain.errors import NotFound, UpstreamUnavailable, ValidationError
from app.domain.status import PUBLISHED
from app.domain.views import FileRow, IndexFile
from app.formats.http import DataPlane
from app.formats.pypi import dists, simple
from app.services import publish, resolve
from app.services.resolve import Node
from app.upstream import retained
from app.upstream.retained import BadDocument
from app.upstream.walk import first_remote
from app.upstream.remote import is_allowed

ACCEPT = (f"{simple.JSON_V1}, {simple.HTML_V1};q=0.2, text/html;q=0.1")


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
        try:
            doc = json.loads(resp.content)
        except ValueError:
            raise BadDocument("a project page that is not JSON, though it says it is") from None
        if not isinstance(doc, dict) or not isinstance(doc.get("files", []), list):
            raise BadDocument("JSON that is not a PEP 691 project page")
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
            dist = dists.parse_filename(f["filename"] if isinstance(f["filename"], str) else "")
        except ValidationError:
            continue
        sha = (f["sha256"] or "").lower()
        if dist.name != project or len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha):
            continue
        url = urljoin(page_url, f["href"].split("#", 1)[0]) if isinstance(f["href"], str) else ""
        if not is_allowed(url, prefixes):
            continue
        out.append({"filename": dist.filename, "version": str(dist.version), "url": url, "sha256": sha,
                    "requires_python": f["requires_python"] if isinstance(f["requires_python"], str) else None,
                    "yanked": f["yanked"] if isinstance(f["yanked"], (str, bool)) else False,
                    "size": f["size"] if isinstance(f["size"], int) else None,
                    "upload_time": f["upload_time"] if isinstance(f["upload_time"], str) else None})
    if raw and not out and not any(_names_project(f["filename"], project) for f in raw):
        # links, but not one to a distribution of this project: a page of something else
        raise BadDocument(f"a page that links to no distribution of {project} ({len(raw)} links refused)")
    return out


def _names_project(filename: object, project: str) -> bool:
    try:
        return dists.parse_filename(filename if isinstance(filename, str) else "").name == project
    except ValidationError:
        return False


def _coords(project: str) -> Coordinates:
    return Coordinates("pypi", "", project)


async def remote_files(dp: DataPlane, node: Node, project: str) -> list[dict] | None:
    prefixes = node.connection.prefixes()
    return await retained.metadata(
        dp.arca, repository_id=node.repository_id, connection=node.connection, coords=_coords(project), display=None,
        url=urljoin(node.connection.url, f"{project}/"), accept=ACCEPT,
        parse=lambda resp: parse_page(resp, project, prefixes))


# ---- the merged page ---------------------------------------------------------------------------

async def merged_rows(dp: DataPlane, project: str) -> list[simple.FileRow]:
    """The files of every place in the order, merged by file: a version belongs to the first place
    that has it, and a version retained from a remote keeps listing the remote's other files (the
    other platforms' wheels, the sdist), which are fetched into it on first download. A retained
    file shows the remote's yank as the remote has it now, and keeps it (PEP 592)."""
    coords = _coords(project)
    chain = await dp.run(resolve.chain, dp.arca, dp.principal, dp.repo, coords, load=resolve.downloadable_files)
    owner: dict[str, Node] = {}  # version -> the place whose copy is listed
    at: dict[str, int] = {}  # file name -> its row in `out`
    out: list[simple.FileRow] = []
    failures: list[str] = []
    for n in chain.nodes:
        local = chain.local.get(n.repository_id) or resolve.Local(None, set())
        if n.external is None:
            for r in simple.project_rows(local.view or []):
                if r.version not in local.hidden and owner.setdefault(r.version, n) is n:
                    at[r.filename] = len(out)
                    out.append(r)
            continue
        try:
            files = await remote_files(dp, n, project)
        except UpstreamUnavailable as exc:
            failures.append(exc.message)
            continue
        yanks: dict[str, str | bool] = {}
        for f in files or []:
            version = f["version"]
            if f["filename"] in at:
                if owner[version].repository_id == n.repository_id and version in local.retained:
                    yanks[f["filename"]] = f["yanked"]
                continue
            if not _joins(version, n, owner, local):
                continue
            owner.setdefault(version, n)
            at[f["filename"]] = len(out)
            out.append(simple.FileRow(version, f["filename"], f["sha256"], f["size"], f["requires_python"],
                                      None, f["upload_time"], f["yanked"]))
        await _follow_yanks(dp, n, coords, local, yanks, out, at)
    if not out:
        if failures:
            raise UpstreamUnavailable(failures[0])
        raise NotFound(chain.missing(f"No project {project!r} in repository {dp.repo.repository} or its upstreams"))
    return simple.sort_rows(out)


async def _follow_yanks(dp: DataPlane, node: Node, coords: Coordinates, local: resolve.Local,
                        remote: dict[str, str | bool], out: list[simple.FileRow], at: dict[str, int]) -> None:
    """Retained files take the remote's current yank (shown now, and kept in the database, so
    it stays when the remote is gone)."""
    stored = {f.filename: f for f in local.view or []}
    changed = {}
    for name, yanked in remote.items():
        mine = stored.get(name)
        if mine is None or (mine.attributes.get("yanked") or False) == yanked:
            continue
        changed[name] = yanked
        shown = simple.file_row(IndexFile(mine.version, name, mine.sha256, mine.size, mine.created,
                                          {**mine.attributes, "yanked": yanked}, mine.status))
        out[at[name]] = shown
    if changed:
        await dp.run(publish.note_remote_yanks, dp.arca, node.repository_id, coords, changed)


def _joins(version: str, node: Node, owner: dict[str, Node], local: resolve.Local) -> bool:
    """May a remote file of `version` be listed? A new version, yes (unless its repository holds
    it in a status that is not listed); a listed one only when it is this remote's, or this
    repository's own copy retained from this remote (merge by file)."""
    first = owner.get(version)
    if first is None:
        return version not in local.held
    return first is node or (first.repository_id == node.repository_id and version in local.retained)


# ---- files -------------------------------------------------------------------------------------

async def locate(dp: DataPlane, project: str, filename: str, metadata: bool) -> FileRow:
    """The file found through the chain, imported from a remote index when nobody holds it."""
    coords = _coords(project)
    chain = await dp.run(resolve.chain, dp.arca, dp.principal, dp.repo, coords, load=resolve.no_view)
    row = await dp.run(resolve.chain_file, dp.arca, chain, coords, None, filename)
    if row is not None:
        return row
    if metadata:
        raise NotFound(f"No core metadata is recorded for {filename}")

    async def find(n: Node) -> dict | None:
        match = next((f for f in await remote_files(dp, n, project) or [] if f["filename"] == filename), None)
        if match is None or chain.held_before(n, match["version"]):
            return None  # a version another repository holds is that repository's, file by file
        return match

    async def take(n: Node, match: dict) -> FileRow:
        return await dp.arca.remotes.flight(("pypi-file", n.repository_id, filename),
                                                   lambda: _import(dp, n, project, match))

    return await first_remote(chain.nodes, find, take, chain.missing(
        f"No file {filename!r} for project {project!r} in repository {dp.repo.repository} or its upstreams"))


async def _import(dp: DataPlane, node: Node, project: str, f: dict) -> FileRow:
    arca = dp.arca
    coords = _coords(project)
    dist = dists.parse_filename(f["filename"])
    # Raced by another request (or node) that already stored it?
    row = await dp.run(resolve.first_file, arca, [node.repository_id], coords, None, f["filename"])
    if row is not None:
        return row
    await dp.run(publish.check_import_open, arca, node.repository_id, coords, f["version"])
    staged = arca.blobs.new_temp()
    try:
        info = await arca.remotes.fetch_to_file(node.connection, f["url"], staged, {"sha256": f["sha256"]},
                                                limit=arca.settings.max_upload_bytes)
        try:
            data = await dp.run(dists.read_core_metadata, staged, dist)
            core = dists.parse_core_metadata(data, dist.filename)
        except (ValidationError, OSError, ValueError):
            data = core = None  # still a valid file to serve; no PEP 658 metadata for it
        await dp.run(arca.blobs.commit_file, staged, {"sha256": info.sha256})
    finally:
        staged.unlink(missing_ok=True)
    meta = await dp.run(arca.blobs.put_bytes, data) if data is not None else None
    attrs = {"filetype": "bdist_wheel" if dist.kind == "wheel" else "sdist", "origin_url": f["url"]}
    if f["yanked"]:
        attrs["yanked"] = f["yanked"]
    if meta is not None:
        attrs["metadata_sha256"] = meta.sha256
        attrs["metadata_size"] = meta.size
    rp = (core.requires_python if core else None) or f["requires_python"]
    if rp:
        attrs["requires_python"] = rp
    file = publish.File(coords, f["version"], dist.filename, info, display_name=core.name if core else dist.name,
                        summary=core.summary if core else None,
                        version_attributes=dict(core.attributes) if core else {}, attributes=attrs,
                        extra_blobs=(meta,) if meta is not None else ())
    await dp.run(publish.import_external, arca, node.repository_id, node.external, coords, f["version"], [file])
    return FileRow(info.sha256, info.sha1, info.md5, info.sha512, info.size, PUBLISHED, attrs)
