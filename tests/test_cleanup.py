"""Cleanup policies: set through the API (the `arca` CLI and boto3's `arca` client), applied by
`arca admin cleanup` (dry run first) and by the server's own schedule, with the real clients
afterwards: what is kept still installs, what was removed answers 404.

Ages are set by writing timestamps into the database (UTC), never by waiting."""

from __future__ import annotations

import hashlib
import json
import subprocess
from datetime import datetime, timedelta, timezone

import boto3
import httpx
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from sqlalchemy import create_engine, text

from app import arca_model
from tests.npm_support import setup_registry, write_consumer
from tests.pypi_support import PY, index_url, make_wheel, pip_cmd, run, twine_upload, wait_for
from tests.support.server import clean_env, require_tool, start_server
from tests.upstream_support import start_pypiserver
from tests.web_support import console_user, signed_in, text_of

NOW = datetime.now(timezone.utc)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """This module's server runs the rules only when told (`arca admin cleanup`): its schedule is off,
    so a scheduled round cannot act between a test's dry run and its run."""
    srv = start_server(tmp_path_factory.mktemp("arca"), env={"ARCA_CLEANUP_INTERVAL": "0"})
    yield srv
    srv.stop()


def arca_client(server, key=None):
    key = key or server.access_key
    return boto3.Session(botocore_session=arca_model.session()).client(
        "arca", endpoint_url=server.url, region_name="us-east-1", aws_access_key_id=key["AccessKeyId"],
        aws_secret_access_key=key["SecretAccessKey"], config=Config(retries={"max_attempts": 1}))


def sql(server, statement: str, **params):
    engine = create_engine(server.env["ARCA_DATABASE_URL"])
    try:
        with engine.begin() as conn:
            result = conn.execute(text(statement), params)
            return result.all() if result.returns_rows else result.rowcount
    finally:
        engine.dispose()


def age_versions(server, domain: str, package: str, days: dict[str, float], column: str = "published_time"):
    """Set a column of versions to `days` ago (UTC), by version string."""
    for version, ago in days.items():
        n = sql(server, f"""UPDATE package_versions SET {column} = :t WHERE version = :v AND package_id IN (
                  SELECT p.id FROM packages p JOIN repositories r ON r.id = p.repository_id
                  JOIN domains d ON d.id = r.domain_id WHERE d.name = :d AND p.name = :p)""",
                t=NOW - timedelta(days=ago), v=version, d=domain, p=package)
        assert n == 1, (version, n)


def statuses(server, domain: str, package: str) -> dict[str, str]:
    return dict(sql(server, """SELECT v.version, v.status FROM package_versions v JOIN packages p ON p.id = v.package_id
                JOIN repositories r ON r.id = p.repository_id JOIN domains d ON d.id = r.domain_id
                WHERE d.name = :d AND p.name = :p""", d=domain, p=package))


def put_policy(server, domain: str, repository: str | None, doc: dict, tmp_path) -> None:
    path = tmp_path / "rules.json"
    path.write_text(json.dumps(doc))
    if repository is None:
        server.cli("put-domain-cleanup-policy", "--domain", domain, "--policy-document", f"file://{path}")
    else:
        server.cli("put-repository-cleanup-policy", "--domain", domain, "--repository", repository,
                   "--policy-document", f"file://{path}")


def cleanup(server, *args: str) -> tuple[list[dict], dict]:
    """`arca admin cleanup ...` (not a terminal: one JSON line per item, the summary last)."""
    lines = [json.loads(line) for line in server.admin("cleanup", *args).stdout.splitlines() if line.strip()]
    return lines[:-1], lines[-1]


# ---- the policy API -------------------------------------------------------------------------------

def test_policy_api_put_get_inherit_delete_with_cli_and_boto3(server, domain, tmp_path):
    server.boto().create_repository(domain=domain, repository="libs")
    server.boto().create_repository(domain=domain, repository="apps")
    client = arca_client(server)
    dom_doc = {"rules": [{"packages": "/npm/*", "keepLastVersions": 3}]}
    put_policy(server, domain, None, dom_doc, tmp_path)
    got = client.get_repository_cleanup_policy(domain=domain, repository="apps")["cleanupPolicy"]
    assert got["inheritedFromDomain"] is True and got["scope"] == "domain"
    assert json.loads(got["policyDocument"]) == dom_doc

    own = {"action": "delete", "rules": [{"packages": "/pypi/*", "statuses": ["Unlisted"], "olderThanDays": 7}]}
    put = client.put_repository_cleanup_policy(domain=domain, repository="libs", policyDocument=json.dumps(own))
    assert put["cleanupPolicy"]["scope"] == "repository"
    got = json.loads(server.cli("get-repository-cleanup-policy", "--domain", domain, "--repository", "libs").stdout)
    assert json.loads(got["cleanupPolicy"]["policyDocument"]) == own
    assert "inheritedFromDomain" not in got["cleanupPolicy"]

    # The console's repository header shows the rules in force (its own, or the domain's).
    console_user(server, f"lc{domain}", admin=True)
    console = signed_in(server, f"lc{domain}")
    try:
        libs = text_of(console.get(f"/ui/d/{domain}/r/libs").text)
        apps = text_of(console.get(f"/ui/d/{domain}/r/apps").text)
    finally:
        console.close()
    assert "/pypi/*: delete Unlisted versions older than 7 days" in libs
    assert "(the domain's policy)" in apps and "/npm/*: keep the last 3 versions (dispose the rest)" in apps

    client.delete_repository_cleanup_policy(domain=domain, repository="libs")
    assert client.get_repository_cleanup_policy(domain=domain, repository="libs")["cleanupPolicy"]["scope"] == "domain"
    client.delete_domain_cleanup_policy(domain=domain)
    with pytest.raises(ClientError) as exc:
        client.get_repository_cleanup_policy(domain=domain, repository="libs")
    assert exc.value.response["Error"]["Code"] == "ResourceNotFoundException"

    audit = json.loads(server.admin("audit", "--domain", domain, "--output", "json").stdout)
    actions = [a["action"] for a in audit if a["resourceType"] == "cleanup-policy"]
    assert actions == ["PutCleanupPolicy", "PutCleanupPolicy", "DeleteCleanupPolicy", "DeleteCleanupPolicy"]


@pytest.mark.parametrize("document, reason", [
    ("not json", "not valid JSON"),
    ("[]", "JSON object"),
    ('{"rules": []}', "rules must be a list of 1 to"),
    ('{"rules": [{"keepLastVersions": 0}]}', "keepLastVersions must be a whole number"),
    ('{"rules": [{"keepLastVersions": true}]}', "keepLastVersions must be a whole number"),
    ('{"rules": [{"keepLastVersions": 2, "olderThanDays": 3}]}', "exactly one of"),
    ('{"rules": [{"olderThanDays": 3}]}', "needs statuses"),
    ('{"rules": [{"olderThanDays": 3, "statuses": ["Deleted"]}]}', "statuses must be a non-empty list"),
    ('{"rules": [{"keepLastVersions": 2, "packages": "npm/*"}]}', "must start with '/'"),
    ('{"rules": [{"keepLastVersions": 2, "packages": "/cobol/*"}]}', "unknown format"),
    ('{"rules": [{"keepLastVersions": 2, "frobnicate": 1}]}', "unknown member"),
    ('{"rules": [{"evictExternalNotDownloadedForDays": 9, "action": "dispose"}]}', "action must be delete"),
    ('{"rules": [{"olderThanDays": 9, "statuses": ["Disposed"]}]}', "can only be deleted"),
    ('{"action": "shred", "rules": [{"keepLastVersions": 2}]}', "dispose or delete"),
    ('{"keep": [7], "rules": [{"keepLastVersions": 2}]}', "keep[0]"),
])
def test_hostile_policy_documents_are_refused_whole(server, domain, document, reason):
    server.boto().create_repository(domain=domain, repository="libs")
    client = arca_client(server)
    with pytest.raises(ClientError) as exc:
        client.put_repository_cleanup_policy(domain=domain, repository="libs", policyDocument=document)
    assert exc.value.response["Error"]["Code"] == "ValidationException"
    assert reason in exc.value.response["Error"]["Message"]
    with pytest.raises(ClientError):
        client.get_repository_cleanup_policy(domain=domain, repository="libs")


def test_only_administrators_set_cleanup_policies(server, domain, unique):
    server.boto().create_repository(domain=domain, repository="libs")
    key = server.new_user(f"dev{unique}")
    with pytest.raises(ClientError) as exc:
        arca_client(server, key).put_repository_cleanup_policy(
            domain=domain, repository="libs", policyDocument='{"rules": [{"keepLastVersions": 1}]}')
    assert exc.value.response["Error"]["Code"] == "AccessDeniedException"


# ---- npm: keep the last N, the latest dist-tag is safe ----------------------------------------------

def test_npm_keep_last_versions_dry_run_then_run(server, unique, tmp_path):
    reg = setup_registry(server, tmp_path, unique)
    name = f"lc-{unique}"
    for v in ("1.0.0", "1.1.0", "1.2.0", "2.0.0-beta.1", "1.3.0"):
        reg.publish(name, v, tag="next" if "beta" in v else None)
    reg.npm("dist-tag", "add", f"{name}@1.0.0", "legacy")
    age_versions(server, reg.domain, name, {"1.0.0": 50, "1.1.0": 40, "1.2.0": 30, "2.0.0-beta.1": 20, "1.3.0": 10})
    put_policy(server, reg.domain, reg.repo, {"action": "delete",
                                              "rules": [{"packages": "/npm/*", "keepLastVersions": 2}]}, tmp_path)
    before = statuses(server, reg.domain, name)

    items, summary = cleanup(server, "--domain", reg.domain, "--dry-run")
    assert [(i["version"], i["action"]) for i in items] == [("1.1.0", "delete"), ("1.2.0", "delete")]
    assert summary["dryRun"] is True and summary["versionsDeleted"] == 2
    assert summary["bytesFreed"] == sum(i["bytes"] for i in items) > 0
    assert statuses(server, reg.domain, name) == before  # a dry run changes nothing

    items, summary = cleanup(server, "--domain", reg.domain)
    assert summary["versionsDeleted"] == 2 and summary["nextStep"].startswith("run `arca admin gc`")
    # 1.0.0 carries the `legacy` dist-tag, 1.3.0 is `latest` and the newest release: both kept.
    assert sorted(statuses(server, reg.domain, name)) == ["1.0.0", "1.3.0", "2.0.0-beta.1"]
    view = reg.npm_json("view", name, "versions")
    assert view == ["1.0.0", "1.3.0", "2.0.0-beta.1"]
    consumer = write_consumer(tmp_path / "consumer", {name: "1.3.0"})
    reg.npm("install", cwd=consumer)
    gone = reg.npm("install", f"{name}@1.2.0", cwd=consumer, check=False)
    assert gone.returncode != 0 and "1.2.0" in gone.stderr
    with reg.http() as c:
        assert c.get(f"{name}/-/{name}-1.2.0.tgz").status_code == 404

    audit = json.loads(server.admin("audit", "--domain", reg.domain, "--output", "json").stdout)
    removed = [a for a in audit if a["action"] == "DeletePackageVersion"]
    assert len(removed) == 2 and {a["principal"] for a in removed} == {"local:arca-admin"}
    assert all(a["details"].get("operation") == "Cleanup" for a in removed)
    events = sql(server, "SELECT payload FROM outbox_events o JOIN domains d ON d.id = o.domain_id WHERE d.name = :d",
                 d=reg.domain)
    deleted = [json.loads(p) if isinstance(p, str) else p for (p,) in events]
    assert sorted(e["detail"]["packageVersion"] for e in deleted
                  if e["detail"]["operationType"] == "Deleted") == ["1.1.0", "1.2.0"]

    # A second run has nothing left to do.
    assert cleanup(server, "--domain", reg.domain)[1]["versionsDeleted"] == 0


# ---- PyPI: statuses older than N days, dispose, and an explicit keep --------------------------------

def test_pypi_old_unlisted_versions_are_disposed_kept_ones_install(server, domain, unique, tmp_path):
    server.boto().create_repository(domain=domain, repository="py")
    token = server.token(domain)
    name = f"lc-py-{unique}"
    files = [make_wheel(tmp_path / "dist", name, v) for v in ("1.0", "1.1", "1.2", "2.0")]
    twine_upload(f"{server.url}/{domain}/pypi/py/", token, files)
    server.boto().update_package_versions_status(domain=domain, repository="py", format="pypi", package=name,
                                                 versions=["1.0", "1.1", "1.2"], targetStatus="Unlisted")
    age_versions(server, domain, name, {"1.0": 60, "1.1": 60, "1.2": 2}, column="updated_at")
    put_policy(server, domain, None, {
        "keep": [{"packages": f"/pypi//{name}$", "versions": "1.1*"}],
        "rules": [{"name": "stale-unlisted", "statuses": ["Unlisted"], "olderThanDays": 30}]}, tmp_path)

    items, _ = cleanup(server, "--domain", domain, "--repository", "py", "--dry-run")
    assert [(i["version"], i["action"], i["rule"]) for i in items] == [("1.0", "dispose", "stale-unlisted")]
    cleanup(server, "--domain", domain, "--repository", "py")
    assert statuses(server, domain, name) == {"1.0": "Disposed", "1.1": "Unlisted", "1.2": "Unlisted",
                                              "2.0": "Published"}

    target = tmp_path / "site"
    url = index_url(server, domain, "py", token)
    run(pip_cmd(PY, "install", "--target", str(target), "--index-url", url, f"{name}==2.0"), env=clean_env())
    failed = run(pip_cmd(PY, "install", "--target", str(tmp_path / "s3"), "--index-url", url, f"{name}==1.0"),
                 env=clean_env(), check=False)
    assert failed.returncode != 0
    simple = f"{server.url}/{domain}/pypi/py/simple/{name}/"
    # Unlisted 1.1 (kept) still downloads by its exact name; disposed 1.0 answers 404.
    assert httpx.get(simple + files[1].name, auth=("aws", token), timeout=30).status_code == 200
    assert httpx.get(simple + files[0].name, auth=("aws", token), timeout=30).status_code == 404


# ---- Maven: keep the last N builds of each SNAPSHOT --------------------------------------------------

def _curl(args: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run([require_tool("curl"), "-sS", *args], capture_output=True, text=True, timeout=60,
                          env=clean_env())


def test_maven_snapshot_builds_beyond_the_last_n_are_deleted(server, domain, tmp_path):
    server.boto().create_repository(domain=domain, repository="mvn")
    token = server.token(domain)
    base = f"{server.url}/{domain}/maven/mvn/com/acme/lc/app/1.0-SNAPSHOT"
    builds = [f"1.0-2026010{i}.10101{i}-{i}" for i in range(1, 5)]
    for b in builds:
        for ext in ("jar", "pom"):
            body = tmp_path / f"app-{b}.{ext}"
            body.write_bytes(f"{b}.{ext}".encode() if ext == "jar" else (
                "<project><modelVersion>4.0.0</modelVersion><groupId>com.acme.lc</groupId>"
                f"<artifactId>app</artifactId><version>1.0-SNAPSHOT</version><!-- {b} --></project>").encode())
            r = _curl(["-u", f"aws:{token}", "-w", "%{http_code}", "-o", "/dev/null", "-T", str(body),
                       f"{base}/app-{b}.{ext}"])
            assert r.stdout == "201", r.stdout + r.stderr
    meta = ("<metadata><groupId>com.acme.lc</groupId><artifactId>app</artifactId><version>1.0-SNAPSHOT</version>"
            "</metadata>")
    (tmp_path / "m.xml").write_text(meta)
    assert _curl(["-u", f"aws:{token}", "-w", "%{http_code}", "-o", "/dev/null", "-T", str(tmp_path / "m.xml"),
                  f"{base}/maven-metadata.xml"]).stdout == "200"
    put_policy(server, domain, "mvn", {"rules": [{"packages": "/maven/com.acme.lc/*", "keepSnapshotBuilds": 2}]},
               tmp_path)

    items, summary = cleanup(server, "--domain", domain)
    assert [(i["version"], i["action"]) for i in items] == [("1.0-SNAPSHOT", "delete-files")]
    assert sorted(items[0]["files"]) == sorted(f"app-{b}.{e}" for b in builds[:2] for e in ("jar", "pom"))
    assert summary["filesDeleted"] == 4

    for b in builds[:2]:
        assert _curl(["-u", f"aws:{token}", "-w", "%{http_code}", "-o", "/dev/null",
                      f"{base}/app-{b}.jar"]).stdout == "404"
    kept = _curl(["-u", f"aws:{token}", f"{base}/app-{builds[3]}.jar"])
    assert kept.stdout == f"{builds[3]}.jar"
    listed = _curl(["-u", f"aws:{token}", f"{base}/maven-metadata.xml"]).stdout
    assert builds[3].split("-", 1)[1] in listed and builds[0].split("-", 1)[1] not in listed
    audit = json.loads(server.admin("audit", "--domain", domain, "--output", "json").stdout)
    assert sum(1 for a in audit if a["action"] == "DeletePackageVersionAsset") == 4


# ---- EXTERNAL versions not downloaded for N days, download times batched ------------------------------

@pytest.fixture(scope="module")
def proxied(tmp_path_factory):
    root = tmp_path_factory.mktemp("lc-pub")
    (root / "files").mkdir()
    pub = start_pypiserver(root / "files", root / "pypiserver.log")
    srv = start_server(tmp_path_factory.mktemp("lc-arca"), env={
        "ARCA_EXTERNAL_PUBLIC_PYPI": f"{pub.url}/simple/", "ARCA_UPSTREAM_MAX_AGE": "0",
        "ARCA_DOWNLOAD_FLUSH_SECONDS": "0.2", "ARCA_CLEANUP_INTERVAL": "0"})  # only the CLI runs the rules
    yield srv, root / "files"
    srv.stop()
    pub.stop()


def test_cached_external_versions_not_downloaded_are_evicted_and_fetched_again(proxied, unique, tmp_path):
    srv, public = proxied
    d = f"x{unique}"
    c = srv.boto()
    c.create_domain(domain=d)
    c.create_repository(domain=d, repository="proxy")
    c.associate_external_connection(domain=d, repository="proxy", externalConnection="public:pypi")
    name = f"ext-{unique}"
    for v in ("1.0", "2.0"):
        make_wheel(public, name, v)
    url = index_url(srv, d, "proxy", srv.token(d))
    for v in ("1.0", "2.0"):
        run(pip_cmd(PY, "install", "--target", str(tmp_path / v), "--index-url", url, f"{name}=={v}"),
            env=clean_env())
    times = """SELECT v.version, v.last_downloaded_at FROM package_versions v JOIN packages p ON p.id = v.package_id
               WHERE p.name = :p"""
    assert all(t for _v, t in sql(srv, times, p=name))  # fetched on demand: that was their first download
    sql(srv, "UPDATE package_versions SET last_downloaded_at = NULL WHERE package_id IN "
             "(SELECT id FROM packages WHERE name = :p)", p=name)
    run(pip_cmd(PY, "install", "--target", str(tmp_path / "b"), "--index-url", url, f"{name}==2.0"), env=clean_env())
    # A download from the cache is noted in memory and written in a batch a moment later.
    assert wait_for(lambda: dict(sql(srv, times, p=name))["2.0"], timeout=30)
    assert dict(sql(srv, times, p=name))["1.0"] is None
    age_versions(srv, d, name, {"1.0": 100, "2.0": 5}, column="last_downloaded_at")
    put_policy(srv, d, "proxy", {"rules": [{"evictExternalNotDownloadedForDays": 90}]}, tmp_path)

    items, summary = cleanup(srv, "--domain", d)
    assert [(i["version"], i["action"]) for i in items] == [("1.0", "delete")]
    assert statuses(srv, d, name) == {"2.0": "Published"}
    # An evicted copy is fetched again on the next install.
    run(pip_cmd(PY, "install", "--target", str(tmp_path / "again"), "--index-url", url, f"{name}==1.0"),
        env=clean_env())
    assert statuses(srv, d, name) == {"1.0": "Published", "2.0": "Published"}


# ---- the schedule: one runner, elected through the database ----------------------------------------

def test_the_server_runs_the_rules_on_its_schedule(tmp_path, unique):
    srv = start_server(tmp_path / "arca", env={"ARCA_CLEANUP_INTERVAL": "0.5"})
    try:
        reg = setup_registry(srv, tmp_path / "npm", unique)
        name = f"sched-{unique}"
        for v in ("1.0.0", "1.0.1", "1.0.2"):
            reg.publish(name, v)
        age_versions(srv, reg.domain, name, {"1.0.0": 3, "1.0.1": 2, "1.0.2": 1})
        put_policy(srv, reg.domain, None, {"rules": [{"keepLastVersions": 1}]}, tmp_path)
        assert wait_for(lambda: statuses(srv, reg.domain, name) == {
            "1.0.0": "Disposed", "1.0.1": "Disposed", "1.0.2": "Published"}, timeout=60)
        audit = json.loads(srv.admin("audit", "--domain", reg.domain, "--output", "json").stdout)
        assert {a["principal"] for a in audit if a["action"] == "UpdatePackageVersionStatus"} == {
            "arca:cleanup-schedule"}
        status = json.loads(srv.admin("cleanup", "--status").stdout)
        assert status["job"] == "cleanup" and status["lastStarted"]
    finally:
        srv.stop()


def test_one_claim_wins_among_processes(tmp_path):
    """Two processes' claims on one database: exactly one runs the job; neither again within the interval."""
    from app.config import settings_from_env
    from app.services import jobs
    from app.services.context import Arca
    from tests.support.server import fresh_database_url

    url = fresh_database_url(tmp_path)
    arcas = [Arca.from_settings(settings_from_env({"ARCA_DATA_DIR": str(tmp_path / f"n{i}"),
                                                   "ARCA_DATABASE_URL": url, "ARCA_SECRET_KEY": "k" * 40}),
                                migrate=(i == 0)) for i in range(2)]
    try:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(2) as pool:
            won = list(pool.map(lambda a: jobs.claim(a, "cleanup", jobs.holder_id(), 3600), arcas))
        assert sorted(won) == [False, True]
        winner = arcas[won.index(True)]
        holder = jobs.status(winner)["holder"]
        jobs.finish(winner, "cleanup", holder, {"ok": True})
        assert [jobs.claim(a, "cleanup", jobs.holder_id(), 3600) for a in arcas] == [False, False]
        # Once the interval has passed (its start moved back in the database), the job is due again.
        from sqlalchemy import update

        from app.db.models import JobLease

        with winner.db.session() as s:
            s.execute(update(JobLease).values(last_started_at=NOW - timedelta(hours=2)))
        assert jobs.claim(arcas[1], "cleanup", jobs.holder_id(), 3600) is True
    finally:
        for a in arcas:
            a.db.dispose()
