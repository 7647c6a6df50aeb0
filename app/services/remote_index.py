"""Remote metadata retained in the database: what an external connection last said about a
package (its parsed index page, packument or maven-metadata.xml, the ETag and when it was
fetched), kept on the package of the repository holding the connection, so every node sees it
and it survives the remote."""

from __future__ import annotations

from app.db.models import Repository
from app.domain.coords import Coordinates
from app.services import rows
from app.services.context import Arca


def _key(document: str | None) -> str:
    """The attribute a remote document is kept under: the package's index ("remote"), or another
    document of the package ("remote:<document>", e.g. a Maven SNAPSHOT's own metadata)."""
    return "remote" if document is None else f"remote:{document}"


def load_record(arca: Arca, repository_id: int, coords: Coordinates, document: str | None = None) -> dict | None:
    with arca.db.read() as s:
        pkg = rows.find_package(s, s.get(Repository, repository_id), coords)
        return None if pkg is None else (pkg.attributes or {}).get(_key(document))


def save_record(arca: Arca, repository_id: int, coords: Coordinates, display: str | None, record: dict,
                changed: bool, document: str | None = None) -> None:
    """Keep `record`; `changed` (the remote's answer differs) bumps the package revision so that
    documents merged from it are rendered anew."""
    with arca.db.session() as s:
        pkg = rows.get_or_create_package(s, s.get(Repository, repository_id), coords, display)
        if changed:
            rows.bump(s, pkg)
        pkg.attributes = {**(pkg.attributes or {}), _key(document): record}
