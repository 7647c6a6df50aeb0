"""Remote metadata, retained: the parsed answer of a remote about one package, kept in the
database (every node sees it), reused for `ARCA_UPSTREAM_MAX_AGE` seconds (300), then revalidated
with If-None-Match; when the remote is down the stale copy is served. UpstreamUnavailable (502)
only when nothing is retained."""

from __future__ import annotations

import time
from typing import Any, Callable

from starlette.concurrency import run_in_threadpool

from app.domain.connections import Connection
from app.domain.coords import Coordinates
from app.domain.errors import ArcaError, UpstreamUnavailable
from app.services import remote_index
from app.services.context import Arca
from app.upstream.remote import Answer


class BadDocument(ValueError):
    """A remote's answer is not the document it should be (the parsers say what is wrong)."""


# What a parser meeting an answer of the wrong shape may raise.
UNREADABLE = (BadDocument, ValueError, TypeError, AttributeError, KeyError, IndexError, ArcaError)


def _parsed(parse: Callable[[Answer], Any], resp: Answer, connection: str, url: str) -> Any:
    try:
        return parse(resp)
    except UNREADABLE as exc:
        reason = str(exc) if isinstance(exc, BadDocument) else f"a document Arca cannot read ({type(exc).__name__})"
        raise UpstreamUnavailable(f"External connection {connection} answered {url} with {reason}") from None


async def metadata(arca: Arca, *, repository_id: int, connection: Connection, coords: Coordinates, display: str | None,
                   url: str, accept: str, parse: Callable[[Answer], Any], document: str | None = None) -> Any:
    """The parsed remote metadata of one package (None when the remote does not know it);
    `document` names another document of the package than its index (kept beside it)."""
    record = await run_in_threadpool(remote_index.load_record, arca, repository_id, coords, document)
    if record and record.get("url") == url and time.time() - record.get("fetched", 0) < arca.settings.upstream_max_age:
        return record.get("data")

    asked = time.time()

    async def refresh():
        nonlocal record
        if arca.remotes.shared is not None:
            # Another node may have fetched it while this one waited for its turn.
            record = await run_in_threadpool(remote_index.load_record, arca, repository_id, coords, document)
            if record and record.get("url") == url and record.get("fetched", 0) >= asked:
                return record.get("data")
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
            await run_in_threadpool(remote_index.save_record, arca, repository_id, coords, display, new, False,
                                    document)
            return record.get("data")
        if resp.status_code == 200:
            try:
                data = _parsed(parse, resp, connection.name, url)
            except UpstreamUnavailable:
                if record:
                    return record.get("data")  # what the remote said before still stands
                raise
            new = {"url": url, "etag": resp.headers.get("etag"), "fetched": time.time(), "data": data}
            changed = not record or record.get("data") != data
            await run_in_threadpool(remote_index.save_record, arca, repository_id, coords, display, new, changed,
                                    document)
            return data
        if resp.status_code in (404, 410):
            return None
        if record:
            return record.get("data")
        raise UpstreamUnavailable(f"External connection {connection.name} answered {resp.status_code} for {url}")

    return await arca.remotes.flight(("meta", repository_id, coords, document), refresh)
