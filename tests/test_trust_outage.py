"""Issue 14, outages: when PostgreSQL is stopped under a running server, requests get a prompt 503
with Retry-After and a reason (never a 500, never a hang), /readyz names the database, nothing half
written stays behind, and the same process serves again once the database is back. The cluster is
the test's own (stopping the suite's shared one would fail other tests)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import httpx
import pytest
from botocore.exceptions import ClientError

from tests.pypi_support import wait_for
from tests.support.server import start_server
from tests.web_support import console_user, signed_in

PG_CLUSTER = Path(__file__).resolve().parents[1] / "scripts" / "pg-cluster"
pytestmark = pytest.mark.cluster  # PostgreSQL phase only


def _pg(verb: str, directory: Path) -> str:
    return subprocess.run(["bash", str(PG_CLUSTER), verb, str(directory)], capture_output=True, text=True,
                          check=True, timeout=120).stdout.strip()


@pytest.fixture
def cluster():
    directory = Path(tempfile.mkdtemp(prefix="arca-pg-outage-"))  # postgres must reach it: not under pytest's 0700 tmp
    try:
        yield directory, _pg("start", directory)
    finally:
        _pg("stop", directory)
        shutil.rmtree(directory, ignore_errors=True)


def _unavailable(resp: httpx.Response) -> None:
    assert resp.status_code == 503, (resp.status_code, resp.text)
    assert resp.headers.get("retry-after") == "5"
    assert "database is unavailable" in resp.text


def test_a_stopped_database_is_a_prompt_503_and_the_server_recovers(cluster, tmp_path):
    directory, url = cluster
    srv = start_server(tmp_path / "outage", database_url=url)
    try:
        srv.create_repo("out", "libs")
        token = srv.token("out")
        ep = srv.endpoint("out", "maven", "libs")
        put = lambda v: httpx.put(f"{ep}com/out/lib/{v}/lib-{v}.jar", content=b"jar " + v.encode(),  # noqa: E731
                                  auth=("aws", token), timeout=30)
        assert put("1.0").status_code == 201
        console_user(srv, "ops", admin=True)
        console = signed_in(srv, "ops")

        _pg("pause", directory)
        _unavailable(put("2.0"))
        _unavailable(httpx.get(f"{ep}com/out/lib/1.0/lib-1.0.jar", auth=("aws", token), timeout=30))
        ready = httpx.get(srv.url + "/readyz", timeout=30)
        assert ready.status_code == 503 and "database" in ready.json()["problems"]
        assert "blob_store" not in ready.json()["problems"]
        with pytest.raises(ClientError) as err:
            srv.boto().list_domains()
        assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
        assert err.value.response["ResponseMetadata"]["HTTPHeaders"].get("retry-after") == "5"
        page = console.get("/ui/")
        assert page.status_code == 503 and "database is unavailable" in page.text
        assert page.headers.get("retry-after") == "5"

        _pg("resume", directory)
        assert wait_for(lambda: httpx.get(srv.url + "/readyz", timeout=30).status_code == 200, timeout=60)
        assert srv.proc.poll() is None  # the same process, recovered by itself
        assert put("2.0").status_code == 201
        versions = srv.boto().list_package_versions(domain="out", repository="libs", format="maven",
                                                    namespace="com.out", package="lib")["versions"]
        assert sorted(v["version"] for v in versions) == ["1.0", "2.0"]
        assert console.get("/ui/").status_code == 200
    finally:
        srv.stop()
