"""Upstream and external-connection configuration through the `arca` CLI, as the issue spells it:
ordered, same domain, at most 10, no cycles (the error names the cycle), no deleting a repository
that another lists as upstream, at most one external connection."""

from __future__ import annotations


def test_upstreams_through_the_cli(server, domain):
    for name in ("libs", "proxy", "base"):
        server.cli("create-repository", "--domain", domain, "--repository", name)
    out = server.cli_json("create-repository", "--domain", domain, "--repository", "app",
                          "--upstreams", "repositoryName=libs", "repositoryName=proxy")
    assert [u["repositoryName"] for u in out["repository"]["upstreams"]] == ["libs", "proxy"]
    out = server.cli_json("update-repository", "--domain", domain, "--repository", "app",
                          "--upstreams", "repositoryName=proxy", "repositoryName=libs")
    assert [u["repositoryName"] for u in out["repository"]["upstreams"]] == ["proxy", "libs"]
    server.cli("update-repository", "--domain", domain, "--repository", "libs", "--upstreams", "repositoryName=base")

    cycle = server.cli("update-repository", "--domain", domain, "--repository", "base",
                       "--upstreams", "repositoryName=app", check=False)
    assert cycle.returncode != 0 and "ValidationException" in cycle.stderr
    assert "base -> app -> " in cycle.stderr and cycle.stderr.rstrip().endswith("base"), cycle.stderr
    unchanged = server.cli_json("describe-repository", "--domain", domain, "--repository", "base")
    assert unchanged["repository"]["upstreams"] == []

    busy = server.cli("delete-repository", "--domain", domain, "--repository", "libs", check=False)
    assert busy.returncode != 0 and "ConflictException" in busy.stderr and "app" in busy.stderr

    for i in range(11):
        server.cli("create-repository", "--domain", domain, "--repository", f"u{i}")
    many = server.cli("update-repository", "--domain", domain, "--repository", "app", "--upstreams",
                      *[f"repositoryName=u{i}" for i in range(11)], check=False)
    assert many.returncode != 0 and "at most 10" in many.stderr

    other = f"{domain}x"
    server.cli("create-domain", "--domain", other)
    server.cli("create-repository", "--domain", other, "--repository", "elsewhere")
    cross = server.cli("update-repository", "--domain", domain, "--repository", "app",
                       "--upstreams", "repositoryName=elsewhere", check=False)
    assert cross.returncode != 0 and "ResourceNotFoundException" in cross.stderr


def test_external_connection_through_the_cli(server, domain):
    server.cli("create-repository", "--domain", domain, "--repository", "proxy")
    out = server.cli_json("associate-external-connection", "--domain", domain, "--repository", "proxy",
                          "--external-connection", "public:pypi")
    assert out["repository"]["externalConnections"] == [
        {"externalConnectionName": "public:pypi", "packageFormat": "pypi", "status": "Available"}]
    second = server.cli("associate-external-connection", "--domain", domain, "--repository", "proxy",
                        "--external-connection", "public:npmjs", check=False)
    assert second.returncode != 0 and "ConflictException" in second.stderr
    out = server.cli_json("disassociate-external-connection", "--domain", domain, "--repository", "proxy",
                          "--external-connection", "public:pypi")
    assert out["repository"]["externalConnections"] == []
