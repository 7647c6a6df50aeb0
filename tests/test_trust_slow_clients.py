"""Issue 14, half-sent requests: a client that stops sending its headers or its body is dropped
after the configured time, and many such clients do not keep the server from answering others."""

from __future__ import annotations

import socket

import httpx
import pytest

from tests.pypi_support import wait_for
from tests.support.server import start_server

TIMEOUT = 2  # seconds, configured for this server only


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    s = start_server(tmp_path_factory.mktemp("slow"), env={"ARCA_REQUEST_HEADER_TIMEOUT": str(TIMEOUT),
                                                          "ARCA_REQUEST_BODY_TIMEOUT": str(TIMEOUT)})
    s.create_repo("slow", "libs")
    try:
        yield s
    finally:
        s.stop()


def _connect(srv, first: bytes = b"") -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", srv.port), timeout=30)
    if first:
        sock.sendall(first)
    return sock


def _closed_by_server(sock: socket.socket) -> bool:
    """True once the server has closed the connection (reads EOF or a reset)."""
    sock.settimeout(0.2)
    try:
        return sock.recv(4096) == b""
    except TimeoutError:
        return False
    except ConnectionError:
        return True


def test_stalled_headers_and_bodies_are_dropped_while_others_are_served(srv):
    token = srv.token("slow")
    jar = f"{srv.endpoint('slow', 'maven', 'libs')}com/slow/lib/1.0/lib-1.0.jar"
    path = "/slow/maven/libs/com/slow/lib/1.0/lib-1.0.jar"
    silent = [_connect(srv) for _ in range(20)]  # connect, say nothing
    trickle = [_connect(srv, b"GET /healthz HTTP/1.1\r\nHost: x\r\n") for _ in range(20)]  # headers never end
    half_body = [_connect(srv, (f"PUT {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
                                f"Content-Length: 1000\r\n\r\n").encode() + b"x" * 100) for _ in range(20)]
    # everyone else is answered meanwhile
    assert httpx.get(srv.url + "/healthz", timeout=10).status_code == 200
    assert httpx.put(jar.replace("1.0", "2.0"), content=b"whole jar", auth=("aws", token), timeout=10).status_code == 201
    for sock in trickle[:5]:  # more header bytes do not buy time
        sock.sendall(b"X-Slow: 1\r\n")
    for group in (silent, trickle, half_body):
        assert wait_for(lambda: all(_closed_by_server(s) for s in group), timeout=TIMEOUT * 10)
        for s in group:
            s.close()
    # the half-sent PUTs stored nothing
    versions = srv.boto().list_package_versions(domain="slow", repository="libs", format="maven",
                                                namespace="com.slow", package="lib")["versions"]
    assert [v["version"] for v in versions] == ["2.0"]


def test_a_slow_but_moving_body_is_not_dropped(srv):
    token = srv.token("slow")
    path = "/slow/maven/libs/com/slow/moving/1.0/moving-1.0.jar"
    sock = _connect(srv, (f"PUT {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
                          f"Content-Length: 6\r\n\r\n").encode())
    for piece in (b"ab", b"cd", b"ef"):  # each well within the pause allowed
        sock.sendall(piece)
    sock.settimeout(30)
    answer = sock.recv(4096)
    sock.close()
    assert answer.startswith(b"HTTP/1.1 201"), answer
