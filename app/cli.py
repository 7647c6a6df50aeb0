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

    from app.config import get_settings
    from app.db.session import upgrade

    settings = get_settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(settings.database_url)  # once, before any worker starts
    url = f"http://{args.host}:{args.port}"
    print(f"Arca serving on {url}  (data: {settings.data_dir}, database: {_safe_url(settings.database_url)}, "
          f"blobs: {settings.blob_store})", flush=True)
    print("First administrator:  arca admin create-user admin --admin && arca admin create-access-key admin",
          flush=True)
    uvicorn.run("app.main:create_app", factory=True, host=args.host, port=args.port, workers=args.workers,
                log_level=args.log_level, proxy_headers=False, timeout_keep_alive=30)
    return 0


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
