"""Driving real `mvn` against a test server: settings.xml, POMs with pinned plugins, and one
local repository per pytest worker holding exactly what those plugins need.

The tests' builds mirror every repository to Arca (mirrorOf=*), so the plugins must already be in
their local repository. Each worker builds it once: a probe project using every pinned plugin is
deployed with M2_SOURCE (Maven's own local repository, ~/.m2/repository) as its only remote, which
copies the plugins and their dependencies, and nothing else, into the worker's repository. Where
M2_SOURCE cannot provide them, they are first resolved the normal way, by mvn from its default
remote repository (Maven Central) into M2_SOURCE, and the run says so (a warning)."""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.server import clean_env, require_tool

M2_SOURCE = Path(os.environ.get("ARCA_TEST_M2", Path.home() / ".m2" / "repository"))
MVN_TIMEOUT = int(os.environ.get("MVN_TIMEOUT", "300"))
SERVER_ID = "arca"
# Maven 3.8.7's default bindings are incomplete in the local repository; this set is complete.
PLUGINS = {"maven-clean-plugin": "3.3.2", "maven-resources-plugin": "3.3.1", "maven-compiler-plugin": "3.11.0",
           "maven-surefire-plugin": "3.2.5", "maven-jar-plugin": "3.4.1", "maven-install-plugin": "3.1.1",
           "maven-deploy-plugin": "3.1.1"}


def settings_xml(repo_url: str) -> str:
    """CodeArtifact-style settings: the token from the environment, a mirrorOf=* mirror (the
    only way to keep Maven off Central) and a same-id repository with snapshots enabled."""
    return f"""<settings>
  <servers>
    <server><id>{SERVER_ID}</id><username>aws</username><password>${{env.CODEARTIFACT_AUTH_TOKEN}}</password></server>
  </servers>
  <mirrors>
    <mirror><id>{SERVER_ID}</id><mirrorOf>*</mirrorOf><url>{repo_url}</url></mirror>
  </mirrors>
  <profiles>
    <profile>
      <id>{SERVER_ID}</id>
      <repositories>
        <repository><id>{SERVER_ID}</id><url>{repo_url}</url>
          <releases><enabled>true</enabled></releases><snapshots><enabled>true</enabled></snapshots></repository>
      </repositories>
    </profile>
  </profiles>
  <activeProfiles><activeProfile>{SERVER_ID}</activeProfile></activeProfiles>
</settings>
"""


def pom_xml(group: str, artifact: str, version: str, repo_url: str, *, deps: list[tuple[str, str, str]] = (),
            description: str = "") -> str:
    plugins = "".join(f"<plugin><groupId>org.apache.maven.plugins</groupId><artifactId>{a}</artifactId>"
                      f"<version>{v}</version></plugin>" for a, v in PLUGINS.items())
    dep_xml = "".join(f"<dependency><groupId>{g}</groupId><artifactId>{a}</artifactId><version>{v}</version>"
                      "</dependency>" for g, a, v in deps)
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>{group}</groupId><artifactId>{artifact}</artifactId><version>{version}</version>
  <description>{description}</description>
  <properties>
    <maven.compiler.release>17</maven.compiler.release>
    <project.build.sourceEncoding>UTF-8</project.build.sourceEncoding>
    <project.build.outputTimestamp>2024-01-01T00:00:00Z</project.build.outputTimestamp>
  </properties>
  <dependencies>{dep_xml}</dependencies>
  <build><pluginManagement><plugins>{plugins}</plugins></pluginManagement></build>
  <distributionManagement>
    <repository><id>{SERVER_ID}</id><url>{repo_url}</url></repository>
    <snapshotRepository><id>{SERVER_ID}</id><url>{repo_url}</url></snapshotRepository>
  </distributionManagement>
</project>
"""


def java_class(package: str, name: str, body: str = "") -> str:
    return f"package {package};\n\npublic class {name} {{\n{body}\n}}\n"


@dataclass
class Project:
    dir: Path
    group: str
    artifact: str
    version: str

    def write_class(self, package: str, name: str, body: str = "") -> Path:
        path = self.dir / "src" / "main" / "java" / Path(*package.split(".")) / f"{name}.java"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(java_class(package, name, body))
        return path

    def built(self, ext: str = "jar") -> Path:
        return self.dir / "target" / f"{self.artifact}-{self.version}.{ext}"


@dataclass
class Mvn:
    mvn: str
    local_repo: Path
    work: Path

    def project(self, name: str, group: str, artifact: str, version: str, repo_url: str, **kwargs) -> Project:
        d = self.work / name
        d.mkdir(parents=True, exist_ok=True)
        (d / "pom.xml").write_text(pom_xml(group, artifact, version, repo_url, **kwargs))
        return Project(d, group, artifact, version)

    def run(self, project: Project, *goals: str, repo_url: str, token: str | None, check: bool = True,
            strict: bool = False) -> subprocess.CompletedProcess:
        settings = project.dir / "settings.xml"
        settings.write_text(settings_xml(repo_url))
        env = clean_env()
        env.pop("CODEARTIFACT_AUTH_TOKEN", None)
        if token is not None:
            env["CODEARTIFACT_AUTH_TOKEN"] = token
        cmd = [self.mvn, "-B", "-q", "-s", str(settings), f"-Dmaven.repo.local={self.local_repo}",
               *(["-C"] if strict else []), *goals]
        proc = subprocess.run(cmd, cwd=project.dir, env=env, capture_output=True, text=True, timeout=MVN_TIMEOUT)
        if check and proc.returncode != 0:
            raise AssertionError(f"mvn {' '.join(goals)} failed ({proc.returncode}):\n{proc.stdout[-6000:]}\n"
                                 f"{proc.stderr[-3000:]}")
        return proc

    def forget(self, group: str) -> None:
        """Drop a group from the local repository, so the next build must resolve it remotely."""
        shutil.rmtree(self.local_repo / Path(*group.split(".")), ignore_errors=True)


class PluginsUnavailable(UserWarning):
    pass


def _probe(work: Path) -> Path:
    """A one-class project whose deploy runs every pinned plugin, deploying into a directory."""
    d = work / "probe"
    (d / "src" / "main" / "java" / "probe").mkdir(parents=True, exist_ok=True)
    (d / "pom.xml").write_text(pom_xml("arca.test", "probe", "1.0", (work / "deployed").as_uri()))
    (d / "src" / "main" / "java" / "probe" / "Probe.java").write_text(java_class("probe", "Probe"))
    return d


def _mvn(exe: str, project: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([exe, "-B", "-q", "-Dstyle.color=never", *args, "deploy"], cwd=project, env=clean_env(),
                          capture_output=True, text=True, timeout=MVN_TIMEOUT)


def _seed(exe: str, dest: Path, work: Path) -> subprocess.CompletedProcess:
    """Resolve the probe's plugins from M2_SOURCE (as a file:// mirror) into a fresh `dest`."""
    shutil.rmtree(dest, ignore_errors=True)
    work.mkdir(parents=True, exist_ok=True)
    settings = work / "seed-settings.xml"
    settings.write_text(f"<settings><mirrors><mirror><id>m2-source</id><mirrorOf>*</mirrorOf>"
                        f"<url>{M2_SOURCE.as_uri()}</url></mirror></mirrors></settings>")
    proc = _mvn(exe, _probe(work), "-s", str(settings), f"-Dmaven.repo.local={dest}")
    # Resolver records where each file came from (the mirror id); without the record the files count
    # as installed locally, so the tests' builds use them whatever their own repository id is.
    for marker in dest.rglob("_remote.repositories"):
        marker.unlink()
    shutil.rmtree(dest / "arca" / "test" / "probe", ignore_errors=True)
    return proc


def _resolve_from_default_remote(exe: str, work: Path) -> None:
    """The normal way: mvn with its default settings and remote (Maven Central) fills M2_SOURCE."""
    with open(Path(tempfile.gettempdir()) / "arca-test-maven-plugins.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one worker at a time writes into M2_SOURCE
        M2_SOURCE.mkdir(parents=True, exist_ok=True)
        proc = _mvn(exe, _probe(work / "resolve"), f"-Dmaven.repo.local={M2_SOURCE}")
    if proc.returncode != 0:
        pytest.fail(f"resolving the pinned Maven plugins into {M2_SOURCE} from Maven's default remote repository "
                    f"failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-2000:]}", pytrace=False)


def local_repository(exe: str, dest: Path, work: Path) -> Path:
    """`dest` holding the pinned plugins and everything they need (resolving them first if
    M2_SOURCE lacks them)."""
    proc = _seed(exe, dest, work / "seed")
    if proc.returncode != 0:
        message = (f"the pinned Maven plugins ({', '.join(f'{a}:{v}' for a, v in PLUGINS.items())}) are not all in "
                   f"{M2_SOURCE}; resolving them with mvn from its default remote repository")
        print(message, file=sys.stderr)
        warnings.warn(message, PluginsUnavailable, stacklevel=2)
        _resolve_from_default_remote(exe, work)
        proc = _seed(exe, dest, work / "seed-again")
        if proc.returncode != 0:
            pytest.fail(f"{M2_SOURCE} still cannot provide the pinned Maven plugins:\n{proc.stdout[-4000:]}",
                        pytrace=False)
    return dest


@pytest.fixture(scope="session")
def maven_local_repo(tmp_path_factory) -> Path:
    """One local repository per pytest worker, shared by its modules (tests use unique groupIds and
    `Mvn.forget` what they must resolve again)."""
    root = tmp_path_factory.mktemp("m2")
    return local_repository(require_tool("mvn"), root / "repository", root / "setup")


@pytest.fixture(scope="module")
def mvn(maven_local_repo, tmp_path_factory) -> Mvn:
    return Mvn(require_tool("mvn"), maven_local_repo, tmp_path_factory.mktemp("mvn-work"))
