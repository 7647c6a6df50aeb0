"""`arca admin migrate-db --to postgresql+psycopg://...`: a SQLite installation's metadata moved to
PostgreSQL (the blobs stay where they are).

The target gets its schema from the same alembic revisions as any Arca database; it must be empty
(a migration never merges two installations: that is `export` / `import-domain`). Every table is
then copied in dependency order (parents first, rows in primary-key order, in batches) inside ONE
target transaction, read from one SQLite read transaction (a consistent snapshot even if a server
still writes); the counts are compared table by table and the sequences set past the copied ids
before it commits. An interrupted run leaves the target as empty as it found it, so it is simply
run again."""

from __future__ import annotations

from typing import Callable

from sqlalchemy import JSON, MetaData, func, inspect, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from app.db.models import Base
from app.db.session import make_engine, upgrade
from app.domain.errors import Conflict, DatabaseUnavailable, ValidationError
from app.services.context import Arca

BATCH = 1000
# Tables whose rows the revisions themselves create (0009 seeds the revocation epoch): a freshly
# migrated target holds them, so they do not make it "not empty", and the copy replaces them.
SEEDED_BY_REVISIONS = ("identity_epoch",)


def _copy_metadata() -> MetaData:
    """The models' tables, with JSON columns storing Python None as SQL NULL (as the ORM wrote them)
    rather than the JSON literal null."""
    meta = MetaData()
    for table in Base.metadata.sorted_tables:
        copy = table.to_metadata(meta)
        for col in copy.columns:
            if isinstance(col.type, JSON):
                col.type = JSON(none_as_null=True)
    return meta


def check_target_url(url: str) -> str:
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ValidationError("--to must be a database URL, e.g. postgresql+psycopg://user:password@host/arca") from None
    if parsed.get_backend_name() != "postgresql":
        raise ValidationError(f"migrate-db moves to PostgreSQL, not {parsed.get_backend_name()!r}: "
                              "--to postgresql+psycopg://user:password@host/arca")
    if parsed.drivername == "postgresql":  # psycopg 3 is what Arca ships with, not psycopg2
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def _refuse_non_empty(engine, tables) -> None:
    present = set(inspect(engine).get_table_names())
    with engine.connect() as conn:
        for t in tables:
            if t.name in present and t.name not in SEEDED_BY_REVISIONS:
                n = conn.execute(select(func.count()).select_from(t)).scalar_one()
                if n:
                    raise Conflict(f"The target database is not empty ({t.name} has {n} rows): migrate-db fills "
                                   "only an empty database; use a new one")


def _reset_sequences(conn, tables) -> None:
    for t in tables:
        col = t.autoincrement_column
        if col is None:
            continue
        seq = conn.execute(text("SELECT pg_get_serial_sequence(:t, :c)"), {"t": t.name, "c": col.name}).scalar()
        if seq:
            conn.execute(text(f'SELECT setval(:s, COALESCE((SELECT MAX("{col.name}") FROM "{t.name}"), 0) + 1, false)'),
                         {"s": seq})


def migrate_db(arca: Arca, target_url: str, *, on_table: Callable[[str, int], None] | None = None,
               on_rows: Callable[[int], None] | None = None) -> dict:
    """Copy this (SQLite) installation's database into the empty PostgreSQL database `target_url`."""
    if arca.db.engine.dialect.name != "sqlite":
        raise ValidationError("migrate-db moves a SQLite installation; this one's ARCA_DATABASE_URL is "
                              f"{arca.db.engine.dialect.name}")
    url = check_target_url(target_url)
    tables = _copy_metadata().sorted_tables
    target = make_engine(url)
    try:
        try:
            _refuse_non_empty(target, tables)
            upgrade(url)
        except SQLAlchemyError as exc:
            raise DatabaseUnavailable(f"The target database cannot be used: {_first_line(exc)}") from None
        copied: dict[str, int] = {}
        try:
            with arca.db.read_engine.connect() as src, src.begin(), target.begin() as dst:
                for t in tables:
                    total = src.execute(select(func.count()).select_from(t)).scalar_one()
                    if on_table:
                        on_table(t.name, total)
                    order = list(t.primary_key.columns)
                    if t.name in SEEDED_BY_REVISIONS:
                        dst.execute(t.delete())  # the revision's seed row, replaced by the source's
                    n = 0
                    for chunk in src.execute(select(t).order_by(*order)).mappings().partitions(BATCH):
                        dst.execute(t.insert(), [dict(r) for r in chunk])
                        n += len(chunk)
                        if on_rows:
                            on_rows(len(chunk))
                    there = dst.execute(select(func.count()).select_from(t)).scalar_one()
                    if not (n == total == there):
                        raise Conflict(f"{t.name}: {total} rows in SQLite, {n} copied, {there} in PostgreSQL; "
                                       "nothing was committed")
                    copied[t.name] = n
                _reset_sequences(dst, tables)
        except SQLAlchemyError as exc:
            raise DatabaseUnavailable(f"The copy failed and was rolled back ({_first_line(exc)}); the target is "
                                      "empty again: fix the cause and run migrate-db again") from None
    finally:
        target.dispose()
    return {"from": "sqlite", "to": make_url(url).render_as_string(hide_password=True), "tables": copied,
            "rows": sum(copied.values()), "ok": True}


def _first_line(exc: SQLAlchemyError) -> str:
    return str(getattr(exc, "orig", None) or exc).strip().splitlines()[0][:300]
