"""Unit tests for app.cli_ops (no server: the boto3 client is stubbed)."""

import datetime
import io
import json

import boto3
import pytest
from botocore.stub import Stubber

from app.cli import ops as cli_ops


@pytest.fixture
def stub(monkeypatch):
    """Replace make_client with a factory returning a Stubber-backed client."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDTEST")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret-test-key")
    client = boto3.Session().client(
        "codeartifact", region_name="us-east-1", endpoint_url="http://127.0.0.1:9"
    )
    stubber = Stubber(client)
    calls = {}

    def fake_make_client(endpoint_url, region, profile=None, **kw):
        calls["endpoint_url"] = endpoint_url
        calls["region"] = region
        calls["profile"] = profile
        return client

    monkeypatch.setattr(cli_ops, "make_client", fake_make_client)
    stubber.activate()
    stubber.calls = calls
    yield stubber
    stubber.deactivate()
    stubber.assert_no_pending_responses()  # every stubbed call was made, in every test


NOW = datetime.datetime(2024, 5, 1, 12, 0, 0, tzinfo=datetime.timezone.utc)


def _repo(name="app", upstreams=()):
    return {
        "name": name,
        "administratorAccount": "000000000000",
        "domainName": "acme",
        "domainOwner": "000000000000",
        "arn": f"arn:aws:codeartifact:us-east-1:000000000000:repository/acme/{name}",
        "upstreams": [{"repositoryName": u} for u in upstreams],
        "externalConnections": [],
    }


def test_operation_names_complete():
    names = cli_ops.operation_names()
    assert len(names) == 48
    for n in (
        "create-domain",
        "list-repositories-in-domain",
        "get-authorization-token",
        "update-package-versions-status",
        "get-package-version-asset",
        "put-package-origin-configuration",
    ):
        assert n in names


def test_create_repository_upstreams_shorthand(stub, capsys):
    stub.add_response(
        "create_repository",
        {"repository": _repo("app", ["libs", "proxy"])},
        {
            "domain": "acme",
            "repository": "app",
            "upstreams": [{"repositoryName": "libs"}, {"repositoryName": "proxy"}],
        },
    )
    rc = cli_ops.run_operation(
        ["create-repository", "--domain", "acme", "--repository", "app",
         "--upstreams", "repositoryName=libs", "repositoryName=proxy"]
    )
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    assert out["repository"]["upstreams"][1]["repositoryName"] == "proxy"
    assert "ResponseMetadata" not in out
    stub.assert_no_pending_responses()


def test_upstreams_json_and_tags_shorthand(stub, capsys):
    stub.add_response(
        "create_repository",
        {"repository": _repo("app", ["libs"])},
        {
            "domain": "acme",
            "repository": "app",
            "upstreams": [{"repositoryName": "libs"}],
            "tags": [{"key": "k", "value": "v"}, {"key": "k2", "value": "v2"}],
        },
    )
    rc = cli_ops.run_operation(
        ["create-repository", "--domain", "acme", "--repository", "app",
         "--upstreams", '[{"repositoryName":"libs"}]',
         "--tags", "key=k,value=v", "key=k2,value=v2"]
    )
    assert rc == 0
    stub.assert_no_pending_responses()


def test_upstreams_from_file(stub, tmp_path):
    f = tmp_path / "up.json"
    f.write_text('[{"repositoryName": "libs"}]')
    stub.add_response(
        "update_repository",
        {"repository": _repo("app", ["libs"])},
        {"domain": "acme", "repository": "app", "upstreams": [{"repositoryName": "libs"}]},
    )
    rc = cli_ops.run_operation(
        ["update-repository", "--domain", "acme", "--repository", "app",
         "--upstreams", f"file://{f}"]
    )
    assert rc == 0


def test_put_package_origin_configuration_restrictions(stub, capsys):
    stub.add_response(
        "put_package_origin_configuration",
        {"originConfiguration": {"restrictions": {"publish": "ALLOW", "upstream": "BLOCK"}}},
        {
            "domain": "acme",
            "repository": "app",
            "format": "pypi",
            "package": "requests",
            "restrictions": {"publish": "ALLOW", "upstream": "BLOCK"},
        },
    )
    rc = cli_ops.run_operation(
        ["put-package-origin-configuration", "--domain", "acme", "--repository", "app",
         "--format", "pypi", "--package", "requests",
         "--restrictions", "publish=ALLOW,upstream=BLOCK"]
    )
    assert rc == 0
    stub.assert_no_pending_responses()


def test_update_package_versions_status_list_and_map(stub, capsys):
    stub.add_response(
        "update_package_versions_status",
        {"successfulVersions": {"1.0": {"revision": "r1", "status": "Published"}},
         "failedVersions": {}},
        {
            "domain": "acme",
            "repository": "app",
            "format": "npm",
            "package": "left-pad",
            "versions": ["1.0", "2.0"],
            "versionRevisions": {"1.0": "rev1", "2.0": "rev2"},
            "targetStatus": "Published",
        },
    )
    rc = cli_ops.run_operation(
        ["update-package-versions-status", "--domain", "acme", "--repository", "app",
         "--format", "npm", "--package", "left-pad", "--versions", "1.0", "2.0",
         "--version-revisions", "1.0=rev1,2.0=rev2", "--target-status", "Published"]
    )
    assert rc == 0
    stub.assert_no_pending_responses()


def test_boolean_flags(stub):
    stub.add_response(
        "copy_package_versions",
        {"successfulVersions": {}, "failedVersions": {}},
        {
            "domain": "acme", "sourceRepository": "src", "destinationRepository": "dst",
            "format": "pypi", "package": "p", "versions": ["1"],
            "allowOverwrite": True, "includeFromUpstream": False,
        },
    )
    rc = cli_ops.run_operation(
        ["copy-package-versions", "--domain", "acme", "--source-repository", "src",
         "--destination-repository", "dst", "--format", "pypi", "--package", "p",
         "--versions", "1", "--allow-overwrite", "--no-include-from-upstream"]
    )
    assert rc == 0
    stub.assert_no_pending_responses()


def test_duration_seconds_int_query_text(stub, capsys):
    stub.add_response(
        "get_authorization_token",
        {"authorizationToken": "tok-123", "expiration": NOW},
        {"domain": "acme", "durationSeconds": 900},
    )
    rc = cli_ops.run_operation(
        ["--endpoint-url", "http://arca.test:8080", "get-authorization-token",
         "--domain", "acme", "--duration-seconds", "900",
         "--query", "authorizationToken", "--output", "text"]
    )
    assert rc == 0
    assert capsys.readouterr().out == "tok-123\n"
    assert stub.calls["endpoint_url"] == "http://arca.test:8080"


def test_duration_seconds_must_be_int(stub, capsys):
    rc = cli_ops.run_operation(
        ["get-authorization-token", "--domain", "acme", "--duration-seconds", "abc"]
    )
    assert rc == 2
    assert "--duration-seconds" in capsys.readouterr().err


def test_json_output_datetime_iso(stub, capsys):
    stub.add_response(
        "get_authorization_token",
        {"authorizationToken": "tok", "expiration": NOW},
        {"domain": "acme"},
    )
    rc = cli_ops.run_operation(["get-authorization-token", "--domain", "acme"])
    assert rc == 0
    out = capsys.readouterr().out
    assert json.loads(out) == {"authorizationToken": "tok",
                               "expiration": "2024-05-01T12:00:00+00:00"}
    assert out.startswith("{\n    \"")  # indent=4


def test_globals_after_op_and_env_defaults(stub, capsys, monkeypatch):
    monkeypatch.setenv("ARCA_ENDPOINT_URL", "http://env.test:1234")
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    stub.add_response(
        "list_domains",
        {"domains": [
            {"name": "acme", "owner": "000000000000", "status": "Active",
             "createdTime": NOW},
            {"name": "beta", "owner": "000000000000", "status": "Active",
             "createdTime": NOW},
        ]},
        {},
    )
    rc = cli_ops.run_operation(["list-domains", "--query", "domains[].name",
                                "--output", "text"])
    assert rc == 0
    assert capsys.readouterr().out == "acme\tbeta\n"
    assert stub.calls["endpoint_url"] == "http://env.test:1234"
    assert stub.calls["region"] == "eu-west-1"


def test_auto_pagination_merges_pages(stub, capsys):
    page = lambda names, tok=None: dict(
        {"repositories": [_summary(n) for n in names]}, **({"nextToken": tok} if tok else {})
    )
    stub.add_response("list_repositories_in_domain", page(["aa", "bb"], "t1"), {"domain": "acme"})
    stub.add_response("list_repositories_in_domain", page(["cc"]),
                      {"domain": "acme", "nextToken": "t1"})
    rc = cli_ops.run_operation(["list-repositories-in-domain", "--domain", "acme",
                                "--query", "repositories[].name"])
    assert rc == 0
    assert json.loads(capsys.readouterr().out) == ["aa", "bb", "cc"]


def _summary(n):
    return {"name": n, "domainName": "acme", "domainOwner": "000000000000",
            "administratorAccount": "000000000000",
            "arn": f"arn:aws:codeartifact:us-east-1:000000000000:repository/acme/{n}"}


def test_text_output_list_of_dicts(stub, capsys):
    stub.add_response(
        "list_domains",
        {"domains": [{"name": "acme", "status": "Active"}, {"name": "beta", "status": "Deleted"}]},
        {},
    )
    rc = cli_ops.run_operation(["list-domains", "--query", "domains", "--output", "text"])
    assert rc == 0
    assert capsys.readouterr().out == "acme\tActive\nbeta\tDeleted\n"


def test_missing_required_exit_2(capsys):
    rc = cli_ops.run_operation(["create-domain"])
    assert rc == 2
    err = capsys.readouterr().err
    assert "the following arguments are required: --domain" in err


def test_unknown_operation_exit_2(capsys):
    rc = cli_ops.run_operation(["creat-domain"])
    assert rc == 2
    assert "create-domain" in capsys.readouterr().err


def test_help_exit_0(capsys):
    rc = cli_ops.run_operation(["create-domain", "--help"])
    assert rc == 0
    assert "--domain" in capsys.readouterr().out


def test_bad_shorthand_exit_2(stub, capsys):
    rc = cli_ops.run_operation(
        ["put-package-origin-configuration", "--domain", "acme", "--repository", "app",
         "--format", "pypi", "--package", "x", "--restrictions", "bogus=ALLOW"]
    )
    assert rc == 2
    assert "bogus" in capsys.readouterr().err


def test_client_error_format(stub, capsys):
    stub.add_client_error(
        "create_domain",
        service_error_code="ConflictException",
        service_message="Domain acme already exists",
        http_status_code=409,
        expected_params={"domain": "acme"},
    )
    rc = cli_ops.run_operation(["create-domain", "--domain", "acme"])
    assert rc == 254
    captured = capsys.readouterr()
    assert captured.out == ""
    assert ("An error occurred (ConflictException) when calling the CreateDomain "
            "operation: Domain acme already exists") in captured.err
    assert "Traceback" not in captured.err
    assert "secret-test-key" not in captured.err


def test_connection_error_exit_255(monkeypatch, capsys):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDTEST")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret-test-key")
    rc = cli_ops.run_operation(["--endpoint-url", "http://127.0.0.1:1", "list-domains",
                                "--max-results", "5"])
    assert rc == 255
    err = capsys.readouterr().err
    assert "Could not connect to the endpoint URL" in err
    assert "Traceback" not in err and "secret-test-key" not in err


def test_publish_asset_content_is_file(stub, tmp_path, capsys):
    f = tmp_path / "pkg-1.0.tar.gz"
    f.write_bytes(b"hello")
    seen = {}
    stub.client.meta.events.register("provide-client-params.codeartifact.PublishPackageVersion",
                                     lambda params, **kw: seen.update(params=dict(params)))
    stub.add_response(
        "publish_package_version",
        {"format": "pypi", "package": "pkg", "version": "1.0", "status": "Published"},
        None,
    )
    rc = cli_ops.run_operation(
        ["publish-package-version", "--domain", "acme", "--repository", "app",
         "--format", "pypi", "--package", "pkg", "--package-version", "1.0",
         "--asset-name", "pkg-1.0.tar.gz", "--asset-sha256", "0" * 64,
         "--asset-content", str(f)]
    )
    assert rc == 0
    body = seen["params"]["assetContent"]
    assert hasattr(body, "read") and body.name == str(f)
    assert body.closed  # closed after the call


def test_get_package_version_asset_outfile(stub, tmp_path, capsys):
    from botocore.response import StreamingBody

    data = b"binary\x00data"
    stub.add_response(
        "get_package_version_asset",
        {"asset": StreamingBody(io.BytesIO(data), len(data)), "assetName": "a.whl",
         "packageVersion": "1.0", "packageVersionRevision": "rev"},
        {"domain": "acme", "repository": "app", "format": "pypi", "package": "p",
         "packageVersion": "1.0", "asset": "a.whl"},
    )
    out = tmp_path / "out.whl"
    rc = cli_ops.run_operation(
        ["get-package-version-asset", "--domain", "acme", "--repository", "app",
         "--format", "pypi", "--package", "p", "--package-version", "1.0",
         "--asset", "a.whl", str(out)]
    )
    assert rc == 0
    assert out.read_bytes() == data
    printed = json.loads(capsys.readouterr().out)
    assert printed == {"assetName": "a.whl", "packageVersion": "1.0",
                       "packageVersionRevision": "rev"}


def test_shorthand_parser_forms():
    p = cli_ops.parse_shorthand
    assert p("a=1,b=2") == {"a": "1", "b": "2"}
    assert p("a=[x,y],b={c=d}") == {"a": ["x", "y"], "b": {"c": "d"}}
    assert p("a=x,y,b=z") == {"a": ["x", "y"], "b": "z"}
    assert p("a='x,y'") == {"a": "x,y"}
    assert p("1.0=rev1,2.0=rev2") == {"1.0": "rev1", "2.0": "rev2"}


def test_cli_input_json(stub):
    stub.add_response(
        "create_domain",
        {"domain": {"name": "acme", "status": "Active"}},
        {"domain": "acme", "tags": [{"key": "a", "value": "b"}]},
    )
    rc = cli_ops.run_operation(
        ["create-domain", "--cli-input-json",
         '{"domain": "acme", "tags": [{"key": "a", "value": "b"}]}']
    )
    assert rc == 0
