"""`arca admin ...`: local administration on the server host, straight against the database
(bootstraps the first administrator; works without credentials)."""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from datetime import datetime

from pathlib import Path

from app.cli.progress import JobProgress, interrupt_on_sigterm
from app.config import SettingError, get_settings, rotate_key_file
from app.domain.errors import ArcaError
from app import importers
from app.cli.progress import Reporter
from app.observability import context, hooks, logs, webhooks
from app.services import (archive, cleanup, db_migration, iam, identity, jobs, maintenance, revocation, roles,
                          sealing)
from app.services.context import Arca, Principal

# verb -> (help, [(argument, argparse options)], what it does with (arca, args)); principal None is
# the local administrator (the server host's database access is the credential).
IDENTITY_VERBS = {
    "list-users": ("list users", [], lambda a, x: iam.list_users(a, None, max_items=1000)),
    "delete-user": ("delete a user with its keys, policies and group memberships; its tokens die",
                    [("name", {})], lambda a, x: iam.delete_user(a, None, x.name)),
    "list-access-keys": ("list a user's access keys (never their secrets)", [("name", {})],
                         lambda a, x: iam.list_access_keys(a, None, x.name)),
    "update-access-key": ("activate or deactivate an access key (deactivating ends its tokens)",
                          [("name", {}), ("access_key_id", {}), ("--status", {"required": True,
                                                                             "choices": ["Active", "Inactive"]})],
                          lambda a, x: iam.update_access_key(a, None, x.access_key_id, x.status, x.name)),
    "delete-access-key": ("delete an access key (its tokens die)", [("name", {}), ("access_key_id", {})],
                          lambda a, x: iam.delete_access_key(a, None, x.access_key_id, x.name)),
    "put-user-policy": ("set an inline identity policy of a user",
                        [("name", {}), ("policy_name", {}), ("--policy-document", {"required": True})],
                        lambda a, x: iam.put_policy(a, None, "user", x.name, x.policy_name, _doc(x.policy_document))),
    "create-group": ("create a group", [("name", {})], lambda a, x: iam.create_group(a, None, x.name)),
    "add-user-to-group": ("add a user to a group", [("group", {}), ("name", {})],
                          lambda a, x: iam.add_user_to_group(a, None, x.group, x.name)),
    "remove-user-from-group": ("remove a user from a group", [("group", {}), ("name", {})],
                               lambda a, x: iam.remove_user_from_group(a, None, x.group, x.name)),
    "put-group-policy": ("set an inline identity policy of a group",
                         [("group", {}), ("policy_name", {}), ("--policy-document", {"required": True})],
                         lambda a, x: iam.put_policy(a, None, "group", x.group, x.policy_name,
                                                     _doc(x.policy_document))),
    "create-oidc-provider": ("register an OIDC issuer whose tokens may assume roles (trusted publishing)",
                             [("--url", {"required": True}),
                              ("--audience", {"action": "append", "required": True,
                                              "help": "an audience (aud) its tokens must name; repeatable"})],
                             lambda a, x: roles.create_provider(a, None, x.url, x.audience)),
    "create-role": ("create a role assumed with web identity tokens",
                    [("name", {}), ("--trust-policy-document", {"required": True}),
                     ("--max-session-duration", {"type": int}), ("--description", {})],
                    lambda a, x: roles.create_role(a, None, x.name, _doc(x.trust_policy_document),
                                                   description=x.description,
                                                   max_session_duration=x.max_session_duration)),
    "put-role-policy": ("set an inline permissions policy of a role",
                        [("role", {}), ("policy_name", {}), ("--policy-document", {"required": True})],
                        lambda a, x: iam.put_policy(a, None, "role", x.role, x.policy_name, _doc(x.policy_document))),
    "revoke-tokens": ("end every authorization token of a user (or role) issued before now, on every node",
                      [("name", {}), ("--role", {"action": "store_true", "help": "NAME is a role: its sessions too"})],
                      lambda a, x: revocation.revoke_tokens(a, None, x.name, role=x.role)),
}


def _doc(value: str) -> str:
    """A policy document given inline or as file://PATH (as the AWS CLI takes them)."""
    return Path(value[len("file://"):]).read_text() if value.startswith("file://") else value


def main(argv: list[str]) -> int:
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
    lf = sub.add_parser("list-webhook-failures", help="deliveries that ran out of retries (the dead-letter list)")
    lf.add_argument("--domain")
    lf.add_argument("--webhook", type=int, help="a webhook id (see list-webhooks)")
    lf.add_argument("--limit", type=int, default=1000)
    rd = sub.add_parser("redeliver", help="put dead-lettered deliveries back in their webhook's queue")
    rd.add_argument("--webhook", type=int, help="every dead letter of this webhook")
    rd.add_argument("--event", type=int, help="this event (with --webhook: only to that webhook)")
    rd.add_argument("--domain", help="every dead letter of the domain's webhooks")
    rd.add_argument("--all", action="store_true", help="every dead letter")
    au = sub.add_parser("audit", help="read the audit trail")
    au.add_argument("--since", help="ISO 8601 time, e.g. 2026-11-27T00:00:00Z")
    au.add_argument("--domain")
    au.add_argument("--principal", help="user name or ARN")
    au.add_argument("--limit", type=int, default=1000)
    au.add_argument("--output", choices=["json", "text"], default="text")
    rk = sub.add_parser("rotate-secret-key", help="seal every stored secret under a new server key (docs/identity.md)")
    rk.add_argument("--reseal-only", action="store_true",
                    help="write no new key: reseal under the current key what is still sealed under a previous one")
    for verb, (text, arguments, _run) in IDENTITY_VERBS.items():
        vp = sub.add_parser(verb, help=text)
        for name, options in arguments:
            vp.add_argument(name, **options)
    cl = sub.add_parser("cleanup", help="apply the cleanup policies now (all repositories, a domain's, or one)")
    cl.add_argument("--domain")
    cl.add_argument("--repository", help="needs --domain")
    cl.add_argument("--dry-run", action="store_true", help="print what would go and the bytes it frees; change nothing")
    cl.add_argument("--status", action="store_true", help="show the scheduled runner's last run instead")
    im = sub.add_parser("import", help="import packages from another registry's folder or server (idempotent)")
    im.add_argument("--domain", required=True)
    im.add_argument("--repository", required=True)
    im.add_argument("--from", dest="kind", required=True, metavar="KIND",
                    help="pypi-dir, devpi-export, pypi-index, verdaccio-storage, npm-tarballs, npm-registry, "
                         "maven-dir or maven-repo")
    im.add_argument("source", help="a folder, or the URL of the server for pypi-index / npm-registry / maven-repo")
    im.add_argument("--package", action="append", help="only this package (repeatable; npm: @scope/name, "
                    "Maven: groupId:artifactId)")
    im.add_argument("--username", help="for a server that wants Basic credentials (password on stdin)")
    im.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    im.add_argument("--token-stdin", action="store_true", help="read a Bearer token from stdin")
    ex = sub.add_parser("export", help="write a domain's archive (manifest, packages, verified blobs): backup")
    ex.add_argument("--domain", required=True)
    ex.add_argument("--to", required=True, help="a directory or s3://bucket/prefix")
    idm = sub.add_parser("import-domain", help="restore a domain archive into this installation")
    idm.add_argument("--from", dest="source", required=True, help="a directory or s3://bucket/prefix")
    idm.add_argument("--domain", help="restore under this name instead of the archive's")
    md = sub.add_parser("migrate-db", help="copy this SQLite installation's database into an empty PostgreSQL one "
                        "(stop the servers first)")
    md.add_argument("--to", required=True, help="postgresql+psycopg://user:password@host/db (an empty database)")
    args = p.parse_args(argv)
    if getattr(args, "repository", None) and not args.domain:
        p.error("--repository needs --domain")

    settings = get_settings()
    logs.configure(settings.log_level, settings.log_format, quiet_migrations=args.cmd != "migrate")
    arca = Arca.from_settings(settings, migrate=True)
    try:
        if args.cmd == "create-user":
            out = iam.create_user(arca, None, args.name, admin=args.admin)
        elif args.cmd == "create-access-key":
            out = iam.create_access_key(arca, None, args.name)
        elif args.cmd in IDENTITY_VERBS:
            out = IDENTITY_VERBS[args.cmd][2](arca, args)
        elif args.cmd == "rotate-secret-key":
            out = _rotate(arca, new_key=not args.reseal_only)
        elif args.cmd in LONG_JOBS:
            return _long_job(arca, args)
        elif args.cmd == "set-password":
            password = sys.stdin.readline().rstrip("\n") if args.password_stdin else getpass.getpass("Password: ")
            out = identity.set_password(arca, args.name, password)
        elif args.cmd == "list-webhook-failures":
            out = webhooks.list_failures(arca, args.domain, args.webhook, args.limit)
        elif args.cmd == "redeliver":
            out = (webhooks.redeliver_all(arca) if args.all else
                   webhooks.redeliver(arca, args.domain, args.webhook, args.event))
        elif args.cmd in ("create-webhook", "list-webhooks", "delete-webhook"):
            if args.cmd == "create-webhook":
                out = webhooks.create_webhook(arca, args.domain, args.url, args.secret,
                                              webhooks.parse_filter(args.filter))
            elif args.cmd == "list-webhooks":
                out = webhooks.list_webhooks(arca, args.domain)
            else:
                out = webhooks.delete_webhook(arca, args.id)
        elif args.cmd == "audit":
            return _audit(arca, args)
        elif args.cmd == "cleanup":
            return _cleanup(arca, args)
        elif args.cmd == "import":
            return _import(arca, args)
        elif args.cmd == "export":
            return _export(arca, args)
        elif args.cmd == "import-domain":
            return _import_domain(arca, args)
        elif args.cmd == "migrate-db":
            return _migrate_db(arca, args)
        else:
            out = {"migrated": True}
    except ArcaError as exc:
        print(f"arca admin {args.cmd}: {exc.message}", file=sys.stderr)
        return 1
    except (SettingError, OSError) as exc:
        print(f"arca admin {args.cmd}: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(out, indent=4, default=str))
    return 0


LONG_JOBS = ("gc", "fsck", "migrate-storage")


def _long_job(arca, args) -> int:
    """A job that may run for hours: progress on stderr, the report on stdout, Ctrl-C or SIGTERM
    stop it cleanly (exit 130) and running it again carries on."""
    progress = JobProgress(args.cmd)
    interrupt_on_sigterm()
    try:
        if args.cmd == "gc":
            out = maintenance.gc(arca, grace_seconds=args.grace_seconds, dry_run=args.dry_run, progress=progress)
        elif args.cmd == "fsck":
            out = maintenance.fsck(arca, progress=progress)
        else:
            out = maintenance.migrate_storage(arca, args.to, progress=progress)
    except KeyboardInterrupt:
        progress.interrupted()
        return 130
    except ArcaError:
        progress.close()
        raise
    progress.finished(out)
    print(json.dumps(out, indent=4, default=str))
    return 1 if args.cmd == "fsck" and not out.get("ok") else 0


def _rotate(arca: Arca, new_key: bool = True) -> dict:
    """With the key file: a new key (the old one kept in secret.key.previous), then every secret
    resealed under it. With ARCA_SECRET_KEY (or --reseal-only): reseal under the current key what is
    still sealed under a previous one (the operator has put the new key in place)."""
    rotated = new_key and not arca.settings.secret_key_env
    if rotated:
        rotate_key_file(arca.settings)
        arca.reload_secret_keys()
    out = sealing.reseal_all(arca)
    out["newKeyWritten"] = rotated
    out["next"] = ("restart every server: authorization tokens and console sessions signed with the old key end "
                   "then; sealed secrets keep working meanwhile")
    return out


def _audit(arca, args) -> int:
    since = datetime.fromisoformat(args.since.replace("Z", "+00:00")) if args.since else None
    rows = webhooks.query_audit(arca, since=since, domain=args.domain, principal=args.principal, limit=args.limit)
    if args.output == "json":
        print(json.dumps(rows, indent=4))
    else:
        for r in rows:
            print(f"{r['time']}  {r['principal'] or '-'}  {r['action']}  {r['resourceType']}:{r['resource']}"
                  f"  ip={r['sourceIp'] or '-'}  request={r['requestId'] or '-'}")
    return 0


def _cleanup(arca, args) -> int:
    if args.status:
        print(json.dumps(jobs.status(arca), indent=4, default=str))
        return 0
    context.current.set(context.RequestInfo(principal=context_principal(), operation="Cleanup"))
    rep = Reporter()
    with rep.running():
        summary = cleanup.run(arca, domain=args.domain, repository=args.repository, dry_run=args.dry_run,
                              on_item=rep.item, on_repository=lambda d, r, n: rep.task(f"{d}/{r}", n),
                              on_package=rep.advance)
    items = summary.pop("items")
    if args.dry_run and rep.tty:  # the JSON lines were not printed: list what would go here
        summary["items"] = items
    rep.summary(summary)
    return 0


def context_principal() -> str:
    """Who the audit trail names for changes made by `arca admin` on this host."""
    return hooks.CLI_PRINCIPAL


def local_admin() -> Principal:
    """`arca admin` acts on the server host with every permission; the audit trail names it so."""
    return Principal(0, "arca-admin", True, hooks.CLI_PRINCIPAL)


def _import(arca, args) -> int:
    secret = sys.stdin.readline().rstrip("\n") if (args.password_stdin or args.token_stdin) else None
    context.current.set(context.RequestInfo(principal=context_principal(), operation="Import"))
    rep = Reporter()
    with rep.running():
        def outcome(o):
            rep.item(o.as_dict())
            rep.advance()

        summary = importers.run_import(
            arca, local_admin(), args.domain, args.repository, args.kind, args.source,
            packages=set(args.package) if args.package else None, username=args.username,
            password=secret if args.password_stdin else None, token=secret if args.token_stdin else None,
            on_outcome=outcome, on_found=lambda n: rep.task(f"import {args.kind}", n))
    rep.summary(summary)
    return 0 if not summary["problems"] else 2


def _export(arca, args) -> int:
    rep = Reporter()
    with rep.running():
        summary = archive.export_domain(
            arca, args.domain, args.to, on_blobs=lambda n: rep.task(f"export {args.domain}: blobs", n),
            on_blob=lambda sha, outcome: (rep.item({"blob": sha, "result": outcome}), rep.advance()))
    rep.summary(summary)
    return 0 if summary["ok"] else 2


def _import_domain(arca, args) -> int:
    context.current.set(context.RequestInfo(principal=context_principal(), operation="ImportDomain"))
    rep = Reporter()
    with rep.running():
        summary = archive.import_domain(arca, local_admin(), args.source, rename=args.domain,
                                        on_step=lambda what, n: rep.task(f"import-domain: {what}", n),
                                        on_done=lambda entry: (rep.item(entry), rep.advance()))
    rep.summary(summary)
    return 0 if summary["ok"] else 2


def _migrate_db(arca, args) -> int:
    rep = Reporter()
    with rep.running():
        summary = db_migration.migrate_db(
            arca, args.to, on_table=lambda name, n: (rep.task(f"migrate-db: {name}", n),
                                                     rep.item({"table": name, "rows": n})),
            on_rows=rep.advance)
    rep.summary(summary)
    return 0
