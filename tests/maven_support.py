"""Driving real `mvn` against a test server: settings.xml, POMs with pinned plugins, and one
copy of ~/.m2/repository per test module (Maven Central is unreachable here)."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.server import clean_env, require_tool

M2_SOURCE = Path(os.environ.get("ARCA_TEST_M2", Path.home() / ".m2" / "repository"))
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
        proc = subprocess.run(cmd, cwd=project.dir, env=env, capture_output=True, text=True, timeout=int(__import__("os").environ.get("MVN_TIMEOUT", "300")))
        if check and proc.returncode != 0:
            raise AssertionError(f"mvn {' '.join(goals)} failed ({proc.returncode}):\n{proc.stdout[-6000:]}\n"
                                 f"{proc.stderr[-3000:]}")
        return proc

    def forget(self, group: str) -> None:
        """Drop a group from the local repository, so the next build must resolve it remotely."""
        shutil.rmtree(self.local_repo / Path(*group.split(".")), ignore_errors=True)


@pytest.fixture(scope="module")
def mvn(tmp_path_factory) -> Mvn:
    exe = require_tool("mvn")
    if not M2_SOURCE.is_dir():
        pytest.fail(f"{M2_SOURCE} is missing: the Maven tests need the plugins in a local repository")
    root = tmp_path_factory.mktemp("m2")
    local = root / "repository"
    shutil.copytree(M2_SOURCE, local, symlinks=True)
    return Mvn(exe, local, root / "work")
