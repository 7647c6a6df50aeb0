"""The HTTP client for remotes (external connections): which URLs may be fetched, a circuit breaker
per remote, single-flight, and verified streaming into the blob store.

Infrastructure like `app.storage`: it knows settings and the blob store, not the database.

- Only URLs under the connection's configured base (plus, for PyPI, the site the index lives on,
  and any `ARCA_EXTERNAL_<NAME>_ALLOW` prefixes) are fetched: no SSRF through a link in remote
  metadata. Redirects are followed only to allowed URLs.
- `ARCA_UPSTREAM_TIMEOUT` (seconds, default 5) per request; after `ARCA_UPSTREAM_BREAKER_FAILURES`
  (3) consecutive failures (connection errors, timeouts, 5xx) a remote is skipped for
  `ARCA_UPSTREAM_BREAKER_SECONDS` (30).
- Single-flight: concurrent callers of one key (one remote URL, one file import) in a process
  share one remote fetch."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any, Awaitable, Callable
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import anyio
import httpx

from app.config import Settings
from app.domain.errors import UpstreamUnavailable, ValidationError
from app.storage.base import BlobInfo, BlobStore, Hasher, check_expected

MAX_REDIRECTS = 3
MAX_DOCUMENT = 64 * 1024 * 1024
PYPI_FILES = "https://files.pythonhosted.org/"


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


@dataclass(frozen=True)
class Answer:
    """A remote's whole answer to a metadata request."""

    status_code: int
    headers: httpx.Headers
    content: bytes
    url: str

    @property
    def text(self) -> str:
        return self.content.decode(_charset(self.headers.get("content-type", "")), errors="replace")


def _charset(content_type: str) -> str:
    for param in content_type.split(";")[1:]:
        key, _, value = param.strip().partition("=")
        if key.lower() == "charset" and value.strip().strip('"'):
            try:
                "".encode(value.strip().strip('"'))
                return value.strip().strip('"')
            except LookupError:
                break
    return "utf-8"


class Remotes:
    """Per process: one httpx client, the breaker state per external connection, and the flights
    in progress."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.client: httpx.AsyncClient | None = None
        self.state: dict[str, list] = {}  # connection -> [consecutive failures, open until]
        self.flights: dict[Any, asyncio.Future] = {}
        self.requests = 0

    # ---- which URLs may be fetched -------------------------------------------------------------

    def base_url(self, connection: str) -> str:
        base = self.settings.external.get(connection)
        if not base:
            raise UpstreamUnavailable(f"External connection {connection} has no URL configured")
        return base if base.endswith("/") else base + "/"

    def allowed_prefixes(self, connection: str) -> list[str]:
        base = self.base_url(connection)
        out = [base]
        if base.endswith("/simple/"):  # PyPI-style: files live beside the index (pypiserver: /packages/)
            out.append(base[: -len("simple/")])
        if connection == "public:pypi" and base == "https://pypi.org/simple/":
            out.append(PYPI_FILES)
        return out + list(self.settings.external_allow.get(connection, ()))

    def check_allowed(self, connection: str, url: str) -> None:
        if not is_allowed(url, self.allowed_prefixes(connection)):
            raise UpstreamUnavailable(f"Refusing to fetch {url!r}: it is not under the configured URL of "
                                      f"external connection {connection}")

    # ---- single-flight ---------------------------------------------------------------------------

    async def single_flight(self, key: Any, fn: Callable[[], Awaitable[Any]]) -> Any:
        """Run `fn` once for all concurrent callers of `key` in this process; all get its result."""
        fut = self.flights.get(key)
        if fut is not None:
            return await asyncio.shield(fut)
        fut = asyncio.get_running_loop().create_future()
        self.flights[key] = fut
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
            if self.flights.get(key) is fut:
                del self.flights[key]

    # ---- HTTP with a breaker ---------------------------------------------------------------------

    def _client(self) -> httpx.AsyncClient:
        if self.client is None:
            self.client = httpx.AsyncClient(timeout=self.settings.upstream_timeout, follow_redirects=False,
                                            trust_env=False, headers={"User-Agent": "arca-upstream/1"})
        return self.client

    def check_breaker(self, connection: str) -> None:
        st = self.state.get(connection)
        if st and st[1] > time.monotonic():
            raise UpstreamUnavailable(f"External connection {connection} is unavailable (it failed {st[0]} "
                                      "times in a row; retrying later)")

    def failed(self, connection: str) -> None:
        st = self.state.setdefault(connection, [0, 0.0])
        st[0] += 1
        if st[0] >= self.settings.upstream_breaker_failures:
            st[1] = time.monotonic() + self.settings.upstream_breaker_seconds

    def succeeded(self, connection: str) -> None:
        self.state.pop(connection, None)

    async def request(self, connection: str, url: str, headers: dict | None = None,
                      stream: bool = False) -> httpx.Response:
        """GET an allowed URL (following allowed redirects). 5xx and transport errors count
        against the breaker and raise UpstreamUnavailable; other statuses are returned. With
        `stream`, the caller must close the response."""
        self.check_breaker(connection)
        for _hop in range(MAX_REDIRECTS + 1):
            self.check_allowed(connection, url)
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

    async def read(self, connection: str, url: str, headers: dict | None = None) -> Answer:
        """`request` with the whole body read (a metadata document: at most MAX_DOCUMENT bytes)."""
        resp = await self.request(connection, url, headers, stream=True)
        try:
            body = bytearray()
            async for chunk in resp.aiter_bytes():
                body += chunk
                if len(body) > MAX_DOCUMENT:
                    raise UpstreamUnavailable(f"External connection {connection} answered {url} with more than "
                                              f"{MAX_DOCUMENT} bytes; a metadata document is never that large")
        except httpx.HTTPError as exc:
            self.failed(connection)
            raise UpstreamUnavailable(f"External connection {connection} failed: {type(exc).__name__} "
                                      f"reading {url}") from None
        finally:
            await resp.aclose()
        return Answer(resp.status_code, resp.headers, bytes(body), str(resp.url))

    async def post(self, connection: str, url: str, body: bytes, headers: dict | None = None) -> Answer:
        """POST a small document to an allowed URL (npm audit), no redirects followed; the answer is
        read whole (at most MAX_DOCUMENT bytes). Failures count against the breaker as for GETs."""
        self.check_breaker(connection)
        self.check_allowed(connection, url)
        try:
            self.requests += 1
            async with self._client().stream("POST", url, content=body, headers=headers or {}) as resp:
                data = bytearray()
                async for chunk in resp.aiter_bytes():
                    data += chunk
                    if len(data) > MAX_DOCUMENT:
                        raise UpstreamUnavailable(f"External connection {connection} answered {url} with more "
                                                  f"than {MAX_DOCUMENT} bytes")
        except httpx.HTTPError as exc:
            self.failed(connection)
            raise UpstreamUnavailable(f"External connection {connection} failed: {type(exc).__name__} "
                                      f"posting to {url}") from None
        if resp.status_code >= 500:
            self.failed(connection)
            raise UpstreamUnavailable(f"External connection {connection} answered {resp.status_code} for {url}")
        self.succeeded(connection)
        return Answer(resp.status_code, resp.headers, bytes(data), str(resp.url))

    async def fetch_to_file(self, connection: str, url: str, path: Path, expected: dict,
                            limit: int | None = None) -> BlobInfo:
        """Stream a remote file to a local staging `path`, verified against `expected` hashes (a
        mismatch removes it and raises UpstreamUnavailable). The caller commits or removes it."""
        resp = await self.request(connection, url, stream=True)
        hasher = Hasher(limit)
        try:
            if resp.status_code != 200:
                raise UpstreamUnavailable(f"External connection {connection} answered {resp.status_code} for {url}")
            with open(path, "wb") as fh:
                async for chunk in resp.aiter_bytes():
                    hasher.update(chunk)
                    await anyio.to_thread.run_sync(fh.write, chunk)
            info = hasher.info()
            check_expected(info, expected)
            return info
        except ValidationError as exc:
            path.unlink(missing_ok=True)
            raise UpstreamUnavailable(f"Refused the file from external connection {connection}: {exc.message}"
                                      ) from None
        except httpx.HTTPError as exc:
            path.unlink(missing_ok=True)
            self.failed(connection)
            raise UpstreamUnavailable(f"External connection {connection} failed: {type(exc).__name__} "
                                      f"reading {url}") from None
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        finally:
            await resp.aclose()

    async def fetch_to_blob(self, blobs: BlobStore, connection: str, url: str, expected: dict,
                            limit: int | None = None) -> BlobInfo:
        """Stream a remote file into the blob store (staged, verified, then committed)."""
        staged = blobs.new_temp()
        try:
            await self.fetch_to_file(connection, url, staged, expected, limit)
            return await anyio.to_thread.run_sync(blobs.commit_file, staged, expected)
        finally:
            staged.unlink(missing_ok=True)
