"""Every one of CodeArtifact's 48 operations through boto3 against a real server.

botocore builds each request from the service model (validating the parameters) and parses each
response with it; on top of that every successful response is checked here against the model's
output shape (member names, types, required members, enums) and every error against the
operation's documented error types. Each List* operation is paged over more than one page.

Any deviation from the model fails the call: an error code the model does not list for the
operation, an output member or enum value outside the model, a missing required member, a value
shorter or longer than the model allows.

The client used here records every call (operation, outcome, error code, whether a nextToken was
sent); when ARCA_API_RESULTS names a directory, the record is written there at the end of the
module, and scripts/gen_api_doc.py renders docs/api.md from it (scripts/gen-api-doc runs both).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import time
import uuid
from pathlib import Path

import botocore.session
import pytest
from botocore.exceptions import ClientError
from botocore.validate import ParamValidator

from app.api.router import ROUTES, STREAMING

MODEL = botocore.session.get_session().get_service_model("codeartifact")
ALL_OPERATIONS = sorted(MODEL.operation_names)
# Which operations Arca implements: everything the control-plane router dispatches.
IMPLEMENTED = sorted({name for name, _ in ROUTES.values()} | set(STREAMING.values()))
# Errors raised before an operation runs (SigV4); not part of any operation's documented list.
AUTH_ERRORS = {"InvalidSignatureException", "UnrecognizedClientException", "MissingAuthenticationTokenException"}

RESULTS: dict[str, dict] = {op: {"ok": 0, "errors": {}, "paged": False} for op in ALL_OPERATIONS}


# ---- the recording, shape-checking client -----------------------------------------------------------

def _shape_problems(shape, value, path="") -> list[str]:
    """Enums and unknown members, which botocore's validator does not check on its own."""
    out = []
    if shape.type_name == "structure" and isinstance(value, dict):
        for k, v in value.items():
            if k not in shape.members:
                out.append(f"{path}.{k}: not a member of {shape.name}")
            else:
                out += _shape_problems(shape.members[k], v, f"{path}.{k}")
    elif shape.type_name == "list" and isinstance(value, list):
        for i, v in enumerate(value):
            out += _shape_problems(shape.member, v, f"{path}[{i}]")
    elif shape.type_name == "map" and isinstance(value, dict):
        for k, v in value.items():
            out += _shape_problems(shape.key, k, f"{path}<key>")
            out += _shape_problems(shape.value, v, f"{path}[{k}]")
    elif shape.type_name == "string" and getattr(shape, "enum", None) and value not in shape.enum:
        out.append(f"{path}: {value!r} is not one of {shape.enum}")
    return out


def _after_call(http_response, parsed, model, **_):
    op = model.name
    err = parsed.get("Error") if isinstance(parsed, dict) else None
    if err and err.get("Code"):
        code = err["Code"]
        documented = {e.name for e in model.error_shapes} | AUTH_ERRORS
        assert code in documented, f"{op} answered {code}, which the model does not list for this operation"
        RESULTS[op]["errors"][code] = RESULTS[op]["errors"].get(code, 0) + 1
        return
    body = {k: v for k, v in parsed.items() if k != "ResponseMetadata"}
    if model.output_shape is not None:
        report = ParamValidator().validate(body, model.output_shape)
        problems = _shape_problems(model.output_shape, body)
        for kind, name, details in report._errors:
            where = re.sub(r"\[\d+\]", "[]", name)
            problems.append(f"{kind} at {where}: {details}")
        for name in model.output_shape.required_members:
            if name not in body:
                problems.append(f"required output member {name} missing")
        assert not problems, f"{op} response does not fit the model:\n" + "\n".join(problems)
    RESULTS[op]["ok"] += 1


def _params(params, model, **_):
    if params.get("nextToken"):
        RESULTS[model.name]["paged"] = True


def recording(client):
    client.meta.events.register("after-call.codeartifact", _after_call)
    client.meta.events.register("provide-client-params.codeartifact", _params)
    return client


@pytest.fixture(scope="module", autouse=True)
def _write_results():
    yield
    out = os.environ.get("ARCA_API_RESULTS")
    if not out:
        return
    Path(out).mkdir(parents=True, exist_ok=True)
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    run = os.environ.get("PYTEST_XDIST_TESTRUNUID") or uuid.uuid4().hex
    (Path(out) / f"{worker}.json").write_text(json.dumps(
        {"run": run, "written": time.time(), "implemented": IMPLEMENTED, "results": RESULTS}, indent=1))


@pytest.fixture(scope="module")
def ca(server):
    return recording(server.boto())


@pytest.fixture(scope="module")
def outsider(server):
    """A non-admin user with no policy granting anything (one per module: creating users is slow)."""
    return recording(server.boto(server.new_user(f"outsider{uuid.uuid4().hex[:6]}")))


def _code(exc) -> str:
    return exc.value.response["Error"]["Code"]


def _all_pages(call, key: str, **kwargs) -> list:
    """Page with maxResults=1; returns items and asserts that more than one page was fetched."""
    items, token, pages = [], None, 0
    while True:
        resp = call(maxResults=1, **({"nextToken": token} if token else {}), **kwargs)
        items += resp[key]
        pages += 1
        token = resp.get("nextToken")
        if not token:
            break
    assert pages > 1, f"expected more than one page of {key}"
    return items


def _publish(ca, domain, repo, package, version, asset="a.bin", data=b"data", unfinished=False, ns="acme"):
    return ca.publish_package_version(domain=domain, repository=repo, format="generic", namespace=ns,
                                      package=package, packageVersion=version, assetContent=data, assetName=asset,
                                      assetSHA256=hashlib.sha256(data).hexdigest(), unfinished=unfinished)


# ---- static ---------------------------------------------------------------------------------------

def test_every_operation_is_routed():
    assert len(ALL_OPERATIONS) == 48
    assert IMPLEMENTED == ALL_OPERATIONS, f"not routed: {sorted(set(ALL_OPERATIONS) - set(IMPLEMENTED))}"
    for (method, uri), (name, _h) in ROUTES.items():
        http = MODEL.operation_model(name).http
        assert (http["method"], http["requestUri"].split("?")[0]) == (method, uri)
    for (method, uri), name in STREAMING.items():
        http = MODEL.operation_model(name).http
        assert (http["method"], http["requestUri"]) == (method, uri)


# ---- domains --------------------------------------------------------------------------------------

def test_domains(server, ca, unique, outsider):
    names = [f"c{unique}{i}" for i in range(3)]
    for n in names:
        assert ca.create_domain(domain=n, tags=[{"key": "team", "value": "a"}])["domain"]["name"] == n
    d = ca.describe_domain(domain=names[0])["domain"]
    assert d["repositoryCount"] == 0 and d["status"] == "Active"
    listed = [x["name"] for x in _all_pages(ca.list_domains, "domains")]
    assert set(names) <= set(listed)
    with pytest.raises(ClientError) as exc:
        ca.create_domain(domain=names[0])
    assert _code(exc) == "ConflictException"
    with pytest.raises(ClientError) as exc:
        ca.create_domain(domain="Bad_Name")
    assert _code(exc) == "ValidationException"
    with pytest.raises(ClientError) as exc:
        ca.describe_domain(domain=f"missing{unique}")
    assert _code(exc) == "ResourceNotFoundException"
    with pytest.raises(ClientError) as exc:
        ca.list_domains(maxResults=1, nextToken="not-a-token")
    assert _code(exc) == "ValidationException"
    ca.create_repository(domain=names[0], repository="r1")
    with pytest.raises(ClientError) as exc:
        ca.delete_domain(domain=names[0])
    assert _code(exc) == "ConflictException"
    ca.delete_repository(domain=names[0], repository="r1")
    assert ca.delete_domain(domain=names[0])["domain"]["status"] == "Deleted"
    assert names[0] not in [x["name"] for x in ca.list_domains(maxResults=1000)["domains"]]
    user = outsider
    with pytest.raises(ClientError) as exc:
        user.create_domain(domain=f"x{unique}")
    assert _code(exc) == "AccessDeniedException"
    with pytest.raises(ClientError) as exc:
        user.describe_domain(domain=names[1])
    assert _code(exc) == "AccessDeniedException"
    assert names[1] not in [x["name"] for x in user.list_domains()["domains"]]


def test_domain_policy(ca, domain):
    doc = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": "*",
                                                              "Action": "codeartifact:ReadFromRepository",
                                                              "Resource": "*"}]})
    with pytest.raises(ClientError) as exc:
        ca.get_domain_permissions_policy(domain=domain)
    assert _code(exc) == "ResourceNotFoundException"
    p = ca.put_domain_permissions_policy(domain=domain, policyDocument=doc)["policy"]
    assert ca.get_domain_permissions_policy(domain=domain)["policy"] == p
    with pytest.raises(ClientError) as exc:
        ca.put_domain_permissions_policy(domain=domain, policyDocument=doc, policyRevision="stale")
    assert _code(exc) == "ConflictException"
    with pytest.raises(ClientError) as exc:
        ca.put_domain_permissions_policy(domain=domain, policyDocument="{not json")
    assert _code(exc) == "ValidationException"
    with pytest.raises(ClientError) as exc:
        ca.delete_domain_permissions_policy(domain=domain, policyRevision="stale")
    assert _code(exc) == "ConflictException"
    assert ca.delete_domain_permissions_policy(domain=domain, policyRevision=p["revision"])["policy"] == p
    with pytest.raises(ClientError) as exc:
        ca.delete_domain_permissions_policy(domain=domain)
    assert _code(exc) == "ResourceNotFoundException"


# ---- repositories ---------------------------------------------------------------------------------

def test_repositories(server, ca, domain, unique, outsider):
    for name in ("base", "app1", "app2"):
        ca.create_repository(domain=domain, repository=name, description=f"{name} repo",
                             **({"upstreams": [{"repositoryName": "base"}]} if name != "base" else {}))
    r = ca.describe_repository(domain=domain, repository="app1")["repository"]
    assert r["upstreams"] == [{"repositoryName": "base"}]
    r = ca.update_repository(domain=domain, repository="app2", description="changed", upstreams=[])["repository"]
    assert r["description"] == "changed" and r["upstreams"] == []
    in_domain = _all_pages(ca.list_repositories_in_domain, "repositories", domain=domain)
    assert sorted(x["name"] for x in in_domain) == ["app1", "app2", "base"]
    everywhere = _all_pages(ca.list_repositories, "repositories", repositoryPrefix="app")
    assert {"app1", "app2"} <= {x["name"] for x in everywhere if x["domainName"] == domain}
    ep = ca.get_repository_endpoint(domain=domain, repository="app1", format="pypi")["repositoryEndpoint"]
    assert ep == server.endpoint(domain, "pypi", "app1")
    r = ca.associate_external_connection(domain=domain, repository="base",
                                         externalConnection="public:pypi")["repository"]
    assert r["externalConnections"][0]["externalConnectionName"] == "public:pypi"
    with pytest.raises(ClientError) as exc:
        ca.associate_external_connection(domain=domain, repository="base", externalConnection="public:npmjs")
    assert _code(exc) == "ConflictException"
    with pytest.raises(ClientError) as exc:
        ca.associate_external_connection(domain=domain, repository="app2", externalConnection="public:nowhere")
    assert _code(exc) == "ValidationException"
    ca.disassociate_external_connection(domain=domain, repository="base", externalConnection="public:pypi")
    with pytest.raises(ClientError) as exc:
        ca.disassociate_external_connection(domain=domain, repository="base", externalConnection="public:pypi")
    assert _code(exc) == "ResourceNotFoundException"
    with pytest.raises(ClientError) as exc:
        ca.create_repository(domain=domain, repository="base")
    assert _code(exc) == "ConflictException"
    with pytest.raises(ClientError) as exc:
        ca.update_repository(domain=domain, repository="base", upstreams=[{"repositoryName": "app1"}])
    assert _code(exc) == "ValidationException"  # a cycle
    with pytest.raises(ClientError) as exc:
        ca.delete_repository(domain=domain, repository="base")
    assert _code(exc) == "ConflictException"  # still an upstream of app1
    with pytest.raises(ClientError) as exc:
        ca.describe_repository(domain=domain, repository="nope")
    assert _code(exc) == "ResourceNotFoundException"
    with pytest.raises(ClientError) as exc:
        ca.get_repository_endpoint(domain=domain, repository="app1", format="rpm")
    assert _code(exc) == "ValidationException"
    with pytest.raises(ClientError) as exc:
        ca.list_repositories_in_domain(domain=f"missing{unique}")
    assert _code(exc) == "ResourceNotFoundException"
    assert ca.delete_repository(domain=domain, repository="app2")["repository"]["name"] == "app2"
    user = outsider
    with pytest.raises(ClientError) as exc:
        user.delete_repository(domain=domain, repository="app1")
    assert _code(exc) == "AccessDeniedException"
    assert [x for x in user.list_repositories()["repositories"] if x["domainName"] == domain] == []


def test_repository_policy(ca, domain):
    ca.create_repository(domain=domain, repository="libs")
    doc = json.dumps({"Version": "2012-10-17", "Statement": [{"Sid": "read", "Effect": "Allow", "Principal": "*",
                                                              "Action": ["codeartifact:Read*"], "Resource": "*"}]})
    with pytest.raises(ClientError) as exc:
        ca.get_repository_permissions_policy(domain=domain, repository="libs")
    assert _code(exc) == "ResourceNotFoundException"
    p = ca.put_repository_permissions_policy(domain=domain, repository="libs", policyDocument=doc)["policy"]
    assert p["resourceArn"].endswith(f":repository/{domain}/libs")
    assert ca.get_repository_permissions_policy(domain=domain, repository="libs")["policy"] == p
    with pytest.raises(ClientError) as exc:
        ca.put_repository_permissions_policy(domain=domain, repository="libs", policyDocument=doc,
                                             policyRevision="stale")
    assert _code(exc) == "ConflictException"
    with pytest.raises(ClientError) as exc:
        ca.put_repository_permissions_policy(domain=domain, repository="libs",
                                             policyDocument=json.dumps({"Version": "2012-10-17"}))
    assert _code(exc) == "ValidationException"
    with pytest.raises(ClientError) as exc:
        ca.delete_repository_permissions_policy(domain=domain, repository="libs", policyRevision="stale")
    assert _code(exc) == "ConflictException"
    ca.delete_repository_permissions_policy(domain=domain, repository="libs", policyRevision=p["revision"])
    with pytest.raises(ClientError) as exc:
        ca.delete_repository_permissions_policy(domain=domain, repository="libs")
    assert _code(exc) == "ResourceNotFoundException"


def test_authorization_token(server, ca, domain, unique, outsider):
    before = time.time()
    out = ca.get_authorization_token(domain=domain, durationSeconds=900)
    after = time.time()
    # 900 s after the server issued it (in whole seconds), which happened between before and after
    assert math.floor(before) + 900 <= out["expiration"].timestamp() <= math.ceil(after) + 900
    with pytest.raises(ClientError) as exc:
        ca.get_authorization_token(domain=domain, durationSeconds=60)
    assert _code(exc) == "ValidationException"
    with pytest.raises(ClientError) as exc:
        ca.get_authorization_token(domain=f"missing{unique}")
    assert _code(exc) == "ResourceNotFoundException"
    user = outsider
    with pytest.raises(ClientError) as exc:
        user.get_authorization_token(domain=domain)
    assert _code(exc) == "AccessDeniedException"


# ---- packages, versions, assets ---------------------------------------------------------------------

def test_packages_and_versions(server, ca, domain, unique, outsider):
    ca.create_repository(domain=domain, repository="gen")
    for pkg in ("p1", "p2", "p3"):
        _publish(ca, domain, "gen", pkg, "1.0")
    for v in ("2.0", "3.0"):
        _publish(ca, domain, "gen", "p1", v)
    # version 1.0 is Published: assets may not be added any more
    with pytest.raises(ClientError) as exc:
        _publish(ca, domain, "gen", "p1", "1.0", asset="late.bin", data=b"late")
    assert _code(exc) == "ConflictException"
    for i, asset in enumerate(("x.bin", "y.bin", "z.bin")):
        _publish(ca, domain, "gen", "p2", "2.0", asset=asset, data=asset.encode(), unfinished=i < 2)
    pkgs = _all_pages(ca.list_packages, "packages", domain=domain, repository="gen", format="generic")
    assert [p["package"] for p in pkgs] == ["p1", "p2", "p3"]
    assert ca.describe_package(domain=domain, repository="gen", format="generic", namespace="acme",
                               package="p1")["package"]["name"] == "p1"
    versions = _all_pages(ca.list_package_versions, "versions", domain=domain, repository="gen",
                          format="generic", namespace="acme", package="p1")
    assert [v["version"] for v in versions] == ["1.0", "2.0", "3.0"]
    desc = ca.describe_package_version(domain=domain, repository="gen", format="generic", namespace="acme",
                                       package="p1", packageVersion="2.0")["packageVersion"]
    assert desc["status"] == "Published" and desc["origin"]["originType"] == "INTERNAL"
    assets = _all_pages(ca.list_package_version_assets, "assets", domain=domain, repository="gen",
                        format="generic", namespace="acme", package="p2", packageVersion="2.0")
    assert [a["name"] for a in assets] == ["x.bin", "y.bin", "z.bin"]
    got = ca.get_package_version_asset(domain=domain, repository="gen", format="generic", namespace="acme",
                                       package="p2", packageVersion="2.0", asset="y.bin")
    assert got["asset"].read() == b"y.bin" and got["assetName"] == "y.bin"
    with pytest.raises(ClientError) as exc:
        ca.get_package_version_asset(domain=domain, repository="gen", format="generic", namespace="acme",
                                     package="p2", packageVersion="2.0", asset="y.bin",
                                     packageVersionRevision="stale")
    assert _code(exc) == "ResourceNotFoundException"
    readme = ca.get_package_version_readme(domain=domain, repository="gen", format="generic", namespace="acme",
                                           package="p1", packageVersion="1.0")
    assert readme["version"] == "1.0"
    deps = ca.list_package_version_dependencies(domain=domain, repository="gen", format="generic",
                                                namespace="acme", package="p1", packageVersion="1.0")
    assert deps["dependencies"] == []
    upd = ca.update_package_versions_status(domain=domain, repository="gen", format="generic", namespace="acme",
                                            package="p1", versions=["2.0", "9.9"], targetStatus="Archived")
    assert upd["successfulVersions"]["2.0"]["status"] == "Archived"
    assert upd["failedVersions"]["9.9"]["errorCode"] == "NOT_FOUND"
    upd = ca.update_package_versions_status(domain=domain, repository="gen", format="generic", namespace="acme",
                                            package="p1", versions=["3.0"], targetStatus="Unlisted",
                                            expectedStatus="Archived")
    assert upd["failedVersions"]["3.0"]["errorCode"] == "MISMATCHED_STATUS"
    disp = ca.dispose_package_versions(domain=domain, repository="gen", format="generic", namespace="acme",
                                       package="p1", versions=["2.0"])
    assert disp["successfulVersions"]["2.0"]["status"] == "Disposed"
    dele = ca.delete_package_versions(domain=domain, repository="gen", format="generic", namespace="acme",
                                      package="p1", versions=["3.0"])
    assert dele["successfulVersions"]["3.0"]["status"] == "Deleted"
    origin = ca.put_package_origin_configuration(domain=domain, repository="gen", format="generic",
                                                 namespace="acme", package="p3",
                                                 restrictions={"publish": "BLOCK", "upstream": "ALLOW"})
    assert origin["originConfiguration"]["restrictions"]["publish"] == "BLOCK"
    with pytest.raises(ClientError) as exc:
        _publish(ca, domain, "gen", "p3", "2.0")
    assert _code(exc) == "AccessDeniedException"
    assert ca.delete_package(domain=domain, repository="gen", format="generic", namespace="acme",
                             package="p3")["deletedPackage"]["package"] == "p3"
    with pytest.raises(ClientError) as exc:
        ca.describe_package(domain=domain, repository="gen", format="generic", namespace="acme", package="p3")
    assert _code(exc) == "ResourceNotFoundException"
    with pytest.raises(ClientError) as exc:
        ca.describe_package_version(domain=domain, repository="gen", format="generic", namespace="acme",
                                    package="p1", packageVersion="3.0")
    assert _code(exc) == "ResourceNotFoundException"
    with pytest.raises(ClientError) as exc:
        ca.list_package_versions(domain=domain, repository="gen", format="generic", package="p1")
    assert _code(exc) == "ValidationException"  # generic needs its namespace
    for call, kw in ((ca.get_package_version_readme, {}), (ca.list_package_version_dependencies, {}),
                     (ca.list_package_version_assets, {}), (ca.delete_package, {"packageVersion": None}),
                     (ca.put_package_origin_configuration, {"packageVersion": None,
                                                            "restrictions": {"publish": "ALLOW",
                                                                             "upstream": "ALLOW"}}),
                     (ca.update_package_versions_status, {"packageVersion": None, "versions": ["1"],
                                                          "targetStatus": "Published"}),
                     (ca.dispose_package_versions, {"packageVersion": None, "versions": ["1"]}),
                     (ca.delete_package_versions, {"packageVersion": None, "versions": ["1"]})):
        args = dict(domain=domain, repository="nope", format="generic", namespace="acme", package="p1",
                    packageVersion="1.0")
        args.update(kw)
        args = {k: v for k, v in args.items() if v is not None}
        with pytest.raises(ClientError) as exc:
            call(**args)
        assert _code(exc) == "ResourceNotFoundException"
    user = outsider
    for call, kw in ((user.list_packages, {}), (user.describe_package, {"package": "p1"}),
                     (user.list_package_versions, {"package": "p1"}),
                     (user.describe_package_version, {"package": "p1", "packageVersion": "1.0"}),
                     (user.list_package_version_assets, {"package": "p1", "packageVersion": "1.0"}),
                     (user.get_package_version_asset, {"package": "p1", "packageVersion": "1.0",
                                                       "asset": "a.bin"}),
                     (user.get_package_version_readme, {"package": "p1", "packageVersion": "1.0"}),
                     (user.list_package_version_dependencies, {"package": "p1", "packageVersion": "1.0"}),
                     (user.update_package_versions_status, {"package": "p1", "versions": ["1.0"],
                                                            "targetStatus": "Archived"}),
                     (user.dispose_package_versions, {"package": "p1", "versions": ["1.0"]}),
                     (user.delete_package_versions, {"package": "p1", "versions": ["1.0"]}),
                     (user.delete_package, {"package": "p1"}),
                     (user.put_package_origin_configuration, {"package": "p1", "restrictions": {
                         "publish": "BLOCK", "upstream": "BLOCK"}})):
        with pytest.raises(ClientError) as exc:
            call(domain=domain, repository="gen", format="generic", namespace="acme", **kw)
        assert _code(exc) == "AccessDeniedException", call
    with pytest.raises(ClientError) as exc:
        _publish(user, domain, "gen", "p9", "1.0")
    assert _code(exc) == "AccessDeniedException"
    # nothing above changed p1 1.0
    assert ca.describe_package_version(domain=domain, repository="gen", format="generic", namespace="acme",
                                       package="p1", packageVersion="1.0")["packageVersion"]["status"] == "Published"


def test_publish_errors_and_asset_quota(ca, domain):
    ca.create_repository(domain=domain, repository="gen")
    with pytest.raises(ClientError) as exc:
        ca.publish_package_version(domain=domain, repository="gen", format="generic", namespace="acme",
                                   package="q", packageVersion="1", assetContent=b"abc", assetName="a",
                                   assetSHA256=hashlib.sha256(b"other").hexdigest())
    assert _code(exc) == "ValidationException"
    with pytest.raises(ClientError) as exc:
        ca.publish_package_version(domain=domain, repository="nope", format="generic", namespace="acme",
                                   package="q", packageVersion="1", assetContent=b"abc", assetName="a",
                                   assetSHA256=hashlib.sha256(b"abc").hexdigest())
    assert _code(exc) == "ResourceNotFoundException"
    for i in range(150):
        _publish(ca, domain, "gen", "many", "1.0", asset=f"f{i:03}", data=str(i).encode(), unfinished=True)
    with pytest.raises(ClientError) as exc:
        _publish(ca, domain, "gen", "many", "1.0", asset="f150", data=b"one too many", unfinished=True)
    assert _code(exc) == "ServiceQuotaExceededException"
    # nothing was stored by the refused calls
    assert ca.list_packages(domain=domain, repository="gen", packagePrefix="q")["packages"] == []
    assets = ca.list_package_version_assets(domain=domain, repository="gen", format="generic", namespace="acme",
                                            package="many", packageVersion="1.0", maxResults=1000)["assets"]
    assert len(assets) == 150 and "f150" not in {a["name"] for a in assets}


def test_copy_package_versions(server, ca, domain, unique, outsider):
    for r in ("src-up", "src", "dst"):
        ca.create_repository(domain=domain, repository=r,
                             **({"upstreams": [{"repositoryName": "src-up"}]} if r == "src" else {}))
    _publish(ca, domain, "src", "tool", "1.0")
    _publish(ca, domain, "src-up", "tool", "0.9")
    rev = ca.describe_package_version(domain=domain, repository="src", format="generic", namespace="acme",
                                      package="tool", packageVersion="1.0")["packageVersion"]["revision"]
    out = ca.copy_package_versions(domain=domain, sourceRepository="src", destinationRepository="dst",
                                   format="generic", namespace="acme", package="tool", versionRevisions={"1.0": rev})
    assert list(out["successfulVersions"]) == ["1.0"]
    out = ca.copy_package_versions(domain=domain, sourceRepository="src", destinationRepository="dst",
                                   format="generic", namespace="acme", package="tool", versions=["1.0", "0.9"])
    assert out["failedVersions"]["1.0"]["errorCode"] == "ALREADY_EXISTS"
    assert out["failedVersions"]["0.9"]["errorCode"] == "NOT_FOUND"
    with pytest.raises(ClientError) as exc:
        ca.copy_package_versions(domain=domain, sourceRepository="src", destinationRepository="dst",
                                 format="generic", namespace="acme", package="tool", versions=["1.0"],
                                 versionRevisions={"1.0": rev})
    assert _code(exc) == "ValidationException"
    with pytest.raises(ClientError) as exc:
        ca.copy_package_versions(domain=domain, sourceRepository="dst", destinationRepository="src-up",
                                 format="generic", namespace="acme", package="other", versions=["1"])
    assert _code(exc) == "ResourceNotFoundException"
    user = outsider
    with pytest.raises(ClientError) as exc:
        user.copy_package_versions(domain=domain, sourceRepository="src", destinationRepository="dst",
                                   format="generic", namespace="acme", package="tool", versions=["1.0"])
    assert _code(exc) == "AccessDeniedException"


# ---- package groups -------------------------------------------------------------------------------

def test_package_groups(server, ca, domain, unique, outsider):
    ca.create_repository(domain=domain, repository="gen")
    for pkg in ("a1", "a2", "b1"):
        _publish(ca, domain, "gen", pkg, "1.0")
    g = ca.create_package_group(domain=domain, packageGroup="/generic/acme/*", description="acme",
                                contactInfo="ops@acme.invalid", tags=[{"key": "k", "value": "v"}])["packageGroup"]
    assert g["parent"]["pattern"] == "/*"
    for pattern in ("/generic/acme/a~", "/generic/acme/b1$", "/npm/*"):
        ca.create_package_group(domain=domain, packageGroup=pattern)
    assert ca.describe_package_group(domain=domain, packageGroup="/generic/acme/a~")["packageGroup"][
        "parent"]["pattern"] == "/generic/acme/*"
    assert ca.update_package_group(domain=domain, packageGroup="/generic/acme/*",
                                   description="changed")["packageGroup"]["description"] == "changed"
    groups = _all_pages(ca.list_package_groups, "packageGroups", domain=domain)
    assert [x["pattern"] for x in groups] == ["/*", "/generic/acme/*", "/generic/acme/a~", "/generic/acme/b1$",
                                              "/npm/*"]
    subs = _all_pages(ca.list_sub_package_groups, "packageGroups", domain=domain, packageGroup="/generic/acme/*")
    assert [x["pattern"] for x in subs] == ["/generic/acme/a~", "/generic/acme/b1$"]
    assoc = _all_pages(ca.list_associated_packages, "packages", domain=domain, packageGroup="/generic/acme/a~")
    assert [(p["package"], p["associationType"]) for p in assoc] == [("a1", "WEAK"), ("a2", "WEAK")]
    preview = ca.list_associated_packages(domain=domain, packageGroup="/generic/acme/a1$", preview=True)
    assert [p["package"] for p in preview["packages"]] == ["a1"]
    got = ca.get_associated_package_group(domain=domain, format="generic", namespace="acme", package="b1")
    assert got["packageGroup"]["pattern"] == "/generic/acme/b1$" and got["associationType"] == "STRONG"
    upd = ca.update_package_group_origin_configuration(
        domain=domain, packageGroup="/generic/acme/*", restrictions={"PUBLISH": "ALLOW_SPECIFIC_REPOSITORIES"},
        addAllowedRepositories=[{"repositoryName": "gen", "originRestrictionType": "PUBLISH"}])
    assert upd["allowedRepositoryUpdates"] == {"PUBLISH": {"ADDED": ["gen"]}}
    ca.create_repository(domain=domain, repository="other")
    ca.update_package_group_origin_configuration(
        domain=domain, packageGroup="/generic/acme/*",
        addAllowedRepositories=[{"repositoryName": "other", "originRestrictionType": "PUBLISH"}])
    allowed = _all_pages(ca.list_allowed_repositories_for_group, "allowedRepositories", domain=domain,
                         packageGroup="/generic/acme/*", originRestrictionType="PUBLISH")
    assert allowed == ["gen", "other"]
    # errors
    with pytest.raises(ClientError) as exc:
        ca.create_package_group(domain=domain, packageGroup="/generic/acme/*")
    assert _code(exc) == "ConflictException"
    with pytest.raises(ClientError) as exc:
        ca.create_package_group(domain=domain, packageGroup="/pypi/ns/x$")
    assert _code(exc) == "ValidationException"
    for call, kw in ((ca.describe_package_group, {}), (ca.delete_package_group, {}),
                     (ca.update_package_group, {"description": "x"}),
                     (ca.update_package_group_origin_configuration, {"restrictions": {"PUBLISH": "BLOCK"}}),
                     (ca.list_sub_package_groups, {}), (ca.list_associated_packages, {}),
                     (ca.list_allowed_repositories_for_group, {"originRestrictionType": "PUBLISH"})):
        with pytest.raises(ClientError) as exc:
            call(domain=domain, packageGroup="/maven/none/*", **kw)
        assert _code(exc) == "ResourceNotFoundException", call
    with pytest.raises(ClientError) as exc:
        ca.list_package_groups(domain=f"missing{unique}")
    assert _code(exc) == "ResourceNotFoundException"
    with pytest.raises(ClientError) as exc:
        ca.get_associated_package_group(domain=f"missing{unique}", format="npm", package="x")
    assert _code(exc) == "ResourceNotFoundException"
    with pytest.raises(ClientError) as exc:
        ca.get_associated_package_group(domain=domain, format="maven", package="x")
    assert _code(exc) == "ValidationException"
    with pytest.raises(ClientError) as exc:
        ca.update_package_group_origin_configuration(domain=domain, packageGroup="/*",
                                                     restrictions={"PUBLISH": "INHERIT"})
    assert _code(exc) == "ValidationException"
    with pytest.raises(ClientError) as exc:
        ca.list_allowed_repositories_for_group(domain=domain, packageGroup="/*", originRestrictionType="PUBLISH",
                                               maxResults=1, nextToken="garbage")
    assert _code(exc) == "ValidationException"
    with pytest.raises(ClientError) as exc:
        ca.delete_package_group(domain=domain, packageGroup="/*")
    assert _code(exc) == "ValidationException"
    user = outsider
    for call, kw in ((user.create_package_group, {"packageGroup": "/generic/x/*"}),
                     (user.describe_package_group, {"packageGroup": "/*"}),
                     (user.update_package_group, {"packageGroup": "/*", "description": "x"}),
                     (user.update_package_group_origin_configuration, {"packageGroup": "/*"}),
                     (user.delete_package_group, {"packageGroup": "/npm/*"}),
                     (user.list_package_groups, {}),
                     (user.list_sub_package_groups, {"packageGroup": "/*"}),
                     (user.list_associated_packages, {"packageGroup": "/*"}),
                     (user.list_allowed_repositories_for_group, {"packageGroup": "/*",
                                                                 "originRestrictionType": "PUBLISH"}),
                     (user.get_associated_package_group, {"format": "npm", "package": "x"})):
        with pytest.raises(ClientError) as exc:
            call(domain=domain, **kw)
        assert _code(exc) == "AccessDeniedException", call
    assert ca.delete_package_group(domain=domain, packageGroup="/npm/*")["packageGroup"]["pattern"] == "/npm/*"
    assert "/npm/*" not in [x["pattern"] for x in ca.list_package_groups(domain=domain)["packageGroups"]]


# ---- tags -------------------------------------------------------------------------------------------

def test_tags(server, ca, domain, unique, outsider):
    ca.create_repository(domain=domain, repository="tagged")
    group = ca.create_package_group(domain=domain, packageGroup="/npm/tagged/*")["packageGroup"]
    arns = [ca.describe_domain(domain=domain)["domain"]["arn"],
            ca.describe_repository(domain=domain, repository="tagged")["repository"]["arn"], group["arn"]]
    for arn in arns:
        ca.tag_resource(resourceArn=arn, tags=[{"key": "a", "value": "1"}, {"key": "b", "value": "2"}])
        ca.untag_resource(resourceArn=arn, tagKeys=["a"])
        assert ca.list_tags_for_resource(resourceArn=arn)["tags"] == [{"key": "b", "value": "2"}]
    missing = f"arn:aws:codeartifact:us-east-1:000000000000:repository/{domain}/none"
    for call, kw in ((ca.tag_resource, {"tags": [{"key": "a", "value": "1"}]}),
                     (ca.untag_resource, {"tagKeys": ["a"]}), (ca.list_tags_for_resource, {})):
        with pytest.raises(ClientError) as exc:
            call(resourceArn=missing, **kw)
        assert _code(exc) == "ResourceNotFoundException"
    with pytest.raises(ClientError) as exc:
        ca.tag_resource(resourceArn=arns[0], tags=[{"key": f"k{i}", "value": "v"} for i in range(201)])
    assert _code(exc) == "ValidationException"
    user = outsider
    for call, kw in ((user.tag_resource, {"tags": [{"key": "a", "value": "1"}]}),
                     (user.untag_resource, {"tagKeys": ["b"]}), (user.list_tags_for_resource, {})):
        with pytest.raises(ClientError) as exc:
            call(resourceArn=arns[1], **kw)
        assert _code(exc) == "AccessDeniedException"
    assert ca.list_tags_for_resource(resourceArn=arns[1])["tags"] == [{"key": "b", "value": "2"}]
