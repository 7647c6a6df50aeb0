"""Python distribution files: file-name rules (PEP 427 wheels, PEP 625 / legacy sdists), the core
metadata inside them (a wheel's METADATA, an sdist's PKG-INFO) and what Arca records from it.

Pure functions on names, bytes and local files: no HTTP, no database."""

from __future__ import annotations

import re
import tarfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

from packaging.metadata import parse_email
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    canonicalize_name,
    canonicalize_version,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version

from app.domain.errors import ValidationError

# PEP 508 names: letters/digits at both ends, `._-` inside.
_NAME = re.compile(r"^([A-Z0-9]|[A-Z0-9][A-Z0-9._-]*[A-Z0-9])$", re.IGNORECASE)
# Core metadata is a few KB; a file claiming more is refused rather than read (zip bombs).
MAX_METADATA_BYTES = 8 * 1024 * 1024
SDIST_EXTENSIONS = (".tar.gz", ".zip")


@dataclass(frozen=True)
class DistFile:
    filename: str
    kind: str  # "wheel" | "sdist"
    name: str  # PEP 503 normalised project name
    version: Version


def check_name(name: str) -> str:
    """A PEP 508 project name → its PEP 503 normal form (ValidationError when invalid)."""
    if not name or not _NAME.match(name):
        raise ValidationError(f"Invalid project name {name!r}: a name is letters, digits and '._-', "
                              "starting and ending with a letter or digit (PEP 508)")
    return canonicalize_name(name)


def check_version(version: str) -> Version:
    try:
        return Version(version)
    except InvalidVersion:
        raise ValidationError(f"Invalid version {version!r}: not a PEP 440 version") from None


def parse_filename(filename: str) -> DistFile:
    """The project and version a distribution file name declares (PEP 427 / PEP 625 / legacy sdist)."""
    if (not filename or len(filename) > 255 or filename.startswith(".") or "/" in filename or "\\" in filename
            or any(ord(ch) < 32 or ord(ch) == 127 for ch in filename)):
        raise ValidationError(f"Invalid file name {filename!r}")
    if filename.endswith(".whl"):
        try:
            name, version, _build, _tags = parse_wheel_filename(filename)
        except (InvalidWheelFilename, InvalidVersion) as exc:
            raise ValidationError(f"Invalid wheel file name {filename!r}: {exc}") from None
        return DistFile(filename, "wheel", canonicalize_name(name), version)
    if filename.endswith(SDIST_EXTENSIONS):
        try:
            name, version = parse_sdist_filename(filename)
        except (InvalidSdistFilename, InvalidVersion) as exc:
            raise ValidationError(f"Invalid sdist file name {filename!r}: {exc}") from None
        if not _NAME.match(name):
            raise ValidationError(f"Invalid sdist file name {filename!r}: {name!r} is not a project name")
        return DistFile(filename, "sdist", canonicalize_name(name), version)
    raise ValidationError(f"Invalid file name {filename!r}: only wheels (.whl) and sdists (.tar.gz, .zip) "
                          "can be uploaded")


# ---- what makes two spellings one ----------------------------------------------------------------

def version_key(version: str) -> str:
    """Versions equal under PEP 440 share a key: 1.0, 1.0.0 and 1.0.0.0 are one version (a local
    label, 1.0+local, is another)."""
    try:
        return canonicalize_version(Version(version))
    except InvalidVersion:
        return version


def file_key(filename: str) -> str:
    """File names that name one file share a key, whatever their case and separators: a wheel by
    project, version (PEP 440), build tag and compatibility tags; an sdist by project and version
    only, so a version has one sdist (.tar.gz or .zip, not both)."""
    try:
        dist = parse_filename(filename)
    except ValidationError:
        return filename.lower()
    if dist.kind == "sdist":
        return f"{dist.name}|{version_key(str(dist.version))}|sdist"
    _name, _version, build, tags = parse_wheel_filename(filename)
    return f"{dist.name}|{version_key(str(dist.version))}|{build}|{','.join(sorted(str(t) for t in tags))}"


# ---- reading the core metadata out of an archive -------------------------------------------------

def read_core_metadata(path: Path, dist: DistFile) -> bytes:
    """The METADATA (wheel) or PKG-INFO (sdist) bytes; ValidationError when the archive is broken."""
    try:
        if dist.filename.endswith(".tar.gz"):
            return _from_tar(path, dist)
        return _from_zip(path, dist)
    except ValidationError:
        raise
    except (zipfile.BadZipFile, tarfile.TarError, zlib.error, EOFError, OSError, ValueError) as exc:
        raise ValidationError(f"{dist.filename} is not a valid {_archive_kind(dist)} archive: {exc}") from None


def _archive_kind(dist: DistFile) -> str:
    return "gzip-compressed tar" if dist.filename.endswith(".tar.gz") else "zip"


def _matches(dirname: str, suffix: str, dist: DistFile) -> bool:
    """Does `{name}-{version}{suffix}` name this distribution (compared after normalisation)?
    Every '-' is tried as the separator: old tools left dashes in the name or version."""
    if not dirname.endswith(suffix):
        return False
    stem = dirname[: -len(suffix)] if suffix else dirname
    for i, ch in enumerate(stem):
        if ch != "-":
            continue
        try:
            if canonicalize_name(stem[:i]) == dist.name and Version(stem[i + 1:]) == dist.version:
                return True
        except InvalidVersion:
            continue
    return False


def _from_zip(path: Path, dist: DistFile) -> bytes:
    with zipfile.ZipFile(path) as zf:
        members = {i.filename: i for i in zf.infolist()}
        if dist.kind == "wheel":
            dirs = {n.split("/", 1)[0] for n in members if n.count("/") == 1 and n.endswith(".dist-info/METADATA")}
            wanted = [d for d in dirs if _matches(d, ".dist-info", dist)]
            if not wanted:
                raise ValidationError(f"{dist.filename} has no {{name}}-{{version}}.dist-info/METADATA matching "
                                      "its file name")
            if f"{wanted[0]}/WHEEL" not in members:
                raise ValidationError(f"{dist.filename} has no {wanted[0]}/WHEEL file")
            info = members[f"{wanted[0]}/METADATA"]
        else:
            found = [i for n, i in members.items() if n.count("/") == 1 and n.endswith("/PKG-INFO")
                     and _matches(n.split("/", 1)[0], "", dist)]
            if not found:
                raise ValidationError(f"{dist.filename} has no top-level {{name}}-{{version}}/PKG-INFO")
            info = found[0]
        if info.file_size > MAX_METADATA_BYTES:
            raise ValidationError(f"{info.filename} in {dist.filename} is larger than {MAX_METADATA_BYTES} bytes")
        return zf.read(info)


def _from_tar(path: Path, dist: DistFile) -> bytes:
    with tarfile.open(path, mode="r:gz") as tf:
        for member in tf:  # streams: stops at PKG-INFO, which build backends put near the start
            parts = member.name.lstrip("./").split("/")
            if len(parts) == 2 and parts[1] == "PKG-INFO" and member.isfile() and _matches(parts[0], "", dist):
                if member.size > MAX_METADATA_BYTES:
                    raise ValidationError(f"{member.name} in {dist.filename} is larger than "
                                          f"{MAX_METADATA_BYTES} bytes")
                fh = tf.extractfile(member)
                assert fh is not None
                return fh.read()
    raise ValidationError(f"{dist.filename} has no top-level {{name}}-{{version}}/PKG-INFO")


# ---- what Arca records from the core metadata ----------------------------------------------------

@dataclass
class CoreMetadata:
    name: str
    version: str
    summary: str | None
    requires_python: str | None
    attributes: dict  # PackageVersion.attributes


def parse_core_metadata(data: bytes, filename: str) -> CoreMetadata:
    raw, _unparsed = parse_email(data)
    if not raw.get("name") or not raw.get("version"):
        raise ValidationError(f"The core metadata in {filename} lacks Name or Version")
    attrs: dict = {}
    if raw.get("requires_python"):
        attrs["requires_python"] = raw["requires_python"]
    if raw.get("description"):
        attrs["readme"] = raw["description"]
        if raw.get("description_content_type"):
            attrs["readme_content_type"] = raw["description_content_type"]
    urls = raw.get("project_urls") or {}
    home = raw.get("home_page") or _url(urls, "homepage", "home", "home-page")
    if home:
        attrs["homePage"] = home
    source = _url(urls, "source", "repository", "source-code", "sourcecode", "code")
    if source:
        attrs["sourceCodeRepository"] = source
    license_name = raw.get("license_expression") or raw.get("license")
    if license_name and "\n" not in license_name.strip():
        attrs["licenses"] = [{"name": license_name.strip()}]
    deps = [d for d in (_dependency(x) for x in raw.get("requires_dist") or []) if d]
    if deps:
        attrs["dependencies"] = deps
    if raw.get("metadata_version"):
        attrs["metadata_version"] = raw["metadata_version"]
    return CoreMetadata(name=raw["name"], version=raw["version"], summary=raw.get("summary") or None,
                        requires_python=raw.get("requires_python") or None, attributes=attrs)


def _url(urls: dict, *labels: str) -> str | None:
    for label, url in urls.items():
        if re.sub(r"[\s_.-]+", "-", label.strip().lower()) in labels:
            return url
    return None


def _dependency(text: str) -> dict | None:
    """A Requires-Dist line as CodeArtifact's PackageDependency (dependencyType 'Requires-Dist')."""
    try:
        req = Requirement(text)
    except InvalidRequirement:
        return None
    requirement = str(req.specifier)
    if req.marker is not None:
        requirement = f"{requirement}; {req.marker}" if requirement else str(req.marker)
    out = {"package": canonicalize_name(req.name), "dependencyType": "Requires-Dist"}
    if requirement:
        out["versionRequirement"] = requirement
    return out
