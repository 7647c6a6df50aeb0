"""Maven 2 repository layout: what a request path names, validated on the raw (encoded) path.

`{group/as/dirs}/{artifactId}/{version}/{file}`, `{g}/{a}/maven-metadata.xml`,
`{g}/{a}/{base}-SNAPSHOT/maven-metadata.xml`, and `.sha1/.md5/.sha256/.sha512` of each.
Also Maven's version ordering (ComparableVersion), used to sort maven-metadata.xml."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from urllib.parse import unquote

from app.domain.coords import Coordinates
from app.domain.errors import ValidationError

METADATA = "maven-metadata.xml"
CHECKSUMS = {"sha1": "sha1", "md5": "md5", "sha256": "sha256", "sha512": "sha512"}  # suffix -> BlobInfo field
HEX_LEN = {"sha1": 40, "md5": 32, "sha256": 64, "sha512": 128}
MAX_COORD = 255  # CodeArtifact's limit for namespace, package, version and asset names

ID_RE = re.compile(r"[A-Za-z0-9_.\-]+")  # Maven's own groupId/artifactId rule
VERSION_RE = re.compile(r"[A-Za-z0-9_.+~\-]+")
FILE_RE = re.compile(r"[A-Za-z0-9_.+~\-]+")
# What may follow `{artifactId}-{version}`: `.ext` or `-classifier.ext` (ext starts with a letter).
TAIL_RE = re.compile(r"(?:-(?P<classifier>[A-Za-z0-9_~+\-][A-Za-z0-9_.~+\-]*?))?\.(?P<ext>[A-Za-z][A-Za-z0-9_.~+\-]*)")
SNAPSHOT = "-SNAPSHOT"
TIMESTAMP_RE = re.compile(r"(?P<ts>[0-9]{8}\.[0-9]{6})-(?P<build>[1-9][0-9]{0,8})")


class NotInLayout(ValidationError):
    """Well-formed but not a Maven layout path (too short, names disagree): 400 on PUT, 404 on GET."""


@dataclass(frozen=True)
class MavenPath:
    kind: str  # "file", "metadata" (artifact level) or "snapshot-metadata" (version level)
    group_id: str
    artifact_id: str
    version: str | None = None  # the version directory (`1.0-SNAPSHOT` for snapshots)
    filename: str | None = None  # the artifact file (for a checksum: the file it sums)
    checksum: str | None = None  # "sha1", "md5", "sha256", "sha512" when the path is a sidecar

    @property
    def is_snapshot(self) -> bool:
        return bool(self.version and self.version.endswith(SNAPSHOT))

    @property
    def coords(self) -> Coordinates:
        return Coordinates("maven", self.group_id, self.artifact_id)

    def file_path(self, filename: str) -> str:
        """The layout path of another file of this version."""
        return f"{self.group_id.replace('.', '/')}/{self.artifact_id}/{self.version}/{filename}"

    def metadata_path(self) -> str:
        return f"{self.group_id.replace('.', '/')}/{self.artifact_id}/{METADATA}"


@dataclass(frozen=True)
class FileName:
    """A parsed artifact file name: classifier, extension and, for timestamped snapshot builds,
    the timestamp and build number."""

    classifier: str
    extension: str
    timestamp: str | None = None
    build: int | None = None

    @property
    def is_main_pom(self) -> bool:
        return self.extension == "pom" and not self.classifier


HASH_NAMES = {"sha1": "SHA-1", "md5": "MD5", "sha256": "SHA-256", "sha512": "SHA-512"}


def parse_checksum(body: bytes, alg: str, what: str) -> str:
    """The hex digest a checksum file holds (its first word; Maven may add the file name)."""
    text = body.decode("ascii", errors="replace").strip()
    value = text.split()[0].lower() if text else ""
    if len(value) != HEX_LEN[alg] or any(c not in "0123456789abcdef" for c in value):
        raise ValidationError(f"{what}.{alg} does not hold a {HASH_NAMES[alg]} checksum")
    return value


def _segments(raw_rest: str) -> list[str]:
    """Decode each raw segment on its own, refusing what could escape the layout."""
    out = []
    for raw in raw_rest.split("/"):
        if "\\" in raw or "%5c" in raw.lower():
            raise ValidationError("Backslashes are not allowed in Maven paths")
        try:
            seg = unquote(raw, errors="strict") if "%" in raw else raw
        except UnicodeDecodeError:
            raise ValidationError("Maven paths must be UTF-8 once percent-decoded") from None
        if "/" in seg:
            raise ValidationError("An encoded '/' (%2F) is not allowed in Maven paths")
        if any(ord(c) < 0x20 or ord(c) == 0x7F for c in seg):
            raise ValidationError("Control characters (NUL, CR, LF, ...) are not allowed in Maven paths")
        if seg in (".", ".."):
            raise ValidationError("Path traversal ('.' or '..' segments) is not allowed in Maven paths")
        out.append(seg)
    return out


def _check(kind: str, value: str, pattern: re.Pattern) -> None:
    if len(value) > MAX_COORD:
        raise ValidationError(f"The {kind} is {len(value)} characters long; at most {MAX_COORD} are allowed")
    if not pattern.fullmatch(value):
        bad = sorted({c for c in value if not pattern.fullmatch(c)})
        raise ValidationError(f"Illegal character(s) {''.join(bad)!r} in {kind} {value!r}")


def _group(dirs: list[str]) -> str:
    if not dirs or any(d == "" for d in dirs):
        raise ValidationError("The groupId is empty: expected {group/as/dirs}/{artifactId}/{version}/{file}")
    for d in dirs:
        _check("groupId", d, ID_RE)
    group = ".".join(dirs)
    if len(group) > MAX_COORD:
        raise ValidationError(f"The groupId is {len(group)} characters long; at most {MAX_COORD} are allowed")
    return group


def parse_path(raw_rest: str) -> MavenPath:
    """The MavenPath a raw request path names; ValidationError (400) with a one-line reason if not."""
    segs = _segments(raw_rest)
    if segs and segs[-1] == "":
        raise NotInLayout("Directory listings are not served; name a file")
    last = segs[-1] if segs else ""
    checksum = None
    stem = last
    suffix = last.rsplit(".", 1)[-1] if "." in last else ""
    if suffix in CHECKSUMS:
        checksum = suffix
        stem = last[: -len(suffix) - 1]
    if stem == METADATA:
        if len(segs) >= 4 and segs[-2].endswith(SNAPSHOT):
            group, artifact, version = _group(segs[:-3]), segs[-3], segs[-2]
            _check("artifactId", artifact, ID_RE)
            _check("version", version, VERSION_RE)
            return MavenPath("snapshot-metadata", group, artifact, version, None, checksum)
        if len(segs) < 3:
            raise NotInLayout("Path too short: expected {group/as/dirs}/{artifactId}/maven-metadata.xml")
        group, artifact = _group(segs[:-2]), segs[-2]
        _check("artifactId", artifact, ID_RE)
        return MavenPath("metadata", group, artifact, None, None, checksum)
    if len(segs) < 4:
        raise NotInLayout("Path too short: expected {group/as/dirs}/{artifactId}/{version}/{file}")
    group, artifact, version, filename = _group(segs[:-3]), segs[-3], segs[-2], stem
    _check("artifactId", artifact, ID_RE)
    _check("version", version, VERSION_RE)
    if version.startswith((".", "-")):
        raise ValidationError(f"Illegal version {version!r}: it must not start with '.' or '-'")
    _check("file name", last, FILE_RE)
    parse_filename(artifact, version, filename)
    return MavenPath("file", group, artifact, version, filename, checksum)


def parse_directory(raw_rest: str) -> list[str]:
    """The segments of a directory path (`com/acme/lib/` -> ['com', 'acme', 'lib']), each one a
    legal groupId part, artifactId or version; ValidationError if not."""
    segs = _segments(raw_rest)
    if not segs or segs[-1] != "" or len(segs) < 2:
        raise NotInLayout("A directory path ends with '/'")
    segs = segs[:-1]
    for seg in segs:
        if seg == "":
            raise NotInLayout("Empty path segment")
        _check("path segment", seg, VERSION_RE)
    return segs


# The timestamp of a SNAPSHOT build (UTC, as Maven writes it) must be a real moment between these.
OLDEST_BUILD = datetime(2000, 1, 1, tzinfo=timezone.utc)
CLOCK_SLACK = timedelta(days=1)
# Files that are never empty (an empty one is a failed build or a truncated upload).
NON_EMPTY = ("jar", "pom", "war", "ear", "aar")


def check_build(fn: FileName, filename: str, now: datetime) -> None:
    """A timestamped SNAPSHOT build name must carry a plausible UTC timestamp (a valid date and
    time, not before 2000, not more than a day ahead of `now`)."""
    if fn.timestamp is None:
        return
    try:
        when = datetime.strptime(fn.timestamp, "%Y%m%d.%H%M%S").replace(tzinfo=timezone.utc)
    except ValueError:
        raise ValidationError(f"{filename}: {fn.timestamp} is not a build time (yyyyMMdd.HHmmss, UTC)") from None
    if not OLDEST_BUILD <= when <= now + CLOCK_SLACK:
        raise ValidationError(f"{filename}: the build time {fn.timestamp} is not plausible (it must lie between "
                              f"{OLDEST_BUILD:%Y-%m-%d} and now, UTC)")


def parse_filename(artifact: str, version: str, filename: str) -> FileName:
    """Check `{artifactId}-{version}[-classifier].ext` (or the timestamped snapshot form)."""
    prefix = f"{artifact}-"
    if not filename.startswith(prefix):
        raise NotInLayout(f"File name {filename!r} must start with '{artifact}-{version}' (the artifactId "
                          "directory and the version directory)")
    rest = filename[len(prefix):]
    if version.endswith(SNAPSHOT):
        base = version[: -len(SNAPSHOT)]
        if rest.startswith(base + "-"):
            m = TIMESTAMP_RE.match(rest, len(base) + 1)
            if m:
                tail = TAIL_RE.fullmatch(rest, m.end())
                if tail:
                    return FileName(tail["classifier"] or "", tail["ext"], m["ts"], int(m["build"]))
    if rest.startswith(version):
        tail = TAIL_RE.fullmatch(rest, len(version))
        if tail:
            return FileName(tail["classifier"] or "", tail["ext"])
    hint = f" or '{artifact}-{version[:-len(SNAPSHOT)]}-yyyyMMdd.HHmmss-N'" if version.endswith(SNAPSHOT) else ""
    raise NotInLayout(f"Version directory {version!r} disagrees with file name {filename!r}: expected "
                      f"'{artifact}-{version}'{hint} followed by [-classifier].extension")


# ---- Maven's version order (org.apache.maven.artifact.versioning.ComparableVersion) -------------

_QUALIFIERS = ["alpha", "beta", "milestone", "rc", "snapshot", "", "sp"]
_ALIASES = {"ga": "", "final": "", "release": "", "cr": "rc"}
_RELEASE_INDEX = str(_QUALIFIERS.index(""))


def _qualifier_key(q: str) -> str:
    return str(_QUALIFIERS.index(q)) if q in _QUALIFIERS else f"{len(_QUALIFIERS)}-{q}"


class _Int(int):
    pass


class _Str(str):
    pass


def _string_item(value: str, followed_by_digit: bool) -> _Str:
    if followed_by_digit and len(value) == 1:
        value = {"a": "alpha", "b": "beta", "m": "milestone"}.get(value, value)
    return _Str(_ALIASES.get(value, value))


def _parse_item(is_digit: bool, buf: str):
    return _Int(int(buf)) if is_digit else _string_item(buf, False)


def _is_null(item) -> bool:
    if isinstance(item, _Int):
        return item == 0
    if isinstance(item, _Str):
        return item == ""
    return len(item) == 0


def _normalize(items: list) -> None:
    for i in range(len(items) - 1, -1, -1):
        if _is_null(items[i]):
            del items[i]
        elif not isinstance(items[i], list):
            break


def parse_version(version: str) -> list:
    version = version.lower()
    items: list = []
    current = items
    stack = [items]
    is_digit = False
    start = 0
    for i, c in enumerate(version):
        if c == ".":
            current.append(_Int(0) if i == start else _parse_item(is_digit, version[start:i]))
            start = i + 1
        elif c == "-":
            current.append(_Int(0) if i == start else _parse_item(is_digit, version[start:i]))
            start = i + 1
            new: list = []
            current.append(new)
            current = new
            stack.append(new)
        elif c.isdigit() and c.isascii():
            if not is_digit and i > start:
                current.append(_string_item(version[start:i], True))
                start = i
                new = []
                current.append(new)
                current = new
                stack.append(new)
            is_digit = True
        else:
            if is_digit and i > start:
                current.append(_parse_item(True, version[start:i]))
                start = i
                new = []
                current.append(new)
                current = new
                stack.append(new)
            is_digit = False
    if len(version) > start:
        current.append(_parse_item(is_digit, version[start:]))
    while stack:
        _normalize(stack.pop())
    return items


def _cmp(a, b) -> int:
    """Compare two items; either may be None (absent)."""
    if a is None:
        return 0 if b is None else -_cmp(b, None)
    if isinstance(a, _Int):
        if b is None:
            return 0 if a == 0 else 1
        if isinstance(b, _Int):
            return (a > b) - (a < b)
        return 1
    if isinstance(a, _Str):
        ka = _qualifier_key(a)
        if b is None:
            return (ka > _RELEASE_INDEX) - (ka < _RELEASE_INDEX)
        if isinstance(b, _Str):
            kb = _qualifier_key(b)
            return (ka > kb) - (ka < kb)
        return -1
    # a is a list
    if b is None:
        return 0 if not a else _cmp(a[0], None)
    if isinstance(b, _Int):
        return -1
    if isinstance(b, _Str):
        return 1
    for i in range(max(len(a), len(b))):
        left = a[i] if i < len(a) else None
        right = b[i] if i < len(b) else None
        result = _cmp(left, right)
        if result:
            return result
    return 0


def compare_versions(a: str, b: str) -> int:
    return _cmp(parse_version(a), parse_version(b))


version_key = functools.cmp_to_key(compare_versions)
