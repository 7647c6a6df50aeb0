"""Issue 15 items 6 and 7: trusted publishing. A local OIDC issuer (its own key pair, JWKS on loopback)
signs GitHub-Actions-shaped tokens; an administrator registers it and a role whose trust policy
names the repository and branch; `arca login --oidc-token-file` (and the AWS CLI's
assume-role-with-web-identity) turn a token into temporary credentials with which `twine upload` and
`npm publish` succeed. Wrong audience, expired, unknown key, `alg: none` and claims the trust policy
refuses are each refused with their reason, and create nothing."""

from __future__ import annotations

import configparser
import json
import subprocess
import time
from datetime import datetime

import boto3
import httpx
import pytest
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import ClientError

from tests import pypi_support as ps
from tests.npm_support import Registry, write_package
from tests.support import dbdump
from tests.support.oidc_issuer import Issuer, github_claims
from tests.support.server import ARCA, clean_env, require_tool, start_server

ACCOUNT = "000000000000"


@pytest.fixture(scope="module")
def issuer():
    with Issuer() as iss:
        yield iss


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    # an unknown kid may refetch the issuer's keys at once (the default waits 10 s between refetches)
    server = start_server(tmp_path_factory.mktemp("tp"), env={"ARCA_OIDC_JWKS_MIN_REFRESH": "0"})
    yield server
    server.stop()


def iam_client(server):
    return boto3.client("iam", endpoint_url=server.url, region_name="us-east-1",
                        aws_access_key_id=server.access_key["AccessKeyId"],
                        aws_secret_access_key=server.access_key["SecretAccessKey"],
                        config=Config(retries={"max_attempts": 1}))


def sts_anonymous(server):
    return boto3.client("sts", endpoint_url=server.url, region_name="us-east-1",
                        config=Config(signature_version=UNSIGNED, retries={"max_attempts": 1}))


def sessions(server) -> int:
    return dbdump.scalar(server.env["ARCA_DATABASE_URL"], "SELECT count(*) FROM role_sessions")


@pytest.fixture(scope="module")
def setup(srv, issuer):
    """Domain `ci` with repository `pub`; provider; role `publisher` trusting acme/widgets on main."""
    srv.create_repo("ci", "pub")
    out = json.loads(srv.admin("create-oidc-provider", "--url", issuer.url, "--audience", "arca").stdout)
    provider_arn = out["OpenIDConnectProviderArn"]
    assert provider_arn == f"arn:aws:iam::{ACCOUNT}:oidc-provider/{issuer.host}"
    trust = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Federated": provider_arn}, "Action": "sts:AssumeRoleWithWebIdentity",
        "Condition": {"StringEquals": {f"{issuer.host}:aud": "arca", f"{issuer.host}:repository": "acme/widgets"},
                      "StringLike": {f"{issuer.host}:sub": "repo:acme/widgets:ref:refs/heads/main"}}}]}
    iam = iam_client(srv)
    role = iam.create_role(RoleName="publisher", AssumeRolePolicyDocument=json.dumps(trust),
                           Description="CI publishing", MaxSessionDuration=3600)["Role"]
    iam.put_role_policy(RoleName="publisher", PolicyName="publish", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": [
            "codeartifact:GetAuthorizationToken", "codeartifact:GetRepositoryEndpoint",
            "codeartifact:ReadFromRepository", "codeartifact:PublishPackageVersion"], "Resource": "*"}]}))
    return {"role_arn": role["Arn"], "provider_arn": provider_arn, "trust": trust}


def test_roles_and_providers_follow_iams_shapes(srv, issuer, setup):
    iam = iam_client(srv)
    role = iam.get_role(RoleName="publisher")["Role"]
    assert role["Arn"] == f"arn:aws:iam::{ACCOUNT}:role/publisher" and role["MaxSessionDuration"] == 3600
    assert role["AssumeRolePolicyDocument"] == setup["trust"] and role["Description"] == "CI publishing"
    assert "publisher" in [r["RoleName"] for r in iam.list_roles()["Roles"]]
    assert iam.list_role_policies(RoleName="publisher")["PolicyNames"] == ["publish"]
    provider = iam.get_open_id_connect_provider(OpenIDConnectProviderArn=setup["provider_arn"])
    assert provider["Url"] == issuer.host and provider["ClientIDList"] == ["arca"]
    assert {"Arn": setup["provider_arn"]} in iam.list_open_id_connect_providers()["OpenIDConnectProviderList"]
    # a trust policy Arca would not enforce exactly is refused, and the role stays as it was
    for bad, says in (({"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRoleWithWebIdentity"},
                       "Federated"),
                      ({"Effect": "Allow", "Principal": {"Federated": setup["provider_arn"]},
                        "Action": "sts:AssumeRoleWithWebIdentity", "Resource": "*"}, "has no Resource"),
                      ({"Effect": "Allow", "Principal": {"Federated": setup["provider_arn"]},
                        "Action": "sts:AssumeRoleWithWebIdentity",
                        "Condition": {"StringEquals": {"aws:SourceVpc": "x"}}}, "aws:SourceVpc")):
        with pytest.raises(ClientError) as info:
            iam.update_assume_role_policy(RoleName="publisher", PolicyDocument=json.dumps(
                {"Version": "2012-10-17", "Statement": [bad]}))
        assert info.value.response["Error"]["Code"] == "MalformedPolicyDocument"
        assert says in info.value.response["Error"]["Message"]
    assert iam.get_role(RoleName="publisher")["Role"]["AssumeRolePolicyDocument"] == setup["trust"]


def _login(srv, tool: str, token_file, home, setup, **env) -> subprocess.CompletedProcess:
    return subprocess.run([ARCA, "login", "--tool", tool, "--domain", "ci", "--repository", "pub",
                           "--oidc-token-file", str(token_file), "--role-arn", setup["role_arn"],
                           "--endpoint-url", srv.url],
                          env=clean_env(HOME=str(home), **env), capture_output=True, text=True, timeout=120)


def test_twine_and_npm_publish_with_only_a_ci_token(srv, issuer, setup, tmp_path):
    token_file = tmp_path / "oidc-token"
    token_file.write_text(issuer.sign(github_claims(issuer.url)))
    home = tmp_path / "home"
    # twine: arca login writes .pypirc from the token's temporary credentials; no access key anywhere
    proc = _login(srv, "twine", token_file, home, setup)
    assert proc.returncode == 0, proc.stderr
    pypirc = configparser.ConfigParser()
    pypirc.read(home / ".pypirc")
    wheel = ps.make_wheel(tmp_path, "widgets", "1.0")
    ps.run([require_tool("twine"), "upload", "--disable-progress-bar", "--config-file", str(home / ".pypirc"),
            "-r", "codeartifact", str(wheel)], env=clean_env(TWINE_NON_INTERACTIVE="1", HOME=str(home)))
    # npm: the same for .npmrc
    npmrc = tmp_path / "npmrc"
    proc = _login(srv, "npm", token_file, home, setup, NPM_CONFIG_USERCONFIG=str(npmrc))
    assert proc.returncode == 0, proc.stderr
    reg = Registry(srv, "ci", "pub", "-", tmp_path / "npm")
    reg.root.mkdir()
    reg.npmrc.write_text(npmrc.read_text())
    reg.npm("publish", cwd=write_package(tmp_path / "pkg", "widgets-js", "1.0.0"))
    listed = srv.boto().list_packages(domain="ci", repository="pub")["packages"]
    assert {(p["format"], p["package"]) for p in listed} >= {("pypi", "widgets"), ("npm", "widgets-js")}
    # the audit trail names the role session that published
    audit = srv.admin("audit", "--output", "json").stdout
    assert f"arn:aws:sts::{ACCOUNT}:assumed-role/publisher/arca-login" in audit


def test_the_aws_cli_sequence_and_temporary_credentials(srv, issuer, setup, tmp_path):
    aws = require_tool("aws")
    token_file = tmp_path / "t"
    token_file.write_text(issuer.sign(github_claims(issuer.url)))
    proc = subprocess.run([aws, "sts", "assume-role-with-web-identity", "--role-arn", setup["role_arn"],
                           "--role-session-name", "gha-run-1", "--web-identity-token", f"file://{token_file}",
                           "--duration-seconds", "900", "--endpoint-url", srv.url, "--output", "json"],
                          env=clean_env(), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    creds = out["Credentials"]
    assert creds["AccessKeyId"].startswith("ASIA") and out["SubjectFromWebIdentityToken"] == \
        "repo:acme/widgets:ref:refs/heads/main"
    assert out["AssumedRoleUser"]["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/publisher/gha-run-1"
    env = clean_env(AWS_ACCESS_KEY_ID=creds["AccessKeyId"], AWS_SECRET_ACCESS_KEY=creds["SecretAccessKey"],
                    AWS_SESSION_TOKEN=creds["SessionToken"])
    got = subprocess.run([aws, "codeartifact", "get-authorization-token", "--domain", "ci", "--endpoint-url", srv.url,
                          "--output", "json"], env=env, capture_output=True, text=True, timeout=120)
    assert got.returncode == 0, got.stderr
    token = json.loads(got.stdout)
    ep = srv.endpoint("ci", "maven", "pub")
    assert httpx.get(ep, auth=("aws", token["authorizationToken"])).status_code != 401
    # a token never outlives the role session it was issued to (900 s here, not the 12 h default)
    assert _when(token["expiration"]) <= _when(creds["Expiration"]) < time.time() + 901
    # `aws codeartifact login` with the temporary credentials, then twine
    home = tmp_path / "home"
    home.mkdir()
    login = subprocess.run([aws, "codeartifact", "login", "--tool", "twine", "--domain", "ci", "--repository", "pub",
                            "--endpoint-url", srv.url], env={**env, "HOME": str(home)}, capture_output=True,
                           text=True, timeout=120)
    assert login.returncode == 0, login.stderr
    ps.run([require_tool("twine"), "upload", "--disable-progress-bar", "--non-interactive", "--repository",
            "codeartifact", str(ps.make_wheel(tmp_path, "cli-widgets", "1.0"))], env={**env, "HOME": str(home)})
    assert srv.boto().describe_package(domain="ci", repository="pub", format="pypi",
                                       package="cli-widgets")["package"]["name"] == "cli-widgets"
    # the database holds neither the session's secret nor its token
    dump = dbdump.dump(srv.env["ARCA_DATABASE_URL"])
    assert creds["AccessKeyId"] in dump
    assert creds["SecretAccessKey"] not in dump and creds["SessionToken"] not in dump
    # the session token is part of the credential: without it (or with another) the key is refused
    for session_token in (None, "not-the-token"):
        c = boto3.client("codeartifact", endpoint_url=srv.url, region_name="us-east-1",
                         aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
                         aws_session_token=session_token, config=Config(retries={"max_attempts": 1}))
        with pytest.raises(ClientError) as info:
            c.get_authorization_token(domain="ci")
        assert info.value.response["Error"]["Code"] == "UnrecognizedClientException"
    # the role may do only what its policy says
    c = boto3.client("codeartifact", endpoint_url=srv.url, region_name="us-east-1",
                     aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
                     aws_session_token=creds["SessionToken"], config=Config(retries={"max_attempts": 1}))
    with pytest.raises(ClientError) as info:
        c.delete_repository(domain="ci", repository="pub")
    assert info.value.response["Error"]["Code"] == "AccessDeniedException"
    assert srv.boto().describe_repository(domain="ci", repository="pub")["repository"]["name"] == "pub"


def _when(value) -> float:
    """Epoch seconds of a timestamp as the AWS CLI prints it (epoch number or ISO 8601)."""
    if isinstance(value, (int, float)):
        return float(value)
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def _refused(srv, token: str, code: str, says: str) -> None:
    before = sessions(srv)
    with pytest.raises(ClientError) as info:
        sts_anonymous(srv).assume_role_with_web_identity(RoleArn=f"arn:aws:iam::{ACCOUNT}:role/publisher",
                                                         RoleSessionName="ci", WebIdentityToken=token)
    error = info.value.response["Error"]
    assert error["Code"] == code and says in error["Message"], error
    assert sessions(srv) == before  # nothing issued, nothing written


def test_bad_tokens_are_refused_with_their_reason(srv, issuer, setup):
    good = github_claims(issuer.url)
    _refused(srv, issuer.sign({**good, "aud": "sts.amazonaws.com"}), "InvalidIdentityToken", "audience")
    _refused(srv, issuer.sign(github_claims(issuer.url, lifetime=-3600)), "ExpiredTokenException", "expired")
    _refused(srv, issuer.sign({**good, "nbf": good["iat"] + 3600}), "ExpiredTokenException", "not valid before")
    stranger = Issuer()  # its own key pair, same kid: the signature cannot verify
    _refused(srv, stranger.sign(good), "InvalidIdentityToken", "signature does not verify")
    from joserfc.jwk import RSAKey
    unknown = RSAKey.generate_key(2048, parameters={"kid": "key-unknown"})
    fetched = issuer.jwks_fetches
    _refused(srv, issuer.sign(good, key=unknown), "InvalidIdentityToken", "key-unknown")
    assert issuer.jwks_fetches == fetched + 1  # refetched once for the unknown kid, then refused
    _refused(srv, Issuer.unsigned(good), "InvalidIdentityToken", "algorithm 'none' is not accepted")
    _refused(srv, issuer.sign({**good, "iss": "https://token.actions.githubusercontent.com"}),
             "InvalidIdentityToken", "No OpenIDConnect provider")
    _refused(srv, "not-a-jwt", "InvalidIdentityToken", "not a JWT")
    # valid tokens whose claims the trust policy does not accept: another repository, another branch
    for claims in (github_claims(issuer.url, repository="mallory/widgets"),
                   github_claims(issuer.url, ref="refs/heads/feature")):
        _refused(srv, issuer.sign(claims), "AccessDenied", "trust policy")


def test_issuer_keys_are_cached_and_refetched_for_a_new_kid(srv, issuer, setup):
    sts = sts_anonymous(srv)

    def assume(token):
        return sts.assume_role_with_web_identity(RoleArn=setup["role_arn"], RoleSessionName="ci",
                                                 WebIdentityToken=token)["Credentials"]["AccessKeyId"]

    assume(issuer.sign(github_claims(issuer.url)))
    fetched = issuer.jwks_fetches
    assume(issuer.sign(github_claims(issuer.url)))
    assert issuer.jwks_fetches == fetched  # cached
    rotated = issuer.add_key("key-2")  # the issuer rotates its signing key
    assert assume(issuer.sign(github_claims(issuer.url), key=rotated)).startswith("ASIA")
    assert issuer.jwks_fetches == fetched + 1


def test_deleting_the_role_ends_its_sessions(srv, issuer, setup):
    iam = iam_client(srv)
    iam.create_role(RoleName="shortlived", AssumeRolePolicyDocument=json.dumps(setup["trust"]))
    iam.put_role_policy(RoleName="shortlived", PolicyName="p", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "codeartifact:*", "Resource": "*"}]}))
    creds = sts_anonymous(srv).assume_role_with_web_identity(
        RoleArn=f"arn:aws:iam::{ACCOUNT}:role/shortlived", RoleSessionName="gone",
        WebIdentityToken=issuer.sign(github_claims(issuer.url)))["Credentials"]
    c = boto3.client("codeartifact", endpoint_url=srv.url, region_name="us-east-1",
                     aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
                     aws_session_token=creds["SessionToken"], config=Config(retries={"max_attempts": 1}))
    token = c.get_authorization_token(domain="ci")["authorizationToken"]
    ep = srv.endpoint("ci", "pypi", "pub") + "simple/"
    assert httpx.get(ep, auth=("aws", token)).status_code == 200
    iam.delete_role(RoleName="shortlived")
    assert httpx.get(ep, auth=("aws", token)).status_code == 401
    with pytest.raises(ClientError):
        c.get_authorization_token(domain="ci")


def test_aws_cli_and_boto3_drive_roles_and_providers(srv, issuer, setup, tmp_path):
    """CreateOpenIDConnectProvider, CreateRole and the role policy operations through the real AWS CLI."""
    aws = require_tool("aws")
    env = clean_env(AWS_ACCESS_KEY_ID=srv.access_key["AccessKeyId"],
                    AWS_SECRET_ACCESS_KEY=srv.access_key["SecretAccessKey"])

    def cli(*args: str) -> dict:
        proc = subprocess.run([aws, "iam", *args, "--endpoint-url", srv.url, "--output", "json"], env=env,
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout) if proc.stdout.strip() else {}

    url = "https://gitlab.example.com"
    arn = cli("create-open-id-connect-provider", "--url", url, "--client-id-list", "arca",
              "--thumbprint-list", "0" * 40)["OpenIDConnectProviderArn"]
    assert arn == f"arn:aws:iam::{ACCOUNT}:oidc-provider/gitlab.example.com"
    assert cli("get-open-id-connect-provider", "--open-id-connect-provider-arn", arn)["ClientIDList"] == ["arca"]
    trust = tmp_path / "trust.json"
    trust.write_text(json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Federated": arn}, "Action": "sts:AssumeRoleWithWebIdentity",
        "Condition": {"StringEquals": {"gitlab.example.com:aud": "arca",
                                       "gitlab.example.com:project_path": "acme/widgets"}}}]}))
    role = cli("create-role", "--role-name", "gitlab-publisher", "--assume-role-policy-document",
               f"file://{trust}", "--max-session-duration", "7200")["Role"]
    assert role["MaxSessionDuration"] == 7200
    assert "gitlab-publisher" in [r["RoleName"] for r in cli("list-roles")["Roles"]]
    policy = tmp_path / "p.json"
    policy.write_text(json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "codeartifact:ReadFromRepository", "Resource": "*"}]}))
    cli("put-role-policy", "--role-name", "gitlab-publisher", "--policy-name", "read", "--policy-document",
        f"file://{policy}")
    assert cli("get-role-policy", "--role-name", "gitlab-publisher", "--policy-name", "read")["PolicyName"] == "read"
    assert cli("list-role-policies", "--role-name", "gitlab-publisher")["PolicyNames"] == ["read"]
    cli("update-assume-role-policy", "--role-name", "gitlab-publisher", "--policy-document", f"file://{trust}")
    cli("delete-role-policy", "--role-name", "gitlab-publisher", "--policy-name", "read")
    cli("delete-role", "--role-name", "gitlab-publisher")
    cli("delete-open-id-connect-provider", "--open-id-connect-provider-arn", arn)
    iam = iam_client(srv)
    assert "gitlab-publisher" not in [r["RoleName"] for r in iam.list_roles()["Roles"]]
    assert {"Arn": arn} not in iam.list_open_id_connect_providers()["OpenIDConnectProviderList"]
    with pytest.raises(ClientError) as info:
        iam.get_role(RoleName="gitlab-publisher")
    assert info.value.response["Error"]["Code"] == "NoSuchEntity"
