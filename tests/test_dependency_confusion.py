"""Dependency confusion in the common layout: `app` has upstreams [internal, proxy], `internal`
holds our packages, `proxy` holds the external connection. A public package with the name of an
internal one and a higher version is neither listed nor fetched through `app` (pip, npm and mvn
all keep installing ours), unless an origin configuration or a package group allows it
explicitly, or the domain turns the protection off (`arca update-domain-settings`)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.npm_support import Registry, installed_version, write_consumer, write_npmrc
from tests.pypi_support import PY, index_url, make_wheel, pip_cmd, run, twine_upload, wait_for, wheel_filename
from tests.support.checks import stored_versions
from tests.support.server import clean_env, start_server
from tests.test_upstream_maven import _jar, _pom, lay_out
from tests.upstream_support import Remote, Verdaccio, start_pypiserver, start_static

JSON = "application/vnd.pypi.simple.v1+json"
PROXIES = {"pypi": "public:pypi", "npm": "public:npmjs", "maven": "public:maven-central"}


@pytest.fixture(scope="module")
def remotes(tmp_path_factory):
    root = tmp_path_factory.mktemp("remotes")
    (root / "pypi").mkdir()
    (root / "maven").mkdir()
    pypi = start_pypiserver(root / "pypi", root / "pypiserver.log")
    static = start_static(root / "maven", root / "http.log")
    verd = Verdaccio(root / "verdaccio")
    out = {"pypi": Remote(pypi.url), "npm": Remote(verd.url), "maven": Remote(static.url)}
    out["pypi"].files, out["maven"].files, out["npm"].verdaccio = root / "pypi", root / "maven", verd
    yield out
    for r in out.values():
        r.close()
    for p in (pypi, static, verd):
        p.stop()


@pytest.fixture(scope="module")
def arca(tmp_path_factory, remotes):
    srv = start_server(tmp_path_factory.mktemp("arca-confusion"), env={
        "ARCA_EXTERNAL_PUBLIC_PYPI": f"{remotes['pypi'].url}/simple/",
        "ARCA_EXTERNAL_PUBLIC_NPMJS": f"{remotes['npm'].url}/",
        "ARCA_EXTERNAL_PUBLIC_MAVEN_CENTRAL": f"{remotes['maven'].url}/",
        "ARCA_UPSTREAM_MAX_AGE": "0", "ARCA_UPSTREAM_BREAKER_FAILURES": "1000"})
    yield srv
    srv.stop()


def _layout(arca, unique: str, fmt: str) -> str:
    """internal; proxy (the format's public connection); app with upstreams [internal, proxy]."""
    d = f"dc{fmt[0]}{unique}"
    c = arca.boto()
    c.create_domain(domain=d)
    c.create_repository(domain=d, repository="internal")
    c.create_repository(domain=d, repository="proxy")
    c.associate_external_connection(domain=d, repository="proxy", externalConnection=PROXIES[fmt])
    c.create_repository(domain=d, repository="app", upstreams=[{"repositoryName": "internal"},
                                                              {"repositoryName": "proxy"}])
    return d


def _versions(arca, d, repo, fmt, name, namespace=None):
    return sorted(stored_versions(arca.boto(), domain=d, repository=repo, format=fmt, package=name,
                                  **({"namespace": namespace} if namespace else {})))


def _protection(arca, d, on: bool) -> None:
    flag = "--dependency-confusion-protection" if on else "--no-dependency-confusion-protection"
    out = arca.cli_json("update-domain-settings", "--domain", d, flag)
    assert out["domainSettings"] == {"domainName": d, "dependencyConfusionProtection": on}


# ---- PyPI ---------------------------------------------------------------------------------------

def test_pip_keeps_installing_the_internal_package(arca, remotes, unique, tmp_path):
    pub = remotes["pypi"]
    d = _layout(arca, unique, "pypi")
    name, free = f"acme-{unique}", f"free-{unique}"
    make_wheel(pub.files, name, "9.9", module_source="ORIGIN = 'public'\n")
    make_wheel(pub.files, free, "1.0")
    twine_upload(arca.endpoint(d, "pypi", "internal"), arca.token(d),
                 [make_wheel(tmp_path / "dist", name, "1.0", module_source="ORIGIN = 'internal'\n")])
    url = index_url(arca, d, "app", arca.token(d))

    def install(target, *reqs, check=True):
        return run(pip_cmd(PY, "install", "--target", str(tmp_path / target), "--index-url", url, *reqs),
                   check=check, env=clean_env())

    def page():
        r = httpx.get(arca.endpoint(d, "pypi", "app") + f"simple/{name}/", auth=("aws", arca.token(d)),
                      headers={"Accept": JSON}, timeout=30)
        assert r.status_code == 200, r.text
        return r.json()["versions"]

    install("a", name)
    assert (tmp_path / "a" / f"acme_{unique}" / "__init__.py").read_text() == "ORIGIN = 'internal'\n"
    assert page() == ["1.0"]
    r = httpx.get(arca.endpoint(d, "pypi", "app") + f"simple/{name}/{wheel_filename(name, '9.9')}",
                  auth=("aws", arca.token(d)), timeout=30)
    assert r.status_code == 404 and "published internally in internal" in r.text, r.text
    refused = install("b", f"{name}==9.9", check=False)
    assert refused.returncode != 0
    # Nothing changed: nothing retained in proxy, internal as it was.
    assert _versions(arca, d, "proxy", "pypi", name) == []
    assert _versions(arca, d, "internal", "pypi", name) == ["1.0"]
    # Protection is per name: other public packages still come through.
    install("c", free)
    assert _versions(arca, d, "proxy", "pypi", free) == ["1.0"]

    # An explicit origin configuration in the repository asked lets the public versions in.
    arca.boto().put_package_origin_configuration(domain=d, repository="app", format="pypi", package=name,
                                                 restrictions={"publish": "ALLOW", "upstream": "ALLOW"})
    assert wait_for(lambda: page() == ["1.0", "9.9"])
    install("d", name)
    assert (tmp_path / "d" / f"acme_{unique}" / "__init__.py").read_text() == "ORIGIN = 'public'\n"


def test_the_domain_setting_turns_the_protection_off(arca, remotes, unique, tmp_path):
    pub = remotes["pypi"]
    d = _layout(arca, unique, "pypi")
    name = f"off-{unique}"
    make_wheel(pub.files, name, "9.9")
    twine_upload(arca.endpoint(d, "pypi", "internal"), arca.token(d), [make_wheel(tmp_path / "dist", name, "1.0")])
    url = index_url(arca, d, "app", arca.token(d))

    def page():
        return httpx.get(arca.endpoint(d, "pypi", "app") + f"simple/{name}/", auth=("aws", arca.token(d)),
                         headers={"Accept": JSON}, timeout=30).json()["versions"]

    assert page() == ["1.0"]
    assert arca.cli_json("describe-domain-settings", "--domain", d)["domainSettings"][
        "dependencyConfusionProtection"] is True
    _protection(arca, d, False)
    assert wait_for(lambda: page() == ["1.0", "9.9"])
    run(pip_cmd(PY, "install", "--target", str(tmp_path / "t"), "--index-url", url, name), env=clean_env())
    assert (tmp_path / "t" / f"off_{unique}-9.9.dist-info").is_dir()
    assert _versions(arca, d, "proxy", "pypi", name) == ["9.9"]
    # On again: the copy retained meanwhile is not served through app either (it stays in proxy).
    _protection(arca, d, True)
    assert wait_for(lambda: page() == ["1.0"])
    r = httpx.get(arca.endpoint(d, "pypi", "app") + f"simple/{name}/{wheel_filename(name, '9.9')}",
                  auth=("aws", arca.token(d)), timeout=30)
    assert r.status_code == 404 and "published internally in internal" in r.text
    assert _versions(arca, d, "proxy", "pypi", name) == ["9.9"]


def test_a_package_group_allows_external_versions_explicitly(arca, remotes, unique, tmp_path):
    pub = remotes["pypi"]
    d = _layout(arca, unique, "pypi")
    name = f"grp-{unique}"
    make_wheel(pub.files, name, "9.9")
    twine_upload(arca.endpoint(d, "pypi", "internal"), arca.token(d), [make_wheel(tmp_path / "dist", name, "1.0")])

    def page():
        return httpx.get(arca.endpoint(d, "pypi", "app") + f"simple/{name}/", auth=("aws", arca.token(d)),
                         headers={"Accept": JSON}, timeout=30).json()["versions"]

    assert page() == ["1.0"]
    c = arca.boto()
    c.create_package_group(domain=d, packageGroup=f"/pypi//{name}$")
    # A group that INHERITs from the root's default is no one's decision: still protected.
    assert page() == ["1.0"]
    c.update_package_group_origin_configuration(domain=d, packageGroup=f"/pypi//{name}$",
                                                restrictions={"EXTERNAL_UPSTREAM": "ALLOW"})
    assert wait_for(lambda: page() == ["1.0", "9.9"])


# ---- npm ----------------------------------------------------------------------------------------

def test_npm_keeps_installing_the_internal_package(arca, remotes, unique, tmp_path):
    verd = remotes["npm"].verdaccio
    d = _layout(arca, unique, "npm")
    token = arca.token(d)
    regs = {}
    for repo in ("app", "internal"):
        reg = Registry(arca, d, repo, token, tmp_path / repo)
        write_npmrc(reg.npmrc, reg.url, token)
        regs[repo] = reg
    name = f"acme-{unique}"
    regs["internal"].publish(name, "1.0.0")
    verd.publish(name, "9.9.0", source="module.exports = 'public';\n")
    p = write_consumer(tmp_path / "c1", {name: "*"})
    regs["app"].npm("install", cwd=p)
    assert installed_version(p, name) == "1.0.0"
    doc = regs["app"].packument(name).json()
    assert sorted(doc["versions"]) == ["1.0.0"] and doc["dist-tags"]["latest"] == "1.0.0"
    with regs["app"].http() as c:
        r = c.get(f"{name}/-/{name}-9.9.0.tgz")
    assert r.status_code == 404 and "published internally in internal" in r.json()["error"]
    refused = regs["app"].npm("install", cwd=write_consumer(tmp_path / "c2", {name: "9.9.0"}), check=False)
    assert refused.returncode != 0
    assert _versions(arca, d, "proxy", "npm", name) == []
    assert _versions(arca, d, "internal", "npm", name) == ["1.0.0"]

    _protection(arca, d, False)
    assert wait_for(lambda: sorted(regs["app"].packument(name).json()["versions"]) == ["1.0.0", "9.9.0"])
    p3 = write_consumer(tmp_path / "c3", {name: "9.9.0"})
    regs["app"].npm("install", cwd=p3, cache=tmp_path / "cache3")
    assert installed_version(p3, name) == "9.9.0"


# ---- Maven --------------------------------------------------------------------------------------

def test_mvn_keeps_resolving_the_internal_artifact(arca, remotes, unique, mvn, tmp_path):
    central = remotes["maven"]
    d = _layout(arca, unique, "maven")
    group = f"com.acme{unique}"
    token = arca.token(d)
    internal = arca.endpoint(d, "maven", "internal")
    base = f"{group.replace('.', '/')}/core/1.0/core-1.0"
    for ext, data in (("pom", _pom(group, "core", "1.0")), ("jar", _jar("internal core"))):
        assert httpx.put(f"{internal}{base}.{ext}", content=data, auth=("aws", token)).status_code == 201
    arca.boto().update_package_versions_status(domain=d, repository="internal", format="maven", namespace=group,
                                               package="core", versions=["1.0"], targetStatus="Published")
    lay_out(central.files, group, "core", ["9.9"])
    app_url = arca.endpoint(d, "maven", "app")
    md = httpx.get(f"{app_url}{group.replace('.', '/')}/core/maven-metadata.xml", auth=("aws", token), timeout=30)
    assert "<version>1.0</version>" in md.text and "9.9" not in md.text
    # A version range takes the highest listed version: ours.
    project = mvn.project(f"consumer-{unique}", f"com.c{unique}", "consumer", "1.0", app_url,
                          deps=[(group, "core", "[1.0,)")])
    project.write_class(f"com.c{unique}", "Main")
    mvn.run(project, "compile", repo_url=app_url, token=token, strict=True)
    local = mvn.local_repo / Path(*group.split(".")) / "core"
    assert (local / "1.0" / "core-1.0.jar").read_bytes() == _jar("internal core")
    assert not (local / "9.9").exists()
    r = httpx.get(f"{app_url}{group.replace('.', '/')}/core/9.9/core-9.9.jar", auth=("aws", token), timeout=30)
    assert r.status_code == 404 and "published internally in internal" in r.text
    assert _versions(arca, d, "proxy", "maven", "core", group) == []

    _protection(arca, d, False)
    mvn.forget(group)
    assert wait_for(lambda: "<version>9.9</version>" in httpx.get(
        f"{app_url}{group.replace('.', '/')}/core/maven-metadata.xml", auth=("aws", token), timeout=30).text)
    mvn.run(project, "compile", repo_url=app_url, token=token, strict=True)
    assert (local / "9.9" / "core-9.9.jar").read_bytes() == _jar("core 9.9")
