"""Packuments rendered from a package's rows: the full document and the abbreviated ("corgi",
application/vnd.npm.install-v1+json) one. The routes cache the rendered bytes per package
revision (so any node of a cluster stays correct).

What consumers see is derived at render time: only Published versions are listed, and
dist-tags come from the DistTag rows filtered by status (`latest` moves to the highest
Published version when its own is hidden; other tags on hidden versions are left out). A
status change from the control plane therefore needs no npm-specific hook, and restoring a
version to Published restores its tags."""

from __future__ import annotations

import base64
import gzip
import json
import zlib
from dataclasses import dataclass, field
from datetime import datetime, timezone

from app.domain.views import PackageView, VersionRow, document_rev
from app.formats.npm import names as npm_names

CORGI = "application/vnd.npm.install-v1+json"
# The version fields of the abbreviated document (npm's registry docs, plus what the public
# registry serves today and npm's arborist reads: peerDependenciesMeta, cpu/os/libc, funding...).
CORGI_VERSION_FIELDS = (
    "name", "version", "deprecated", "dependencies", "optionalDependencies", "devDependencies",
    "bundleDependencies", "peerDependencies", "peerDependenciesMeta", "acceptDependencies", "bin",
    "directories", "dist", "engines", "cpu", "os", "libc", "_hasShrinkwrap", "hasInstallScript",
    "funding", "license")
# Package-level fields of the full document, taken from the `latest` version's manifest.
TOP_FIELDS = ("description", "homepage", "keywords", "repository", "author", "bugs", "license",
              "contributors", "maintainers", "readmeFilename")


def iso(dt: datetime | None) -> str | None:
    if dt is None:
        return None
    dt = dt.astimezone(timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def tarball_path(name: str, version: str) -> str:
    bare = name.rsplit("/", 1)[-1]
    return f"{name}/-/{bare}-{version}.tgz"


def integrity(sha512_hex: str) -> str:
    return "sha512-" + base64.b64encode(bytes.fromhex(sha512_hex)).decode()


def visible_tags(view: PackageView) -> dict[str, str]:
    """The dist-tags a reader sees: those naming one of the view's (Published) versions, and
    `latest` at the highest when its own is hidden."""
    return effective_tags(view.tag_rows, [v.version for v in view.versions])


def sort_versions(view: PackageView) -> PackageView:
    view.versions.sort(key=lambda r: npm_names.semver_key(r.version))
    return view


def effective_tags(rows: dict[str, str], visible: list[str]) -> dict[str, str]:
    shown = set(visible)
    out = {tag: v for tag, v in rows.items() if v in shown}
    if "latest" not in out and visible:
        out["latest"] = npm_names.highest(visible)
    return dict(sorted(out.items(), key=lambda kv: (kv[0] != "latest", kv[0])))


def version_doc(name: str, row: VersionRow, base_url: str) -> dict:
    a = row.attributes
    doc = dict(a.get("manifest") or {"name": name, "version": row.version})
    dist = dict(doc.get("dist") or {})
    dist["tarball"] = base_url + tarball_path(name, row.version)
    if row.sha512:
        dist["integrity"] = integrity(row.sha512)
    if row.sha1:
        dist["shasum"] = row.sha1
    provenance = a.get("provenance")
    if isinstance(provenance, dict) and provenance.get("predicateType"):
        # As the npm registry does: where the attestations are, and what the provenance attests.
        dist["attestations"] = {"url": base_url + attestations_path(name, row.version),
                                "provenance": {"predicateType": provenance["predicateType"]}}
    doc["dist"] = dist
    return doc


def attestations_path(name: str, version: str) -> str:
    return f"-/npm/v1/attestations/{name.replace('/', '%2f')}@{version}"


def attestations_doc(bundle: dict, predicate_type: str) -> dict:
    """`GET -/npm/v1/attestations/NAME@VERSION`, the npm registry's shape."""
    return {"attestations": [{"predicateType": predicate_type, "bundle": bundle}]}


def purl(name: str, version: str) -> str:
    """The package URL npm names a tarball by in its provenance statement (npa.toPurl)."""
    return f"pkg:npm/{name.replace('@', '%40', 1) if name.startswith('@') else name}@{version}"


def render_full(view: PackageView, base_url: str) -> dict:
    tags = visible_tags(view)
    versions = {r.version: version_doc(view.name, r, base_url) for r in view.versions}
    time = {"created": iso(view.created), "modified": iso(view.modified)}
    time.update((r.version, iso(r.published)) for r in view.versions)
    doc: dict = {"_id": view.name, "_rev": document_rev(view.pkg_id, view.revision), "name": view.name}
    latest = next((r for r in view.versions if r.version == tags.get("latest")), None)
    if latest is not None:
        manifest = versions[latest.version]
        doc.update((k, manifest[k]) for k in TOP_FIELDS if k in manifest)
        if latest.attributes.get("readme"):
            doc["readme"] = latest.attributes["readme"]
    doc.update({"dist-tags": tags, "versions": versions, "time": time})
    return doc


def render_corgi(view: PackageView, base_url: str) -> dict:
    versions = {}
    for r in view.versions:
        full = version_doc(view.name, r, base_url)
        versions[r.version] = {k: full[k] for k in CORGI_VERSION_FIELDS if k in full}
    return {"name": view.name, "modified": iso(view.modified), "dist-tags": visible_tags(view), "versions": versions}


def wants_corgi(accept: str | None) -> bool:
    """True when the client prefers the abbreviated document (q-values honoured)."""
    if not accept or "install-v1" not in accept:
        return False
    q_corgi = q_json = 0.0
    for part in accept.split(","):
        media, *params = (p.strip() for p in part.split(";"))
        q = 1.0
        for p in params:
            if p.startswith("q="):
                try:
                    q = float(p[2:])
                except ValueError:
                    q = 0.0
        if media == CORGI:
            q_corgi = max(q_corgi, q)
        elif media == "application/json":
            q_json = max(q_json, q)
    return q_corgi > 0 and q_corgi >= q_json


# ---- rendered bytes ----------------------------------------------------------------------------

@dataclass
class Rendered:
    """A rendered packument; the gzip form is made once here, since npm always asks for it."""

    revision: int
    body: bytes
    etag: str
    media_type: str
    gz: bytes = field(default=b"", repr=False)

    def __post_init__(self) -> None:
        if not self.gz:
            self.gz = gzip.compress(self.body, compresslevel=6, mtime=0)

    @property
    def size(self) -> int:
        return len(self.body) + len(self.gz)


def render(view: PackageView, kind: str, base_url: str) -> Rendered:
    sort_versions(view)
    doc = render_corgi(view, base_url) if kind == "corgi" else render_full(view, base_url)
    body = json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()
    tag = zlib.crc32(base_url.encode()) & 0xFFFFFFFF
    etag = f'"{view.pkg_id}-{view.revision}-{kind}-{tag:08x}"'
    return Rendered(view.revision, body, etag, CORGI if kind == "corgi" else "application/json")
