"""The schema exists only through alembic: upgrade head, then `alembic check` finds no drift,
on SQLite and (when ARCA_TEST_DATABASE_URL is set) on PostgreSQL."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from sqlalchemy import create_engine, inspect

from tests.support.server import clean_env, fresh_database_url

ROOT = Path(__file__).resolve().parents[1]
ALEMBIC = str(Path(sys.executable).parent / "alembic")


def test_upgrade_head_and_check(tmp_path):
    url = fresh_database_url(tmp_path)
    env = clean_env(ARCA_DATABASE_URL=url, ARCA_DATA_DIR=str(tmp_path))
    for args in (["upgrade", "head"], ["check"], ["current"]):
        proc = subprocess.run([ALEMBIC, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "(head)" in proc.stdout
    engine = create_engine(url)
    tables = set(inspect(engine).get_table_names())
    engine.dispose()
    assert {"domains", "repositories", "repository_upstreams", "packages", "package_versions", "assets",
            "blobs", "users", "access_keys", "policies", "dist_tags"} <= tables


def test_downgrade_to_base_and_back(tmp_path):
    url = fresh_database_url(tmp_path)
    env = clean_env(ARCA_DATABASE_URL=url, ARCA_DATA_DIR=str(tmp_path))
    for args in (["upgrade", "head"], ["downgrade", "base"], ["upgrade", "head"], ["check"]):
        proc = subprocess.run([ALEMBIC, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stdout + proc.stderr
