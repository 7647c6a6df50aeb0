"""`arca`: serve, local administration, login, and the aws-style control-plane operations.

Each verb lives in its own module and is imported only when used, so `arca --version` or an API
call does not load the server."""

from __future__ import annotations

import sys

from app.config import SettingError

EXIT_SETTING = 2


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        return _dispatch(argv)
    except SettingError as exc:
        # A setting Arca cannot use stops the command with one line naming it, never a traceback.
        verb = " ".join(argv[:1]) if argv and argv[0] in ("serve", "admin", "config") else ""
        print(f"arca{' ' + verb if verb else ''}: {exc}", file=sys.stderr)
        return EXIT_SETTING


def _dispatch(argv: list[str]) -> int:
    if argv and argv[0] == "serve":
        from app.cli import serve

        return serve.main(argv[1:])
    if argv and argv[0] == "admin":
        from app.cli import admin

        return admin.main(argv[1:])
    if argv and argv[0] == "config":
        from app.cli import config

        return config.main(argv[1:])
    if argv and argv[0] == "login":
        from app.cli import login

        return login.main(argv[1:])
    if argv and argv[0] in ("--version", "version"):
        from app import __version__

        print(f"arca {__version__}")
        return 0
    from app.cli import ops

    return ops.run_operation(argv)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
