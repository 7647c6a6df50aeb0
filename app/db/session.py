"""Engine, sessions and start-up migration."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Iterator

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from app.config import SettingError, load_secret_keys, masked, settings_from_env
from app.db import changes
from app.domain.errors import DatabaseUnavailable

MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"


def make_engine(url: str, *, write: bool = True) -> Engine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 60, "check_same_thread": False}, pool_size=20, max_overflow=20)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # pragma: no cover - trivial
            # pysqlite's own BEGIN handling is disabled so that we can say BEGIN IMMEDIATE:
            # writers then queue on the busy timeout instead of failing on lock upgrade.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=60000")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn):  # pragma: no cover - trivial
            conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

        return engine
    # pre-ping: connections the server dropped (a restart) are replaced, not handed out; connect and
    # pool timeouts: an unreachable database is a prompt error, never a hang.
    return create_engine(url, pool_size=20, max_overflow=20, pool_pre_ping=True, pool_timeout=10,
                         connect_args={"connect_timeout": 5})


def alembic_config(url: str, secret_keys: list[str] | None = None):
    """`secret_keys`: the server keys (current first) for revisions that seal or open secrets."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    if secret_keys:
        cfg.attributes["arca_secret_keys"] = list(secret_keys)
    return cfg


def migration_secret_keys(cfg) -> list[str]:
    """The server keys (current first) a revision seals or opens secrets with: the ones
    `alembic_config` was given (the server's own, at start), or for `alembic upgrade` from a shell
    the ones ARCA_SECRET_KEY / $ARCA_DATA_DIR/secret.key and the previous keys name."""
    keys = cfg.attributes.get("arca_secret_keys")
    return list(keys) if keys else load_secret_keys(settings_from_env())


def upgrade(url: str, secret_keys: list[str] | None = None) -> None:
    """The schema upgraded to the newest revision. A database that cannot be reached, or whose
    schema this release does not know, is a SettingError naming ARCA_DATABASE_URL: at start-up that
    is one line, not a traceback."""
    from alembic import command
    from alembic.util import CommandError

    shown = masked("ARCA_DATABASE_URL", url)
    try:
        with _reachable():
            command.upgrade(alembic_config(url, secret_keys), "head")
    except DatabaseUnavailable as exc:
        reason = str(exc.__cause__.orig if getattr(exc.__cause__, "orig", None) else exc.__cause__)
        raise SettingError(f"ARCA_DATABASE_URL: cannot reach the database {shown}: "
                           f"{reason.strip().splitlines()[0][:300]}") from None
    except CommandError as exc:
        raise SettingError(f"ARCA_DATABASE_URL: cannot upgrade the schema of {shown}: {exc} "
                           "(was it migrated by a newer Arca?)") from None


@contextlib.contextmanager
def _reachable() -> Iterator[None]:
    """Connection-level failures (refused, dropped, shutting down, locked past the busy timeout)
    become DatabaseUnavailable with the driver's first line; other errors pass unchanged."""
    try:
        yield
    except (OperationalError, InterfaceError) as exc:
        reason = str(getattr(exc, "orig", exc) or type(exc).__name__).strip().splitlines()[0][:200]
        raise DatabaseUnavailable(f"The database is unavailable ({reason}); retry shortly") from exc


class Database:
    def __init__(self, url: str, node_dir: Path | None = None):
        """`node_dir`: a directory of this node (the data directory), where its processes share
        what they commit (changes.py)."""
        self.url = url
        self.engine = make_engine(url)
        self.changes = changes.watch_for(url, node_dir)
        self._notify = None if url.startswith("sqlite") else text(changes.NOTIFY_SQL)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        # SQLite: reads take no write lock (deferred BEGIN); PostgreSQL: one engine serves both.
        self.read_engine = make_engine(url, write=False) if url.startswith("sqlite") else self.engine
        self._read_sessions = sessionmaker(self.read_engine, expire_on_commit=False)

    @contextlib.contextmanager
    def session(self) -> Iterator[Session]:
        """One transaction: committed on success, rolled back on any error. A database that
        cannot be reached is DatabaseUnavailable (503), whatever the statement."""
        with _reachable(), self._sessions() as s:
            try:
                yield s
                if self._notify is not None:  # every node's caches learn of it when it commits
                    s.execute(self._notify)
                s.commit()
                self.changes.committed()
            except BaseException:
                with contextlib.suppress(OperationalError, InterfaceError):
                    s.rollback()
                raise

    @contextlib.contextmanager
    def read(self) -> Iterator[Session]:
        """A read-only transaction (never commits). Closing releases it without expiring the
        loaded objects, so callers may read their attributes afterwards."""
        with _reachable(), self._read_sessions() as s:
            yield s

    def dispose(self) -> None:
        self.changes.close()
        self.engine.dispose()
        if self.read_engine is not self.engine:
            self.read_engine.dispose()

    def ping(self) -> None:
        with self.read() as s:
            s.connection().exec_driver_sql("SELECT 1")
