"""Every external connection Arca accepts works, and the ones it cannot serve are refused.

Each Maven public:* connection (maven-central is in test_upstream_maven) has its own configurable
URL and is exercised here against its own static Maven-layout server with real mvn; connections
and repository endpoints of formats Arca does not serve are refused with a ValidationException
that says so, and nothing changes."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.config import EXTERNAL_DEFAULTS, external_env_name, settings_from_env
from app.domain.connections import PUBLIC, SERVED_FORMATS
from tests.support.checks import stored_assets
from tests.support.server import start_server
from tests.test_upstream_maven import _jar, lay_out
from tests.upstream_support import Remote, start_static

MAVEN = ["public:maven-googleandroid", "public:maven-gradleplugins", "public:maven-commonsware",
         "public:maven-clojars"]
UNSERVED = sorted(n for n, f in PUBLIC.items() if f not in SERVED_FORMATS)


@pytest.fixture(scope="module")
def remotes(tmp_path_factory):
    out = {}
    for name in MAVEN:
        root = tmp_path_factory.mktemp(name.split(":")[1])
        (root / "files").mkdir()
        srv = start_static(root / "files", root / "http.log")
        out[name] = (Remote(srv.url), srv, root / "files")
    yield out
    for remote, srv, _files in out.values():
        remote.close()
        srv.stop()


@pytest.fixture(scope="module")
def arca(tmp_path_factory, remotes):
    env = {external_env_name(name): f"{remote.url}/" for name, (remote, _s, _f) in remotes.items()}
    srv = start_server(tmp_path_factory.mktemp("arca-ext"), env={**env, "ARCA_UPSTREAM_MAX_AGE": "0"})
    yield srv
    srv.stop()


def test_every_served_public_connection_has_a_default_url_and_a_setting():
    settings = settings_from_env({})
    served = sorted(n for n, f in PUBLIC.items() if f in SERVED_FORMATS)
    assert sorted(EXTERNAL_DEFAULTS) == served
    for name in served:
        assert settings.external[name].startswith("https://")
        custom = settings_from_env({external_env_name(name): "http://mirror.test/m2"})
        assert custom.external[name] == "http://mirror.test/m2"


@pytest.mark.parametrize("connection", MAVEN)
def test_a_maven_public_connection_resolves_through_its_own_remote(arca, remotes, unique, mvn, connection):
    remote, _srv, files = remotes[connection]
    d = f"x{unique}"
    c = arca.boto()
    c.create_domain(domain=d)
    c.create_repository(domain=d, repository="proxy")
    out = c.associate_external_connection(domain=d, repository="proxy", externalConnection=connection)
    assert out["repository"]["externalConnections"] == [
        {"externalConnectionName": connection, "packageFormat": "maven", "status": "Available"}]
    c.create_repository(domain=d, repository="app", upstreams=[{"repositoryName": "proxy"}])
    group = f"org.{connection.split('-')[1]}{unique}"
    lay_out(files, group, "lib", ["1.0"])
    app_url = arca.endpoint(d, "maven", "app")
    project = mvn.project(f"use-{unique}", f"com.c{unique}", "use", "1.0", app_url, deps=[(group, "lib", "1.0")])
    project.write_class(f"com.c{unique}", "Main")
    mvn.run(project, "compile", repo_url=app_url, token=arca.token(d), strict=True)
    jar = mvn.local_repo / Path(*group.split(".")) / "lib" / "1.0" / "lib-1.0.jar"
    assert jar.read_bytes() == _jar("lib 1.0")
    jar_path = f"/{group.replace('.', '/')}/lib/1.0/lib-1.0.jar"
    assert [p for p, status, _inm in remote.requests if p == jar_path and status == 200] == [jar_path]
    assert stored_assets(c, domain=d, repository="proxy", format="maven", namespace=group, package="lib",
                         version="1.0") == ["lib-1.0.jar", "lib-1.0.pom"]
    v = c.describe_package_version(domain=d, repository="proxy", format="maven", namespace=group, package="lib",
                                   packageVersion="1.0")["packageVersion"]
    assert v["origin"]["domainEntryPoint"] == {"externalConnectionName": connection}


@pytest.mark.parametrize("connection", UNSERVED)
def test_connections_of_formats_arca_does_not_serve_are_refused(arca, unique, connection):
    d = f"r{unique}"
    arca.cli("create-domain", "--domain", d)
    arca.cli("create-repository", "--domain", d, "--repository", "proxy")
    proc = arca.cli("associate-external-connection", "--domain", d, "--repository", "proxy",
                    "--external-connection", connection, check=False)
    assert proc.returncode != 0 and "ValidationException" in proc.stderr
    assert f"serves {PUBLIC[connection]} packages, which Arca does not serve" in proc.stderr
    assert arca.cli_json("describe-repository", "--domain", d, "--repository", "proxy")["repository"][
        "externalConnections"] == []


@pytest.mark.parametrize("fmt", ["nuget", "ruby", "cargo", "swift", "generic"])
def test_an_endpoint_for_a_format_arca_does_not_serve_is_refused(arca, unique, fmt):
    d = f"e{unique}"
    arca.cli("create-domain", "--domain", d)
    arca.cli("create-repository", "--domain", d, "--repository", "repo")
    proc = arca.cli("get-repository-endpoint", "--domain", d, "--repository", "repo", "--format", fmt, check=False)
    assert proc.returncode != 0 and "ValidationException" in proc.stderr
    assert f"Arca does not serve {fmt} packages" in proc.stderr and proc.stdout == ""
    for served in SERVED_FORMATS:
        url = arca.cli_json("get-repository-endpoint", "--domain", d, "--repository", "repo",
                            "--format", served)["repositoryEndpoint"]
        assert url == arca.endpoint(d, served, "repo")
