"""Log output for every logger of the process: uvicorn's, alembic's, Arca's own (requests, the
webhook deliverer, admin jobs) and whatever a library logs at WARNING or above.

`ARCA_LOG_FORMAT=json` makes each record one JSON object on one line, with the request id of the
request being served when there is one (the request context travels into worker threads). A
record may carry structured `fields` (`log.info(text, extra={"fields": {...}})`): a JSON line is
then those fields, a text line the message."""

from __future__ import annotations

import json
import logging
import logging.config
import sys
from datetime import datetime, timezone

from app.observability import context

# Loggers that write at the configured level; everything else (httpx, botocore, ...) only from WARNING.
OWN_LOGGERS = ("arca", "alembic")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time (UTC), level, logger, then the record's fields or message,
    the request id when a request is being served, and a traceback as one string."""

    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(record_fields(record, self), default=str, ensure_ascii=False)


def record_fields(record: logging.LogRecord, formatter: logging.Formatter | None = None) -> dict:
    out = {"time": utc_stamp(datetime.fromtimestamp(record.created, timezone.utc)),
           "level": record.levelname.lower(), "logger": record.name}
    fields = getattr(record, "fields", None)
    if isinstance(fields, dict):
        out.update(fields)
    else:
        out["message"] = record.getMessage()
    ri = context.info()
    if ri is not None and ri.request_id and "request_id" not in out:
        out["request_id"] = ri.request_id
    if record.exc_info:
        out["exception"] = (formatter or logging.Formatter()).formatException(record.exc_info)
    return out


def utc_stamp(at: datetime | None = None) -> str:
    """`2026-11-27T01:02:03.456Z`: the time of every JSON line Arca writes."""
    at = at or datetime.now(timezone.utc)
    return at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"


class QuietMigrationContext(logging.Filter):
    """Drops alembic's two lines at every start ("Context impl SQLiteImpl.", "Will assume ... DDL."):
    what a start-up reports is the migrations it ran."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.name.startswith("alembic") and str(record.msg).startswith(("Context impl", "Will assume")))


def logging_config(level: str, fmt: str, quiet_migrations: bool = False) -> dict:
    """A `logging.config.dictConfig` for the whole process (uvicorn takes it as `log_config`, so
    every worker applies it too): uvicorn's loggers, Arca's, alembic's and the root logger.
    `quiet_migrations`: alembic only from WARNING (an admin command need not announce that the
    schema is current)."""
    level = "DEBUG" if level.lower() == "trace" else level.upper()
    if fmt == "json":
        formatters = {name: {"()": "app.observability.logs.JsonFormatter"} for name in ("default", "access", "arca")}
    else:
        formatters = {"default": {"()": "uvicorn.logging.DefaultFormatter", "fmt": "%(levelprefix)s %(message)s",
                                  "use_colors": None},
                      "access": {"()": "uvicorn.logging.AccessFormatter",
                                 "fmt": '%(levelprefix)s %(client_addr)s - "%(request_line)s" %(status_code)s'},
                      "arca": {"format": TEXT_FORMAT}}
    handlers = {name: {"class": "logging.StreamHandler", "formatter": name, "stream": "ext://sys.stderr"}
                for name in ("default", "access", "arca")}
    handlers["arca"]["filters"] = ["quiet_migration_context"]
    loggers = {"uvicorn": {"handlers": ["default"], "level": "INFO", "propagate": False},
               "uvicorn.error": {"level": "INFO"},
               "uvicorn.access": {"handlers": ["access"], "level": "INFO", "propagate": False}}
    for name in OWN_LOGGERS:
        loggers[name] = {"handlers": ["arca"], "level": level, "propagate": False}
    loggers["alembic.runtime.plugins"] = {"level": "WARNING"}  # "setup plugin ..." at every start
    if quiet_migrations:
        loggers["alembic"]["level"] = "WARNING"
    filters = {"quiet_migration_context": {"()": "app.observability.logs.QuietMigrationContext"}}
    return {"version": 1, "disable_existing_loggers": False, "formatters": formatters, "filters": filters,
            "handlers": handlers,
            "loggers": loggers, "root": {"handlers": ["arca"], "level": "WARNING"}}


def configure(level: str, fmt: str, quiet_migrations: bool = False) -> None:
    logging.config.dictConfig(logging_config(level, fmt, quiet_migrations))


def announce(message: str, fmt: str) -> None:
    """A line for whoever started the process (stdout, whatever the log level): as is, or as a JSON
    record of the logger `arca.serve` when logs are JSON, so a log shipper reads every line."""
    if fmt == "json":
        record = logging.LogRecord("arca.serve", logging.INFO, __file__, 0, message, None, None)
        message = JsonFormatter().format(record)
    print(message, file=sys.stdout, flush=True)
