"""Permission policies: put/get/delete with optimistic locking, validation that names the problem,
and enforcement for a non-admin user on both planes (boto3, raw HTTP, pip, twine, npm and mvn)."""

from __future__ import annotations

import base64
import json
import sys

import httpx
import pytest

from botocore.exceptions import ClientError

from tests import npm_support as ns
from tests import pypi_support as ps

ACCOUNT = "000000000000"


def _code(exc) -> str:
    return exc.value.response["Error"]["Code"]


def user_arn(name: str) -> str:
    return f"arn:aws:iam::{ACCOUNT}:user/{name}"


def policy(*statements) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def allow(who: str, actions, resource="*", effect="Allow", sid=None) -> dict:
    st = {"Effect": effect, "Principal": {"AWS": user_arn(who)}, "Action": actions, "Resource": resource}
    if sid:
        st["Sid"] = sid
    return st


@pytest.fixture(scope="module")
def reader(server):
    """A non-admin user (created once per module: `arca admin` is slow); policies differ per test domain."""
    import uuid

    name = f"reader{uuid.uuid4().hex[:6]}"
    return name, server.new_user(name)


def grant_read(c, domain: str, repo: str, who: str) -> None:
    c.put_domain_permissions_policy(domain=domain, policyDocument=policy(
        allow(who, "codeartifact:GetAuthorizationToken", sid="token")))
    c.put_repository_permissions_policy(domain=domain, repository=repo, policyDocument=policy(
        allow(who, ["codeartifact:ReadFromRepository"], sid="read")))


# ---- the policy resources ---------------------------------------------------------------------------

def test_policy_revisions_and_locking(server, domain):
    c = server.boto()
    c.create_repository(domain=domain, repository="libs")
    doc1 = policy(allow("alice", "codeartifact:ReadFromRepository"))
    doc2 = policy(allow("bob", "codeartifact:*"))
    for put, get, delete, where in (
            (c.put_domain_permissions_policy, c.get_domain_permissions_policy,
             c.delete_domain_permissions_policy, {}),
            (c.put_repository_permissions_policy, c.get_repository_permissions_policy,
             c.delete_repository_permissions_policy, {"repository": "libs"})):
        first = put(domain=domain, policyDocument=doc1, **where)["policy"]
        assert get(domain=domain, **where)["policy"]["document"] == doc1
        second = put(domain=domain, policyDocument=doc2, policyRevision=first["revision"], **where)["policy"]
        assert second["revision"] != first["revision"]
        with pytest.raises(ClientError) as exc:  # a writer holding the old revision loses
            put(domain=domain, policyDocument=doc1, policyRevision=first["revision"], **where)
        assert _code(exc) == "ConflictException"
        with pytest.raises(ClientError) as exc:
            delete(domain=domain, policyRevision=first["revision"], **where)
        assert _code(exc) == "ConflictException"
        assert get(domain=domain, **where)["policy"] == second
        assert delete(domain=domain, policyRevision=second["revision"], **where)["policy"]["document"] == doc2
        with pytest.raises(ClientError) as exc:
            get(domain=domain, **where)
        assert _code(exc) == "ResourceNotFoundException"


@pytest.mark.parametrize("document, problem", [
    ("{not json", "not valid JSON"),
    ("[]", "JSON object"),
    (json.dumps({"Statement": [allow("a", "codeartifact:*")]}), "Version"),
    (json.dumps({"Version": "2012-10-17", "Statement": []}), "at least one Statement"),
    (policy(allow("a", "codeartifact:*", effect="Maybe")), "Effect"),
    (policy({"Effect": "Allow", "Action": "codeartifact:*", "Resource": "*"}), "Principal is required"),
    (policy({"Effect": "Allow", "Principal": {"Federated": "x"}, "Action": "codeartifact:*"}), "Principal must"),
    (policy(allow("a", "s3:GetObject", sid="s3")), "Statement[0] (s3): Action 's3:GetObject'"),
    (policy(allow("a", [])), "Action is required"),
    (policy(allow("a", "codeartifact:*", resource=[1])), "Resource"),
    (policy(*[allow(f"user{i:04}", "codeartifact:ReadFromRepository") for i in range(80)]), "7168"),
])
def test_malformed_policies_are_refused_and_change_nothing(server, domain, document, problem):
    c = server.boto()
    c.create_repository(domain=domain, repository="libs")
    for put, where in ((c.put_domain_permissions_policy, {}),
                       (c.put_repository_permissions_policy, {"repository": "libs"})):
        with pytest.raises(ClientError) as exc:
            put(domain=domain, policyDocument=document, **where)
        assert _code(exc) == "ValidationException"
        assert problem in exc.value.response["Error"]["Message"]
    for get, where in ((c.get_domain_permissions_policy, {}),
                       (c.get_repository_permissions_policy, {"repository": "libs"})):
        with pytest.raises(ClientError) as exc:
            get(domain=domain, **where)
        assert _code(exc) == "ResourceNotFoundException"


# ---- control plane ----------------------------------------------------------------------------------

def test_control_plane_enforcement(server, domain, reader):
    name, key = reader
    admin, user = server.boto(), server.boto(key)
    admin.create_repository(domain=domain, repository="libs")
    admin.create_repository(domain=domain, repository="other")
    with pytest.raises(ClientError) as exc:
        user.get_authorization_token(domain=domain)
    assert _code(exc) == "AccessDeniedException"
    admin.put_domain_permissions_policy(domain=domain, policyDocument=policy(
        allow(name, "codeartifact:GetAuthorizationToken"),
        allow(name, ["codeartifact:Describe*", "codeartifact:List*"],
              resource=[f"arn:aws:codeartifact:*:{ACCOUNT}:repository/{domain}/libs",
                        f"arn:aws:codeartifact:*:{ACCOUNT}:domain/{domain}"])))
    assert user.get_authorization_token(domain=domain)["authorizationToken"]
    assert user.describe_repository(domain=domain, repository="libs")["repository"]["name"] == "libs"
    with pytest.raises(ClientError) as exc:  # the Resource names libs only
        user.describe_repository(domain=domain, repository="other")
    assert _code(exc) == "AccessDeniedException"
    assert [r["name"] for r in user.list_repositories_in_domain(domain=domain)["repositories"]] == ["libs"]
    with pytest.raises(ClientError) as exc:
        user.update_package_versions_status(domain=domain, repository="libs", format="pypi", package="x",
                                            versions=["1"], targetStatus="Archived")
    assert _code(exc) == "AccessDeniedException"
    with pytest.raises(ClientError) as exc:  # the user cannot hand themselves more rights
        user.put_repository_permissions_policy(domain=domain, repository="libs",
                                               policyDocument=policy(allow(name, "codeartifact:*")))
    assert _code(exc) == "AccessDeniedException"
    with pytest.raises(ClientError):
        admin.get_repository_permissions_policy(domain=domain, repository="libs")
    # an explicit Deny wins over any Allow, in either document
    admin.put_repository_permissions_policy(domain=domain, repository="libs", policyDocument=policy(
        allow(name, "codeartifact:DescribeRepository", effect="Deny")))
    with pytest.raises(ClientError) as exc:
        user.describe_repository(domain=domain, repository="libs")
    assert _code(exc) == "AccessDeniedException"
    assert user.list_repositories_in_domain(domain=domain)["repositories"] == []
    # admins are never locked out
    assert admin.describe_repository(domain=domain, repository="libs")["repository"]["name"] == "libs"


def test_wildcard_principal_and_actions(server, domain, reader):
    name, key = reader
    admin, user = server.boto(), server.boto(key)
    admin.create_repository(domain=domain, repository="libs")
    admin.put_domain_permissions_policy(domain=domain, policyDocument=policy(
        {"Effect": "Allow", "Principal": "*", "Action": "codeartifact:Get*", "Resource": "*"}))
    assert user.get_authorization_token(domain=domain)["authorizationToken"]
    assert user.get_repository_endpoint(domain=domain, repository="libs", format="npm")["repositoryEndpoint"]
    with pytest.raises(ClientError) as exc:
        user.describe_domain(domain=domain)
    assert _code(exc) == "AccessDeniedException"


# ---- data plane -------------------------------------------------------------------------------------

def _basic(token: str) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"aws:{token}".encode()).decode()}


def test_maven_layout_read_only_user(server, domain, reader):
    name, key = reader
    admin = server.boto()
    admin.create_repository(domain=domain, repository="libs")
    grant_read(admin, domain, "libs", name)
    admin_token, user_token = server.token(domain), server.token(domain, key)
    url = server.endpoint(domain, "maven", "libs") + "com/acme/x/1.0/x-1.0.jar"
    denied = httpx.put(url, content=b"jar bytes", headers=_basic(user_token), timeout=30)
    assert denied.status_code == 403
    assert admin.list_packages(domain=domain, repository="libs")["packages"] == []
    created = httpx.put(url, content=b"jar bytes", headers=_basic(admin_token), timeout=30)
    assert created.status_code == 201, created.text
    admin.update_package_versions_status(domain=domain, repository="libs", format="maven", namespace="com.acme",
                                         package="x", versions=["1.0"], targetStatus="Published")
    got = httpx.get(url, headers=_basic(user_token), timeout=30)
    assert got.status_code == 200 and got.content == b"jar bytes"
    assert httpx.get(server.endpoint(domain, "maven", "libs"), headers=_basic(user_token), timeout=30).status_code \
        == 200
    # a token of another user with no policy: authenticated, but not allowed
    admin.delete_repository_permissions_policy(domain=domain, repository="libs")
    assert httpx.get(url, headers=_basic(user_token), timeout=30).status_code == 403


def test_pip_installs_but_twine_upload_is_refused(server, domain, reader, tmp_path):
    name, key = reader
    admin = server.boto()
    admin.create_repository(domain=domain, repository="libs")
    grant_read(admin, domain, "libs", name)
    admin_token, user_token = server.token(domain), server.token(domain, key)
    upload_url = server.endpoint(domain, "pypi", "libs")
    ps.twine_upload(upload_url, admin_token, [ps.make_wheel(tmp_path, "policy-demo", "1.0")])
    out = tmp_path / "dl"
    ps.run(ps.pip_cmd(sys.executable, "download", "--no-deps", "-d", out, "--index-url",
                      ps.index_url(server, domain, "libs", user_token), "policy-demo"))
    assert [p.name for p in out.iterdir()] == ["policy_demo-1.0-py3-none-any.whl"]
    refused = ps.twine_upload(upload_url, user_token, [ps.make_wheel(tmp_path / "v2", "policy-demo", "2.0")],
                              check=False)
    assert refused.returncode != 0
    assert "403" in refused.stdout + refused.stderr
    versions = admin.list_package_versions(domain=domain, repository="libs", format="pypi",
                                           package="policy-demo")["versions"]
    assert [v["version"] for v in versions] == ["1.0"]
    with pytest.raises(ClientError) as exc:
        server.boto(key).update_package_versions_status(domain=domain, repository="libs", format="pypi",
                                                        package="policy-demo", versions=["1.0"],
                                                        targetStatus="Archived")
    assert _code(exc) == "AccessDeniedException"


def test_npm_install_but_publish_is_refused(server, domain, reader, tmp_path):
    name, key = reader
    admin = server.boto()
    admin.create_repository(domain=domain, repository="js")
    grant_read(admin, domain, "js", name)
    writer = ns.Registry(server, domain, "js", server.token(domain), tmp_path / "writer")
    ns.write_npmrc(writer.npmrc, writer.url, writer.token)
    writer.publish("policy-lib", "1.0.0")
    user = ns.Registry(server, domain, "js", server.token(domain, key), tmp_path / "user")
    ns.write_npmrc(user.npmrc, user.url, user.token)
    project = ns.write_consumer(tmp_path / "user" / "app", {"policy-lib": "^1.0.0"})
    user.npm("install", cwd=project)
    assert ns.installed_version(project, "policy-lib") == "1.0.0"
    pkg = ns.write_package(tmp_path / "user" / "src", "policy-lib", "1.1.0")
    refused = user.npm("publish", cwd=pkg, check=False)
    assert refused.returncode != 0 and "403" in refused.stdout + refused.stderr
    versions = admin.list_package_versions(domain=domain, repository="js", format="npm",
                                           package="policy-lib")["versions"]
    assert [v["version"] for v in versions] == ["1.0.0"]


def test_explicit_deny_on_the_data_plane(server, domain, reader):
    name, key = reader
    admin = server.boto()
    admin.create_repository(domain=domain, repository="libs")
    admin.put_domain_permissions_policy(domain=domain, policyDocument=policy(allow(name, "codeartifact:*")))
    admin.put_repository_permissions_policy(domain=domain, repository="libs", policyDocument=policy(
        allow(name, "codeartifact:PublishPackageVersion", effect="Deny")))
    token = server.token(domain, key)
    url = server.endpoint(domain, "maven", "libs") + "com/acme/y/1.0/y-1.0.jar"
    assert httpx.put(url, content=b"y", headers=_basic(token), timeout=30).status_code == 403
    assert httpx.get(server.endpoint(domain, "maven", "libs"), headers=_basic(token), timeout=30).status_code == 200
    assert admin.list_packages(domain=domain, repository="libs")["packages"] == []


def test_mvn_resolves_but_deploy_is_refused(server, domain, reader, mvn):
    """The same read-only user with the real mvn: the admin deploys, the reader's build resolves the
    artifact (strict checksums), the reader's deploy fails on the 403."""
    name, key = reader
    admin = server.boto()
    admin.create_repository(domain=domain, repository="libs")
    grant_read(admin, domain, "libs", name)
    url = server.endpoint(domain, "maven", "libs")
    lib = mvn.project(f"lib-{domain}", "com.acme.pol", "lib", "1.0.0", url)
    lib.write_class("com.acme.pol", "Lib", 'public static String hi() { return "hi"; }')
    mvn.run(lib, "deploy", repo_url=url, token=server.token(domain))
    mvn.forget("com.acme.pol")
    user_token = server.token(domain, key)
    app = mvn.project(f"app-{domain}", "com.acme.pol", "app", "1.0.0", url, deps=[("com.acme.pol", "lib", "1.0.0")])
    app.write_class("com.acme.pol", "App", "public static String run() { return Lib.hi(); }")
    mvn.run(app, "compile", repo_url=url, token=user_token, strict=True)
    refused = mvn.run(app, "deploy", repo_url=url, token=user_token, check=False)
    assert refused.returncode != 0 and "403" in refused.stdout, refused.stdout[-2000:]
    versions = admin.list_package_versions(domain=domain, repository="libs", format="maven",
                                           namespace="com.acme.pol", package="lib")["versions"]
    assert [v["version"] for v in versions] == ["1.0.0"]
    with pytest.raises(admin.exceptions.ResourceNotFoundException):
        admin.list_package_versions(domain=domain, repository="libs", format="maven", namespace="com.acme.pol",
                                    package="app")
