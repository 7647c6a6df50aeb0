"""Benchmark (on demand, not collected): one node vs two nodes on the same PostgreSQL + S3 (moto).

    .venv/bin/python tests/bench/bench_scale.py [--files 50] [--reads 2000] [--concurrency 16]

Prints, in one run:
- a 50-file mixed publish (npm PUTs, twine-style uploads, Maven PUT sequences over raw HTTP),
  sent with the given concurrency to one node, then spread over two nodes;
- index reads (npm packument, PyPI simple page, maven-metadata.xml) per second, one node vs two;
- the download throughput of a 100 MB Maven file from a disk-backed node vs an S3-backed node.
Both nodes run on this one machine (2 cores), so two nodes share the same CPUs: the figure shows
that a second node adds no coordination cost, not a hardware speed-up."""

from __future__ import annotations

import argparse
import hashlib
import itertools
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from tests.npm_support import make_tarball, publish_body  # noqa: E402
from tests.pypi_support import form_for, raw_upload, wheel_bytes, wheel_filename  # noqa: E402
from tests.support.server import ArcaServer, fresh_database_url, shared_s3_env, start_server  # noqa: E402


def _publish(node: ArcaServer, token: str, i: int) -> None:
    kind = i % 3
    if kind == 0:
        name, version = "bench-lib", f"1.0.{i}"
        body = publish_body(name, version, make_tarball(name, version))
        r = httpx.put(node.endpoint("bench", "npm", "repo") + name, json=body,
                      headers={"Authorization": f"Bearer {token}"}, timeout=120)
    elif kind == 1:
        content = wheel_bytes("bench-proj", f"2.{i}")
        r = raw_upload(node.endpoint("bench", "pypi", "repo"), token, form_for("bench-proj", f"2.{i}", content),
                       wheel_filename("bench-proj", f"2.{i}"), content)
    else:
        v = f"3.{i}.0"
        base = node.endpoint("bench", "maven", "repo") + f"com/acme/bench/app/{v}/app-{v}"
        with httpx.Client(auth=("aws", token), timeout=120) as c:
            for ext, data in (("pom", b"<project/>"), ("jar", os.urandom(20_000))):
                c.put(f"{base}.{ext}", content=data).raise_for_status()
                c.put(f"{base}.{ext}.sha1", content=hashlib.sha1(data).hexdigest().encode()).raise_for_status()
            md = (f"<metadata><groupId>com.acme.bench</groupId><artifactId>app</artifactId><versioning><versions>"
                  f"<version>{v}</version></versions></versioning></metadata>").encode()
            r = c.put(node.endpoint("bench", "maven", "repo") + "com/acme/bench/app/maven-metadata.xml", content=md)
    r.raise_for_status()


def timed_publish(nodes, token, start: int, files: int, concurrency: int) -> float:
    cycle = itertools.cycle(nodes)
    jobs = [(next(cycle), i) for i in range(start, start + files)]
    t0 = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(lambda job: _publish(job[0], token, job[1]), jobs))
    return files / (time.perf_counter() - t0)


def timed_reads(nodes, token, reads: int, concurrency: int) -> float:
    paths = [("npm", "bench-lib", {"Authorization": f"Bearer {token}", "Accept": "application/json"}),
             ("pypi", "simple/bench-proj/", {"Accept": "application/vnd.pypi.simple.v1+json"}),
             ("maven", "com/acme/bench/app/maven-metadata.xml", {})]
    clients = [httpx.Client(auth=("aws", token), timeout=60) for _ in range(concurrency)]

    def read(i):
        node = nodes[i % len(nodes)]
        fmt, path, headers = paths[i % 3]
        r = clients[i % concurrency].get(node.endpoint("bench", fmt, "repo") + path, headers=headers)
        r.raise_for_status()

    t0 = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(read, range(reads)))
    rate = reads / (time.perf_counter() - t0)
    for c in clients:
        c.close()
    return rate


def download_mb_s(node: ArcaServer, token: str, size: int) -> float:
    url = node.endpoint("bench", "maven", "repo") + "com/acme/big/blob/1.0/blob-1.0.bin"
    block = os.urandom(1024 * 1024)

    def body():
        for _ in range(size // len(block)):
            yield block

    httpx.put(url, content=body(), auth=("aws", token), timeout=600).raise_for_status()
    node.boto().update_package_versions_status(domain="bench", repository="repo", format="maven",
                                               namespace="com.acme.big", package="blob", versions=["1.0"],
                                               targetStatus="Published")
    best = 0.0
    for _ in range(3):
        t0 = time.perf_counter()
        n = 0
        with httpx.stream("GET", url, auth=("aws", token), timeout=600) as r:
            for chunk in r.iter_bytes(1024 * 1024):
                n += len(chunk)
        best = max(best, n / (time.perf_counter() - t0) / 1e6)
    return best


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=50)
    ap.add_argument("--reads", type=int, default=2000)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--mb", type=int, default=100)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="arca-bench-"))
    pgdir = tempfile.mkdtemp(prefix="arca-pg.")
    url = subprocess.run([str(ROOT / "scripts/pg-cluster"), "start", pgdir], check=True, capture_output=True,
                         text=True).stdout.strip()
    os.environ["ARCA_TEST_DATABASE_URL"] = url
    servers = []
    try:
        env = {**shared_s3_env(), "ARCA_SECRET_KEY": "bench-" + "k" * 40}
        db = fresh_database_url(work)
        a = start_server(work / "a", env=env, database_url=db)
        b = ArcaServer(root=work / "b", env={**a.env, "ARCA_DATA_DIR": str(work / "b/storage")},
                       access_key=a.access_key)
        (work / "b").mkdir()
        b.start()
        servers += [a, b]
        for fmt_repo in ("repo",):
            a.create_repo("bench", fmt_repo)
        token = a.token("bench")
        one_pub = timed_publish([a], token, 0, args.files, args.concurrency)
        two_pub = timed_publish([a, b], token, args.files, args.files, args.concurrency)
        one_read = timed_reads([a], token, args.reads, args.concurrency)
        two_read = timed_reads([a, b], token, args.reads, args.concurrency)
        s3_dl = download_mb_s(a, token, args.mb * 1024 * 1024)
        disk = start_server(work / "disk", env={"ARCA_BLOB_STORE": "file"}, database_url=fresh_database_url(work))
        servers.append(disk)
        disk.create_repo("bench", "repo")
        disk_dl = download_mb_s(disk, disk.token("bench"), args.mb * 1024 * 1024)
        print(f"{'measure':<44}{'one node':>12}{'two nodes':>12}")
        print(f"{f'mixed publish, {args.files} files (files/s)':<44}{one_pub:>12.1f}{two_pub:>12.1f}")
        print(f"{f'index reads, c={args.concurrency} (req/s)':<44}{one_read:>12.0f}{two_read:>12.0f}")
        print(f"{'':<44}{'disk':>12}{'S3 (moto)':>12}")
        print(f"{f'download of a {args.mb} MiB file (MB/s)':<44}{disk_dl:>12.0f}{s3_dl:>12.0f}")
    finally:
        for s in servers:
            s.stop()
        subprocess.run([str(ROOT / "scripts/pg-cluster"), "stop", pgdir])


if __name__ == "__main__":
    main()
