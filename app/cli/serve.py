"""`arca serve`: run the server (uvicorn, one or more worker processes on one listening socket)."""

from __future__ import annotations

import argparse
import socket

import uvicorn
from sqlalchemy.engine import make_url
from uvicorn.config import LOGGING_CONFIG
from uvicorn.supervisors import Multiprocess

from app.config import get_settings, load_secret_keys, share_metrics_dir
from app.db.session import upgrade


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="arca serve", description="Run the Arca server.")
    settings = get_settings()
    p.add_argument("--host", default=settings.host, help="address to listen on (ARCA_HOST)")
    p.add_argument("--port", type=int, default=settings.port,
                   help="port (ARCA_PORT); 0 lets the kernel choose, and the line printed names it")
    p.add_argument("--workers", type=int, default=settings.workers, help="worker processes (ARCA_WORKERS)")
    p.add_argument("--log-level", default=settings.log_level)
    args = p.parse_args(argv)

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(settings.database_url, load_secret_keys(settings))  # once, before any worker starts
    share_metrics_dir(settings.data_dir)
    sock = _listen(args.host, args.port)
    host, port = sock.getsockname()[:2]
    url = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
    # The bound port is printed (also for --port 0, where the kernel picks it) before serving.
    print(f"Arca serving on {url}  (data: {settings.data_dir}, database: {_safe_url(settings.database_url)}, "
          f"blobs: {settings.blob_store})", flush=True)
    print("First administrator:  arca admin create-user admin --admin && arca admin create-access-key admin",
          flush=True)
    config = uvicorn.Config("app.main:create_app", factory=True, host=host, port=port, workers=args.workers,
                            log_level=args.log_level, proxy_headers=False, timeout_keep_alive=30,
                            access_log=False, http="app.http_protocol:ReasonPhraseH11Protocol",
                            log_config=_log_config(args.log_level))
    server = uvicorn.Server(config)
    try:
        if args.workers > 1:
            Multiprocess(config, sockets=[sock]).run()
        else:
            server.run(sockets=[sock])
    except KeyboardInterrupt:
        pass
    return 0


def _listen(host: str, port: int):
    """The listening socket, made here rather than by uvicorn: with protocol IPPROTO_TCP (uvicorn's
    own has protocol 0, and asyncio then never sets TCP_NODELAY on accepted connections, so a
    response split across writes waits for the client's delayed ACK), and bound before the port
    is announced, so `--port 0` prints the port the kernel chose."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise SystemExit(f"arca serve: cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def _log_config(level: str) -> dict:
    """uvicorn's loggers plus Arca's: one line per request from arca.request (JSON with ARCA_LOG_FORMAT=json)."""
    cfg = {**LOGGING_CONFIG, "formatters": dict(LOGGING_CONFIG["formatters"]),
           "handlers": dict(LOGGING_CONFIG["handlers"]), "loggers": dict(LOGGING_CONFIG["loggers"])}
    cfg["formatters"]["arca"] = {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}
    if get_settings().log_format == "json":
        cfg["formatters"]["arca"] = {"format": "%(message)s"}
    cfg["handlers"]["arca"] = {"class": "logging.StreamHandler", "formatter": "arca", "stream": "ext://sys.stderr"}
    cfg["loggers"]["arca"] = {"handlers": ["arca"], "level": level.upper(), "propagate": False}
    return cfg


def _safe_url(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)
