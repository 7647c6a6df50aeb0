"""BlobStore contract (disk backend): content-addressed, verified, never a partial file under a final name."""

from __future__ import annotations

import hashlib

import anyio
import pytest

from app.domain.errors import PayloadTooLarge, ValidationError
from app.storage.file import FileBlobStore


async def _chunks(*parts: bytes):
    for p in parts:
        yield p


def _final_files(store: FileBlobStore) -> list:
    return sorted(p.name for p in (store.root / "sha256").rglob("*") if p.is_file()) if (
        store.root / "sha256").exists() else []


def test_put_stream_hashes_and_commits(tmp_path):
    store = FileBlobStore(tmp_path)
    data = b"hello " * 100_000
    info = anyio.run(lambda: store.put_stream(_chunks(data[:1000], data[1000:])))
    assert info.sha256 == hashlib.sha256(data).hexdigest()
    assert info.sha1 == hashlib.sha1(data).hexdigest() and info.md5 == hashlib.md5(data).hexdigest()
    assert info.sha512 == hashlib.sha512(data).hexdigest() and info.size == len(data)
    assert b"".join(store.open_chunks(info.sha256)) == data
    assert b"".join(store.open_chunks(info.sha256, 6, 12)) == data[6:12]
    assert list(store.tmp.iterdir()) == []


def test_mismatch_leaves_nothing(tmp_path):
    store = FileBlobStore(tmp_path)
    with pytest.raises(ValidationError):
        anyio.run(lambda: store.put_stream(_chunks(b"abc"), expected={"sha256": "0" * 64}))
    assert _final_files(store) == [] and list(store.tmp.iterdir()) == []


def test_limit_leaves_nothing(tmp_path):
    store = FileBlobStore(tmp_path)
    with pytest.raises(PayloadTooLarge):
        anyio.run(lambda: store.put_stream(_chunks(b"x" * 10, b"y" * 10), limit=15))
    assert _final_files(store) == [] and list(store.tmp.iterdir()) == []


def test_failing_stream_leaves_nothing(tmp_path):
    store = FileBlobStore(tmp_path)

    async def broken():
        yield b"partial"
        raise ConnectionResetError("client went away")

    with pytest.raises(ConnectionResetError):
        anyio.run(lambda: store.put_stream(broken()))
    assert _final_files(store) == [] and list(store.tmp.iterdir()) == []


def test_same_content_deduplicates(tmp_path):
    store = FileBlobStore(tmp_path)
    a = store.put_bytes(b"same")
    b = anyio.run(lambda: store.put_stream(_chunks(b"sa", b"me")))
    assert a == b and _final_files(store) == [a.sha256]
