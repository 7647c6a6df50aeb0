"""Maven imports: a Maven repository directory (`~/.m2/repository`, a Nexus, Reposilite or
Artifactory export, any `{group/as/dirs}/{artifactId}/{version}/{file}` tree), or a repository
served over HTTP with directory listings. Checksum sidecars (`.sha1`, `.sha256`, ...) are checked
against the files they sum; maven-metadata.xml is not imported (Arca renders it from the versions),
nor are the local repository's bookkeeping files (`_remote.repositories`, `*.lastUpdated`)."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator
from urllib.parse import unquote, urljoin, urlsplit

from app.domain.coords import Coordinates
from app.domain.errors import ArcaError, ValidationError
from app.domain.status import PUBLISHED, UNFINISHED, UNLISTED
from app.formats.maven.metadata import check_pom
from app.formats.maven.paths import CHECKSUMS, HEX_LEN, check_build, parse_filename, parse_path
from app.importers.common import Fetcher, Outcome, SourceFile, Version
from app.importers.html_links import links
from app.services import publish
from app.storage.base import BlobInfo

RULES = publish.Rules(initial_status=PUBLISHED, open_statuses=(UNFINISHED, PUBLISHED, UNLISTED))
BOOKKEEPING = ("_remote.repositories", "resolver-status.properties", "_maven.repositories")
MAX_POM = 1024 * 1024
MAX_PAGES = 100_000


def check(arca, v: Version, f: SourceFile, path: Path, info: BlobInfo) -> publish.File:
    """A Maven deploy's rules: the file name fits the version directory, a build timestamp is a
    real moment, a POM's own coordinates are the path's, artifacts are not empty."""
    group, artifact = v.coords.namespace, v.coords.name
    fn = parse_filename(artifact, v.version, f.name)
    check_build(fn, f.name, datetime.now(timezone.utc))
    summary, attrs = None, None
    if fn.is_main_pom:
        if info.size > MAX_POM:
            raise ValidationError(f"The POM {f.name} is larger than {MAX_POM} bytes")
        summary, attrs = check_pom(path.read_bytes(), group, artifact, v.version)
    elif info.size == 0 and fn.extension in ("jar", "war", "aar", "ear", "pom"):
        raise ValidationError(f"{f.name} is empty")
    return publish.File(v.coords, v.version, f.name, info, display_name=artifact, summary=summary,
                        version_attributes=attrs)


def _skipped(name: str) -> bool:
    base = name
    for ext in CHECKSUMS:
        base = base.removesuffix("." + ext)
    return (name in BOOKKEEPING or name.endswith(".lastUpdated") or base.startswith("maven-metadata")
            or name.startswith("."))


def _collect(entries: list[tuple[str, SourceFile, datetime | None]]) -> Iterator[Version | Outcome]:
    """Group (relative path, file, time) into versions; sidecars become the files' expected digests."""
    sums: dict[str, dict[str, str]] = {}
    files = []
    for rel, f, when in entries:
        suffix = rel.rsplit(".", 1)[-1]
        if suffix in CHECKSUMS and f.expected.get("_body") is not None:
            body = f.expected["_body"].split()
            value = body[0].lower() if body else ""
            if len(value) == HEX_LEN[suffix] and all(c in "0123456789abcdef" for c in value):
                sums.setdefault(rel[: -len(suffix) - 1], {})[suffix] = value
            continue
        files.append((rel, f, when))
    versions: dict[tuple[str, str, str], Version] = {}
    for rel, f, when in files:
        try:
            mp = parse_path(rel)
        except ArcaError as exc:
            yield Outcome(rel, "-", "-", "invalid", exc.message)
            continue
        f.expected = {k: v for k, v in sums.get(rel, {}).items() if k in ("sha1", "sha256", "sha512", "md5")}
        key = (mp.group_id, mp.artifact_id, mp.version)
        v = versions.get(key)
        if v is None:
            v = versions[key] = Version(Coordinates("maven", mp.group_id, mp.artifact_id), mp.version,
                                        f"{mp.group_id}:{mp.artifact_id}", [], when)
        v.files.append(f)
        if when and (v.published is None or when < v.published):
            v.published = when
    for v in sorted(versions.values(), key=lambda v: (v.display_name, v.published or datetime.min.replace(
            tzinfo=timezone.utc), v.version)):
        # The POM last: its facts describe the version once its files are in.
        v.files.sort(key=lambda f: (f.name.endswith(".pom"), f.name))
        yield v


def from_dir(root: Path, packages: set[str] | None = None) -> Iterator[Version | Outcome]:
    if not root.is_dir():
        raise ValidationError(f"{root} is not a directory")
    entries = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = path.relative_to(root).as_posix()
        if _skipped(path.name):
            continue
        f = SourceFile(path.name, path=path, size=path.stat().st_size)
        if rel.rsplit(".", 1)[-1] in CHECKSUMS:
            try:
                f.expected = {"_body": path.read_text(errors="replace")[:1024]}
            except OSError:
                continue
        entries.append((rel, f, datetime.fromtimestamp(path.stat().st_mtime, timezone.utc)))
    for item in _collect(entries):
        if packages and isinstance(item, Version) and item.display_name not in packages:
            continue
        yield item


def _crawl(fetcher: Fetcher) -> Iterator[str]:
    """Every file path (relative to the base) that the directory listings under the base link to."""
    queue, seen = [""], {""}
    pages = 0
    while queue and pages < MAX_PAGES:
        rel = queue.pop(0)
        pages += 1
        resp = fetcher.get(rel)
        if resp.status_code != 200 or "html" not in resp.headers.get("content-type", ""):
            continue
        for href, _text, _attrs in links(resp.text):
            full = urljoin(fetcher.url(rel), href.split("?")[0].split("#")[0])
            if not full.startswith(fetcher.base) or full == fetcher.base:
                continue
            sub = unquote(urlsplit(full).path)[len(urlsplit(fetcher.base).path):]
            if not sub or sub in seen or ".." in sub.split("/"):
                continue
            seen.add(sub)
            if sub.endswith("/"):
                queue.append(sub)
            else:
                yield sub


def from_repo(fetcher: Fetcher, packages: set[str] | None = None) -> Iterator[Version | Outcome]:
    entries = []
    for rel in _crawl(fetcher):
        name = rel.rsplit("/", 1)[-1]
        if _skipped(name):
            continue
        f = SourceFile(name, url=rel)
        if rel.rsplit(".", 1)[-1] in CHECKSUMS:
            resp = fetcher.get(rel)
            if resp.status_code != 200 or len(resp.content) > 1024:
                continue
            f.expected = {"_body": resp.text}
        entries.append((rel, f, None))
    for item in _collect(entries):
        if packages and isinstance(item, Version) and item.display_name not in packages:
            continue
        yield item
