"""The README tour end to end against a real `arca serve`: through `arca`, the AWS CLI and boto3."""

from __future__ import annotations

import json
import math
import subprocess
import time

import httpx
import pytest

from tests.support.server import require_tool


def test_tour_with_arca_cli(server, unique):
    d, r = f"acme{unique}", "libs"
    out = server.cli_json("create-domain", "--domain", d)
    assert out["domain"]["name"] == d and out["domain"]["status"] == "Active"
    out = server.cli_json("create-repository", "--domain", d, "--repository", r, "--description", "Team libs")
    assert out["repository"]["description"] == "Team libs"
    assert server.cli_json("describe-domain", "--domain", d)["domain"]["repositoryCount"] == 1
    assert d in [x["name"] for x in server.cli_json("list-domains")["domains"]]
    assert server.cli_json("describe-repository", "--domain", d, "--repository", r)["repository"]["name"] == r
    assert any(x["name"] == r and x["domainName"] == d for x in server.cli_json("list-repositories")["repositories"])
    assert [x["name"] for x in server.cli_json("list-repositories-in-domain", "--domain", d)["repositories"]] == [r]
    out = server.cli_json("update-repository", "--domain", d, "--repository", r, "--description", "changed")
    assert out["repository"]["description"] == "changed"
    token = server.cli("get-authorization-token", "--domain", d, "--query", "authorizationToken",
                       "--output", "text").stdout
    assert token.endswith("\n") and "\n" not in token.strip() and len(token.strip()) > 20
    ep = server.cli_json("get-repository-endpoint", "--domain", d, "--repository", r, "--format", "maven")
    assert ep == {"repositoryEndpoint": f"{server.url}/{d}/maven/{r}/"}
    resp = httpx.get(ep["repositoryEndpoint"], auth=("aws", token.strip()))
    assert resp.status_code == 200
    # delete-domain is refused while the domain has repositories
    bad = server.cli("delete-domain", "--domain", d, check=False)
    assert bad.returncode != 0 and "ConflictException" in bad.stderr and "repositories" in bad.stderr
    server.cli_json("delete-repository", "--domain", d, "--repository", r)
    assert server.cli_json("delete-domain", "--domain", d)["domain"]["name"] == d


def test_duration_seconds_rules(server, domain):
    for ok in ("0", "900", "43200"):
        server.cli("get-authorization-token", "--domain", domain, "--duration-seconds", ok)
    for bad in ("899", "43201", "1"):
        proc = server.cli("get-authorization-token", "--domain", domain, "--duration-seconds", bad, check=False)
        assert proc.returncode != 0 and "ValidationException" in proc.stderr, proc.stderr


def test_tour_with_aws_cli(server, unique):
    aws = require_tool("aws")
    env = server.client_env

    def run(*args):
        proc = subprocess.run([aws, "codeartifact", *args, "--endpoint-url", server.url, "--region", "us-east-1",
                               "--output", "json"], env=env, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout) if proc.stdout.strip() else {}

    d = f"aws{unique}"
    assert run("create-domain", "--domain", d)["domain"]["name"] == d
    run("create-repository", "--domain", d, "--repository", "libs", "--description", "x")
    assert run("describe-repository", "--domain", d, "--repository", "libs")["repository"]["description"] == "x"
    assert "libs" in [x["name"] for x in run("list-repositories-in-domain", "--domain", d)["repositories"]]
    before = time.time()
    tok = run("get-authorization-token", "--domain", d)
    after = time.time()
    expiration = tok["expiration"]  # AWS CLI v1 prints the wire value: epoch seconds
    assert math.floor(before) + 43200 <= expiration <= math.ceil(after) + 43200  # the default: 12 hours
    assert httpx.get(server.endpoint(d, "pypi", "libs") + "simple/",
                     auth=("aws", tok["authorizationToken"])).status_code == 200
    assert run("get-repository-endpoint", "--domain", d, "--repository", "libs", "--format", "pypi") == {
        "repositoryEndpoint": f"{server.url}/{d}/pypi/libs/"}
    run("delete-repository", "--domain", d, "--repository", "libs")
    run("delete-domain", "--domain", d)


def test_tour_with_boto3(server, unique):
    c = server.boto()
    d = f"bt{unique}"
    c.create_domain(domain=d)
    c.create_repository(domain=d, repository="libs", description="boto")
    assert c.describe_domain(domain=d)["domain"]["repositoryCount"] == 1
    assert c.list_repositories_in_domain(domain=d)["repositories"][0]["name"] == "libs"
    c.update_repository(domain=d, repository="libs", description="new")
    assert c.describe_repository(domain=d, repository="libs")["repository"]["description"] == "new"
    before = time.time()
    tok = c.get_authorization_token(domain=d, durationSeconds=900)
    after = time.time()
    # 900 s from the moment the server issued it (whole seconds), which lies between before and after
    assert math.floor(before) + 900 <= tok["expiration"].timestamp() <= math.ceil(after) + 900
    assert httpx.get(server.endpoint(d, "maven", "libs"), auth=("aws", tok["authorizationToken"])).status_code == 200
    with pytest.raises(c.exceptions.ConflictException):
        c.delete_domain(domain=d)
    c.delete_repository(domain=d, repository="libs")
    c.delete_domain(domain=d)
    with pytest.raises(c.exceptions.ResourceNotFoundException):
        c.describe_domain(domain=d)
