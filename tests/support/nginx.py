"""nginx as a real process for tests and benchmarks: a static server, or a proxy in front of Arca.

nginx cannot listen on port 0, so it inherits a socket bound here to port 0 (the NGINX environment
variable of its binary upgrade names inherited sockets) and `listen`s on that socket's port. It is
stopped by PID."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx

from tests.support.server import clean_env

# Started as root, nginx's workers would run as nobody, who cannot read pytest's 0700 folders.
CONF = """daemon off; {user}worker_processes {workers}; pid {work}/nginx.pid; error_log {work}/error.log;
events {{ worker_connections 1024; }}
http {{
  access_log off; sendfile on; tcp_nopush on; tcp_nodelay on; keepalive_requests 1000000;
  client_body_temp_path {work}/tmp; proxy_temp_path {work}/tmp; fastcgi_temp_path {work}/tmp;
  uwsgi_temp_path {work}/tmp; scgi_temp_path {work}/tmp;
  include /etc/nginx/mime.types; default_type application/octet-stream;
{http}
}}
"""
LISTEN = "@LISTEN@"  # where the `listen` address goes in the http-level text given to Nginx


def server_block(directives: str) -> str:
    """One server on the inherited socket, with these directives (locations, root, proxy_pass)."""
    return f"  server {{\n    listen {LISTEN};\n{directives}\n  }}"


def nginx_binary() -> str:
    path = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
    if path is None:
        raise RuntimeError("nginx is not installed (apt-get install nginx-light; scripts/test installs it)")
    return path


class Nginx:
    def __init__(self, work: Path, http: str, workers: int = 1):
        """`http`: what goes into the http block (`server_block(...)`, or a whole configuration
        such as docker/nginx.conf), with @LISTEN@ where the address goes."""
        shutil.rmtree(work, ignore_errors=True)
        (work / "tmp").mkdir(parents=True)
        self.work = work
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.bind(("127.0.0.1", 0))
        sock.listen(1024)
        sock.set_inheritable(True)
        self.port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        conf = work / "nginx.conf"
        conf.write_text(CONF.format(user="user root; " if os.geteuid() == 0 else "", workers=workers, work=work,
                                    http=http.replace(LISTEN, f"127.0.0.1:{self.port}")))
        with open(work / "nginx.log", "wb") as log:
            self.proc = subprocess.Popen([nginx_binary(), "-c", str(conf), "-p", str(work)],
                                         env={**clean_env(), "NGINX": f"{sock.fileno()};"}, pass_fds=[sock.fileno()],
                                         start_new_session=True, stdout=log, stderr=subprocess.STDOUT)
        sock.close()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"nginx exited {self.proc.returncode}: {self.errors()}")
            try:
                httpx.get(self.url + "/", timeout=1)
                return
            except httpx.HTTPError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("nginx did not answer: " + self.errors())

    def errors(self) -> str:
        text = ""
        for name in ("error.log", "nginx.log"):
            p = self.work / name
            if p.exists():
                text += p.read_text(errors="replace")
        return text

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
