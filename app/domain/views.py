"""Read models: what services load from the database and format codecs render (no I/O here)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class FileRow:
    """One stored file of a package version, with its blob's digests."""

    sha256: str
    sha1: str
    md5: str
    sha512: str
    size: int
    status: str  # of its version
    attributes: dict = field(default_factory=dict, hash=False, compare=False)
    version: str | None = None  # the version it belongs to, when read from the database
    version_id: int | None = field(default=None, compare=False)  # its version's row (download times)


@dataclass(frozen=True)
class PackageState:
    """A package's identity and revision: every change bumps `revision`, so a rendering made at
    one revision is valid exactly while the package is still at it."""

    id: int
    revision: int
    updated_at: datetime


@dataclass(frozen=True)
class IndexFile:
    """A file as an index lists it (PyPI's simple pages), with its version's status."""

    version: str
    filename: str
    sha256: str
    size: int | None
    created: datetime | None
    attributes: dict = field(default_factory=dict, hash=False, compare=False)
    status: str = "Published"


@dataclass
class VersionRow:
    """A version as a packument lists it (npm: one tarball per version)."""

    version: str
    status: str
    published: datetime | None
    attributes: dict
    sha512: str | None
    sha1: str | None


@dataclass
class PackageView:
    """What one packument render needs, read in one transaction."""

    pkg_id: int
    name: str  # display name (npm: @scope/name)
    revision: int
    created: datetime
    modified: datetime
    versions: list[VersionRow]  # in the order the reader asked for
    tag_rows: dict[str, str]


def document_rev(pkg_id: int, revision: int) -> str:
    """A package document's CouchDB-style `_rev` (npm sends it back in `/-rev/{rev}` URLs)."""
    return f"{revision}-{hashlib.sha1(f'{pkg_id}:{revision}'.encode()).hexdigest()[:16]}"
