"""What a database holds, as its own dump tool writes it: SQLite's `.dump` (iterdump) or `pg_dump`
(data and schema), for tests that look for what must not be there (plaintext secrets)."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url


def dump(url: str) -> str:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        with sqlite3.connect(parsed.database) as conn:
            return "\n".join(conn.iterdump())
    pg_dump = shutil.which("pg_dump") or "/usr/lib/postgresql/15/bin/pg_dump"
    dsn = parsed.set(drivername="postgresql").render_as_string(hide_password=False)
    return subprocess.run([pg_dump, "--no-owner", dsn], capture_output=True, text=True, check=True,
                          timeout=120).stdout


def scalar(url: str, sql: str):
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(text(sql)).scalar()
    finally:
        engine.dispose()


def rows(url: str, sql: str) -> list[tuple]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(text(sql))]
    finally:
        engine.dispose()
