"""Shared fixtures: one real `arca serve` per test module (each test uses its own domain/repository),
one Maven local repository per worker; and the rule that a test never skips."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

import pytest

from tests.maven_support import maven_local_repo, mvn  # noqa: F401  (fixtures: one local repository per worker)
from tests.support.server import ArcaServer, start_server

ROOT = Path(__file__).resolve().parents[1]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """A skip is reported as a failure: a test that cannot run (a missing tool, a skip marker, an
    importorskip) must not let the suite pass without it."""
    report = yield
    if report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"skipped, and a test never skips: {reason}"
    return report


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


@pytest.fixture(scope="module")
def pg_url():
    """A PostgreSQL server for the module's `fresh_database_url()` calls: the one ARCA_TEST_DATABASE_URL
    names (scripts/test's PostgreSQL phase), else a throwaway cluster started for the module."""
    if os.environ.get("ARCA_TEST_DATABASE_URL"):
        yield None  # fresh_database_url() makes a database on that server
        return
    d = Path(tempfile.mkdtemp(prefix="arca-pg."))  # not under pytest's 0700 tmp root: postgres must reach it
    try:
        url = subprocess.run([str(ROOT / "scripts" / "pg-cluster"), "start", str(d)], check=True,
                             capture_output=True, text=True, timeout=120).stdout.strip()
        os.environ["ARCA_TEST_DATABASE_URL"] = url
        yield url
    finally:  # the environment is the whole test process's: restored even when the module fails
        os.environ.pop("ARCA_TEST_DATABASE_URL", None)
        subprocess.run([str(ROOT / "scripts" / "pg-cluster"), "stop", str(d)], timeout=60)
        shutil.rmtree(d, ignore_errors=True)
