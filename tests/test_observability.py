"""Operability with real clients against `arca serve --workers 2`: Prometheus metrics move, webhooks
receive signed package events (also after the receiver was down, and exactly once after a SIGKILL),
the audit trail records the tour, and no log line or audit row holds a token or a secret."""

from __future__ import annotations

import hashlib
import hmac
import json
import signal
import subprocess
import uuid

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.npm_support import Registry, write_npmrc
from tests.pypi_support import make_wheel, twine_upload, wait_for
from tests.support.server import ARCA, fresh_database_url, start_server
from tests.webhook_support import Receiver

SECRET = "hook-secret-0123456789"


@pytest.fixture(scope="module")
def receiver():
    r = Receiver()
    yield r
    r.close()


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    srv = start_server(tmp_path_factory.mktemp("obs"), workers=2, log_level="info",
                       env={"ARCA_LOG_FORMAT": "json"})
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def acme(node, receiver):
    for repo in ("libs", "py", "js"):
        node.create_repo("acme", repo)
    node.admin("create-webhook", "--domain", "acme", "--url", receiver.url, "--secret", SECRET)
    return node.token("acme")


def _counter(srv, name: str, **labels) -> float:
    text = httpx.get(srv.url + "/metrics").text
    total = 0.0
    for fam in text_string_to_metric_families(text):
        for sample in fam.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return total


def _grew(srv, before: float, by: float, name: str, **labels) -> bool:
    """Whether a counter grew by `by` since `before` (waited for: it may be recorded just after the
    response). Deltas, not totals: the module's tests may run on different xdist workers, each with
    its own server."""
    return wait_for(lambda: _counter(srv, name, **labels) >= before + by, timeout=30)


def _check_signature(event: dict) -> None:
    want = "sha256=" + hmac.new(SECRET.encode(), event["body"], hashlib.sha256).hexdigest()
    assert hmac.compare_digest(event["headers"]["x-arca-signature-256"], want)
    env = event["json"]
    assert env["detail-type"] == "CodeArtifact Package Version State Change"
    assert env["source"] == "aws.codeartifact"
    for key in ("domainName", "domainOwner", "repositoryName", "packageFormat", "packageName",
                "packageVersion", "packageVersionState", "packageVersionRevision", "operationType",
                "sequenceNumber", "eventDeduplicationId"):
        assert key in env["detail"], key


def test_maven_deploy_and_curl_publish_events_and_metrics(node, acme, receiver, mvn, tmp_path):
    url = node.endpoint("acme", "maven", "libs")
    puts = _counter(node, "arca_http_requests_total", plane="data", format="maven", method="PUT")
    publishes = _counter(node, "arca_publishes_total", format="maven")
    uploads = _counter(node, "arca_uploads_total", format="maven")
    proj = mvn.project("obs-app", "com.acme.obs", "app", "1.0.0", url)
    proj.write_class("com.acme.obs", "App")
    mvn.run(proj, "deploy", repo_url=url, token=acme)
    events = receiver.wait_delivered(lambda d: d["packageName"] == "app" and d["packageVersionState"] == "Published")
    _check_signature(events[0])
    assert events[0]["json"]["detail"]["packageNamespace"] == "com.acme.obs"
    assert _grew(node, puts, 6, "arca_http_requests_total", plane="data", format="maven", method="PUT")
    assert _grew(node, publishes, 1, "arca_publishes_total", format="maven")
    assert _grew(node, uploads, 2, "arca_uploads_total", format="maven")  # the jar and the pom

    jar = b"PK\x05\x06" + b"\x00" * 18
    r = httpx.put(url + "com/acme/obs/curled/2.0.0/curled-2.0.0.jar", content=jar, auth=("aws", acme))
    assert r.status_code == 201, r.text  # a new file
    receiver.wait_delivered(lambda d: d["packageName"] == "curled" and d["packageVersionState"] == "Unfinished")
    node.cli("update-package-versions-status", "--domain", "acme", "--repository", "libs", "--format", "maven",
             "--namespace", "com.acme.obs", "--package", "curled", "--versions", "2.0.0",
             "--target-status", "Published")
    published = receiver.wait_delivered(
        lambda d: d["packageName"] == "curled" and d["packageVersionState"] == "Published")
    created = receiver.wait_delivered(
        lambda d: d["packageName"] == "curled" and d["packageVersionState"] == "Unfinished")
    assert published[0]["json"]["detail"]["sequenceNumber"] > created[0]["json"]["detail"]["sequenceNumber"]
    assert published[0]["json"]["detail"]["operationType"] == "Updated"
    _check_signature(published[0])


def test_twine_and_npm_publish_events_and_metrics(node, acme, receiver, tmp_path):
    before = {(name, fmt): _counter(node, name, format=fmt) for name in ("arca_publishes_total", "arca_uploads_total")
              for fmt in ("pypi", "npm")}
    posts = _counter(node, "arca_http_requests_total", plane="data", format="pypi", method="POST")
    wheel = make_wheel(tmp_path, "Obs_Pkg", "1.0")
    twine_upload(node.endpoint("acme", "pypi", "py"), acme, [wheel])
    ev = receiver.wait_delivered(lambda d: d["packageFormat"] == "pypi" and d["packageName"] == "obs-pkg")
    _check_signature(ev[0])
    assert _grew(node, posts, 1, "arca_http_requests_total", plane="data", format="pypi", method="POST")

    reg = Registry(node, "acme", "js", acme, tmp_path / "npm")
    write_npmrc(reg.npmrc, reg.url, acme)
    reg.publish("@acme/obs-lib", "1.0.0")
    ev = receiver.wait_delivered(lambda d: d["packageFormat"] == "npm" and d["packageName"] == "obs-lib")
    assert ev[0]["json"]["detail"]["packageNamespace"] == "acme"
    _check_signature(ev[0])
    gets = _counter(node, "arca_http_requests_total", plane="data", format="npm", method="GET")
    consumer = tmp_path / "npm" / "consumer"
    consumer.mkdir(parents=True)
    (consumer / "package.json").write_text(json.dumps({"name": "c", "version": "1.0.0",
                                                       "dependencies": {"@acme/obs-lib": "^1.0.0"}}))
    reg.npm("install", cwd=consumer)
    # the packument at least (npm may take the tarball from the cache that publish filled)
    assert _grew(node, gets, 1, "arca_http_requests_total", plane="data", format="npm", method="GET")
    for (name, fmt), value in before.items():
        assert _grew(node, value, 1, name, format=fmt), (name, fmt)


def test_receiver_down_then_back(node, acme, receiver, tmp_path):
    receiver.failing = True
    try:
        attempts = receiver.attempts
        twine_upload(node.endpoint("acme", "pypi", "py"), acme, [make_wheel(tmp_path, "late-pkg", "1.0")])
        assert wait_for(lambda: receiver.attempts > attempts, timeout=30), "the deliverer never tried"
        assert not [e for e in receiver.events if e["json"]["detail"]["packageName"] == "late-pkg"]
    finally:
        receiver.failing = False
    ev = receiver.wait_delivered(lambda d: d["packageName"] == "late-pkg", timeout=60)
    assert len(ev) == 1


def test_event_survives_sigkill(tmp_path, receiver):
    """The change commits with its outbox row; the process dies before delivering; after a restart
    the event is delivered, exactly once by deduplication id."""
    srv = start_server(tmp_path / "crash", env={"ARCA_WEBHOOKS": "0"})
    try:
        srv.create_repo("crash", "py")
        srv.admin("create-webhook", "--domain", "crash", "--url", receiver.url, "--secret", SECRET)
        token = srv.token("crash")
        twine_upload(srv.endpoint("crash", "pypi", "py"), token, [make_wheel(tmp_path, "crash-pkg", "1.0")])
        srv.stop(signal.SIGKILL)
        # The process is gone: whatever it sent has reached the receiver before our barrier request.
        receiver.barrier()
        assert not [e for e in receiver.events if e["json"]["detail"]["domainName"] == "crash"], \
            "delivered although the deliverer was off"
        srv.env["ARCA_WEBHOOKS"] = "1"
        srv.start()
        ev = receiver.wait_delivered(lambda d: d["domainName"] == "crash" and d["packageName"] == "crash-pkg")
        srv.stop()
        srv.start()  # a second restart must not deliver it again
        # A newer event to the same webhook goes out only after every earlier pending one (outbox
        # order per webhook), so once it has arrived, a redelivery of crash-pkg would have too.
        twine_upload(srv.endpoint("crash", "pypi", "py"), token, [make_wheel(tmp_path, "crash-pkg-2", "1.0")])
        receiver.wait_delivered(lambda d: d["domainName"] == "crash" and d["packageName"] == "crash-pkg-2")
        ids = [e["json"]["detail"]["eventDeduplicationId"] for e in receiver.events
               if e["json"]["detail"]["domainName"] == "crash" and e["json"]["detail"]["packageName"] == "crash-pkg"]
        assert len(ids) == len(set(ids)) == 1, ids
        _check_signature(ev[0])
    finally:
        srv.stop()


def json_lines(text: str) -> list[dict]:
    """Every line of a log, each of which must be one JSON object."""
    out = []
    for line in text.splitlines():
        if line.strip():
            try:
                out.append(json.loads(line))
            except ValueError:
                raise AssertionError(f"a log line that is not JSON: {line!r}") from None
    return out


def test_every_logger_writes_json_lines_with_the_request_id_where_there_is_one(node, acme, tmp_path):
    """uvicorn, alembic, the server's own lines, request lines, a warning logged while serving a
    request, the webhook deliverer and an admin job: with ARCA_LOG_FORMAT=json each line is JSON."""
    from botocore.exceptions import ClientError

    from app.db.models import Policy
    from tests.web_support import services

    # a warning logged inside a request: a stored policy that today's rules refuse
    c = node.boto()
    domain = f"logs{uuid.uuid4().hex[:6]}"
    c.create_domain(domain=domain)
    c.create_repository(domain=domain, repository="libs")
    name = f"u{uuid.uuid4().hex[:6]}"
    key = node.new_user(name)
    who = {"AWS": f"arn:aws:iam::000000000000:user/{name}"}
    c.put_domain_permissions_policy(domain=domain, policyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": who, "Action": "codeartifact:DescribeRepository", "Resource": "*"}]}))
    with services(node).db.session() as s:
        row = s.query(Policy).filter(Policy.resource_arn.endswith(f":domain/{domain}")).one()
        row.document = json.dumps({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Principal": who, "Action": "codeartifact:DescribeRepository", "Resource": "*",
             "Condition": {"StringEqualz": {"aws:username": domain}}}]})
    with pytest.raises(ClientError) as exc:
        node.boto(key).describe_repository(domain=domain, repository="libs")
    request_id = exc.value.response["ResponseMetadata"]["HTTPHeaders"]["x-request-id"]

    # the deliverer: a webhook whose receiver refuses
    dead = Receiver()
    dead.failing = True
    try:
        node.admin("create-webhook", "--domain", domain, "--url", dead.url)
        twine_upload(node.endpoint(domain, "pypi", "libs"), node.token(domain),
                     [make_wheel(tmp_path, "logged-pkg", "1.0")])
        assert wait_for(lambda: any(x.get("logger") == "arca.webhooks" and x.get("event") == "webhook-delivery"
                                    for x in json_lines(node.log())), timeout=60)
    finally:
        dead.close()
    # admin jobs (their own processes, the same settings): alembic migrating a fresh database, gc
    fresh = {**node.env, "ARCA_DATA_DIR": str(tmp_path / "fresh"),
             "ARCA_DATABASE_URL": fresh_database_url(tmp_path / "fresh")}
    migrated = subprocess.run([ARCA, "admin", "migrate"], env=fresh, capture_output=True, text=True, timeout=120)
    assert migrated.returncode == 0, migrated.stderr
    assert any(x["logger"] == "alembic.runtime.migration" and x["message"].startswith("Running upgrade")
               for x in json_lines(migrated.stderr))
    gc = node.admin("gc", "--dry-run")
    for line in json_lines(gc.stderr):
        assert line["logger"].startswith(("arca", "alembic")) and line["level"] and line["time"].endswith("Z")

    lines = json_lines(node.log())
    loggers = {x["logger"] for x in lines}
    assert {"uvicorn.error", "arca.serve", "arca.request", "arca.policy", "arca.webhooks"} <= loggers, loggers
    warning = [x for x in lines if x["logger"] == "arca.policy"]
    assert warning and warning[0]["request_id"] == request_id and warning[0]["level"] == "warning"
    assert all(x["request_id"] for x in lines if x["logger"] == "arca.request")
    assert not any("request_id" in x for x in lines if x["logger"].startswith(("uvicorn", "alembic")))
    delivery = next(x for x in lines if x.get("event") == "webhook-delivery")
    assert delivery["outcome"] in ("retry", "failed") and delivery["error"] == "HTTP 503"


def test_audit_trail_and_no_secrets_anywhere(node, acme):
    c = node.boto()
    c.create_domain(domain="audited")
    c.create_repository(domain="audited", repository="libs", description="d")
    c.update_repository(domain="audited", repository="libs", description="e")
    token = node.token("audited")
    c.delete_repository(domain="audited", repository="libs")
    c.delete_domain(domain="audited")
    rows = json.loads(node.admin("audit", "--domain", "audited", "--output", "json").stdout)
    actions = [r["action"] for r in rows]
    for action in ("CreateDomain", "CreateRepository", "UpdateRepository", "GetAuthorizationToken",
                   "DeleteRepository", "DeleteDomain"):
        assert action in actions, actions
    assert all(r["principal"] == "arn:aws:iam::000000000000:user/admin" for r in rows)
    assert all(r["requestId"] and r["sourceIp"] == "127.0.0.1" for r in rows)
    everything = node.log() + json.dumps(json.loads(node.admin("audit", "--output", "json").stdout))
    for secret in (token, acme, node.access_key["SecretAccessKey"], SECRET):
        assert secret not in everything
    # request log lines are JSON with the principal and a request id
    lines = [x for x in json_lines(node.log()) if x.get("event") == "request"]
    assert any(x["operation"] == "CreateDomain" and x["principal"].endswith("user/admin") for x in lines)
    resp = httpx.get(node.url + "/healthz", headers={"X-Request-Id": "trace-me-42"})
    assert resp.headers["x-request-id"] == "trace-me-42"
