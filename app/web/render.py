"""Jinja2 environment (autoescaping on for every template) and the console's response headers."""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from pathlib import Path
from urllib.parse import quote, urlencode

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.responses import HTMLResponse

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"

# No script runs in the console at all: even a missed escape cannot execute. Images may come from
# https (rendered READMEs show their badges and screenshots, as the public registries do).
SECURITY_HEADERS = {
    "Content-Security-Policy": ("default-src 'none'; script-src 'none'; style-src 'self'; img-src 'self' data: https:; "
                                "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}


def human_size(n) -> str:
    n = int(n or 0)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def when(value) -> str:
    if not isinstance(value, datetime):
        return "" if value is None else str(value)
    return value.strftime("%Y-%m-%d %H:%M UTC")


def _path(*parts: str) -> str:
    return "/ui/" + "/".join(quote(p, safe="") for p in parts)


def domain_url(domain: str, *rest: str) -> str:
    return _path("d", domain, *rest)


def repo_url(domain: str, repo: str, *rest: str, **query) -> str:
    q = {k: v for k, v in query.items() if v not in (None, "")}
    return _path("d", domain, "r", repo, *rest) + ("?" + urlencode(q) if q else "")


def package_url(domain: str, repo: str, pkg: dict, **query) -> str:
    return repo_url(domain, repo, "package", format=pkg["format"], namespace=pkg.get("namespace") or None,
                    name=pkg["name"], **query)


def version_url(domain: str, repo: str, pkg: dict, version: str, **query) -> str:
    return repo_url(domain, repo, "version", format=pkg["format"], namespace=pkg.get("namespace") or None,
                    name=pkg["name"], version=version, **query)


def with_page(url_base: str, params: dict, page: int) -> str:
    q = {k: v for k, v in params.items() if v not in (None, "") and k != "page"}
    q["page"] = page
    return url_base + "?" + urlencode(q)


@lru_cache(maxsize=1)
def env() -> Environment:
    e = Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=select_autoescape(["html"], default=True),
                    trim_blocks=True, lstrip_blocks=True)
    e.filters.update(size=human_size, when=when)
    e.globals.update(domain_url=domain_url, repo_url=repo_url, package_url=package_url,
                     version_url=version_url, with_page=with_page)
    return e


def html(template: str, context: dict, status: int = 200, headers: dict | None = None) -> HTMLResponse:
    body = env().get_template(template).render(**context)
    return HTMLResponse(body, status_code=status, headers={**SECURITY_HEADERS, **(headers or {})})
