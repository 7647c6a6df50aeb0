"""Issue 14, item 6: malformed control-plane input is a 400 ValidationException that names the member,
never a 500, and it changes nothing.

The cases are generated from botocore's service model: for every operation and every member of its
input shape (and the members inside lists, maps and structures), values of the wrong JSON type,
too long or too short, outside the enum, against the pattern, out of range, holding a NUL; query
parameters given twice, numbers and booleans that are not; every required member left out and an
unknown member added. Requests are signed with SigV4 by hand (tests/support/raw_api.py), so boto3's
own serialisation and validation never see them. Each operation runs against a domain full of
things a wrong acceptance would change, and a snapshot of it before and after must be equal.

Paging tokens are signed: forged, foreign (another operation, another listing), edited by one
character, or signed but pointing out of range, each is a 400; ListPackages' origin filters apply
before the page is cut."""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import botocore.session
import pytest
import regex
from botocore.exceptions import ClientError
from itsdangerous import URLSafeSerializer

from app.api.router import STREAMING
from app.services import paging
from tests.support.raw_api import RawControlPlane

MODEL = botocore.session.get_session().get_service_model("codeartifact")
ACCOUNT = "000000000000"
MISSING = object()
POLICY = json.dumps({"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Principal": "*", "Action": "codeartifact:ReadFromRepository", "Resource": "*"}]})
PAYLOAD = b""  # PublishPackageVersion's asset: empty, so that SigV4 needs no payload hash header of its own
WRONG_JSON_TYPES = {
    "string": [("a number", 12345), ("a list", ["x"]), ("an object", {"k": "v"}), ("a boolean", True)],
    "integer": [("a string", "5"), ("an object", {"k": 1}), ("a fraction", 1.5), ("a boolean", True), ("a list", [1])],
    "long": [("a string", "900"), ("an object", {"k": 1}), ("a fraction", 1.5), ("a boolean", True)],
    "boolean": [("a string", "true"), ("a number", 1), ("an object", {})],
    "list": [("a string", "x"), ("a number", 12345), ("an object", {"k": "v"})],
    "map": [("a string", "x"), ("a list", [1]), ("a number", 5)],
    "structure": [("a number", 5), ("a string", "x"), ("a list", [])],
}
PATTERN_BREAKERS = ["has space", "x#y/z", "bell\x07", "Upper_Case!", "-lead", "abcdefghijkl", "g" * 64]


# ---- the world an operation runs against -------------------------------------------------------------

@dataclass
class World:
    domain: str
    strings: dict
    overrides: dict = field(default_factory=dict)

    @property
    def domain_arn(self) -> str:
        return f"arn:aws:codeartifact:us-east-1:{ACCOUNT}:domain/{self.domain}"


@pytest.fixture(scope="module")
def world(server) -> World:
    c = server.boto()
    d = f"v{uuid.uuid4().hex[:8]}"
    c.create_domain(domain=d, tags=[{"key": "team", "value": "a"}])
    c.create_repository(domain=d, repository="up")
    c.create_repository(domain=d, repository="repo", upstreams=[{"repositoryName": "up"}],
                        tags=[{"key": "team", "value": "b"}])
    c.create_repository(domain=d, repository="other")
    data = b"data"
    c.publish_package_version(domain=d, repository="repo", format="generic", namespace="acme", package="pkg",
                              packageVersion="1.0", assetContent=data, assetName="a.bin",
                              assetSHA256=hashlib.sha256(data).hexdigest())
    c.create_package_group(domain=d, packageGroup="/generic/acme/*", description="acme", contactInfo="ops")
    c.put_domain_permissions_policy(domain=d, policyDocument=POLICY)
    c.put_repository_permissions_policy(domain=d, repository="repo", policyDocument=POLICY)
    strings = {
        "DomainName": d, "AccountId": ACCOUNT, "PackageFormat": "generic", "RepositoryName": "repo", "PackageNamespace": "acme",
        "PackageName": "pkg", "PackageVersion": "1.0", "PackageVersionRevision": "rev", "AssetName": "a.bin",
        "TagKey": "team", "TagValue": "a", "ExternalConnectionName": "public:npmjs",
        "PackageGroupPattern": "/generic/acme/*", "String": "/generic/acme/*", "PolicyDocument": POLICY,
        "PolicyRevision": "rev", "Arn": f"arn:aws:codeartifact:us-east-1:{ACCOUNT}:domain/{d}",
        "SHA256": hashlib.sha256(PAYLOAD).hexdigest(), "PaginationToken": "token", "Description": "described",
        "PackageGroupContactInfo": "ops", "PackageGroupPatternPrefix": "/generic",
    }
    # What each operation would create or change if it accepted a malformed request.
    overrides = {("CreateDomain", "domain"): f"fresh{d}", ("CreateRepository", "repository"): "fresh",
                 ("CreatePackageGroup", "packageGroup"): "/generic/fresh/*",
                 ("PublishPackageVersion", "packageVersion"): "2.0", ("CopyPackageVersions", "destinationRepository"):
                 "other", ("UpdatePackageVersionsStatus", "targetStatus"): "Archived"}
    return World(d, strings, overrides)


@pytest.fixture(scope="module")
def raw(server):
    client = RawControlPlane(server.url, server.access_key)
    yield client
    client.close()


def snapshot(c, w: World) -> dict:
    """Everything in the world a wrongly accepted request could change, as the API reports it."""
    d = w.domain
    out = {"domains": sorted(x["name"] for x in c.list_domains(maxResults=1000)["domains"]),
           "domain": c.describe_domain(domain=d)["domain"], "repositories": {}, "tags": {}, "policies": {},
           "groups": c.list_package_groups(domain=d, maxResults=1000)["packageGroups"]}
    arns = [w.domain_arn] + [g["arn"] for g in out["groups"]]
    for r in c.list_repositories_in_domain(domain=d, maxResults=1000)["repositories"]:
        name = r["name"]
        packages = c.list_packages(domain=d, repository=name, maxResults=1000)["packages"]
        out["repositories"][name] = {
            "repository": c.describe_repository(domain=d, repository=name)["repository"],
            "packages": packages,
            "versions": [c.list_package_versions(domain=d, repository=name, format=p["format"], package=p["package"],
                                                 **({"namespace": p["namespace"]} if "namespace" in p else {}),
                                                 maxResults=1000)["versions"] for p in packages]}
        arns.append(r["arn"])
        out["policies"][name] = _policy(lambda: c.get_repository_permissions_policy(domain=d, repository=name))
    out["policies"]["domain"] = _policy(lambda: c.get_domain_permissions_policy(domain=d))
    out["tags"] = {arn: c.list_tags_for_resource(resourceArn=arn)["tags"] for arn in arns}
    return out


def _policy(call):
    try:
        return call()["policy"]["revision"]
    except ClientError as exc:
        assert exc.response["Error"]["Code"] == "ResourceNotFoundException"
        return None


# ---- generating the malformed inputs from the model ------------------------------------------------------

@dataclass
class Case:
    member: str | None  # the top-level member it is about (None: an unknown one)
    path: str  # what the message must name
    kind: str
    value: object = MISSING


def valid(shape, w: World):
    t = shape.type_name
    if t == "string":
        return w.strings[shape.name] if shape.name in w.strings or not shape.enum else shape.enum[0]
    if t in ("integer", "long"):
        return max(shape.metadata.get("min", 1), 1)
    if t == "boolean":
        return False
    if t == "blob":
        return PAYLOAD
    if t == "list":
        return [valid(shape.member, w)]
    if t == "map":
        return {valid(shape.key, w): valid(shape.value, w)}
    return {m: valid(ms, w) for m, ms in shape.members.items()}


def string_values(shape, text_only: bool = False):
    """(kind, value) pairs of strings that break the shape's constraints, each on its own."""
    meta = shape.metadata
    low, high = meta.get("min", 0), meta.get("max")
    if high is not None:
        yield "too long", "x" * (high + 1)
    if low >= 1:
        yield "too short", "x" * (low - 1)
    if shape.enum:
        yield "not in the enum", "NotAValue"
    elif "pattern" in meta:
        pattern = regex.compile(meta["pattern"])
        for candidate in PATTERN_BREAKERS:
            candidate = candidate.ljust(low, "x")
            if (high is None or len(candidate) <= high) and not pattern.fullmatch(candidate):
                if not (text_only and "\x07" in candidate):
                    yield "against the pattern", candidate
                break
    if not text_only:
        yield "holding a NUL", "a\x00".ljust(max(low, 2), "0")


def integer_values(shape):
    meta = shape.metadata
    if "min" in meta:
        yield "below the minimum", meta["min"] - 1
    if "max" in meta:
        yield "above the maximum", meta["max"] + 1


def json_cases(shape, path: str, w: World, depth: int = 0):
    """(kind, path, value) for a member sent in the JSON body."""
    t = shape.type_name
    for name, value in WRONG_JSON_TYPES.get(t, []):
        yield f"{name} for {_a(t)}", path, value
    if t == "string":
        for kind, value in string_values(shape):
            yield kind, path, value
    elif t in ("integer", "long"):
        for kind, value in integer_values(shape):
            yield kind, path, value
    elif t == "list":
        if "max" in shape.metadata:
            yield "too many entries", path, [valid(shape.member, w)] * (shape.metadata["max"] + 1)
        for kind, p, value in json_cases(shape.member, f"{path}[0]", w, depth + 1):
            yield kind, p, [value]
    elif t == "map":
        key, item = valid(shape.key, w), valid(shape.value, w)
        for kind, value in string_values(shape.key):
            yield f"key {kind}", f"{path} (key: ", {value: item}
        for kind, p, value in json_cases(shape.value, f"{path}.{key}", w, depth + 1):
            yield kind, p, {key: value}
    elif t == "structure":
        base = valid(shape, w)
        for m in shape.required_members:
            yield "missing a required member", f"{path}.{m}", {k: v for k, v in base.items() if k != m}
        yield "with an unknown member", f"{path}.bogus", {**base, "bogus": 1}
        for m, ms in shape.members.items():
            for kind, p, value in json_cases(ms, f"{path}.{m}", w, depth + 1):
                yield kind, p, {**base, m: value}


def text_cases(shape, location: str, w: World):
    """(kind, text) for a member sent as a query parameter or header."""
    if location == "querystring":
        yield "given twice", [_text(valid(shape, w))] * 2
    t = shape.type_name
    if t == "string":
        yield from string_values(shape, text_only=location == "header")
    elif t in ("integer", "long"):
        yield "not a number", "twelve"
        yield "a fraction", "1.5"
        yield "a huge number", "9" * 30
        for kind, value in integer_values(shape):
            yield kind, str(value)
    elif t == "boolean":
        yield "not a boolean", "maybe"
        yield "a number for a boolean", "1"


def operation_cases(op, w: World) -> list[Case]:
    shape = op.input_shape
    payload = shape.serialization.get("payload")
    out = []
    for m, ms in shape.members.items():
        where = ms.serialization.get("location")
        if m == payload:
            continue
        if where is None:
            out += [Case(m, p, kind, value) for kind, p, value in json_cases(ms, m, w)]
        else:
            out += [Case(m, m, f"{kind} ({where})", value) for kind, value in text_cases(ms, where, w)]
    out += [Case(m, m, "missing") for m in shape.required_members if m != payload]
    out.append(Case(None, "bogus", "unknown query parameter", ("query", "bogus")))
    if op.name not in STREAMING.values():  # their body is the asset (publish) or not read (download)
        out.append(Case(None, "bogus", "unknown body member", ("body", "bogus")))
    return out


def _a(type_name: str) -> str:
    return {"integer": "an integer", "long": "an integer", "map": "a map", "list": "a list",
            "structure": "a structure", "boolean": "a boolean"}.get(type_name, f"a {type_name}")


def _text(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def baseline(op, w: World) -> dict:
    """A well-formed input: the required members (each case adds or breaks one)."""
    shape = op.input_shape
    params = {}
    for m in shape.required_members:
        params[m] = w.overrides.get((op.name, m)) or valid(shape.members[m], w)
    return params


def to_wire(op, params: dict, extra: tuple | None = None) -> tuple[list, dict, bytes]:
    """(query pairs, headers, body bytes) as the model places each member."""
    shape = op.input_shape
    payload = shape.serialization.get("payload")
    query, headers, body = [], {}, {}
    for m, value in params.items():
        ms = shape.members[m]
        where, name = ms.serialization.get("location"), ms.serialization.get("name", m)
        if m == payload:
            continue
        if where == "querystring":
            query += [(name, _text(v)) for v in (value if isinstance(value, list) else [value])]
        elif where == "header":
            headers[name] = _text(value)
        else:
            body[name] = value
    if extra == ("query", "bogus"):
        query.append(("bogus", "1"))
    elif extra == ("body", "bogus"):
        body["bogus"] = 1
    if payload:
        return query, headers, PAYLOAD
    return query, headers, json.dumps(body).encode() if body else b""


# PublishPackageVersion streams its body after authentication, so the signature must cover a
# signed x-amz-content-sha256 (assetSHA256): without one the request is not authenticated at all.
UNSIGNABLE = {("PublishPackageVersion", "assetSHA256", "missing")}


def refusal_problem(response, case: Case, operation: str = "") -> str | None:
    """Why the answer is not the 400 the case needs (None when it is)."""
    if (operation, case.path, case.kind) in UNSIGNABLE:
        if response.status_code == 403 and "x-amz-content-sha256" in response.text:
            return None
        return f"HTTP {response.status_code}: {response.text[:300]}"
    if response.status_code != 400:
        return f"HTTP {response.status_code}: {response.text[:300]}"
    if response.headers.get("x-amzn-errortype") != "ValidationException":
        return f"error type {response.headers.get('x-amzn-errortype')}"
    body = response.json()
    message = body.get("message", "")
    if body.get("reason") != "FIELD_VALIDATION_FAILED":
        return f"reason {body.get('reason')!r}"
    if "\n" in message or case.path not in message:
        return f"the message does not name {case.path!r} on one line: {message[:300]!r}"
    return None


# ---- every operation × every member × every kind of bad input -------------------------------------------

@pytest.mark.parametrize("name", sorted(MODEL.operation_names))
def test_malformed_input_is_a_400_naming_the_member_and_changes_nothing(server, world, raw, name):
    op = MODEL.operation_model(name)
    c = server.boto()
    before = snapshot(c, world)
    problems = []
    for case in operation_cases(op, world):
        params = baseline(op, world)
        extra = None
        if case.member is None:
            extra = case.value
        elif case.value is MISSING:
            params.pop(case.member, None)
        else:
            params[case.member] = case.value
        query, headers, body = to_wire(op, params, extra)
        why = refusal_problem(raw.send(name, query, body, headers), case, name)
        if why:
            problems.append(f"{case.path} {case.kind}: {why}")
    after = snapshot(c, world)
    changed = sorted(k for k in before if before[k] != after[k])
    assert not problems and not changed, f"{name} changed {changed}:\n" + "\n".join(problems)


def test_the_walk_covers_every_member_of_every_operation(world):
    """Each member of each input shape gets at least one malformed value or goes missing."""
    for name in MODEL.operation_names:
        op = MODEL.operation_model(name)
        covered = {case.member for case in operation_cases(op, world)}
        payload = op.input_shape.serialization.get("payload")
        assert set(op.input_shape.members) - {payload} <= covered, name


# ---- the JSON body itself and the connection ---------------------------------------------------------------

@pytest.mark.parametrize("body, reason", [
    (b"{not json", "not valid JSON"), (b"[1, 2]", "must be a JSON object"), (b'"text"', "must be a JSON object"),
    (b"[" * 200_000 + b"]" * 200_000, "not valid JSON"), (b'{"maxResults": 1e999}', "maxResults"),
    (b'{"maxResults": ' + b"9" * 5000 + b"}", "not valid JSON"),
])
def test_a_body_that_is_not_a_json_object_is_a_400(raw, body, reason):
    r = raw.send("ListDomains", body=body)
    assert r.status_code == 400 and r.headers["x-amzn-errortype"] == "ValidationException"
    assert reason in r.json()["message"]


def test_null_members_count_as_absent(raw, world):
    r = raw.send("ListDomains", body={"maxResults": None, "nextToken": None})
    assert r.status_code == 200, r.text


# The request shapes that answered 500 (and dropped the connection) before the model was checked.
FORMER_500S = [
    ("CreateDomain", "tags", 12345), ("CreateRepository", "tags", 12345), ("CreateRepository", "upstreams", 1),
    ("UpdateRepository", "upstreams", 1), ("CreatePackageGroup", "tags", 12345), ("TagResource", "tags", 12345),
    ("UntagResource", "tagKeys", 12345), ("PutDomainPermissionsPolicy", "policyDocument", 1),
    ("PutRepositoryPermissionsPolicy", "policyDocument", 1), ("PutPackageOriginConfiguration", "restrictions", 5),
    ("PutPackageOriginConfiguration", "restrictions", "ALLOW"), ("UpdatePackageVersionsStatus", "versions", 1),
    ("DisposePackageVersions", "versions", 1), ("DeletePackageVersions", "versions", 1),
    ("CopyPackageVersions", "versions", 1), ("CopyPackageVersions", "versionRevisions", 1),
    ("UpdatePackageGroupOriginConfiguration", "restrictions", 5),
    ("UpdatePackageGroupOriginConfiguration", "addAllowedRepositories", 1),
]


def test_former_500s_are_400s_on_a_connection_that_stays_open(server, world):
    """One keep-alive connection carries every request: a refusal does not close it."""
    raw = RawControlPlane(server.url, server.access_key)
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    try:
        for name, member, value in FORMER_500S:
            op = MODEL.operation_model(name)
            params = {**baseline(op, world), member: value}
            query, headers, body = to_wire(op, params)
            r = _send_on(conn, raw, name, query, headers, body)
            assert r.status == 400, (name, member, r.status)
            message = json.loads(r.read())["message"]
            assert member in message, (name, message)
            assert not r.will_close, f"{name}: the server closed the connection after a refusal"
        first_socket = conn.sock
        r = _send_on(conn, raw, "ListDomains", [], {}, b"")
        assert r.status == 200 and conn.sock is first_socket
        r.read()
    finally:
        conn.close()
        raw.close()


def _send_on(conn: http.client.HTTPConnection, raw: RawControlPlane, name: str, query, headers, body):
    """Signed as RawControlPlane signs, sent over the given http.client connection."""
    method, uri = MODEL.operation_model(name).http["method"], MODEL.operation_model(name).http["requestUri"]
    target, signed = raw.sign(method, uri, query, body, headers)
    conn.request(method, target, body=body, headers=signed)
    return conn.getresponse()


# ---- signed paging tokens -----------------------------------------------------------------------------------

def _first_token(c, domain: str) -> str:
    token = c.list_repositories_in_domain(domain=domain, maxResults=1).get("nextToken")
    assert token
    return token


def _refused(call, **kwargs) -> str:
    with pytest.raises(ClientError) as exc:
        call(**kwargs)
    assert exc.value.response["Error"]["Code"] == "ValidationException"
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    message = exc.value.response["Error"]["Message"]
    assert "nextToken" in message
    return message


def test_paging_tokens_are_signed_and_bound_to_their_listing(server, world):
    c = server.boto()
    token = _first_token(c, world.domain)
    second = c.list_repositories_in_domain(domain=world.domain, maxResults=1, nextToken=token)
    assert len(second["repositories"]) == 1
    forged = base64.urlsafe_b64encode(json.dumps({"o": 1}).encode()).decode()
    _refused(c.list_repositories_in_domain, domain=world.domain, maxResults=1, nextToken=forged)
    assert "ListPackages" in _refused(c.list_packages, domain=world.domain, repository="repo", nextToken=token)
    _refused(c.list_domains, nextToken=token)
    _refused(c.list_repositories_in_domain, domain=world.domain, repositoryPrefix="re", maxResults=1,
             nextToken=token)
    other = f"o{world.domain}"
    c.create_domain(domain=other)
    _refused(c.list_repositories_in_domain, domain=other, maxResults=1, nextToken=token)
    # a different page size is the same listing
    assert c.list_repositories_in_domain(domain=world.domain, maxResults=2, nextToken=token)["repositories"]


def test_a_token_edited_by_one_character_is_refused(server, world, raw):
    token = _first_token(server.boto(), world.domain)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_."
    for i, ch in enumerate(token):
        edited = token[:i] + alphabet[(alphabet.index(ch) + 1) % len(alphabet)] + token[i + 1:]
        r = raw.send("ListRepositoriesInDomain", [("domain", world.domain), ("max-results", "1"),
                                                  ("next-token", edited)])
        assert r.status_code == 400, (i, edited, r.text)
        assert "nextToken" in r.json()["message"]


def test_a_signed_token_out_of_range_is_refused(server, world):
    """Signed with the server's own key (read from its data dir), but the offset is not one it issues."""
    key = (Path(server.env["ARCA_DATA_DIR"]) / "secret.key").read_text().strip()
    signer = URLSafeSerializer(key, salt=paging._SALT)
    listing = paging._listing_digest({"domain": world.domain})
    c = server.boto()
    for offset in (-1, "3", 10**12, 1.5):
        token = signer.dumps({"op": "ListRepositoriesInDomain", "l": listing, "o": offset})
        assert "out of range" in _refused(c.list_repositories_in_domain, domain=world.domain, nextToken=token)
    everything = c.list_repositories_in_domain(domain=world.domain)["repositories"]
    token = signer.dumps({"op": "ListRepositoriesInDomain", "l": listing, "o": 1})
    assert c.list_repositories_in_domain(domain=world.domain, nextToken=token)["repositories"] == everything[1:]


@pytest.mark.parametrize("value", ["", "x" * 2001, "has space"])
def test_a_malformed_token_is_refused_by_the_model(raw, world, value):
    r = raw.send("ListRepositoriesInDomain", [("domain", world.domain), ("next-token", value)])
    assert r.status_code == 400 and "nextToken" in r.json()["message"], r.text


# ---- ListPackages filters before it cuts the page -------------------------------------------------------------

def test_list_packages_filters_before_paging(server, world):
    c = server.boto()
    repo = "filtered"
    c.create_repository(domain=world.domain, repository=repo)
    blocked = []
    for i in range(7):
        name = f"p{i}"
        c.put_package_origin_configuration(domain=world.domain, repository=repo, format="generic", namespace="acme",
                                           package=name, restrictions={"publish": "BLOCK" if i % 3 == 2 else "ALLOW",
                                                                       "upstream": "ALLOW"})
        if i % 3 == 2:
            blocked.append(name)
    pages, token = [], None
    while True:
        out = c.list_packages(domain=world.domain, repository=repo, publish="BLOCK", maxResults=1,
                              **({"nextToken": token} if token else {}))
        pages.append([p["package"] for p in out["packages"]])
        token = out.get("nextToken")
        if not token:
            break
    assert pages == [[name] for name in blocked]
    allowed = c.list_packages(domain=world.domain, repository=repo, publish="ALLOW", maxResults=3)
    assert [p["package"] for p in allowed["packages"]] == ["p0", "p1", "p3"] and allowed["nextToken"]
