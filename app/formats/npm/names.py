"""npm's own naming rules (validate-npm-package-name, for new packages) and SemVer 2.0.

Pure functions: no web, no SQL. Every rule raises ValidationError with a one-line reason,
so the registry answers 400 with the same words npm itself would use."""

from __future__ import annotations

import re
from urllib.parse import quote

from app.domain.errors import ValidationError

MAX_NAME = 214
MAX_VERSION = 256
EXCLUDED = {"node_modules", "favicon.ico"}
# Node's core modules as validate-npm-package-name lists them: taken for new packages.
BUILTINS = frozenset("""
_http_agent _http_client _http_common _http_incoming _http_outgoing _http_server _stream_duplex
_stream_passthrough _stream_readable _stream_transform _stream_wrap _stream_writable _tls_common _tls_wrap
assert assert/strict async_hooks buffer child_process cluster console constants crypto dgram
diagnostics_channel dns dns/promises domain events fs fs/promises http http2 https inspector
inspector/promises module net os path path/posix path/win32 perf_hooks process punycode querystring
readline readline/promises repl stream stream/consumers stream/promises stream/web string_decoder sys
timers timers/promises tls trace_events tty url util util/types v8 vm wasi worker_threads zlib
node:sea node:sqlite node:test node:test/reporters""".split())
_SCOPED = re.compile(r"^(?:@([^/]+?)/)?([^/]+?)$")
_SPECIAL = re.compile(r"[~'!()*]")
# What encodeURIComponent leaves alone.
_URI_SAFE = "-_.!~*'()"

_NUM = r"0|[1-9][0-9]*"  # ASCII digits only: \d would also take other scripts' digits
_PRE_ID = r"(?:0|[1-9][0-9]*|[0-9]*[A-Za-z-][0-9A-Za-z-]*)"
SEMVER = re.compile(
    rf"^({_NUM})\.({_NUM})\.({_NUM})"
    rf"(?:-({_PRE_ID}(?:\.{_PRE_ID})*))?"
    r"(?:\+([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?$")
_TAG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def _uri_safe(text: str) -> bool:
    return quote(text, safe=_URI_SAFE) == text


def name_problem(name: object) -> str | None:
    """The first reason npm would refuse `name` for a new package, or None."""
    if not isinstance(name, str):
        return "name must be a string"
    if not name:
        return "name length must be greater than zero"
    if name.startswith("."):
        return "name cannot start with a period"
    if name.startswith("-"):
        return "name cannot start with a hyphen"
    if name.startswith("_"):
        return "name cannot start with an underscore"
    if name.strip() != name:
        return "name cannot contain leading or trailing spaces"
    if name.lower() in EXCLUDED:
        return f"{name} is not a valid package name"
    if name.lower() in BUILTINS:
        return f"{name} is a core module name"
    if len(name) > MAX_NAME:
        return f"name can no longer contain more than {MAX_NAME} characters"
    if name.lower() != name:
        return "name can no longer contain capital letters"
    if _SPECIAL.search(name.split("/")[-1]):
        return "name can no longer contain special characters (\"~'!()*\")"
    if not _uri_safe(name):
        m = _SCOPED.match(name)
        if m and m.group(1) is not None:
            scope, bare = m.group(1), m.group(2)
            if bare.startswith((".", "_")):
                return "name cannot start with a period or an underscore after the scope"
            if _uri_safe(scope) and _uri_safe(bare):
                return None
        return "name can only contain URL-friendly characters"
    return None


def split_name(name: str) -> tuple[str, str]:
    """'@scope/bare' → ('scope', 'bare'); 'bare' → ('', 'bare'). Raises ValidationError."""
    problem = name_problem(name)
    if problem:
        raise ValidationError(f"Invalid package name {name!r}: {problem}")
    if name.startswith("@"):
        scope, _, bare = name[1:].partition("/")
        return scope, bare
    return "", name


def full_name(scope: str, bare: str) -> str:
    return f"@{scope}/{bare}" if scope else bare


def is_semver(version: object) -> bool:
    return isinstance(version, str) and len(version) <= MAX_VERSION and SEMVER.match(version) is not None


def check_version(version: object) -> str:
    if not is_semver(version):
        raise ValidationError(f"Invalid version {version!r}: npm versions must be valid SemVer 2.0 "
                              "(MAJOR.MINOR.PATCH[-prerelease][+build])")
    return version  # type: ignore[return-value]


def check_tag(tag: str) -> str:
    """A dist-tag: a short URL-safe word that is not itself a version (npm refuses those)."""
    if not _TAG.match(tag or "") or SEMVER.match(tag.lstrip("v")) or re.match(r"^v?[0-9]", tag):
        raise ValidationError(f"Invalid dist-tag {tag!r}: a tag is a short word of letters, digits, "
                              "'.', '_' or '-' and must not look like a version")
    return tag


def semver_key(version: str) -> tuple:
    """SemVer precedence as a sort key (build metadata ignored); non-SemVer sorts first."""
    m = SEMVER.match(version)
    if not m:
        return (-1, 0, 0, (0,), version)
    major, minor, patch, pre = int(m.group(1)), int(m.group(2)), int(m.group(3)), m.group(4)
    if pre is None:
        pre_key: tuple = (1,)
    else:
        pre_key = (0, *((0, int(p), "") if p.isdigit() else (1, 0, p) for p in pre.split(".")))
    return (major, minor, patch, pre_key, version)


def is_prerelease(version: str) -> bool:
    m = SEMVER.match(version)
    return bool(m and m.group(4))


def highest(versions) -> str | None:
    """The highest stable version, else the highest prerelease (what `latest` falls back to)."""
    versions = list(versions)
    stable = [v for v in versions if not is_prerelease(v)]
    pool = stable or versions
    return max(pool, key=semver_key) if pool else None
