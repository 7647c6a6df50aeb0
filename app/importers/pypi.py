"""PyPI imports: a folder of wheels and sdists (pypiserver's, devpi's export, `pip download`'s),
or what another index serves over the simple API (PEP 503 HTML or PEP 691 JSON)."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator
from urllib.parse import unquote, urlsplit

from app.domain.coords import Coordinates
from app.domain.errors import ArcaError, ValidationError
from app.domain.status import CLOSED, PUBLISHED, STATUSES
from app.formats.pypi import dists, upload
from app.importers.common import Fetcher, Outcome, SourceFile, Version, parse_time
from app.importers.html_links import links
from app.services import publish
from app.storage.base import BlobInfo

RULES = publish.Rules(initial_status=PUBLISHED, open_statuses=tuple(s for s in STATUSES if s not in CLOSED),
                      version_key=dists.version_key, file_key=dists.file_key)
JSON = "application/vnd.pypi.simple.v1+json"
IGNORED = (".json", ".asc", ".sig", ".txt", ".md", ".html")


def check(arca, v: Version, f: SourceFile, path: Path, info: BlobInfo) -> publish.File:
    """The upload's rules: a valid distribution file name whose core metadata agrees with it."""
    c = upload.check_dist(path, f.name)
    meta = arca.blobs.put_bytes(c.metadata)
    return publish.File(v.coords, v.version, f.name, info, display_name=c.core.name, summary=c.core.summary,
                        version_attributes=dict(c.core.attributes),
                        attributes=upload.dist_attributes(c, meta.sha256, meta.size), extra_blobs=(meta,))


def _group(found: list[tuple[dists.DistFile, SourceFile, datetime | None]]) -> Iterator[Version]:
    versions: dict[tuple[str, str], Version] = {}
    for dist, f, when in found:
        key = (dist.name, dists.version_key(str(dist.version)))
        v = versions.get(key)
        if v is None:
            v = versions[key] = Version(Coordinates("pypi", "", dist.name), str(dist.version), dist.name, [], when)
        v.files.append(f)
        if when and (v.published is None or when < v.published):
            v.published = when
    yield from sorted(versions.values(), key=lambda v: (v.coords.name, v.published or datetime.min.replace(
        tzinfo=timezone.utc)))


def from_dir(root: Path, packages: set[str] | None = None) -> Iterator[Version | Outcome]:
    """Every distribution file under `root` (recursively), grouped by project and version; the
    publish time of a version is its oldest file's modification time (pypiserver keeps uploads so)."""
    if not root.is_dir():
        raise ValidationError(f"{root} is not a directory")
    found = []
    for path in sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith(".")):
        if path.name.endswith(IGNORED):
            continue
        try:
            dist = dists.parse_filename(path.name)
        except ArcaError as exc:
            yield Outcome(str(path.relative_to(root)), "-", "-", "invalid", exc.message)
            continue
        if packages and dist.name not in packages:
            continue
        when = datetime.fromtimestamp(path.stat().st_mtime, timezone.utc)
        found.append((dist, SourceFile(path.name, path=path, size=path.stat().st_size), when))
    yield from _group(found)


def _page(fetcher: Fetcher, ref: str) -> tuple[dict | None, str]:
    resp = fetcher.get(ref, Accept=f"{JSON}, text/html;q=0.1")
    if resp.status_code != 200:
        raise ValidationError(f"GET {fetcher.url(ref)} answered {resp.status_code}")
    if resp.headers.get("content-type", "").split(";")[0].strip() == JSON:
        try:
            return json.loads(resp.content), ""
        except ValueError:
            raise ValidationError(f"{fetcher.url(ref)} is not valid JSON") from None
    return None, resp.text


def _project_files(fetcher: Fetcher, project: str) -> Iterator[tuple[str, str, dict, datetime | None]]:
    """(file name, URL, digests, upload time) of one project page."""
    doc, html = _page(fetcher, f"{project}/")
    if doc is not None:
        for f in doc.get("files") or []:
            if isinstance(f, dict) and isinstance(f.get("filename"), str) and isinstance(f.get("url"), str):
                hashes = f.get("hashes") if isinstance(f.get("hashes"), dict) else {}
                yield f["filename"], f["url"], {k: v for k, v in hashes.items() if k in ("sha256",)}, \
                    parse_time(f.get("upload-time"))
        return
    for href, text, _attrs in links(html):
        url, _, fragment = href.partition("#")
        name = text or unquote(urlsplit(url).path.rsplit("/", 1)[-1])
        algo, _, value = fragment.partition("=")
        yield name, href.split("#")[0], ({"sha256": value.lower()} if algo == "sha256" else {}), None


def from_index(fetcher: Fetcher, packages: set[str] | None = None) -> Iterator[Version | Outcome]:
    """Every file of every project (or of `packages`) the index at the fetcher's base lists."""
    if packages:
        names = sorted(packages)
    else:
        doc, html = _page(fetcher, "")
        if doc is not None:
            names = [p["name"] for p in doc.get("projects") or [] if isinstance(p, dict) and
                     isinstance(p.get("name"), str)]
        else:
            names = [text or href.strip("/").rsplit("/", 1)[-1] for href, text, _ in links(html)]
    found = []
    for raw in names:
        try:
            project = dists.check_name(raw)
        except ArcaError as exc:
            yield Outcome(raw, raw, "-", "invalid", exc.message)
            continue
        for name, url, digests, when in _project_files(fetcher, project):
            try:
                dist = dists.parse_filename(name)
            except ArcaError as exc:
                yield Outcome(name, project, "-", "invalid", exc.message)
                continue
            if dist.name != project:
                yield Outcome(name, project, "-", "invalid", f"listed under project {project}")
                continue
            found.append((dist, SourceFile(name, url=url, expected=digests), when))
    yield from _group(found)
