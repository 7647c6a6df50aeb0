"""`arca admin import`: packages from the registries teams leave, through the publish pipeline.

Importers read a source (a folder or another server) and hand each file to the services like any
other door; they never touch the database themselves."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from app.domain.errors import ValidationError
from app.importers import common, maven, npm, pypi
from app.services import domains
from app.services.context import Arca, Principal


@dataclass(frozen=True)
class Kind:
    format: str
    remote: bool  # the source is a URL
    rules: object
    check: common.Check
    read: Callable  # (source: Path | Fetcher, packages, arca) -> iterator of Version | Outcome


KINDS: dict[str, Kind] = {
    "pypi-dir": Kind("pypi", False, pypi.RULES, pypi.check, lambda src, pk, arca: pypi.from_dir(src, pk)),
    "devpi-export": Kind("pypi", False, pypi.RULES, pypi.check, lambda src, pk, arca: pypi.from_dir(src, pk)),
    "pypi-index": Kind("pypi", True, pypi.RULES, pypi.check, lambda src, pk, arca: pypi.from_index(src, pk)),
    "verdaccio-storage": Kind("npm", False, npm.RULES, npm.check,
                              lambda src, pk, arca: npm.from_verdaccio(src, pk)),
    "npm-tarballs": Kind("npm", False, npm.RULES, npm.check, lambda src, pk, arca: npm.from_tarballs(
        src, arca.settings.npm_max_unpacked_bytes, pk)),
    "npm-registry": Kind("npm", True, npm.RULES, npm.check, lambda src, pk, arca: npm.from_registry(src, pk)),
    "maven-dir": Kind("maven", False, maven.RULES, maven.check, lambda src, pk, arca: maven.from_dir(src, pk)),
    "maven-repo": Kind("maven", True, maven.RULES, maven.check, lambda src, pk, arca: maven.from_repo(src, pk)),
}


def run_import(arca: Arca, principal: Principal, domain: str, repository: str, kind: str, source: str, *,
               packages: set[str] | None = None, username: str | None = None, password: str | None = None,
               token: str | None = None, on_outcome=None, on_found=None) -> dict:
    k = KINDS.get(kind)
    if k is None:
        raise ValidationError(f"Unknown source kind {kind!r}: one of {', '.join(KINDS)}")
    ref = domains.ref_for(arca, domain, repository)
    fetcher = common.Fetcher(source, username, password, token) if k.remote else None
    try:
        job = common.Job(arca, principal, ref, k.rules, k.check, fetcher, on_outcome)
        summary = common.run(job, k.read(fetcher if k.remote else Path(source), packages, arca), on_found)
    finally:
        if fetcher is not None:
            fetcher.close()
    return {"domain": domain, "repository": repository, "from": kind,
            "source": fetcher.base if fetcher is not None else source, **summary}
