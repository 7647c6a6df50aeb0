"""Pure parts of issue 15, table-driven: the query protocol against botocore's own serializer and
parser (what boto3 sends is read back exactly; what Arca writes, boto3 reads exactly), web identity
token checks, and the three kinds of policy document."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from datetime import datetime, timezone
from urllib.parse import parse_qsl

import botocore.session
import pytest
from botocore.parsers import create_parser
from botocore.serialize import create_serializer
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey

from app.api.query_protocol import read_params, render_result
from app.auth.policy import IDENTITY, TRUST, Request, evaluate, parse_policy
from app.auth.conditions import Context
from app.auth.webidentity import TokenRefused, condition_values, verify
from app.domain.errors import ValidationError

IAM = botocore.session.get_session().get_service_model("iam")
STS = botocore.session.get_session().get_service_model("sts")
WHEN = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)

INPUTS = [
    (IAM, "CreateUser", {"UserName": "alice", "Tags": [{"Key": "team", "Value": "blue"}, {"Key": "x", "Value": ""}]}),
    (IAM, "UntagUser", {"UserName": "alice", "TagKeys": ["team", "x"]}),
    (IAM, "UpdateAccessKey", {"UserName": "alice", "AccessKeyId": "AKIA0000000000000000", "Status": "Inactive"}),
    (IAM, "PutGroupPolicy", {"GroupName": "g", "PolicyName": "p", "PolicyDocument": '{"Version": "2012-10-17"}'}),
    (IAM, "ListUsers", {"Marker": "bob", "MaxItems": 10}),
    (IAM, "CreateOpenIDConnectProvider", {"Url": "https://token.actions.githubusercontent.com",
                                          "ClientIDList": ["arca", "sts.amazonaws.com"], "ThumbprintList": ["0" * 40]}),
    (IAM, "CreateRole", {"RoleName": "r", "AssumeRolePolicyDocument": "{}", "MaxSessionDuration": 3600}),
    (STS, "AssumeRoleWithWebIdentity", {"RoleArn": "arn:aws:iam::000000000000:role/r", "RoleSessionName": "ci",
                                        "WebIdentityToken": "a.b.c", "DurationSeconds": 900}),
]

OUTPUTS = [
    (IAM, "CreateUser", {"User": {"Path": "/", "UserName": "alice", "UserId": "AIDA0000000000000001",
                                  "Arn": "arn:aws:iam::000000000000:user/alice", "CreateDate": WHEN,
                                  "Tags": [{"Key": "team", "Value": "<blue & co>"}]}}),
    (IAM, "ListAccessKeys", {"AccessKeyMetadata": [{"UserName": "a", "AccessKeyId": "AKIA0000000000000000",
                                                    "Status": "Active", "CreateDate": WHEN}], "IsTruncated": False}),
    (IAM, "ListUsers", {"Users": [], "IsTruncated": True, "Marker": "bob"}),
    (IAM, "GetUserPolicy", {"UserName": "a", "PolicyName": "p",
                            "PolicyDocument": {"Version": "2012-10-17", "Statement": [{"Effect": "Allow"}]}}),
    (IAM, "ListOpenIDConnectProviders", {"OpenIDConnectProviderList": [{"Arn": "arn:aws:iam::0:oidc-provider/x"}]}),
    (STS, "AssumeRoleWithWebIdentity", {"Credentials": {"AccessKeyId": "ASIA", "SecretAccessKey": "s",
                                                        "SessionToken": "t", "Expiration": WHEN},
                                        "SubjectFromWebIdentityToken": "repo:a/b:ref:refs/heads/main",
                                        "AssumedRoleUser": {"AssumedRoleId": "AROA:ci", "Arn": "arn"},
                                        "Provider": "host", "Audience": "arca"}),
    (IAM, "DeleteUser", {}),
]


@pytest.mark.parametrize("model,name,params", INPUTS, ids=[i[1] for i in INPUTS])
def test_what_boto3_sends_is_read_back_exactly(model, name, params):
    op = model.operation_model(name)
    body = create_serializer("query").serialize_to_request(params, op)["body"]
    form = dict(parse_qsl(body if isinstance(body, str) else "&".join(f"{k}={v}" for k, v in body.items()),
                          keep_blank_values=True)) if isinstance(body, str) else {k: str(v) for k, v in body.items()}
    assert read_params(op, form) == params


@pytest.mark.parametrize("model,name,result", OUTPUTS, ids=[o[1] for o in OUTPUTS])
def test_what_arca_writes_boto3_reads_exactly(model, name, result):
    op = model.operation_model(name)
    wire = dict(result)
    if name == "GetUserPolicy":
        wire["PolicyDocument"] = json.dumps(result["PolicyDocument"])
    xml = render_result(op, wire, model.metadata["xmlNamespace"], "req-1").encode()
    parsed = create_parser("query").parse({"body": xml, "headers": {}, "status_code": 200}, op.output_shape)
    parsed.pop("ResponseMetadata", None)
    if name == "GetUserPolicy":  # botocore decodes IAM's URL-encoded policy documents after the call
        from urllib.parse import unquote
        parsed["PolicyDocument"] = json.loads(unquote(parsed["PolicyDocument"]))
    assert parsed == result


def test_unknown_or_mistyped_parameters_are_refused():
    op = IAM.operation_model("CreateUser")
    with pytest.raises(ValidationError, match="Unknown parameter 'Usrname'"):
        read_params(op, {"Action": "CreateUser", "Usrname": "x"})
    with pytest.raises(ValidationError, match="UserName"):
        read_params(op, {"Action": "CreateUser"})
    with pytest.raises(ValidationError, match="not an integer"):
        read_params(IAM.operation_model("ListUsers"), {"MaxItems": "ten"})


# ---- web identity tokens --------------------------------------------------------------------------------

KEY = RSAKey.generate_key(2048, parameters={"kid": "k1"})
JWKS = KeySet([KEY]).as_dict(private=False)
ISS = "https://issuer.example"


def _claims(**over) -> dict:
    now = int(time.time())
    return {"iss": ISS, "sub": "repo:a/b:ref:refs/heads/main", "aud": "arca", "iat": now, "nbf": now,
            "exp": now + 300, "repository": "a/b", "run_attempt": 1, "ref_protected": True, **over}


def _sign(claims: dict, key=KEY, alg="RS256") -> str:
    return jwt.encode({"alg": alg, "kid": key.kid}, claims, key)


def _hs256(claims: dict) -> str:
    """HMAC-signed with the issuer's public key as the shared secret: the classic algorithm confusion."""
    def part(d) -> str:
        return base64.urlsafe_b64encode(json.dumps(d).encode()).decode().rstrip("=")
    head = f"{part({'alg': 'HS256', 'kid': 'k1'})}.{part(claims)}"
    sig = hmac.new(json.dumps(JWKS["keys"][0]).encode(), head.encode(), hashlib.sha256).digest()
    return head + "." + base64.urlsafe_b64encode(sig).decode().rstrip("=")


@pytest.mark.parametrize("token,kind,says", [
    (lambda: _sign(_claims(aud="other")), "audience", "audience"),
    (lambda: _sign(_claims(exp=int(time.time()) - 3600)), "expired", "expired"),
    (lambda: _sign(_claims(nbf=int(time.time()) + 3600)), "expired", "not valid before"),
    (lambda: _sign(_claims(iat=int(time.time()) + 3600)), "invalid", "issued in the future"),
    (lambda: _sign(_claims(iss="https://evil.example")), "invalid", "issuer"),
    (lambda: _sign({k: v for k, v in _claims().items() if k != "exp"}), "invalid", "'exp'"),
    (lambda: _sign(_claims(), key=RSAKey.generate_key(2048, parameters={"kid": "k2"})), "unknown-key", "'k2'"),
    (lambda: _sign(_claims(), key=RSAKey.generate_key(2048, parameters={"kid": "k1"})), "invalid", "signature"),
    (lambda: _hs256(_claims()), "invalid", "'HS256' is not accepted"),
    (lambda: "e30.e30.", "invalid", "algorithm None is not accepted"),
    (lambda: "only.two", "invalid", "not a JWT"),
])
def test_each_bad_token_is_refused_with_its_reason(token, kind, says):
    with pytest.raises(TokenRefused) as info:
        verify(token(), keys=JWKS, issuer=ISS, audiences=("arca",), now=time.time())
    assert info.value.kind == kind and says in info.value.message, info.value.message


def test_a_good_token_and_its_claims_as_condition_keys():
    identity = verify(_sign(_claims()), keys=JWKS, issuer=ISS, audiences=("arca",), now=time.time())
    values = condition_values("issuer.example", identity)
    assert values["issuer.example:sub"] == ["repo:a/b:ref:refs/heads/main"]
    assert values["issuer.example:run_attempt"] == ["1"] and values["issuer.example:ref_protected"] == ["true"]


# ---- policy kinds ---------------------------------------------------------------------------------------

PROVIDER = "arn:aws:iam::000000000000:oidc-provider/token.actions.githubusercontent.com"


def _doc(**statement) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


@pytest.mark.parametrize("kind,statement,says", [
    (IDENTITY, {"Effect": "Allow", "Principal": "*", "Action": "codeartifact:*", "Resource": "*"}, "has no Principal"),
    (IDENTITY, {"Effect": "Allow", "Action": "codeartifact:*"}, "Resource is required"),
    (IDENTITY, {"Effect": "Allow", "Action": "s3:*", "Resource": "*"}, "codeartifact:* or sts:* or iam:*"),
    (TRUST, {"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRoleWithWebIdentity"}, "Federated"),
    (TRUST, {"Effect": "Allow", "Principal": {"Federated": "github"}, "Action": "sts:AssumeRoleWithWebIdentity"},
     "OIDC provider ARN"),
    (TRUST, {"Effect": "Allow", "Principal": {"Federated": PROVIDER}, "Action": "codeartifact:*"}, "sts:*"),
    (TRUST, {"Effect": "Allow", "Principal": {"Federated": PROVIDER}, "Action": "sts:AssumeRoleWithWebIdentity",
             "Resource": "*"}, "has no Resource"),
    ("resource", {"Effect": "Allow", "Principal": "*", "Action": "codeartifact:*",
                  "Condition": {"StringEquals": {"token.actions.githubusercontent.com:sub": "x"}}}, "not supported"),
])
def test_each_kind_refuses_what_it_would_not_enforce(kind, statement, says):
    with pytest.raises(ValidationError) as info:
        parse_policy(_doc(**statement), kind)
    assert says in info.value.message, info.value.message


def test_a_trust_policy_matches_the_tokens_claims():
    trust = parse_policy(_doc(Effect="Allow", Principal={"Federated": PROVIDER},
                              Action="sts:AssumeRoleWithWebIdentity",
                              Condition={"StringEquals": {"token.actions.githubusercontent.com:aud": "arca"},
                                         "StringLike": {"token.actions.githubusercontent.com:sub":
                                                        "repo:acme/*:ref:refs/tags/v*"}}), TRUST)

    def decide(sub: str, provider: str = PROVIDER) -> str:
        claims = {"token.actions.githubusercontent.com:aud": ["arca"], "token.actions.githubusercontent.com:sub": [sub]}
        return evaluate([trust], Request(provider, "sts:AssumeRoleWithWebIdentity", "arn:aws:iam::0:role/r",
                                         Context(claims=claims)), "000000000000")

    assert decide("repo:acme/widgets:ref:refs/tags/v1.2") == "Allow"
    assert decide("repo:acme/widgets:ref:refs/heads/main") == "None"
    assert decide("repo:mallory/widgets:ref:refs/tags/v1") == "None"
    assert decide("repo:acme/widgets:ref:refs/tags/v1", "arn:aws:iam::000000000000:oidc-provider/gitlab.com") == "None"
