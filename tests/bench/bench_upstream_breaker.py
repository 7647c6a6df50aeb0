"""Benchmark (on demand, not collected): what a dead external connection costs a client.

    .venv/bin/python tests/bench/bench_upstream_breaker.py [--timeout 1] [--failures 2]

A real `arca serve` whose public:pypi connection points at a socket that accepts and never
answers. The first FAILURES requests wait for ARCA_UPSTREAM_TIMEOUT and fail; then the circuit
breaker is open and requests fail at once. tests/test_upstream_engine.py checks the behaviour
(the reasons, and that the remote is not contacted while the breaker is open); the times, which
it used to assert with wall-clock bounds, are reported here."""

from __future__ import annotations

import argparse
import socket
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import httpx  # noqa: E402

from tests.support.server import start_server  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--timeout", type=float, default=1.0)
    ap.add_argument("--failures", type=int, default=2)
    ap.add_argument("--after", type=int, default=5, help="requests measured once the breaker is open")
    args = ap.parse_args()
    hang = socket.socket()
    hang.bind(("127.0.0.1", 0))
    hang.listen(100)  # the kernel completes the handshakes; nobody ever reads or answers
    with tempfile.TemporaryDirectory() as tmp:
        srv = start_server(Path(tmp) / "arca", env={
            "ARCA_EXTERNAL_PUBLIC_PYPI": f"http://127.0.0.1:{hang.getsockname()[1]}/simple/",
            "ARCA_UPSTREAM_TIMEOUT": str(args.timeout), "ARCA_UPSTREAM_BREAKER_FAILURES": str(args.failures),
            "ARCA_UPSTREAM_BREAKER_SECONDS": "600"})
        try:
            c = srv.boto()
            c.create_domain(domain="bench")
            c.create_repository(domain="bench", repository="proxy")
            c.associate_external_connection(domain="bench", repository="proxy", externalConnection="public:pypi")
            auth = ("aws", srv.token("bench"))
            took = []
            for i in range(args.failures + args.after):
                t0 = time.perf_counter()
                r = httpx.get(srv.endpoint("bench", "pypi", "proxy") + f"simple/p{i}/", auth=auth, timeout=120)
                took.append(time.perf_counter() - t0)
                assert r.status_code == 502, r.text
        finally:
            srv.stop()
            hang.close()
    closed, opened = took[:args.failures], took[args.failures:]
    print(f"ARCA_UPSTREAM_TIMEOUT={args.timeout}: breaker closed "
          f"{', '.join(f'{t:.2f}' for t in closed)} s per request; breaker open "
          f"{max(opened) * 1000:.1f} ms at most over {len(opened)} requests")


if __name__ == "__main__":
    main()
