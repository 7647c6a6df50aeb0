"""The README's run command installs only the project's own dependencies (no test extra): every
third-party module that app/ imports must be declared there, or come with a declared one."""

from __future__ import annotations

import ast
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Imported directly, installed by a declared dependency: uvicorn → h11, starlette → anyio, botocore → urllib3.
TRANSITIVE = {"h11": "uvicorn", "anyio": "starlette", "urllib3": "botocore", "markupsafe": "jinja2"}
MODULE_OF = {"python-multipart": "python_multipart", "psycopg[binary]": "psycopg", "SQLAlchemy": "sqlalchemy",
             "prometheus_client": "prometheus_client", "jinja2": "jinja2", "defusedxml": "defusedxml",
             "argon2-cffi": "argon2", "markdown-it-py": "markdown_it", "PyYAML": "yaml"}


def _declared() -> set[str]:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    names = set()
    for dep in deps:
        name = dep.split(">")[0].split("=")[0].split("<")[0].split(";")[0].strip()
        names.add(MODULE_OF.get(name, name.lower().replace("-", "_").split("[")[0]))
    return names


def _imported() -> set[str]:
    found = set()
    for path in (ROOT / "app").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add(node.module.split(".")[0])
    return {m for m in found if m != "app" and m not in sys.stdlib_module_names}


def test_every_runtime_import_is_a_declared_dependency():
    declared = _declared()
    missing = sorted(m for m in _imported() if m not in declared and TRANSITIVE.get(m) not in declared)
    assert missing == [], f"add to [project].dependencies in pyproject.toml: {missing}"
