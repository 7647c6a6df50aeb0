"""npm benchmark, on demand (not collected by pytest):

    .venv/bin/python -m tests.bench.bench_npm [--duration 5] [--workdir /tmp/arca-bench-npm]

In one run, against Arca (`arca serve`, 1 worker, SQLite) and Verdaccio 6.8.0 (installed with
npm into the work dir, local storage, no uplinks, JWT API tokens: its default "legacy" tokens
re-check the htpasswd bcrypt hash on every request and manage only a few requests/s) serving
the same packages:
  * requests/s for the full and the abbreviated packument of a 20-version and a 1,000-version
    package, at concurrency 1 and 32 (autocannon, authenticated, Accept-Encoding: gzip);
  * `npm install` wall time of 30 packages from a cold cache (no lockfile), median of 3.
Both servers, the load generator and npm share this machine's cores: compare the columns,
not the absolute numbers with other machines."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.npm_support import escape, make_tarball, publish_body, write_consumer, write_npmrc  # noqa: E402
from tests.support.server import clean_env, start_server, wait_listening  # noqa: E402

CORGI = "application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8, */*"
VERDACCIO_CONFIG = """storage: {storage}
auth:
  htpasswd:
    file: {root}/htpasswd
    max_users: 100
uplinks: {{}}
packages:
  '@*/*':
    access: $authenticated
    publish: $authenticated
  '**':
    access: $authenticated
    publish: $authenticated
security:
  api:
    legacy: false
    jwt:
      sign:
        expiresIn: 7d
server:
  keepAliveTimeout: 60
max_body_size: 100mb
log: {{type: stdout, format: pretty, level: error}}
"""


def npm_env(root: Path, **extra) -> dict:
    settings = {"npm_config_userconfig": str(root / ".npmrc"), "npm_config_cache": str(root / "npm-cache"),
                "npm_config_update_notifier": "false", "npm_config_fund": "false", "npm_config_audit": "false"}
    return clean_env(**{**settings, **extra})


def install_tools(workdir: Path) -> Path:
    tools = workdir / "tools"
    if (tools / "node_modules" / ".bin" / "verdaccio").exists() and (tools / "node_modules" / ".bin" / "autocannon").exists():
        return tools
    tools.mkdir(parents=True, exist_ok=True)
    (tools / ".npmrc").write_text("registry=https://registry.npmjs.org/\n")
    # Verdaccio 6.8.0's node-fetch@cjs does not resolve on Node 20 here; 2.7.0 is what it needs.
    (tools / "package.json").write_text(json.dumps({
        "name": "bench-tools", "version": "1.0.0", "private": True,
        "dependencies": {"verdaccio": "6.8.0", "autocannon": "7.15.0"},
        "overrides": {"node-fetch": "2.7.0"}}))
    subprocess.run(["npm", "install", "--no-audit", "--no-fund"], cwd=tools, env=npm_env(tools), check=True,
                   timeout=900)
    return tools


class Verdaccio:
    def __init__(self, tools: Path, root: Path):
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir(parents=True)
        self.root = root
        (root / "config.yaml").write_text(VERDACCIO_CONFIG.format(storage=root / "storage", root=root))
        self.log = open(root / "verdaccio.log", "wb")
        self.proc = subprocess.Popen(
            [str(tools / "node_modules" / ".bin" / "verdaccio"), "--config", str(root / "config.yaml"),
             "--listen", "127.0.0.1:0"], cwd=root, env=clean_env(), stdout=self.log,
            stderr=subprocess.STDOUT, start_new_session=True)
        self.port = wait_listening(self.proc, "verdaccio", root / "verdaccio.log")
        self.url = f"http://127.0.0.1:{self.port}/"
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                if httpx.get(self.url + "-/ping", timeout=1).status_code < 500:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        r = httpx.put(self.url + "-/user/org.couchdb.user:bench",
                      json={"name": "bench", "password": "bench-password-1", "type": "user", "roles": []})
        r.raise_for_status()
        self.token = r.json()["token"]

    def stop(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(10)


def publish_all(url: str, token: str, bodies: list[tuple[str, dict]], threads: int = 1) -> float:
    t0 = time.perf_counter()
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    def one(chunk):
        with httpx.Client(base_url=url, headers=headers, timeout=120) as c:
            for name, body in chunk:
                r = c.put(escape(name), content=json.dumps(body))
                if r.status_code not in (200, 201):
                    raise RuntimeError(f"publish {name} to {url}: {r.status_code} {r.text[:300]}")

    # versions of one package go in order (Verdaccio would race on its own JSON file otherwise)
    by_pkg: dict[str, list] = {}
    for name, body in bodies:
        by_pkg.setdefault(name, []).append((name, body))
    with ThreadPoolExecutor(threads) as ex:
        list(ex.map(one, by_pkg.values()))
    return time.perf_counter() - t0


def bodies_for(name: str, count: int, deps: dict | None = None) -> list[tuple[str, dict]]:
    out = []
    for i in range(count):
        version = f"{i // 100}.{i % 100}.0"
        extra = {"dependencies": deps or {}, "keywords": ["bench", "npm"],
                 "scripts": {"test": "node test.js"}, "engines": {"node": ">=18"},
                 "repository": {"type": "git", "url": "https://example.invalid/bench.git"}}
        body = publish_body(name, version, make_tarball(name, version), manifest=extra)
        body["versions"][version]["readme"] = f"# {name}\n\n" + "Some readme text. " * 20
        out.append((name, body))
    return out


def autocannon(tools: Path, url: str, token: str, accept: str, conns: int, duration: int) -> float:
    cmd = [str(tools / "node_modules" / ".bin" / "autocannon"), "-j", "-c", str(conns), "-d", str(duration),
           "-H", f"Authorization=Bearer {token}", "-H", f"Accept={accept}", "-H", "Accept-Encoding=gzip", url]
    out = subprocess.run(cmd, capture_output=True, text=True, env=clean_env(), timeout=duration + 120)
    data = json.loads(out.stdout)
    if data.get("non2xx") or data.get("errors"):
        raise RuntimeError(f"autocannon {url}: non2xx={data.get('non2xx')} errors={data.get('errors')}")
    return data["requests"]["total"] / (data["duration"] or duration)


def npm_install_time(work: Path, url: str, token: str, deps: dict, runs: int = 3) -> float:
    times = []
    for i in range(runs):
        d = work / f"install-{i}"
        shutil.rmtree(d, ignore_errors=True)
        write_consumer(d, deps)
        write_npmrc(d / ".npmrc", url, token)
        env = npm_env(d, npm_config_cache=str(d / "cache"))
        t0 = time.perf_counter()
        proc = subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--ignore-scripts"], cwd=d, env=env,
                              capture_output=True, text=True, timeout=600)
        if proc.returncode != 0:
            raise RuntimeError(f"npm install against {url} failed:\n{proc.stderr[-2000:]}")
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=int, default=5)
    ap.add_argument("--workdir", default="/tmp/arca-bench-npm")
    args = ap.parse_args()
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    tools = install_tools(work)

    shutil.rmtree(work / "arca", ignore_errors=True)
    arca = start_server(work / "arca")
    verd = Verdaccio(tools, work / "verdaccio")
    try:
        arca.create_repo("bench", "npm")
        servers = {"arca": (arca.endpoint("bench", "npm", "npm"), arca.token("bench")),
                   "verdaccio": (verd.url, verd.token)}
        meta_deps = {"left-pad": "^1.3.0", "lodash": "^4.17.21"}  # only read, never installed
        small, big = bodies_for("bench-20", 20, meta_deps), bodies_for("bench-1000", 1000, meta_deps)
        # 30 packages to install; every fifth depends on the next one, so npm also resolves a chain
        thirty = [b for i in range(30)
                  for b in bodies_for(f"bench-dep-{i}", 3, {f"bench-dep-{i + 1}": "*"} if i % 5 == 0 else None)]
        print("publishing 20 + 1,000 versions and 30 packages x 3 versions to each server ...", flush=True)
        for label, (url, token) in servers.items():
            secs = publish_all(url, token, small + big + thirty, threads=4)
            print(f"  {label}: {secs:.1f} s", flush=True)

        rows = []
        for pkg in ("bench-20", "bench-1000"):
            for kind, accept in (("full", "application/json"), ("abbreviated", CORGI)):
                for conns in (1, 32):
                    cells = {label: autocannon(tools, url + pkg, token, accept, conns, args.duration)
                             for label, (url, token) in servers.items()}
                    rows.append((pkg, kind, conns, cells))
                    print(f"  {pkg:<11} {kind:<11} c={conns:<3} " +
                          "  ".join(f"{k}={v:8.0f} req/s" for k, v in cells.items()), flush=True)

        deps = {f"bench-dep-{i}": "*" for i in range(30)}
        installs = {label: npm_install_time(work / f"npm-{label}", url, token, deps)
                    for label, (url, token) in servers.items()}

        print("\n| package | document | concurrency | Arca req/s | Verdaccio req/s |")
        print("|---|---|---|---|---|")
        for pkg, kind, conns, cells in rows:
            print(f"| {pkg} | {kind} | {conns} | {cells['arca']:.0f} | {cells['verdaccio']:.0f} |")
        print(f"\nnpm install, 30 packages, cold cache (median of 3): Arca {installs['arca']:.2f} s, "
              f"Verdaccio {installs['verdaccio']:.2f} s")
    finally:
        verd.stop()
        arca.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
