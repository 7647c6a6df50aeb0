"""Remotes and a cluster: two `arca serve` nodes on one PostgreSQL share each remote's circuit
breaker (a remote that is down is asked `ARCA_UPSTREAM_BREAKER_FAILURES` times by the cluster,
not by every node) and fetch a file once for the cluster (the others wait for it and find it
stored), shown by the remote's own request count."""

from __future__ import annotations

import hashlib
import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.pypi_support import make_wheel, wait_for
from tests.support.server import ArcaServer, fresh_database_url, start_server
from tests.upstream_support import Remote, start_pypiserver

pytestmark = pytest.mark.cluster


@pytest.fixture(scope="module")
def pub(tmp_path_factory):
    root = tmp_path_factory.mktemp("pypiserver")
    (root / "files").mkdir()
    srv = start_pypiserver(root / "files", root / "pypiserver.log")
    remote = Remote(srv.url)
    remote.files = root / "files"
    yield remote
    remote.close()
    srv.stop()


@pytest.fixture(scope="module")
def nodes(tmp_path_factory, pg_url, pub):
    root = tmp_path_factory.mktemp("fleet")
    db = fresh_database_url(root)
    assert db.startswith("postgresql")
    env = {"ARCA_SECRET_KEY": "shared-cluster-key-" + "k" * 40, "ARCA_EXTERNAL_PUBLIC_PYPI": f"{pub.url}/simple/",
           "ARCA_UPSTREAM_MAX_AGE": "600", "ARCA_UPSTREAM_BREAKER_FAILURES": "3",
           "ARCA_UPSTREAM_BREAKER_SECONDS": "600"}
    a = start_server(root / "a", env=env, database_url=db)
    b = ArcaServer(root=root / "b", env={**a.env, "ARCA_DATA_DIR": str(root / "a" / "storage")},
                   access_key=a.access_key)
    (root / "b").mkdir()
    try:
        b.start()
        yield a, b
    finally:
        b.stop()
        a.stop()


def _proxy(a, d: str) -> str:
    c = a.boto()
    c.create_domain(domain=d)
    c.create_repository(domain=d, repository="proxy")
    c.associate_external_connection(domain=d, repository="proxy", externalConnection="public:pypi")
    return a.token(d)


def test_one_fetch_per_file_across_the_cluster(nodes, pub):
    a, b = nodes
    token = _proxy(a, "sf")
    wheel = make_wheel(pub.files, "fleet-one", "1.0")
    for node in (a, b):  # both know the page (retained, fresh for ARCA_UPSTREAM_MAX_AGE)
        assert httpx.get(node.endpoint("sf", "pypi", "proxy") + "simple/fleet-one/", auth=("aws", token),
                         timeout=30).status_code == 200
    gate_key = f"/packages/{wheel.name}"

    def held() -> int:
        return sum(1 for p, s, _ in pub.requests if p == gate_key and s == 0)

    def get(node):
        return httpx.get(node.endpoint("sf", "pypi", "proxy") + f"simple/fleet-one/{wheel.name}",
                         auth=("aws", token), timeout=60)

    pub.gate[gate_key] = gate = threading.Event()
    try:
        with ThreadPoolExecutor(8) as pool:
            futures = [pool.submit(get, (a, b)[i % 2]) for i in range(8)]
            # The first fetch is held at the remote, so its lease cannot end: any other fetch, from
            # either node, would arrive at the gate too. Count once the first is there, then release.
            assert wait_for(lambda: held() >= 1)
            arrivals = held()
            gate.set()
            results = [f.result() for f in futures]
    finally:
        gate.set()
        pub.gate.pop(gate_key, None)
    assert arrivals == 1, pub.requests
    assert [r.status_code for r in results] == [200] * 8
    assert {hashlib.sha256(r.content).hexdigest() for r in results} == {hashlib.sha256(wheel.read_bytes()).hexdigest()}
    assert pub.count(gate_key, 200) == 1


def test_a_remote_that_is_down_is_not_asked_by_every_node(nodes, pub):
    a, b = nodes
    token = _proxy(a, "down")
    pub.down = True
    try:
        answers = []
        for i in range(10):  # alternating nodes, each a project neither has seen
            r = httpx.get((a, b)[i % 2].endpoint("down", "pypi", "proxy") + f"simple/gone-{i}/",
                          auth=("aws", token), timeout=30)
            answers.append(r.status_code)
        asked = [p for p, s, _ in pub.requests if p.startswith("/simple/gone-")]
    finally:
        pub.down = False
    assert answers == [502] * 10
    # Three failures in a row open the breaker for the whole cluster.
    assert asked == ["/simple/gone-0/", "/simple/gone-1/", "/simple/gone-2/"]
    r = httpx.get(b.endpoint("down", "pypi", "proxy") + "simple/gone-3/", auth=("aws", token), timeout=30)
    assert r.status_code == 502 and "unavailable (it failed 3 times in a row" in r.text
