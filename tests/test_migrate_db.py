"""`arca admin migrate-db`: a SQLite installation with data moves to PostgreSQL by the documented
procedure (stop, migrate, start on the new URL); the server started on the result answers as the
old one did, takes new publishes (sequences past the copied ids) and installs with pip and npm. A
target that is not PostgreSQL or not empty is refused, and the refusal changes nothing."""

from __future__ import annotations

import json
import subprocess

import psycopg
import pytest
from sqlalchemy import create_engine, func, inspect, select
from sqlalchemy.engine import make_url

from app.db.models import Base
from tests.pypi_support import make_wheel, twine_upload
from tests.support.server import ARCA, ArcaServer, fresh_database_url, start_server
from tests.test_archive import install_from, populate, snapshot

pytestmark = pytest.mark.cluster


def counts(url: str) -> dict[str, int]:
    engine = create_engine(url)
    try:
        present = set(inspect(engine).get_table_names())
        with engine.connect() as conn:
            return {t.name: conn.execute(select(func.count()).select_from(t)).scalar_one()
                    for t in Base.metadata.sorted_tables if t.name in present}
    finally:
        engine.dispose()


def conninfo(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def refused(server, *args) -> str:
    proc = subprocess.run([ARCA, "admin", *args], env=server.env, cwd=server.root, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    return proc.stderr


def test_a_sqlite_installation_moves_to_postgresql_and_serves_from_it(pg_url, tmp_path, unique):
    sqlite_url = f"sqlite:///{tmp_path / 'arca.db'}"
    src = start_server(tmp_path / "arca", env={"ARCA_BLOB_STORE": "file", "ARCA_CLEANUP_INTERVAL": "0"},
                       database_url=sqlite_url)
    domain = f"m{unique}"
    try:
        populate(src, domain, tmp_path)
        before = snapshot(src, domain)
    finally:
        src.stop()  # stop, migrate, start
    target = fresh_database_url(tmp_path / "pg")
    assert target.startswith("postgresql")

    assert "moves to PostgreSQL" in refused(src, "migrate-db", "--to", f"sqlite:///{tmp_path / 'other.db'}")
    # A copy that fails half-way (the target refuses every asset row, after the tables before it were
    # copied) is rolled back whole: the target is as empty as before, and once the cause is gone the
    # same command succeeds.
    upgraded = subprocess.run([ARCA, "admin", "migrate"], env={**src.env, "ARCA_DATABASE_URL": target},
                              cwd=src.root, capture_output=True, text=True, timeout=300)
    assert upgraded.returncode == 0, upgraded.stderr
    with psycopg.connect(conninfo(target), autocommit=True) as conn:
        conn.execute("ALTER TABLE assets ADD CONSTRAINT refuse_all CHECK (id < 0)")
    assert "rolled back" in refused(src, "migrate-db", "--to", target)
    # as empty as a freshly migrated database: only the revocation epoch that revision 0009 seeds
    after = counts(target)
    assert after.pop("identity_epoch") == 1 and set(after.values()) == {0}
    with psycopg.connect(conninfo(target), autocommit=True) as conn:
        conn.execute("ALTER TABLE assets DROP CONSTRAINT refuse_all")
    proc = subprocess.run([ARCA, "admin", "migrate-db", "--to", target], env=src.env, cwd=src.root,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    summary = lines[-1]
    assert summary["ok"]
    assert {x["table"] for x in lines[:-1]} == {t.name for t in Base.metadata.sorted_tables}  # JSON lines progress
    source_counts = counts(sqlite_url)
    assert summary["tables"] == source_counts == counts(target)
    assert source_counts["package_versions"] >= 7 and source_counts["assets"] > 0 and source_counts["users"] >= 1

    # Run again: the target is not empty any more; refused, and nothing changed.
    assert "not empty" in refused(src, "migrate-db", "--to", target)
    assert counts(target) == source_counts

    moved = ArcaServer(root=src.root, env={**src.env, "ARCA_DATABASE_URL": target}, access_key=src.access_key)
    moved.start()
    try:
        assert snapshot(moved, domain) == before
        # New rows take ids after the copied ones (the sequences were set): a repository, a publish.
        moved.boto().create_repository(domain=domain, repository="after")
        twine_upload(moved.endpoint(domain, "pypi", "libs"), moved.token(domain),
                     [make_wheel(tmp_path / "dist3", "arch-py", "3.0")])
        versions = moved.boto().list_package_versions(domain=domain, repository="libs", format="pypi",
                                                       package="arch-py")["versions"]
        assert {v["version"] for v in versions} == {"1.0", "2.0", "3.0"}
        install_from(moved, domain, tmp_path)
    finally:
        moved.stop()
