"""Private remotes: a second `arca serve` proxies repositories of a first one over authenticated
HTTP through custom external connections (arca create-external-connection). pip, npm and mvn
install through the chain; what was fetched keeps installing when the first Arca is stopped; the
first's domain tokens are renewed before they expire (and at once when it stops accepting one);
credentials are stored sealed, never logged, never returned."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from app import arca_model
from tests.npm_support import Registry, installed_version, write_consumer, write_npmrc
from tests.pypi_support import PY, index_url, make_wheel, pip_cmd, run, twine_upload, wait_for
from tests.support.checks import stored_versions
from tests.support.server import clean_env, start_server
from tests.test_upstream_maven import _jar, _pom
from tests.upstream_support import Remote

FORMATS = ("pypi", "npm", "maven")


class Origin:
    """The first Arca: domain `corp`, repository `libs` holding one package of each format, and a
    non-admin user `mirror` whose keys may get tokens for `corp` and read from it."""

    def __init__(self, root: Path, unique: str):
        self.server = start_server(root / "origin", env={"ARCA_SECRET_KEY": "origin-key-one-" + "o" * 40})
        self.front = Remote(self.server.url)  # counts what the second Arca asks
        s = self.server
        c = s.boto()
        c.create_domain(domain="corp")
        c.create_repository(domain="corp", repository="libs")
        self.key = s.new_user("mirror")
        user_arn = "arn:aws:iam::000000000000:user/mirror"
        c.put_domain_permissions_policy(domain="corp", policyDocument=json.dumps({
            "Version": "2012-10-17", "Statement": [{
                "Effect": "Allow", "Principal": {"AWS": user_arn},
                "Action": ["codeartifact:GetAuthorizationToken", "codeartifact:ReadFromRepository"],
                "Resource": "*"}]}))
        token = s.token("corp")
        self.names = {"pypi": f"corp-lib-{unique}", "npm": f"corp-js-{unique}", "maven": f"com.corp{unique}"}
        twine_upload(s.endpoint("corp", "pypi", "libs"), token,
                     [make_wheel(root / "dist", self.names["pypi"], "1.0", module_source="ORIGIN = 'corp'\n")])
        reg = Registry(s, "corp", "libs", token, root / "npm")
        write_npmrc(reg.npmrc, reg.url, token)
        reg.publish(self.names["npm"], "1.0.0")
        base = f"{self.names['maven'].replace('.', '/')}/core/1.0/core-1.0"
        for ext, data in (("pom", _pom(self.names["maven"], "core", "1.0")), ("jar", _jar("corp core"))):
            r = httpx.put(f"{s.endpoint('corp', 'maven', 'libs')}{base}.{ext}", content=data, auth=("aws", token))
            assert r.status_code == 201
        c.update_package_versions_status(domain="corp", repository="libs", format="maven",
                                         namespace=self.names["maven"], package="core", versions=["1.0"],
                                         targetStatus="Published")

    def url(self, fmt: str) -> str:
        tail = "simple/" if fmt == "pypi" else ""
        return f"{self.front.url}/corp/{fmt}/libs/{tail}"

    def token_requests(self) -> int:
        return self.front.count("/v1/authorization-token", 200)

    def stop(self) -> None:
        self.front.close()
        self.server.stop()


@pytest.fixture
def origin(tmp_path, unique):
    o = Origin(tmp_path, unique)
    yield o
    o.stop()


@pytest.fixture
def mirror(tmp_path):
    srv = start_server(tmp_path / "mirror", log_level="info", env={
        "ARCA_UPSTREAM_MAX_AGE": "0", "ARCA_UPSTREAM_BREAKER_FAILURES": "1000",
        # tokens of 900 s are renewed 897 s before they expire: 3 s after they were issued
        "ARCA_UPSTREAM_TOKEN_REFRESH_SECONDS": "897"})
    yield srv
    srv.stop()


def _token_auth(origin: Origin, seconds: int = 900) -> str:
    return (f"type=CODEARTIFACT_TOKEN,accessKeyId={origin.key['AccessKeyId']},"
            f"secretAccessKey={origin.key['SecretAccessKey']},endpointUrl={origin.front.url},domain=corp,"
            f"durationSeconds={seconds}")


def _connect(mirror, origin: Origin, auth: dict[str, str] | None = None) -> str:
    """Connections corp-<format> on the mirror, each behind a repository, all upstreams of `app`."""
    d = "edge"
    mirror.cli("create-domain", "--domain", d)
    for fmt in FORMATS:
        credentials = (auth or {}).get(fmt) or _token_auth(origin)
        out = mirror.cli_json("create-external-connection", "--name", f"corp-{fmt}", "--format", fmt,
                              "--url", origin.url(fmt), "--authentication", credentials)
        assert out["externalConnection"]["name"] == f"corp-{fmt}"
        mirror.cli("create-repository", "--domain", d, "--repository", f"corp-{fmt}")
        mirror.cli("associate-external-connection", "--domain", d, "--repository", f"corp-{fmt}",
                   "--external-connection", f"corp-{fmt}")
    mirror.cli("create-repository", "--domain", d, "--repository", "app", "--upstreams",
               *[f"repositoryName=corp-{fmt}" for fmt in FORMATS])
    return d


def _install_everything(mirror, origin: Origin, d: str, tmp_path: Path, mvn, tag: str) -> None:
    token = mirror.token(d)
    run(pip_cmd(PY, "install", "--target", str(tmp_path / f"py-{tag}"), "--index-url",
                index_url(mirror, d, "app", token), origin.names["pypi"]), env=clean_env())
    assert (tmp_path / f"py-{tag}" / f"{origin.names['pypi'].replace('-', '_')}" / "__init__.py").read_text() == \
        "ORIGIN = 'corp'\n"
    reg = Registry(mirror, d, "app", token, tmp_path / f"npm-{tag}")
    write_npmrc(reg.npmrc, reg.url, token)
    project = write_consumer(tmp_path / f"js-{tag}", {origin.names["npm"]: "^1.0.0"})
    reg.npm("install", cwd=project)
    assert installed_version(project, origin.names["npm"]) == "1.0.0"
    group = origin.names["maven"]
    mvn.forget(group)
    app_url = mirror.endpoint(d, "maven", "app")
    proj = mvn.project(f"java-{tag}", "com.edge", f"user{tag}", "1.0", app_url, deps=[(group, "core", "1.0")])
    proj.write_class("com.edge", "Main")
    mvn.run(proj, "compile", repo_url=app_url, token=token, strict=True)
    assert (mvn.local_repo / Path(*group.split(".")) / "core" / "1.0" / "core-1.0.jar").read_bytes() == \
        _jar("corp core")


def test_pip_npm_and_mvn_install_through_a_second_arca_and_keep_working_when_it_stops(
        origin, mirror, unique, tmp_path, mvn):
    d = _connect(mirror, origin)
    _install_everything(mirror, origin, d, tmp_path, mvn, "a")
    assert origin.token_requests() == 3  # one domain token per connection, reused for every request
    c = mirror.boto()
    for fmt, name, ns in (("pypi", origin.names["pypi"], None), ("npm", origin.names["npm"], None),
                          ("maven", "core", origin.names["maven"])):
        kw = {"namespace": ns} if ns else {}
        assert sorted(stored_versions(c, domain=d, repository=f"corp-{fmt}", format=fmt, package=name, **kw)) in (
            ["1.0"], ["1.0.0"])
        version = "1.0.0" if fmt == "npm" else "1.0"
        v = c.describe_package_version(domain=d, repository=f"corp-{fmt}", format=fmt, package=name,
                                       packageVersion=version, **kw)["packageVersion"]
        assert v["origin"] == {"domainEntryPoint": {"externalConnectionName": f"corp-{fmt}"},
                               "originType": "EXTERNAL"}
    origin.server.stop()  # the first Arca is gone: what was fetched still installs
    _install_everything(mirror, origin, d, tmp_path, mvn, "b")


def _simple_page_getter(mirror, d: str, origin: Origin):
    page = f"{mirror.endpoint(d, 'pypi', 'corp-pypi')}simple/{origin.names['pypi']}/"

    def get():
        r = httpx.get(page, auth=("aws", mirror.token(d)), timeout=30)
        assert r.status_code == 200, r.text
        return r
    return get


def test_the_first_arcas_tokens_are_renewed_before_they_expire(origin, mirror, unique, tmp_path):
    d = _connect(mirror, origin)
    get = _simple_page_getter(mirror, d, origin)
    get()
    assert origin.token_requests() == 1
    # Due 3 s after it was issued (ARCA_UPSTREAM_TOKEN_REFRESH_SECONDS=897 of 900): the next
    # request after that renews it, while the old one is still valid (no 401 on the way).
    assert wait_for(lambda: get() and origin.token_requests() == 2, timeout=30)
    assert [s for p, s, _ in origin.front.requests if s == 401] == []


def test_a_token_the_first_arca_refuses_is_replaced_after_one_401(origin, mirror, unique, tmp_path):
    # Tokens of 12 hours are not due for renewal during the test: only the 401 can make a new one.
    d = _connect(mirror, origin, auth={"pypi": _token_auth(origin, 43200)})
    get = _simple_page_getter(mirror, d, origin)
    get()
    assert origin.token_requests() == 1
    # The first Arca stops accepting the token (its server key rotated): one 401, a new token, served.
    origin.server.stop()
    origin.server.env["ARCA_SECRET_KEY"] = "origin-key-two-" + "t" * 40
    origin.server.start()
    get()
    assert origin.token_requests() == 2
    assert len([s for p, s, _ in origin.front.requests if s == 401]) == 1


def test_basic_and_bearer_credentials(origin, mirror, unique, tmp_path):
    token = origin.server.token("corp", key=origin.key)
    d = _connect(mirror, origin, auth={"pypi": f"type=BASIC,username=aws,password={token}",
                                       "npm": f"type=BEARER,token={token}"})
    mtoken = mirror.token(d)
    run(pip_cmd(PY, "install", "--target", str(tmp_path / "py"), "--index-url",
                index_url(mirror, d, "app", mtoken), origin.names["pypi"]), env=clean_env())
    reg = Registry(mirror, d, "app", mtoken, tmp_path / "npm")
    write_npmrc(reg.npmrc, reg.url, mtoken)
    project = write_consumer(tmp_path / "js", {origin.names["npm"]: "1.0.0"})
    reg.npm("install", cwd=project)
    assert installed_version(project, origin.names["npm"]) == "1.0.0"
    # Without credentials the first Arca refuses, and the second says which connection failed.
    mirror.cli("update-external-connection", "--name", "corp-pypi", "--authentication", "type=NONE")
    r = wait_for(lambda: (x := httpx.get(f"{mirror.endpoint(d, 'pypi', 'corp-pypi')}simple/nothing-{unique}/",
                                         auth=("aws", mtoken), timeout=30)).status_code == 502 and x)
    assert r and "corp-pypi" in r.text


def test_credentials_are_sealed_never_logged_never_returned(origin, mirror, unique, tmp_path):
    secret = origin.key["SecretAccessKey"]
    d = _connect(mirror, origin)
    run(pip_cmd(PY, "install", "--target", str(tmp_path / "py"), "--index-url",
                index_url(mirror, d, "app", mirror.token(d)), origin.names["pypi"]), env=clean_env())
    shown = [mirror.cli("describe-external-connection", "--name", "corp-pypi").stdout,
             mirror.cli("list-external-connections").stdout]
    for text in shown:
        assert secret not in text and "secretAccessKey" not in text
    desc = json.loads(shown[0])["externalConnection"]
    assert desc["authentication"] == {"type": "CODEARTIFACT_TOKEN", "accessKeyId": origin.key["AccessKeyId"],
                                      "endpointUrl": origin.front.url, "domain": "corp", "durationSeconds": 900}
    assert desc["repositories"] == [f"{d}/corp-pypi"]
    # Nowhere in the second Arca's files (database, log, blobs) in the clear.
    for path in mirror.root.rglob("*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), path
    audit = mirror.admin("audit", "--limit", "1000").stdout
    assert "CreateExternalConnection" in audit and secret not in audit

    # Only administrators define connections; refusals change nothing.
    user = mirror.new_user(f"dev{unique}")
    env = {**mirror.client_env, "AWS_ACCESS_KEY_ID": user["AccessKeyId"],
           "AWS_SECRET_ACCESS_KEY": user["SecretAccessKey"]}
    denied = mirror.cli("create-external-connection", "--name", "mine", "--format", "npm", "--url",
                        "http://127.0.0.1:9/", env=env, check=False)
    assert denied.returncode != 0 and "AccessDeniedException" in denied.stderr
    busy = mirror.cli("delete-external-connection", "--name", "corp-pypi", check=False)
    assert busy.returncode != 0 and "ConflictException" in busy.stderr and f"{d}/corp-pypi" in busy.stderr
    public = mirror.cli("create-external-connection", "--name", "public:mine", "--format", "npm", "--url",
                        "http://127.0.0.1:9/", check=False)
    assert public.returncode != 0 and "ValidationException" in public.stderr
    names = [c["name"] for c in mirror.cli_json("list-external-connections")["externalConnections"]]
    assert names == ["corp-maven", "corp-npm", "corp-pypi"]

    # boto3 speaks Arca's own operations once AWS_DATA_PATH has its model.
    script = ("import boto3; c = boto3.client('arca', endpoint_url=%r, region_name='us-east-1'); "
              "print(sorted(x['name'] for x in c.list_external_connections()['externalConnections']))") % mirror.url
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
                         env={**mirror.client_env, "AWS_DATA_PATH": str(arca_model.DATA_PATH)})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "['corp-maven', 'corp-npm', 'corp-pypi']"


def test_a_sealed_secret_opens_only_with_its_key_for_its_owner():
    from app.auth.sealing import Unsealable, derive_key, seal, unseal

    key = derive_key("server-key-" + "x" * 40, "external-connection-credentials")
    sealed = seal(key, "s3cr3t", "corp-pypi")
    assert "s3cr3t" not in sealed and unseal(key, sealed, "corp-pypi") == "s3cr3t"
    assert seal(key, "s3cr3t", "corp-pypi") != sealed  # a fresh nonce each time
    for other_key, owner, token in ((derive_key("another-key-" + "y" * 40, "external-connection-credentials"),
                                     "corp-pypi", sealed), (key, "corp-npm", sealed),
                                    (key, "corp-pypi", sealed[:-4] + ("AAAA" if sealed[-4:] != "AAAA" else "BBBB"))):
        with pytest.raises(Unsealable):
            unseal(other_key, token, owner)
