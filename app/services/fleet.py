"""What the nodes of a cluster share about remotes, in the database: each remote's circuit breaker
(so a remote that is down is not asked by every node in turn) and the lease on a fetch in
progress (so one node fetches a file while the others wait for it and then find it stored).

Implements `app.upstream.remote.SharedState`; the Remotes of every process call it from a worker
thread. Times are milliseconds since the epoch by the nodes' clocks (NTP-close is enough: a
breaker opens for tens of seconds, a lease lasts a minute)."""

from __future__ import annotations

import time
import uuid

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from app.db.models import RemoteBreaker, RemoteLease
from app.db.session import Database


def _now() -> int:
    return int(time.time() * 1000)


class FleetState:
    def __init__(self, db: Database):
        self.db = db
        self.holder = uuid.uuid4().hex  # this process

    # ---- the breaker -------------------------------------------------------------------------

    def breaker(self, connection: str) -> tuple[int, float]:
        """(consecutive failures, open until: seconds since the epoch) as the cluster knows them."""
        with self.db.read() as s:
            row = s.get(RemoteBreaker, connection)
            return (row.failures, row.open_until / 1000) if row is not None else (0, 0.0)

    def failed(self, connection: str, threshold: int, seconds: float) -> tuple[int, float]:
        """Count a failure; at `threshold` in a row the breaker opens for `seconds`."""
        for _attempt in range(3):
            try:
                with self.db.session() as s:
                    row = s.get(RemoteBreaker, connection, with_for_update=True)
                    if row is None:
                        row = RemoteBreaker(connection=connection, failures=0, open_until=0)
                        s.add(row)
                    row.failures += 1
                    if row.failures >= threshold:
                        row.open_until = _now() + int(seconds * 1000)
                    s.flush()
                    return row.failures, row.open_until / 1000
            except IntegrityError:
                continue  # another node created the row first: count on it
        return threshold, time.time() + seconds

    def succeeded(self, connection: str) -> None:
        with self.db.session() as s:
            s.execute(delete(RemoteBreaker).where(RemoteBreaker.connection == connection))

    # ---- leases ------------------------------------------------------------------------------

    def acquire(self, key: str, seconds: float) -> bool:
        """Take the lease on `key` (or one that expired); False while another holds it."""
        until = _now() + int(seconds * 1000)
        try:
            with self.db.session() as s:
                s.add(RemoteLease(key=key, holder=self.holder, expires_at=until))
            return True
        except IntegrityError:
            pass
        with self.db.session() as s:
            taken = s.execute(update(RemoteLease).where(RemoteLease.key == key, RemoteLease.expires_at < _now())
                              .values(holder=self.holder, expires_at=until))
            return taken.rowcount == 1

    def extend(self, key: str, seconds: float) -> None:
        with self.db.session() as s:
            s.execute(update(RemoteLease).where(RemoteLease.key == key, RemoteLease.holder == self.holder)
                      .values(expires_at=_now() + int(seconds * 1000)))

    def held(self, key: str) -> bool:
        """Does someone hold a lease on `key` that has not expired?"""
        with self.db.read() as s:
            until = s.scalar(select(RemoteLease.expires_at).where(RemoteLease.key == key))
            return until is not None and until >= _now()

    def release(self, key: str) -> None:
        with self.db.session() as s:
            s.execute(delete(RemoteLease).where(RemoteLease.key == key, RemoteLease.holder == self.holder))
