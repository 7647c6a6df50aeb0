"""Shared fixtures: one real `arca serve` per test module (each test uses its own domain/repository)."""

from __future__ import annotations

import uuid

import pytest

from tests.maven_support import maven_local_repo, mvn  # noqa: F401  (fixtures: one local repository per worker)
from tests.support.server import ArcaServer, start_server


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> ArcaServer:
    srv = start_server(tmp_path_factory.mktemp("arca"))
    yield srv
    srv.stop()


@pytest.fixture
def unique() -> str:
    """A short unique suffix for domain/repository/package names within a shared server."""
    return uuid.uuid4().hex[:8]


@pytest.fixture
def domain(server: ArcaServer, unique: str) -> str:
    name = f"d{unique}"
    server.boto().create_domain(domain=name)
    return name
