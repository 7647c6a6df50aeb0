"""Webhooks that never stall, against `arca serve --workers 2` and local receivers: every change of a
version is an event (assets added to an existing version too, as CodeArtifact sends them), the
attempt header counts real attempts, retries back off and run out into the dead-letter list that
`arca admin list-webhook-failures` shows and `arca admin redeliver` replays, and a receiver that
hangs holds back nothing but its own queue.

Backoff, attempts and polling are set small so that retries take milliseconds; nothing waits for
time to pass: each test waits for what the receivers record, and counts after barriers."""

from __future__ import annotations

import hashlib
import json
import time

import httpx
import pytest

from app.observability.webhooks import retry_delay
from tests.pypi_support import make_sdist, make_wheel, twine_upload
from tests.support.server import start_server
from tests.webhook_support import Receiver

FAST = {"ARCA_WEBHOOK_BACKOFF": "0.02", "ARCA_WEBHOOK_BACKOFF_MAX": "0.1", "ARCA_WEBHOOK_MAX_ATTEMPTS": "3",
        "ARCA_WEBHOOK_POLL_INTERVAL": "0.05", "ARCA_WEBHOOK_TIMEOUT": "600"}


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    srv = start_server(tmp_path_factory.mktemp("hooks"), workers=2, env=FAST)
    yield srv
    srv.stop()


@pytest.fixture
def receivers():
    made: list[Receiver] = []

    def make(*args, **kwargs) -> Receiver:
        made.append(Receiver(*args, **kwargs))
        return made[-1]

    yield make
    for r in made:
        r.close()


def hook(srv, domain: str, url: str, *, filter_: str | None = None) -> int:
    args = ["create-webhook", "--domain", domain, "--url", url] + (["--filter", filter_] if filter_ else [])
    return json.loads(srv.admin(*args).stdout)["id"]


def admin_json(srv, *args) -> dict:
    return json.loads(srv.admin(*args).stdout)


def _changes(req: dict) -> dict:
    return req["detail"]["changes"]


# ---- events ------------------------------------------------------------------------------------

def test_a_second_file_in_an_existing_version_is_an_updated_event_with_assets_added(node, domain, receivers,
                                                                                       tmp_path):
    r = receivers()
    node.create_repo(domain, "py")
    node.create_repo(domain, "libs")
    node.create_repo(domain, "bin")
    hook(node, domain, r.url)
    token = node.token(domain)

    # PyPI: a wheel creates the version, an sdist of the same version adds to it.
    twine_upload(node.endpoint(domain, "pypi", "py"), token, [make_wheel(tmp_path, "two-files", "1.0")])
    created = r.wait(lambda d: d["packageName"] == "two-files")[0]
    assert created["detail"]["operationType"] == "Created"
    assert _changes(created) == {"assetsAdded": 1, "assetsRemoved": 0, "assetsUpdated": 0,
                                 "metadataUpdated": False, "statusChanged": False}
    twine_upload(node.endpoint(domain, "pypi", "py"), token, [make_sdist(tmp_path, "two-files", "1.0")])
    updated = r.wait(lambda d: d["packageName"] == "two-files", count=2)[1]
    assert updated["detail"]["operationType"] == "Updated"
    assert updated["detail"]["packageVersionState"] == "Published"
    assert _changes(updated) == {"assetsAdded": 1, "assetsRemoved": 0, "assetsUpdated": 0,
                                 "metadataUpdated": False, "statusChanged": False}
    assert updated["detail"]["sequenceNumber"] == created["detail"]["sequenceNumber"] + 1
    described = node.boto().describe_package_version(domain=domain, repository="py", format="pypi",
                                                     package="two-files", packageVersion="1.0")
    assert updated["detail"]["packageVersionRevision"] == described["packageVersion"]["revision"]

    # Maven: each timestamped SNAPSHOT build is a new file of the one SNAPSHOT version.
    base = node.endpoint(domain, "maven", "libs") + "com/acme/snap/1.0-SNAPSHOT/"
    for build in (1, 2):
        name = f"snap-1.0-20261129.101010-{build}.jar"
        resp = httpx.put(base + name, content=f"build {build}".encode(), auth=("aws", token), timeout=30)
        assert resp.status_code == 201, resp.text
    snap = r.wait(lambda d: d["packageName"] == "snap", count=2)
    assert [(x["detail"]["operationType"], _changes(x)["assetsAdded"]) for x in snap] == [("Created", 1),
                                                                                          ("Updated", 1)]

    # Generic: a second asset through the control plane.
    c = node.boto()
    for asset in ("a.bin", "b.bin"):
        data = asset.encode() * 10
        c.publish_package_version(domain=domain, repository="bin", format="generic", namespace="tools",
                                  package="kit", packageVersion="2.0", assetContent=data, assetName=asset,
                                  assetSHA256=hashlib.sha256(data).hexdigest(), unfinished=True)
    kit = r.wait(lambda d: d["packageName"] == "kit", count=2)
    assert [(x["detail"]["operationType"], _changes(x)["assetsAdded"]) for x in kit] == [("Created", 1),
                                                                                         ("Updated", 1)]

    # Disposing removes the files: one event says the status changed and how many files went.
    c.dispose_package_versions(domain=domain, repository="bin", format="generic", namespace="tools",
                               package="kit", versions=["2.0"])
    disposed = r.wait(lambda d: d["packageName"] == "kit", count=3)[2]
    assert disposed["detail"]["packageVersionState"] == "Disposed"
    assert _changes(disposed)["statusChanged"] is True and _changes(disposed)["assetsRemoved"] == 2
    # Every event reached the receiver once (no duplicates from the two workers).
    r.barrier()
    ids = [x["id"] for x in r.seen()]
    assert len(ids) == len(set(ids)) == 7


# ---- attempts, backoff and the dead-letter list -------------------------------------------------

def test_the_attempt_header_counts_real_attempts(node, domain, receivers):
    r = receivers(lambda detail, attempt: 503 if attempt < 3 else 204)
    node.create_repo(domain, "bin")
    hook(node, domain, r.url)
    data = b"payload"
    node.boto().publish_package_version(domain=domain, repository="bin", format="generic", namespace="n",
                                        package="retried", packageVersion="1", assetContent=data,
                                        assetName="x.bin", assetSHA256=hashlib.sha256(data).hexdigest(),
                                        unfinished=True)  # one event: Created, Unfinished
    got = r.wait(lambda d: d["packageName"] == "retried", count=3)
    assert [x["attempt"] for x in got] == [1, 2, 3]
    assert len({x["id"] for x in got}) == 1  # one event, three attempts
    r.barrier()
    assert len(r.seen()) == 3  # delivered at the third: no fourth


def test_retries_run_out_into_the_dead_letter_list_and_redeliver_replays_them(node, domain, receivers):
    down = {"on": True}
    r = receivers(lambda detail, attempt: 503 if down["on"] else 204)
    node.create_repo(domain, "bin")
    webhook_id = hook(node, domain, r.url)
    c = node.boto()

    def publish(package: str) -> None:
        data = package.encode()
        c.publish_package_version(domain=domain, repository="bin", format="generic", namespace="n",
                                  package=package, packageVersion="1", assetContent=data, assetName="x.bin",
                                  assetSHA256=hashlib.sha256(data).hexdigest(), unfinished=True)

    publish("doomed")
    assert [x["attempt"] for x in r.wait(lambda d: d["packageName"] == "doomed", count=3)] == [1, 2, 3]
    deadline = time.monotonic() + 60
    while not (failures := admin_json(node, "list-webhook-failures", "--webhook", str(webhook_id))["failures"]):
        assert time.monotonic() < deadline, "the delivery never reached the dead-letter list"
        time.sleep(0.05)
    assert [(f["package"], f["attempts"], f["lastError"]) for f in failures] == [("doomed", 3, "HTTP 503")]
    assert admin_json(node, "list-webhooks", "--domain", domain)["webhooks"][0]["deadLetters"] == 1
    r.barrier()
    assert len(r.seen(lambda d: d["packageName"] == "doomed")) == 3  # no fourth attempt

    # The queue moved on: a later event is delivered once the receiver is back.
    down["on"] = False
    publish("later")
    r.wait(lambda d: d["packageName"] == "later")

    refused = node.admin("redeliver", check=False)
    assert refused.returncode != 0 and "Name what to redeliver" in refused.stderr
    out = admin_json(node, "redeliver", "--webhook", str(webhook_id))
    assert out["requeued"] == 1
    replayed = r.wait(lambda d: d["packageName"] == "doomed", count=4)[3]
    assert replayed["attempt"] == 4 and replayed["id"] == failures[0]["eventDeduplicationId"]
    assert admin_json(node, "list-webhook-failures", "--domain", domain)["failures"] == []


def test_deliveries_older_than_the_maximum_age_go_to_the_dead_letter_list_at_their_next_failure(tmp_path,
                                                                                                 receivers):
    r = receivers(lambda detail, attempt: 500)
    srv = start_server(tmp_path / "aged", env={**FAST, "ARCA_WEBHOOK_MAX_ATTEMPTS": "1000",
                                               "ARCA_WEBHOOK_MAX_AGE": "0"})
    try:
        srv.create_repo("aged", "bin")
        webhook_id = hook(srv, "aged", r.url)
        data = b"old"
        srv.boto().publish_package_version(domain="aged", repository="bin", format="generic", namespace="n",
                                           package="old", packageVersion="1", assetContent=data, assetName="x",
                                           assetSHA256=hashlib.sha256(data).hexdigest(), unfinished=True)
        r.wait(lambda d: d["packageName"] == "old")
        deadline = time.monotonic() + 60
        while not (failures := admin_json(srv, "list-webhook-failures")["failures"]):
            assert time.monotonic() < deadline, "the delivery never reached the dead-letter list"
            time.sleep(0.05)
        assert [(f["webhook"], f["attempts"], f["lastError"]) for f in failures] == [(webhook_id, 1, "HTTP 500")]
        r.barrier()
        assert len(r.seen()) == 1
    finally:
        srv.stop()


def test_retry_delays_double_up_to_the_cap_with_jitter_of_up_to_half():
    assert [retry_delay(n, 2, 300, rand=lambda: 1.0) for n in (1, 2, 3, 8, 9, 40)] == [2, 4, 8, 256, 300, 300]
    assert [retry_delay(n, 2, 300, rand=lambda: 0.0) for n in (1, 2, 9)] == [1, 2, 150]
    assert retry_delay(10_000, 2, 300, rand=lambda: 0.5) == 225


# ---- one dead receiver holds back only itself ---------------------------------------------------

def test_a_hanging_receiver_never_delays_another_webhooks_events(node, domain, receivers):
    hanging = receivers(lambda detail, attempt: "hang", threads=True)
    healthy = receivers()
    node.create_repo(domain, "libs")
    hook(node, domain, hanging.url)  # created first: its queue comes first in any ordering by id
    hook(node, domain, healthy.url)
    token = node.token(domain)
    base = node.endpoint(domain, "maven", "libs") + "com/acme/many/"
    n = 60  # more than any batch a deliverer might take at once
    for i in range(n):
        resp = httpx.put(f"{base}{i}.0/many-{i}.0.jar", content=b"jar %d" % i, auth=("aws", token), timeout=30)
        assert resp.status_code == 201, resp.text
    got = healthy.wait(lambda d: d["packageName"] == "many", count=n)
    # all delivered while the other receiver still holds the first of its events, in order
    assert [x["detail"]["sequenceNumber"] for x in got] == list(range(1, n + 1))
    assert len(hanging.seen()) == 1 and hanging.seen()[0]["detail"]["packageVersion"] == "0.0"
    hanging.release()
    after = hanging.wait(lambda d: d["packageName"] == "many", count=n)
    assert [x["detail"]["sequenceNumber"] for x in after] == list(range(1, n + 1))
