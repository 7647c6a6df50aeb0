"""Data-plane read rate with authorization tokens, on demand (not collected by pytest):

    .venv/bin/python -m tests.bench.bench_token_reads [--duration 4] [--workdir /tmp/arca-bench-tokens]

Against one `arca serve` (1 worker, SQLite): requests/s of GET of a 64 KiB jar at concurrency 32,
with an administrator's token (authentication alone: the token's signature, and whether it still
lives, from the per-process caches) and with a non-admin user's token (plus the permission check:
a repository policy and the user's identity policies). Prints one `cell req/s` line per cell.

Issue 15 measured it before and after tokens became revocable: run the same file against both
servers (A/B, interleaved, medians) and compare the lines; docs/identity.md has the figures."""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.bench.bench_maven import requests_per_second  # noqa: E402
from tests.support.server import start_server  # noqa: E402

JAR = "com/acme/app/1.0.0/app-1.0.0.jar"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=float, default=4.0)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/arca-bench-tokens"))
    args = ap.parse_args()
    shutil.rmtree(args.workdir, ignore_errors=True)
    arca = start_server(args.workdir)
    try:
        arca.create_repo("bench", "libs")
        admin_token = arca.token("bench")
        ep = arca.endpoint("bench", "maven", "libs")
        assert httpx.put(ep + JAR, content=b"x" * 65536, auth=("aws", admin_token)).status_code == 201
        arca.boto().update_package_versions_status(domain="bench", repository="libs", format="maven",
                                                   namespace="com.acme", package="app", versions=["1.0.0"],
                                                   targetStatus="Published")
        reader = arca.new_user("reader")
        policy = {"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::000000000000:user/reader"},
             "Action": ["codeartifact:GetAuthorizationToken", "codeartifact:ReadFromRepository"], "Resource": "*"}]}
        arca.boto().put_domain_permissions_policy(domain="bench", policyDocument=json.dumps(policy))
        reader_token = arca.token("bench", key=reader)
        prefix = ep.split(str(arca.port), 1)[1]
        for label, token in (("admin-token", admin_token), ("user-token", reader_token)):
            rate, errors = requests_per_second(arca.port, prefix + JAR, f"aws:{token}", args.concurrency,
                                               args.duration)
            print(f"{label} {rate:.0f}" + (f"  (non-200: {errors})" if errors else ""), flush=True)
    finally:
        arca.stop()
        shutil.rmtree(args.workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
