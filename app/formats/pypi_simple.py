"""The simple repository API: PEP 503 HTML and PEP 691 JSON, with PEP 592/658/700/714 fields.

Project pages are rendered from the database with one query (versions ⋈ assets ⋈ blobs), kept
per process keyed by (package id, revision) and validated on every request by the package's
revision, which every change bumps; the ETag is derived from it."""

from __future__ import annotations

import gzip
import hashlib
import html
import json
import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import timezone
from urllib.parse import quote

from packaging.version import InvalidVersion, Version
from sqlalchemy import exists, select

from app.db.models import Asset, Blob, Package, PackageVersion
from app.services import packages as pk

JSON_V1 = "application/vnd.pypi.simple.v1+json"
HTML_V1 = "application/vnd.pypi.simple.v1+html"
TEXT_HTML = "text/html"
API_VERSION = "1.1"
# Offered representations; on equal q the earlier one wins (browsers and `*/*` get HTML).
OFFERS = (
    (TEXT_HTML, TEXT_HTML),
    (HTML_V1, HTML_V1),
    ("application/vnd.pypi.simple.latest+html", HTML_V1),
    (JSON_V1, JSON_V1),
    ("application/vnd.pypi.simple.latest+json", JSON_V1),
)
CACHE_ENTRIES = 1024
GZIP_MIN = 860  # smaller bodies do not shrink enough to pay for the header


# ---- content negotiation -----------------------------------------------------------------------

def _accept_entries(header: str) -> list[tuple[str, float]]:
    out = []
    for item in header.split(","):
        media, *params = (p.strip() for p in item.split(";"))
        if not media:
            continue
        q = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        out.append((media.lower(), q))
    return out


def _quality(offer: str, entries: list[tuple[str, float]]) -> float:
    """q of the most specific Accept entry matching `offer` (exact > type/* > */*)."""
    kind = offer.split("/", 1)[0]
    best, rank = 0.0, -1
    for media, q in entries:
        r = 2 if media == offer else 1 if media == f"{kind}/*" else 0 if media == "*/*" else -1
        if r > rank:
            best, rank = q, r
    return best if rank >= 0 else 0.0


def negotiate(accept: str | None, format_param: str | None = None) -> str:
    """The media type to answer with: `?format=` (as PyPI allows), else Accept with q-values,
    else HTML (PEP 691's default for clients that do not ask)."""
    if format_param:
        for offered, served in OFFERS:
            if format_param.lower() == offered:
                return served
    if not accept:
        return TEXT_HTML
    entries = _accept_entries(accept)
    best, best_q = TEXT_HTML, 0.0
    for offered, served in OFFERS:
        q = _quality(offered, entries)
        if q > best_q:
            best, best_q = served, q
    return best


def content_type(media: str) -> str:
    return "text/html; charset=utf-8" if media == TEXT_HTML else media


# ---- the data ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class FileRow:
    version: str
    filename: str
    sha256: str
    size: int
    requires_python: str | None
    metadata_sha256: str | None
    upload_time: str
    yanked: str | bool


def project_rows(s, package_id: int) -> list[FileRow]:
    """Every file of the project's Published versions, in one indexed query."""
    q = (select(PackageVersion.version, Asset.name, Asset.attributes, Asset.created_at, Blob.sha256, Blob.size)
         .join(Asset, Asset.package_version_id == PackageVersion.id)
         .join(Blob, Blob.id == Asset.blob_id)
         .where(PackageVersion.package_id == package_id, PackageVersion.status == pk.PUBLISHED))
    rows = []
    for version, name, attrs, created, sha256, size in s.execute(q):
        attrs = attrs or {}
        rows.append(FileRow(version, name, sha256, size, attrs.get("requires_python"),
                            attrs.get("metadata_sha256"), _iso(created), attrs.get("yanked") or False))
    rows.sort(key=lambda r: (_version_key(r.version), r.filename))
    return rows


def project_names(s, repository_id: int) -> list[tuple[str, str]]:
    """(normalised name, display name) of every project with at least one Published version."""
    published = exists().where(PackageVersion.package_id == Package.id, PackageVersion.status == pk.PUBLISHED)
    q = (select(Package.name, Package.display_name)
         .where(Package.repository_id == repository_id, Package.format == "pypi", published)
         .order_by(Package.name))
    return [(n, d or n) for n, d in s.execute(q)]


def _iso(dt) -> str:
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _version_key(v: str):
    try:
        return (0, Version(v))
    except InvalidVersion:
        return (1, v)


# ---- rendering ---------------------------------------------------------------------------------

def render_project_html(name: str, rows: list[FileRow]) -> bytes:
    esc = html.escape
    out = ["<!DOCTYPE html>\n<html>\n<head>\n",
           f'<meta name="pypi:repository-version" content="{API_VERSION}">\n',
           f"<title>Links for {esc(name)}</title>\n</head>\n<body>\n<h1>Links for {esc(name)}</h1>\n"]
    for r in rows:
        attrs = ""
        if r.requires_python:
            attrs += f' data-requires-python="{esc(r.requires_python)}"'
        if r.metadata_sha256:
            attrs += (f' data-dist-info-metadata="sha256={r.metadata_sha256}"'
                      f' data-core-metadata="sha256={r.metadata_sha256}"')
        if r.yanked:
            attrs += f' data-yanked="{esc(r.yanked) if isinstance(r.yanked, str) else ""}"'
        out.append(f'<a href="{quote(r.filename)}#sha256={r.sha256}"{attrs}>{esc(r.filename)}</a><br>\n')
    out.append("</body>\n</html>\n")
    return "".join(out).encode()


def render_project_json(name: str, rows: list[FileRow]) -> bytes:
    files = []
    versions: dict[str, None] = {}
    for r in rows:
        versions[r.version] = None
        f = {"filename": r.filename, "url": quote(r.filename), "hashes": {"sha256": r.sha256}}
        if r.size is not None:  # unknown for a file seen only in a remote index
            f["size"] = r.size
        if r.upload_time:
            f["upload-time"] = r.upload_time
        f["yanked"] = r.yanked
        if r.requires_python:
            f["requires-python"] = r.requires_python
        if r.metadata_sha256:
            f["core-metadata"] = {"sha256": r.metadata_sha256}
            f["dist-info-metadata"] = {"sha256": r.metadata_sha256}
        files.append(f)
    doc = {"meta": {"api-version": API_VERSION}, "name": name, "versions": list(versions), "files": files}
    return json.dumps(doc, separators=(",", ":")).encode()


def render_root_html(names: list[tuple[str, str]]) -> bytes:
    esc = html.escape
    links = "".join(f'<a href="{quote(n)}/">{esc(d)}</a><br>\n' for n, d in names)
    return ("<!DOCTYPE html>\n<html>\n<head>\n"
            f'<meta name="pypi:repository-version" content="{API_VERSION}">\n'
            "<title>Simple index</title>\n</head>\n<body>\n" + links + "</body>\n</html>\n").encode()


def render_root_json(names: list[tuple[str, str]]) -> bytes:
    doc = {"meta": {"api-version": API_VERSION}, "projects": [{"name": d} for _n, d in names]}
    return json.dumps(doc, separators=(",", ":")).encode()


# ---- the per-process page cache ----------------------------------------------------------------

class PageCache:
    """(package id, revision) → rendered bodies per media type (and their gzip), LRU-bounded.

    A stale entry is never served: the caller always passes the revision it just read from the DB."""

    def __init__(self, entries: int = CACHE_ENTRIES):
        self.entries = entries
        self._data: OrderedDict[int, tuple[int, dict]] = OrderedDict()
        self._lock = threading.Lock()  # called from worker threads

    def variants(self, package_id: int, revision: int) -> dict | None:
        with self._lock:
            hit = self._data.get(package_id)
            if hit is None or hit[0] != revision:
                return None
            self._data.move_to_end(package_id)
            return hit[1]

    def store(self, package_id: int, revision: int, variants: dict) -> dict:
        with self._lock:
            self._data[package_id] = (revision, variants)
            self._data.move_to_end(package_id)
            while len(self._data) > self.entries:
                self._data.popitem(last=False)
        return variants


def page_cache(arca) -> PageCache:
    cache = arca.caches.get("pypi_pages")
    if cache is None:
        cache = arca.caches.setdefault("pypi_pages", PageCache())
    return cache


def body_for(variants: dict, media: str, gz: bool) -> bytes:
    """The rendered body for `media` (gzip-compressed when `gz`), computed once per revision."""
    key = (media, gz)
    body = variants.get(key)
    if body is None:
        plain = variants.get((media, False))
        if plain is None:
            plain = variants[(media, False)] = variants["render"](media)
        body = variants[key] = gzip.compress(plain, compresslevel=6, mtime=0) if gz else plain
    return body


def etag_of(*parts) -> str:
    return '"' + hashlib.sha256("\0".join(str(p) for p in parts).encode()).hexdigest()[:32] + '"'
