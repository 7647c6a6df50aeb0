"""PyPI benchmark, on demand (not collected by pytest):

    .venv/bin/python -m tests.bench.bench_pypi [--duration 5] [--workdir /tmp/arca-bench-pypi]

In one run, against Arca (`arca serve`, 1 worker, SQLite, token auth) and pypiserver 2.x
(installed from PyPI into a venv in the work dir with waitress, which its `--server auto` picks;
cached-dir backend; no auth) serving
the same files:
  * requests/s of `/simple/{project}/` for a 20-file and a 5,000-file project, JSON (PEP 691) and
    HTML, at concurrency 1 and 32, with pip's headers (Accept-Encoding: gzip). pypiserver has no
    JSON API; its column shows HTML only.
  * `pip download --no-deps` wall time of 50 packages (2 versions each), cold cache, median of 3.
The load generator is a small keep-alive asyncio client in this process. Servers, client and pip
share this machine's cores: compare the columns, not the absolute numbers with other machines.

The 5,000-file project is written into Arca's blob store and database directly (same rows as an
upload makes); the 20-file project and the 50 packages go through the upload API (timed)."""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests import pypi_support as ps  # noqa: E402
from tests.support.server import clean_env, start_server, wait_listening  # noqa: E402

JSON_V1 = "application/vnd.pypi.simple.v1+json"
PIP_ACCEPT = f"{JSON_V1}, application/vnd.pypi.simple.v1+html; q=0.1, text/html; q=0.01"


# ---- files -------------------------------------------------------------------------------------

def write_files(workdir: Path) -> dict[str, list[Path]]:
    files = workdir / "files"
    if files.exists():
        shutil.rmtree(files)
    files.mkdir(parents=True)
    small = [ps.make_wheel(files, "small-project", f"1.{i}", requires_python=">=3.8") for i in range(20)]
    big = [ps.make_wheel(files, "big-project", f"0.{i}", requires_python=">=3.8") for i in range(5000)]
    fifty = [ps.make_wheel(files, f"bench-pkg-{i}", v) for i in range(50) for v in ("1.0", "1.1")]
    return {"small": small, "big": big, "fifty": fifty}


def upload_http(url: str, token: str, paths: list[Path]) -> float:
    started = time.perf_counter()
    for p in paths:
        data = p.read_bytes()
        name, version = p.name.split("-")[:2]
        resp = ps.raw_upload(url, token, ps.form_for(name, version, data), p.name, data)
        resp.raise_for_status()
    return len(paths) / (time.perf_counter() - started)


def _put_unsynced(blobs, data: bytes):
    """FileBlobStore.put_bytes without its two fsyncs (~15 ms each here): set-up only, not measured."""
    from app.storage.base import Hasher

    h = Hasher()
    h.update(data)
    info = h.info()
    path = blobs.path_for(info.sha256)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return info


def insert_direct(env: dict, domain: str, repo: str, paths: list[Path]) -> None:
    """What an upload stores (blob, metadata blob, rows), without HTTP: for the 5,000-file project."""
    saved = dict(os.environ)
    os.environ.update({k: v for k, v in env.items() if k.startswith("ARCA_")})
    try:
        from app.config import settings_from_env
        from app.db.models import Domain, Repository
        from app.domain.coords import Coordinates
        from app.formats.pypi import dists
        from app.services import rows as pk
        from app.services.context import Arca
        from sqlalchemy import select

        arca = Arca.from_settings(settings_from_env(), migrate=False)
        for start in range(0, len(paths), 500):
            batch = []
            for p in paths[start:start + 500]:
                dist = dists.parse_filename(p.name)
                meta = dists.read_core_metadata(p, dist)
                core = dists.parse_core_metadata(meta, p.name)
                batch.append((dist, core, _put_unsynced(arca.blobs, p.read_bytes()), _put_unsynced(arca.blobs, meta)))
            with arca.db.session() as s:
                d = s.scalar(select(Domain).where(Domain.name == domain))
                r = s.scalar(select(Repository).where(Repository.domain_id == d.id, Repository.name == repo))
                for dist, core, info, meta_info in batch:
                    pkg = pk.get_or_create_package(s, r, Coordinates("pypi", "", dist.name), core.name)
                    ver, _ = pk.get_or_create_version(s, pkg, str(dist.version), status="Published",
                                                      summary=core.summary, attributes=core.attributes)
                    pk.blob_row(s, d.id, meta_info)
                    pk.put_asset(s, d, ver, dist.filename, info, attributes={
                        "filetype": "bdist_wheel", "requires_python": core.requires_python,
                        "metadata_sha256": meta_info.sha256, "metadata_size": meta_info.size})
                pk.bump(s, pkg)
        arca.db.dispose()
    finally:
        os.environ.clear()
        os.environ.update(saved)


# ---- pypiserver --------------------------------------------------------------------------------

class PypiServer:
    def __init__(self, workdir: Path, packages: Path):
        venv = workdir / "pypiserver-venv"
        if not (venv / "bin" / "pypi-server").exists():
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
            subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--no-cache-dir", "-q",
                            "pypiserver[cache]", "waitress"], env=clean_env(), check=True, timeout=900)
        self.version = subprocess.run([str(venv / "bin" / "pypi-server"), "--version"], capture_output=True,
                                      text=True).stdout.strip()
        self.log = open(workdir / "pypiserver.log", "wb")
        self.proc = subprocess.Popen(
            [str(venv / "bin" / "pypi-server"), "run", "-p", "0", "-i", "127.0.0.1", "-a", ".", "-P", ".",
             "--server", "auto", "--backend", "cached-dir", str(packages)],
            env=clean_env(), stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        self.port = wait_listening(self.proc, "pypi-server", workdir / "pypiserver.log")
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                if httpx.get(f"{self.url}/simple/", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.2)
        raise RuntimeError("pypiserver did not start: " + (workdir / "pypiserver.log").read_text())

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        os.killpg(self.proc.pid, signal.SIGTERM)
        self.proc.wait(10)


# ---- load generator ----------------------------------------------------------------------------

async def _one_connection(port: int, request: bytes, deadline: float, counts: list[int]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while time.perf_counter() < deadline:
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            headers = {}
            for line in head.split(b"\r\n")[1:]:
                if b":" in line:
                    k, v = line.split(b":", 1)
                    headers[k.strip().lower()] = v.strip()
            if b"content-length" in headers:
                await reader.readexactly(int(headers[b"content-length"]))
            elif headers.get(b"transfer-encoding", b"").lower() == b"chunked":
                while True:
                    size = int((await reader.readuntil(b"\r\n")).strip().split(b";")[0], 16)
                    await reader.readexactly(size + 2)
                    if size == 0:
                        break
            counts[0 if status == 200 else 1] += 1
            if headers.get(b"connection", b"").lower() == b"close":
                writer.close()
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
    finally:
        writer.close()


def requests_per_second(port: int, path: str, accept: str, auth: str | None, concurrency: int,
                        duration: float) -> tuple[float, int]:
    headers = [f"GET {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", f"Accept: {accept}",
               "Accept-Encoding: gzip, deflate", "User-Agent: bench-pypi", "Cache-Control: max-age=0"]
    if auth:
        headers.append(f"Authorization: Basic {base64.b64encode(auth.encode()).decode()}")
    request = ("\r\n".join(headers) + "\r\n\r\n").encode()

    async def run():
        counts = [0, 0]
        await _one_connection(port, request, time.perf_counter() + 0.3, [0, 0])  # warm the caches
        deadline = time.perf_counter() + duration
        started = time.perf_counter()
        await asyncio.gather(*(_one_connection(port, request, deadline, counts) for _ in range(concurrency)))
        return counts[0] / (time.perf_counter() - started), counts[1]

    return asyncio.run(run())


def pip_download_time(index: str, names: list[str], workdir: Path, runs: int = 3) -> float:
    times = []
    for i in range(runs):
        dest = workdir / f"pipdl-{i}"
        shutil.rmtree(dest, ignore_errors=True)
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-cache-dir",
                        "--disable-pip-version-check", "-q", "-d", str(dest), "--index-url", index, *names],
                       env=clean_env(), check=True, timeout=900)
        times.append(time.perf_counter() - started)
        assert len(list(dest.iterdir())) == len(names)
    return statistics.median(times)


# ---- main --------------------------------------------------------------------------------------

def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=float, default=5.0)
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/arca-bench-pypi"))
    args = ap.parse_args()
    work = args.workdir
    work.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(work / "arca", ignore_errors=True)

    print("writing files ...", flush=True)
    sets = write_files(work)
    arca = start_server(work / "arca")
    pypiserver = None
    try:
        arca.create_repo("bench", "py")
        token = arca.token("bench")
        endpoint = arca.endpoint("bench", "pypi", "py")
        up = upload_http(endpoint, token, sets["small"] + sets["fifty"])
        print(f"arca: {len(sets['small']) + len(sets['fifty'])} uploads over HTTP at {up:.1f} uploads/s", flush=True)
        started = time.perf_counter()
        insert_direct(arca.env, "bench", "py", sets["big"])
        print(f"arca: 5,000 files written directly in {time.perf_counter() - started:.1f} s", flush=True)
        pypiserver = PypiServer(work, work / "files")
        print(f"pypiserver: {pypiserver.version} on port {pypiserver.port}", flush=True)

        first = httpx.get(endpoint + "simple/big-project/", auth=("aws", token), headers={"Accept": JSON_V1},
                          timeout=120)
        assert len(first.json()["files"]) == 5000
        t0 = time.perf_counter()
        check = httpx.get(pypiserver.url + "/simple/big-project/", timeout=120)
        assert check.text.count("<a ") == 5000, check.text[:300]
        print(f"pypiserver: first 5,000-file page {time.perf_counter() - t0:.2f} s", flush=True)

        rows = []
        base = f"/bench/pypi/py/simple/"
        for project in ("small-project", "big-project"):
            for fmt, accept in (("JSON", PIP_ACCEPT), ("HTML", "text/html")):
                for conc in (1, 32):
                    a, a_err = requests_per_second(arca.port, f"{base}{project}/", accept, f"aws:{token}", conc,
                                                   args.duration)
                    if fmt == "HTML":
                        p, p_err = requests_per_second(pypiserver.port, f"/simple/{project}/", accept, None, conc,
                                                       args.duration)
                        pcell = f"{p:9.1f}" + (f" ({p_err} err)" if p_err else "")
                    else:
                        pcell = "      n/a"
                    rows.append(f"| {project:13} | {fmt:4} | {conc:3} | {a:9.1f}{f' ({a_err} err)' if a_err else ''} | {pcell} |")
                    print(rows[-1], flush=True)

        names = [f"bench-pkg-{i}" for i in range(50)]
        arca_pip = pip_download_time(f"http://aws:{token}@{arca.hostport}{base}", names, work)
        pps_pip = pip_download_time(f"{pypiserver.url}/simple/", names, work)
        print()
        print("| project       | fmt  | c   | arca req/s | pypiserver req/s |")
        print("|---------------|------|-----|-----------|------------------|")
        for row in rows:
            print(row)
        print()
        print(f"pip download --no-deps of 50 packages (median of 3): arca {arca_pip:.2f} s, "
              f"pypiserver {pps_pip:.2f} s")
    finally:
        arca.stop()
        if pypiserver is not None:
            pypiserver.stop()


if __name__ == "__main__":
    main()
