"""Benchmark (on demand, not collected): disk vs S3 (moto's standalone server on loopback)
upload and download throughput of one 100 MB blob through the BlobStore interface.

    .venv/bin/python tests/bench/bench_storage.py [--mb 100] [--rounds 3]

moto keeps objects in its own process memory and speaks HTTP over loopback, so the S3 figures
measure Arca's S3 code path (multipart upload, ranged streaming GET) plus moto, not a real
object store; use them to compare code paths, not to size a deployment."""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import anyio  # noqa: E402

from app.storage.file import FileBlobStore  # noqa: E402
from app.storage.s3 import S3BlobStore  # noqa: E402
from tests.support.moto_server import CREDS, start_moto  # noqa: E402

MB = 1000 * 1000


def _upload(store, block: bytes, n: int):
    async def body():
        for _ in range(n):
            yield block

    return anyio.run(lambda: store.put_stream(body()))


def _download(store, sha256: str) -> tuple[int, str]:
    h = hashlib.sha256()
    size = 0
    for chunk in store.open_chunks(sha256):
        size += len(chunk)
        h.update(chunk)
    return size, h.hexdigest()


def bench(name: str, store, mb: int, rounds: int) -> dict:
    block = os.urandom(MB)
    ups, downs = [], []
    info = None
    for _ in range(rounds):
        if info is not None:
            store.delete(info.sha256)
        t = time.perf_counter()
        info = _upload(store, block, mb)
        ups.append(time.perf_counter() - t)
    for _ in range(rounds):
        t = time.perf_counter()
        size, digest = _download(store, info.sha256)
        downs.append(time.perf_counter() - t)
        assert size == info.size and digest == info.sha256
    # Download without re-hashing (what a server does when it streams a blob to a client).
    raw = []
    for _ in range(rounds):
        t = time.perf_counter()
        n = sum(len(c) for c in store.open_chunks(info.sha256))
        raw.append(time.perf_counter() - t)
        assert n == info.size
    med = statistics.median
    return {"store": name, "MB": mb, "upload MB/s": mb / med(ups), "download+sha256 MB/s": mb / med(downs),
            "download MB/s": mb / med(raw)}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--mb", type=int, default=100)
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        moto = start_moto(Path(tmp))
        try:
            rows = [bench("disk", FileBlobStore(Path(tmp) / "blobs"), args.mb, args.rounds)]
            s3 = S3BlobStore.from_url(f"s3://{moto.new_bucket()}/bench", endpoint_url=moto.url, **CREDS)
            rows.append(bench("s3 (moto)", s3, args.mb, args.rounds))
        finally:
            moto.stop()
    print(f"BlobStore throughput, one {args.mb} MB blob, median of {args.rounds} rounds "
          f"({os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f})")
    cols = ["store", "upload MB/s", "download MB/s", "download+sha256 MB/s"]
    print("  ".join(f"{c:>22}" for c in cols))
    for r in rows:
        print("  ".join(f"{r[c]:>22.1f}" if isinstance(r[c], float) else f"{r[c]:>22}" for c in cols))


if __name__ == "__main__":
    main()
