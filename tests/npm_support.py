"""Helpers for npm tests: a registry set-up (.npmrc in the test's own dir, own cache), package
directories, tarballs and raw publish bodies for the rules npm would refuse on its own."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.support.server import clean_env, require_tool


@dataclass
class Registry:
    server: object
    domain: str
    repo: str
    token: str
    root: Path

    @property
    def url(self) -> str:
        return self.server.endpoint(self.domain, "npm", self.repo)

    @property
    def npmrc(self) -> Path:
        return self.root / ".npmrc"

    def env(self, **extra) -> dict:
        return clean_env(npm_config_userconfig=str(self.npmrc), npm_config_cache=str(self.root / "npm-cache"),
                         npm_config_update_notifier="false", npm_config_fund="false",
                         npm_config_audit="false", **extra)

    def npm(self, *args: str, cwd: Path | None = None, check: bool = True, cache: Path | None = None,
            timeout: int = 180) -> subprocess.CompletedProcess:
        npm = require_tool("npm")
        env = self.env()
        if cache is not None:
            env["npm_config_cache"] = str(cache)
        proc = subprocess.run([npm, *args], cwd=cwd or self.root, env=env, capture_output=True, text=True,
                              timeout=timeout)
        if check and proc.returncode != 0:
            raise AssertionError(f"npm {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
                                 f"\n--- server log ---\n{self.server.log()[-3000:]}")
        return proc

    def npm_json(self, *args: str, **kw):
        out = self.npm(*args, "--json", **kw).stdout
        return json.loads(out) if out.strip() else None

    def http(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token or self.token}"}
        return httpx.Client(base_url=self.url, headers=headers, timeout=60)

    def packument(self, name: str, accept: str = "application/json") -> httpx.Response:
        with self.http() as c:
            return c.get(escape(name), headers={"Accept": accept})

    def publish(self, name: str, version: str, deps: dict | None = None, tag: str | None = None,
                extra: dict | None = None) -> subprocess.CompletedProcess:
        d = write_package(self.root / "src" / f"{name.replace('/', '_')}-{version}", name, version, deps, extra)
        return self.npm("publish", *(["--tag", tag] if tag else []), cwd=d)


def escape(name: str) -> str:
    return name.replace("/", "%2f")


def setup_registry(server, tmp_path: Path, unique: str, repo: str = "js") -> Registry:
    domain = f"n{unique}"
    server.create_repo(domain, repo)
    token = server.token(domain)
    reg = Registry(server, domain, repo, token, tmp_path)
    write_npmrc(reg.npmrc, reg.url, token)
    return reg


def write_npmrc(path: Path, url: str, token: str, scopes: dict | None = None) -> None:
    hostpath = url.split("://", 1)[1]
    lines = [f"registry={url}", f"//{hostpath}:_authToken={token}",
             "fund=false", "audit=false", "update-notifier=false", "loglevel=warn"]
    for scope, scope_url in (scopes or {}).items():
        lines.append(f"@{scope}:registry={scope_url}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")


def write_package(d: Path, name: str, version: str, deps: dict | None = None, extra: dict | None = None) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    pj = {"name": name, "version": version, "description": f"{name} test package", "main": "index.js",
          "license": "MIT", "homepage": f"https://example.invalid/{name}",
          "repository": {"type": "git", "url": "https://example.invalid/repo.git"}}
    if deps:
        pj["dependencies"] = deps
    pj.update(extra or {})
    (d / "package.json").write_text(json.dumps(pj, indent=2))
    (d / "index.js").write_text(f"module.exports = {json.dumps(name + '@' + version)};\n")
    (d / "README.md").write_text(f"# {name}\n\nVersion {version}.\n")
    return d


def write_consumer(d: Path, deps: dict) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    (d / "package.json").write_text(json.dumps({"name": "consumer", "version": "1.0.0", "private": True,
                                                "dependencies": deps}))
    return d


def installed_version(project: Path, name: str) -> str:
    return json.loads((project / "node_modules" / name / "package.json").read_text())["version"]


# ---- raw publish bodies --------------------------------------------------------------------------

def make_tarball(name: str, version: str, files: dict | None = None, pj_override: dict | None = None,
                 prefix: str = "package") -> bytes:
    pj = {"name": name, "version": version, "description": "raw", **(pj_override or {})}
    entries = {"package.json": json.dumps(pj).encode(), "index.js": b"module.exports = 1;\n", **(files or {})}
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for fname, data in entries.items():
            info = tarfile.TarInfo(f"{prefix}/{fname}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def publish_body(name: str, version: str, tgz: bytes | None = None, *, tag: str = "latest",
                 integrity: str | None = None, shasum: str | None = None, manifest: dict | None = None,
                 attachments: dict | None = None, body_name: str | None = None) -> dict:
    tgz = make_tarball(name, version) if tgz is None else tgz
    bare = name.rsplit("/", 1)[-1]
    m = {"name": name, "version": version, "description": "raw publish", "_id": f"{name}@{version}",
         "dist": {"integrity": integrity or "sha512-" + base64.b64encode(hashlib.sha512(tgz).digest()).decode(),
                  "shasum": shasum or hashlib.sha1(tgz).hexdigest(),
                  "tarball": f"http://x.invalid/{name}/-/{bare}-{version}.tgz"}}
    m.update(manifest or {})
    if attachments is None:
        attachments = {f"{name}-{version}.tgz": {"content_type": "application/octet-stream",
                                                 "data": base64.b64encode(tgz).decode(), "length": len(tgz)}}
    return {"_id": body_name or name, "name": body_name or name, "description": "raw publish",
            "dist-tags": {tag: version}, "versions": {version: m}, "access": None, "_attachments": attachments}
