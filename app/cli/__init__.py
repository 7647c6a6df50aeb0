"""`arca`: serve, local administration, login, and the aws-style control-plane operations.

Each verb lives in its own module and is imported only when used, so `arca --version` or an API
call does not load the server."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "serve":
        from app.cli import serve

        return serve.main(argv[1:])
    if argv and argv[0] == "admin":
        from app.cli import admin

        return admin.main(argv[1:])
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
