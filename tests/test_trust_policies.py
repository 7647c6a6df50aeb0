"""Issue 14 item 2: every element of a stored permission policy is enforced or refused.

Over real HTTP against one `arca serve` (running in a time zone 14 hours from UTC, so a condition on
aws:CurrentTime that read the local clock would be off by that much): a document with an element
Arca does not understand is a ValidationException naming it, and the previous policy stays with its
revision; NotAction, NotResource, NotPrincipal and each condition operator family decide requests on
the control plane, the data plane and the console, with the request's own facts (127.0.0.1, plain
HTTP, the current time in UTC, the repository's tags). The pure rules are in test_policy_unit.py."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import datetime, timedelta, timezone

import httpx
import pytest
from botocore.exceptions import ClientError

from tests.support.server import start_server
from tests.web_support import console_user, services, signed_in

ACCOUNT = "000000000000"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = start_server(tmp_path_factory.mktemp("arca"), env={"TZ": "Etc/GMT-14"})  # UTC+14
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def alice(server):
    name = f"alice{uuid.uuid4().hex[:6]}"
    return name, server.new_user(name)


@pytest.fixture(scope="module")
def bob(server):
    name = f"bob{uuid.uuid4().hex[:6]}"
    return name, server.new_user(name)


def arn(name: str) -> str:
    return f"arn:aws:iam::{ACCOUNT}:user/{name}"


def repo_arn(domain: str, repo: str) -> str:
    return f"arn:aws:codeartifact:us-east-1:{ACCOUNT}:repository/{domain}/{repo}"


def policy(*statements) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def st(effect: str, who, actions, resource="*", **extra) -> dict:
    principal = "*" if who == "*" else {"AWS": [arn(w) for w in ([who] if isinstance(who, str) else who)]}
    return {"Effect": effect, "Principal": principal, "Action": actions, "Resource": resource, **extra}


def _code(exc) -> str:
    return exc.value.response["Error"]["Code"]


def denied(call, **kwargs) -> bool:
    try:
        call(**kwargs)
    except ClientError as exc:
        assert exc.response["Error"]["Code"] == "AccessDeniedException", exc.response
        return True
    return False


def _basic(token: str) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"aws:{token}".encode()).decode()}


def iso(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


# ---- refused when stored, and nothing changes ----------------------------------------------------

REFUSED = [
    ({"Effect": "Allow", "Principal": "*", "Action": "codeartifact:*", "Resource": "*",
      "Condition": {"StringEqualz": {"aws:username": "x"}}}, "Condition operator 'StringEqualz' is not supported"),
    ({"Effect": "Allow", "Principal": "*", "Action": "codeartifact:*", "Resource": "*",
      "Condition": {"StringEquals": {"aws:SourceVpc": "vpc-1"}}}, "Condition key 'aws:SourceVpc' is not supported"),
    ({"Effect": "Allow", "Principal": "*", "Action": "codeartifact:*", "Resource": "*",
      "Condition": {"IpAddress": {"aws:SourceIp": "10.0.0.300"}}},
     "Condition IpAddress aws:SourceIp: value '10.0.0.300' must be an IP address or CIDR block"),
    ({"Effect": "Allow", "Principal": "*", "Action": "codeartifact:*", "Resource": "*",
      "Condition": {"StringEquals": {"aws:SourceIp": "127.0.0.1"}}},
     "Condition operator 'StringEquals' does not apply to aws:SourceIp"),
    ({"Effect": "Allow", "Principal": "*", "Action": "codeartifact:*", "NotAction": "codeartifact:Delete*",
      "Resource": "*"}, "Action and NotAction cannot be used together"),
    ({"Effect": "Allow", "NotPrincipal": {"AWS": arn("x")}, "Action": "codeartifact:*", "Resource": "*"},
     "NotPrincipal can only be used with \"Effect\": \"Deny\""),
    ({"Sid": "typo", "Effect": "Deny", "Principal": "*", "Action": "codeartifact:*", "Resource": "*",
      "Conditions": {"Bool": {"aws:SecureTransport": "false"}}}, "Statement[0] (typo): unknown element 'Conditions'"),
    ({"Effect": "Deny", "Principal": "*", "Action": "codeartifact:*",
      "Resource": "arn:aws:codeartifact:*:*:repository/x/${aws:username}"}, "uses a policy variable"),
    ({"Effect": "Allow", "Principal": "*", "Action": "codeartifact:*", "Resource": "*",
      "Condition": {"DateLessThan": {"aws:CurrentTime": "next week"}}}, "value 'next week' must be an ISO 8601"),
]


@pytest.mark.parametrize("statement, problem", REFUSED, ids=[p for _, p in REFUSED])
def test_refused_documents_name_the_element_and_leave_the_policy_unchanged(server, domain, statement, problem):
    c = server.boto()
    c.create_repository(domain=domain, repository="libs")
    good = policy(st("Allow", "someone", "codeartifact:ReadFromRepository"))
    for put, get, where in ((c.put_domain_permissions_policy, c.get_domain_permissions_policy, {}),
                            (c.put_repository_permissions_policy, c.get_repository_permissions_policy,
                             {"repository": "libs"})):
        before = put(domain=domain, policyDocument=good, **where)["policy"]
        with pytest.raises(ClientError) as exc:
            put(domain=domain, policyDocument=policy(statement), **where)
        assert _code(exc) == "ValidationException"
        assert problem in exc.value.response["Error"]["Message"]
        with pytest.raises(ClientError) as exc:  # also with the current revision
            put(domain=domain, policyDocument=policy(statement), policyRevision=before["revision"], **where)
        assert _code(exc) == "ValidationException"
        assert get(domain=domain, **where)["policy"] == before


def test_a_refused_document_never_takes_effect(server, domain, alice):
    """A typo'd Deny is refused rather than stored and ignored; the user keeps what the stored policy grants."""
    name, key = alice
    admin, user = server.boto(), server.boto(key)
    admin.create_repository(domain=domain, repository="libs")
    admin.put_domain_permissions_policy(domain=domain, policyDocument=policy(
        st("Allow", name, ["codeartifact:DescribeRepository"])))
    with pytest.raises(ClientError) as exc:
        admin.put_domain_permissions_policy(domain=domain, policyDocument=policy(
            st("Allow", name, ["codeartifact:DescribeRepository"]),
            st("Deny", name, "codeartifact:*", NotResource=repo_arn(domain, "libs"))))
    assert "Resource and NotResource cannot be used together" in exc.value.response["Error"]["Message"]
    assert not denied(user.describe_repository, domain=domain, repository="libs")


def test_a_document_stored_before_these_rules_fails_safe(server, domain, alice):
    """A row written by an older Arca (which stored unknown elements and ignored them) still decides,
    in the safe direction: a statement it breaks grants nothing if it allows, and denies if it denies."""
    from app.db.models import Policy

    name, key = alice
    admin, user = server.boto(), server.boto(key)
    admin.create_repository(domain=domain, repository="libs")
    admin.put_domain_permissions_policy(domain=domain, policyDocument=policy(
        st("Allow", name, "codeartifact:DescribeRepository")))

    def legacy(*statements) -> None:
        with services(server).db.session() as s:
            row = s.query(Policy).filter(Policy.resource_arn.endswith(f":domain/{domain}")).one()
            row.document = policy(*statements)

    legacy(st("Allow", name, "codeartifact:DescribeRepository"),
           st("Allow", name, "codeartifact:ListPackages", Condition={"StringEqualz": {"aws:username": "x"}}))
    assert not denied(user.describe_repository, domain=domain, repository="libs")
    assert denied(user.list_packages, domain=domain, repository="libs")
    legacy(st("Allow", name, "codeartifact:DescribeRepository"),
           st("Deny", "someone-else", "codeartifact:ListPackages",
              Conditions={"Bool": {"aws:SecureTransport": "true"}}))
    assert denied(user.describe_repository, domain=domain, repository="libs")
    assert admin.describe_repository(domain=domain, repository="libs")  # admins are always allowed


# ---- NotAction, NotResource, NotPrincipal --------------------------------------------------------

def test_not_action_grants_everything_else_and_denies_everything_else(server, domain, alice):
    name, key = alice
    admin, user = server.boto(), server.boto(key)
    admin.create_repository(domain=domain, repository="libs")
    admin.put_domain_permissions_policy(domain=domain, policyDocument=policy(
        {"Effect": "Allow", "Principal": {"AWS": arn(name)}, "NotAction": ["codeartifact:Delete*",
                                                                           "codeartifact:*Policy"], "Resource": "*"}))
    assert not denied(user.describe_repository, domain=domain, repository="libs")
    assert not denied(user.update_repository, domain=domain, repository="libs", description="by alice")
    assert denied(user.delete_repository, domain=domain, repository="libs")
    assert denied(user.put_domain_permissions_policy, domain=domain, policyDocument=policy(st("Allow", name, "*")))
    assert admin.describe_repository(domain=domain, repository="libs")["repository"]["description"] == "by alice"
    # a Deny with NotAction takes away everything but the actions it names
    admin.put_repository_permissions_policy(domain=domain, repository="libs", policyDocument=policy(
        {"Effect": "Deny", "Principal": {"AWS": arn(name)}, "NotAction": "codeartifact:DescribeRepository",
         "Resource": "*"}))
    assert not denied(user.describe_repository, domain=domain, repository="libs")
    assert denied(user.update_repository, domain=domain, repository="libs", description="again")
    assert denied(user.list_packages, domain=domain, repository="libs")
    assert admin.describe_repository(domain=domain, repository="libs")["repository"]["description"] == "by alice"


def test_not_resource_grants_and_denies_all_but_the_named_resources(server, domain, alice):
    name, key = alice
    admin, user = server.boto(), server.boto(key)
    for repo in ("libs", "secret", "other"):
        admin.create_repository(domain=domain, repository=repo)
    admin.put_domain_permissions_policy(domain=domain, policyDocument=policy(
        {"Effect": "Allow", "Principal": {"AWS": arn(name)}, "Action": "codeartifact:DescribeRepository",
         "NotResource": repo_arn(domain, "secret")},
        {"Effect": "Deny", "Principal": {"AWS": arn(name)}, "Action": "codeartifact:DescribeRepository",
         "NotResource": [repo_arn(domain, "libs"), repo_arn(domain, "secret")]}))
    assert not denied(user.describe_repository, domain=domain, repository="libs")
    assert denied(user.describe_repository, domain=domain, repository="secret")  # not granted
    assert denied(user.describe_repository, domain=domain, repository="other")  # denied


def test_not_principal_denies_everyone_but_the_named(server, domain, alice, bob):
    (a_name, a_key), (_, b_key) = alice, bob
    admin = server.boto()
    admin.create_repository(domain=domain, repository="libs")
    admin.put_domain_permissions_policy(domain=domain, policyDocument=policy(
        st("Allow", "*", "codeartifact:DescribeRepository"),
        {"Effect": "Deny", "NotPrincipal": {"AWS": arn(a_name)}, "Action": "codeartifact:DescribeRepository",
         "Resource": "*"}))
    assert not denied(server.boto(a_key).describe_repository, domain=domain, repository="libs")
    assert denied(server.boto(b_key).describe_repository, domain=domain, repository="libs")
    assert admin.describe_repository(domain=domain, repository="libs")  # admins are always allowed


def test_arns_match_case_sensitively_and_action_names_do_not(server, domain, alice):
    name, key = alice
    admin, user = server.boto(), server.boto(key)
    admin.create_repository(domain=domain, repository="libs")
    for document in (policy(st("Allow", name, "codeartifact:DescribeRepository",
                               resource=repo_arn(domain, "Libs"))),
                     policy(st("Allow", name.upper(), "codeartifact:DescribeRepository")),
                     policy(st("Allow", name, "codeartifact:DescribeRepository",
                               resource=repo_arn(domain, "libs").replace("repository/", "Repository/")))):
        admin.put_domain_permissions_policy(domain=domain, policyDocument=document)
        assert denied(user.describe_repository, domain=domain, repository="libs"), document
    admin.put_domain_permissions_policy(domain=domain, policyDocument=policy(
        st("Allow", name, "CODEARTIFACT:describerepository", resource=repo_arn(domain, "l?bs"))))
    assert not denied(user.describe_repository, domain=domain, repository="libs")


# ---- each condition operator family, decided by the request itself -------------------------------

def _families():
    """(id, condition that holds for alice's request over plain HTTP from 127.0.0.1 now, one that does not);
    {name} is alice's user name."""
    now = datetime.now(timezone.utc)
    day = timedelta(days=1)
    tag = "aws:PrincipalTag/team"  # users have no tags: the key is absent
    return [
        ("StringEquals", {"StringEquals": {"aws:username": "{name}"}}, {"StringEquals": {"aws:username": "{NAME}"}}),
        ("StringNotEquals", {"StringNotEquals": {"aws:username": "x"}},
         {"StringNotEquals": {"aws:username": "{name}"}}),
        ("StringEqualsIgnoreCase", {"StringEqualsIgnoreCase": {"aws:username": "{NAME}"}},
         {"StringEqualsIgnoreCase": {"aws:username": "x"}}),
        ("StringLike", {"StringLike": {"aws:username": "alice*"}}, {"StringLike": {"aws:username": "bob*"}}),
        ("StringNotLike", {"StringNotLike": {"aws:username": "bob*"}}, {"StringNotLike": {"aws:username": "a*"}}),
        ("ArnLike", {"ArnLike": {"aws:PrincipalArn": "arn:aws:iam::*:user/alice*"}},
         {"ArnLike": {"aws:PrincipalArn": "arn:aws:iam::*:user/ALICE*"}}),
        ("ArnEquals", {"ArnEquals": {"aws:PrincipalArn": arn("{name}")}},
         {"ArnEquals": {"aws:PrincipalArn": arn("{NAME}")}}),
        ("ArnNotLike", {"ArnNotLike": {"aws:PrincipalArn": "arn:aws:iam::*:user/bob*"}},
         {"ArnNotLike": {"aws:PrincipalArn": "arn:aws:iam::*:user/*"}}),
        ("IpAddress", {"IpAddress": {"aws:SourceIp": "127.0.0.0/8"}}, {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}),
        ("NotIpAddress", {"NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"}},
         {"NotIpAddress": {"aws:SourceIp": ["192.168.0.0/16", "127.0.0.1/32"]}}),
        ("Bool", {"Bool": {"aws:SecureTransport": "false"}}, {"Bool": {"aws:SecureTransport": "true"}}),
        ("DateGreaterThan", {"DateGreaterThan": {"aws:CurrentTime": iso(now - day)}},
         {"DateGreaterThan": {"aws:CurrentTime": iso(now + day)}}),
        ("DateLessThan", {"DateLessThan": {"aws:CurrentTime": iso(now + day)}},
         {"DateLessThan": {"aws:CurrentTime": iso(now - day)}}),
        ("NumericLessThan", {"NumericLessThan": {"aws:EpochTime": int((now + day).timestamp())}},
         {"NumericLessThan": {"aws:EpochTime": int((now - day).timestamp())}}),
        ("IfExists on an absent key", {"StringEqualsIfExists": {tag: "blue"}}, {"StringEquals": {tag: "blue"}}),
        ("negated operator on an absent key", {"StringNotEquals": {tag: "blue"}}, {"StringLike": {tag: "*"}}),
        ("Null", {"Null": {tag: "true"}}, {"Null": {tag: "false"}}),
        ("ForAllValues / ForAnyValue on an absent key", {"ForAllValues:StringEquals": {tag: "blue"}},
         {"ForAnyValue:StringEquals": {tag: "blue"}}),
        ("ForAnyValue", {"ForAnyValue:StringLike": {"aws:username": ["nobody", "alice*"]}},
         {"ForAnyValue:StringLike": {"aws:username": ["nobody"]}}),
        ("ForAllValues", {"ForAllValues:StringLike": {"aws:username": ["alice*"]}},
         {"ForAllValues:StringLike": {"aws:username": ["nobody"]}}),
        ("several operators (AND)",
         {"Bool": {"aws:SecureTransport": "false"}, "IpAddress": {"aws:SourceIp": "127.0.0.1"}},
         {"Bool": {"aws:SecureTransport": "false"}, "IpAddress": {"aws:SourceIp": "10.0.0.1"}}),
    ]


FAMILIES = _families()


def _fill(block: dict, name: str) -> dict:
    return json.loads(json.dumps(block).replace("{name}", name).replace("{NAME}", name.upper()))


@pytest.mark.parametrize("holds, fails", [f[1:] for f in FAMILIES], ids=[f[0] for f in FAMILIES])
def test_a_deny_applies_when_its_condition_holds(server, domain, alice, holds, fails):
    name, key = alice
    admin, user = server.boto(), server.boto(key)
    admin.create_repository(domain=domain, repository="libs")

    def put(condition: dict) -> None:
        admin.put_domain_permissions_policy(domain=domain, policyDocument=policy(
            st("Allow", name, ["codeartifact:DescribeRepository", "codeartifact:ListPackages"]),
            st("Deny", name, "codeartifact:DescribeRepository", Condition=_fill(condition, name))))

    put(holds)
    assert denied(user.describe_repository, domain=domain, repository="libs")
    assert not denied(user.list_packages, domain=domain, repository="libs")  # the Deny names one action
    put(fails)
    assert not denied(user.describe_repository, domain=domain, repository="libs")
    # the same conditions on an Allow: granted only when they hold
    admin.put_domain_permissions_policy(domain=domain, policyDocument=policy(
        st("Allow", name, "codeartifact:DescribeRepository", Condition=_fill(fails, name))))
    assert denied(user.describe_repository, domain=domain, repository="libs")
    admin.put_domain_permissions_policy(domain=domain, policyDocument=policy(
        st("Allow", name, "codeartifact:DescribeRepository", Condition=_fill(holds, name))))
    assert not denied(user.describe_repository, domain=domain, repository="libs")


def test_current_time_windows_are_utc(server, domain, alice):
    """The server runs at UTC+14: a window around now in UTC grants; one 14 hours ahead (where a local
    clock read as UTC would be) does not; an offset or a bare time (taken as UTC) is understood."""
    name, key = alice
    admin, user = server.boto(), server.boto(key)
    admin.create_repository(domain=domain, repository="libs")
    now = datetime.now(timezone.utc)
    hour = timedelta(hours=1)
    plus14 = timezone(timedelta(hours=14))

    def window(start: str, end: str) -> bool:
        admin.put_domain_permissions_policy(domain=domain, policyDocument=policy(st(
            "Allow", name, "codeartifact:DescribeRepository",
            Condition={"DateGreaterThan": {"aws:CurrentTime": start}, "DateLessThan": {"aws:CurrentTime": end}})))
        return not denied(user.describe_repository, domain=domain, repository="libs")

    assert window(iso(now - hour), iso(now + hour))
    assert not window(iso(now + 13 * hour), iso(now + 15 * hour))
    assert not window(iso(now - 3 * hour), iso(now - hour))
    assert window((now - hour).astimezone(plus14).isoformat(), (now + hour).astimezone(plus14).isoformat())
    assert window((now - hour).strftime("%Y-%m-%dT%H:%M:%S"), (now + hour).strftime("%Y-%m-%dT%H:%M:%S"))
    assert window(str(int((now - hour).timestamp())), str(int((now + hour).timestamp())))


def test_resource_tag_conditions_read_the_repositorys_tags(server, domain, alice):
    name, key = alice
    admin, user = server.boto(), server.boto(key)
    admin.create_repository(domain=domain, repository="tagged", tags=[{"key": "Team", "value": "blue"}])
    admin.create_repository(domain=domain, repository="plain")
    admin.put_domain_permissions_policy(domain=domain, policyDocument=policy(
        st("Allow", name, "codeartifact:GetAuthorizationToken"),
        st("Allow", name, ["codeartifact:DescribeRepository", "codeartifact:ReadFromRepository"],
           Condition={"StringEquals": {"aws:ResourceTag/team": "blue"}})))  # the tag key is case-insensitive
    assert not denied(user.describe_repository, domain=domain, repository="tagged")
    assert denied(user.describe_repository, domain=domain, repository="plain")
    token = server.token(domain, key)
    base = f"{server.url}/{domain}/maven"
    assert httpx.get(f"{base}/tagged/", headers=_basic(token), timeout=30).status_code == 200
    assert httpx.get(f"{base}/plain/", headers=_basic(token), timeout=30).status_code == 403
    # the tags are read per request: retagging changes the decision at once
    admin.tag_resource(resourceArn=repo_arn(domain, "tagged"), tags=[{"key": "Team", "value": "red"}])
    assert denied(user.describe_repository, domain=domain, repository="tagged")
    assert httpx.get(f"{base}/tagged/", headers=_basic(token), timeout=30).status_code == 403
    admin.tag_resource(resourceArn=repo_arn(domain, "plain"), tags=[{"key": "team", "value": "blue"}])
    assert not denied(user.describe_repository, domain=domain, repository="plain")
    # a Deny on a tag value: the domain has no such tag, so it stays describable
    admin.put_domain_permissions_policy(domain=domain, policyDocument=policy(
        st("Allow", name, "codeartifact:Describe*"),
        st("Deny", name, "codeartifact:Describe*", Condition={"StringEquals": {"aws:ResourceTag/Team": "red"}})))
    assert denied(user.describe_repository, domain=domain, repository="tagged")
    assert not denied(user.describe_repository, domain=domain, repository="plain")
    assert not denied(user.describe_domain, domain=domain)


# ---- the data plane and the console --------------------------------------------------------------

def test_a_condition_denies_a_maven_get_on_the_data_plane(server, domain, alice):
    name, key = alice
    admin = server.boto()
    admin.create_repository(domain=domain, repository="libs")
    url = server.endpoint(domain, "maven", "libs") + "com/acme/cond/1.0/cond-1.0.jar"
    assert httpx.put(url, content=b"jar bytes", headers=_basic(server.token(domain)), timeout=30).status_code < 300
    admin.update_package_versions_status(domain=domain, repository="libs", format="maven", namespace="com.acme",
                                         package="cond", versions=["1.0"], targetStatus="Published")
    grant = [st("Allow", name, ["codeartifact:GetAuthorizationToken", "codeartifact:ReadFromRepository"])]

    def get_with(deny_condition: dict | None, headers: dict | None = None) -> httpx.Response:
        extra = [st("Deny", name, "codeartifact:ReadFromRepository", Condition=deny_condition)] \
            if deny_condition else []
        admin.put_domain_permissions_policy(domain=domain, policyDocument=policy(*grant, *extra))
        return httpx.get(url, headers={**_basic(token), **(headers or {})}, timeout=30)

    admin.put_domain_permissions_policy(domain=domain, policyDocument=policy(*grant))
    token = server.token(domain, key)
    assert get_with(None).content == b"jar bytes"
    assert get_with({"IpAddress": {"aws:SourceIp": "127.0.0.0/8"}}).status_code == 403
    assert get_with({"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}).status_code == 200
    assert get_with({"Bool": {"aws:SecureTransport": "false"}}).status_code == 403
    assert get_with({"StringLike": {"aws:username": name}}).status_code == 403
    # a forwarded-for header is the client's word, not its address: it moves nothing
    forged = get_with({"NotIpAddress": {"aws:SourceIp": "10.9.9.9/32"}},
                      {"X-Forwarded-For": "10.9.9.9", "Forwarded": "for=10.9.9.9;proto=https",
                       "X-Forwarded-Proto": "https"})
    assert forged.status_code == 403
    assert get_with({"Bool": {"aws:SecureTransport": "false"}},
                    {"X-Forwarded-Proto": "https"}).status_code == 403
    # the file is still there for whoever may read it
    assert httpx.get(url, headers=_basic(server.token(domain)), timeout=30).content == b"jar bytes"
    # publishing is not granted: a condition that holds on an Allow adds nothing it does not name
    put = httpx.put(url.replace("1.0", "2.0"), content=b"v2", headers=_basic(token), timeout=30)
    assert put.status_code == 403


def test_a_condition_decides_on_the_console(server, unique):
    domain, repo = f"d{unique}", "libs"
    server.create_repo(domain, repo)
    user = f"carol{unique}"
    console_user(server, user)
    admin = server.boto()
    grant = st("Allow", user, ["codeartifact:DescribeDomain", "codeartifact:DescribeRepository",
                               "codeartifact:ReadFromRepository"])
    admin.put_domain_permissions_policy(domain=domain, policyDocument=policy(grant))
    c = signed_in(server, user)
    try:
        assert c.get(f"/ui/d/{domain}/r/{repo}").status_code == 200
        admin.put_domain_permissions_policy(domain=domain, policyDocument=policy(grant, st(
            "Deny", user, ["codeartifact:DescribeRepository", "codeartifact:ReadFromRepository"],
            Condition={"IpAddress": {"aws:SourceIp": "127.0.0.1/32"}})))
        assert c.get(f"/ui/d/{domain}/r/{repo}").status_code == 403
        assert c.get(f"/ui/d/{domain}").status_code == 200  # DescribeDomain is not denied
        admin.put_domain_permissions_policy(domain=domain, policyDocument=policy(grant, st(
            "Deny", user, ["codeartifact:DescribeRepository", "codeartifact:ReadFromRepository"],
            Condition={"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}})))
        assert c.get(f"/ui/d/{domain}/r/{repo}").status_code == 200
    finally:
        c.close()
