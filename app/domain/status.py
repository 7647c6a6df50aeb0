"""Package version statuses (CodeArtifact's values) and what each means to a consumer."""

from __future__ import annotations

PUBLISHED, UNFINISHED, UNLISTED, ARCHIVED, DISPOSED, DELETED = (
    "Published", "Unfinished", "Unlisted", "Archived", "Disposed", "Deleted")
STATUSES = (PUBLISHED, UNFINISHED, UNLISTED, ARCHIVED, DISPOSED, DELETED)
# Consumers (indexes, metadata) list Published only; exact-coordinate downloads also serve Unlisted.
DOWNLOADABLE = (PUBLISHED, UNLISTED)
# What UpdatePackageVersionsStatus may set.
STATUS_TARGETS = (PUBLISHED, UNLISTED, ARCHIVED)
# Versions that take no new files and cannot change status any more.
CLOSED = (ARCHIVED, DISPOSED, DELETED)
