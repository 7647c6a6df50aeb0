"""npm imports: a Verdaccio storage folder (its packuments, tarballs and dist-tags), a folder of
npm tarballs (`npm pack` output), or what another registry serves (its packuments and tarballs)."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator
from urllib.parse import quote

from app.domain.coords import Coordinates
from app.domain.errors import ArcaError, ValidationError
from app.domain.status import PUBLISHED
from app.formats.npm import names as npm_names, publish_body as pub
from app.formats.npm.manifest import version_attributes
from app.importers.common import Fetcher, Outcome, SourceFile, Version, parse_time
from app.services import publish
from app.storage.base import BlobInfo

RULES = publish.Rules(initial_status=PUBLISHED, open_statuses=())
MAX_PACKUMENT = 64 * 1024 * 1024


def check(arca, v: Version, f: SourceFile, path: Path, info: BlobInfo) -> publish.File:
    """npm publish's rules: a gzip tar whose package.json is this name and version, within the size limits."""
    found = pub.check_tarball(path, v.display_name, v.version, arca.settings.npm_max_unpacked_bytes)
    manifest = v.facts.get("manifest") if isinstance(v.facts.get("manifest"), dict) else found
    readme = v.facts.get("readme") if isinstance(v.facts.get("readme"), str) else ""
    desc = manifest.get("description") if isinstance(manifest.get("description"), str) else None
    return publish.File(v.coords, v.version, f.name, info, display_name=v.display_name, summary=desc,
                        version_attributes=version_attributes(v.display_name, manifest, readme))


def _coords(name: str) -> Coordinates:
    scope, bare = npm_names.split_name(name)
    return Coordinates("npm", scope, bare)


def _digests(dist: object) -> dict[str, str]:
    out = {}
    if isinstance(dist, dict):
        sha512 = pub.integrity_sha512(dist.get("integrity"))
        if sha512:
            out["sha512"] = sha512[0]
        if isinstance(dist.get("shasum"), str) and len(dist["shasum"]) == 40:
            out["sha1"] = dist["shasum"].lower()
    return out


def _from_packument(doc: dict, where: str, locate) -> Iterator[Version | Outcome]:
    """The versions of one packument; `locate(bare, version, manifest)` -> SourceFile or None."""
    name = doc.get("name")
    try:
        coords = _coords(name if isinstance(name, str) else "")
    except ArcaError as exc:
        yield Outcome(where, str(name), "-", "invalid", exc.message)
        return
    versions = doc.get("versions") if isinstance(doc.get("versions"), dict) else {}
    times = doc.get("time") if isinstance(doc.get("time"), dict) else {}
    tags = {t: v for t, v in (doc.get("dist-tags") or {}).items()
            if isinstance(t, str) and isinstance(v, str) and v in versions} if isinstance(
        doc.get("dist-tags"), dict) else {}
    ordered = sorted(versions, key=lambda v: (parse_time(times.get(v)) or datetime.max.replace(tzinfo=timezone.utc), v))
    for version in ordered:
        manifest = versions[version]
        label = f"{coords.name}-{version}.tgz"
        if not npm_names.is_semver(version) or not isinstance(manifest, dict):
            yield Outcome(label, name, str(version), "invalid", f"{version!r} is not a SemVer version with a manifest")
            continue
        f = locate(coords.name, version, manifest)
        if f is None:
            yield Outcome(label, name, version, "invalid", f"the tarball of {name}@{version} is missing")
            continue
        readme = manifest.get("readme") or (doc.get("readme") if version == tags.get("latest") else "")
        yield Version(coords, version, name, [f], parse_time(times.get(version)),
                      tags={t: v for t, v in tags.items() if v == version},
                      facts={"manifest": manifest, "readme": readme if isinstance(readme, str) else ""})


def _read_json(path: Path) -> dict:
    if path.stat().st_size > MAX_PACKUMENT:
        raise ValidationError(f"{path.name} is larger than {MAX_PACKUMENT} bytes")
    try:
        doc = json.loads(path.read_bytes())
    except (ValueError, UnicodeDecodeError):
        raise ValidationError(f"{path} is not valid JSON") from None
    if not isinstance(doc, dict):
        raise ValidationError(f"{path} is not a JSON object")
    return doc


def from_verdaccio(root: Path, packages: set[str] | None = None) -> Iterator[Version | Outcome]:
    """Verdaccio's storage folder: `{name}/package.json` and `@{scope}/{name}/package.json`, each a
    packument whose tarballs lie beside it as `{name}-{version}.tgz`."""
    if not root.is_dir():
        raise ValidationError(f"{root} is not a directory")
    docs = sorted(list(root.glob("*/package.json")) + list(root.glob("@*/*/package.json")))
    for path in docs:
        where = str(path.relative_to(root))
        try:
            doc = _read_json(path)
        except ArcaError as exc:
            yield Outcome(where, "-", "-", "invalid", exc.message)
            continue
        if packages and doc.get("name") not in packages:
            continue

        def locate(bare: str, version: str, manifest: dict, d=path.parent) -> SourceFile | None:
            tgz = d / f"{bare}-{version}.tgz"
            if not tgz.is_file():
                return None
            return SourceFile(tgz.name, path=tgz, expected=_digests(manifest.get("dist")), size=tgz.stat().st_size)

        yield from _from_packument(doc, where, locate)


def from_tarballs(root: Path, unpacked_limit: int, packages: set[str] | None = None) -> Iterator[Version | Outcome]:
    """A folder of npm tarballs: each names its package and version in its package.json."""
    if not root.is_dir():
        raise ValidationError(f"{root} is not a directory")
    for path in sorted(p for p in root.rglob("*.tgz") if p.is_file()):
        where = str(path.relative_to(root))
        try:
            pj = pub.read_package_json(path, unpacked_limit)
            name, version = pj["name"], npm_names.check_version(pj["version"])
            coords = _coords(name)
        except ArcaError as exc:
            yield Outcome(where, "-", "-", "invalid", exc.message)
            continue
        if packages and name not in packages:
            continue
        when = datetime.fromtimestamp(path.stat().st_mtime, timezone.utc)
        yield Version(coords, version, name, [SourceFile(f"{coords.name}-{version}.tgz", path=path)], when,
                      facts={"manifest": pj, "readme": ""})


def _all_names(fetcher: Fetcher) -> list[str]:
    """Every package a registry has: Verdaccio's package list, else the npm search API."""
    resp = fetcher.get("-/verdaccio/data/packages")
    if resp.status_code == 200:
        try:
            return [p["name"] for p in resp.json() if isinstance(p, dict) and isinstance(p.get("name"), str)]
        except ValueError:
            pass
    names, offset = [], 0
    while True:
        resp = fetcher.get(f"-/v1/search?text=&size=250&from={offset}")
        if resp.status_code != 200:
            raise ValidationError(f"{fetcher.base} lists no packages (search answered {resp.status_code}); "
                                  "name them with --package")
        objects = resp.json().get("objects") or []
        names += [o["package"]["name"] for o in objects if isinstance(o, dict) and isinstance(o.get("package"), dict)]
        if len(objects) < 250:
            return names
        offset += 250


def from_registry(fetcher: Fetcher, packages: set[str] | None = None) -> Iterator[Version | Outcome]:
    for name in sorted(packages or _all_names(fetcher)):
        resp = fetcher.get(quote(name, safe="@"), Accept="application/json")
        if resp.status_code != 200:
            yield Outcome(name, name, "-", "invalid", f"the registry answered {resp.status_code} for its packument")
            continue
        try:
            doc = resp.json()
        except ValueError:
            yield Outcome(name, name, "-", "invalid", "its packument is not JSON")
            continue

        def locate(bare: str, version: str, manifest: dict) -> SourceFile | None:
            dist = manifest.get("dist")
            url = dist.get("tarball") if isinstance(dist, dict) else None
            if not isinstance(url, str):
                return None
            return SourceFile(f"{bare}-{version}.tgz", url=url, expected=_digests(dist))

        yield from _from_packument(doc if isinstance(doc, dict) else {}, name, locate)
