"""Name rules from the CodeArtifact service model (botocore codeartifact 2018-09-22)."""

from __future__ import annotations

import re

from app.domain.errors import ValidationError

DOMAIN_RE = re.compile(r"[a-z][a-z0-9\-]{0,48}[a-z0-9]")
REPOSITORY_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._\-]{1,99}")
COORD_RE = re.compile(r"[^#/\s]{1,255}")
EXTERNAL_CONNECTION_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._\-:]{1,99}")
RESERVED_DOMAINS = {"v1", "ui", "healthz", "readyz", "metrics", "static"}

FORMATS = ("npm", "pypi", "maven", "nuget", "generic", "ruby", "swift", "cargo")


def check_domain(name: str | None) -> str:
    if not name or not DOMAIN_RE.fullmatch(name):
        raise ValidationError(
            f"Invalid domain name {name!r}: 2-50 characters, lower-case letters, digits and '-', "
            "starting with a letter and not ending with '-'"
        )
    if name in RESERVED_DOMAINS:
        raise ValidationError(f"Domain name {name!r} is reserved")
    return name


def check_repository(name: str | None) -> str:
    if not name or not REPOSITORY_RE.fullmatch(name):
        raise ValidationError(
            f"Invalid repository name {name!r}: 2-100 characters of letters, digits, '.', '_' and '-', "
            "starting with a letter or digit"
        )
    return name


def check_format(fmt: str | None) -> str:
    if fmt not in FORMATS:
        raise ValidationError(f"Invalid format {fmt!r}: one of {', '.join(FORMATS)}")
    return fmt


def check_coordinate(kind: str, value: str | None, *, required: bool = True) -> str | None:
    if value is None or value == "":
        if required:
            raise ValidationError(f"{kind} is required")
        return None
    if not COORD_RE.fullmatch(value):
        raise ValidationError(f"Invalid {kind} {value!r}: 1-255 characters, no '#', '/' or whitespace")
    return value

