"""Remote metadata, retained: the parsed answer of a remote about one package, kept in the
database (every node sees it), reused for `ARCA_UPSTREAM_MAX_AGE` seconds (300), then revalidated
with If-None-Match; when the remote is down the stale copy is served. UpstreamUnavailable (502)
only when nothing is retained."""

from __future__ import annotations

import time
from typing import Any, Callable

import httpx
from starlette.concurrency import run_in_threadpool

from app.domain.coords import Coordinates
from app.domain.errors import UpstreamUnavailable
from app.services import remote_index
from app.services.context import Arca


async def metadata(arca: Arca, *, repository_id: int, connection: str, coords: Coordinates, display: str | None,
                   url: str, accept: str, parse: Callable[[httpx.Response], Any]) -> Any:
    """The parsed remote metadata of one package (None when the remote does not know it)."""
    record = await run_in_threadpool(remote_index.load_record, arca, repository_id, coords)
    if record and record.get("url") == url and time.time() - record.get("fetched", 0) < arca.settings.upstream_max_age:
        return record.get("data")

    async def refresh():
        headers = {"Accept": accept}
        if record and record.get("etag") and record.get("url") == url:
            headers["If-None-Match"] = record["etag"]
        try:
            resp = await arca.remotes.read(connection, url, headers)
        except UpstreamUnavailable:
            if record:
                return record.get("data")  # stale is better than none
            raise
        if resp.status_code == 304 and record:
            new = {**record, "fetched": time.time()}
            await run_in_threadpool(remote_index.save_record, arca, repository_id, coords, display, new, False)
            return record.get("data")
        if resp.status_code == 200:
            data = parse(resp)
            new = {"url": url, "etag": resp.headers.get("etag"), "fetched": time.time(), "data": data}
            changed = not record or record.get("data") != data
            await run_in_threadpool(remote_index.save_record, arca, repository_id, coords, display, new, changed)
            return data
        if resp.status_code in (404, 410):
            return None
        if record:
            return record.get("data")
        raise UpstreamUnavailable(f"External connection {connection} answered {resp.status_code} for {url}")

    return await arca.remotes.single_flight(("meta", repository_id, coords), refresh)
