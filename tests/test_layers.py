"""The layering of app/ is a test: doors (formats/, api/, web/, upstream/) reach the database only
through services; services and the domain know no HTTP framework; storage knows no models; format
codecs are pure; only config.py reads the environment; and no import cycle exists, counting
imports inside functions (only `if TYPE_CHECKING:` imports are left out: they never run).

Each rule is checked over every module's imports, read with `ast` (nothing is imported)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

APP = Path(__file__).resolve().parents[1] / "app"
DOORS = ("app.formats", "app.api", "app.web", "app.upstream", "app.importers")
FORMATS = ("maven", "npm", "pypi", "generic")


def module_name(path: Path, root: Path = APP) -> str:
    rel = path.relative_to(root.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def imports_of(source: str, module: str, is_package: bool) -> list[tuple[str, int]]:
    """(imported name, line) for every import statement that can run: top level or in a function."""
    found: list[tuple[str, int]] = []

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child.test):
                for sub in child.orelse:
                    visit(sub)
                continue
            if isinstance(child, ast.Import):
                found.extend((alias.name, child.lineno) for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    pkg = module.split(".") if is_package else module.split(".")[:-1]
                    pkg = pkg[: len(pkg) - (child.level - 1)]
                    base = ".".join(pkg + ([base] if base else []))
                found.append((base, child.lineno))
                found.extend((f"{base}.{alias.name}", child.lineno) for alias in child.names)
            visit(child)

    visit(ast.parse(source))
    return found


def import_graph(root: Path = APP) -> dict[str, dict[str, int]]:
    """module -> {imported module of the tree: line}. `from a import b` counts as importing
    a.b when that is a module, else a; importing a module also runs its parent packages."""
    files = {module_name(p, root): p for p in root.rglob("*.py")}
    graph: dict[str, dict[str, int]] = {}
    for mod, path in files.items():
        edges: dict[str, int] = {}
        for name, line in imports_of(path.read_text(), mod, path.name == "__init__.py"):
            target = name if name in files else None
            if target is None:
                continue
            parts = target.split(".")
            for i in range(1, len(parts) + 1):  # the module and the packages above it
                prefix = ".".join(parts[:i])
                if prefix in files and prefix != mod and not mod.startswith(prefix + "."):
                    edges.setdefault(prefix, line)
        graph[mod] = edges
    return graph


def external_imports(root: Path = APP) -> dict[str, list[tuple[str, int]]]:
    """module -> every name it imports (of the tree or not)."""
    out = {}
    for path in root.rglob("*.py"):
        mod = module_name(path, root)
        out[mod] = imports_of(path.read_text(), mod, path.name == "__init__.py")
    return out


def cycles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def strong(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, {}):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            strong(v)
    return out


def _within(mod: str, *prefixes: str) -> bool:
    return any(mod == p or mod.startswith(p + ".") for p in prefixes)


def violations(imports: dict[str, list[tuple[str, int]]], where: tuple[str, ...],
               forbidden: tuple[str, ...], allowed: tuple[str, ...] = ()) -> list[str]:
    """One line per offending import statement (`module:line imports name`)."""
    out: dict[tuple[str, int], str] = {}
    for mod, names in sorted(imports.items()):
        if not _within(mod, *where):
            continue
        for name, line in names:
            if _within(name, *forbidden) and not _within(name, *allowed):
                out.setdefault((mod, line), f"{mod}:{line} imports {name}")
    return list(out.values())


# ---- the rules -------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def imports():
    return external_imports()


def test_doors_reach_the_database_only_through_services(imports):
    assert violations(imports, DOORS, ("app.db", "sqlalchemy")) == []


def test_services_and_domain_know_no_http_framework(imports):
    assert violations(imports, ("app.services", "app.domain"), ("starlette", "uvicorn")) == []


def test_storage_knows_no_models(imports):
    assert violations(imports, ("app.storage",), ("app.db", "sqlalchemy", "app.services")) == []


def test_domain_imports_nothing_else_of_ours(imports):
    assert violations(imports, ("app.domain",), ("app",), allowed=("app.domain",)) == []


def test_format_codecs_are_pure(imports):
    """Everything in a format package but routes.py: the domain, hashing and its own format's
    codec modules; no I/O layer, no HTTP framework."""
    problems = []
    for fmt in FORMATS:
        for path in (APP / "formats" / fmt).glob("*.py"):
            if path.stem == "routes":
                continue
            mod = module_name(path)
            for name, line in imports[mod]:
                foreign = _within(name, "app") and not _within(name, "app.domain", "app.storage.base",
                                                              f"app.formats.{fmt}")
                if foreign or name == f"app.formats.{fmt}.routes" or _within(
                        name, "starlette", "sqlalchemy", "httpx", "boto3", "botocore"):
                    problems.append(f"{mod}:{line} imports {name}")
    assert problems == []


def test_upstream_and_importers_use_codecs_never_routes(imports):
    routes = tuple(f"app.formats.{f}.routes" for f in FORMATS) + ("app.formats.registry",)
    assert violations(imports, ("app.upstream", "app.importers"), routes) == []


def test_only_config_reads_the_environment():
    readers = sorted(module_name(p) for p in APP.rglob("*.py")
                     if "os.environ" in p.read_text() or "getenv(" in p.read_text())
    assert readers == ["app.config"]


def test_no_import_cycles():
    found = cycles(import_graph())
    assert found == [], "\n".join(" <-> ".join(c) for c in found)


# ---- the checker itself catches what it claims to -------------------------------------------------

def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "app"
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_checker_sees_cycles_through_function_level_imports(tmp_path):
    root = _tree(tmp_path, {"__init__.py": "", "a.py": "from app import b\n",
                            "b.py": "def f():\n    from app.a import x\n"})
    assert cycles(import_graph(root)) == [["app.a", "app.b"]]


def test_checker_ignores_type_checking_imports_only(tmp_path):
    root = _tree(tmp_path, {"__init__.py": "", "a.py": "from app import b\n",
                            "b.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from app.a import x\n"})
    assert cycles(import_graph(root)) == []


def test_checker_finds_forbidden_imports_anywhere(tmp_path):
    root = _tree(tmp_path, {"__init__.py": "", "api/__init__.py": "",
                            "api/ops.py": "def op():\n    from sqlalchemy import select\n"})
    assert violations(external_imports(root), DOORS, ("app.db", "sqlalchemy")) == [
        "app.api.ops:2 imports sqlalchemy"]
