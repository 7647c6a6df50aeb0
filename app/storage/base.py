"""The BlobStore interface and the hashing every backend shares.

Blobs are content-addressed by SHA-256. Every write goes to a temporary name first, is hashed and
verified on the way, and only then appears under its final name: a reader never sees a partial
or unverified blob, and a crash leaves at worst a temporary file that `clean_temp` removes."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import AsyncIterator, Iterator, Protocol

from app.domain.errors import PayloadTooLarge, ValidationError

CHUNK = 1024 * 1024


@dataclass(frozen=True)
class BlobInfo:
    sha256: str
    sha1: str
    md5: str
    sha512: str
    size: int

    def hashes(self) -> dict[str, str]:
        """CodeArtifact's AssetHashes map."""
        return {"MD5": self.md5, "SHA-1": self.sha1, "SHA-256": self.sha256, "SHA-512": self.sha512}


@dataclass(frozen=True)
class BlobStat:
    size: int
    modified: datetime  # aware, UTC


@dataclass(frozen=True)
class TempSweep:
    """What `clean_temp` found (and, unless a dry run, removed)."""

    count: int
    bytes: int


class Hasher:
    """All four digests in one pass, plus the size and an optional size limit."""

    def __init__(self, limit: int | None = None):
        self._h = (hashlib.sha256(), hashlib.sha1(), hashlib.md5(), hashlib.sha512())
        self.size = 0
        self.limit = limit

    def update(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.limit is not None and self.size > self.limit:
            raise PayloadTooLarge(f"Upload is larger than the limit of {self.limit} bytes")
        for h in self._h:
            h.update(chunk)

    def info(self) -> BlobInfo:
        a, b, c, d = (h.hexdigest() for h in self._h)
        return BlobInfo(sha256=a, sha1=b, md5=c, sha512=d, size=self.size)


def sweep_dir(directory: Path, older_than: datetime, dry_run: bool) -> TempSweep:
    """Count (and unless `dry_run` remove) the files in a staging directory last written before
    `older_than`."""
    count = size = 0
    if not directory.exists():
        return TempSweep(0, 0)
    for p in directory.iterdir():
        try:
            st = p.stat()
            if datetime.fromtimestamp(st.st_mtime, timezone.utc) < older_than:
                count += 1
                size += st.st_size
                if not dry_run:
                    p.unlink(missing_ok=True)
        except FileNotFoundError:
            pass
    return TempSweep(count, size)


def hash_bytes(data: bytes) -> BlobInfo:
    hasher = Hasher()
    hasher.update(data)
    return hasher.info()


def check_expected(info: BlobInfo, expected: dict[str, str] | None) -> None:
    """Compare client-sent digests ({'sha256': hex, ...}) with what was received."""
    for alg, want in (expected or {}).items():
        have = getattr(info, alg.lower().replace("-", ""), None)
        if have is None:
            continue
        if want.strip().lower() != have:
            raise ValidationError(f"{alg} mismatch: the client sent {want.strip()} but the received bytes hash to {have}")


class BlobStore(Protocol):
    """Every operation callers use; both backends implement all of it. Missing blobs raise
    FileNotFoundError; an unreachable backend raises StorageUnavailable."""

    def describe(self) -> str:
        """Where the blobs are, for people (`/srv/arca/blobs`, `s3://bucket/prefix`)."""

    # -- writing -------------------------------------------------------------------------------
    async def put_stream(self, chunks: AsyncIterator[bytes], *, limit: int | None = None,
                         expected: dict[str, str] | None = None) -> BlobInfo:
        """Store a stream under its SHA-256. Written to a temp name, verified against
        `expected`, then committed; on any error nothing is left under a final name."""

    def put_bytes(self, data: bytes, expected: dict[str, str] | None = None) -> BlobInfo:
        """Store a small body held in memory (rendered metadata files)."""

    def new_temp(self) -> Path:
        """A fresh local path to stage a body in (a request body, an npm attachment, a remote
        file), on the file system `commit_file` can take it from. The caller removes it on failure."""

    def commit_file(self, path: Path, expected: dict[str, str] | None = None) -> BlobInfo:
        """Store a staged file under its SHA-256 after checking `expected`; the file is consumed
        (renamed into place or uploaded, then removed). Blocking: call it from a worker thread."""

    # -- reading -------------------------------------------------------------------------------
    def exists(self, sha256: str) -> bool: ...

    def stat(self, sha256: str) -> BlobStat | None:
        """Size and time of last write (or reuse) of a stored blob, None when absent."""

    def open_chunks(self, sha256: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """Yield the blob's bytes [start, end)."""

    def read_bytes(self, sha256: str) -> bytes: ...

    def local_path(self, sha256: str) -> Path | None:
        """A filesystem path for sendfile, or None when the backend is remote."""

    def local_name(self, sha256: str) -> str | None:
        """The blob's path below the store's root directory, with `/` (a proxy in front serves it
        for X-Accel-Redirect), or None when the backend is remote."""

    def presigned_url(self, sha256: str, filename: str | None = None) -> str | None:
        """A short-lived URL a client can download the blob from directly, or None when the
        backend has none (the disk)."""

    # -- maintenance ---------------------------------------------------------------------------
    def iter_stats(self) -> Iterator[tuple[str, BlobStat]]:
        """(sha256, stat) of every stored blob."""

    def delete(self, sha256: str) -> None: ...

    def clean_temp(self, older_than: datetime, dry_run: bool = False) -> TempSweep:
        """Remove temporary files and uploads older than `older_than` (left by interrupted
        uploads or crashed processes); with `dry_run`, only count them."""

    def ping(self) -> None:
        """Raise when the backend cannot be written to."""
