"""Where the `arca` CLI sends its calls, and how it prints them, as the AWS CLI does (issue 18 item 7):
the same environment and config file send `aws codeartifact` and `arca` to the same server."""

from __future__ import annotations

import json
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import yaml

from tests.support.server import ARCA, clean_env, require_tool

LEVELS = ("flag", "AWS_ENDPOINT_URL_CODEARTIFACT", "AWS_ENDPOINT_URL", "services section",
          "profile endpoint_url", "ARCA_ENDPOINT_URL")


class Decoy:
    """A server that answers every call with one domain named after itself: who answered shows."""

    def __init__(self, label: str):
        name = label.lower().replace(" ", "-").replace("_", "-")

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                body = json.dumps({"domains": [{"name": name, "owner": "000000000000", "status": "Active"}]})
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body.encode())

            def log_message(self, *args):
                pass

        self.name = name
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def decoys():
    servers = {label: Decoy(label) for label in LEVELS}
    yield servers
    for d in servers.values():
        d.close()


def setup(tmp_path, decoys, from_level: int) -> tuple[dict, list[str]]:
    """The environment, config file and flags with every level from `from_level` down configured,
    each to its own decoy."""
    used = LEVELS[from_level:]
    env = clean_env()
    flags = ["--profile", "dev"]
    for label in used:
        if label.isupper():
            env[label] = decoys[label].url
    if "flag" in used:
        flags += ["--endpoint-url", decoys["flag"].url]
    config = tmp_path / f"config-{from_level}"
    lines = ["[profile dev]", "region = us-east-1", "aws_access_key_id = AKIAEXAMPLE",
             "aws_secret_access_key = secret-example"]
    if "profile endpoint_url" in used:
        lines.append(f"endpoint_url = {decoys['profile endpoint_url'].url}")
    if "services section" in used:
        lines += ["services = dev-services", "", "[services dev-services]", "codeartifact =",
                  f"  endpoint_url = {decoys['services section'].url}"]
    config.write_text("\n".join(lines) + "\n")
    env["AWS_CONFIG_FILE"] = str(config)
    return env, flags


def answered(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)["domains"][0]["name"]


@pytest.mark.parametrize("level", range(len(LEVELS)))
def test_endpoint_precedence_is_the_aws_clis(tmp_path, decoys, level):
    """Each level wins over every one below it, in `arca` exactly as in `aws codeartifact`."""
    env, flags = setup(tmp_path, decoys, level)
    expected = decoys[LEVELS[level]].name
    arca = subprocess.run([ARCA, "list-domains", *flags], env=env, capture_output=True, text=True, timeout=120)
    assert answered(arca) == expected
    if LEVELS[level] != "ARCA_ENDPOINT_URL":  # the AWS CLI's next stop is AWS itself
        aws = subprocess.run([require_tool("aws"), "codeartifact", "list-domains", "--output", "json", *flags],
                             env=env, capture_output=True, text=True, timeout=120)
        assert answered(aws) == expected


def test_configured_endpoints_can_be_ignored_as_in_the_sdks(tmp_path, decoys):
    env, flags = setup(tmp_path, decoys, 1)
    env["AWS_IGNORE_CONFIGURED_ENDPOINT_URLS"] = "true"
    arca = subprocess.run([ARCA, "list-domains", *flags], env=env, capture_output=True, text=True, timeout=120)
    assert answered(arca) == decoys["ARCA_ENDPOINT_URL"].name


def test_the_service_endpoint_variable_reaches_the_real_server(server, domain, decoys):
    """The case of the issue: AWS_ENDPOINT_URL_CODEARTIFACT used to be ignored; now it wins over
    ARCA_ENDPOINT_URL, and the CLI's login uses it too."""
    env = {**server.client_env, "ARCA_ENDPOINT_URL": decoys["ARCA_ENDPOINT_URL"].url,
           "AWS_ENDPOINT_URL_CODEARTIFACT": server.url}
    out = subprocess.run([ARCA, "list-domains"], env=env, capture_output=True, text=True, timeout=120)
    assert domain in [d["name"] for d in json.loads(out.stdout)["domains"]], out.stderr
    server.cli_json("create-repository", "--domain", domain, "--repository", "libs")
    login = subprocess.run([ARCA, "login", "--tool", "pip", "--domain", domain, "--repository", "libs",
                            "--dry-run"], env=env, capture_output=True, text=True, timeout=120)
    assert login.returncode == 0, login.stderr
    assert f"{server.url.split('://')[1]}/{domain}/pypi/libs/simple/" in login.stdout


def test_table_yaml_and_debug_output(server, domain):
    server.cli_json("create-repository", "--domain", domain, "--repository", "libs",
                    "--description", "tabled")
    aws = require_tool("aws")

    def both(*args):
        mine = server.cli(*args, "--output", "table").stdout
        theirs = subprocess.run([aws, "codeartifact", *args, "--output", "table", "--endpoint-url", server.url],
                                env=server.client_env, capture_output=True, text=True, timeout=120)
        assert theirs.returncode == 0, theirs.stderr
        return mine, theirs.stdout

    # (the AWS CLI v1 prints timestamps as the wire's epoch seconds, arca as ISO 8601: left out)
    mine, theirs = both("describe-repository", "--domain", domain, "--repository", "libs", "--query",
                        "repository.{name: name, description: description, upstreams: upstreams, "
                        "externalConnections: externalConnections, administratorAccount: administratorAccount}")
    assert mine == theirs and "DescribeRepository" in mine and "tabled" in mine
    mine, theirs = both("list-repositories-in-domain", "--domain", domain, "--query",
                        "repositories[].{name: name, arn: arn, domainName: domainName}")
    assert mine == theirs and "ListRepositoriesInDomain" in mine and "libs" in mine

    as_yaml = server.cli("describe-domain", "--domain", domain, "--output", "yaml").stdout
    assert yaml.safe_load(as_yaml) == server.cli_json("describe-domain", "--domain", domain)
    assert not as_yaml.lstrip().startswith("{")

    debug = server.cli("get-authorization-token", "--domain", domain, "--debug")
    token = json.loads(debug.stdout)["authorizationToken"]
    assert "DEBUG" in debug.stderr and f"{server.url}/v1/authorization-token" in debug.stderr
    for secret in (token, server.access_key["SecretAccessKey"]):
        assert secret not in debug.stderr
    assert "Signature=****" in debug.stderr or "Signature" not in debug.stderr

    server.cli_json("create-repository", "--domain", domain, "--repository", "more")
    one_page = server.cli_json("list-repositories-in-domain", "--domain", domain, "--no-paginate",
                               "--max-results", "1")
    assert len(one_page["repositories"]) == 1 and one_page["nextToken"]
    every_page = server.cli_json("list-repositories-in-domain", "--domain", domain, "--page-size", "1")
    assert [r["name"] for r in every_page["repositories"]] == ["libs", "more"] and "nextToken" not in every_page

    bad = server.cli("list-domains", "--output", "xml", check=False)
    assert bad.returncode == 2 and "xml" in bad.stderr
