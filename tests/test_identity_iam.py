"""Issue 15 items 1, 2, 3 and 5: IAM at `POST /` driven by boto3's `iam` and `sts` clients and the real
AWS CLI against a real `arca serve`; identity policies (a user's, its groups') evaluated with the
resource policies on both planes; deactivated and deleted keys, deleted users and revoke-tokens
refused on the control plane and by mvn, pip and npm on the data plane; no plaintext secret in a
database dump. Every refusal also shows that nothing changed."""

from __future__ import annotations

import json
import subprocess
import sys

import boto3
import httpx
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from tests import pypi_support as ps
from tests.npm_support import Registry, write_npmrc
from tests.support import dbdump
from tests.support.server import clean_env, require_tool

ALLOW_ALL_CODEARTIFACT = {"Version": "2012-10-17",
                          "Statement": [{"Effect": "Allow", "Action": "codeartifact:*", "Resource": "*"}]}


def client(server, service: str, key: dict | None = None):
    key = key or server.access_key
    return boto3.client(service, endpoint_url=server.url, region_name="us-east-1",
                        aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"],
                        aws_session_token=key.get("SessionToken"), config=Config(retries={"max_attempts": 1}))


def code_of(exc: ClientError) -> str:
    return exc.response["Error"]["Code"]


def refused(call, code: str) -> str:
    with pytest.raises(ClientError) as info:
        call()
    assert code_of(info.value) == code, info.value.response
    return info.value.response["Error"]["Message"]


def user_names(iam) -> list[str]:
    return [u["UserName"] for u in iam.list_users()["Users"]]


def test_boto3_iam_drives_users_keys_groups_and_inline_policies(server, unique):
    iam = client(server, "iam")
    name, group = f"alice{unique}", f"devs{unique}"
    user = iam.create_user(UserName=name, Tags=[{"Key": "team", "Value": "blue"}])["User"]
    assert user["Arn"] == f"arn:aws:iam::000000000000:user/{name}"
    assert user["Tags"] == [{"Key": "team", "Value": "blue"}]
    assert iam.get_user(UserName=name)["User"]["UserId"] == user["UserId"]
    assert name in user_names(iam)
    iam.tag_user(UserName=name, Tags=[{"Key": "cost", "Value": "42"}])
    iam.untag_user(UserName=name, TagKeys=["team"])
    assert iam.list_user_tags(UserName=name)["Tags"] == [{"Key": "cost", "Value": "42"}]

    key = iam.create_access_key(UserName=name)["AccessKey"]
    assert key["Status"] == "Active" and len(key["SecretAccessKey"]) == 40 and key["AccessKeyId"].startswith("AKIA")
    listed = iam.list_access_keys(UserName=name)["AccessKeyMetadata"]
    assert [k["AccessKeyId"] for k in listed] == [key["AccessKeyId"]]
    assert "SecretAccessKey" not in listed[0]  # never returned after creation
    assert "LastUsedDate" not in iam.get_access_key_last_used(AccessKeyId=key["AccessKeyId"])["AccessKeyLastUsed"]
    me = client(server, "sts", key).get_caller_identity()
    assert me["Arn"] == user["Arn"] and me["Account"] == "000000000000"
    used = iam.get_access_key_last_used(AccessKeyId=key["AccessKeyId"])
    assert used["UserName"] == name and used["AccessKeyLastUsed"]["ServiceName"] == "sts"

    iam.put_user_policy(UserName=name, PolicyName="all", PolicyDocument=json.dumps(ALLOW_ALL_CODEARTIFACT))
    assert iam.list_user_policies(UserName=name)["PolicyNames"] == ["all"]
    assert iam.get_user_policy(UserName=name, PolicyName="all")["PolicyDocument"] == ALLOW_ALL_CODEARTIFACT

    iam.create_group(GroupName=group)
    iam.add_user_to_group(GroupName=group, UserName=name)
    assert [u["UserName"] for u in iam.get_group(GroupName=group)["Users"]] == [name]
    assert [g["GroupName"] for g in iam.list_groups_for_user(UserName=name)["Groups"]] == [group]
    iam.put_group_policy(GroupName=group, PolicyName="read", PolicyDocument=json.dumps(ALLOW_ALL_CODEARTIFACT))
    assert iam.list_group_policies(GroupName=group)["PolicyNames"] == ["read"]
    assert group in [g["GroupName"] for g in iam.list_groups()["Groups"]]
    iam.delete_group_policy(GroupName=group, PolicyName="read")
    iam.remove_user_from_group(GroupName=group, UserName=name)
    assert iam.get_group(GroupName=group)["Users"] == []
    iam.delete_group(GroupName=group)

    iam.update_access_key(UserName=name, AccessKeyId=key["AccessKeyId"], Status="Inactive")
    assert iam.list_access_keys(UserName=name)["AccessKeyMetadata"][0]["Status"] == "Inactive"
    iam.delete_access_key(UserName=name, AccessKeyId=key["AccessKeyId"])
    assert iam.list_access_keys(UserName=name)["AccessKeyMetadata"] == []
    iam.delete_user_policy(UserName=name, PolicyName="all")
    iam.delete_user(UserName=name)
    assert name not in user_names(iam)
    refused(lambda: iam.get_user(UserName=name), "NoSuchEntity")
    # each change left its audit row, naming the caller and what changed (never a secret)
    rows = json.loads(server.admin("audit", "--limit", "1000", "--output", "json").stdout)
    mine = [(r["action"], r["resource"]) for r in rows if r["resource"] in (name, group, key["AccessKeyId"])]
    for expected in (("CreateUser", name), ("CreateAccessKey", key["AccessKeyId"]), ("PutUserPolicy", name),
                     ("CreateGroup", group), ("AddUserToGroup", group), ("PutGroupPolicy", group),
                     ("DeleteGroupPolicy", group), ("RemoveUserFromGroup", group), ("DeleteGroup", group),
                     ("DeleteAccessKey", key["AccessKeyId"]), ("DeleteUserPolicy", name), ("DeleteUser", name)):
        assert expected in mine, (expected, mine)
    assert key["SecretAccessKey"] not in json.dumps(rows)


def test_aws_cli_drives_iam_and_sts(server, unique, tmp_path):
    aws = require_tool("aws")
    env = clean_env(AWS_ACCESS_KEY_ID=server.access_key["AccessKeyId"],
                    AWS_SECRET_ACCESS_KEY=server.access_key["SecretAccessKey"])

    def cli(*args: str) -> dict:
        proc = subprocess.run([aws, *args, "--endpoint-url", server.url, "--output", "json"], env=env,
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout) if proc.stdout.strip() else {}

    name, group = f"cli{unique}", f"g{unique}"
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps(ALLOW_ALL_CODEARTIFACT))
    assert cli("iam", "create-user", "--user-name", name)["User"]["UserName"] == name
    assert name in [u["UserName"] for u in cli("iam", "list-users")["Users"]]
    key = cli("iam", "create-access-key", "--user-name", name)["AccessKey"]
    cli("iam", "put-user-policy", "--user-name", name, "--policy-name", "p", "--policy-document", f"file://{policy}")
    assert cli("iam", "get-user-policy", "--user-name", name, "--policy-name", "p")["PolicyDocument"] == \
        ALLOW_ALL_CODEARTIFACT
    cli("iam", "create-group", "--group-name", group)
    cli("iam", "add-user-to-group", "--group-name", group, "--user-name", name)
    cli("iam", "put-group-policy", "--group-name", group, "--policy-name", "g", "--policy-document",
        f"file://{policy}")
    cli("iam", "tag-user", "--user-name", name, "--tags", "Key=team,Value=red")
    cli("iam", "untag-user", "--user-name", name, "--tag-keys", "team")
    cli("iam", "update-access-key", "--user-name", name, "--access-key-id", key["AccessKeyId"], "--status", "Inactive")
    assert cli("iam", "list-access-keys", "--user-name", name)["AccessKeyMetadata"][0]["Status"] == "Inactive"
    assert cli("iam", "get-access-key-last-used", "--access-key-id", key["AccessKeyId"])["UserName"] == name
    assert cli("sts", "get-caller-identity")["Arn"] == "arn:aws:iam::000000000000:user/admin"
    cli("iam", "delete-access-key", "--user-name", name, "--access-key-id", key["AccessKeyId"])
    cli("iam", "remove-user-from-group", "--group-name", group, "--user-name", name)
    cli("iam", "delete-user", "--user-name", name)
    assert name not in [u["UserName"] for u in cli("iam", "list-users")["Users"]]


def test_iam_refusals_change_nothing(server, unique):
    iam = client(server, "iam")
    name = f"bob{unique}"
    bob_key = server.new_user(name)
    bob = client(server, "iam", bob_key)
    before = user_names(iam)
    # a user without an identity policy may not administer IAM
    message = refused(lambda: bob.create_user(UserName=f"mallory{unique}"), "AccessDenied")
    assert message == (f"User: arn:aws:iam::000000000000:user/{name} is not authorized to perform: iam:CreateUser "
                       f"on resource: arn:aws:iam::000000000000:user/mallory{unique}")
    refused(lambda: bob.put_user_policy(UserName=name, PolicyName="self", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]})),
        "AccessDenied")
    assert user_names(iam) == before and iam.list_user_policies(UserName=name)["PolicyNames"] == []
    # an identity policy with a Principal, an unknown element or another service's action is refused
    iam.put_user_policy(UserName=name, PolicyName="keep", PolicyDocument=json.dumps(ALLOW_ALL_CODEARTIFACT))
    for bad, says in (
            ({"Effect": "Allow", "Principal": "*", "Action": "codeartifact:*", "Resource": "*"}, "has no Principal"),
            ({"Effect": "Allow", "Action": "codeartifact:*", "Resource": "*", "Condtion": {}}, "'Condtion'"),
            ({"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}, "s3:GetObject"),
            ({"Effect": "Allow", "Action": "codeartifact:*"}, "Resource is required")):
        message = refused(lambda: iam.put_user_policy(UserName=name, PolicyName="keep", PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [bad]})), "MalformedPolicyDocument")
        assert says in message, message
    assert iam.get_user_policy(UserName=name, PolicyName="keep")["PolicyDocument"] == ALLOW_ALL_CODEARTIFACT
    # a name that exists, an unknown user, an unknown parameter, an operation Arca does not serve
    refused(lambda: iam.create_user(UserName=name), "EntityAlreadyExists")
    refused(lambda: iam.create_access_key(UserName=f"nobody{unique}"), "NoSuchEntity")
    refused(lambda: iam.attach_user_policy(UserName=name, PolicyArn="arn:aws:iam::aws:policy/X"), "InvalidAction")
    raw = httpx.post(server.url + "/", data={"Action": "ListUsers", "Version": "2010-05-08"})
    assert raw.status_code == 403 and "<Code>MissingAuthenticationToken</Code>" in raw.text
    assert user_names(iam) == before


def _denied_signed(server, key) -> None:
    refused(lambda: server.boto(key).get_authorization_token(domain="nodomain"), "UnrecognizedClientException")
    refused(lambda: client(server, "sts", key).get_caller_identity(), "InvalidClientTokenId")


@pytest.fixture
def consumer(server, unique, tmp_path):
    """A user with read/publish rights through its own identity policy, a token of its key, and a
    Maven, PyPI and npm repository holding one package each."""
    domain, name = f"rv{unique}", f"carol{unique}"
    server.create_repo(domain, "repo")
    key = server.new_user(name)
    client(server, "iam").put_user_policy(UserName=name, PolicyName="all",
                                          PolicyDocument=json.dumps(ALLOW_ALL_CODEARTIFACT))
    admin_token = server.token(domain)
    ep = server.endpoint(domain, "maven", "repo")
    assert httpx.put(ep + "com/acme/lib/1.0/lib-1.0.jar", content=b"jar", auth=("aws", admin_token)).status_code == 201
    server.boto().update_package_versions_status(domain=domain, repository="repo", format="maven",
                                                 namespace="com.acme", package="lib", versions=["1.0"],
                                                 targetStatus="Published")
    ps.twine_upload(server.endpoint(domain, "pypi", "repo"), admin_token, [ps.make_wheel(tmp_path, "demo-lib", "1.0")])
    reg = Registry(server, domain, "repo", admin_token, tmp_path / "npm")
    write_npmrc(reg.npmrc, reg.url, admin_token)
    reg.publish("demo-js", "1.0.0")
    return {"domain": domain, "name": name, "key": key, "token": server.token(domain, key=key), "reg": reg}


def _clients_get_401(server, mvn, c, tmp_path) -> None:
    """mvn, pip and npm each refused with 401 while using the token."""
    domain, token = c["domain"], c["token"]
    ep = server.endpoint(domain, "maven", "repo")
    project = mvn.project(f"use{domain}", "com.consumer", "app", "1.0", ep,
                          deps=[("com.acme", "lib", "1.0")])
    mvn.forget("com.acme")
    proc = mvn.run(project, "-U", "compile", repo_url=ep, token=token, check=False)
    assert proc.returncode != 0 and "401" in proc.stdout, proc.stdout[-3000:]
    with ps.RecordingProxy(server.url) as proxy:
        index = f"http://aws:{token}@{proxy.hostport}/{domain}/pypi/repo/simple/"
        pip = ps.run(ps.pip_cmd(sys.executable, "download", "--no-deps", "-d", str(tmp_path / "dl"), "--index-url",
                                index, "demo-lib"), check=False)
    assert pip.returncode != 0 and proxy.requests and {s for _m, _p, s in proxy.requests} == {401}
    reg = c["reg"]
    write_npmrc(reg.npmrc, reg.url, token)
    npm = reg.npm("view", "demo-js", "versions", check=False)
    assert npm.returncode != 0 and "E401" in npm.stderr, npm.stderr


def _clients_read(server, mvn, c, tmp_path) -> None:
    domain, token = c["domain"], c["token"]
    ep = server.endpoint(domain, "maven", "repo")
    assert httpx.get(ep + "com/acme/lib/1.0/lib-1.0.jar", auth=("aws", token)).content == b"jar"
    ps.run(ps.pip_cmd(sys.executable, "download", "--no-deps", "-d", str(tmp_path / "ok"), "--index-url",
                      ps.index_url(server, domain, "repo", token), "demo-lib"))
    reg = c["reg"]
    write_npmrc(reg.npmrc, reg.url, token)
    assert reg.npm_json("view", "demo-js", "versions") in ("1.0.0", ["1.0.0"])


def test_deactivated_key_is_refused_and_its_tokens_get_401_from_mvn_pip_npm(server, mvn, consumer, tmp_path):
    iam, key = client(server, "iam"), consumer["key"]
    _clients_read(server, mvn, consumer, tmp_path)
    iam.update_access_key(UserName=consumer["name"], AccessKeyId=key["AccessKeyId"], Status="Inactive")
    _denied_signed(server, key)
    _clients_get_401(server, mvn, consumer, tmp_path)
    resp = httpx.get(server.endpoint(consumer["domain"], "maven", "repo") + "com/acme/lib/1.0/lib-1.0.jar",
                     auth=("aws", consumer["token"]))
    assert resp.status_code == 401 and "no longer active" in resp.text
    # nothing else changed: the user, its policy and the packages are all there
    assert iam.list_user_policies(UserName=consumer["name"])["PolicyNames"] == ["all"]
    assert httpx.get(server.endpoint(consumer["domain"], "maven", "repo") + "com/acme/lib/1.0/lib-1.0.jar",
                     auth=("aws", server.token(consumer["domain"]))).content == b"jar"
    # deleting the key ends them for good
    iam.delete_access_key(UserName=consumer["name"], AccessKeyId=key["AccessKeyId"])
    _denied_signed(server, key)


def test_revoke_tokens_ends_the_tokens_issued_before_it(server, mvn, consumer, tmp_path):
    old = consumer["token"]
    server.admin("revoke-tokens", consumer["name"])
    _clients_get_401(server, mvn, consumer, tmp_path)
    resp = httpx.get(server.endpoint(consumer["domain"], "maven", "repo") + "com/acme/lib/1.0/lib-1.0.jar",
                     auth=("aws", old))
    assert resp.status_code == 401 and "revoked" in resp.text
    # the key itself still works, and a token issued after the revocation does
    consumer["token"] = server.token(consumer["domain"], key=consumer["key"])
    _clients_read(server, mvn, consumer, tmp_path)
    refused_admin = server.admin("revoke-tokens", "nobody-at-all", check=False)
    assert refused_admin.returncode == 1 and "does not exist" in refused_admin.stderr


def test_deleting_the_user_ends_its_keys_and_tokens(server, consumer):
    ep = server.endpoint(consumer["domain"], "maven", "repo") + "com/acme/lib/1.0/lib-1.0.jar"
    assert httpx.get(ep, auth=("aws", consumer["token"])).status_code == 200
    client(server, "iam").delete_user(UserName=consumer["name"])
    assert httpx.get(ep, auth=("aws", consumer["token"])).status_code == 401
    _denied_signed(server, consumer["key"])


def test_group_policy_takes_effect_for_members_on_both_planes(server, unique):
    iam = client(server, "iam")
    domain, name, group = f"gp{unique}", f"dave{unique}", f"readers{unique}"
    server.create_repo(domain, "repo")
    ep = server.endpoint(domain, "maven", "repo")
    put = httpx.put(ep + "com/acme/x/1.0/x-1.0.jar", content=b"x", auth=("aws", server.token(domain)))
    assert put.status_code == 201
    server.boto().update_package_versions_status(domain=domain, repository="repo", format="maven", namespace="com.acme",
                                                 package="x", versions=["1.0"], targetStatus="Published")
    key = server.new_user(name)
    dave = server.boto(key)
    refused(lambda: dave.get_authorization_token(domain=domain), "AccessDeniedException")
    iam.create_group(GroupName=group)
    repo_arn = f"arn:aws:codeartifact:us-east-1:000000000000:repository/{domain}/repo"
    iam.put_group_policy(GroupName=group, PolicyName="read", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "codeartifact:GetAuthorizationToken",
             "Resource": f"arn:aws:codeartifact:us-east-1:000000000000:domain/{domain}"},
            {"Effect": "Allow", "Action": ["codeartifact:ReadFromRepository", "codeartifact:List*"],
             "Resource": repo_arn}]}))
    refused(lambda: dave.get_authorization_token(domain=domain), "AccessDeniedException")  # not a member yet
    iam.add_user_to_group(GroupName=group, UserName=name)
    token = dave.get_authorization_token(domain=domain)["authorizationToken"]
    assert httpx.get(ep + "com/acme/x/1.0/x-1.0.jar", auth=("aws", token)).content == b"x"
    assert [p["package"] for p in dave.list_packages(domain=domain, repository="repo")["packages"]] == ["x"]
    # what the policy does not grant stays refused on both planes, and changes nothing
    put = httpx.put(ep + "com/acme/y/1.0/y-1.0.jar", content=b"y", auth=("aws", token))
    assert put.status_code == 403
    refused(lambda: dave.delete_package(domain=domain, repository="repo", format="maven", namespace="com.acme",
                                        package="x"), "AccessDeniedException")
    assert [p["package"] for p in server.boto().list_packages(domain=domain, repository="repo")["packages"]] == ["x"]
    # an explicit Deny in the user's own policy wins over the group's Allow
    iam.put_user_policy(UserName=name, PolicyName="no-read", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "codeartifact:ReadFromRepository",
                                                "Resource": repo_arn}]}))
    assert httpx.get(ep + "com/acme/x/1.0/x-1.0.jar", auth=("aws", token)).status_code == 403
    iam.delete_user_policy(UserName=name, PolicyName="no-read")
    assert httpx.get(ep + "com/acme/x/1.0/x-1.0.jar", auth=("aws", token)).status_code == 200
    # leaving the group takes the rights away at once
    iam.remove_user_from_group(GroupName=group, UserName=name)
    assert httpx.get(ep + "com/acme/x/1.0/x-1.0.jar", auth=("aws", token)).status_code == 403
    refused(lambda: dave.list_packages(domain=domain, repository="repo"), "AccessDeniedException")


def test_database_dump_shows_no_plaintext_secret(server, unique):
    iam = client(server, "iam")
    name = f"erin{unique}"
    iam.create_user(UserName=name)
    keys = [iam.create_access_key(UserName=name)["AccessKey"] for _ in range(2)]
    server.boto().create_domain(domain=f"wh{unique}")
    hook_secret = f"webhook-hmac-key-{unique}"
    server.admin("create-webhook", "--domain", f"wh{unique}", "--url", "http://127.0.0.1:9/hook", "--secret",
                 hook_secret)
    remote_token = f"private-remote-token-{unique}"  # a custom external connection's credentials
    server.cli("create-external-connection", "--name", f"corp-{unique}", "--format", "npm", "--url",
               "http://127.0.0.1:9/", "--authentication", f"type=BEARER,token={remote_token}")
    secrets = [server.access_key["SecretAccessKey"], *(k["SecretAccessKey"] for k in keys), hook_secret, remote_token]
    # the keys work: the server opens what it sealed
    assert client(server, "sts", keys[0]).get_caller_identity()["Arn"].endswith(f"user/{name}")
    dump = dbdump.dump(server.env["ARCA_DATABASE_URL"])
    assert keys[0]["AccessKeyId"] in dump  # the dump has the keys ...
    for secret in secrets:  # ... but none of their secrets
        assert secret not in dump
    assert "secret_sealed" in dump and "v1." in dump
    for secret in secrets:
        assert secret not in server.log()


def test_arca_admin_verbs_on_the_server_host(server, unique, tmp_path):
    """The same verbs without credentials, against the database (first administrator, break-glass)."""
    name, group = f"local{unique}", f"lg{unique}"
    key = server.new_user(name)

    def admin(*args: str) -> dict:
        return json.loads(server.admin(*args).stdout or "{}")

    assert name in [u["UserName"] for u in admin("list-users")["Users"]]
    policy = tmp_path / "p.json"
    policy.write_text(json.dumps(ALLOW_ALL_CODEARTIFACT))
    admin("put-user-policy", name, "all", "--policy-document", f"file://{policy}")
    admin("create-group", group)
    admin("add-user-to-group", group, name)
    admin("put-group-policy", group, "all", "--policy-document", json.dumps(ALLOW_ALL_CODEARTIFACT))
    iam = client(server, "iam")
    assert iam.list_user_policies(UserName=name)["PolicyNames"] == ["all"]
    assert [u["UserName"] for u in iam.get_group(GroupName=group)["Users"]] == [name]
    admin("update-access-key", name, key["AccessKeyId"], "--status", "Inactive")
    assert admin("list-access-keys", name)["AccessKeyMetadata"][0]["Status"] == "Inactive"
    _denied_signed(server, key)
    bad = server.admin("put-user-policy", name, "x", "--policy-document", '{"Version": "2012-10-17"}', check=False)
    assert bad.returncode == 1 and "at least one Statement" in bad.stderr
    assert iam.list_user_policies(UserName=name)["PolicyNames"] == ["all"]
    admin("delete-access-key", name, key["AccessKeyId"])
    admin("remove-user-from-group", group, name)
    admin("delete-user", name)
    assert name not in user_names(iam)


def test_arca_cli_speaks_iam_and_sts(server, unique, tmp_path):
    """`arca iam ...` and `arca sts ...`: the same operations, arguments and output as the AWS CLI."""
    name = f"arcacli{unique}"
    assert server.cli_json("iam", "create-user", "--user-name", name)["User"]["UserName"] == name
    assert name in [u["UserName"] for u in server.cli_json("iam", "list-users")["Users"]]
    policy = tmp_path / "p.json"
    policy.write_text(json.dumps(ALLOW_ALL_CODEARTIFACT))
    server.cli("iam", "put-user-policy", "--user-name", name, "--policy-name", "p", "--policy-document",
               f"file://{policy}")
    assert server.cli("iam", "list-user-policies", "--user-name", name, "--query", "PolicyNames[0]",
                      "--output", "text").stdout.strip() == "p"
    key = server.cli_json("iam", "create-access-key", "--user-name", name)["AccessKey"]
    env = clean_env(AWS_ACCESS_KEY_ID=key["AccessKeyId"], AWS_SECRET_ACCESS_KEY=key["SecretAccessKey"],
                    ARCA_ENDPOINT_URL=server.url)
    me = json.loads(server.cli("sts", "get-caller-identity", env=env).stdout)
    assert me["Arn"] == f"arn:aws:iam::000000000000:user/{name}"
    refused_cli = server.cli("iam", "get-user", "--user-name", f"nobody{unique}", check=False)
    assert refused_cli.returncode == 254 and "NoSuchEntity" in refused_cli.stderr
    server.cli("iam", "delete-user", "--user-name", name)
    assert name not in [u["UserName"] for u in server.cli_json("iam", "list-users")["Users"]]
