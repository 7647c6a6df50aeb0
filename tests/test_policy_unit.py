"""Pure policy logic (app/auth/policy.py, app/auth/conditions.py): what a document may say, and how
each element decides a request, IAM's way. The same rules over real HTTP are in test_trust_policies.py."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from app.auth.conditions import Context
from app.auth.policy import Request, evaluate, load_stored, parse_policy
from app.domain.errors import ValidationError

ACCOUNT = "000000000000"
ALICE = f"arn:aws:iam::{ACCOUNT}:user/alice"
BOB = f"arn:aws:iam::{ACCOUNT}:user/bob"
REPO = f"arn:aws:codeartifact:us-east-1:{ACCOUNT}:repository/acme/libs"
SECRET = f"arn:aws:codeartifact:us-east-1:{ACCOUNT}:repository/acme/secret"
READ, PUBLISH = "codeartifact:ReadFromRepository", "codeartifact:PublishPackageVersion"
NOW = datetime(2030, 6, 1, 12, 0, 0, tzinfo=timezone.utc)


def doc(*statements, version="2012-10-17") -> str:
    return json.dumps({"Version": version, "Statement": list(statements)})


def st(effect="Allow", principal=None, action="codeartifact:*", resource="*", **extra) -> dict:
    out = {"Effect": effect}
    if principal is not False:
        out["Principal"] = principal if principal is not None else {"AWS": ALICE}
    if action is not None:
        out["Action"] = action
    if resource is not None:
        out["Resource"] = resource
    out.update(extra)
    return out


def cond(block: dict) -> dict:
    return st(Condition=block)


def context(**kw) -> Context:
    base = dict(principal_arn=ALICE, username="alice", source_ip="127.0.0.1", secure_transport=False, now=NOW)
    base.update(kw)
    return Context(**base)


def decide(*statements, who=ALICE, action=READ, resource=REPO, ctx: Context | None = None) -> str:
    policy = parse_policy(doc(*statements))
    return evaluate([policy], Request(who, action, resource, ctx or context(principal_arn=who)), ACCOUNT)


# ---- what is refused when a policy is stored -----------------------------------------------------

REFUSED = [
    # document shape
    (json.dumps({"Version": "2012-10-17", "Statement": [st()], "Foo": 1}), "unknown element 'Foo'"),
    (json.dumps({"Version": "2012-10-17", "Id": 5, "Statement": [st()]}), "Id must be a string"),
    ('{"Version": "2012-10-17", "Version": "2008-10-17", "Statement": []}', "key 'Version' twice"),
    (doc(st(Condition={"NumericEquals": {"aws:EpochTime": float("nan")}})), "NaN is not a JSON value"),
    # statement elements
    (doc(st(Principals={"AWS": ALICE})), "Statement[0]: unknown element 'Principals'"),
    (doc(st(Sid="x", Conditions={})), "Statement[0] (x): unknown element 'Conditions'"),
    (doc(st(Sid=7)), "Sid must be a string"),
    (doc(st(NotAction=READ)), "Action and NotAction cannot be used together"),
    (doc(st(NotResource=REPO)), "Resource and NotResource cannot be used together"),
    (doc(st(NotPrincipal={"AWS": BOB})), "Principal and NotPrincipal cannot be used together"),
    (doc(st(principal=False, NotPrincipal={"AWS": BOB})), "NotPrincipal can only be used with \"Effect\": \"Deny\""),
    (doc(st(principal=False)), "Principal is required (or NotPrincipal)"),
    (doc(st(action=None)), "Action is required (or NotAction)"),
    (doc(st(action=None, NotAction=[])), "NotAction is required and must not be empty"),
    (doc(st(principal={})), "Principal must be \"*\" or {\"AWS\": [ARNs]}"),
    (doc(st(principal={"AWS": []})), "Principal AWS is required and must not be empty"),
    (doc(st(principal={"AWS": "alice"})), "Principal 'alice' must be \"*\", an account id or an ARN"),
    (doc(st(principal={"AWS": [5]})), "Principal AWS must be strings"),
    (doc(st(action="s3:GetObject")), "Action 's3:GetObject' must be codeartifact:* style"),
    (doc(st(action=None, NotAction="codeartifact:Read[x]")), "NotAction 'codeartifact:Read[x]'"),
    (doc(st(resource="acme/libs")), "Resource 'acme/libs' must be \"*\" or an ARN"),
    (doc(st(resource=None, NotResource=[3])), "NotResource must be strings"),
    (doc(st(resource=f"arn:aws:codeartifact:*:{ACCOUNT}:repository/acme/${{aws:username}}")),
     "uses a policy variable"),
    # conditions: operators
    (doc(cond("aws:username")), "Condition must be an object of operators"),
    (doc(cond({"StringEquals": "alice"})), "Condition StringEquals must be an object of condition keys"),
    (doc(cond({"StringEqualz": {"aws:username": "alice"}})), "Condition operator 'StringEqualz' is not supported"),
    (doc(cond({"BinaryEquals": {"aws:username": "YQ=="}})), "Condition operator 'BinaryEquals' is not supported"),
    (doc(cond({"ForSomeValues:StringEquals": {"aws:username": "a"}})), "'ForSomeValues:StringEquals'"),
    (doc(cond({"stringequals": {"aws:username": "a"}})), "Condition operator 'stringequals' is not supported"),
    (doc(cond({"NullIfExists": {"aws:username": "true"}})), "Null takes neither IfExists nor a set prefix"),
    # conditions: keys
    (doc(cond({"StringEquals": {"aws:SourceVpc": "vpc-1"}})), "Condition key 'aws:SourceVpc' is not supported"),
    (doc(cond({"StringEquals": {"codeartifact:RepoName": "x"}})), "Condition key 'codeartifact:RepoName'"),
    (doc(cond({"StringEquals": {"aws:ResourceTag/": "x"}})), "must name a tag key of 1-128 characters"),
    (doc(cond({"StringEquals": {"aws:SourceIp": "127.0.0.1"}})),
     "Condition operator 'StringEquals' does not apply to aws:SourceIp (its type is IP address; use IpAddress"),
    (doc(cond({"DateLessThan": {"aws:username": "2030-01-01"}})), "'DateLessThan' does not apply to aws:username"),
    (doc(cond({"Bool": {"aws:CurrentTime": "true"}})), "'Bool' does not apply to aws:CurrentTime"),
    (doc(cond({"NumericLessThan": {"aws:CurrentTime": 5}})), "'NumericLessThan' does not apply to aws:CurrentTime"),
    (doc(cond({"ArnLike": {"aws:username": "arn:aws:iam::1:user/a"}})), "'ArnLike' does not apply to aws:username"),
    (doc(cond({"IpAddress": {"aws:ResourceTag/net": "10.0.0.0/8"}})), "'IpAddress' does not apply"),
    # conditions: values
    (doc(cond({"StringEquals": {"aws:username": 5}})), "Condition StringEquals aws:username: value 5 must be a string"),
    (doc(cond({"StringEquals": {"aws:username": []}})), "must have at least one value"),
    (doc(cond({"StringEquals": {"aws:username": ["a", None]}})), "value None must be a string"),
    (doc(cond({"StringLike": {"aws:username": "${aws:username}"}})), "uses a policy variable"),
    (doc(cond({"Bool": {"aws:SecureTransport": "yes"}})), "value 'yes' must be true or false"),
    (doc(cond({"Null": {"aws:username": 1}})), "value 1 must be true or false"),
    (doc(cond({"IpAddress": {"aws:SourceIp": "300.1.1.1"}})), "value '300.1.1.1' must be an IP address or CIDR"),
    (doc(cond({"DateLessThan": {"aws:CurrentTime": "tomorrow"}})), "value 'tomorrow' must be an ISO 8601"),
    (doc(cond({"DateLessThan": {"aws:CurrentTime": True}})), "value True must be an ISO 8601"),
    (doc(cond({"NumericLessThan": {"aws:EpochTime": "ten"}})), "value 'ten' must be a number"),
    (doc(cond({"ArnLike": {"aws:PrincipalArn": "user/alice"}})), "value 'user/alice' must be an ARN"),
    (doc(cond({"ArnLike": {"aws:PrincipalArn": "arn:aws:iam:user/alice"}})), "must be an ARN"),
]


@pytest.mark.parametrize("document, problem", REFUSED, ids=[p for _, p in REFUSED])
def test_refused_elements_are_named(document, problem):
    with pytest.raises(ValidationError) as exc:
        parse_policy(document)
    assert problem in exc.value.message


ACCEPTED = [
    doc(st(principal="*", Sid="any", action=["codeartifact:Get*", "CodeArtifact:List*", "sts:GetServiceBearerToken"])),
    doc(st(effect="Deny", principal=False, NotPrincipal={"AWS": [ALICE, ACCOUNT]})),
    doc(st(resource=None, action=None, NotAction=PUBLISH, NotResource=[SECRET])),
    doc(st(resource=None)),  # Resource defaults to "*"
    doc(cond({"ForAnyValue:StringLikeIfExists": {"AWS:PrincipalTag/Team": ["a*", "b?"]},
              "DateGreaterThanEquals": {"aws:CurrentTime": ["2020-01-01", 1577836800, "2020-01-01T00:00:00+02:00"]},
              "NumericLessThan": {"aws:EpochTime": "1e12"}, "BoolIfExists": {"aws:SecureTransport": True},
              "NotIpAddressIfExists": {"aws:SourceIp": ["10.0.0.0/8", "::1"]}, "Null": {"aws:username": "false"},
              "ArnNotEquals": {"aws:PrincipalArn": "arn:aws:iam::*:user/b*"}})),
    # Version 2008-10-17 has no policy variables: "${" is a literal there, as in IAM
    doc(st(resource=f"arn:aws:codeartifact:*:{ACCOUNT}:repository/acme/${{x}}"), version="2008-10-17"),
]


@pytest.mark.parametrize("document", ACCEPTED)
def test_accepted_documents(document):
    assert parse_policy(document).statements


# ---- how each element decides ----------------------------------------------------------------------

ALLOW_ALL = st()


@pytest.mark.parametrize("statements, request_, expected", [
    # NotAction / NotResource / NotPrincipal
    ([st(action=None, NotAction=PUBLISH)], {"action": READ}, "Allow"),
    ([st(action=None, NotAction=PUBLISH)], {"action": PUBLISH}, "None"),
    ([ALLOW_ALL, st("Deny", action=None, NotAction=READ)], {"action": READ}, "Allow"),
    ([ALLOW_ALL, st("Deny", action=None, NotAction=READ)], {"action": PUBLISH}, "Deny"),
    ([st(resource=None, NotResource=SECRET)], {"resource": REPO}, "Allow"),
    ([st(resource=None, NotResource=SECRET)], {"resource": SECRET}, "None"),
    ([st(principal="*"), st("Deny", principal=False, NotPrincipal={"AWS": ALICE})], {"who": ALICE}, "Allow"),
    ([st(principal="*"), st("Deny", principal=False, NotPrincipal={"AWS": ALICE})], {"who": BOB}, "Deny"),
    ([st(principal="*"), st("Deny", principal=False, NotPrincipal={"AWS": ACCOUNT})], {"who": BOB}, "Allow"),
    # actions are case-insensitive; ARNs (Resource, Principal) are not; only * and ? are wildcards
    ([st(action="CODEARTIFACT:readfromREPOSITORY")], {"action": READ}, "Allow"),
    ([st(action="codeartifact:Read*")], {"action": "codeartifact:readFromRepository"}, "Allow"),
    ([st(resource=REPO.replace("libs", "Libs"))], {"resource": REPO}, "None"),
    ([st(resource=REPO.replace("repository/acme", "REPOSITORY/ACME"))], {"resource": REPO}, "None"),
    ([st(resource=REPO.replace("libs", "l?bs"))], {"resource": REPO}, "Allow"),
    ([st(resource=REPO.replace("libs", "[l]ibs"))], {"resource": REPO}, "None"),
    ([st(resource=REPO.replace("libs", "[l]ibs"))], {"resource": REPO.replace("libs", "[l]ibs")}, "Allow"),
    ([st(principal={"AWS": ALICE.replace("alice", "Alice")})], {"who": ALICE}, "None"),
    ([st(principal={"AWS": f"arn:aws:iam::{ACCOUNT}:user/a*"})], {"who": ALICE}, "Allow"),
    # explicit Deny > Allow > implicit deny; a Deny whose condition does not hold does not deny
    ([ALLOW_ALL, st("Deny", Condition={"StringEquals": {"aws:username": "alice"}})], {}, "Deny"),
    ([ALLOW_ALL, st("Deny", Condition={"StringEquals": {"aws:username": "bob"}})], {}, "Allow"),
])
def test_statement_elements(statements, request_, expected):
    who = request_.get("who", ALICE)
    assert decide(*statements, who=who, action=request_.get("action", READ),
                  resource=request_.get("resource", REPO)) == expected


TAGS = {"team": "blue", "Stage": "prod"}


@pytest.mark.parametrize("block, ctx, holds", [
    # String: exact and case-sensitive; several values are alternatives; a negated one must match none
    ({"StringEquals": {"aws:username": "alice"}}, {}, True),
    ({"StringEquals": {"aws:username": "Alice"}}, {}, False),
    ({"StringEquals": {"AWS:UserName": ["bob", "alice"]}}, {}, True),  # key names are case-insensitive
    ({"StringNotEquals": {"aws:username": ["bob", "carol"]}}, {}, True),
    ({"StringNotEquals": {"aws:username": ["bob", "alice"]}}, {}, False),
    ({"StringEqualsIgnoreCase": {"aws:username": "ALICE"}}, {}, True),
    ({"StringNotEqualsIgnoreCase": {"aws:username": "ALICE"}}, {}, False),
    ({"StringLike": {"aws:username": "a?i*"}}, {}, True),
    ({"StringLike": {"aws:username": "A*"}}, {}, False),
    ({"StringNotLike": {"aws:username": "b*"}}, {}, True),
    ({"StringLike": {"aws:PrincipalArn": "*:user/alice"}}, {}, True),
    # ARN: per colon-separated component, case-sensitive, wildcards inside a component
    ({"ArnLike": {"aws:PrincipalArn": "arn:aws:iam::*:user/a*"}}, {}, True),
    ({"ArnEquals": {"aws:PrincipalArn": ALICE}}, {}, True),
    ({"ArnEquals": {"aws:PrincipalArn": ALICE.replace("alice", "ALICE")}}, {}, False),
    ({"ArnLike": {"aws:PrincipalArn": "arn:aws:iam::1*:user/alice"}}, {}, False),
    ({"ArnNotLike": {"aws:PrincipalArn": "arn:aws:iam::*:user/b*"}}, {}, True),
    ({"ArnNotEquals": {"aws:PrincipalArn": ALICE}}, {}, False),
    # IP address
    ({"IpAddress": {"aws:SourceIp": "127.0.0.0/8"}}, {}, True),
    ({"IpAddress": {"aws:SourceIp": ["10.0.0.0/8", "127.0.0.1"]}}, {}, True),
    ({"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}, {}, False),
    ({"NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"}}, {}, True),
    ({"NotIpAddress": {"aws:SourceIp": "127.0.0.1/32"}}, {}, False),
    ({"IpAddress": {"aws:SourceIp": "::/0"}}, {}, False),  # an IPv6 block holds no IPv4 address
    ({"IpAddress": {"aws:SourceIp": "127.0.0.1/32"}}, {"source_ip": "::ffff:127.0.0.1"}, True),
    ({"IpAddress": {"aws:SourceIp": "0.0.0.0/0"}}, {"source_ip": None}, False),
    ({"NotIpAddress": {"aws:SourceIp": "0.0.0.0/0"}}, {"source_ip": None}, True),  # negated, absent key
    # Bool
    ({"Bool": {"aws:SecureTransport": "false"}}, {}, True),
    ({"Bool": {"aws:SecureTransport": False}}, {}, True),
    ({"Bool": {"aws:SecureTransport": "true"}}, {}, False),
    ({"Bool": {"aws:SecureTransport": "true"}}, {"secure_transport": True}, True),
    ({"Bool": {"aws:SecureTransport": "false"}}, {"secure_transport": None}, False),
    ({"BoolIfExists": {"aws:SecureTransport": "false"}}, {"secure_transport": None}, True),
    # Date, in UTC unless the value names its offset; epoch seconds too
    ({"DateLessThan": {"aws:CurrentTime": "2030-06-01T12:00:01Z"}}, {}, True),
    ({"DateLessThan": {"aws:CurrentTime": "2030-06-01T12:00:00Z"}}, {}, False),
    ({"DateLessThanEquals": {"aws:CurrentTime": "2030-06-01T12:00:00Z"}}, {}, True),
    ({"DateGreaterThan": {"aws:CurrentTime": "2030-06-01T11:59:59Z"}}, {}, True),
    ({"DateGreaterThanEquals": {"aws:CurrentTime": "2030-06-01T12:00:01Z"}}, {}, False),
    ({"DateEquals": {"aws:CurrentTime": "2030-06-01T14:00:00+02:00"}}, {}, True),
    ({"DateEquals": {"aws:CurrentTime": "2030-06-01T12:00:00"}}, {}, True),  # no offset: UTC
    ({"DateNotEquals": {"aws:CurrentTime": "2030-06-01T12:00:00Z"}}, {}, False),
    ({"DateGreaterThan": {"aws:CurrentTime": "2030-06-01"}}, {}, True),
    ({"DateLessThan": {"aws:CurrentTime": int(NOW.timestamp()) + 1}}, {}, True),
    ({"DateLessThan": {"aws:EpochTime": "2030-06-01T12:00:01Z"}}, {}, True),
    ({"DateLessThan": {"aws:CurrentTime": "2030-06-01T12:00:01Z"}}, {"now": None}, False),
    # Numeric (aws:EpochTime)
    ({"NumericEquals": {"aws:EpochTime": int(NOW.timestamp())}}, {}, True),
    ({"NumericNotEquals": {"aws:EpochTime": str(int(NOW.timestamp()))}}, {}, False),
    ({"NumericLessThan": {"aws:EpochTime": int(NOW.timestamp())}}, {}, False),
    ({"NumericLessThanEquals": {"aws:EpochTime": int(NOW.timestamp())}}, {}, True),
    ({"NumericGreaterThan": {"aws:EpochTime": 0}}, {}, True),
    ({"NumericGreaterThanEquals": {"aws:EpochTime": 1e12}}, {}, False),
    # absent keys: plain false, negated true, IfExists true, Null tests presence
    ({"StringEquals": {"aws:PrincipalTag/team": "blue"}}, {}, False),
    ({"StringNotEquals": {"aws:PrincipalTag/team": "blue"}}, {}, True),
    ({"StringEqualsIfExists": {"aws:PrincipalTag/team": "blue"}}, {}, True),
    ({"StringEqualsIfExists": {"aws:ResourceTag/team": "red"}}, {"resource_tags": TAGS}, False),
    ({"StringEqualsIfExists": {"aws:ResourceTag/team": "blue"}}, {"resource_tags": TAGS}, True),
    ({"Null": {"aws:PrincipalTag/team": "true"}}, {}, True),
    ({"Null": {"aws:PrincipalTag/team": "false"}}, {}, False),
    ({"Null": {"aws:ResourceTag/team": "false"}}, {"resource_tags": TAGS}, True),
    ({"Null": {"aws:SourceIp": True}}, {"source_ip": None}, True),
    # resource tags: the tag key part is case-insensitive, the value is not
    ({"StringEquals": {"aws:ResourceTag/stage": "prod"}}, {"resource_tags": TAGS}, True),
    ({"StringEquals": {"aws:ResourceTag/Team": "Blue"}}, {"resource_tags": TAGS}, False),
    ({"StringLike": {"aws:ResourceTag/team": "b*"}}, {"resource_tags": TAGS}, True),
    # set operators: ForAllValues is true and ForAnyValue false over an absent key
    ({"ForAllValues:StringEquals": {"aws:PrincipalTag/team": "blue"}}, {}, True),
    ({"ForAnyValue:StringEquals": {"aws:PrincipalTag/team": "blue"}}, {}, False),
    ({"ForAnyValue:StringEqualsIfExists": {"aws:PrincipalTag/team": "blue"}}, {}, True),
    ({"ForAnyValue:StringEquals": {"aws:ResourceTag/team": ["red", "blue"]}}, {"resource_tags": TAGS}, True),
    ({"ForAllValues:StringEquals": {"aws:ResourceTag/team": ["red"]}}, {"resource_tags": TAGS}, False),
    # two spellings of one tag key: every value counts (ForAllValues all of them, ForAnyValue one)
    ({"ForAllValues:StringEquals": {"aws:ResourceTag/env": ["a"]}}, {"resource_tags": {"env": "a", "ENV": "b"}},
     False),
    ({"ForAllValues:StringEquals": {"aws:ResourceTag/env": ["a", "b"]}},
     {"resource_tags": {"env": "a", "ENV": "b"}}, True),
    ({"ForAnyValue:StringEquals": {"aws:ResourceTag/env": "b"}}, {"resource_tags": {"env": "a", "ENV": "b"}}, True),
    ({"ForAnyValue:StringNotEquals": {"aws:ResourceTag/env": "a"}}, {"resource_tags": {"env": "a", "ENV": "b"}},
     True),
    ({"ForAllValues:StringNotEquals": {"aws:ResourceTag/env": "a"}},
     {"resource_tags": {"env": "a", "ENV": "b"}}, False),
    ({"StringEquals": {"aws:ResourceTag/env": "a"}}, {"resource_tags": {"env": "a", "ENV": "b"}}, False),
    # several operators and several keys: all must hold
    ({"StringEquals": {"aws:username": "alice"}, "Bool": {"aws:SecureTransport": "true"}}, {}, False),
    ({"StringEquals": {"aws:username": "alice", "aws:PrincipalArn": ALICE}}, {}, True),
    ({"StringEquals": {"aws:username": "alice", "aws:PrincipalArn": BOB}}, {}, False),
])
def test_condition_operators(block, ctx, holds):
    tags = ctx.pop("resource_tags", None)
    c = context(**ctx, resource_tags=(lambda: tags) if tags is not None else None)
    assert decide(cond(block), ctx=c) == ("Allow" if holds else "None")


def test_resource_tags_are_read_only_when_a_condition_asks():
    def no_lookup():
        raise AssertionError("tags looked up without a condition that needs them")

    assert decide(st(), ctx=context(resource_tags=no_lookup)) == "Allow"
    calls = []
    c = context(resource_tags=lambda: calls.append(1) or {"team": "blue"})
    assert decide(cond({"StringEquals": {"aws:ResourceTag/team": "blue", "aws:ResourceTag/Team": "blue"}}),
                  ctx=c) == "Allow"
    assert calls == [1]


def test_documents_stored_before_these_rules_are_evaluated_in_the_safe_direction():
    """A stored document that today's rules refuse still decides: its understood statements as
    written, an Allow it breaks grants nothing, a Deny it breaks applies to every request."""
    ok = st(action=READ)
    broken_allow = st(action=PUBLISH, Condition={"StringEqualz": {"aws:username": "alice"}})
    old = load_stored(doc(ok, broken_allow))
    assert evaluate([old], Request(ALICE, READ, REPO, context()), ACCOUNT) == "Allow"
    assert evaluate([old], Request(ALICE, PUBLISH, REPO, context()), ACCOUNT) == "None"
    broken_deny = st("Deny", principal={"AWS": BOB}, action=PUBLISH, Unknown=1)
    old = load_stored(doc(ok, broken_deny))
    assert evaluate([old], Request(ALICE, READ, REPO, context()), ACCOUNT) == "Deny"
