"""The BlobStore interface and the hashing every backend shares."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
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


def check_expected(info: BlobInfo, expected: dict[str, str] | None) -> None:
    """Compare client-sent digests ({'sha256': hex, ...}) with what was received."""
    for alg, want in (expected or {}).items():
        have = getattr(info, alg.lower().replace("-", ""), None)
        if have is None:
            continue
        if want.strip().lower() != have:
            raise ValidationError(f"{alg} mismatch: the client sent {want.strip()} but the received bytes hash to {have}")


class BlobStore(Protocol):
    async def put_stream(
        self, chunks: AsyncIterator[bytes], *, limit: int | None = None, expected: dict[str, str] | None = None
    ) -> BlobInfo:
        """Store a stream under its SHA-256. Written to a temp name, verified against
        `expected`, then committed; on any error nothing is left under a final name."""

    def put_bytes(self, data: bytes, expected: dict[str, str] | None = None) -> BlobInfo: ...

    def read_bytes(self, sha256: str) -> bytes: ...

    def iter_hashes(self) -> Iterator[str]: ...

    def exists(self, sha256: str) -> bool: ...

    def open_chunks(self, sha256: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """Yield the blob's bytes [start, end)."""

    def local_path(self, sha256: str):
        """A filesystem path for sendfile, or None when the backend is remote."""

    def delete(self, sha256: str) -> None: ...

    def ping(self) -> None: ...
