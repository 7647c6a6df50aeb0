"""Issue 14 item 1: an upstream is a read grant. Adding a repository as an upstream (CreateRepository
or UpdateRepository with `upstreams`) needs codeartifact:AssociateWithDownstreamRepository on that
upstream repository; without it the answer is AccessDeniedException naming the upstream, and nothing
changes: the repository is not created, its upstream list stays as it was, and its packages stay
unreadable through the downstream. Administrators are always allowed."""

from __future__ import annotations

import json
import time
import uuid

import httpx
import pytest
from botocore.exceptions import ClientError

ACCOUNT = "000000000000"
JAR = b"PK\x03\x04 not really a jar, but not empty either"
JAR_PATH = "com/acme/secret/1.0/secret-1.0.jar"


def _arn(kind: str, *parts: str) -> str:
    return f"arn:aws:codeartifact:us-east-1:{ACCOUNT}:{kind}/{'/'.join(parts)}"


def _statement(who: str, actions: list[str], resource) -> dict:
    return {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:user/{who}"},
            "Action": actions, "Resource": resource}


@pytest.fixture
def setup(server, domain):
    """`secret` holds a published jar; `mallory` may create repositories and update, describe and read
    the repositories named `mine*`, but has no permission at all on `secret` or `open`."""
    admin = server.boto()
    for name in ("secret", "open", "mine"):
        admin.create_repository(domain=domain, repository=name)
    token = server.token(domain)
    put = httpx.put(server.endpoint(domain, "maven", "secret") + JAR_PATH, content=JAR, auth=("aws", token))
    assert put.status_code in (200, 201), put.text
    admin.update_package_versions_status(domain=domain, repository="secret", format="maven",
                                         namespace="com.acme", package="secret", versions=["1.0"],
                                         targetStatus="Published")
    who = f"mallory{uuid.uuid4().hex[:6]}"
    key = server.new_user(who)
    admin.put_domain_permissions_policy(domain=domain, policyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [
            _statement(who, ["codeartifact:CreateRepository", "codeartifact:GetAuthorizationToken"],
                       _arn("domain", domain)),
            _statement(who, ["codeartifact:UpdateRepository", "codeartifact:DescribeRepository",
                             "codeartifact:ReadFromRepository"], _arn("repository", domain, "mine*")),
        ]}))
    return who, key


def _denied(call, **kwargs) -> str:
    with pytest.raises(ClientError) as exc:
        call(**kwargs)
    err = exc.value.response["Error"]
    assert err["Code"] == "AccessDeniedException", err
    return err["Message"]


def _upstreams(server, domain: str, repo: str) -> list[str]:
    desc = server.boto().describe_repository(domain=domain, repository=repo)["repository"]
    return [u["repositoryName"] for u in desc["upstreams"]]


def _read_through(server, domain: str, key: dict, repo: str) -> httpx.Response:
    token = server.token(domain, key)
    return httpx.get(server.endpoint(domain, "maven", repo) + JAR_PATH, auth=("aws", token))


def test_create_repository_with_an_upstream_needs_the_grant(server, domain, setup):
    who, key = setup
    c = server.boto(key)
    message = _denied(c.create_repository, domain=domain, repository="mine-new",
                      upstreams=[{"repositoryName": "secret"}])
    assert "codeartifact:AssociateWithDownstreamRepository" in message and f"{domain}/secret" in message
    # nothing was created, not even a repository without its upstream
    names = [r["name"] for r in server.boto().list_repositories_in_domain(domain=domain)["repositories"]]
    assert "mine-new" not in names
    # one permitted upstream does not carry a forbidden one
    server.boto().put_repository_permissions_policy(domain=domain, repository="open", policyDocument=json.dumps({
        "Version": "2012-10-17",
        "Statement": [_statement(who, ["codeartifact:AssociateWithDownstreamRepository"], "*")]}))
    message = _denied(c.create_repository, domain=domain, repository="mine-new",
                      upstreams=[{"repositoryName": "open"}, {"repositoryName": "secret"}])
    assert f"{domain}/secret" in message and f"{domain}/open" not in message
    names = [r["name"] for r in server.boto().list_repositories_in_domain(domain=domain)["repositories"]]
    assert "mine-new" not in names
    # the permitted upstream alone is fine
    made = c.create_repository(domain=domain, repository="mine-new", upstreams=[{"repositoryName": "open"}])
    assert [u["repositoryName"] for u in made["repository"]["upstreams"]] == ["open"]


def test_update_repository_with_an_upstream_needs_the_grant(server, domain, setup):
    who, key = setup
    c = server.boto(key)
    assert _read_through(server, domain, key, "mine").status_code == 404
    message = _denied(c.update_repository, domain=domain, repository="mine", description="changed",
                      upstreams=[{"repositoryName": "secret"}])
    assert "codeartifact:AssociateWithDownstreamRepository" in message and f"{domain}/secret" in message
    desc = server.boto().describe_repository(domain=domain, repository="mine")["repository"]
    assert desc["upstreams"] == [] and desc["description"] == ""  # the description did not change either
    assert _read_through(server, domain, key, "mine").status_code == 404  # and nothing is readable through it

    # granted on the upstream repository itself, the same call succeeds and the read grant follows
    server.boto().put_repository_permissions_policy(domain=domain, repository="secret", policyDocument=json.dumps({
        "Version": "2012-10-17",
        "Statement": [_statement(who, ["codeartifact:AssociateWithDownstreamRepository"], "*")]}))
    c.update_repository(domain=domain, repository="mine", upstreams=[{"repositoryName": "secret"}])
    assert _upstreams(server, domain, "mine") == ["secret"]
    # (each node caches a domain's upstream graph for two seconds: wait for the new one)
    deadline = time.monotonic() + 30
    while (got := _read_through(server, domain, key, "mine")).status_code == 404 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert got.status_code == 200 and got.content == JAR


def test_keeping_an_upstream_needs_no_grant_but_adding_one_does(server, domain, setup):
    """An upstream an administrator associated may be kept, reordered or removed by whoever may update
    the repository: that grants nothing new. Adding another is checked."""
    who, key = setup
    server.boto().update_repository(domain=domain, repository="mine", upstreams=[{"repositoryName": "secret"}])
    c = server.boto(key)
    c.update_repository(domain=domain, repository="mine", description="kept",
                        upstreams=[{"repositoryName": "secret"}])
    assert _upstreams(server, domain, "mine") == ["secret"]
    message = _denied(c.update_repository, domain=domain, repository="mine",
                      upstreams=[{"repositoryName": "secret"}, {"repositoryName": "open"}])
    assert f"{domain}/open" in message
    assert _upstreams(server, domain, "mine") == ["secret"]
    c.update_repository(domain=domain, repository="mine", upstreams=[])
    assert _upstreams(server, domain, "mine") == []


def test_administrators_are_always_allowed(server, domain, setup):
    admin = server.boto()
    made = admin.create_repository(domain=domain, repository="downstream",
                                   upstreams=[{"repositoryName": "secret"}, {"repositoryName": "open"}])
    assert [u["repositoryName"] for u in made["repository"]["upstreams"]] == ["secret", "open"]
    admin.update_repository(domain=domain, repository="mine", upstreams=[{"repositoryName": "secret"}])
    assert _upstreams(server, domain, "mine") == ["secret"]
