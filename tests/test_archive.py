"""`arca admin export` / `import-domain`: a domain written to an archive and restored into another
Arca, compared through both servers' API answers and file bytes: SQLite + disk to SQLite + disk
through a directory, and (cluster phase) SQLite + disk to PostgreSQL + S3 through an S3 prefix.
A damaged archive is listed, not restored; an interrupted restore, run again, ends complete."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.npm_support import installed_version, write_consumer, write_npmrc, write_package
from tests.pypi_support import PY, index_url, make_wheel, pip_cmd, run, twine_upload
from tests.support.server import ARCA, clean_env, fresh_database_url, require_tool, shared_s3_env, start_server
from tests.test_cleanup import arca_client

POLICY = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"},
                                                  "Action": "codeartifact:ReadFromRepository", "Resource": "*"}]}


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """SQLite and blobs on disk, whatever the test phase."""
    root = tmp_path_factory.mktemp("source")
    srv = start_server(root, env={"ARCA_BLOB_STORE": "file", "ARCA_CLEANUP_INTERVAL": "0"},
                       database_url=f"sqlite:///{root / 'source.db'}")
    yield srv
    srv.stop()


def admin(server, *args, env: dict | None = None, progress: list | None = None) -> tuple[dict, int]:
    """The summary (last JSON line) and exit status; the progress lines before it into `progress`."""
    proc = subprocess.run([ARCA, "admin", *args], env={**server.env, **(env or {})}, cwd=server.root,
                          capture_output=True, text=True, timeout=600)
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    assert lines, proc.stdout + proc.stderr
    if progress is not None:
        progress.extend(json.loads(line) for line in lines[:-1])
    return json.loads(lines[-1]), proc.returncode


def populate(srv, domain: str, tmp: Path) -> None:
    c = srv.boto()
    c.create_domain(domain=domain, tags=[{"key": "team", "value": "platform"}])
    c.create_repository(domain=domain, repository="proxy")
    c.associate_external_connection(domain=domain, repository="proxy", externalConnection="public:pypi")
    c.create_repository(domain=domain, repository="libs", description="shared libraries",
                        tags=[{"key": "tier", "value": "gold"}])
    c.create_repository(domain=domain, repository="app", upstreams=[{"repositoryName": "libs"},
                                                                   {"repositoryName": "proxy"}])
    c.put_repository_permissions_policy(domain=domain, repository="libs", policyDocument=json.dumps(POLICY))
    c.create_package_group(domain=domain, packageGroup="/npm/acme/*", description="acme's npm")
    c.update_package_group_origin_configuration(domain=domain, packageGroup="/npm/acme/*",
                                                restrictions={"EXTERNAL_UPSTREAM": "BLOCK"})
    srv.cli("update-domain-settings", "--domain", domain, "--no-dependency-confusion-protection")
    arca_client(srv).put_domain_cleanup_policy(domain=domain, policyDocument=json.dumps(
        {"rules": [{"packages": "/npm/*", "keepLastVersions": 5}]}))
    token = srv.token(domain)
    # PyPI: two versions, one of them Unlisted
    twine_upload(f"{srv.url}/{domain}/pypi/libs/", token,
                 [make_wheel(tmp / "dist", "arch-py", "1.0"), make_wheel(tmp / "dist", "arch-py", "2.0")])
    c.update_package_versions_status(domain=domain, repository="libs", format="pypi", package="arch-py",
                                     versions=["1.0"], targetStatus="Unlisted")
    # npm: two versions of a scoped package and a dist-tag
    npmrc = tmp / ".npmrc"
    write_npmrc(npmrc, srv.endpoint(domain, "npm", "libs"), token)
    env = clean_env(npm_config_userconfig=str(npmrc), npm_config_cache=str(tmp / "npm-cache"))
    for v in ("1.0.0", "1.1.0"):
        d = write_package(tmp / f"npm-{v}", "@acme/arch", v)
        subprocess.run([require_tool("npm"), "publish"], cwd=d, env=env, check=True, capture_output=True, timeout=120)
    subprocess.run([require_tool("npm"), "dist-tag", "add", "@acme/arch@1.0.0", "stable"], cwd=tmp, env=env,
                   check=True, capture_output=True, timeout=120)
    # Maven: a published release and an Unfinished one, then a disposed version
    base = f"{srv.url}/{domain}/maven/libs/com/acme/arch/core"
    with httpx.Client(auth=("aws", token), timeout=30) as h:
        for v in ("1.0", "1.1", "0.9"):
            pom = (f"<project><modelVersion>4.0.0</modelVersion><groupId>com.acme.arch</groupId><artifactId>core"
                   f"</artifactId><version>{v}</version></project>").encode()
            assert h.put(f"{base}/{v}/core-{v}.pom", content=pom).status_code == 201
            assert h.put(f"{base}/{v}/core-{v}.jar", content=b"PK jar " + v.encode()).status_code == 201
        meta = ("<metadata><groupId>com.acme.arch</groupId><artifactId>core</artifactId><versioning><versions>"
                "<version>1.0</version><version>0.9</version></versions></versioning></metadata>").encode()
        assert h.put(f"{base}/maven-metadata.xml", content=meta).status_code == 200
    c.dispose_package_versions(domain=domain, repository="libs", format="maven", namespace="com.acme.arch",
                               package="core", versions=["0.9"])


def snapshot(srv, domain: str) -> dict:
    """What clients and administrators see of a domain: API answers (times that a restore keeps
    included) and the SHA-256 of every file's bytes as served."""
    c = srv.boto()
    out: dict = {"domain": {k: v for k, v in c.describe_domain(domain=domain)["domain"].items()
                            if k in ("name", "owner", "status", "repositoryCount", "assetSizeBytes")}}
    out["domainTags"] = c.list_tags_for_resource(resourceArn=c.describe_domain(domain=domain)["domain"]["arn"])["tags"]
    repos = {}
    for r in c.list_repositories_in_domain(domain=domain)["repositories"]:
        desc = c.describe_repository(domain=domain, repository=r["name"])["repository"]
        desc.pop("createdTime", None)
        entry = {"description": desc, "tags": c.list_tags_for_resource(resourceArn=desc["arn"])["tags"]}
        try:
            entry["policy"] = json.loads(c.get_repository_permissions_policy(
                domain=domain, repository=r["name"])["policy"]["document"])
        except c.exceptions.ResourceNotFoundException:
            entry["policy"] = None
        packages = {}
        for p in c.list_packages(domain=domain, repository=r["name"])["packages"]:
            key = (p["format"], p.get("namespace"), p["package"])
            kw = {"format": p["format"], "package": p["package"], **({"namespace": p["namespace"]}
                                                                      if p.get("namespace") else {})}
            versions = {}
            for v in c.list_package_versions(domain=domain, repository=r["name"], **kw)["versions"]:
                d = c.describe_package_version(domain=domain, repository=r["name"], packageVersion=v["version"],
                                               **kw)["packageVersion"]
                files = {}
                if v["status"] != "Disposed":
                    for a in c.list_package_version_assets(domain=domain, repository=r["name"],
                                                           packageVersion=v["version"], **kw)["assets"]:
                        body = c.get_package_version_asset(domain=domain, repository=r["name"], asset=a["name"],
                                                           packageVersion=v["version"], **kw)["asset"].read()
                        files[a["name"]] = (a["hashes"], a["size"], hashlib.sha256(body).hexdigest())
                versions[v["version"]] = {"status": v["status"], "origin": v["origin"],
                                          "published": d.get("publishedTime"), "files": files}
            packages[str(key)] = {"origin": p.get("originConfiguration"), "versions": versions}
        entry["packages"] = packages
        repos[r["name"]] = entry
    out["repositories"] = repos
    out["groups"] = sorted((g["pattern"], json.dumps(g.get("originConfiguration"), sort_keys=True))
                           for g in c.list_package_groups(domain=domain)["packageGroups"])
    out["settings"] = srv.cli_json("describe-domain-settings", "--domain", domain)["domainSettings"]
    out["cleanup"] = json.loads(arca_client(srv).get_domain_cleanup_policy(domain=domain)["cleanupPolicy"]
                                ["policyDocument"])
    with httpx.Client(auth=("aws", srv.token(domain)), timeout=30) as h:
        doc = h.get(srv.endpoint(domain, "npm", "libs") + "@acme%2farch").json()
        out["distTags"] = doc["dist-tags"]
        tarball = h.get(doc["versions"]["1.1.0"]["dist"]["tarball"])
        out["npmTarball"] = (tarball.status_code, hashlib.sha256(tarball.content).hexdigest())
        wheel = h.get(srv.endpoint(domain, "pypi", "libs") + "simple/arch-py/arch_py-2.0-py3-none-any.whl")
        out["wheel"] = (wheel.status_code, hashlib.sha256(wheel.content).hexdigest())
    return out


def install_from(srv, domain: str, tmp: Path) -> None:
    """What users do with the restored domain: pip and npm install from it."""
    token = srv.token(domain)
    run(pip_cmd(PY, "install", "--target", str(tmp / "site"), "--index-url", index_url(srv, domain, "libs", token),
                "arch-py==2.0"), env=clean_env())
    assert (tmp / "site" / "arch_py-2.0.dist-info").is_dir()
    npmrc = tmp / ".npmrc-install"
    write_npmrc(npmrc, srv.endpoint(domain, "npm", "libs"), token)
    project = write_consumer(tmp / "consumer", {"@acme/arch": "^1.0.0"})
    subprocess.run([require_tool("npm"), "install", "--no-audit", "--no-fund"], cwd=project, check=True,
                   capture_output=True, timeout=300, env=clean_env(npm_config_userconfig=str(npmrc),
                                                                  npm_config_cache=str(tmp / "npm-cache-install")))
    assert installed_version(project, "@acme/arch") == "1.1.0"


def _round_trip(source, target, domain: str, archive: str, tmp: Path, env: dict | None = None) -> None:
    populate(source, domain, tmp)
    before = snapshot(source, domain)
    summary, code = admin(source, "export", "--domain", domain, "--to", archive, env=env)
    assert code == 0 and summary["ok"] and summary["packages"] == 3 and summary["blobs"] > 0, summary
    again, _ = admin(source, "export", "--domain", domain, "--to", archive, env=env)
    assert again["blobsCopied"] == 0 and again["blobsAlreadyThere"] == summary["blobs"]  # resumable

    progress: list = []
    restored, code = admin(target, "import-domain", "--from", archive, env=env, progress=progress)
    assert code == 0 and restored["ok"], restored
    # Off a terminal: one JSON line per blob, then one per package.
    assert [p["result"] for p in progress if "blob" in p] == ["copied"] * summary["blobs"]
    assert len([p for p in progress if "package" in p and p["versions"] > 0]) == 3, progress
    after = snapshot(target, domain)
    assert after == before
    rerun, code = admin(target, "import-domain", "--from", archive, env=env)
    assert code == 0 and rerun["files"] == 0 and rerun["versions"] == 0 and rerun["blobsCopied"] == 0
    assert snapshot(target, domain) == before
    fsck = subprocess.run([ARCA, "admin", "fsck"], env=target.env, cwd=target.root, capture_output=True, text=True,
                          timeout=300)
    assert fsck.returncode == 0, fsck.stdout
    install_from(target, domain, tmp)


def test_round_trip_between_two_sqlite_disk_servers_through_a_directory(source, tmp_path, unique):
    target = start_server(tmp_path / "target", env={"ARCA_BLOB_STORE": "file", "ARCA_CLEANUP_INTERVAL": "0"},
                          database_url=f"sqlite:///{tmp_path / 'target.db'}")
    try:
        _round_trip(source, target, f"a{unique}", str(tmp_path / "archive"), tmp_path)
    finally:
        target.stop()


@pytest.mark.cluster
def test_round_trip_from_sqlite_disk_to_postgresql_s3_through_s3(source, pg_url, tmp_path, unique):
    url = fresh_database_url(tmp_path)
    assert url.startswith("postgresql")
    s3 = shared_s3_env()
    target = start_server(tmp_path / "target", env={**s3, "ARCA_CLEANUP_INTERVAL": "0"}, database_url=url)
    try:
        bucket = s3["ARCA_BLOB_STORE"].split("/")[2]
        creds = {k: v for k, v in s3.items() if k != "ARCA_BLOB_STORE"}
        _round_trip(source, target, f"b{unique}", f"s3://{bucket}/archives/{unique}", tmp_path, env=creds)
    finally:
        target.stop()


def test_a_damaged_archive_is_listed_not_restored_and_a_repaired_one_completes_the_restore(source, tmp_path,
                                                                                          unique):
    domain = f"c{unique}"
    populate(source, domain, tmp_path)
    before = snapshot(source, domain)
    archive = tmp_path / "archive"
    admin(source, "export", "--domain", domain, "--to", str(archive))
    # One blob's bytes changed, one package line garbage, one version with a status that cannot be stored.
    victim = next(p for p in (archive / "blobs").rglob("*") if p.is_file() and p.stat().st_size > 100)
    intact, listing = victim.read_bytes(), (archive / "packages.jsonl").read_bytes()
    victim.write_bytes(intact[:-1] + b"X")
    lines = (archive / "packages.jsonl").read_text().splitlines()
    first = json.loads(lines[0])
    first["versions"][0]["status"] = "Exploded"
    lines[0] = json.dumps(first)
    lines.append("{not json")
    (archive / "packages.jsonl").write_text("\n".join(lines) + "\n")

    target = start_server(tmp_path / "target", env={"ARCA_BLOB_STORE": "file", "ARCA_CLEANUP_INTERVAL": "0"},
                          database_url=f"sqlite:///{tmp_path / 'target.db'}")
    try:
        summary, code = admin(target, "import-domain", "--from", str(archive))
        assert code == 2 and not summary["ok"]
        reasons = " | ".join(p["problem"] for p in summary["problems"])
        assert "corrupt in the archive" in reasons and "is not a stored version status" in reasons
        assert any("line" in p["entry"] for p in summary["problems"])
        fsck = subprocess.run([ARCA, "admin", "fsck"], env=target.env, cwd=target.root, capture_output=True,
                              text=True, timeout=300)
        assert fsck.returncode == 0, fsck.stdout  # nothing restored points at a bad blob
        # The archive repaired, the same import run again restores what the first one could not.
        victim.write_bytes(intact)
        (archive / "packages.jsonl").write_bytes(listing)
        summary, code = admin(target, "import-domain", "--from", str(archive))
        assert code == 0 and summary["ok"] and summary["versions"] > 0 and summary["blobsCopied"] == 1, summary
        assert snapshot(target, domain) == before
        # Not an archive at all:
        (tmp_path / "empty").mkdir()
        proc = subprocess.run([ARCA, "admin", "import-domain", "--from", str(tmp_path / "empty")], env=target.env,
                              cwd=target.root, capture_output=True, text=True, timeout=60)
        assert proc.returncode == 1 and "has no arca-export.json" in proc.stderr
    finally:
        target.stop()


def test_an_export_stopped_half_way_is_finished_by_running_it_again(source, tmp_path, unique):
    domain = f"e{unique}"
    populate(source, domain, tmp_path)
    with httpx.Client(auth=("aws", source.token(domain)), timeout=30) as h:
        wheel = h.get(source.endpoint(domain, "pypi", "libs") + "simple/arch-py/arch_py-2.0-py3-none-any.whl")
    sha = hashlib.sha256(wheel.content).hexdigest()
    archive = tmp_path / "archive"
    # A file where the wheel's blob directory must go: the export stops at that blob.
    obstacle = archive / "blobs" / "sha256" / sha[:2]
    obstacle.parent.mkdir(parents=True)
    obstacle.write_bytes(b"in the way")
    proc = subprocess.run([ARCA, "admin", "export", "--domain", domain, "--to", str(archive)], env=source.env,
                          cwd=source.root, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1 and f"Copying blob {sha}" in proc.stderr and "run the same command again" in \
        proc.stderr, proc.stdout + proc.stderr
    assert not (archive / "arca-export.json").exists()  # incomplete, and says so:
    refused = subprocess.run([ARCA, "admin", "import-domain", "--from", str(archive)], env=source.env,
                             cwd=source.root, capture_output=True, text=True, timeout=60)
    assert refused.returncode == 1 and "did not finish (run the export again)" in refused.stderr

    obstacle.unlink()
    summary, code = admin(source, "export", "--domain", domain, "--to", str(archive))
    assert code == 0 and summary["ok"], summary
    assert summary["blobsCopied"] + summary["blobsAlreadyThere"] == summary["blobs"] and summary["blobsCopied"] >= 1
    manifest = json.loads((archive / "arca-export.json").read_text())
    assert manifest["format"] == "arca-domain-archive" and manifest["version"] == 1
    assert sha in {b["sha256"] for b in manifest["blobs"]}
    assert hashlib.sha256((archive / "blobs" / "sha256" / sha[:2] / sha[2:4] / sha).read_bytes()).hexdigest() == sha
