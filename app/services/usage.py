"""When versions were last downloaded, recorded cheaply: a download only adds its version's id to
this process's set (no database write on the request path); every ARCA_DOWNLOAD_FLUSH_SECONDS the
set is written in one UPDATE per batch, and a row already stamped within the hour is left alone.
The cleanup rule `evictExternalNotDownloadedForDays` reads the times; a crash loses at most the
last interval's notes, which only makes a version look a little older than it is."""

from __future__ import annotations

import asyncio
import logging
import threading
from datetime import timedelta
from typing import TYPE_CHECKING

from sqlalchemy import or_, update

from app.db.models import PackageVersion, utcnow

if TYPE_CHECKING:
    from app.services.context import Arca

log = logging.getLogger("arca.usage")
RESOLUTION = timedelta(hours=1)
BATCH = 500


class DownloadLog:
    """The version ids downloaded since the last flush (thread-safe; bounded by the versions that exist)."""

    def __init__(self) -> None:
        self._ids: set[int] = set()
        self._lock = threading.Lock()

    def note(self, version_id: int | None) -> None:
        if version_id is not None:
            with self._lock:
                self._ids.add(version_id)

    def take(self) -> list[int]:
        with self._lock:
            ids, self._ids = self._ids, set()
        return sorted(ids)


def flush_downloads(arca: "Arca") -> int:
    """Write the collected download times; returns how many rows changed."""
    ids = arca.downloads.take()
    now = utcnow()
    changed = 0
    for i in range(0, len(ids), BATCH):
        with arca.db.session() as s:
            changed += s.execute(update(PackageVersion).where(
                PackageVersion.id.in_(ids[i:i + BATCH]),
                or_(PackageVersion.last_downloaded_at.is_(None), PackageVersion.last_downloaded_at < now - RESOLUTION))
                .values(last_downloaded_at=now)).rowcount or 0
    return changed


async def run_flusher(arca: "Arca") -> None:
    try:
        while True:
            await asyncio.sleep(arca.settings.download_flush_seconds)
            try:
                await asyncio.to_thread(flush_downloads, arca)
            except Exception:  # keep collecting; the reason is in the log
                log.exception("writing download times failed")
    finally:
        # On shutdown, what was collected since the last round.
        try:
            await asyncio.to_thread(flush_downloads, arca)
        except Exception:
            log.exception("writing download times at shutdown failed")
