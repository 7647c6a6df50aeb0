"""Small Python distributions written byte by byte (zipfile/tarfile), so tests need no build tool.

`make_wheel` writes a PEP 427 wheel with METADATA/WHEEL/RECORD and one module; `make_sdist` writes
a PEP 625 sdist with PKG-INFO, pyproject.toml and an in-tree build backend (`requires = []`), so pip
can build it offline from a private index that has no setuptools."""

from __future__ import annotations

import base64
import hashlib
import io
import re
import subprocess
import sys
import tarfile
import time
import zipfile
from pathlib import Path

import httpx

from tests.support.server import VENV_BIN, clean_env

PY = sys.executable
TWINE = str(VENV_BIN / "twine")
UV = str(VENV_BIN / "uv")


def escape(name: str) -> str:
    """The wheel/sdist file-name form of a project name (PEP 427/625)."""
    return re.sub(r"[-_.]+", "_", name).lower()


def module_name(name: str) -> str:
    return escape(name)


def metadata_text(name: str, version: str, *, requires: list[str] = (), requires_python: str | None = None,
                  summary: str | None = None, description: str | None = None, home_page: str | None = None,
                  license: str | None = None) -> str:
    lines = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
    if summary:
        lines.append(f"Summary: {summary}")
    if home_page:
        lines.append(f"Home-page: {home_page}")
    if license:
        lines.append(f"License: {license}")
    if requires_python:
        lines.append(f"Requires-Python: {requires_python}")
    lines += [f"Requires-Dist: {r}" for r in requires]
    if description:
        lines.append("Description-Content-Type: text/markdown")
    text = "\n".join(lines) + "\n"
    if description:
        text += "\n" + description + "\n"
    return text


def _record_line(path: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{path},sha256={digest},{len(data)}"


def wheel_bytes(name: str, version: str, *, metadata: str | None = None, module_source: str | None = None,
                dist_info_name: str | None = None, tag: str = "py3-none-any", **meta) -> bytes:
    mod = module_name(name)
    dist_info = f"{dist_info_name or escape(name)}-{version}.dist-info"
    files = {
        f"{mod}/__init__.py": (module_source or f"NAME = {name!r}\nVERSION = {version!r}\n").encode(),
        f"{dist_info}/METADATA": (metadata or metadata_text(name, version, **meta)).encode(),
        f"{dist_info}/WHEEL": (f"Wheel-Version: 1.0\nGenerator: arca-tests\nRoot-Is-Purelib: true\n"
                               f"Tag: {tag}\n").encode(),
    }
    record = [_record_line(p, d) for p, d in files.items()] + [f"{dist_info}/RECORD,,"]
    files[f"{dist_info}/RECORD"] = ("\n".join(record) + "\n").encode()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for path, data in files.items():
            info = zipfile.ZipInfo(path, date_time=(2024, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, data)
    return buf.getvalue()


def wheel_filename(name: str, version: str, tag: str = "py3-none-any") -> str:
    return f"{escape(name)}-{version}-{tag}.whl"


def make_wheel(directory: Path, name: str, version: str, **kw) -> Path:
    """A wheel (`tag=` a platform tag such as "py3-none-win_amd64" for a platform wheel)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / wheel_filename(name, version, kw.get("tag", "py3-none-any"))
    path.write_bytes(wheel_bytes(name, version, **kw))
    return path


# An in-tree PEP 517 backend: builds the wheel from the sdist's PKG-INFO and module, stdlib only.
BACKEND = '''
import base64, hashlib, os, zipfile

def _meta():
    with open("PKG-INFO", encoding="utf-8") as fh:
        text = fh.read()
    head = dict(line.split(": ", 1) for line in text.split("\\n\\n", 1)[0].splitlines() if ": " in line)
    return text, head["Name"], head["Version"]

def _escape(name):
    import re
    return re.sub(r"[-_.]+", "_", name).lower()

def get_requires_for_build_wheel(config_settings=None):
    return []

def get_requires_for_build_sdist(config_settings=None):
    return []

def prepare_metadata_for_build_wheel(metadata_directory, config_settings=None):
    text, name, version = _meta()
    di = f"{_escape(name)}-{version}.dist-info"
    os.makedirs(os.path.join(metadata_directory, di), exist_ok=True)
    with open(os.path.join(metadata_directory, di, "METADATA"), "w", encoding="utf-8") as fh:
        fh.write(text)
    return di

def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    text, name, version = _meta()
    mod = _escape(name)
    di = f"{mod}-{version}.dist-info"
    files = {f"{mod}/__init__.py": open(os.path.join(mod, "__init__.py"), "rb").read(),
             f"{di}/METADATA": text.encode(),
             f"{di}/WHEEL": b"Wheel-Version: 1.0\\nGenerator: arca-backend\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n"}
    record = []
    for p, d in files.items():
        h = base64.urlsafe_b64encode(hashlib.sha256(d).digest()).rstrip(b"=").decode()
        record.append(f"{p},sha256={h},{len(d)}")
    record.append(f"{di}/RECORD,,")
    files[f"{di}/RECORD"] = ("\\n".join(record) + "\\n").encode()
    fn = f"{mod}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(os.path.join(wheel_directory, fn), "w") as zf:
        for p, d in files.items():
            zf.writestr(p, d)
    return fn
'''


def sdist_bytes(name: str, version: str, *, metadata: str | None = None, top: str | None = None, **meta) -> bytes:
    top = top or f"{escape(name)}-{version}"
    mod = module_name(name)
    files = {
        f"{top}/PKG-INFO": (metadata or metadata_text(name, version, **meta)).encode(),
        f"{top}/pyproject.toml": (b'[build-system]\nrequires = []\nbuild-backend = "arca_backend"\n'
                                  b'backend-path = ["."]\n'),
        f"{top}/arca_backend.py": BACKEND.encode(),
        f"{top}/{mod}/__init__.py": f"NAME = {name!r}\nVERSION = {version!r}\n".encode(),
    }
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz", format=tarfile.PAX_FORMAT) as tf:
        for path, data in files.items():
            info = tarfile.TarInfo(path)
            info.size = len(data)
            info.mtime = 1704067200
            info.mode = 0o644
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def sdist_filename(name: str, version: str) -> str:
    return f"{escape(name)}-{version}.tar.gz"


def make_sdist(directory: Path, name: str, version: str, **kw) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / sdist_filename(name, version)
    path.write_bytes(sdist_bytes(name, version, **kw))
    return path


# ---- clients -----------------------------------------------------------------------------------

def run(cmd: list[str], *, env: dict | None = None, check: bool = True, timeout: int = 300,
        cwd: Path | None = None) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(c) for c in cmd], env=env or clean_env(), capture_output=True, text=True,
                          timeout=timeout, cwd=cwd)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, cmd))} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def twine_upload(repo_url: str, token: str, files: list[Path], *, check: bool = True,
                 extra: list[str] = ()) -> subprocess.CompletedProcess:
    env = clean_env(TWINE_NON_INTERACTIVE="1")
    return run([TWINE, "upload", "--disable-progress-bar", "--repository-url", repo_url, "-u", "aws", "-p", token,
                *extra, *files], env=env, check=check)


def index_url(server, domain: str, repo: str, token: str) -> str:
    return f"http://aws:{token}@{server.hostport}/{domain}/pypi/{repo}/simple/"


def pip_cmd(python: str | Path, *args: str) -> list[str]:
    return [str(python), "-m", "pip", *args, "--no-cache-dir", "--disable-pip-version-check", "--no-input"]


def multipart_body(fields: dict, filename: str | None, content: bytes | None,
                   boundary: str = "arcatestboundary7e3f") -> tuple[bytes, str]:
    """A multipart/form-data body as twine writes it (text parts without Content-Type)."""
    out = bytearray()
    for key, value in fields.items():
        for v in value if isinstance(value, list) else [value]:
            out += (f'--{boundary}\r\nContent-Disposition: form-data; name="{key}"\r\n\r\n').encode()
            out += str(v).encode() + b"\r\n"
    if filename is not None:
        out += (f'--{boundary}\r\nContent-Disposition: form-data; name="content"; filename="{filename}"\r\n'
                "Content-Type: application/octet-stream\r\n\r\n").encode()
        out += (content or b"") + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return bytes(out), f"multipart/form-data; boundary={boundary}"


def raw_upload(url: str, token: str | None, fields: dict, filename: str | None, content: bytes | None,
               chunk: int | None = None) -> httpx.Response:
    """A legacy-API upload through httpx, for the inputs twine would refuse to send. With `chunk`
    the body goes out chunked (no Content-Length)."""
    body, ctype = multipart_body(fields, filename, content)
    payload = body if chunk is None else (body[i:i + chunk] for i in range(0, len(body), chunk))
    return httpx.post(url, content=payload, headers={"Content-Type": ctype},
                      auth=("aws", token) if token else None, timeout=60)


def form_for(name: str, version: str, content: bytes, filetype: str = "bdist_wheel", **extra) -> dict:
    fields = {":action": "file_upload", "protocol_version": "1", "name": name, "version": version,
              "filetype": filetype, "pyversion": "py3" if filetype == "bdist_wheel" else "source",
              "metadata_version": "2.1", "sha256_digest": hashlib.sha256(content).hexdigest(),
              "blake2_256_digest": hashlib.blake2b(content, digest_size=32).hexdigest()}
    fields.update(extra)
    return {k: v for k, v in fields.items() if v is not None}


def wait_for(predicate, timeout: float = 10.0):
    """Poll a condition that another process makes true (never a fixed sleep)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.05)


# ---- a recording reverse proxy: the server-side evidence of what a client fetched ---------------

class RecordingProxy:
    """Forwards every request to `target` and records (method, path, status). `rewrite(path, body)`
    may change response bodies (the request then asks the server for an uncompressed body)."""

    HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-authorization",
           "proxy-authenticate", "content-length"}

    def __init__(self, target: str, rewrite=None):
        import http.client
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
        from urllib.parse import urlsplit

        self.requests: list[tuple[str, str, int]] = []
        self.rewrite = rewrite
        host, port = urlsplit(target).hostname, urlsplit(target).port
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _forward(self):
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else None
                headers = {k: v for k, v in self.headers.items() if k.lower() not in self.HOP_REQ}
                if proxy.rewrite is not None:
                    headers["Accept-Encoding"] = "identity"
                conn = http.client.HTTPConnection(host, port, timeout=120)
                conn.request(self.command, self.path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                if proxy.rewrite is not None:
                    data = proxy.rewrite(self.path, data)
                proxy.requests.append((self.command, self.path, resp.status))
                self.send_response(resp.status, resp.reason)
                for k, v in resp.getheaders():
                    if k.lower() not in RecordingProxy.HOP:
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)
                conn.close()

            HOP_REQ = {"connection", "keep-alive", "proxy-connection", "host", "content-length"}
            do_GET = do_POST = do_HEAD = do_PUT = _forward

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def hostport(self) -> str:
        return f"127.0.0.1:{self.port}"

    def paths(self, method: str = "GET") -> list[str]:
        return [p for m, p, _s in self.requests if m == method]

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
