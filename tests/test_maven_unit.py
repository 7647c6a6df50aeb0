"""Pure functions of the Maven format: path parsing, version order, metadata render and parse."""

from __future__ import annotations

from datetime import datetime, timezone

import defusedxml.ElementTree as ET
import pytest

from app.domain.errors import ValidationError
from app.formats.maven.metadata import parse_metadata, parse_pom, render_artifact, render_snapshot
from app.formats.maven.paths import NotInLayout, compare_versions, parse_filename, parse_path, version_key


def test_parse_paths():
    p = parse_path("org/apache/maven/maven-core/3.2.5/maven-core-3.2.5.pom")
    assert (p.kind, p.group_id, p.artifact_id, p.version, p.filename, p.checksum) == (
        "file", "org.apache.maven", "maven-core", "3.2.5", "maven-core-3.2.5.pom", None)
    p = parse_path("com/acme/app/1.0/app-1.0-sources.jar.sha512")
    assert (p.filename, p.checksum, p.is_snapshot) == ("app-1.0-sources.jar", "sha512", False)
    p = parse_path("com/acme/app/maven-metadata.xml.md5")
    assert (p.kind, p.group_id, p.artifact_id, p.version, p.checksum) == ("metadata", "com.acme", "app", None, "md5")
    p = parse_path("com/acme/app/1.0-SNAPSHOT/maven-metadata.xml")
    assert (p.kind, p.version, p.is_snapshot) == ("snapshot-metadata", "1.0-SNAPSHOT", True)
    p = parse_path("com/acme/app/1.0-SNAPSHOT/app-1.0-20240101.120000-12-tests.jar.asc")
    assert p.filename == "app-1.0-20240101.120000-12-tests.jar.asc"
    assert parse_path("com/acme/app/1.0%2Bb1/app-1.0+b1.jar").version == "1.0+b1"  # decoded per segment
    with pytest.raises(ValidationError, match="groupId"):
        parse_path("c%2Bc/app/1.0/app-1.0.jar")  # '+' is not allowed in ids


@pytest.mark.parametrize("path,cls", [
    ("com/acme/app/1.0/other-1.0.jar", NotInLayout),
    ("app/1.0/app-1.0.jar", NotInLayout),
    ("com/acme/app/1.0/", NotInLayout),
    ("com/./app/1.0/app-1.0.jar", ValidationError),
    ("com/acme/app/-1.0/app--1.0.jar", ValidationError),
])
def test_rejected_paths(path, cls):
    with pytest.raises(cls):
        parse_path(path)


def test_filenames():
    f = parse_filename("app", "1.0-SNAPSHOT", "app-1.0-20240101.120000-3-sources.jar")
    assert (f.classifier, f.extension, f.timestamp, f.build) == ("sources", "jar", "20240101.120000", 3)
    f = parse_filename("app", "1.0-SNAPSHOT", "app-1.0-SNAPSHOT.pom")
    assert (f.classifier, f.extension, f.build, f.is_main_pom) == ("", "pom", None, True)
    f = parse_filename("app", "1.0", "app-1.0.tar.gz")
    assert (f.classifier, f.extension) == ("", "tar.gz")
    assert not parse_filename("app", "1.0", "app-1.0-sources.pom").is_main_pom
    with pytest.raises(NotInLayout, match="disagrees"):
        parse_filename("app", "1.0", "app-1.0.1.jar")


def test_maven_version_order():
    ordered = ["1.0-alpha-1", "1.0-beta-2", "1.0-rc1", "1.0-SNAPSHOT", "1.0", "1.0-sp1", "1.0-xyz", "1.0.1", "1.2",
               "1.10", "2.0-M1", "2.0"]
    assert sorted(reversed(ordered), key=version_key) == ordered
    assert compare_versions("1.0", "1.0.0") == 0 and compare_versions("1.0-ga", "1.0-final") == 0
    assert compare_versions("1.0a1", "1.0-alpha-1") == 0
    assert compare_versions("1", "1-SNAPSHOT") == 1


def test_render_artifact_metadata():
    when = datetime(2024, 5, 6, 7, 8, 9, tzinfo=timezone.utc)
    root = ET.fromstring(render_artifact("com.acme", "app", ["1.10", "1.2", "2.0-SNAPSHOT", "1.2"], when))
    assert [v.text for v in root.findall("versioning/versions/version")] == ["1.2", "1.10", "2.0-SNAPSHOT"]
    assert root.findtext("versioning/latest") == "2.0-SNAPSHOT"
    assert root.findtext("versioning/release") == "1.10"
    assert root.findtext("versioning/lastUpdated") == "20240506070809"
    only_snapshots = ET.fromstring(render_artifact("g", "a", ["1.0-SNAPSHOT"], when))
    assert only_snapshots.find("versioning/release") is None


def test_render_snapshot_metadata():
    t = datetime(2024, 1, 1, tzinfo=timezone.utc)
    files = [("app-1.0-20240101.000000-1.jar", t), ("app-1.0-20240101.000000-1.pom", t),
             ("app-1.0-20240102.000000-2.jar", t), ("app-1.0-20240101.000000-9-javadoc.jar", t),
             ("app-1.0-SNAPSHOT-tests.jar", t), ("app-1.0-SNAPSHOT.jar", t), ("garbage.txt", t)]
    root = ET.fromstring(render_snapshot("com.acme", "app", "1.0-SNAPSHOT", files))
    assert root.findtext("versioning/snapshot/buildNumber") == "9"
    values = {(sv.findtext("classifier") or "", sv.findtext("extension")): sv.findtext("value")
              for sv in root.findall("versioning/snapshotVersions/snapshotVersion")}
    assert values == {("", "jar"): "1.0-20240102.000000-2", ("", "pom"): "1.0-20240101.000000-1",
                      ("javadoc", "jar"): "1.0-20240101.000000-9", ("tests", "jar"): "1.0-SNAPSHOT"}
    plain = ET.fromstring(render_snapshot("g", "app", "1.0-SNAPSHOT", [("app-1.0-SNAPSHOT.jar", t)]))
    assert plain.find("versioning/snapshot") is None


def test_parse_metadata_refuses_entities():
    md = parse_metadata(b"<metadata><groupId>g</groupId><versioning><versions><version>1</version>"
                        b"<version> 2 </version></versions></versioning></metadata>")
    assert (md.group_id, md.artifact_id, md.versions) == ("g", None, ["1", "2"])
    with pytest.raises(ValidationError, match="DTD"):
        parse_metadata(b'<!DOCTYPE metadata [<!ENTITY x "y">]><metadata>&x;</metadata>')
    with pytest.raises(ValidationError, match="well-formed"):
        parse_metadata(b"<metadata>")


def test_parse_pom():
    summary, attrs = parse_pom(b"<project><parent><groupId>p</groupId><version>3</version></parent>"
                               b"<artifactId>a</artifactId><name>Name only</name><dependencies><dependency>"
                               b"<groupId>${project.groupId}</groupId><artifactId>b</artifactId>"
                               b"<version>${project.version}</version><scope>provided</scope></dependency>"
                               b"<dependency><artifactId>no-group</artifactId></dependency></dependencies></project>")
    assert summary == "Name only"
    assert attrs["packaging"] == "jar"
    assert attrs["dependencies"] == [{"namespace": "p", "package": "b", "dependencyType": "provided",
                                      "versionRequirement": "3"}]
    assert parse_pom(b"not xml") == (None, {})
    assert parse_pom(b'<!DOCTYPE p [<!ENTITY x SYSTEM "file:///etc/passwd">]><project>&x;</project>') == (None, {})
