"""What every import shares: a source yields `Version`s (the files of one version of one package,
each readable from a local path or a URL, with the digests and publish time the source knows), and
`ingest` takes each one through the publish pipeline (app/services/publish.py): the file is staged,
checked by its format's codec (the caller's `check`), committed to the blob store against the
source's digests, then recorded by `publish.import_version` in one transaction.

A file whose bytes are already stored under its name is skipped before it is read (when the
source says its SHA-256) or after hashing (when it does not), so a second run imports nothing and an
interrupted run, run again, imports only what is missing. A file that fails a check is listed with
its reason and not imported; the rest of the import goes on."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterator
from urllib.parse import urljoin, urlsplit

import httpx

from app.domain.coords import Coordinates
from app.domain.errors import ArcaError, ValidationError
from app.services import publish
from app.services.context import Arca, Principal, RepoRef
from app.storage.base import BlobInfo, Hasher

CHUNK = 1024 * 1024


@dataclass
class SourceFile:
    name: str
    path: Path | None = None  # a local file (never moved or changed), or
    url: str | None = None  # a remote one
    expected: dict[str, str] = field(default_factory=dict)  # digests the source states: sha256, sha1, sha512
    size: int | None = None


@dataclass
class Version:
    """One version of one package as a source has it."""

    coords: Coordinates
    version: str
    display_name: str
    files: list[SourceFile]
    published: datetime | None = None
    tags: dict[str, str] = field(default_factory=dict)
    # Format facts known without reading a file (npm: the manifest from the packument).
    facts: dict = field(default_factory=dict)


@dataclass
class Outcome:
    """One line of the report."""

    file: str
    package: str
    version: str
    result: str  # imported | present | invalid | conflict | closed | failed
    reason: str | None = None
    bytes: int = 0

    def as_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if v is not None}


class Fetcher:
    """Reads remote files with the source's credentials (Basic or Bearer), only under its base URL."""

    def __init__(self, base: str, username: str | None = None, password: str | None = None,
                 token: str | None = None, timeout: float = 60.0):
        parts = urlsplit(base)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValidationError(f"{base!r} is not an http(s) URL")
        self.base = base if base.endswith("/") else base + "/"
        if parts.username and not username:
            username, password = parts.username, parts.password or ""
            self.base = self.base.replace(f"{parts.username}:{parts.password}@" if parts.password else
                                          f"{parts.username}@", "", 1)
        auth = httpx.BasicAuth(username, password or "") if username else None
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.origin = "{0.scheme}://{0.netloc}".format(urlsplit(self.base))
        self.client = httpx.Client(auth=auth, headers=headers, timeout=timeout, follow_redirects=True)

    def url(self, ref: str) -> str:
        full = urljoin(self.base, ref)
        if not full.startswith(self.origin + "/"):
            raise ValidationError(f"{full} is not on {self.origin}; only the source's own files are fetched")
        return full

    def get(self, ref: str, **headers) -> httpx.Response:
        try:
            return self.client.get(self.url(ref), headers=headers)
        except httpx.HTTPError as exc:
            raise ValidationError(f"GET {self.url(ref)} failed: {type(exc).__name__}: {exc}") from None

    def download(self, ref: str, to: Path, limit: int) -> None:
        url = self.url(ref)
        try:
            with self.client.stream("GET", url) as resp:
                if resp.status_code != 200:
                    raise ValidationError(f"GET {url} answered {resp.status_code}")
                size = 0
                with open(to, "wb") as fh:
                    for chunk in resp.iter_bytes(CHUNK):
                        size += len(chunk)
                        if size > limit:
                            raise ValidationError(f"{url} is larger than {limit} bytes (ARCA_MAX_UPLOAD_BYTES)")
                        fh.write(chunk)
        except httpx.HTTPError as exc:
            raise ValidationError(f"GET {url} failed: {type(exc).__name__}: {exc}") from None

    def close(self) -> None:
        self.client.close()


def parse_time(text: object) -> datetime | None:
    """A source's ISO 8601 publish time (npm `time`, PEP 700 `upload-time`) in UTC; None when absent
    or not a time (the import then records none)."""
    if not isinstance(text, str):
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(timezone.utc)
    except ValueError:
        return None


def hash_file(path: Path) -> BlobInfo:
    h = Hasher()
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            h.update(chunk)
    return h.info()


# What a format's importer does with one staged, hashed file: check it with its codec and return the
# publish.File to record (plus extra blobs it stored, such as PEP 658 metadata).
Check = Callable[[Arca, Version, SourceFile, Path, BlobInfo], publish.File]


@dataclass
class Job:
    arca: Arca
    principal: Principal
    ref: RepoRef
    rules: publish.Rules
    check: Check
    fetcher: Fetcher | None = None
    on_outcome: Callable[[Outcome], None] | None = None
    counts: dict = field(default_factory=lambda: {"imported": 0, "present": 0, "invalid": 0, "conflict": 0,
                                                  "closed": 0, "failed": 0})
    bytes_imported: int = 0
    invalid: list = field(default_factory=list)

    def report(self, o: Outcome) -> None:
        self.counts[o.result] = self.counts.get(o.result, 0) + 1
        if o.result == "imported":
            self.bytes_imported += o.bytes
        if o.result in ("invalid", "conflict", "failed", "closed"):
            self.invalid.append(o.as_dict())
        if self.on_outcome:
            self.on_outcome(o)


def _stage(job: Job, f: SourceFile) -> Path:
    temp = job.arca.blobs.new_temp()
    try:
        if f.path is not None:
            if f.path.stat().st_size > job.arca.settings.max_upload_bytes:
                raise ValidationError(f"{f.name} is larger than {job.arca.settings.max_upload_bytes} bytes")
            shutil.copyfile(f.path, temp)
        elif job.fetcher is not None and f.url is not None:
            job.fetcher.download(f.url, temp, job.arca.settings.max_upload_bytes)
        else:
            raise ValidationError(f"{f.name} has no readable source")
    except OSError as exc:
        temp.unlink(missing_ok=True)
        raise ValidationError(f"{f.name} cannot be read: {exc.strerror or exc}") from None
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return temp


def _check_expected(info: BlobInfo, expected: dict[str, str], name: str) -> None:
    for alg, want in expected.items():
        have = getattr(info, alg, None)
        if have is not None and want and want.lower() != have:
            raise ValidationError(f"{name}: the source says {alg} {want} but the file hashes to {have}")


def ingest(job: Job, v: Version) -> None:
    """Import one version's files (the ones not stored yet); report one outcome per file."""
    label = v.display_name
    files: list[publish.File] = []
    pending: list[tuple[SourceFile, int]] = []
    for f in v.files:
        try:
            held = publish.stored_sha256(job.arca, job.ref, v.coords, v.version, f.name, job.rules)
            if held is not None and f.expected.get("sha256") == held:
                job.report(Outcome(f.name, label, v.version, "present"))
                continue
            temp = _stage(job, f)
            try:
                info = hash_file(temp)
                _check_expected(info, f.expected, f.name)
                if held is not None:
                    job.report(Outcome(f.name, label, v.version, "present" if held == info.sha256 else "conflict",
                                       None if held == info.sha256 else
                                       "stored here with other bytes; published files are immutable"))
                    continue
                pf = job.check(job.arca, v, f, temp, info)
                stored = job.arca.blobs.commit_file(temp, {"sha256": info.sha256})
                pf.blob = stored
            finally:
                temp.unlink(missing_ok=True)
            files.append(pf)
            pending.append((f, stored.size))
        except ArcaError as exc:
            job.report(Outcome(f.name, label, v.version, "invalid", exc.message))
    if not files:
        return
    try:
        results = publish.import_version(job.arca, job.principal, job.ref, v.coords, v.version, files, job.rules,
                                         published=v.published, tags=v.tags)
    except ArcaError as exc:
        for f, _size in pending:
            job.report(Outcome(f.name, label, v.version, "failed", exc.message))
        return
    for f, size in pending:
        result = results.get(f.name, "failed")
        reason = {"conflict": "stored here with other bytes; published files are immutable",
                  "closed": "the version is Archived, Disposed or otherwise closed here"}.get(result)
        job.report(Outcome(f.name, label, v.version, result, reason, size if result == "imported" else 0))


def run(job: Job, items: Iterator[Version | Outcome], on_found: Callable[[int], None] | None = None) -> dict:
    """Ingest every version a source yields (an Outcome is a file the source itself found unusable);
    the summary counts files by outcome, and the bytes imported."""
    found = list(items)
    versions = [v for v in found if isinstance(v, Version)]
    files = sum(len(v.files) for v in versions) + len(found) - len(versions)
    if on_found:
        on_found(files)
    for item in found:
        if isinstance(item, Outcome):
            job.report(item)
        else:
            ingest(job, item)
    return {"files": files, "versions": len(versions), **job.counts, "bytesImported": job.bytes_imported,
            "problems": job.invalid}
