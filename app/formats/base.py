"""What a package format plugs into the data plane: its name and one request handler.

Each format is a package `app/formats/<name>/`: pure codec modules (paths, names, versions,
metadata parsing and rendering; no I/O) and `routes.py`, which turns requests into service calls
and renders their results. `app/formats/registry.py` lists the formats the server mounts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Awaitable, Callable

if TYPE_CHECKING:
    from starlette.responses import Response

    from app.formats.http import DataPlane


@dataclass(frozen=True)
class Format:
    name: str
    # Called for every request under /{domain}/{name}/{repository}/ once the caller is
    # authenticated and the repository exists. Raise ArcaError to refuse.
    handle: Callable[["DataPlane"], Awaitable["Response"]]
    # False: GET of the repository root itself answers with a JSON description (after READ).
    handles_root: bool = False
