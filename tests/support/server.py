"""Start real `arca serve` processes for tests: a port the server binds itself (`--port 0`), own data
dir, own database, stop by PID."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx

VENV_BIN = Path(sys.executable).parent
ARCA = str(VENV_BIN / "arca")


# The first line `arca serve` prints, once its socket is bound: the port the kernel chose for --port 0
# (as is, or as the message of a JSON record with ARCA_LOG_FORMAT=json).
SERVING_RE = re.compile(r'^(?:\{.*"message": ")?Arca serving on http://127\.0\.0\.1:(\d+)  \(', re.MULTILINE)


@contextlib.contextmanager
def refused_port():
    """A loopback port where nothing listens (connections are refused), held for the block: the
    socket is bound, so no other process can take the port meanwhile, and never listens."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        yield s.getsockname()[1]


def listening_ports(pid: int) -> set[int]:
    """The TCP ports a process listens on (Linux /proc): how the tests learn the port of a
    third-party server that was told to bind port 0 but does not print the port it got."""
    inodes = set()
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    except OSError:
        return set()
    ports = set()
    for table in ("tcp", "tcp6"):
        try:
            lines = Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            f = line.split()
            if f[3] == "0A" and f[9] in inodes:  # 0A: LISTEN
                ports.add(int(f[1].rsplit(":", 1)[1], 16))
    return ports


def wait_listening(proc: subprocess.Popen, what: str, log: Path | None = None, timeout: float = 60) -> int:
    """The one port `proc` (started with port 0) listens on, once it does; a failure with its log
    if it exits or does not listen within `timeout` seconds."""
    def text() -> str:
        return log.read_text(errors="replace") if log is not None and log.exists() else ""

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited {proc.returncode}:\n{text()}")
        ports = listening_ports(proc.pid)
        if len(ports) == 1:
            return ports.pop()
        if len(ports) > 1:
            raise RuntimeError(f"{what} listens on several ports {sorted(ports)}")
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen within {timeout}s:\n{text()}")


def fresh_database_url(data_dir: Path) -> str:
    """SQLite in the data dir, or a new database on ARCA_TEST_DATABASE_URL's PostgreSQL server."""
    base = os.environ.get("ARCA_TEST_DATABASE_URL")
    if not base:
        return f"sqlite:///{data_dir / 'arca.db'}"
    import psycopg
    from sqlalchemy.engine import make_url

    url = make_url(base)
    name = f"arca_{uuid.uuid4().hex[:12]}"
    conninfo = url.set(drivername="postgresql", database=url.database or "postgres").render_as_string(
        hide_password=False)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return url.set(database=name).render_as_string(hide_password=False)


_MOTO = None


def shared_s3_env(bucket_prefix: str = "arca") -> dict:
    """Settings for a server whose blobs live in a fresh bucket on this test process's moto S3 server
    (started on first use, stopped at exit)."""
    global _MOTO
    import atexit
    import tempfile

    from tests.support.moto_server import CREDS, MotoS3

    if _MOTO is None:
        log_dir = Path(tempfile.mkdtemp(prefix="arca-moto-"))
        _MOTO = MotoS3().start(log_dir)

        def stop():
            _MOTO.stop()
            shutil.rmtree(log_dir, ignore_errors=True)

        atexit.register(stop)
    bucket = _MOTO.new_bucket()
    return {"ARCA_BLOB_STORE": f"s3://{bucket}/{bucket_prefix}", "ARCA_S3_ENDPOINT_URL": _MOTO.url,
            "AWS_ACCESS_KEY_ID": CREDS["aws_access_key_id"],
            "AWS_SECRET_ACCESS_KEY": CREDS["aws_secret_access_key"], "AWS_DEFAULT_REGION": CREDS["region_name"]}


def clean_env(**extra: str) -> dict:
    """The environment for a client or server process: no user-level pip/npm/AWS config leaks in."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PIP_", "ARCA_", "AWS_", "npm_config_", "NPM_CONFIG_", "UV_"))}
    env.update({"PIP_CONFIG_FILE": "/dev/null", "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INPUT": "1",
                "AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
                "AWS_DEFAULT_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true",
                "PATH": f"{VENV_BIN}:{os.environ.get('PATH', '')}"})
    env.update(extra)
    return env


@dataclass
class ArcaServer:
    root: Path
    env: dict = field(default_factory=dict)
    port: int = 0
    proc: subprocess.Popen | None = None
    access_key: dict = field(default_factory=dict)
    exe: str = ARCA  # another checkout's `arca` for A/B benchmarks

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def hostport(self) -> str:
        return f"127.0.0.1:{self.port}"

    # -- lifecycle ------------------------------------------------------------------------------
    log_level: str = "warning"

    def start(self, workers: int = 1, port: int | None = None) -> "ArcaServer":
        """Start the server. The first start binds a port the kernel picks (`--port 0`) and reads it
        from the server's first line; a restart asks for the port it had (or `port`), so URLs that
        clients and other servers hold stay valid."""
        requested = port or self.port or 0
        log_path = self.root / "server.log"
        offset = log_path.stat().st_size if log_path.exists() else 0  # the log is appended to on restarts
        with open(log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [self.exe, "serve", "--host", "127.0.0.1", "--port", str(requested), "--workers", str(workers),
                 "--log-level", self.log_level],
                env=self.env, cwd=self.root, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 120
        self.port = self._announced_port(log_path, offset, deadline)
        if requested and self.port != requested:
            raise RuntimeError(f"arca serve was asked for port {requested} but announced {self.port}")
        while time.monotonic() < deadline:
            self._check_running()
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"arca serve did not become healthy:\n{self.log()}")

    def _check_running(self) -> None:
        if self.proc.poll() is not None:
            raise RuntimeError(f"arca serve exited {self.proc.returncode}:\n{self.log()}")

    def _announced_port(self, log_path: Path, offset: int, deadline: float) -> int:
        """The port in the `Arca serving on ...` line this process wrote after `offset`."""
        while time.monotonic() < deadline:
            with open(log_path, "rb") as fh:
                fh.seek(offset)
                m = SERVING_RE.search(fh.read().decode(errors="replace"))
            if m:
                return int(m.group(1))
            self._check_running()
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"arca serve did not announce its port:\n{self.log()}")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self.proc = None

    def answers_from_memory(self) -> float:
        """arca_data_plane_cached_answers_total over every worker: data-plane answers from memory."""
        from prometheus_client.parser import text_string_to_metric_families

        text = httpx.get(self.url + "/metrics").text
        return sum(s.value for fam in text_string_to_metric_families(text) for s in fam.samples
                   if s.name == "arca_data_plane_cached_answers_total")

    def log(self) -> str:
        p = self.root / "server.log"
        return p.read_text(errors="replace") if p.exists() else ""

    # -- helpers --------------------------------------------------------------------------------
    def admin(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run([ARCA, "admin", *args], env=self.env, cwd=self.root, capture_output=True,
                              text=True, check=check, timeout=120)

    @property
    def client_env(self) -> dict:
        return clean_env(AWS_ACCESS_KEY_ID=self.access_key["AccessKeyId"],
                         AWS_SECRET_ACCESS_KEY=self.access_key["SecretAccessKey"],
                         ARCA_ENDPOINT_URL=self.url)

    def cli(self, *args: str, check: bool = True, env: dict | None = None) -> subprocess.CompletedProcess:
        """Run `arca <op> ...` against this server with the admin's key."""
        proc = subprocess.run([ARCA, *args], env=env or self.client_env, capture_output=True, text=True,
                              timeout=120)
        if check and proc.returncode != 0:
            raise AssertionError(f"arca {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
        return proc

    def cli_json(self, *args: str) -> dict:
        return json.loads(self.cli(*args).stdout or "{}")

    def boto(self, key: dict | None = None):
        import boto3
        from botocore.config import Config

        key = key or self.access_key
        return boto3.client("codeartifact", endpoint_url=self.url, region_name="us-east-1",
                            aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"],
                            config=Config(retries={"max_attempts": 1}))

    def token(self, domain: str, key: dict | None = None, duration: int | None = None) -> str:
        kwargs = {"domain": domain}
        if duration is not None:
            kwargs["durationSeconds"] = duration
        return self.boto(key).get_authorization_token(**kwargs)["authorizationToken"]

    def new_user(self, name: str, admin: bool = False) -> dict:
        self.admin("create-user", name, *(["--admin"] if admin else []))
        return json.loads(self.admin("create-access-key", name).stdout)["AccessKey"]

    def create_repo(self, domain: str, repo: str, **kwargs) -> None:
        c = self.boto()
        try:
            c.create_domain(domain=domain)
        except c.exceptions.ConflictException:
            pass
        c.create_repository(domain=domain, repository=repo, **kwargs)

    def endpoint(self, domain: str, fmt: str, repo: str) -> str:
        return f"{self.url}/{domain}/{fmt}/{repo}/"


def start_server(root: Path, *, workers: int = 1, env: dict | None = None,
                 database_url: str | None = None, log_level: str = "warning") -> ArcaServer:
    """A running server with an admin user; `log_level="info"` records one access-log line per request."""
    root.mkdir(parents=True, exist_ok=True)
    data = root / "storage"
    env = dict(env or {})
    if os.environ.get("ARCA_TEST_BLOB_STORE") == "s3" and "ARCA_BLOB_STORE" not in env:
        env = {**shared_s3_env(), **env}
    server_env = clean_env(ARCA_DATA_DIR=str(data),
                           ARCA_DATABASE_URL=database_url or fresh_database_url(data), **env)
    srv = ArcaServer(root=root, env=server_env, log_level=log_level)
    srv.admin("create-user", "admin", "--admin")
    srv.access_key = json.loads(srv.admin("create-access-key", "admin").stdout)["AccessKey"]
    return srv.start(workers=workers)


def require_tool(name: str) -> str:
    """A binary a test needs: the virtualenv's own (pip-installed tools such as aws, twine, uv) before
    PATH. Missing is a failure, everywhere: scripts/test installs every tool the suite uses."""
    venv = VENV_BIN / name
    path = str(venv) if venv.exists() else shutil.which(name)
    if path:
        return path
    import pytest

    pytest.fail(f"{name} is not installed: scripts/test installs every tool the tests need", pytrace=False)
