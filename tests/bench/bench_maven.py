"""Maven benchmark, on demand (not collected by pytest):

    .venv/bin/python -m tests.bench.bench_maven [--duration 5] [--size-mb 1024] [--workdir /tmp/arca-bench-maven]

In one run, against Arca (`arca serve`, 1 worker, SQLite, token auth) and Python's static file
server (`http.server`, HTTP/1.1 keep-alive, no auth) serving the same files:
  * requests/s of GET of a 64 KiB jar and of its maven-metadata.xml, at concurrency 1 and 32
    (a keep-alive asyncio client in this process, Maven's headers);
  * the server's peak RSS while a large file (1 GiB by default) is PUT and then GET, sampled
    from /proc every 20 ms, with the transfer rates. http.server cannot take a PUT: its row
    shows the GET only.
Servers and client share this machine's cores: compare the columns, not absolute numbers."""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.support.server import clean_env, start_server, wait_listening  # noqa: E402

GROUP, ARTIFACT, VERSION = "com/acme", "app", "1.0.0"
JAR = f"{GROUP}/{ARTIFACT}/{VERSION}/{ARTIFACT}-{VERSION}.jar"
BIG = f"{GROUP}/{ARTIFACT}/{VERSION}/{ARTIFACT}-{VERSION}-big.bin"
METADATA = f"{GROUP}/{ARTIFACT}/maven-metadata.xml"
STATIC_SERVER = ("import http.server as h, sys, functools\n"
                 "h.SimpleHTTPRequestHandler.protocol_version = 'HTTP/1.1'\n"
                 "h.SimpleHTTPRequestHandler.log_message = lambda *a: None\n"
                 "handler = functools.partial(h.SimpleHTTPRequestHandler, directory=sys.argv[2])\n"
                 "h.ThreadingHTTPServer(('127.0.0.1', int(sys.argv[1])), handler).serve_forever()\n")


# ---- load generator ------------------------------------------------------------------------------

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
            await reader.readexactly(int(headers.get(b"content-length", b"0")))
            counts[0 if status == 200 else 1] += 1
            if headers.get(b"connection", b"").lower() == b"close":
                writer.close()
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
    finally:
        writer.close()


def requests_per_second(port: int, path: str, auth: str | None, concurrency: int, duration: float) -> tuple[float, int]:
    headers = [f"GET {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", "User-Agent: Apache-Maven/3.8.7 (bench)",
               "Cache-control: no-cache", "Pragma: no-cache", "Accept-Encoding: gzip,deflate"]
    if auth:
        headers.append(f"Authorization: Basic {base64.b64encode(auth.encode()).decode()}")
    request = ("\r\n".join(headers) + "\r\n\r\n").encode()

    async def run():
        await _one_connection(port, request, time.perf_counter() + 0.3, [0, 0])  # warm up
        counts = [0, 0]
        started = time.perf_counter()
        deadline = started + duration
        await asyncio.gather(*(_one_connection(port, request, deadline, counts) for _ in range(concurrency)))
        return counts[0] / (time.perf_counter() - started), counts[1]

    return asyncio.run(run())


# ---- memory --------------------------------------------------------------------------------------

def _tree_rss_kb(pid: int) -> int:
    """RSS of a process and its descendants (uvicorn may fork), from /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
                ppid = int(stat.rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(entry))
            except (OSError, ValueError, IndexError):
                continue
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
        todo += children.get(p, [])
    return total


class PeakRss:
    def __init__(self, pid: int):
        self.pid, self.peak, self._stop = pid, 0, threading.Event()
        self.start_kb = _tree_rss_kb(pid)

    def __enter__(self):
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, _tree_rss_kb(self.pid))
            self._stop.wait(0.02)

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def _file_chunks(path: Path, size: int = 1024 * 1024):
    with open(path, "rb") as fh:
        while chunk := fh.read(size):
            yield chunk


def timed_get(url: str, auth) -> tuple[float, int]:
    started, n = time.perf_counter(), 0
    with httpx.stream("GET", url, auth=auth, timeout=600) as resp:
        resp.raise_for_status()
        for chunk in resp.iter_raw(1024 * 1024):
            n += len(chunk)
    return time.perf_counter() - started, n


def timed_put(url: str, auth, path: Path) -> float:
    started = time.perf_counter()
    resp = httpx.put(url, content=_file_chunks(path), auth=auth, timeout=600,
                     headers={"Content-Length": str(path.stat().st_size)})
    resp.raise_for_status()
    return time.perf_counter() - started


# ---- run -----------------------------------------------------------------------------------------

def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=float, default=5.0)
    ap.add_argument("--size-mb", type=int, default=1024)
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/arca-bench-maven"))
    args = ap.parse_args()
    work = args.workdir
    if work.exists():
        shutil.rmtree(work)
    static = work / "static"
    (static / GROUP / ARTIFACT / VERSION).mkdir(parents=True)
    jar = os.urandom(64 * 1024)
    (static / JAR).write_bytes(jar)
    big = static / BIG
    block = os.urandom(1024 * 1024)
    with open(big, "wb") as fh:
        for _ in range(args.size_mb):
            fh.write(block)

    arca = start_server(work / "arca")
    static_proc = subprocess.Popen([sys.executable, "-c", STATIC_SERVER, "0", str(static)],
                                   env=clean_env(), start_new_session=True)
    static_port = wait_listening(static_proc, "static file server")
    try:
        arca.create_repo("bench", "libs")
        auth = ("aws", arca.token("bench"))
        ep = arca.endpoint("bench", "maven", "libs")
        assert httpx.put(ep + JAR, content=jar, auth=auth).status_code == 201
        meta = (f"<metadata><groupId>com.acme</groupId><artifactId>{ARTIFACT}</artifactId><versioning><versions>"
                f"<version>{VERSION}</version></versions></versioning></metadata>").encode()
        assert httpx.put(ep + METADATA, content=meta, auth=auth).status_code == 200
        rendered = httpx.get(ep + METADATA, auth=auth)
        rendered.raise_for_status()
        (static / METADATA).write_bytes(rendered.content)
        for _ in range(100):
            try:
                httpx.get(f"http://127.0.0.1:{static_port}/{JAR}").raise_for_status()
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        prefix = ep.split(str(arca.port), 1)[1]
        auth_text = ":".join(auth)

        print(f"# Maven benchmark: {args.duration:.0f} s per cell, Arca 1 worker (SQLite) vs http.server")
        print(f"{'request':<28}{'conc':>5}{'arca req/s':>13}{'static req/s':>14}")
        for label, path in (("GET jar (64 KiB)", JAR), ("GET maven-metadata.xml", METADATA)):
            for conc in (1, 32):
                a, a_err = requests_per_second(arca.port, prefix + path, auth_text, conc, args.duration)
                s, s_err = requests_per_second(static_port, "/" + path, None, conc, args.duration)
                errs = f"  (non-200: arca {a_err}, static {s_err})" if a_err or s_err else ""
                print(f"{label:<28}{conc:>5}{a:>13.0f}{s:>14.0f}{errs}")

        size = big.stat().st_size
        mib = size / 1024 / 1024
        print(f"\n# {mib:.0f} MiB file: server RSS (MiB) before -> peak during the transfer, and MiB/s")
        with PeakRss(arca.proc.pid) as put_mem:
            put_s = timed_put(ep + BIG, auth, big)
        assert httpx.put(ep + METADATA, content=meta, auth=auth).status_code == 200
        with PeakRss(arca.proc.pid) as get_mem:
            get_s, got = timed_get(ep + BIG, auth)
        assert got == size, got
        with PeakRss(static_proc.pid) as sget_mem:
            sget_s, got = timed_get(f"http://127.0.0.1:{static_port}/{BIG}", None)
        assert got == size, got
        for who, op, mem, secs in (("arca", "PUT", put_mem, put_s), ("arca", "GET", get_mem, get_s),
                                   ("http.server", "GET", sget_mem, sget_s)):
            print(f"{who:<12}{op:<5}rss {mem.start_kb / 1024:7.1f} -> {mem.peak / 1024:7.1f}   "
                  f"{mib / secs:8.1f} MiB/s")
        print(f"{'http.server':<12}{'PUT':<5}n/a (a static server takes no uploads)")
    finally:
        os.killpg(static_proc.pid, signal.SIGTERM)
        static_proc.wait(10)
        arca.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
