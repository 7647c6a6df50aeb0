"""A throwaway S3 endpoint for tests: moto's standalone server on a loopback port it binds itself.

Started as a subprocess (its own session), stopped by PID. `MotoS3.client()` is a boto3 S3
client with dummy credentials; `MotoS3.env()` is what an `arca serve` process needs to use it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.support.server import wait_listening

VENV_BIN = Path(sys.executable).parent
CREDS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing", "region_name": "us-east-1"}


@dataclass
class MotoS3:
    port: int = 0
    proc: subprocess.Popen | None = None
    log_path: Path | None = None
    buckets: list = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, log_dir: Path) -> "MotoS3":
        self.log_path = Path(log_dir) / "moto.log"
        exe = VENV_BIN / "moto_server"
        cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "moto.server"]
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen([*cmd, "-H", "127.0.0.1", "-p", "0"], stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True, env={**os.environ, "MOTO_CALL_RESET_API": "false"})
        try:
            self.port = wait_listening(self.proc, "moto_server", self.log_path, timeout=30)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and self.proc.poll() is None:
                try:
                    httpx.get(self.url + "/moto-api/", timeout=1)
                    return self
                except httpx.HTTPError:
                    time.sleep(0.05)
        except BaseException:
            self.stop()
            raise
        self.stop()
        raise RuntimeError(f"moto_server did not start:\n{self.log()}")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self.proc = None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path and self.log_path.exists() else ""

    def client(self):
        import boto3

        return boto3.client("s3", endpoint_url=self.url, **CREDS)

    def new_bucket(self, name: str | None = None) -> str:
        name = name or f"arca-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        self.buckets.append(name)
        return name

    def env(self) -> dict:
        """Settings for an `arca` process (server or CLI) using this endpoint."""
        return {"ARCA_S3_ENDPOINT_URL": self.url, "AWS_ACCESS_KEY_ID": CREDS["aws_access_key_id"],
                "AWS_SECRET_ACCESS_KEY": CREDS["aws_secret_access_key"],
                "AWS_DEFAULT_REGION": CREDS["region_name"]}


def start_moto(log_dir: Path) -> MotoS3:
    return MotoS3().start(log_dir)
