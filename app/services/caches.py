"""Per-process caches: bounded, typed, one expiry and validation mechanism for all of them.

A cache here never decides correctness. Entries expire after `ttl` seconds (lookups that may
lag the database briefly: a key, a principal, a repository) or are valid only for the
`revision` they were made at (rendered documents: the caller passes the revision it has just
read from the database, which every change bumps, so a stale entry is never served on any
node). Both bounds, entries and bytes, evict the least recently used entry first.

Safe to call from worker threads and from the event loop (the lock is held for dict work only)."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Callable, Generic, Hashable, TypeVar

V = TypeVar("V")
MISS: Any = object()


@dataclass
class _Entry(Generic[V]):
    value: V
    expires: float | None
    revision: Any
    size: int


@dataclass
class Cache(Generic[V]):
    """LRU of at most `max_entries` (and `max_bytes`, with `sizeof`) entries, each expiring after
    `ttl` seconds when set, and matching only the revision it was stored with."""

    name: str
    max_entries: int
    ttl: float | None = None
    max_bytes: int | None = None
    sizeof: Callable[[Any], int] | None = None
    _data: OrderedDict = field(default_factory=OrderedDict, repr=False)
    _bytes: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def get(self, key: Hashable, revision: Any = None) -> V:
        """The value, or MISS when absent, expired or stored for another revision."""
        with self._lock:
            entry = self._data.get(key)
            if entry is None:
                return MISS
            if (entry.expires is not None and entry.expires <= time.monotonic()) or entry.revision != revision:
                self._drop(key)
                return MISS
            self._data.move_to_end(key)
            return entry.value

    def put(self, key: Hashable, value: V, revision: Any = None) -> V:
        size = self.sizeof(value) if self.sizeof is not None else 0
        expires = time.monotonic() + self.ttl if self.ttl is not None else None
        with self._lock:
            if key in self._data:
                self._drop(key)
            self._data[key] = _Entry(value, expires, revision, size)
            self._bytes += size
            while self._data and (len(self._data) > self.max_entries
                                  or (self.max_bytes is not None and self._bytes > self.max_bytes)):
                self._drop(next(iter(self._data)))
        return value

    def discard(self, key: Hashable) -> None:
        with self._lock:
            if key in self._data:
                self._drop(key)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()
            self._bytes = 0

    def __len__(self) -> int:
        return len(self._data)

    def _drop(self, key: Hashable) -> None:
        entry = self._data.pop(key)
        self._bytes -= entry.size


@dataclass
class Caches:
    """Every cache of a process, by what it holds."""

    # access key id -> (secret, Principal) or None (unknown / inactive key)
    keys: Cache = field(default_factory=lambda: Cache("keys", 10_000, ttl=5.0))
    # user id -> Principal or None (deleted user)
    principals: Cache = field(default_factory=lambda: Cache("principals", 10_000, ttl=5.0))
    # (domain name, repository name) -> RepoRef, or None / False (unknown repository / domain)
    repositories: Cache = field(default_factory=lambda: Cache("repositories", 10_000, ttl=2.0))
    # custom external connection name -> Connection (credentials opened) or None
    connections: Cache = field(default_factory=lambda: Cache("connections", 1_000, ttl=5.0))
    # domain id -> {repository id: RepoNode}: the upstream graph
    graphs: Cache = field(default_factory=lambda: Cache("graphs", 1_000, ttl=2.0))
    # (package id, version or None) -> rendered maven-metadata.xml, valid for the package revision
    maven_metadata: Cache = field(default_factory=lambda: Cache("maven_metadata", 4_096))
    # package id -> rendered simple pages, valid for the package revision
    pypi_pages: Cache = field(default_factory=lambda: Cache("pypi_pages", 1_024))
    # (package id, kind, base url) -> rendered packument, valid for the package revision
    packuments: Cache = field(default_factory=lambda: Cache("packuments", 2_048, max_bytes=128 * 1024 * 1024,
                                                            sizeof=lambda r: r.size))
