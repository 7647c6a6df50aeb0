"""npm through upstreams and the `public:npmjs` external connection.

The packument of a repository with upstreams or a connection merges versions (first place in
the resolution order that has a version wins; dist-tags likewise per tag), with every
`dist.tarball` pointing at this repository. A tarball held nowhere in the chain is fetched from
the remote's `dist.tarball` (only under the connection's URL), verified against `dist.integrity`
(or `dist.shasum`), and stored as an EXTERNAL version in the repository holding the connection."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass
from urllib.parse import quote, urlencode

from app.domain.connections import Connection
from app.domain.coords import Coordinates
from app.domain.errors import NotFound, UpstreamUnavailable
from app.domain.status import PUBLISHED
from app.domain.views import FileRow
from app.formats.http import DataPlane
from app.formats.npm import names as npm_names, packument as pm, search as npm_search
from app.formats.npm.manifest import version_attributes
from app.services import publish, resolve
from app.services.resolve import Node
from app.upstream import retained
from app.upstream.retained import BadDocument
from app.upstream.walk import first_remote
from app.upstream.remote import is_allowed



def _expected(dist: dict) -> dict | None:
    integ = dist.get("integrity")
    if isinstance(integ, str):
        for part in integ.split():
            algo, _, b64 = part.partition("-")
            if algo == "sha512":
                try:
                    return {"sha512": base64.b64decode(b64, validate=True).hex()}
                except (binascii.Error, ValueError):
                    return None
    shasum = dist.get("shasum")
    if isinstance(shasum, str) and len(shasum) == 40:
        return {"sha1": shasum.lower()}
    return None


def parse_packument(resp, name: str, prefixes: list[str]) -> dict:
    try:
        doc = json.loads(resp.content)
    except ValueError:
        raise BadDocument("a packument that is not JSON (or is cut short)") from None
    if not isinstance(doc, dict):
        raise BadDocument(f"JSON that is not a packument (a {type(doc).__name__}, not an object)")
    for key in ("versions", "dist-tags", "time"):
        if doc.get(key) is not None and not isinstance(doc[key], dict):
            raise BadDocument(f"a packument whose {key!r} is not an object")
    versions = {}
    for v, m in (doc.get("versions") or {}).items():
        if not isinstance(m, dict) or not npm_names.is_semver(v):
            continue
        dist = m.get("dist") if isinstance(m.get("dist"), dict) else {}
        url = dist.get("tarball")
        if not isinstance(url, str) or not is_allowed(url, prefixes) or _expected(dist) is None:
            continue
        versions[v] = {k: val for k, val in m.items() if k not in ("readme", "_attachments")}
    tags = {t: v for t, v in (doc.get("dist-tags") or {}).items() if isinstance(v, str) and v in versions}
    times = {v: t for v, t in (doc.get("time") or {}).items() if v in versions and isinstance(t, str)}
    return {"name": name, "dist-tags": tags, "versions": versions, "time": times}


def _name(coords: Coordinates) -> str:
    return npm_names.full_name(coords.namespace, coords.name)


async def remote_packument(dp: DataPlane, node: Node, coords: Coordinates) -> dict | None:
    name = _name(coords)
    prefixes = node.connection.prefixes()
    return await retained.metadata(
        dp.arca, repository_id=node.repository_id, connection=node.connection, coords=coords, display=name,
        url=node.connection.url + quote(name, safe="@"), accept="application/json",
        parse=lambda resp: parse_packument(resp, name, prefixes))


# ---- the merged packument ----------------------------------------------------------------------

@dataclass
class Merged:
    """The versions (in semver order), dist-tags and times of a packument merged through the chain."""

    versions: dict[str, dict]
    tags: dict[str, str]
    times: dict[str, str]


async def merged_parts(dp: DataPlane, coords: Coordinates) -> Merged:
    name = _name(coords)
    base_url = dp.base_url
    chain = await dp.run(resolve.chain, dp.arca, dp.principal, dp.repo, coords,
                         load=resolve.package_view)
    versions: dict[str, dict] = {}
    owner: dict[str, int] = {}  # version -> the repository whose copy is listed
    times: dict[str, str] = {}
    tags: dict[str, str] = {}
    failures = []
    for n in chain.nodes:
        local = chain.local.get(n.repository_id) or resolve.Local(None, set())
        if n.external is None:
            if local.view is None:
                continue
            local.view.versions = [r for r in local.view.versions if r.version not in local.hidden]
            for r in pm.sort_versions(local.view).versions:
                if r.version not in versions:
                    versions[r.version] = pm.version_doc(name, r, base_url)
                    owner[r.version] = n.repository_id
                    times[r.version] = pm.iso(r.published)
            for t, v in pm.visible_tags(local.view).items():
                tags.setdefault(t, v)
            continue
        try:
            doc = await remote_packument(dp, n, coords)
        except UpstreamUnavailable as exc:
            failures.append(exc.message)
            continue
        if not doc:
            continue
        for v, m in doc["versions"].items():
            if v in versions:
                if owner[v] == n.repository_id and v in local.retained:
                    # Retained from this remote: the entry is the remote's, every field of it, as it is now.
                    ours = versions[v]["dist"]
                    versions[v] = _remote_entry(m, {k: ours[k] for k in ("tarball", "integrity", "shasum")
                                                    if k in ours})
                    times[v] = doc["time"].get(v, times.get(v))
                continue
            if v in local.held:
                continue
            versions[v] = _remote_entry(m, {"tarball": base_url + pm.tarball_path(name, v)})
            owner[v] = n.repository_id
            if v in doc["time"]:
                times[v] = doc["time"][v]
        for t, v in doc["dist-tags"].items():
            tags.setdefault(t, v)
    if not versions:
        if failures:
            raise UpstreamUnavailable(failures[0])
        raise NotFound(chain.missing(f"{name} is not in this repository or its upstreams"))
    order = sorted(versions, key=npm_names.semver_key)
    versions = {v: versions[v] for v in order}
    tags = pm.effective_tags({t: v for t, v in tags.items() if v in versions}, order)
    return Merged(versions, tags, times)


async def merged(dp: DataPlane, coords: Coordinates, kind: str) -> pm.Rendered:
    """The full or abbreviated packument through the chain (ETag: a hash of the body)."""
    name = _name(coords)
    m = await merged_parts(dp, coords)
    versions, tags, times = m.versions, m.tags, m.times
    if kind == "corgi":
        out = {"name": name, "dist-tags": tags,
               "versions": {v: {k: m[k] for k in pm.CORGI_VERSION_FIELDS if k in m} for v, m in versions.items()}}
        media = pm.CORGI
    else:
        latest = versions.get(tags.get("latest"), {})
        top = {k: latest[k] for k in pm.TOP_FIELDS if k in latest}
        out = {"_id": name, "name": name, **top, "dist-tags": tags, "versions": versions, "time": times}
        media = "application/json"
    body = json.dumps(out, separators=(",", ":"), ensure_ascii=False).encode()
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    return pm.Rendered(0, body, etag, media)


async def merged_version(dp: DataPlane, coords: Coordinates, spec: str) -> dict:
    """`GET /{name}/{version}` or `/{name}/{dist-tag}` through the chain: the merged entry."""
    m = await merged_parts(dp, coords)
    version = spec if npm_names.is_semver(spec) else m.tags.get(spec)
    if version not in m.versions:
        raise NotFound(f"{_name(coords)}@{spec} is not in this repository or its upstreams")
    return m.versions[version]


def _remote_entry(manifest: dict, ours: dict) -> dict:
    """A remote's version entry with this repository's tarball URL (and, for a retained copy, the
    digests of the stored file, which were verified to be the remote's)."""
    m = dict(manifest)
    m["dist"] = {**m["dist"], **ours}
    return m


# ---- tarballs ----------------------------------------------------------------------------------

async def locate_tarball(dp: DataPlane, coords: Coordinates, version: str, filename: str) -> FileRow:
    chain = await dp.run(resolve.chain, dp.arca, dp.principal, dp.repo, coords, load=resolve.no_view)
    row = await dp.run(resolve.chain_file, dp.arca, chain, coords, version, filename)
    if row is not None:
        return row

    async def find(n: Node) -> dict | None:
        if chain.held_before(n, version):
            return None
        return ((await remote_packument(dp, n, coords)) or {}).get("versions", {}).get(version)

    async def take(n: Node, manifest: dict) -> FileRow:
        return await dp.arca.remotes.flight(
            ("npm-tarball", n.repository_id, coords.namespace, coords.name, version),
            lambda: _import(dp, n, coords, version, filename, manifest))

    return await first_remote(chain.nodes, find, take,
                              chain.missing(f"{filename} is not in this repository or its upstreams"))


async def _import(dp: DataPlane, node: Node, coords: Coordinates, version: str, filename: str,
                  manifest: dict) -> FileRow:
    arca = dp.arca
    row = await dp.run(resolve.first_file, arca, [node.repository_id], coords, version, filename)
    if row is not None:
        return row
    await dp.run(publish.check_import_open, arca, node.repository_id, coords, version)
    info = await arca.remotes.fetch_to_blob(arca.blobs, node.connection, manifest["dist"]["tarball"],
                                            _expected(manifest["dist"]), limit=arca.settings.max_upload_bytes)
    name = _name(coords)
    desc = manifest.get("description") if isinstance(manifest.get("description"), str) else None
    f = publish.File(coords, version, filename, info, display_name=name, summary=desc,
                     version_attributes=version_attributes(name, manifest, ""))
    await dp.run(publish.import_external, arca, node.repository_id, node.external, coords, version, [f])
    return FileRow(info.sha256, info.sha1, info.md5, info.sha512, info.size, PUBLISHED)


# ---- search and audit (asked of the first npm connection the repository reads through) -----------

async def remote_search(dp: DataPlane, connection: Connection, q: npm_search.Query) -> tuple[list[dict], int]:
    """The remote registry's search answer for the same words (enough of it for the page asked
    for), as usable objects and its total; a remote that fails or answers nonsense adds nothing."""
    query = urlencode({"text": " ".join(q.words), "size": min(q.offset + q.size, npm_search.MAX_SIZE), "from": 0})
    try:
        answer = await dp.arca.remotes.read(connection, connection.url + "-/v1/search?" + query,
                                            {"Accept": "application/json"})
    except UpstreamUnavailable:
        return [], 0
    if answer.status_code != 200:
        return [], 0
    return npm_search.remote_objects(answer.content, q.words, npm_search.MAX_SIZE)


async def remote_audit(dp: DataPlane, connection: Connection, path: str, body: bytes) -> dict:
    """Forward an audit request (a JSON document already checked) to the remote registry; its
    answer must be a JSON object (else 502 with the reason)."""
    answer = await dp.arca.remotes.post(connection, connection.url + path, body,
                                        {"Content-Type": "application/json", "Accept": "application/json"})
    name = connection.name
    if answer.status_code != 200:
        raise UpstreamUnavailable(f"External connection {name} answered {answer.status_code} to the audit request")
    try:
        doc = json.loads(answer.content)
    except (ValueError, UnicodeDecodeError):
        doc = None
    if not isinstance(doc, dict):
        raise UpstreamUnavailable(f"External connection {name} answered the audit request with something "
                                  "that is not a JSON object")
    return doc
