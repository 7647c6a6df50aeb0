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
import hashlib
import time
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Protocol
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import anyio
import httpx

from app.config import Settings
from app.domain.connections import Connection
from app.domain.errors import UpstreamUnavailable, ValidationError
from app.storage.base import BlobInfo, BlobStore, Hasher, check_expected
from app.upstream import credentials

MAX_REDIRECTS = 3
MAX_DOCUMENT = 64 * 1024 * 1024
LEASE_POLL = 0.05  # seconds between looks at another node's fetch in progress


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


class SharedState(Protocol):
    """What the nodes of a cluster share about remotes (app.services.fleet): blocking calls, made
    from a worker thread."""

    def breaker(self, connection: str) -> tuple[int, float]: ...  # (failures, open until, epoch s)
    def failed(self, connection: str, threshold: int, seconds: float) -> tuple[int, float]: ...
    def succeeded(self, connection: str) -> None: ...
    def acquire(self, key: str, seconds: float) -> bool: ...  # the lease on a fetch; False: held
    def extend(self, key: str, seconds: float) -> None: ...
    def held(self, key: str) -> bool: ...
    def release(self, key: str) -> None: ...


class Remotes:
    """Per process: one httpx client, the breaker state per external connection (shared with the
    other nodes through `shared`), and the flights in progress."""

    def __init__(self, settings: Settings, shared: SharedState | None = None):
        self.settings = settings
        self.shared = shared
        self.client: httpx.AsyncClient | None = None
        self.state: dict[str, list] = {}  # connection -> [consecutive failures, open until (monotonic)]
        self.known: dict[str, int] = {}  # connection -> failures the cluster had counted, last we looked
        self.flights: dict[Any, asyncio.Future] = {}
        self.tokens: dict[Any, tuple[str, float]] = {}  # credentials -> (remote token, fresh until)
        self.requests = 0

    # ---- which URLs may be fetched -------------------------------------------------------------

    @staticmethod
    def base_url(connection: Connection) -> str:
        return connection.url

    @staticmethod
    def allowed_prefixes(connection: Connection) -> list[str]:
        return connection.prefixes()

    def check_allowed(self, connection: Connection, url: str) -> None:
        if not is_allowed(url, connection.prefixes()):
            raise UpstreamUnavailable(f"Refusing to fetch {url!r}: it is not under the configured URL of "
                                      f"external connection {connection.name}")

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

    def _open(self, connection: str, failures: int, until: float) -> None:
        """Open the local breaker until `until` (seconds since the epoch)."""
        self.state[connection] = [failures, time.monotonic() + max(until - time.time(), 0.0)]

    async def check_breaker(self, connection: str) -> None:
        """UpstreamUnavailable while the remote's breaker is open, here or on another node."""
        st = self.state.get(connection)
        if (st is None or st[1] <= time.monotonic()) and self.shared is not None:
            self.state.pop(connection, None)
            failures, until = await anyio.to_thread.run_sync(self.shared.breaker, connection)
            self.known[connection] = failures
            if until > time.time():
                self._open(connection, failures, until)
            st = self.state.get(connection)
        if st and st[1] > time.monotonic():
            raise UpstreamUnavailable(f"External connection {connection} is unavailable (it failed {st[0]} "
                                      "times in a row; retrying later)")

    async def failed(self, connection: str) -> None:
        threshold, seconds = self.settings.upstream_breaker_failures, self.settings.upstream_breaker_seconds
        if self.shared is not None:
            failures, until = await anyio.to_thread.run_sync(self.shared.failed, connection, threshold, seconds)
            self.known[connection] = failures
            if until > time.time():
                self._open(connection, failures, until)
            return
        st = self.state.setdefault(connection, [0, 0.0])
        st[0] += 1
        if st[0] >= threshold:
            st[1] = time.monotonic() + seconds

    async def succeeded(self, connection: str) -> None:
        self.state.pop(connection, None)
        if self.shared is not None and self.known.pop(connection, 0):
            await anyio.to_thread.run_sync(self.shared.succeeded, connection)

    # ---- one fetch at a time across the cluster ----------------------------------------------------

    async def flight(self, key: Any, fn: Callable[[], Awaitable[Any]]) -> Any:
        """`fn` once for concurrent callers of `key` in this process, and in one process of the
        cluster at a time: the others wait for its lease to end, then run `fn`, which finds what
        the first stored (every importer checks the database first)."""
        return await self.single_flight(key, lambda: self._leased(key, fn))

    async def _leased(self, key: Any, fn: Callable[[], Awaitable[Any]]) -> Any:
        if self.shared is None:
            return await fn()
        lease = hashlib.sha256(repr(key).encode()).hexdigest()
        seconds = max(60.0, 4 * self.settings.upstream_timeout)
        while not await anyio.to_thread.run_sync(self.shared.acquire, lease, seconds):
            while await anyio.to_thread.run_sync(self.shared.held, lease):
                await asyncio.sleep(LEASE_POLL)
        renew = asyncio.create_task(self._renew(lease, seconds))
        try:
            return await fn()
        finally:
            renew.cancel()
            await anyio.to_thread.run_sync(self.shared.release, lease)

    async def _renew(self, lease: str, seconds: float) -> None:
        while True:
            await asyncio.sleep(seconds / 3)
            await anyio.to_thread.run_sync(self.shared.extend, lease, seconds)

    async def _credentials(self, connection: Connection, url: str) -> dict:
        """The Authorization header for `url` (only to the connection's own site)."""
        if connection.credentials is None or not connection.sends_credentials_to(url):
            return {}
        return await credentials.headers(self, connection)

    async def request(self, connection: Connection, url: str, headers: dict | None = None,
                      stream: bool = False) -> httpx.Response:
        """GET an allowed URL (following allowed redirects). 5xx and transport errors count
        against the breaker and raise UpstreamUnavailable; other statuses are returned. With
        `stream`, the caller must close the response."""
        name = connection.name
        await self.check_breaker(name)
        for _hop in range(MAX_REDIRECTS + 1):
            self.check_allowed(connection, url)
            sent = {**(headers or {}), **await self._credentials(connection, url)}
            try:
                req = self._client().build_request("GET", url, headers=sent)
                self.requests += 1
                resp = await self._client().send(req, stream=stream)
            except httpx.HTTPError as exc:
                await self.failed(name)
                raise UpstreamUnavailable(f"External connection {name} failed: {type(exc).__name__} "
                                          f"fetching {url}") from None
            if resp.status_code >= 500:
                await resp.aclose()
                await self.failed(name)
                raise UpstreamUnavailable(f"External connection {name} answered {resp.status_code} for {url}")
            await self.succeeded(name)
            if resp.status_code == 401 and "Authorization" in sent and credentials.renewable(connection):
                # A token the remote no longer accepts (revoked, its key rotated): get a new one once.
                await resp.aclose()
                credentials.forget(self, connection)
                sent = {**(headers or {}), **await self._credentials(connection, url)}
                resp = await self._client().send(self._client().build_request("GET", url, headers=sent),
                                                 stream=stream)
                if resp.status_code >= 500:
                    await resp.aclose()
                    await self.failed(name)
                    raise UpstreamUnavailable(f"External connection {name} answered {resp.status_code} for {url}")
            if resp.status_code in (301, 302, 303, 307, 308) and resp.headers.get("location"):
                await resp.aclose()
                url = urljoin(url, resp.headers["location"])
                continue
            if resp.status_code in (401, 403) and "Authorization" in sent:
                await resp.aclose()
                raise UpstreamUnavailable(f"External connection {name} refused Arca's credentials "
                                          f"({resp.status_code}) for {url}")
            return resp
        raise UpstreamUnavailable(f"Too many redirects from external connection {name}")

    async def read(self, connection: Connection, url: str, headers: dict | None = None) -> Answer:
        """`request` with the whole body read (a metadata document: at most MAX_DOCUMENT bytes)."""
        name = connection.name
        resp = await self.request(connection, url, headers, stream=True)
        try:
            body = await _bounded(resp, f"External connection {name} answered {url} with more than "
                                        f"{MAX_DOCUMENT} bytes; a metadata document is never that large")
        except httpx.HTTPError as exc:
            await self.failed(name)
            raise UpstreamUnavailable(f"External connection {name} failed: {type(exc).__name__} "
                                      f"reading {url}") from None
        finally:
            await resp.aclose()
        return Answer(resp.status_code, resp.headers, body, str(resp.url))

    async def post(self, connection: Connection, url: str, body: bytes, headers: dict | None = None) -> Answer:
        """POST a small document to an allowed URL (npm audit), no redirects followed; the answer is
        read whole (at most MAX_DOCUMENT bytes). Failures count against the breaker as for GETs."""
        name = connection.name
        await self.check_breaker(name)
        self.check_allowed(connection, url)
        sent = {**(headers or {}), **await self._credentials(connection, url)}
        try:
            self.requests += 1
            async with self._client().stream("POST", url, content=body, headers=sent) as resp:
                data = await _bounded(resp, f"External connection {name} answered {url} with more "
                                            f"than {MAX_DOCUMENT} bytes")
        except httpx.HTTPError as exc:
            await self.failed(name)
            raise UpstreamUnavailable(f"External connection {name} failed: {type(exc).__name__} "
                                      f"posting to {url}") from None
        if resp.status_code >= 500:
            await self.failed(name)
            raise UpstreamUnavailable(f"External connection {name} answered {resp.status_code} for {url}")
        await self.succeeded(name)
        return Answer(resp.status_code, resp.headers, data, str(resp.url))

    async def fetch_to_file(self, connection: Connection, url: str, path: Path, expected: dict,
                            limit: int | None = None) -> BlobInfo:
        """Stream a remote file to a local staging `path`, verified against `expected` hashes (a
        mismatch removes it and raises UpstreamUnavailable). The caller commits or removes it."""
        name = connection.name
        resp = await self.request(connection, url, stream=True)
        hasher = Hasher(limit)
        try:
            if resp.status_code != 200:
                raise UpstreamUnavailable(f"External connection {name} answered {resp.status_code} for {url}")
            with open(path, "wb") as fh:
                async for chunk in resp.aiter_bytes():
                    hasher.update(chunk)
                    await anyio.to_thread.run_sync(fh.write, chunk)
            info = hasher.info()
            check_expected(info, expected)
            return info
        except ValidationError as exc:
            path.unlink(missing_ok=True)
            raise UpstreamUnavailable(f"Refused the file from external connection {name}: {exc.message}"
                                      ) from None
        except httpx.HTTPError as exc:
            path.unlink(missing_ok=True)
            await self.failed(name)
            raise UpstreamUnavailable(f"External connection {name} failed: {type(exc).__name__} "
                                      f"reading {url}") from None
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        finally:
            await resp.aclose()

    async def fetch_to_blob(self, blobs: BlobStore, connection: Connection, url: str, expected: dict,
                            limit: int | None = None) -> BlobInfo:
        """Stream a remote file into the blob store (staged, verified, then committed)."""
        staged = blobs.new_temp()
        try:
            await self.fetch_to_file(connection, url, staged, expected, limit)
            return await anyio.to_thread.run_sync(blobs.commit_file, staged, expected)
        finally:
            staged.unlink(missing_ok=True)


async def _bounded(resp: httpx.Response, too_large: str) -> bytes:
    """A streamed answer's whole body, refused with `too_large` past MAX_DOCUMENT bytes."""
    body = bytearray()
    async for chunk in resp.aiter_bytes():
        body += chunk
        if len(body) > MAX_DOCUMENT:
            raise UpstreamUnavailable(too_large)
    return bytes(body)
