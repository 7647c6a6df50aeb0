"""The simple repository API: PEP 503 HTML and PEP 691 JSON, with PEP 592/658/700/714 fields.

Pure: content negotiation, and pages rendered from the rows a service read (one query:
versions ⋈ assets ⋈ blobs). `Variants` holds a project's rows and renders each representation
(and its gzip) once, on first use; the routes cache it per package revision."""

from __future__ import annotations

import gzip
import hashlib
import html
import json
from dataclasses import dataclass
from datetime import timezone
from urllib.parse import quote

from packaging.version import InvalidVersion, Version

from app.domain.views import IndexFile

JSON_V1 = "application/vnd.pypi.simple.v1+json"
HTML_V1 = "application/vnd.pypi.simple.v1+html"
TEXT_HTML = "text/html"
API_VERSION = "1.3"  # PEP 740 (provenance) on top of PEP 691/700's 1.1
INTEGRITY_V1 = "application/vnd.pypi.integrity.v1+json"
# Offered representations; on equal q the earlier one wins (browsers and `*/*` get HTML).
OFFERS = (
    (TEXT_HTML, TEXT_HTML),
    (HTML_V1, HTML_V1),
    ("application/vnd.pypi.simple.latest+html", HTML_V1),
    (JSON_V1, JSON_V1),
    ("application/vnd.pypi.simple.latest+json", JSON_V1),
)
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
    size: int | None
    requires_python: str | None
    metadata_sha256: str | None
    upload_time: str | None
    yanked: str | bool
    has_provenance: bool = False


def provenance_url(project: str, r: FileRow) -> str | None:
    """The Integrity API URL of a file's PEP 740 provenance, relative to the project page."""
    if not r.has_provenance:
        return None
    return f"../../integrity/{quote(project)}/{quote(r.version)}/{quote(r.filename)}/provenance"


UNLISTED_REASON = "Unlisted"


def file_row(f: IndexFile) -> FileRow:
    """A stored file as the page lists it. A file of an Unlisted version is yanked (PEP 592) with
    the reason "Unlisted": `pip install name==v` still takes it, an unpinned install skips it,
    which is what CodeArtifact's Unlisted means, in PyPI's own terms. A file retained from a
    remote keeps the remote's yank."""
    attrs = f.attributes or {}
    yanked = attrs.get("yanked") or (UNLISTED_REASON if f.status == "Unlisted" else False)
    return FileRow(f.version, f.filename, f.sha256, f.size, attrs.get("requires_python"),
                   attrs.get("metadata_sha256"), _iso(f.created) if f.created else None, yanked,
                   bool(attrs.get("provenance_sha256")))


def project_rows(files: list[IndexFile]) -> list[FileRow]:
    """A project's files as its page lists them, in version order."""
    return sort_rows([file_row(f) for f in files])


def sort_rows(rows: list[FileRow]) -> list[FileRow]:
    return sorted(rows, key=lambda r: (version_key(r.version), r.filename))


def _iso(dt) -> str:
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def version_key(v: str):
    """Index order: PEP 440, except that a local version (2.0.0+build) sorts just below its public
    release, so nothing that takes the last of equals ever prefers it."""
    try:
        parsed = Version(v)
    except InvalidVersion:
        return (1, v)
    return (0, Version(parsed.public), 0 if parsed.local else 1, parsed)


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
        if r.has_provenance:
            attrs += f' data-provenance="{esc(provenance_url(name, r))}"'
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
        f["provenance"] = provenance_url(name, r)
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


# ---- rendered once per representation ---------------------------------------------------------------

class Variants:
    """A project's page in each representation (HTML, JSON; plain or gzip), rendered on first use."""

    def __init__(self, name: str, rows: list[FileRow]):
        self.name = name
        self.rows = rows
        self._bodies: dict[tuple[str, bool], bytes] = {}

    @property
    def empty(self) -> bool:
        return not self.rows

    def body(self, media: str, gz: bool) -> bytes:
        key = (media, gz)
        body = self._bodies.get(key)
        if body is None:
            plain = self._bodies.get((media, False))
            if plain is None:
                plain = self._bodies[(media, False)] = render_project(self.name, self.rows, media)
            body = self._bodies[key] = gzip.compress(plain, compresslevel=6, mtime=0) if gz else plain
        return body


def render_project(name: str, rows: list[FileRow], media: str) -> bytes:
    return render_project_json(name, rows) if media == JSON_V1 else render_project_html(name, rows)


def render_root(names: list[tuple[str, str]], media: str) -> bytes:
    return render_root_json(names) if media == JSON_V1 else render_root_html(names)


def compressed(plain: bytes, gz: bool) -> tuple[bytes, bool]:
    """(body, gzip-encoded?): bodies too small to gain are sent plain."""
    if gz and len(plain) >= GZIP_MIN:
        return gzip.compress(plain, mtime=0), True
    return plain, False


def etag_of(*parts) -> str:
    return '"' + hashlib.sha256("\0".join(str(p) for p in parts).encode()).hexdigest()[:32] + '"'
