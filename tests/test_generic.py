"""Generic packages: PublishPackageVersion (streamed, SHA-256 checked, Unfinished then Published),
assets back through GetPackageVersionAsset, and CopyPackageVersions between repositories."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess

import pytest
from botocore.exceptions import ClientError

from tests.support.checks import stored_versions
from tests.support.server import VENV_BIN

NS = "build"


def _code(exc) -> str:
    return exc.value.response["Error"]["Code"]


def publish(c, domain, repo, package, version, asset, data, *, unfinished=False, sha=None, fmt="generic",
            ns=NS):
    return c.publish_package_version(domain=domain, repository=repo, format=fmt, package=package,
                                     packageVersion=version, assetContent=data, assetName=asset,
                                     assetSHA256=sha or hashlib.sha256(data).hexdigest(), unfinished=unfinished,
                                     **({"namespace": ns} if ns else {}))


def versions(c, domain, repo, package):
    return stored_versions(c, domain=domain, repository=repo, format="generic", namespace=NS, package=package)


def asset_names(c, domain, repo, package, version):
    return [a["name"] for a in c.list_package_version_assets(domain=domain, repository=repo, format="generic",
                                                             namespace=NS, package=package,
                                                             packageVersion=version)["assets"]]


def test_unfinished_then_published_and_streamed_back(server, domain):
    c = server.boto()
    c.create_repository(domain=domain, repository="bin")
    big = os.urandom(3 * 1024 * 1024 + 17)
    out = publish(c, domain, "bin", "cli", "1.0.0", "cli-linux-amd64", big, unfinished=True)
    assert out["status"] == "Unfinished" and out["asset"]["size"] == len(big)
    assert out["asset"]["hashes"]["SHA-256"] == hashlib.sha256(big).hexdigest()
    assert out["asset"]["hashes"]["SHA-512"] == hashlib.sha512(big).hexdigest()
    assert versions(c, domain, "bin", "cli") == {"1.0.0": "Unfinished"}
    out = publish(c, domain, "bin", "cli", "1.0.0", "checksums.txt", b"sums\n")
    assert out["status"] == "Published"
    assert asset_names(c, domain, "bin", "cli", "1.0.0") == ["checksums.txt", "cli-linux-amd64"]
    got = c.get_package_version_asset(domain=domain, repository="bin", format="generic", namespace=NS,
                                      package="cli", packageVersion="1.0.0", asset="cli-linux-amd64")
    assert got["asset"].read() == big
    assert got["packageVersionRevision"] == out["versionRevision"]
    # identical bytes again: idempotent; different bytes: published assets are immutable
    publish(c, domain, "bin", "cli", "1.0.0", "checksums.txt", b"sums\n")
    with pytest.raises(ClientError) as exc:
        publish(c, domain, "bin", "cli", "1.0.0", "checksums.txt", b"other\n")
    assert _code(exc) == "ConflictException"
    with pytest.raises(ClientError) as exc:
        publish(c, domain, "bin", "cli", "1.0.0", "new-file", b"x")
    assert _code(exc) == "ConflictException"
    assert asset_names(c, domain, "bin", "cli", "1.0.0") == ["checksums.txt", "cli-linux-amd64"]


def test_unfinished_published_through_update_status(server, domain):
    c = server.boto()
    c.create_repository(domain=domain, repository="bin")
    publish(c, domain, "bin", "lib", "2.0", "lib.tar.gz", b"tarball", unfinished=True)
    # while Unfinished an asset may be replaced
    publish(c, domain, "bin", "lib", "2.0", "lib.tar.gz", b"tarball v2", unfinished=True)
    got = c.get_package_version_asset(domain=domain, repository="bin", format="generic", namespace=NS,
                                      package="lib", packageVersion="2.0", asset="lib.tar.gz")
    assert got["asset"].read() == b"tarball v2"
    c.update_package_versions_status(domain=domain, repository="bin", format="generic", namespace=NS,
                                     package="lib", versions=["2.0"], targetStatus="Published")
    assert versions(c, domain, "bin", "lib") == {"2.0": "Published"}


def test_sha256_mismatch_stores_nothing(server, domain):
    c = server.boto()
    c.create_repository(domain=domain, repository="bin")
    with pytest.raises(ClientError) as exc:
        publish(c, domain, "bin", "bad", "1", "f", b"the bytes", sha=hashlib.sha256(b"other bytes").hexdigest())
    assert _code(exc) == "ValidationException"
    assert "sha256" in str(exc.value).lower()
    assert versions(c, domain, "bin", "bad") == {}


@pytest.mark.parametrize("kwargs, reason", [
    ({"fmt": "npm", "ns": "x"}, "generic"),
    ({"ns": None}, "namespace"),
    ({"asset": "bad\x01name"}, "assetname"),
    ({"version": "1 0"}, "version"),
])
def test_invalid_requests_store_nothing(server, domain, kwargs, reason):
    c = server.boto()
    c.create_repository(domain=domain, repository="bin")
    args = {"package": "val", "version": "1", "asset": "f", "data": b"x"}
    args.update({k: v for k, v in kwargs.items() if k in args})
    extra = {k: v for k, v in kwargs.items() if k in ("fmt", "ns")}
    with pytest.raises(ClientError) as exc:
        publish(c, domain, "bin", args["package"], args["version"], args["asset"], args["data"], **extra)
    assert _code(exc) == "ValidationException"
    assert reason in str(exc.value).lower()
    assert c.list_packages(domain=domain, repository="bin")["packages"] == []


def test_aws_cli_publish_package_version(server, domain, tmp_path):
    c = server.boto()
    c.create_repository(domain=domain, repository="bin")
    f = tmp_path / "report.pdf"
    f.write_bytes(b"%PDF-1.4 not really\n" * 100)
    env = dict(server.client_env)
    proc = subprocess.run([str(VENV_BIN / "aws"), "codeartifact", "publish-package-version", "--endpoint-url",
                           server.url, "--domain", domain, "--repository", "bin", "--format", "generic",
                           "--namespace", NS, "--package", "docs", "--package-version", "3.1", "--asset-content",
                           str(f), "--asset-name", "report.pdf", "--asset-sha256",
                           hashlib.sha256(f.read_bytes()).hexdigest(), "--unfinished"],
                          env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["status"] == "Unfinished"
    assert versions(c, domain, "bin", "docs") == {"3.1": "Unfinished"}


def test_copy_package_versions(server, domain):
    c = server.boto()
    c.create_repository(domain=domain, repository="upstream")
    c.create_repository(domain=domain, repository="staging", upstreams=[{"repositoryName": "upstream"}])
    c.create_repository(domain=domain, repository="release")
    publish(c, domain, "staging", "app", "1.0", "app.zip", b"one")
    publish(c, domain, "upstream", "app", "0.9", "app.zip", b"zero")
    publish(c, domain, "staging", "app", "1.1", "app.zip", b"eleven", unfinished=True)
    out = c.copy_package_versions(domain=domain, sourceRepository="staging", destinationRepository="release",
                                  format="generic", namespace=NS, package="app", versions=["1.0", "0.9", "1.1"])
    assert set(out["successfulVersions"]) == {"1.0"}
    assert out["failedVersions"]["0.9"]["errorCode"] == "NOT_FOUND"
    assert out["failedVersions"]["1.1"]["errorCode"] == "NOT_ALLOWED"  # Unfinished
    out = c.copy_package_versions(domain=domain, sourceRepository="staging", destinationRepository="release",
                                  format="generic", namespace=NS, package="app", versions=["0.9"],
                                  includeFromUpstream=True)
    assert set(out["successfulVersions"]) == {"0.9"}
    assert versions(c, domain, "release", "app") == {"1.0": "Published", "0.9": "Published"}
    got = c.get_package_version_asset(domain=domain, repository="release", format="generic", namespace=NS,
                                      package="app", packageVersion="0.9", asset="app.zip")
    assert got["asset"].read() == b"zero"
    # revision-pinned copy with a stale revision fails that version only
    out = c.copy_package_versions(domain=domain, sourceRepository="staging", destinationRepository="release",
                                  format="generic", namespace=NS, package="app", versionRevisions={"1.0": "stale"},
                                  allowOverwrite=True)
    assert out["failedVersions"]["1.0"]["errorCode"] == "MISMATCHED_REVISION"
    # overwrite: the destination gets the source's assets
    c.dispose_package_versions(domain=domain, repository="release", format="generic", namespace=NS,
                               package="app", versions=["1.0"])
    out = c.copy_package_versions(domain=domain, sourceRepository="staging", destinationRepository="release",
                                  format="generic", namespace=NS, package="app", versions=["1.0"])
    assert out["failedVersions"]["1.0"]["errorCode"] == "ALREADY_EXISTS"
    out = c.copy_package_versions(domain=domain, sourceRepository="staging", destinationRepository="release",
                                  format="generic", namespace=NS, package="app", versions=["1.0"],
                                  allowOverwrite=True)
    assert out["successfulVersions"]["1.0"]["status"] == "Published"
    got = c.get_package_version_asset(domain=domain, repository="release", format="generic", namespace=NS,
                                      package="app", packageVersion="1.0", asset="app.zip")
    assert got["asset"].read() == b"one"


def test_copy_into_a_blocked_repository_is_refused(server, domain):
    c = server.boto()
    for r in ("ra", "rb"):
        c.create_repository(domain=domain, repository=r)
    publish(c, domain, "ra", "tool", "1", "t", b"t")
    c.put_package_origin_configuration(domain=domain, repository="rb", format="generic", namespace=NS,
                                       package="tool", restrictions={"publish": "BLOCK", "upstream": "ALLOW"})
    with pytest.raises(ClientError) as exc:
        c.copy_package_versions(domain=domain, sourceRepository="ra", destinationRepository="rb", format="generic",
                                namespace=NS, package="tool", versions=["1"])
    assert _code(exc) == "AccessDeniedException"
    assert "publish=BLOCK" in str(exc.value)
    assert versions(c, domain, "rb", "tool") == {}
