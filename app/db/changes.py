"""What tells a process, without a query, whether anything was committed to the database since it
last looked: the validator of the data plane's per-worker response cache (services/caches.py).

`token()` returns a value that changes whenever a transaction may have been committed anywhere,
or None when this process cannot tell (then nothing may be answered from memory).

- SQLite (one node, one file, any number of worker processes): `PRAGMA data_version` on a
  connection of our own that never writes. SQLite changes it whenever another connection commits;
  it is read from the WAL index in shared memory, so it is exact and costs no query.
- PostgreSQL (several nodes): every write transaction sends `NOTIFY arca_changes` (delivered on
  commit, never on rollback) and every process listens on a connection of its own; each
  notification, each reconnection (notifications may have been missed) moves the token. Workers
  of one node also share a node token in a small memory-mapped file under the data directory that
  a writer changes right after its commit, so what this node commits is seen by its other workers
  before the writer answers. Another node's commit is seen when its notification arrives
  (milliseconds); while the listening connection is down `token()` is None."""

from __future__ import annotations

import mmap
import os
import secrets
import sqlite3
import struct
import threading
from pathlib import Path
from typing import Hashable

CHANNEL = "arca_changes"
NOTIFY_SQL = f"SELECT pg_notify('{CHANNEL}', '')"
KEEPALIVE = 5.0  # seconds between checks that the listening connection is alive


class SqliteWatch:
    def __init__(self, path: str):
        self._path = path
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._pid = 0

    def token(self) -> Hashable | None:
        with self._lock:
            try:
                if self._conn is None or self._pid != os.getpid():  # a connection is not shared across fork
                    self._conn = sqlite3.connect(self._path, check_same_thread=False, isolation_level=None)
                    self._pid = os.getpid()
                return self._conn.execute("PRAGMA data_version").fetchone()[0]
            except sqlite3.Error:
                self._conn = None
                return None

    def committed(self) -> None:
        """Our own commits come through another connection: data_version sees them already."""

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


class _NodeToken:
    """Eight bytes in a shared file, rewritten with a random value after each local commit (a random
    value, not a counter: two writers racing can never leave the value a reader cached with)."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            if os.fstat(fd).st_size < 8:
                os.ftruncate(fd, 8)
            self._map = mmap.mmap(fd, 8)
        finally:
            os.close(fd)

    def read(self) -> int:
        return struct.unpack_from("<Q", self._map, 0)[0]

    def change(self) -> None:
        struct.pack_into("<Q", self._map, 0, secrets.randbits(64))


class PostgresWatch:
    def __init__(self, url: str, node_dir: Path | None):
        from sqlalchemy.engine import make_url

        self._conninfo = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        self._node = _NodeToken(node_dir / "changes.token") if node_dir is not None else None
        self._heard = 0
        self._alive = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid = 0
        self._lock = threading.Lock()

    def token(self) -> Hashable | None:
        if self._pid != os.getpid():
            self._start()
        if not self._alive or self._node is None:
            return None
        return self._heard, self._node.read()

    def committed(self) -> None:
        if self._node is not None:
            self._node.change()

    def close(self) -> None:
        self._stop.set()

    def _start(self) -> None:
        with self._lock:
            if self._pid == os.getpid():
                return
            self._pid, self._alive = os.getpid(), False
            self._stop = threading.Event()
            self._thread = threading.Thread(target=self._listen, args=(self._stop,), name="arca-changes",
                                            daemon=True)
            self._thread.start()

    def _listen(self, stop: threading.Event) -> None:
        import psycopg

        while not stop.is_set():
            try:
                with psycopg.connect(self._conninfo, autocommit=True, connect_timeout=5) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    self._heard += 1  # whatever was committed while we were not listening
                    self._alive = True
                    while not stop.is_set():
                        for _ in conn.notifies(timeout=KEEPALIVE):
                            self._heard += 1
                        conn.execute("SELECT 1")  # a dead connection raises here
            except Exception:  # noqa: BLE001 - any failure: unknown until listening again
                pass
            self._alive = False
            self._heard += 1
            stop.wait(0.5)


def watch_for(url: str, node_dir: Path | None):
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        return SqliteWatch(path) if path and path != ":memory:" else _Never()
    return PostgresWatch(url, node_dir)


class _Never:
    def token(self) -> None:
        return None

    def committed(self) -> None:
        pass

    def close(self) -> None:
        pass
