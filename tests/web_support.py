"""Helpers for the web console tests: passwords, a signed-in httpx client, direct seeding through
the services, and a headless Chromium (Debian's package, driven by Playwright)."""

from __future__ import annotations

import hashlib
import html
import os
import re
import subprocess
from pathlib import Path
from unittest import mock

import httpx
import pytest

from tests.support.server import ARCA, ArcaServer, require_tool

PASSWORD = "correct horse battery staple"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"]
_CSRF_RE = re.compile(r'name="csrf" value="([0-9a-f]+)"')


def set_password(server: ArcaServer, name: str, password: str = PASSWORD) -> None:
    proc = subprocess.run([ARCA, "admin", "set-password", name, "--password-stdin"], input=password + "\n",
                          env=server.env, cwd=server.root, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


def console_user(server: ArcaServer, name: str, *, admin: bool = False) -> dict:
    """A user with an access key and a console password."""
    key = server.new_user(name, admin=admin)
    set_password(server, name)
    return key


def csrf_of(page: str) -> str:
    m = _CSRF_RE.search(page)
    assert m, "no CSRF field in the page"
    return m.group(1)


class Console:
    """A browser-like httpx client: cookie jar, no automatic redirects."""

    def __init__(self, server: ArcaServer):
        self.server = server
        self.http = httpx.Client(base_url=server.url, follow_redirects=False, timeout=30)

    def close(self) -> None:
        self.http.close()

    def get(self, path: str, **kw) -> httpx.Response:
        return self.http.get(path, **kw)

    def post(self, path: str, data: dict, *, csrf: str | None = None, **kw) -> httpx.Response:
        return self.http.post(path, data=data if csrf is None else {**data, "csrf": csrf}, **kw)

    def csrf(self, path: str = "/ui/") -> str:
        r = self.get(path)
        assert r.status_code == 200, r.text
        return csrf_of(r.text)

    def login(self, name: str, password: str = PASSWORD) -> httpx.Response:
        token = csrf_of(self.get("/ui/login").text)
        r = self.post("/ui/login", {"username": name, "password": password, "next": "/ui/"}, csrf=token)
        return r


def signed_in(server: ArcaServer, name: str) -> Console:
    c = Console(server)
    r = c.login(name)
    assert r.status_code == 303 and r.headers["location"] == "/ui/", r.text
    return c


# ---- seeding straight through the services (the server's own database) ------------------------------

def services(server: ArcaServer):
    """An Arca services context on the server's database and blob store."""
    cached = getattr(server, "_web_arca", None)
    if cached is None:
        from app.config import settings_from_env
        from app.services.context import Arca

        # An S3 blob store resolves its credentials when it is built: from the server's env, not ours.
        aws = {k: v for k, v in server.env.items() if k.startswith("AWS_")}
        with mock.patch.dict(os.environ, aws):
            cached = Arca.from_settings(settings_from_env(server.env), migrate=False)
        server._web_arca = cached
    return cached


def seed_version(server: ArcaServer, domain: str, repo: str, fmt: str, namespace: str, name: str, version: str,
                 *, status: str = "Published", summary: str | None = None, attributes: dict | None = None,
                 files: dict[str, bytes] | None = None) -> None:
    """One package version with its assets, written with the row helpers of app.services.rows."""
    from app.db.models import Domain
    from app.domain.coords import Coordinates
    from app.services import domains as dm, rows as pk

    arca = services(server)
    infos = {n: arca.blobs.put_bytes(data) for n, data in (files or {}).items()}
    with arca.db.session() as s:
        d = dm.get_domain(s, domain)
        r = dm.get_repository(s, d, repo)
        p = pk.get_or_create_package(s, r, Coordinates(fmt, namespace, name))
        v, _ = pk.get_or_create_version(s, p, version, status=status, summary=summary, attributes=attributes)
        for n, info in infos.items():
            pk.put_asset(s, s.get(Domain, d.id), v, n, info)
        pk.bump(s, p)


def put_maven(server: ArcaServer, domain: str, repo: str, path: str, data: bytes) -> httpx.Response:
    token = server.token(domain)
    return httpx.put(f"{server.endpoint(domain, 'maven', repo)}{path}", content=data, auth=("aws", token),
                     timeout=30)


def get_maven(server: ArcaServer, domain: str, repo: str, path: str) -> httpx.Response:
    return httpx.get(f"{server.endpoint(domain, 'maven', repo)}{path}", auth=("aws", server.token(domain)),
                     timeout=30)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def text_of(page: str) -> str:
    """The page's text with tags removed and entities decoded (for loose assertions)."""
    return html.unescape(re.sub(r"<[^>]+>", " ", page))


# ---- the browser --------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def browser():
    path = require_tool("chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:  # pragma: no cover - the test extra installs it
        pytest.fail("playwright (Python) is not installed: pip install playwright")
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture(scope="session")
def shot(tmp_path_factory):
    """`shot(page, name)`: a full-page screenshot for people to look at, in
    $ARCA_TEST_ARTIFACTS/screenshots/ when that is set, else in the run's temporary directory
    (never in the checkout)."""
    chosen = os.environ.get("ARCA_TEST_ARTIFACTS")
    where = Path(chosen) / "screenshots" if chosen else tmp_path_factory.mktemp("screenshots")

    def take(page, name: str) -> Path:
        where.mkdir(parents=True, exist_ok=True)
        out = where / f"{name}.png"
        page.screenshot(path=str(out), full_page=True)
        return out

    return take


def browser_login(page, server: ArcaServer, name: str, password: str = PASSWORD) -> None:
    page.goto(server.url + "/ui/")
    assert "/ui/login" in page.url
    page.fill("input[name=username]", name)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url(server.url + "/ui/")
