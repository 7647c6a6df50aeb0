"""`aws codeartifact login` (the real AWS CLI) and `arca login` configure pip, twine, npm and Maven
so that the tools then work against Arca unchanged."""

from __future__ import annotations

import configparser
import stat
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from app.cli import login
from tests import npm_support as ns
from tests import pypi_support as ps
from tests.support.server import ARCA, clean_env, require_tool



@pytest.fixture(scope="module")
def repos(server, tmp_path_factory):
    """One domain with a PyPI repository holding `login-demo 1.0` and an npm one holding `login-lib`."""
    import uuid

    domain = f"l{uuid.uuid4().hex[:8]}"
    c = server.boto()
    c.create_domain(domain=domain)
    c.create_repository(domain=domain, repository="py")
    c.create_repository(domain=domain, repository="js")
    token = server.token(domain)
    work = tmp_path_factory.mktemp("login-repos")  # it was a tempfile.mkdtemp() nobody removed
    ps.twine_upload(server.endpoint(domain, "pypi", "py"), token, [ps.make_wheel(work, "login-demo", "1.0")])
    reg = ns.Registry(server, domain, "js", token, work / "npm-admin")
    ns.write_npmrc(reg.npmrc, reg.url, token)
    reg.publish("login-lib", "1.0.0")
    return domain


def home_env(server, home: Path, **extra) -> dict:
    """A client environment whose only configuration is what login writes into `home`."""
    env = clean_env(HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"),
                    AWS_ACCESS_KEY_ID=server.access_key["AccessKeyId"],
                    AWS_SECRET_ACCESS_KEY=server.access_key["SecretAccessKey"], AWS_DEFAULT_REGION="us-east-1",
                    ARCA_ENDPOINT_URL=server.url, npm_config_cache=str(home / "npm-cache"),
                    npm_config_update_notifier="false", npm_config_fund="false", npm_config_audit="false",
                    **extra)
    if "PIP_CONFIG_FILE" not in extra:
        env.pop("PIP_CONFIG_FILE")  # let pip read the user file login writes
    return env


def run(cmd, env, cwd=None, check=True) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(c) for c in cmd], env=env, cwd=cwd, capture_output=True, text=True, timeout=300)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, cmd))} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def pip_download(env, dest: Path, name: str = "login-demo==1.0") -> list[str]:
    """A pinned download: another test of this module uploads login-demo 1.1 to the same repository."""
    run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-cache-dir", "-d", dest, name], env)
    return sorted(p.name for p in dest.iterdir())


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def versions(server, domain, repo, fmt, package) -> list[str]:
    return [v["version"] for v in server.boto().list_package_versions(domain=domain, repository=repo, format=fmt,
                                                                      package=package)["versions"]]


# ---- the AWS CLI ------------------------------------------------------------------------------------

def test_aws_cli_login_pip(server, repos, tmp_path):
    env = home_env(server, tmp_path)
    out = run([require_tool("aws"), "codeartifact", "login", "--tool", "pip", "--domain", repos, "--repository", "py",
               "--endpoint-url", server.url], env)
    assert "Successfully configured pip" in out.stdout
    listed = run([sys.executable, "-m", "pip", "config", "list"], env).stdout
    assert "global.index-url='http://aws:" in listed and f"@{server.hostport}/{repos}/pypi/py/simple/'" in listed
    assert pip_download(env, tmp_path / "dl") == ["login_demo-1.0-py3-none-any.whl"]


def test_aws_cli_login_twine(server, repos, tmp_path):
    env = home_env(server, tmp_path)
    run([require_tool("aws"), "codeartifact", "login", "--tool", "twine", "--domain", repos, "--repository", "py",
         "--endpoint-url", server.url], env)
    rc = configparser.ConfigParser()
    rc.read(tmp_path / ".pypirc")
    assert rc["codeartifact"]["repository"] == server.endpoint(repos, "pypi", "py")
    assert rc["codeartifact"]["username"] == "aws"
    wheel = ps.make_wheel(tmp_path / "dist", "login-demo", "1.1")
    run([ps.TWINE, "upload", "--disable-progress-bar", "--non-interactive", "--repository", "codeartifact", wheel],
        env)
    assert "1.1" in versions(server, repos, "py", "pypi", "login-demo")


def test_aws_cli_login_npm(server, repos, tmp_path):
    npm = require_tool("npm")
    env = home_env(server, tmp_path, NPM_CONFIG_USERCONFIG=str(tmp_path / "npmrc"))
    run([require_tool("aws"), "codeartifact", "login", "--tool", "npm", "--domain", repos, "--repository", "js",
         "--endpoint-url", server.url], env)
    text = (tmp_path / "npmrc").read_text()
    assert f"registry={server.endpoint(repos, 'npm', 'js')}" in text
    assert f"//{server.hostport}/{repos}/npm/js/:_authToken=" in text
    project = ns.write_consumer(tmp_path / "app", {"login-lib": "^1.0.0"})
    run([npm, "install"], env, cwd=project)
    assert ns.installed_version(project, "login-lib") == "1.0.0"


# ---- arca login --------------------------------------------------------------------------------------

def arca_login(env, *args, check=True):
    return run([ARCA, "login", *args], env, check=check)


def test_arca_login_pip_keeps_the_public_index(server, repos, tmp_path):
    conf = tmp_path / "pip.conf"
    conf.write_text("[global]\ntimeout = 60\n")
    public = "http://127.0.0.1:9/simple/"  # stands in for https://pypi.org/simple/ (no internet here)
    env = home_env(server, tmp_path, PIP_CONFIG_FILE=str(conf), PIP_RETRIES="0")
    out = arca_login(env, "--tool", "pip", "--domain", repos, "--repository", "py", "--extra-index-url", public)
    assert "Successfully configured pip" in out.stdout and "Login expires in 12 hours" in out.stdout
    assert mode(conf) == 0o600
    cp = configparser.ConfigParser()
    cp.read(conf)
    assert cp["global"]["timeout"] == "60"  # the rest of the file is kept
    assert cp["global"]["index-url"].startswith("http://aws:")
    assert cp["global"]["index-url"].endswith(f"@{server.hostport}/{repos}/pypi/py/simple/")
    assert cp["global"]["extra-index-url"].split() == [public]
    listed = run([sys.executable, "-m", "pip", "config", "list"], env).stdout
    assert "global.extra-index-url" in listed
    # pip asks both; the private one answers (the stand-in public one refuses, which pip tolerates)
    assert pip_download(env, tmp_path / "dl") == ["login_demo-1.0-py3-none-any.whl"]


def test_arca_login_pip_user_file(server, repos, tmp_path):
    env = home_env(server, tmp_path)
    arca_login(env, "--tool", "pip", "--domain", repos, "--repository", "py", "--duration-seconds", "900")
    conf = tmp_path / ".config" / "pip" / "pip.conf"
    assert mode(conf) == 0o600
    assert pip_download(env, tmp_path / "dl") == ["login_demo-1.0-py3-none-any.whl"]


def test_arca_login_twine(server, repos, tmp_path):
    (tmp_path / ".pypirc").write_text("[distutils]\nindex-servers =\n    pypi\n\n[pypi]\nusername = __token__\n")
    env = home_env(server, tmp_path)
    arca_login(env, "--tool", "twine", "--domain", repos, "--repository", "py")
    rc = configparser.ConfigParser()
    rc.read(tmp_path / ".pypirc")
    assert rc["distutils"]["index-servers"].split() == ["pypi", "codeartifact"]
    assert rc["pypi"]["username"] == "__token__"
    assert rc["codeartifact"]["repository"] == server.endpoint(repos, "pypi", "py")
    assert mode(tmp_path / ".pypirc") == 0o600
    wheel = ps.make_wheel(tmp_path / "dist", "login-demo", "1.2")
    run([ps.TWINE, "upload", "--disable-progress-bar", "--non-interactive", "-r", "codeartifact", wheel], env)
    assert "1.2" in versions(server, repos, "py", "pypi", "login-demo")


def test_arca_login_npm_and_scope(server, repos, tmp_path):
    npm = require_tool("npm")
    rc = tmp_path / "npmrc"
    rc.write_text("fund=false\nregistry=https://registry.npmjs.org/\n")
    env = home_env(server, tmp_path, NPM_CONFIG_USERCONFIG=str(rc))
    arca_login(env, "--tool", "npm", "--domain", repos, "--repository", "js")
    lines = rc.read_text().splitlines()
    assert lines[0] == "fund=false"
    assert [x for x in lines if x.startswith("registry=")] == [f"registry={server.endpoint(repos, 'npm', 'js')}"]
    assert mode(rc) == 0o600
    project = ns.write_consumer(tmp_path / "app", {"login-lib": "1.0.0"})
    run([npm, "install"], env, cwd=project)
    assert ns.installed_version(project, "login-lib") == "1.0.0"
    arca_login(env, "--tool", "npm", "--domain", repos, "--repository", "js", "--namespace", "acme")
    text = rc.read_text()
    assert f"@acme:registry={server.endpoint(repos, 'npm', 'js')}" in text
    assert text.count(":_authToken=") == 1  # replaced, not duplicated


def test_arca_login_dry_run_writes_nothing(server, repos, tmp_path):
    env = home_env(server, tmp_path, NPM_CONFIG_USERCONFIG=str(tmp_path / "npmrc"))
    for tool, repo, path in (("pip", "py", tmp_path / ".config" / "pip" / "pip.conf"),
                             ("twine", "py", tmp_path / ".pypirc"), ("npm", "js", tmp_path / "npmrc")):
        out = arca_login(env, "--tool", tool, "--domain", repos, "--repository", repo, "--dry-run")
        assert f"would write {path}" in out.stdout
        assert server.endpoint(repos, "pypi" if tool != "npm" else "npm", repo).split("://")[1] in out.stdout
        assert not path.exists()


def test_arca_login_maven_prints_or_merges_settings(server, repos, tmp_path):
    env = home_env(server, tmp_path)
    out = arca_login(env, "--tool", "maven", "--domain", repos, "--repository", "py").stdout
    assert "CODEARTIFACT_AUTH_TOKEN" in out
    printed = ET.fromstring(out.split("-->", 1)[1])
    assert printed.find("servers/server/password").text == "${env.CODEARTIFACT_AUTH_TOKEN}"
    assert printed.find("mirrors/mirror/url").text == server.endpoint(repos, "maven", "py")
    settings = tmp_path / "settings.xml"
    settings.write_text('<settings xmlns="http://maven.apache.org/SETTINGS/1.0.0"><servers><server><id>corp</id>'
                        "<username>u</username></server><server><id>codeartifact</id><username>old</username>"
                        "</server></servers></settings>")
    arca_login(env, "--tool", "maven", "--domain", repos, "--repository", "py", "--settings-file", str(settings))
    assert mode(settings) == 0o600
    ns_ = {"m": "http://maven.apache.org/SETTINGS/1.0.0"}
    root = ET.parse(settings).getroot()
    servers = {s.find("m:id", ns_).text: s.find("m:username", ns_).text
               for s in root.findall("m:servers/m:server", ns_)}
    assert servers == {"corp": "u", "codeartifact": "aws"}
    assert root.find("m:profiles/m:profile/m:repositories/m:repository/m:url", ns_).text == \
        server.endpoint(repos, "maven", "py")
    assert [e.text for e in root.findall("m:activeProfiles/m:activeProfile", ns_)] == ["codeartifact"]


def test_arca_login_errors(server, repos, tmp_path):
    env = home_env(server, tmp_path)
    bad = arca_login(env, "--tool", "npm", "--domain", repos, "--repository", "js", "--extra-index-url", "x",
                     check=False)
    assert bad.returncode == 2 and "pip only" in bad.stderr
    missing = arca_login(env, "--tool", "pip", "--domain", repos, "--repository", "nope", check=False)
    assert missing.returncode == 254 and "ResourceNotFoundException" in missing.stderr
    assert not (tmp_path / ".config" / "pip" / "pip.conf").exists()


# ---- pure functions ----------------------------------------------------------------------------------

def test_config_writers_are_idempotent():
    ep, tok = "http://h:1/d/pypi/r/", "T"
    once = login.pip_config("", ep, tok, [])
    assert login.pip_config(once, ep, tok, []) == once
    rc = login.pypirc_config("", ep, tok)
    assert login.pypirc_config(rc, ep, tok) == rc
    npmrc = login.npmrc_config("", "http://h:1/d/npm/r/", tok, None)
    assert npmrc == "registry=http://h:1/d/npm/r/\n//h:1/d/npm/r/:_authToken=T\n"
    assert login.npmrc_config(npmrc, "http://h:1/d/npm/r/", "U", None).count("_authToken") == 1
    xml = login.maven_settings("", "http://h:1/d/maven/r/", "codeartifact")
    assert login.maven_settings(xml, "http://h:1/d/maven/r/", "codeartifact") == xml
    assert login.TOOLS == {"pip": "pypi", "twine": "pypi", "npm": "npm", "maven": "maven"}  # tool -> format
