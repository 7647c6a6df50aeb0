"""Local-disk BlobStore: blobs/sha256/ab/cd/<sha256>, written under tmp/ first, fsynced, renamed."""

from __future__ import annotations

import os
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import AsyncIterator, Iterator

import anyio

from app.storage.base import CHUNK, BlobInfo, BlobStat, Hasher, TempSweep, check_expected, hash_bytes, sweep_dir


class FileBlobStore:
    def __init__(self, root: Path):
        self.root = Path(root)
        self.tmp = self.root / "tmp"
        self.tmp.mkdir(parents=True, exist_ok=True)

    def describe(self) -> str:
        return str(self.root)

    def path_for(self, sha256: str) -> Path:
        return self.root / self.local_name(sha256)

    def local_name(self, sha256: str) -> str:
        return f"sha256/{sha256[:2]}/{sha256[2:4]}/{sha256}"

    def _commit(self, tmp: Path, info: BlobInfo) -> None:
        final = self.path_for(info.sha256)
        final.parent.mkdir(parents=True, exist_ok=True)
        # Same content → same name: replacing an existing blob with identical bytes is harmless.
        os.replace(tmp, final)
        dir_fd = os.open(final.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    # ---- writing -----------------------------------------------------------------------------

    async def put_stream(
        self, chunks: AsyncIterator[bytes], *, limit: int | None = None, expected: dict[str, str] | None = None
    ) -> BlobInfo:
        hasher = Hasher(limit)
        tmp = self.new_temp()
        fh = open(tmp, "wb")

        def absorb(data: bytes) -> None:
            hasher.update(data)
            fh.write(data)

        try:
            # Hashing and writing happen in a worker thread, a megabyte at a time, so a large
            # upload neither stalls the event loop nor pays a thread hop per small chunk.
            buf = bytearray()
            async for chunk in chunks:
                buf += chunk
                if len(buf) >= CHUNK:
                    data, buf = bytes(buf), bytearray()
                    await anyio.to_thread.run_sync(absorb, data)
            if buf:
                await anyio.to_thread.run_sync(absorb, bytes(buf))
            await anyio.to_thread.run_sync(_flush, fh)
            fh.close()
            info = hasher.info()
            check_expected(info, expected)
            await anyio.to_thread.run_sync(self._commit, tmp, info)
            return info
        finally:
            if not fh.closed:
                fh.close()
            tmp.unlink(missing_ok=True)

    def put_bytes(self, data: bytes, expected: dict[str, str] | None = None) -> BlobInfo:
        info = hash_bytes(data)
        check_expected(info, expected)
        if self.exists(info.sha256):
            try:
                os.utime(self.path_for(info.sha256))  # reused: young again for gc's grace period
                return info
            except FileNotFoundError:
                pass  # collected meanwhile: store it again
        tmp = self.new_temp()
        try:
            with open(tmp, "wb") as fh:
                fh.write(data)
                _flush(fh)
            self._commit(tmp, info)
        finally:
            tmp.unlink(missing_ok=True)
        return info

    def new_temp(self) -> Path:
        return self.tmp / f"{uuid.uuid4().hex}.part"

    def commit_file(self, path: Path, expected: dict[str, str] | None = None) -> BlobInfo:
        try:
            hasher = Hasher()
            with open(path, "rb") as fh:
                while chunk := fh.read(CHUNK):
                    hasher.update(chunk)
                os.fsync(fh.fileno())
            info = hasher.info()
            check_expected(info, expected)
            self._commit(path, info)
            return info
        finally:
            path.unlink(missing_ok=True)

    # ---- reading -----------------------------------------------------------------------------

    def exists(self, sha256: str) -> bool:
        return self.path_for(sha256).is_file()

    def stat(self, sha256: str) -> BlobStat | None:
        try:
            st = self.path_for(sha256).stat()
        except FileNotFoundError:
            return None
        return BlobStat(st.st_size, datetime.fromtimestamp(st.st_mtime, timezone.utc))

    def open_chunks(self, sha256: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        with open(self.path_for(sha256), "rb") as fh:
            fh.seek(start)
            remaining = None if end is None else end - start
            while remaining is None or remaining > 0:
                chunk = fh.read(CHUNK if remaining is None else min(CHUNK, remaining))
                if not chunk:
                    break
                if remaining is not None:
                    remaining -= len(chunk)
                yield chunk

    def read_bytes(self, sha256: str) -> bytes:
        return self.path_for(sha256).read_bytes()

    def local_path(self, sha256: str) -> Path | None:
        return self.path_for(sha256)

    def presigned_url(self, sha256: str, filename: str | None = None) -> str | None:
        return None

    # ---- maintenance -------------------------------------------------------------------------

    def iter_stats(self) -> Iterator[tuple[str, BlobStat]]:
        base = self.root / "sha256"
        if not base.exists():
            return
        for p in base.glob("*/*/*"):
            try:
                st = p.stat()
            except FileNotFoundError:
                continue
            yield p.name, BlobStat(st.st_size, datetime.fromtimestamp(st.st_mtime, timezone.utc))

    def delete(self, sha256: str) -> None:
        self.path_for(sha256).unlink(missing_ok=True)

    def clean_temp(self, older_than: datetime, dry_run: bool = False) -> TempSweep:
        return sweep_dir(self.tmp, older_than, dry_run)

    def ping(self) -> None:
        probe = self.tmp / f".ping-{uuid.uuid4().hex}"
        probe.write_bytes(b"")
        probe.unlink()


def _flush(fh) -> None:
    fh.flush()
    os.fsync(fh.fileno())
