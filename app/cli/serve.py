"""`arca serve`: run the server (uvicorn, one or more worker processes on one listening socket)."""

from __future__ import annotations

import argparse
import dataclasses
import multiprocessing
import socket
from concurrent.futures import ProcessPoolExecutor

import uvicorn
from uvicorn.supervisors import Multiprocess

from app.config import (LOG_LEVELS, ensure_data_dir, get_settings, load_secret_keys, masked, parse_addresses,
                        share_metrics_dir)
from app.observability import logs


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="arca serve", description="Run the Arca server.")
    settings = get_settings()
    p.add_argument("--host", default=settings.host, help="address to listen on (ARCA_HOST)")
    p.add_argument("--port", type=int, default=settings.port,
                   help="port (ARCA_PORT); 0 lets the kernel choose, and the line printed names it")
    p.add_argument("--workers", type=int, default=settings.workers, help="worker processes (ARCA_WORKERS)")
    p.add_argument("--log-level", default=settings.log_level, choices=LOG_LEVELS)
    p.add_argument("--proxy-headers", action="store_true", default=settings.proxy_headers,
                   help="believe X-Forwarded-For/-Proto from a proxy on this host (ARCA_PROXY_HEADERS)")
    p.add_argument("--forwarded-allow-ips", type=_addresses, default=settings.forwarded_allow_ips,
                   metavar="ADDRESSES", help="the proxies whose X-Forwarded-For/-Proto are believed: addresses "
                                             "and networks, comma-separated, or '*' (ARCA_FORWARDED_ALLOW_IPS)")
    args = p.parse_args(argv)
    # Whom to believe about the client's address and scheme; nobody unless told (uvicorn's proxy headers).
    trusted = dataclasses.replace(settings, proxy_headers=args.proxy_headers,
                                  forwarded_allow_ips=args.forwarded_allow_ips).trusted_proxies

    ensure_data_dir(settings)
    logs.configure(args.log_level, settings.log_format)  # before the migration: alembic logs too
    # Once, before any worker starts. With several workers this process only supervises them: the
    # upgrade runs in a child of its own, so the supervisor never holds SQLAlchemy and alembic
    # (about 40 MiB that no request would use).
    upgrade_args = (settings.database_url, load_secret_keys(settings), args.log_level, settings.log_format)
    if args.workers > 1:
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as child:
            child.submit(_upgrade, *upgrade_args).result()
    else:
        _upgrade(*upgrade_args)
    share_metrics_dir(settings.data_dir)
    sock = _listen(args.host, args.port)
    host, port = sock.getsockname()[:2]
    url = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
    # The bound port is printed (also for --port 0, where the kernel picks it) before serving.
    shown = masked("ARCA_DATABASE_URL", settings.database_url)
    logs.announce(f"Arca serving on {url}  (data: {settings.data_dir}, database: {shown}, "
                  f"blobs: {settings.blob_store})", settings.log_format)
    logs.announce("First administrator:  arca admin create-user admin --admin && arca admin create-access-key admin",
                  settings.log_format)
    config = uvicorn.Config("app.main:create_app", factory=True, host=host, port=port, workers=args.workers,
                            log_level=args.log_level, proxy_headers=bool(trusted),
                            forwarded_allow_ips=list(trusted) or None, timeout_keep_alive=30,
                            access_log=False, http="app.http_protocol:ReasonPhraseProtocol", loop="uvloop",
                            log_config=logs.logging_config(args.log_level, settings.log_format))
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


def _addresses(text: str) -> tuple[str, ...]:
    try:
        return parse_addresses(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _upgrade(url: str, secret_keys: list[str], log_level: str, log_format: str) -> None:
    from app.db.session import upgrade

    logs.configure(log_level, log_format)  # in a child too: alembic's lines are logged as in the parent
    upgrade(url, secret_keys)
