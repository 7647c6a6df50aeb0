"""Fetching from external connections.

- Only URLs under the connection's configured base (plus, for PyPI, the site the index lives on,
  and any `ARCA_EXTERNAL_<NAME>_ALLOW` prefixes) are fetched: no SSRF through a link in remote
  metadata. Redirects are followed only to allowed URLs.
- `ARCA_UPSTREAM_TIMEOUT` (seconds, default 5) per request; a per-remote circuit breaker: after
  `ARCA_UPSTREAM_BREAKER_FAILURES` (3) consecutive failures (connection errors, timeouts, 5xx)
  the remote is skipped for `ARCA_UPSTREAM_BREAKER_SECONDS` (30).
- Single-flight: concurrent callers of one key (one remote URL, one file import) in a process
  share one remote fetch.
- Remote metadata is kept in the database (`Package.attributes["remote"]` of the package in the
  repository holding the connection, so every node sees it), reused for `ARCA_UPSTREAM_MAX_AGE`
  seconds (300), then revalidated with If-None-Match; when the remote is down the stale copy is
  served; UpstreamUnavailable (502) only when nothing is retained."""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any, Awaitable, Callable
from urllib.parse import urljoin, urlsplit

import httpx
from starlette.concurrency import run_in_threadpool

from app.db.models import Domain, Repository
from app.domain.errors import UpstreamUnavailable, ValidationError
from app.services import packages as pk

MAX_REDIRECTS = 3
PYPI_FILES = "https://files.pythonhosted.org/"


def _float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    try:
        return float(raw) if raw not in (None, "") else default
    except ValueError:
        return default


def timeout() -> float:
    return _float("ARCA_UPSTREAM_TIMEOUT", 5.0)


def max_age() -> float:
    return _float("ARCA_UPSTREAM_MAX_AGE", 300.0)


def breaker_failures() -> int:
    return int(_float("ARCA_UPSTREAM_BREAKER_FAILURES", 3))


def breaker_seconds() -> float:
    return _float("ARCA_UPSTREAM_BREAKER_SECONDS", 30.0)


# ---- which URLs may be fetched -----------------------------------------------------------------

def base_url(arca, connection: str) -> str:
    base = arca.settings.external.get(connection)
    if not base:
        raise UpstreamUnavailable(f"External connection {connection} has no URL configured")
    return base if base.endswith("/") else base + "/"


def allowed_prefixes(arca, connection: str) -> list[str]:
    base = base_url(arca, connection)
    out = [base]
    if base.endswith("/simple/"):  # PyPI-style: files live beside the index (pypiserver: /packages/)
        out.append(base[: -len("simple/")])
    if connection == "public:pypi" and base == "https://pypi.org/simple/":
        out.append(PYPI_FILES)
    key = "ARCA_EXTERNAL_" + connection.upper().replace(":", "_").replace("-", "_") + "_ALLOW"
    out += [p if p.endswith("/") else p + "/" for p in (os.environ.get(key) or "").split(",") if p.strip()]
    return out


def is_allowed(url: str, prefixes: list[str]) -> bool:
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    if parts.scheme not in ("http", "https") or parts.username or parts.password or "@" in parts.netloc:
        return False
    path = parts.path
    if "/../" in path + "/" or "/./" in path + "/" or "%2e" in path.lower() or "\\" in path:
        return False
    return any(url.startswith(p) for p in prefixes)


def check_allowed(arca, connection: str, url: str) -> None:
    if not is_allowed(url, allowed_prefixes(arca, connection)):
        raise UpstreamUnavailable(f"Refusing to fetch {url!r}: it is not under the configured URL of "
                                  f"external connection {connection}")


# ---- single-flight -----------------------------------------------------------------------------

async def single_flight(arca, key: Any, fn: Callable[[], Awaitable[Any]]) -> Any:
    """Run `fn` once for all concurrent callers of `key` in this process; all get its result."""
    flights: dict = arca.caches.setdefault("upstream_flights", {})
    fut = flights.get(key)
    if fut is not None:
        return await asyncio.shield(fut)
    fut = asyncio.get_running_loop().create_future()
    flights[key] = fut
    try:
        result = await fn()
    except asyncio.CancelledError:
        fut.cancel()
        raise
    except BaseException as exc:
        fut.set_exception(exc)
        fut.exception()  # retrieved: no "never retrieved" warning when nobody waited
        raise
    else:
        fut.set_result(result)
        return result
    finally:
        if flights.get(key) is fut:
            del flights[key]


# ---- HTTP with a breaker -----------------------------------------------------------------------

class Remotes:
    """Per process: one httpx client and the breaker state per external connection."""

    def __init__(self):
        self.client: httpx.AsyncClient | None = None
        self.state: dict[str, list] = {}  # connection -> [consecutive failures, open until]
        self.requests = 0

    def _client(self) -> httpx.AsyncClient:
        if self.client is None:
            self.client = httpx.AsyncClient(timeout=timeout(), follow_redirects=False, trust_env=False,
                                            headers={"User-Agent": "arca-upstream/1"})
        return self.client

    def check_breaker(self, connection: str) -> None:
        st = self.state.get(connection)
        if st and st[1] > time.monotonic():
            raise UpstreamUnavailable(f"External connection {connection} is unavailable (it failed {st[0]} "
                                      "times in a row; retrying later)")

    def failed(self, connection: str) -> None:
        st = self.state.setdefault(connection, [0, 0.0])
        st[0] += 1
        if st[0] >= breaker_failures():
            st[1] = time.monotonic() + breaker_seconds()

    def succeeded(self, connection: str) -> None:
        self.state.pop(connection, None)

    async def request(self, arca, connection: str, url: str, headers: dict | None = None,
                      stream: bool = False) -> httpx.Response:
        """GET an allowed URL (following allowed redirects). 5xx and transport errors count
        against the breaker and raise UpstreamUnavailable; other statuses are returned. With
        `stream`, the caller must close the response."""
        self.check_breaker(connection)
        for _hop in range(MAX_REDIRECTS + 1):
            check_allowed(arca, connection, url)
            try:
                req = self._client().build_request("GET", url, headers=headers or {})
                self.requests += 1
                resp = await self._client().send(req, stream=stream)
            except httpx.HTTPError as exc:
                self.failed(connection)
                raise UpstreamUnavailable(f"External connection {connection} failed: {type(exc).__name__} "
                                          f"fetching {url}") from None
            if resp.status_code >= 500:
                await resp.aclose()
                self.failed(connection)
                raise UpstreamUnavailable(f"External connection {connection} answered {resp.status_code} "
                                          f"for {url}")
            self.succeeded(connection)
            if resp.status_code in (301, 302, 303, 307, 308) and resp.headers.get("location"):
                await resp.aclose()
                url = urljoin(url, resp.headers["location"])
                continue
            return resp
        raise UpstreamUnavailable(f"Too many redirects from external connection {connection}")


def remotes(arca) -> Remotes:
    r = arca.caches.get("upstream_remotes")
    if r is None:
        r = arca.caches.setdefault("upstream_remotes", Remotes())
    return r


async def fetch_to_blob(arca, connection: str, url: str, expected: dict, limit: int | None = None):
    """Stream a remote file into the blob store, verified against `expected` hashes (a mismatch
    stores nothing and raises UpstreamUnavailable: the remote is not serving what it advertised)."""
    resp = await remotes(arca).request(arca, connection, url, stream=True)
    try:
        if resp.status_code != 200:
            raise UpstreamUnavailable(f"External connection {connection} answered {resp.status_code} for {url}")
        try:
            return await arca.blobs.put_stream(resp.aiter_bytes(), limit=limit, expected=expected)
        except ValidationError as exc:
            raise UpstreamUnavailable(f"Refused the file from external connection {connection}: {exc.message}"
                                      ) from None
        except httpx.HTTPError as exc:
            remotes(arca).failed(connection)
            raise UpstreamUnavailable(f"External connection {connection} failed: {type(exc).__name__} "
                                      f"reading {url}") from None
    finally:
        await resp.aclose()


# ---- remote metadata, retained in the database -------------------------------------------------

def _load_record(arca, repository_id: int, fmt: str, namespace: str, name: str) -> dict | None:
    with arca.db.read() as s:
        repo = s.get(Repository, repository_id)
        pkg = pk.find_package(s, repo, pk.Coordinates(fmt, namespace, name))
        if pkg is None:
            return None
        return (pkg.attributes or {}).get("remote")


def _save_record(arca, repository_id: int, fmt: str, namespace: str, name: str, display: str | None,
                 record: dict, changed: bool) -> None:
    with arca.db.session() as s:
        repo = s.get(Repository, repository_id)
        pkg = pk.get_or_create_package(s, repo, pk.Coordinates(fmt, namespace, name), display)
        if changed:
            pk.bump(s, pkg)
        pkg.attributes = {**(pkg.attributes or {}), "remote": record}


async def metadata(arca, *, repository_id: int, connection: str, fmt: str, namespace: str, name: str,
                   display: str | None, url: str, accept: str, parse: Callable[[httpx.Response], Any]) -> Any:
    """The parsed remote metadata of one package (None when the remote does not know it),
    revalidated after max-age, the retained copy when the remote fails."""
    record = await run_in_threadpool(_load_record, arca, repository_id, fmt, namespace, name)
    if record and record.get("url") == url and time.time() - record.get("fetched", 0) < max_age():
        return record.get("data")

    async def refresh():
        headers = {"Accept": accept}
        if record and record.get("etag") and record.get("url") == url:
            headers["If-None-Match"] = record["etag"]
        try:
            resp = await remotes(arca).request(arca, connection, url, headers)
            try:
                await resp.aread()
            finally:
                await resp.aclose()
        except UpstreamUnavailable:
            if record:
                return record.get("data")  # stale is better than none
            raise
        if resp.status_code == 304 and record:
            new = {**record, "fetched": time.time()}
            await run_in_threadpool(_save_record, arca, repository_id, fmt, namespace, name, display, new, False)
            return record.get("data")
        if resp.status_code == 200:
            data = parse(resp)
            new = {"url": url, "etag": resp.headers.get("etag"), "fetched": time.time(), "data": data}
            changed = not record or record.get("data") != data
            await run_in_threadpool(_save_record, arca, repository_id, fmt, namespace, name, display, new,
                                    changed)
            return data
        if resp.status_code in (404, 410):
            return None
        if record:
            return record.get("data")
        raise UpstreamUnavailable(f"External connection {connection} answered {resp.status_code} for {url}")

    return await single_flight(arca, ("meta", repository_id, fmt, namespace, name), refresh)


def domain_and_repo(s, domain_id: int, repository_id: int) -> tuple[Domain, Repository]:
    return s.get(Domain, domain_id), s.get(Repository, repository_id)
