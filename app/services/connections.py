"""Which remote an external connection name stands for: the public ones from the settings
(`ARCA_EXTERNAL_<NAME>`, `..._ALLOW`), custom ones from the database."""

from __future__ import annotations

from sqlalchemy.orm import Session

from app.config import Settings
from app.domain.connections import PUBLIC, SERVED_FORMATS, Connection, served, with_slash
from app.domain.errors import ValidationError
from app.services.context import Arca


def public_connection(settings: Settings, name: str) -> Connection | None:
    """A `public:*` connection with the URL the settings give it (None: unknown or no URL)."""
    fmt = PUBLIC.get(name)
    url = settings.external.get(name)
    if fmt is None or not url:
        return None
    return Connection(name, fmt, with_slash(url), tuple(settings.external_allow.get(name, ())))


def lookup(arca: Arca, s: Session, name: str | None) -> Connection | None:
    """The connection `name` names, public or custom; None when there is none."""
    if not name:
        return None
    return public_connection(arca.settings, name)


def format_of(s: Session, name: str) -> str | None:
    """The package format a connection serves (None: unknown)."""
    return PUBLIC.get(name)


def check_served(fmt: str) -> str:
    """ValidationError for a format CodeArtifact knows but Arca's data plane does not serve."""
    if not served(fmt):
        raise ValidationError(f"Arca does not serve {fmt} packages: repository endpoints exist for "
                              f"{', '.join(SERVED_FORMATS)}")
    return fmt


def check_associable(s: Session, name: object) -> str:
    """The external connection `name`, if a repository may use it: a known connection of a format
    Arca serves. ValidationException otherwise, saying which."""
    fmt = format_of(s, name) if isinstance(name, str) else None
    if fmt is None:
        usable = sorted(n for n, f in PUBLIC.items() if served(f))
        raise ValidationError(f"Unknown external connection {name!r}: one of {', '.join(usable)}")
    if not served(fmt):
        raise ValidationError(f"External connection {name} serves {fmt} packages, which Arca does not serve "
                              f"(it serves {', '.join(SERVED_FORMATS)})")
    return name
