"""Maven through upstream repositories and `public:maven-central`, with a static Maven-layout
file server (`python -m http.server`) as the remote and real mvn: app -> libs -> proxy."""

from __future__ import annotations

import hashlib
import re
import io
import zipfile
from pathlib import Path

import httpx
import pytest

from tests.support.checks import stored_assets
from tests.support.server import start_server
from tests.upstream_support import Remote, start_static


def _jar(marker: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:  # fixed timestamps: the same marker gives the same bytes
        z.writestr(zipfile.ZipInfo("META-INF/MANIFEST.MF", (2024, 1, 1, 0, 0, 0)), "Manifest-Version: 1.0\n")
        z.writestr(zipfile.ZipInfo("marker.txt", (2024, 1, 1, 0, 0, 0)), marker)
    return buf.getvalue()


def _pom(group, artifact, version, deps=()) -> bytes:
    dep_xml = "".join(f"<dependency><groupId>{g}</groupId><artifactId>{a}</artifactId><version>{v}</version>"
                      "</dependency>" for g, a, v in deps)
    return (f'<project xmlns="http://maven.apache.org/POM/4.0.0"><modelVersion>4.0.0</modelVersion>'
            f"<groupId>{group}</groupId><artifactId>{artifact}</artifactId><version>{version}</version>"
            f"<description>{artifact} from the remote</description><dependencies>{dep_xml}</dependencies>"
            "</project>").encode()


def lay_out(root: Path, group: str, artifact: str, versions: list[str], bad_sha1: bool = False) -> None:
    """A Maven-layout directory as Maven Central serves it: files, .sha1 sidecars, metadata."""
    base = root / Path(*group.split(".")) / artifact
    for v in versions:
        d = base / v
        d.mkdir(parents=True, exist_ok=True)
        for name, data in ((f"{artifact}-{v}.pom", _pom(group, artifact, v)),
                           (f"{artifact}-{v}.jar", _jar(f"{artifact} {v}"))):
            (d / name).write_bytes(data)
            sha1 = hashlib.sha1(data).hexdigest()
            (d / f"{name}.sha1").write_text(("0" * 40 if bad_sha1 and name.endswith(".jar") else sha1) + "\n")
    versions_xml = "".join(f"<version>{v}</version>" for v in versions)
    (base / "maven-metadata.xml").write_text(
        f"<metadata><groupId>{group}</groupId><artifactId>{artifact}</artifactId><versioning>"
        f"<release>{versions[-1]}</release><versions>{versions_xml}</versions></versioning></metadata>")


@pytest.fixture(scope="module")
def central(tmp_path_factory):
    root = tmp_path_factory.mktemp("central")
    files = root / "files"
    files.mkdir()
    srv = start_static(files, root / "http.log")
    remote = Remote(srv.url)
    remote.files = files
    yield remote
    remote.close()
    srv.stop()


@pytest.fixture(scope="module")
def arca(tmp_path_factory, central):
    srv = start_server(tmp_path_factory.mktemp("arca-up-maven"), env={
        "ARCA_EXTERNAL_PUBLIC_MAVEN_CENTRAL": f"{central.url}/maven2/", "ARCA_UPSTREAM_MAX_AGE": "0",
        "ARCA_UPSTREAM_BREAKER_FAILURES": "1000"})
    yield srv
    srv.stop()


@pytest.fixture
def chain(arca, unique):
    d = f"m{unique}"
    c = arca.boto()
    c.create_domain(domain=d)
    c.create_repository(domain=d, repository="proxy")
    c.associate_external_connection(domain=d, repository="proxy", externalConnection="public:maven-central")
    c.create_repository(domain=d, repository="libs", upstreams=[{"repositoryName": "proxy"}])
    c.create_repository(domain=d, repository="app", upstreams=[{"repositoryName": "libs"}])
    return d


def _assets(arca, d, repo, group, artifact, version):
    return stored_assets(arca.boto(), domain=d, repository=repo, format="maven", namespace=group, package=artifact,
                         version=version)


def _get(arca, d, repo, path):
    return httpx.get(arca.endpoint(d, "maven", repo) + path, auth=("aws", arca.token(d)), timeout=30)


def test_mvn_resolves_through_the_chain_and_retained_files_survive_the_remote(arca, central, chain, unique,
                                                                               mvn, tmp_path):
    d = chain
    pub_group, int_group = f"org.pub{unique}", f"com.int{unique}"
    files = tmp_path / "own-central"
    lay_out(files / "maven2", pub_group, "pubm", ["1.0", "2.0"])
    own = start_static(files, tmp_path / "own-http.log")
    saved = central.target
    central.target = own.url
    try:
        # An internal library in libs that depends on the public one.
        token = arca.token(d)
        libs = arca.endpoint(d, "maven", "libs")
        base = f"{int_group.replace('.', '/')}/intm/1.0/intm-1.0"
        for ext, data in (("pom", _pom(int_group, "intm", "1.0", [(pub_group, "pubm", "1.0")])),
                          ("jar", _jar("intm"))):
            assert httpx.put(f"{libs}{base}.{ext}", content=data, auth=("aws", token)).status_code == 201
        arca.boto().update_package_versions_status(domain=d, repository="libs", format="maven",
                                                   namespace=int_group, package="intm", versions=["1.0"],
                                                   targetStatus="Published")

        app_url = arca.endpoint(d, "maven", "app")
        project = mvn.project(f"consumer-{unique}", f"com.c{unique}", "consumer", "1.0", app_url,
                              deps=[(int_group, "intm", "1.0")])
        project.write_class(f"com.c{unique}", "Main")
        mvn.run(project, "compile", repo_url=app_url, token=token, strict=True)
        assert (mvn.local_repo / Path(*pub_group.split(".")) / "pubm" / "1.0" / "pubm-1.0.jar").is_file()

        assert _assets(arca, d, "proxy", pub_group, "pubm", "1.0") == ["pubm-1.0.jar", "pubm-1.0.pom"]
        desc = arca.boto().describe_package_version(domain=d, repository="proxy", format="maven",
                                                    namespace=pub_group, package="pubm",
                                                    packageVersion="1.0")["packageVersion"]
        assert desc["origin"] == {"domainEntryPoint": {"externalConnectionName": "public:maven-central"},
                                  "originType": "EXTERNAL"}
        assert _assets(arca, d, "libs", pub_group, "pubm", "1.0") == []
        md = _get(arca, d, "app", f"{pub_group.replace('.', '/')}/pubm/maven-metadata.xml")
        assert md.status_code == 200
        assert "<version>1.0</version>" in md.text and "<version>2.0</version>" in md.text
        sha1 = _get(arca, d, "app", f"{pub_group.replace('.', '/')}/pubm/maven-metadata.xml.sha1").text
        assert sha1 == hashlib.sha1(md.content).hexdigest()

        own.stop()  # the remote is gone; what was retained still resolves
        mvn.forget(pub_group)
        mvn.forget(int_group)
        mvn.run(project, "compile", repo_url=app_url, token=token, strict=True)
        assert (mvn.local_repo / Path(*pub_group.split(".")) / "pubm" / "1.0" / "pubm-1.0.jar").is_file()
        # Never fetched: 502 while the remote is down.
        assert _get(arca, d, "app", f"{pub_group.replace('.', '/')}/pubm/2.0/pubm-2.0.pom").status_code == 502
    finally:
        central.target = saved
        own.stop()


def test_one_file_imports_pom_and_jar_verified_by_sha1(arca, central, chain, unique):
    d = chain
    group = f"org.one{unique}"
    lay_out(central.files / "maven2", group, "lib", ["3.1"])
    path = f"{group.replace('.', '/')}/lib/3.1/lib-3.1.pom"
    r = _get(arca, d, "app", path)
    assert r.status_code == 200 and r.content == _pom(group, "lib", "3.1")
    assert _assets(arca, d, "proxy", group, "lib", "3.1") == ["lib-3.1.jar", "lib-3.1.pom"]
    jar = _get(arca, d, "app", path[:-3] + "jar.sha1")
    assert jar.text == hashlib.sha1(_jar("lib 3.1")).hexdigest()


def test_sha1_mismatch_from_the_remote_is_refused(arca, central, chain, unique):
    d = chain
    group = f"org.bad{unique}"
    lay_out(central.files / "maven2", group, "lib", ["1.0"], bad_sha1=True)
    r = _get(arca, d, "app", f"{group.replace('.', '/')}/lib/1.0/lib-1.0.jar")
    assert r.status_code == 502 and "sha1" in r.text.lower()
    assert _assets(arca, d, "proxy", group, "lib", "1.0") == []


def test_dependency_confusion_internal_maven_artifact_wins(arca, central, chain, unique):
    d = chain
    group = f"com.conf{unique}"
    token = arca.token(d)
    libs = arca.endpoint(d, "maven", "libs")
    rel = f"{group.replace('.', '/')}/core"
    assert httpx.put(f"{libs}{rel}/1.0/core-1.0.pom", content=_pom(group, "core", "1.0"),
                     auth=("aws", token)).status_code == 201
    arca.boto().update_package_versions_status(domain=d, repository="libs", format="maven", namespace=group,
                                               package="core", versions=["1.0"], targetStatus="Published")
    lay_out(central.files / "maven2", group, "core", ["9.0"])
    md = _get(arca, d, "app", f"{rel}/maven-metadata.xml")
    assert "<version>1.0</version>" in md.text and "9.0" not in md.text
    assert _get(arca, d, "app", f"{rel}/9.0/core-9.0.jar").status_code == 404
    assert _assets(arca, d, "proxy", group, "core", "9.0") == []


def _extra_files(root: Path, group: str, artifact: str, version: str) -> dict[str, bytes]:
    """Classifier and extension files beside a laid-out version (sources, javadoc, Gradle module
    metadata, a signature), each with its .sha1, as Maven Central has them."""
    d = root / Path(*group.split(".")) / artifact / version
    files = {f"{artifact}-{version}-sources.jar": _jar(f"sources of {artifact}"),
             f"{artifact}-{version}-javadoc.jar": _jar(f"javadoc of {artifact}"),
             f"{artifact}-{version}.module": b'{"formatVersion": "1.1"}\n',
             f"{artifact}-{version}.jar.asc": b"-----BEGIN PGP SIGNATURE-----\nxx\n-----END PGP SIGNATURE-----\n"}
    for name, data in files.items():
        (d / name).write_bytes(data)
        (d / f"{name}.sha1").write_text(hashlib.sha1(data).hexdigest())
    return files


def test_every_classifier_of_a_retained_version_is_fetched_on_demand(arca, central, chain, unique, mvn):
    """After a build retained pom and jar, another build asking for -sources and -javadoc (and a
    Gradle .module, a .asc signature) gets them: fetched, verified by .sha1, into the same version."""
    d = chain
    group = f"org.clf{unique}"
    lay_out(central.files / "maven2", group, "clf", ["1.0"])
    extra = _extra_files(central.files / "maven2", group, "clf", "1.0")
    token = arca.token(d)
    app_url = arca.endpoint(d, "maven", "app")
    first = mvn.project(f"first-{unique}", f"com.c{unique}", "first", "1.0", app_url, deps=[(group, "clf", "1.0")])
    first.write_class(f"com.c{unique}", "Main")
    mvn.run(first, "compile", repo_url=app_url, token=token, strict=True)
    assert _assets(arca, d, "proxy", group, "clf", "1.0") == ["clf-1.0.jar", "clf-1.0.pom"]

    second = mvn.project(f"second-{unique}", f"com.c{unique}", "second", "1.0", app_url,
                         deps=[(group, "clf", "1.0"), (group, "clf", "1.0")])
    pom = (second.dir / "pom.xml").read_text()
    for classifier in ("sources", "javadoc"):
        pom = pom.replace("<version>1.0</version></dependency>",
                          f"<version>1.0</version><classifier>{classifier}</classifier></dependency  >", 1)
    (second.dir / "pom.xml").write_text(pom.replace("</dependency  >", "</dependency>"))
    second.write_class(f"com.c{unique}", "Main")
    mvn.run(second, "compile", repo_url=app_url, token=token, strict=True)
    local = mvn.local_repo / Path(*group.split(".")) / "clf" / "1.0"
    for classifier in ("sources", "javadoc"):
        name = f"clf-1.0-{classifier}.jar"
        assert (local / name).read_bytes() == extra[name]
    base = f"{group.replace('.', '/')}/clf/1.0/"
    for name in ("clf-1.0.module", "clf-1.0.jar.asc"):
        r = _get(arca, d, "app", base + name)
        assert r.status_code == 200 and r.content == extra[name]
    assert _assets(arca, d, "proxy", group, "clf", "1.0") == sorted(["clf-1.0.jar", "clf-1.0.pom", *extra])
    assert arca.boto().list_package_versions(domain=d, repository="proxy", format="maven", namespace=group,
                                             package="clf")["versions"][0]["origin"]["originType"] == "EXTERNAL"


def _snapshot_build(root: Path, group: str, artifact: str, base: str, stamp: str, build: int) -> None:
    """A timestamped SNAPSHOT build on the remote (pom, jar, .sha1s) and its version-level metadata
    naming it the latest, as `mvn deploy` leaves them on a remote repository."""
    version = f"{base}-SNAPSHOT"
    d = root / Path(*group.split(".")) / artifact / version
    d.mkdir(parents=True, exist_ok=True)
    value = f"{base}-{stamp}-{build}"
    for ext, data in (("pom", _pom(group, artifact, version)), ("jar", _jar(f"{artifact} build {build}"))):
        (d / f"{artifact}-{value}.{ext}").write_bytes(data)
        (d / f"{artifact}-{value}.{ext}.sha1").write_text(hashlib.sha1(data).hexdigest())
    entries = "".join(f"<snapshotVersion><extension>{ext}</extension><value>{value}</value>"
                      f"<updated>{stamp.replace('.', '')}</updated></snapshotVersion>" for ext in ("jar", "pom"))
    (d / "maven-metadata.xml").write_text(
        f"<metadata modelVersion=\"1.1.0\"><groupId>{group}</groupId><artifactId>{artifact}</artifactId>"
        f"<version>{version}</version><versioning><snapshot><timestamp>{stamp}</timestamp>"
        f"<buildNumber>{build}</buildNumber></snapshot><lastUpdated>{stamp.replace('.', '')}</lastUpdated>"
        f"<snapshotVersions>{entries}</snapshotVersions></versioning></metadata>")
    (d.parent / "maven-metadata.xml").write_text(
        f"<metadata><groupId>{group}</groupId><artifactId>{artifact}</artifactId><versioning>"
        f"<versions><version>{version}</version></versions></versioning></metadata>")


def test_snapshots_from_the_remote_resolve_and_follow_new_builds(arca, central, chain, unique, mvn, tmp_path):
    d = chain
    group = f"org.snap{unique}"
    files = tmp_path / "own-central"
    _snapshot_build(files / "maven2", group, "snap", "1.0", "20240101.120000", 1)
    own = start_static(files, tmp_path / "own-http.log")
    saved = central.target
    central.target = own.url
    token = arca.token(d)
    app_url = arca.endpoint(d, "maven", "app")
    local = mvn.local_repo / Path(*group.split(".")) / "snap" / "1.0-SNAPSHOT"
    try:
        project = mvn.project(f"snapuser-{unique}", f"com.c{unique}", "snapuser", "1.0", app_url,
                              deps=[(group, "snap", "1.0-SNAPSHOT")])
        project.write_class(f"com.c{unique}", "Main")
        mvn.run(project, "compile", repo_url=app_url, token=token, strict=True)
        assert (local / "snap-1.0-20240101.120000-1.jar").read_bytes() == _jar("snap build 1")
        md = _get(arca, d, "app", f"{group.replace('.', '/')}/snap/1.0-SNAPSHOT/maven-metadata.xml")
        assert md.status_code == 200 and "<buildNumber>1</buildNumber>" in md.text
        # A new build on the remote: `mvn -U` takes it, although the proxy retained build 1.
        _snapshot_build(files / "maven2", group, "snap", "1.0", "20240102.120000", 2)
        mvn.run(project, "-U", "compile", repo_url=app_url, token=token, strict=True)
        assert (local / "snap-1.0-20240102.120000-2.jar").read_bytes() == _jar("snap build 2")
        assert _assets(arca, d, "proxy", group, "snap", "1.0-SNAPSHOT") == sorted(
            f"snap-1.0-2024010{i}.120000-{i}.{ext}" for i in (1, 2) for ext in ("jar", "pom"))
        # The plain `-SNAPSHOT` name changes with every deploy: never taken from a remote.
        assert _get(arca, d, "app", f"{group.replace('.', '/')}/snap/1.0-SNAPSHOT/snap-1.0-SNAPSHOT.jar"
                    ).status_code == 404
        own.stop()  # retained: the remote's last metadata and both builds
        mvn.forget(group)
        mvn.run(project, "-U", "compile", repo_url=app_url, token=token, strict=True)
        assert (local / "snap-1.0-20240102.120000-2.jar").read_bytes() == _jar("snap build 2")
    finally:
        central.target = saved
        own.stop()


def test_directory_listings_merge_the_chain_and_the_remote(arca, central, chain, unique):
    d = chain
    group = f"org.dir{unique}"
    lay_out(central.files / "maven2", group, "lst", ["1.0", "2.0"])
    extra = _extra_files(central.files / "maven2", group, "lst", "1.0")
    token = arca.token(d)
    libs = arca.endpoint(d, "maven", "libs")
    base = f"{group.replace('.', '/')}/lst/3.0/lst-3.0"
    for ext, data in (("pom", _pom(group, "lst", "3.0")), ("jar", _jar("lst 3.0"))):
        assert httpx.put(f"{libs}{base}.{ext}", content=data, auth=("aws", token)).status_code == 201
    arca.boto().update_package_versions_status(domain=d, repository="libs", format="maven", namespace=group,
                                               package="lst", versions=["3.0"], targetStatus="Published")
    # The same artifact published in libs and on the remote: merged only when allowed explicitly.
    arca.boto().put_package_origin_configuration(domain=d, repository="libs", format="maven", namespace=group,
                                                 package="lst", restrictions={"publish": "ALLOW", "upstream": "ALLOW"})
    path = group.replace(".", "/")
    assert _get(arca, d, "app", f"{path}/lst/1.0/lst-1.0.jar").status_code == 200  # retains 1.0 (pom, jar)

    def links(rel):
        r = _get(arca, d, "app", rel)
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html"), (rel, r.text)
        return sorted(re.findall(r'href="([^"]+)"', r.text))

    assert links(f"{path}/lst/") == sorted(["../", "1.0/", "2.0/", "3.0/", "maven-metadata.xml"])
    # A retained version lists the remote's files it has not taken yet, too.
    assert links(f"{path}/lst/1.0/") == sorted(["../", "lst-1.0.jar", "lst-1.0.pom", *extra])
    assert links(f"{path}/lst/3.0/") == ["../", "lst-3.0.jar", "lst-3.0.pom"]
    assert links(f"{path}/lst/2.0/") == ["../", "lst-2.0.jar", "lst-2.0.pom"]  # remote only
    top = group.split(".")[0]
    assert f"{group.split('.')[1]}/" in links(f"{top}/")
    assert links(f"{path}/") == ["../", "lst/"]
    # A repository without upstreams lists its own.
    arca.boto().create_repository(domain=d, repository="solo")
    solo = arca.endpoint(d, "maven", "solo")
    for ext, data in (("pom", _pom(group, "lst", "3.0")), ("jar", _jar("lst 3.0"))):
        assert httpx.put(f"{solo}{base}.{ext}", content=data, auth=("aws", token)).status_code == 201
    arca.boto().update_package_versions_status(domain=d, repository="solo", format="maven", namespace=group,
                                               package="lst", versions=["3.0"], targetStatus="Published")
    for rel, want in ((f"{path}/lst/", ["../", "3.0/", "maven-metadata.xml"]),
                      (f"{path}/lst/3.0/", ["../", "lst-3.0.jar", "lst-3.0.pom"])):
        r = httpx.get(f"{solo}{rel}", auth=("aws", token), timeout=30)
        assert sorted(re.findall(r'href="([^"]+)"', r.text)) == want
    assert _get(arca, d, "app", f"{path}/nothing-here/").status_code == 404
