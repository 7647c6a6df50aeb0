"""Remotes for the upstream tests: a switchable, counting reverse proxy in front of a real
third-party server (pypiserver, Verdaccio, a static file server), and helpers to start them."""

from __future__ import annotations

import hashlib
import http.client
import os
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from tests.support.server import VENV_BIN, clean_env, wait_listening


class Remote:
    """Forwards GETs to `target` (changeable), records (path, status, if-none-match), adds an ETag
    (sha256 of the body) and answers 304 to a matching If-None-Match. `tamper[substring] = fn`
    rewrites bodies of matching paths; `gate[substring]` (a threading.Event) holds matching
    requests until set; `down = True` answers 503."""

    def __init__(self, target: str):
        self.target = target
        self.requests: list[tuple[str, int, str | None]] = []
        self.tamper: dict = {}
        self.gate: dict[str, threading.Event] = {}
        self.down = False
        remote = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                for key, ev in list(remote.gate.items()):
                    if key in self.path:
                        remote.requests.append((self.path, 0, None))  # arrival, before the gate
                        ev.wait(30)
                inm = self.headers.get("if-none-match")
                if remote.down:
                    status, data, headers = 503, b"down\n", [("Content-Type", "text/plain")]
                else:
                    t = urlsplit(remote.target)
                    conn = http.client.HTTPConnection(t.hostname, t.port, timeout=60)
                    try:
                        sent = {"Accept": self.headers.get("accept", "*/*"), "Host": self.headers.get("host", "")}
                        for name in ("Authorization",):
                            if self.headers.get(name):
                                sent[name] = self.headers[name]
                        conn.request("GET", self.path, headers=sent)
                        resp = conn.getresponse()
                        status, data = resp.status, resp.read()
                        headers = [(k, v) for k, v in resp.getheaders()
                                   if k.lower() in ("content-type", "location")]
                    except OSError:
                        status, data, headers = 502, b"target unreachable\n", [("Content-Type", "text/plain")]
                    finally:
                        conn.close()
                for key, fn in list(remote.tamper.items()):
                    if key in self.path and status == 200:
                        data = fn(data)
                if status == 200:
                    etag = '"' + hashlib.sha256(data).hexdigest()[:20] + '"'
                    headers.append(("ETag", etag))
                    if inm == etag:
                        status, data = 304, b""
                remote.requests.append((self.path, status, inm))
                self.send_response(status)
                for k, v in headers:
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self):
                """Forwarded as it came (a SigV4-signed API call: every header, the body)."""
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                if remote.down:
                    status, data, headers = 503, b"down\n", [("Content-Type", "text/plain")]
                else:
                    t = urlsplit(remote.target)
                    conn = http.client.HTTPConnection(t.hostname, t.port, timeout=60)
                    try:
                        conn.request("POST", self.path, body=body,
                                     headers={k: v for k, v in self.headers.items() if k.lower() != "connection"})
                        resp = conn.getresponse()
                        status, data = resp.status, resp.read()
                        headers = [(k, v) for k, v in resp.getheaders()
                                   if k.lower() in ("content-type", "date", "x-amzn-errortype")]
                    except OSError:
                        status, data, headers = 502, b"target unreachable\n", [("Content-Type", "text/plain")]
                    finally:
                        conn.close()
                remote.requests.append((self.path, status, None))
                self.send_response(status)
                for k, v in headers:
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def count(self, substring: str, status: int | None = None) -> int:
        return sum(1 for p, s, _ in self.requests if substring in p and s != 0 and (status is None or s == status))

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class Process:
    """A third-party server started as its own process group, stopped by PID. `cmd` tells it to
    listen on 127.0.0.1 port 0; the port it got is read from /proc (none of these servers prints it
    reliably), so no port is guessed and none can be taken by another process in between."""

    def __init__(self, cmd: list[str], log: Path, env: dict | None = None, cwd: Path | None = None,
                 ready: str = ""):
        self.log = log
        with open(log, "ab") as fh:
            self.proc = subprocess.Popen([str(c) for c in cmd], env=env or clean_env(), cwd=cwd, stdout=fh,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        try:
            self.port = wait_listening(self.proc, str(cmd[0]), log)
            self.url = f"http://127.0.0.1:{self.port}"
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"{cmd[0]} exited {self.proc.returncode}:\n{log.read_text(errors='replace')}")
                try:
                    httpx.get(self.url + ready, timeout=1)
                    return
                except httpx.HTTPError:
                    time.sleep(0.1)
            raise RuntimeError(f"{cmd[0]} did not answer:\n{log.read_text(errors='replace')}")
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)


def start_pypiserver(directory: Path, log: Path) -> Process:
    exe = VENV_BIN / "pypi-server"
    if not exe.exists():
        raise RuntimeError("pypiserver is not installed in the venv (pip install pypiserver)")
    return Process([exe, "run", "-p", "0", "-i", "127.0.0.1", "-a", ".", "-P", ".", str(directory)], log,
                   ready="/simple/")


def start_static(directory: Path, log: Path) -> Process:
    """`python -m http.server` over a directory."""
    return Process([sys.executable, "-m", "http.server", "--bind", "127.0.0.1", "0", "--directory", directory], log,
                   ready="/")


# ---- Verdaccio (npm) ---------------------------------------------------------------------------

VERDACCIO_VERSION = "6.8.0"
VERDACCIO_CONFIG = """storage: {storage}
auth:
  htpasswd:
    file: {root}/htpasswd
    max_users: 100
uplinks: {{}}
packages:
  '@*/*':
    access: $all
    publish: $authenticated
  '**':
    access: $all
    publish: $authenticated
server:
  keepAliveTimeout: 60
max_body_size: 100mb
log: {{type: stdout, format: pretty, level: error}}
"""


def tools_dir() -> Path:
    return Path(os.environ.get("ARCA_TEST_TOOLS") or "/tmp/arca-test-tools")


def install_verdaccio() -> Path:
    """Verdaccio 6.8.0 installed with npm once per machine (a file lock serialises xdist workers).
    Its node-fetch@cjs does not resolve on this Node; the package.json override to 2.7.0 fixes it."""
    import fcntl
    import json as _json

    from tests.support.server import require_tool

    npm = require_tool("npm")
    root = tools_dir() / f"verdaccio-{VERDACCIO_VERSION}"
    exe = root / "node_modules" / ".bin" / "verdaccio"
    root.parent.mkdir(parents=True, exist_ok=True)
    with open(root.parent / f".verdaccio-{VERDACCIO_VERSION}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not exe.exists():
            root.mkdir(parents=True, exist_ok=True)
            (root / "package.json").write_text(_json.dumps({
                "name": "verdaccio-host", "version": "1.0.0", "private": True,
                "dependencies": {"verdaccio": VERDACCIO_VERSION}, "overrides": {"node-fetch": "2.7.0"}}))
            subprocess.run([npm, "install", "--no-audit", "--no-fund"], cwd=root, check=True, timeout=900,
                           env=clean_env(npm_config_cache=str(root / ".npm-cache")), capture_output=True)
    return exe


class Verdaccio(Process):
    def __init__(self, root: Path):
        exe = install_verdaccio()
        root.mkdir(parents=True, exist_ok=True)
        (root / "config.yaml").write_text(VERDACCIO_CONFIG.format(storage=root / "storage", root=root))
        super().__init__([exe, "--config", root / "config.yaml", "--listen", "127.0.0.1:0"], root / "verdaccio.log",
                         cwd=root, ready="/-/ping")
        self.root = root
        r = httpx.put(self.url + "/-/user/org.couchdb.user:tester",
                      json={"name": "tester", "password": "tester-password-1", "type": "user", "roles": []},
                      timeout=30)
        r.raise_for_status()
        self.token = r.json()["token"]

    def publish(self, name: str, version: str, deps: dict | None = None, source: str | None = None,
                extra: dict | None = None, tag: str | None = None) -> None:
        """`npm publish` of a small package to this Verdaccio (`extra`: more package.json fields)."""
        from tests.npm_support import write_package

        d = write_package(self.root / "src" / f"{name.replace('/', '_')}-{version}", name, version, deps, extra)
        if source is not None:
            (d / "index.js").write_text(source)
        self.npm("publish", *(["--tag", tag] if tag else []), cwd=d)

    def npm(self, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
        """npm as the Verdaccio user (publish, deprecate, dist-tag ...)."""
        from tests.npm_support import write_npmrc
        from tests.support.server import require_tool

        write_npmrc(self.root / ".npmrc", self.url + "/", self.token)
        env = clean_env(npm_config_userconfig=str(self.root / ".npmrc"),
                        npm_config_cache=str(self.root / "npm-cache"), npm_config_update_notifier="false")
        proc = subprocess.run([require_tool("npm"), *args], cwd=cwd or self.root, env=env, capture_output=True,
                              text=True, timeout=120)
        if proc.returncode != 0:
            raise AssertionError(f"npm {' '.join(args)} against Verdaccio failed:\n{proc.stdout}\n{proc.stderr}")
        return proc
