"""The formats the data plane serves, by the name in /{domain}/{format}/{repository}/."""

from __future__ import annotations

from app.formats.base import Format
from app.formats.maven.routes import MAVEN
from app.formats.npm.routes import NPM
from app.formats.pypi.routes import PYPI

FORMATS: dict[str, Format] = {f.name: f for f in (MAVEN, NPM, PYPI)}
