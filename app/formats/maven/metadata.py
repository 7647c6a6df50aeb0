"""maven-metadata.xml rendered from rows, uploaded metadata and POMs parsed safely (defusedxml:
no DTDs, no entities), and the POM facts CodeArtifact reports (summary, licenses, dependencies)."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from xml.etree.ElementTree import Element
from xml.sax.saxutils import escape

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

from app.domain.errors import ValidationError
from app.formats.maven.paths import CHECKSUMS, SNAPSHOT, parse_filename, version_key

MAX_DOCUMENT = 4 * 1024 * 1024  # maven-metadata.xml and POMs larger than this are not parsed


def stamp(when: datetime) -> str:
    """Maven's lastUpdated form, yyyyMMddHHmmss in UTC."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return when.astimezone(timezone.utc).strftime("%Y%m%d%H%M%S")


def _el(tag: str, text: str, indent: str) -> str:
    return f"{indent}<{tag}>{escape(text)}</{tag}>\n"


# ---- rendering -----------------------------------------------------------------------------------

def render_artifact(group_id: str, artifact_id: str, versions: list[str], last_updated: datetime) -> bytes:
    """Artifact-level metadata: every listed version in Maven's order, `latest` and `release`."""
    ordered = sorted(set(versions), key=version_key)
    releases = [v for v in ordered if not v.endswith(SNAPSHOT)]
    out = ['<?xml version="1.0" encoding="UTF-8"?>\n<metadata>\n',
           _el("groupId", group_id, "  "), _el("artifactId", artifact_id, "  "), "  <versioning>\n"]
    if ordered:
        out.append(_el("latest", ordered[-1], "    "))
    if releases:
        out.append(_el("release", releases[-1], "    "))
    out.append("    <versions>\n")
    out += [_el("version", v, "      ") for v in ordered]
    out += ["    </versions>\n", _el("lastUpdated", stamp(last_updated), "    "), "  </versioning>\n",
            "</metadata>\n"]
    return "".join(out).encode()


@dataclass
class _Build:
    value: str
    build: int
    timestamp: str
    updated: datetime


def render_snapshot(group_id: str, artifact_id: str, version: str,
                    files: list[tuple[str, datetime]]) -> bytes:
    """Version-level metadata of `X-SNAPSHOT` from its stored file names: the highest
    timestamped build becomes `<snapshot>` (so the next deploy takes the next number), and each
    classifier/extension gets its newest file in `<snapshotVersions>`."""
    base = version[: -len(SNAPSHOT)]
    newest: dict[tuple[str, str], _Build] = {}
    plain: dict[tuple[str, str], datetime] = {}
    for name, created in files:
        try:
            fn = parse_filename(artifact_id, version, name)
        except ValidationError:
            continue
        key = (fn.classifier, fn.extension)
        if fn.build is None:
            plain[key] = max(created, plain.get(key, created))
            continue
        b = _Build(f"{base}-{fn.timestamp}-{fn.build}", fn.build, fn.timestamp, created)
        cur = newest.get(key)
        if cur is None or (b.build, b.timestamp) > (cur.build, cur.timestamp):
            newest[key] = b
    entries = [(key, b.value, b.updated) for key, b in newest.items()]
    entries += [(key, version, when) for key, when in plain.items() if key not in newest]
    updated = max((when for _k, _v, when in entries), default=datetime.now(timezone.utc))
    out = ['<?xml version="1.0" encoding="UTF-8"?>\n<metadata modelVersion="1.1.0">\n',
           _el("groupId", group_id, "  "), _el("artifactId", artifact_id, "  "), _el("version", version, "  "),
           "  <versioning>\n"]
    if newest:
        top = max(newest.values(), key=lambda b: (b.build, b.timestamp))
        out += ["    <snapshot>\n", _el("timestamp", top.timestamp, "      "),
                _el("buildNumber", str(top.build), "      "), "    </snapshot>\n"]
    out.append(_el("lastUpdated", stamp(updated), "    "))
    out.append("    <snapshotVersions>\n")
    for (classifier, ext), value, when in sorted(entries, key=lambda e: (e[0][1], e[0][0])):
        out.append("      <snapshotVersion>\n")
        if classifier:
            out.append(_el("classifier", classifier, "        "))
        out += [_el("extension", ext, "        "), _el("value", value, "        "),
                _el("updated", stamp(when), "        "), "      </snapshotVersion>\n"]
    out += ["    </snapshotVersions>\n", "  </versioning>\n", "</metadata>\n"]
    return "".join(out).encode()


def checksums(body: bytes) -> dict[str, str]:
    """The sidecar digests of a rendered document, by suffix (sha1, md5, sha256, sha512)."""
    return {alg: hashlib.new(alg, body).hexdigest() for alg in CHECKSUMS}


# ---- parsing -------------------------------------------------------------------------------------

def _parse_xml(body: bytes, what: str) -> Element:
    if len(body) > MAX_DOCUMENT:
        raise ValidationError(f"{what} is larger than {MAX_DOCUMENT} bytes")
    try:
        root = SafeET.fromstring(body, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException:
        raise ValidationError(f"{what} must not contain a DTD or entity declarations") from None
    except SafeET.ParseError as exc:
        raise ValidationError(f"{what} is not well-formed XML: {exc}") from None
    for el in root.iter():  # drop namespaces (POMs carry xmlns="http://maven.apache.org/POM/4.0.0")
        if isinstance(el.tag, str) and "}" in el.tag:
            el.tag = el.tag.split("}", 1)[1]
    return root


def _text(el: Element | None, path: str) -> str | None:
    if el is None:
        return None
    found = el.find(path)
    if found is None or found.text is None:
        return None
    return found.text.strip() or None


@dataclass
class UploadedMetadata:
    group_id: str | None
    artifact_id: str | None
    version: str | None
    versions: list[str] = field(default_factory=list)
    # <latest> and <release>: Maven sets both to the version it is deploying
    newest: list[str] = field(default_factory=list)


def parse_metadata(body: bytes) -> UploadedMetadata:
    root = _parse_xml(body, "maven-metadata.xml")
    if root.tag != "metadata":
        raise ValidationError(f"maven-metadata.xml must have a <metadata> root element, not <{root.tag}>")
    versions = [v.text.strip() for v in root.findall("versioning/versions/version") if v.text and v.text.strip()]
    newest = []
    for path in ("versioning/latest", "versioning/release"):
        value = _text(root, path)
        if value and value in versions and value not in newest:
            newest.append(value)
    return UploadedMetadata(_text(root, "groupId"), _text(root, "artifactId"), _text(root, "version"), versions,
                            newest)


_PROP = re.compile(r"\$\{([^}]+)\}")


def parse_pom(body: bytes) -> tuple[str | None, dict]:
    """(summary, attributes) from a POM someone else vouches for (a remote's): packaging,
    dependencies (CodeArtifact's PackageDependency shape), licenses, homePage,
    sourceCodeRepository. Unparseable POMs give (None, {})."""
    try:
        root = _parse_xml(body, "POM")
    except ValidationError:
        return None, {}
    if root.tag != "project":
        return None, {}
    return _facts(root, _properties(root))


def check_pom(body: bytes, group_id: str, artifact_id: str, version: str) -> tuple[str | None, dict]:
    """An uploaded POM: well-formed, and its own groupId:artifactId:version (after inheritance
    from its parent and its own properties) are the coordinates of the path it is PUT to.
    Returns its facts as parse_pom does; ValidationError naming both coordinates otherwise."""
    root = _parse_xml(body, "The POM")
    if root.tag != "project":
        raise ValidationError(f"The POM's root element must be <project>, not <{root.tag}>")
    props = _properties(root)
    sub = _substituter(props)
    have = {"groupId": sub(_text(root, "groupId") or _text(root, "parent/groupId")),
            "artifactId": sub(_text(root, "artifactId")),
            "version": sub(_text(root, "version") or _text(root, "parent/version"))}
    for key, value in have.items():
        if not value:
            raise ValidationError(f"The POM declares no {key}" + (" (nor does its <parent>)" if key != "artifactId"
                                                                   else ""))
        if "${" in value:
            raise ValidationError(f"The POM's {key} {value!r} names a property it does not define; deploy a "
                                  "POM with its coordinates resolved (e.g. with flatten-maven-plugin)")
    want = (group_id, artifact_id, version)
    if tuple(have.values()) != want:
        raise ValidationError(f"The POM is {':'.join(have.values())} but the path is {':'.join(want)}")
    return _facts(root, props)


def _properties(root: Element) -> dict[str, str]:
    props = {}
    for el in list(root.find("properties") or []):
        if isinstance(el.tag, str) and el.text:
            props[el.tag] = el.text.strip()
    version = _text(root, "version") or _text(root, "parent/version")
    group = _text(root, "groupId") or _text(root, "parent/groupId")
    for key, value in (("project.version", version), ("project.groupId", group),
                       ("version", version), ("pom.version", version)):
        if value:
            props.setdefault(key, value)
    return props


def _substituter(props: dict[str, str]):
    def sub(value: str | None) -> str | None:
        if value is None:
            return None
        return _PROP.sub(lambda m: props.get(m.group(1), m.group(0)), value)
    return sub


def _facts(root: Element, props: dict[str, str]) -> tuple[str | None, dict]:
    sub = _substituter(props)
    attrs: dict = {"packaging": _text(root, "packaging") or "jar"}
    deps = []
    for d in root.findall("dependencies/dependency"):
        g, a = sub(_text(d, "groupId")), sub(_text(d, "artifactId"))
        if not g or not a:
            continue
        dep = {"namespace": g, "package": a, "dependencyType": sub(_text(d, "scope")) or "compile"}
        v = sub(_text(d, "version"))
        if v:
            dep["versionRequirement"] = v
        deps.append(dep)
    attrs["dependencies"] = deps
    licenses = []
    for lic in root.findall("licenses/license"):
        item = {k: v for k in ("name", "url") if (v := _text(lic, k))}
        if item:
            licenses.append(item)
    if licenses:
        attrs["licenses"] = licenses
    if url := _text(root, "url"):
        attrs["homePage"] = sub(url)
    if scm := _text(root, "scm/url"):
        attrs["sourceCodeRepository"] = sub(scm)
    summary = _text(root, "description") or _text(root, "name")
    return (sub(summary)[:1024] if summary else None), attrs
