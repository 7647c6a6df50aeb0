"""Issue 14 item 5: console sign-in is throttled. Failures are limited per user name and per client
address (429 with Retry-After, recorded in the audit trail), the counters live in the database so
the limits hold across worker processes and nodes (two `arca serve` processes of two workers each
share one database here), the sign-in form is refused before it is parsed when it is too big (413),
and passwords are argon2id hashes, old scrypt hashes being replaced at the next sign-in.

The limits are small and the windows long, so nothing depends on how fast the machine is; where a
test needs time to pass it moves the counters' timestamps in the database, and the one test of the
real clock waits for a positive answer."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest

from tests.support.server import ArcaServer, start_server
from tests.web_support import PASSWORD, Console, console_user, csrf_of, services

MAX_PER_NAME, MAX_PER_ADDRESS, WINDOW, LOCKOUT, MAX_FORM = 3, 5, 600, 600, 2048
ENV = {"ARCA_SIGNIN_MAX_FAILURES": str(MAX_PER_NAME), "ARCA_SIGNIN_MAX_FAILURES_PER_ADDRESS": str(MAX_PER_ADDRESS),
       "ARCA_SIGNIN_WINDOW": str(WINDOW), "ARCA_SIGNIN_LOCKOUT": str(LOCKOUT),
       "ARCA_CONSOLE_MAX_FORM_BYTES": str(MAX_FORM), "ARCA_SECRET_KEY": "signin-test-key-" + "s" * 40}


@pytest.fixture(scope="module")
def nodes(tmp_path_factory):
    """Two nodes on one database, each with two worker processes."""
    root = tmp_path_factory.mktemp("signin")
    a = start_server(root / "a", env=ENV, workers=2)
    (root / "b").mkdir()
    b = ArcaServer(root=root / "b", env={**a.env, "ARCA_DATA_DIR": str(root / "b" / "storage")},
                   access_key=a.access_key).start(workers=2)
    yield a, b
    b.stop()
    a.stop()


@pytest.fixture(autouse=True)
def fresh_counters(nodes):
    """Every test starts with no failures counted (they all come from 127.0.0.1)."""
    from app.db.models import SigninThrottle

    with services(nodes[0]).db.session() as s:
        s.execute(SigninThrottle.__table__.delete())


def _name(prefix: str) -> str:
    return f"{prefix}{secrets.token_hex(4)}"


def attempt(server: ArcaServer, name: str, password: str):
    """One sign-in from a new browser (new connection, so any worker of the node may answer it)."""
    c = Console(server)
    try:
        return c.login(name, password)
    finally:
        c.close()


def _throttled(resp) -> int:
    """A refusal by a lock: Retry-After counts down the lockout (half of it is ample for a slow run)."""
    assert resp.status_code == 429, (resp.status_code, resp.text[:300])
    seconds = int(resp.headers["retry-after"])
    assert LOCKOUT // 2 <= seconds <= LOCKOUT
    assert "Too many failed sign-ins" in resp.text and "location" not in resp.headers  # not signed in
    return seconds


def audit(server: ArcaServer, name: str) -> list[dict]:
    rows = json.loads(server.admin("audit", "--output", "json", "--limit", "100000").stdout)
    return [r for r in rows if r["action"].startswith("SignIn") and r["resource"] == name]


def _stored_hash(server: ArcaServer, name: str) -> str:
    from sqlalchemy import select

    from app.db.models import User

    with services(server).db.read() as s:
        return s.scalar(select(User.password_hash).where(User.name == name))


# ---- per user name ------------------------------------------------------------------------------

def test_failures_for_one_name_lock_it_even_with_the_right_password(nodes):
    a, b = nodes
    name = _name("alice")
    console_user(a, name)
    for node in (a, b, a):  # failures counted wherever they land
        resp = attempt(node, name, "wrong password")
        assert resp.status_code == 401 and "retry-after" not in resp.headers
    for node in (b, a):
        _throttled(attempt(node, name, PASSWORD))
    rows = audit(a, name)
    assert [r["action"] for r in rows] == ["SignInFailed"] * 3 + ["SignInThrottled"] * 2
    assert rows[2]["details"]["locked"] == ["user"] and rows[2]["details"]["lockedForSeconds"] == LOCKOUT
    assert all(r["sourceIp"] == "127.0.0.1" and r["principal"] is None for r in rows)
    assert rows[3]["details"]["limitedBy"] == "user" and rows[3]["details"]["retryAfterSeconds"] >= 1
    # another name from the same address is not held up by alice's lock (the address has 3 of 5)
    other = _name("bob")
    console_user(a, other)
    assert attempt(b, other, PASSWORD).status_code == 303
    assert [r["action"] for r in audit(a, other)] == ["SignIn"]


def test_the_address_limit_covers_every_name(nodes):
    a, b = nodes
    ghosts = [_name("ghost") for _ in range(3)]  # names nobody has are counted like real ones
    # 2 + 2 + 1 failures: no name reaches its limit of 3, the address reaches its 5
    for node, ghost in ((a, ghosts[0]), (b, ghosts[0]), (a, ghosts[1]), (b, ghosts[1]), (a, ghosts[2])):
        assert attempt(node, ghost, "guess").status_code == 401
    assert "locked" not in audit(a, ghosts[1])[-1]["details"]
    assert audit(a, ghosts[2])[-1]["details"]["locked"] == ["address"]
    carol = _name("carol")
    console_user(a, carol)
    _throttled(attempt(b, carol, PASSWORD))
    rows = audit(a, carol)
    assert [r["action"] for r in rows] == ["SignInThrottled"] and rows[0]["details"]["limitedBy"] == "address"


def test_concurrent_guesses_cannot_pass_the_limit(nodes):
    """Each attempt is counted before its password is checked: of many guesses at once, spread over
    both nodes and their workers, at most the limit get a password check."""
    a, b = nodes
    name = _name("dora")
    console_user(a, name)
    consoles = [Console(node) for node in (a, b) * 6]
    tokens = [csrf_of(c.get("/ui/login").text) for c in consoles]

    def guess(i: int) -> int:
        return consoles[i].post("/ui/login", {"username": name, "password": f"guess {i}", "next": "/ui/"},
                                csrf=tokens[i]).status_code

    with ThreadPoolExecutor(len(consoles)) as pool:
        statuses = list(pool.map(guess, range(len(consoles))))
    for c in consoles:
        c.close()
    assert statuses.count(401) <= MAX_PER_NAME and statuses.count(401) + statuses.count(429) == len(consoles)
    assert sum(r["action"] == "SignInFailed" for r in audit(a, name)) == statuses.count(401)
    _throttled(attempt(a, name, PASSWORD))


# ---- after the lockout -----------------------------------------------------------------------------

def _age_counters(server: ArcaServer, by: timedelta) -> None:
    """Move every counter's clock back: the window and the lockout have passed."""
    from sqlalchemy import select

    from app.db.models import SigninThrottle

    with services(server).db.session() as s:
        for row in s.scalars(select(SigninThrottle)):
            row.window_start -= by
            row.expires_at -= by
            if row.locked_until is not None:
                row.locked_until -= by


def test_a_sign_in_after_the_lockout_works(nodes):
    a, b = nodes
    name = _name("erin")
    console_user(a, name)
    for _ in range(MAX_PER_NAME):
        assert attempt(a, name, "wrong password").status_code == 401
    _throttled(attempt(b, name, PASSWORD))
    _age_counters(a, timedelta(seconds=max(WINDOW, LOCKOUT) + 1))
    c = Console(b)
    assert c.login(name).status_code == 303
    assert c.get("/ui/").status_code == 200  # a real session
    c.close()
    # the name starts afresh: one more failure is a plain 401
    assert attempt(a, name, "wrong password").status_code == 401
    assert attempt(a, name, PASSWORD).status_code == 303


def test_the_lockout_ends_by_itself(tmp_path):
    """The real clock: a one-second lockout, then the right password is accepted again."""
    srv = start_server(tmp_path / "short", env={**ENV, "ARCA_SIGNIN_MAX_FAILURES": "2", "ARCA_SIGNIN_LOCKOUT": "1"})
    try:
        name = _name("fred")
        console_user(srv, name)
        for _ in range(2):
            assert attempt(srv, name, "wrong password").status_code == 401
        assert audit(srv, name)[-1]["details"]["locked"] == ["user"]
        deadline = time.monotonic() + 60
        while (resp := attempt(srv, name, PASSWORD)).status_code == 429 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert resp.status_code == 303
    finally:
        srv.stop()


# ---- password hashes --------------------------------------------------------------------------------

def _scrypt_hash(password: str) -> str:
    """A hash as earlier releases stored it (identity.hash_password before argon2)."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1)
    return "scrypt$" + base64.b64encode(salt).decode() + "$" + base64.b64encode(digest).decode()


def test_passwords_are_argon2id_with_their_parameters_in_the_hash(nodes):
    a, _b = nodes
    name = _name("gail")
    console_user(a, name)
    assert re.fullmatch(r"\$argon2id\$v=19\$m=\d+,t=\d+,p=\d+\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+", _stored_hash(a, name))


def test_an_old_scrypt_hash_is_upgraded_on_sign_in(nodes):
    from sqlalchemy import update

    from app.db.models import User

    a, b = nodes
    name = _name("hank")
    console_user(a, name)
    old = _scrypt_hash(PASSWORD)
    with services(a).db.session() as s:
        s.execute(update(User).where(User.name == name).values(password_hash=old))
    # a wrong password changes nothing
    assert attempt(a, name, "wrong password").status_code == 401
    assert _stored_hash(a, name) == old
    # the right one signs in and replaces the hash
    c = Console(b)
    assert c.login(name).status_code == 303
    new = _stored_hash(a, name)
    assert new.startswith("$argon2id$") and new != old
    assert c.get("/ui/").status_code == 200  # the session made with the new hash is valid
    c.close()
    assert attempt(a, name, PASSWORD).status_code == 303 and _stored_hash(a, name) == new
    assert attempt(b, name, "wrong password").status_code == 401
    rows = audit(a, name)
    assert [r["action"] for r in rows] == ["SignInFailed", "SignIn", "SignIn", "SignInFailed"]
    assert rows[1]["details"] == {"passwordRehashed": "argon2id"} and rows[2]["details"] == {}


# ---- the size of the form --------------------------------------------------------------------------

def _raw_post(server: ArcaServer, head: bytes, body: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(head + body)
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
        return answer


def test_an_oversized_sign_in_form_is_refused_before_it_is_parsed(nodes):
    a, _b = nodes
    name = _name("ivy")
    console_user(a, name)
    c = Console(a)
    token = csrf_of(c.get("/ui/login").text)
    cookie = "; ".join(f"{k}={v}" for k, v in c.http.cookies.items())
    form = f"username={name}&password={PASSWORD.replace(' ', '+')}&next=%2Fui%2F&csrf={token}".encode()
    # Content-Length says 10 MB: answered after a few bytes, without waiting for the rest
    head = (f"POST /ui/login HTTP/1.1\r\nHost: {a.hostport}\r\nCookie: {cookie}\r\n"
            "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 10000000\r\n\r\n").encode()
    answer = _raw_post(a, head, form)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    # chunked, no length announced: refused once the limit is passed, although the form is correct
    padded = form + b"&pad=" + b"x" * MAX_FORM
    resp = c.http.post("/ui/login", content=iter([padded[:1000], padded[1000:]]),
                       headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert resp.status_code == 413 and "location" not in resp.headers
    assert audit(a, name) == []  # not an attempt at all
    # the same form within the limit signs in
    resp = c.http.post("/ui/login", content=form, headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert resp.status_code == 303
    c.close()


def test_bad_throttle_settings_are_refused():
    from app.config import SettingError, settings_from_env

    for variable, value in (("ARCA_SIGNIN_MAX_FAILURES", "-1"), ("ARCA_SIGNIN_WINDOW", "0"),
                            ("ARCA_SIGNIN_LOCKOUT", "soon"), ("ARCA_CONSOLE_MAX_FORM_BYTES", "10")):
        with pytest.raises(SettingError, match=variable):
            settings_from_env({variable: value})
    assert settings_from_env({"ARCA_SIGNIN_MAX_FAILURES_PER_ADDRESS": "0"}).signin_max_failures_per_address == 0
