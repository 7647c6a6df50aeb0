"""`arca`: serve, local administration, and the aws-style control-plane operations."""

from __future__ import annotations

import argparse
import json
import os
import sys


def _serve(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="arca serve", description="Run the Arca server.")
    p.add_argument("--host", default=os.environ.get("ARCA_HOST", "127.0.0.1"))
    p.add_argument("--port", type=int, default=int(os.environ.get("ARCA_PORT", "8080")))
    p.add_argument("--workers", type=int, default=int(os.environ.get("ARCA_WORKERS", "1")))
    p.add_argument("--log-level", default=os.environ.get("ARCA_LOG_LEVEL", "info"))
    args = p.parse_args(argv)

    import uvicorn
    from uvicorn.supervisors import Multiprocess

    from app.config import get_settings
    from app.db.session import upgrade

    settings = get_settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(settings.database_url)  # once, before any worker starts
    _prepare_metrics_dir(settings.data_dir)
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
    import socket

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


def _prepare_metrics_dir(data_dir) -> None:
    """prometheus_client's multiprocess mode: every worker writes its samples under one fresh dir."""
    import shutil
    import tempfile

    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        base = data_dir / "metrics"
        base.mkdir(parents=True, exist_ok=True)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="run-", dir=base)
    path = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    for entry in os.listdir(path):
        shutil.rmtree(os.path.join(path, entry), ignore_errors=True) if os.path.isdir(
            os.path.join(path, entry)) else os.unlink(os.path.join(path, entry))


def _log_config(level: str) -> dict:
    """uvicorn's loggers plus Arca's: one line per request from arca.request (JSON with ARCA_LOG_FORMAT=json)."""
    from uvicorn.config import LOGGING_CONFIG

    cfg = {**LOGGING_CONFIG, "formatters": dict(LOGGING_CONFIG["formatters"]),
           "handlers": dict(LOGGING_CONFIG["handlers"]), "loggers": dict(LOGGING_CONFIG["loggers"])}
    cfg["formatters"]["arca"] = {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}
    if os.environ.get("ARCA_LOG_FORMAT", "").lower() == "json":
        cfg["formatters"]["arca"] = {"format": "%(message)s"}
    cfg["handlers"]["arca"] = {"class": "logging.StreamHandler", "formatter": "arca", "stream": "ext://sys.stderr"}
    cfg["loggers"]["arca"] = {"handlers": ["arca"], "level": level.upper(), "propagate": False}
    return cfg


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def _admin(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="arca admin", description="Local administration (runs against the database).")
    sub = p.add_subparsers(dest="cmd", required=True)
    cu = sub.add_parser("create-user", help="create a user")
    cu.add_argument("name")
    cu.add_argument("--admin", action="store_true", help="the user may do everything in every domain")
    ck = sub.add_parser("create-access-key", help="create an access key (AWS_ACCESS_KEY_ID/SECRET) for a user")
    ck.add_argument("name")
    sub.add_parser("migrate", help="upgrade the database schema to the newest revision")
    gc = sub.add_parser("gc", help="delete blobs that no asset references (after a grace period)")
    gc.add_argument("--grace-seconds", type=int, default=3600,
                    help="never collect a blob younger than this (an upload may be in flight)")
    gc.add_argument("--dry-run", action="store_true")
    sub.add_parser("fsck", help="report assets whose blob is missing or corrupt (hashes re-checked)")
    ms = sub.add_parser("migrate-storage", help="copy every blob to another blob store (resumable, verified)")
    ms.add_argument("--to", required=True, help="target, e.g. s3://bucket/prefix")
    sp = sub.add_parser("set-password", help="set a user's web console password (read from stdin or prompted)")
    sp.add_argument("name")
    sp.add_argument("--password-stdin", action="store_true")
    cw = sub.add_parser("create-webhook", help="POST package version events of a domain to a URL")
    cw.add_argument("--domain", required=True)
    cw.add_argument("--url", required=True)
    cw.add_argument("--secret", help="HMAC-SHA256 key for the X-Arca-Signature-256 header")
    cw.add_argument("--filter", help="format=maven,repository=libs,namespace=...,package=...")
    lw = sub.add_parser("list-webhooks")
    lw.add_argument("--domain")
    dw = sub.add_parser("delete-webhook")
    dw.add_argument("id", type=int)
    au = sub.add_parser("audit", help="read the audit trail")
    au.add_argument("--since", help="ISO 8601 time, e.g. 2026-11-27T00:00:00Z")
    au.add_argument("--domain")
    au.add_argument("--principal", help="user name or ARN")
    au.add_argument("--limit", type=int, default=1000)
    au.add_argument("--output", choices=["json", "text"], default="text")
    args = p.parse_args(argv)

    from app.config import get_settings
    from app.domain.errors import ArcaError
    from app.services import identity
    from app.services.context import Arca

    arca = Arca.from_settings(get_settings(), migrate=True)
    try:
        if args.cmd == "create-user":
            out = identity.create_user(arca, args.name, admin=args.admin)
        elif args.cmd == "create-access-key":
            out = identity.create_access_key(arca, args.name)
        elif args.cmd == "gc":
            from app.storage.maintenance import gc as run_gc

            out = run_gc(arca, grace_seconds=args.grace_seconds, dry_run=args.dry_run)
        elif args.cmd == "fsck":
            from app.storage.maintenance import fsck

            out = fsck(arca)
            print(json.dumps(out, indent=4, default=str))
            return 0 if out.get("ok") else 1
        elif args.cmd == "set-password":
            import getpass

            password = sys.stdin.readline().rstrip("\n") if args.password_stdin else getpass.getpass("Password: ")
            out = identity.set_password(arca, args.name, password)
        elif args.cmd in ("create-webhook", "list-webhooks", "delete-webhook"):
            from app.observability import webhooks

            if args.cmd == "create-webhook":
                out = webhooks.create_webhook(arca, args.domain, args.url, args.secret,
                                              webhooks.parse_filter(args.filter))
            elif args.cmd == "list-webhooks":
                out = webhooks.list_webhooks(arca, args.domain)
            else:
                out = webhooks.delete_webhook(arca, args.id)
        elif args.cmd == "audit":
            return _audit(arca, args)
        elif args.cmd == "migrate-storage":
            from app.storage.maintenance import migrate_storage

            out = migrate_storage(arca, args.to)
        else:
            out = {"migrated": True}
    except ArcaError as exc:
        print(f"arca admin {args.cmd}: {exc.message}", file=sys.stderr)
        return 1
    print(json.dumps(out, indent=4, default=str))
    return 0


def _audit(arca, args) -> int:
    from datetime import datetime

    from app.observability.webhooks import query_audit

    since = datetime.fromisoformat(args.since.replace("Z", "+00:00")) if args.since else None
    rows = query_audit(arca, since=since, domain=args.domain, principal=args.principal, limit=args.limit)
    if args.output == "json":
        print(json.dumps(rows, indent=4))
    else:
        for r in rows:
            print(f"{r['time']}  {r['principal'] or '-'}  {r['action']}  {r['resourceType']}:{r['resource']}"
                  f"  ip={r['sourceIp'] or '-'}  request={r['requestId'] or '-'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "serve":
        return _serve(argv[1:])
    if argv and argv[0] == "admin":
        return _admin(argv[1:])
    if argv and argv[0] == "login":
        from app.login import main as login_main

        return login_main(argv[1:])
    if argv and argv[0] in ("--version", "version"):
        from app import __version__

        print(f"arca {__version__}")
        return 0
    from app.cli_ops import run_operation

    return run_operation(argv)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
